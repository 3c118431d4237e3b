"""Fitted preprocessing: impute, scale, encode and bin, fitted on training data and stored as JSON parameters.

Each module has a fit function, an `apply(params, table)` registered by kind in nodes.features.fitted, and a node.
"""
