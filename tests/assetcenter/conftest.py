"""Shared fixtures for the asset center tests: one throwaway PostgreSQL server per session, a fresh database per
test that asks for one."""
from __future__ import annotations

import secrets

import pytest
from sqlalchemy.engine import make_url

from postgres_server import postgres_server


@pytest.fixture(scope="session")
def ac_postgres():
    with postgres_server() as server:
        yield server


@pytest.fixture
def fresh_pg_url(ac_postgres):
    """A SQLAlchemy URL (with password) of a new, empty database on the session's server."""
    name = "ac_" + secrets.token_hex(6)
    with ac_postgres.connect() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return make_url(ac_postgres.url(name)).set(password=ac_postgres.password).render_as_string(hide_password=False)
