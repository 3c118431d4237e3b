"""Feature store nodes (Register feature view, Materialize, Get features) over engine.featurestore."""
from nodes.featurestore.nodes import GetFeatures, Materialize, RegisterFeatureView

__all__ = ["GetFeatures", "Materialize", "RegisterFeatureView"]
