"""Ledgerflow's built-in node library, registered through the `ledgerflow.nodes` entry point like any plugin.

`NODES` is built on first access (PEP 562), so importing one node module (a worker running Profile, the
`ledgerflow profile` command) does not import every node type and its libraries.
"""
from __future__ import annotations

import importlib
from typing import Any

_NODE_CLASSES = [
    ("nodes.io.csv_reader", "ReadCSV"), ("nodes.io.excel_reader", "ReadExcel"),
    ("nodes.io.parquet_reader", "ReadParquet"), ("nodes.io.sql_reader", "ReadSQL"), ("nodes.io.writers", "WriteCSV"), ("nodes.io.writers", "WriteParquet"),
    ("nodes.explore.profile", "Profile"),
    ("nodes.features.table_ops", "FilterRows"), ("nodes.features.table_ops", "SelectColumns"),
    ("nodes.features.table_ops", "DeriveColumn"), ("nodes.features.table_ops", "Join"),
    ("nodes.features.table_ops", "GroupBy"), ("nodes.features.split", "Split"),
    ("nodes.features.dates", "DateParts"), ("nodes.features.windows", "WindowAggregates"),
    ("nodes.features.transforms.impute", "Impute"), ("nodes.features.transforms.scale", "Scale"),
    ("nodes.features.transforms.encode", "Encode"), ("nodes.features.transforms.binning", "Binning"),
    ("nodes.features.autofeatures", "AutoFeatures"), ("nodes.features.apply_transform", "ApplyTransform"),
    ("nodes.featurestore.nodes", "RegisterFeatureView"), ("nodes.featurestore.nodes", "Materialize"),
    ("nodes.featurestore.nodes", "GetFeatures"),
    ("nodes.automl.train", "AutoML"), ("nodes.automl.gbm", "LightGBM"), ("nodes.automl.scorecard", "Scorecard"),
    ("nodes.automl.mlp", "MLP"),
    ("nodes.evaluate.evaluate", "Evaluate"), ("nodes.automl.predict", "Predict"),
    ("nodes.export.onnx_export", "ExportONNX"),
    ("nodes.assets.publish", "PublishAsset"), ("nodes.assets.asset_input", "AssetInput"),
    ("nodes.label.label_node", "Label"),
]


def __getattr__(name: str) -> Any:
    if name == "NODES":
        classes = [getattr(importlib.import_module(module), cls) for module, cls in _NODE_CLASSES]
        globals()["NODES"] = classes
        return classes
    raise AttributeError(f"module 'nodes' has no attribute {name!r}")
