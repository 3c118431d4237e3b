"""Shared fixtures for the labeling tests: a ready label schema (PostgreSQL databases come from tests/conftest.py:
`fresh_pg_url`, `module_pg_url`)."""
from __future__ import annotations

import pytest


@pytest.fixture
def text_schema() -> dict:
    return {"kind": "text", "multi": False, "instructions": "Is the complaint about fees?",
            "labels": [{"name": "fees", "color": "#d62728", "hotkey": "1"},
                       {"name": "other", "color": "#1f77b4", "hotkey": "2"}]}
