"""Shared fixtures for the labeling tests: a ready label schema (PostgreSQL databases come from tests/conftest.py:
`fresh_pg_url`, `module_pg_url`)."""
from __future__ import annotations

import secrets

import pytest
from sqlalchemy import create_engine

from engine.labels.store import LabelStore, open_label_store


@pytest.fixture
def text_schema() -> dict:
    return {"kind": "text", "multi": False, "instructions": "Is the complaint about fees?",
            "labels": [{"name": "fees", "color": "#d62728", "hotkey": "1"},
                       {"name": "other", "color": "#1f77b4", "hotkey": "2"}]}


@pytest.fixture(scope="module")
def pg_engine(module_pg_url):
    engine = create_engine(module_pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    """A store with a project of its own, on SQLite and on PostgreSQL (where the module shares one database)."""
    if request.param == "sqlite":
        st = open_label_store(tmp_path / ".ledgerflow")
        yield st
        st.close()
    else:
        yield LabelStore(request.getfixturevalue("pg_engine"), project="p_" + secrets.token_hex(4))
