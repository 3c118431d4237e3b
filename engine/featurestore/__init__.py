"""A small feature store: feature views with point-in-time correct training sets and fast online lookups.

Offline history lives in Parquet parts, the latest values in SQLite (or Redis), the catalogue in registry.json.
"""
from engine.featurestore.registry import FeatureStoreError, FeatureView
from engine.featurestore.store import FeatureStore

__all__ = ["FeatureStore", "FeatureStoreError", "FeatureView"]
