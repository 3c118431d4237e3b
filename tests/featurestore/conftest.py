"""Fixtures for the feature store tests: a store folder, and the online backend (SQLite or a real Redis)."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.featurestore import FeatureStore
from tests.redis_server import redis_process, redis_url  # noqa: F401 - fixtures used by the tests here


@pytest.fixture(params=["sqlite", "redis"])
def online(request: pytest.FixtureRequest) -> str | None:
    """The online store setting: None for SQLite, or the test Redis server's URL (password in the environment)."""
    return None if request.param == "sqlite" else request.getfixturevalue("redis_url")


@pytest.fixture
def store(tmp_path: Path, online: str | None):
    with FeatureStore(tmp_path / "fs", online=online) as fs:
        yield fs


@pytest.fixture
def sqlite_store(tmp_path: Path):
    with FeatureStore(tmp_path / "fs") as fs:
        yield fs
