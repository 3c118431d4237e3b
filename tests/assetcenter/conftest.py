"""The asset center tests share the session's PostgreSQL server (tests/conftest.py: `pg`, `fresh_pg_url`)."""
