"""ReadSQL against a real PostgreSQL server and real SQLite files: values and types, vault/env passwords, batches,
type overrides, every user-facing error, writes refused by the statement check *and* by the database, and the
password never reaching the project file, the logs or the error messages."""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets as std_secrets
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from postgres_server import PostgresServer, free_port, postgres_server
from psycopg import sql
from pydantic import ValidationError

from engine import secrets
from engine.executors.base import NodeTask, execute_task, run_inline
from engine.fileio import FileFingerprints
from engine.project import Project
from engine.registry import Provenance, Registry
from engine.sdk import FingerprintContext
from engine.testing import NodeFailed, run_node
from sqlalchemy.engine import make_url
from nodes.io.sql_reader import ReadSQL, ReadSQLSettings, read_only_statement

LOANS = [
    (1, Decimal("1000.50"), 0.035, "张三", dt.date(2024, 1, 31), dt.datetime(2024, 2, 1, 9, 30), True, "2024-03-01"),
    (2, None, 0.04, "Åsa", None, dt.datetime(2024, 2, 2, 10, 0), False, "2024-03-02"),
    (3, Decimal("250.00"), None, None, dt.date(2023, 12, 1), None, None, None),
    (4, Decimal("99999.99"), 0.1, "李四 (北京)", dt.date(2020, 2, 29), dt.datetime(2020, 2, 29, 23, 59, 59, 123456),
     True, "not a date"),
]
BIG_ROWS = 120_001  # more than two batches of ReadSQL's 50 000 rows


class DB:
    """The test database: a `risk` database owned by `analyst`, who may write (so only our guards stop writes)."""

    def __init__(self, server: PostgresServer, password: str) -> None:
        self.server = server
        self.password = password
        self.url = server.url("risk", user="analyst")

    def scalar(self, query: str) -> object:
        with self.server.connect("risk") as conn:
            return conn.execute(query).fetchone()[0]


@pytest.fixture(scope="session")
def pg():
    with postgres_server() as server:
        password = "An@lyst:" + std_secrets.token_urlsafe(12)  # URL-special characters on purpose
        with server.connect() as conn:
            conn.execute(sql.SQL("CREATE ROLE analyst LOGIN PASSWORD {}").format(sql.Literal(password)))
            conn.execute("CREATE DATABASE risk OWNER analyst")
        with server.connect("risk", user="analyst", password=password) as conn:
            conn.execute("CREATE TABLE loans (id integer PRIMARY KEY, amount numeric(12,2), rate double precision, "
                         "name text, opened date, updated timestamp, active boolean, code text)")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO loans VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", LOANS)
            conn.execute('CREATE TABLE "Loan Book" (id integer, "Amount (CNY)" numeric)')
            conn.execute('INSERT INTO "Loan Book" VALUES (7, 12.5)')
            conn.execute("CREATE SCHEMA archive")
            conn.execute("CREATE TABLE archive.loans_2019 AS SELECT 2019 AS year")
            conn.execute(f"CREATE TABLE big AS SELECT g AS n, g % 7 AS k FROM generate_series(1, {BIG_ROWS}) g")
            conn.execute("CREATE TABLE empty_t (a integer, b text)")
            conn.execute("CREATE FUNCTION wipe() RETURNS integer LANGUAGE sql AS 'DELETE FROM loans; SELECT 1'")
        yield DB(server, password)


@pytest.fixture(scope="session")
def vault_ref(pg) -> str:
    return secrets.put_secret(pg.password, label="analyst@risk")


def read(settings: dict, project_dir: Path | None = None) -> pl.DataFrame:
    return run_node(ReadSQL, settings=settings, project_dir=project_dir)["table"]


def fails(settings: dict, project_dir: Path | None = None) -> str:
    with pytest.raises(NodeFailed) as info:
        read(settings, project_dir)
    assert info.value.input_error, f"expected a user-facing input error, got: {info.value}\n{info.value.traceback}"
    return str(info.value)


# --- reading --------------------------------------------------------------------------------------------------------

def test_query_with_vault_password_reads_values_and_types(pg, vault_ref):
    table = read({"url": pg.url, "password": vault_ref, "query": "SELECT * FROM loans ORDER BY id"})
    assert table.columns == ["id", "amount", "rate", "name", "opened", "updated", "active", "code"]
    assert table.rows() == LOANS
    assert table["id"].dtype.is_integer() and table["rate"].dtype == pl.Float64
    assert table["amount"].dtype == pl.Decimal(38, 2)
    assert table["opened"].dtype == pl.Date and table["updated"].dtype == pl.Datetime("us")
    assert table["active"].dtype == pl.Boolean and table["name"].dtype == pl.String
    assert table.null_count().row(0) == (0, 1, 1, 1, 1, 1, 1, 1)


def test_whole_table_by_name_equals_the_query(pg, vault_ref):
    by_name = read({"url": pg.url, "password": vault_ref, "table": "loans"}).sort("id")
    assert by_name.rows() == LOANS


@pytest.mark.parametrize(("name", "expected"), [("Loan Book", [(7, Decimal("12.5"))]),
                                                ("archive.loans_2019", [(2019,)])])
def test_table_names_are_quoted_by_sqlalchemy(pg, vault_ref, name, expected):
    assert read({"url": pg.url, "password": vault_ref, "table": name}).rows() == expected


def test_env_password(pg, monkeypatch):
    monkeypatch.setenv("LF_TEST_RISK_PASSWORD", pg.password)
    table = read({"url": pg.url, "password": "env:LF_TEST_RISK_PASSWORD", "query": "SELECT count(*) AS n FROM loans"})
    assert table["n"].to_list() == [len(LOANS)]


def test_colons_and_percent_signs_reach_the_database_unchanged(pg, vault_ref):
    query = "SELECT ' :id %s %%' AS s, '10:30'::text AS t, 2::int AS n FROM loans WHERE name LIKE '张%'"
    assert read({"url": pg.url, "password": vault_ref, "query": query}).rows() == [(" :id %s %%", "10:30", 2)]


def test_empty_result_keeps_the_columns(pg, vault_ref):
    table = read({"url": pg.url, "password": vault_ref, "query": "SELECT id, name FROM loans WHERE id < 0"})
    assert table.columns == ["id", "name"] and table.height == 0
    assert read({"url": pg.url, "password": vault_ref, "table": "empty_t"}).columns == ["a", "b"]


def test_large_result_is_streamed_in_batches_with_progress(pg, vault_ref):
    events: list[tuple[str, object]] = []
    outcome = run_inline(ReadSQL, settings={"url": pg.url, "password": vault_ref, "query": "SELECT n, k FROM big"},
                         emit=lambda kind, payload: events.append((kind, payload)))
    assert outcome.error is None, outcome.error
    table = outcome.outputs["table"]
    assert table.height == BIG_ROWS
    assert table["n"].sum() == BIG_ROWS * (BIG_ROWS + 1) // 2
    expected = {k: pg.scalar(f"SELECT count(*) FROM big WHERE k = {k}") for k in range(7)}
    assert dict(table.group_by("k").len().iter_rows()) == expected
    progress = [msg for kind, (_, msg) in events if kind == "progress" and msg]
    assert progress == ["50000 rows read", "100000 rows read", "120001 rows read"]


@pytest.mark.parametrize("mode", ["query", "table"])
def test_limit(pg, vault_ref, mode):
    source = {"query": "SELECT n FROM big ORDER BY n"} if mode == "query" else {"table": "big"}
    table = read({"url": pg.url, "password": vault_ref, "limit": 70_000, **source})
    assert table.height == 70_000
    if mode == "query":
        assert table["n"].to_list() == list(range(1, 70_001))


def test_cancel_stops_the_read_and_releases_the_connection(pg, vault_ref):
    task = NodeTask(node_cls=ReadSQL, settings={"url": pg.url, "password": vault_ref, "table": "big"}, inputs={},
                    node_id="n1", title="Read SQL", seed=1, project_dir=None)
    outcome = execute_task(task, lambda kind, payload: None, lambda: True)
    assert outcome.cancelled and outcome.outputs is None
    left = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'analyst'"
    deadline = time.monotonic() + 30  # a closed session's backend exits shortly after the client goes
    while pg.scalar(left) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pg.scalar(left) == 0


# --- type overrides -----------------------------------------------------------------------------------------------

def test_column_types(pg, vault_ref):
    table = read({"url": pg.url, "password": vault_ref, "query": "SELECT * FROM loans WHERE id < 4 ORDER BY id",
                  "column_types": {"id": "str", "amount": "float", "opened": "datetime", "code": "date",
                                     "name": "category"}})
    assert table["id"].to_list() == ["1", "2", "3"]
    assert table["amount"].dtype == pl.Float64 and table["amount"].to_list() == [1000.5, None, 250.0]
    assert table["opened"].to_list() == [dt.datetime(2024, 1, 31), None, dt.datetime(2023, 12, 1)]
    assert table["code"].to_list() == [dt.date(2024, 3, 1), dt.date(2024, 3, 2), None]
    assert table["name"].dtype == pl.Categorical and table["name"].cast(pl.String).to_list() == ["张三", "Åsa", None]


def test_failing_type_override_names_column_row_and_value(pg, vault_ref):
    message = fails({"url": pg.url, "password": vault_ref, "query": "SELECT * FROM loans ORDER BY id",
                     "column_types": {"code": "date"}})
    assert "'code'" in message and "'not a date'" in message and "Row 4" in message


def test_override_of_unknown_column(pg, vault_ref):
    message = fails({"url": pg.url, "password": vault_ref, "table": "loans", "column_types": {"nope": "int"}})
    assert "nope" in message and "amount" in message


# --- errors ---------------------------------------------------------------------------------------------------------

def test_syntax_error_has_the_database_message_and_position(pg, vault_ref):
    query = "SELECT id,\n       name\nFROM loans\nWHERE id >> AND 1"
    message = fails({"url": pg.url, "password": vault_ref, "query": query})
    pos = query.index("AND") + 1
    assert "syntax error" in message.lower() and 'near "AND"' in message
    assert f"position {pos} (line 4, column 13)" in message


def test_unknown_column_has_position(pg, vault_ref):
    query = "SELECT id, nope FROM loans WHERE name LIKE '张%'"
    message = fails({"url": pg.url, "password": vault_ref, "query": query})
    assert 'column "nope" does not exist' in message and f"position {query.index('nope') + 1}" in message


@pytest.mark.parametrize("source", [{"query": "SELECT * FROM no_such_table"}, {"table": "no_such_table"}])
def test_missing_table(pg, vault_ref, source):
    message = fails({"url": pg.url, "password": vault_ref, **source})
    assert "Table not found" in message and "no_such_table" in message


def test_wrong_password_says_authentication_failed_without_any_password(pg):
    wrong = "Wr0ng-" + std_secrets.token_hex(6)
    events: list = []
    outcome = run_inline(ReadSQL, settings={"url": pg.url, "password": secrets.put_secret(wrong),
                                            "table": "loans"}, emit=lambda kind, payload: events.append(payload))
    assert outcome.input_error
    assert "authentication failed" in outcome.error.lower() and "analyst" in outcome.error
    for text in (outcome.error, outcome.traceback or "", repr(events)):
        assert wrong not in text and pg.password not in text


def test_unreachable_port_names_host_and_port(pg):
    port = free_port()
    message = fails({"url": f"postgresql+psycopg://analyst@127.0.0.1:{port}/risk", "table": "loans",
                     "timeout_s": 5})
    assert f"127.0.0.1:{port}" in message and "Cannot reach" in message


def test_unknown_database(pg, vault_ref):
    message = fails({"url": pg.server.url("no_such_db", user="analyst"), "password": vault_ref, "table": "loans"})
    assert "'no_such_db' does not exist" in message


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql+psycopg2://analyst@127.0.0.1/risk", "pip install psycopg2-binary"),
    ("mysql+pymysql://analyst@127.0.0.1/risk", "pip install PyMySQL"),
    ("snowflake://analyst@account/risk", "pip install snowflake-sqlalchemy"),
    ("postgresql+nosuchdriver://analyst@127.0.0.1/risk", "'postgresql+nosuchdriver'"),
])
def test_missing_or_unknown_driver(url, expected):
    assert expected in fails({"url": url, "table": "loans"})


def test_missing_vault_entry_and_env_var(pg, monkeypatch):
    message = fails({"url": pg.url, "password": "vault:" + "0" * 32, "table": "loans"})
    assert "not in this machine's vault" in message and message.startswith("Password")
    monkeypatch.delenv("LF_TEST_NOT_SET", raising=False)
    assert "LF_TEST_NOT_SET is not set" in fails({"url": pg.url, "password": "env:LF_TEST_NOT_SET", "table": "loans"})


@pytest.mark.parametrize("settings", [{"query": "", "table": ""}, {"query": "SELECT 1", "table": "loans"}])
def test_query_or_table_exactly_one(pg, settings):
    assert "either Query or Table" in fails({"url": pg.url, **settings})


def test_not_a_url():
    assert "not a database URL" in fails({"url": "risk database", "table": "t"})


# --- read only ------------------------------------------------------------------------------------------------------

WRITES = ["DELETE FROM loans", "INSERT INTO loans (id) VALUES (99)", "DROP TABLE loans", "SELECT 1; DROP TABLE loans",
          "select 1;\nDELETE FROM loans", "WITH d AS (DELETE FROM loans RETURNING *) SELECT * FROM d",
          "SELECT * INTO loans_copy FROM loans", "/* SELECT */ TRUNCATE loans", "SELECT * FROM loans FOR UPDATE",
          "SELECT 'a\\'; DROP TABLE loans; --'"]


@pytest.mark.parametrize("query", WRITES)
def test_writes_are_refused_and_the_table_survives(pg, vault_ref, query):
    message = fails({"url": pg.url, "password": vault_ref, "query": query})
    assert "read queries" in message or "single statement" in message
    assert pg.scalar("SELECT count(*) FROM loans") == len(LOANS)
    assert pg.scalar("SELECT to_regclass('loans_copy') IS NULL")


def test_the_database_refuses_writes_hidden_in_a_select(pg, vault_ref):
    """A function that deletes passes the keyword check; the READ ONLY transaction is what stops it."""
    message = fails({"url": pg.url, "password": vault_ref, "query": "SELECT wipe()"})
    assert "read-only transaction" in message and "database refused" in message
    assert pg.scalar("SELECT count(*) FROM loans") == len(LOANS)


@pytest.mark.parametrize("query", ["select 1", "  WITH x AS (SELECT 1 AS a) SELECT * FROM x;  ",
                                   "-- DROP TABLE t;\nSELECT 'DROP TABLE x; --' AS s", 'SELECT "delete" FROM t',
                                   "SELECT $$;DELETE$$ AS s", "(SELECT 1) UNION (SELECT 2)",
                                   "SELECT 1 /* ; */ -- bye;"])
def test_read_queries_pass_the_check(query):
    text = read_only_statement(query)
    assert query.startswith(text) and not text.rstrip().endswith(";")


# --- secrets never leave the vault -------------------------------------------------------------------------------

def test_project_file_and_logs_never_contain_the_password(pg, vault_ref, tmp_path, caplog):
    registry = Registry()
    registry.register(ReadSQL, Provenance("ledgerflow", "0.1.0"))
    project = Project.new(tmp_path / "proj", "Risk", registry)
    settings = {"url": pg.url, "password": vault_ref, "query": "SELECT * FROM loans"}
    project.graph.add_node("io.read_sql", settings)
    text = project.save().read_text("utf-8")
    assert vault_ref in text and pg.password not in text
    assert pg.password not in (secrets.ledgerflow_home() / secrets.VAULT_FILE).read_text()

    logs: list[tuple[int, str]] = []
    caplog.set_level(logging.DEBUG)
    outcome = run_inline(ReadSQL, settings=settings,
                         emit=lambda kind, payload: logs.append(payload) if kind == "log" else None)
    assert outcome.error is None
    lines = [msg for _, msg in logs]
    assert any("analyst:***@127.0.0.1" in line for line in lines)
    assert any(f"read {len(LOANS)} rows" in line for line in lines)
    assert pg.password not in repr(lines) and pg.password not in caplog.text


@pytest.mark.parametrize("url", ["postgresql+psycopg://analyst:Hunter2Secret@127.0.0.1:5432/risk",
                                 "postgresql://analyst:p@Hunter2Secret@127.0.0.1/risk",
                                 "postgresql://analyst@127.0.0.1/risk?password=Hunter2Secret",
                                 "mssql+pyodbc:///?odbc_connect=DRIVER%3Dx%3BUID%3Da%3BPWD%3DHunter2Secret",
                                 "postgresql://analyst:Hunter2Secret@127.0.0.1:notaport/risk"])
def test_a_url_with_a_password_is_refused_without_echoing_it(url, tmp_path):
    with pytest.raises(ValidationError) as info:
        ReadSQLSettings.model_validate({"url": url, "table": "loans"})
    assert "Password field" in str(info.value)
    assert "Hunter2Secret" not in str(info.value) and "Hunter2Secret" not in repr(info.value.errors())
    message = fails({"url": url, "table": "loans"})
    assert "Password field" in message and "Hunter2Secret" not in message
    registry = Registry()
    registry.register(ReadSQL, Provenance("ledgerflow", "0.1.0"))
    project = Project.new(tmp_path / "proj", "Risk", registry)
    node_id = project.graph.add_node("io.read_sql", {"url": url, "table": "loans"}).id
    issues = [str(vars(i)) for i in project.graph.validate() if i.node_id == node_id]
    assert not any("Hunter2Secret" in i for i in issues)
    # stored settings: the password was moved to the vault (a plain user:password@ URL) or the URL was withheld
    assert "Hunter2Secret" not in repr(project.graph.node(node_id).settings)
    assert "Hunter2Secret" not in project.save().read_text("utf-8")


def test_a_typed_password_in_the_password_setting_is_refused_without_echoing_it():
    with pytest.raises(ValidationError) as info:
        ReadSQLSettings.model_validate({"url": "sqlite:///x.db", "table": "t", "password": "Hunter2Secret"})
    assert "vault" in str(info.value)
    assert "Hunter2Secret" not in str(info.value) and "Hunter2Secret" not in repr(info.value.errors())


@pytest.mark.parametrize(("field", "value"), [("url", "postgresql://analyst:Hunter2Secret@h/risk"),
                                              ("password", "Hunter2Secret")])
def test_assignment_is_validated_without_echoing_the_password(field, value):
    settings = ReadSQLSettings(url="sqlite:///x.db", table="t")
    with pytest.raises(ValidationError) as info:
        setattr(settings, field, value)
    assert "Hunter2Secret" not in str(info.value) and "Hunter2Secret" not in repr(info.value.errors())
    settings.password = "env:DB_PASSWORD"
    assert settings.password == "env:DB_PASSWORD" and settings.url == "sqlite:///x.db"


# --- SQLite ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def sqlite_project(tmp_path) -> Path:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    con = sqlite3.connect(project / "data" / "loans.db")
    con.execute("CREATE TABLE loans (id INTEGER, name TEXT, amount REAL)")
    con.executemany("INSERT INTO loans VALUES (?, ?, ?)", [(1, "张三", 10.5), (2, None, None), (3, "c", 7.0)])
    con.commit()
    con.close()
    return project


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sqlite_relative_path_resolves_against_the_project(sqlite_project):
    table = read({"url": "sqlite:///data/loans.db", "query": "SELECT * FROM loans ORDER BY id"}, sqlite_project)
    assert table.rows() == [(1, "张三", 10.5), (2, None, None), (3, "c", 7.0)]
    assert read({"url": "sqlite:///data/loans.db", "table": "loans", "limit": 2}, sqlite_project).height == 2


def test_sqlite_missing_file_is_an_error_and_is_not_created(sqlite_project):
    message = fails({"url": "sqlite:///data/missing.db", "table": "loans"}, sqlite_project)
    assert "File not found" in message and "missing.db" in message
    assert not (sqlite_project / "data" / "missing.db").exists()
    fails({"url": "sqlite:///nofolder/x.db", "table": "loans"}, sqlite_project)
    assert not (sqlite_project / "nofolder").exists()


@pytest.mark.parametrize("query", ["DELETE FROM loans", "SELECT 1; DELETE FROM loans", "DROP TABLE loans"])
def test_sqlite_writes_are_refused_and_the_file_is_untouched(sqlite_project, query):
    db = sqlite_project / "data" / "loans.db"
    before = _sha(db)
    fails({"url": "sqlite:///data/loans.db", "query": query}, sqlite_project)
    read({"url": "sqlite:///data/loans.db", "table": "loans"}, sqlite_project)
    assert _sha(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["loans.db"]


def test_sqlite_errors(sqlite_project):
    url = "sqlite:///data/loans.db"
    assert "no such table: nope" in fails({"url": url, "query": "SELECT * FROM nope"}, sqlite_project)
    message = fails({"url": url, "query": "SELECT * FRM loans"}, sqlite_project)
    assert "Syntax error" in message and "syntax error" in message


# --- fingerprint --------------------------------------------------------------------------------------------------

def test_fingerprint_hashes_a_sqlite_file_and_always_changes_for_a_server(sqlite_project, pg, vault_ref):
    fctx = FingerprintContext(sqlite_project, FileFingerprints())
    lite = ReadSQLSettings(url="sqlite:///data/loans.db", table="loans")
    first = ReadSQL.fingerprint(lite, fctx)
    assert first == ReadSQL.fingerprint(lite, fctx)
    con = sqlite3.connect(sqlite_project / "data" / "loans.db")
    con.execute("INSERT INTO loans VALUES (4, 'd', 1.0)")
    con.commit()
    con.close()
    assert ReadSQL.fingerprint(lite, fctx) != first
    server = ReadSQLSettings(url=pg.url, password=vault_ref, table="loans")
    assert ReadSQL.fingerprint(server, fctx) != ReadSQL.fingerprint(server, fctx)


def test_a_pasted_password_moves_into_the_vault_before_the_project_stores_it(pg, tmp_path):
    """A URL with its password pasted in (what analysts copy from a wiki) is split: the project keeps the URL
    without it and a vault reference; reading works with the moved password; undo/redo never bring it back."""
    registry = Registry()
    registry.register(ReadSQL, Provenance("ledgerflow", "0.1.0"))
    project = Project.new(tmp_path / "proj", "Risk", registry)
    pasted = make_url(pg.url).set(password=pg.password).render_as_string(hide_password=False)
    nid = project.graph.add_node("io.read_sql", {"url": pasted, "query": "SELECT count(*) AS n FROM loans"}).id
    stored = project.graph.node(nid).settings
    assert pg.password not in stored["url"] and stored["password"].startswith("vault:")
    assert secrets.get_secret(stored["password"]) == pg.password
    text = project.save().read_text("utf-8")
    assert pg.password not in text
    out = run_node(ReadSQL, settings=stored)
    assert out["table"]["n"][0] == len(LOANS)

    project.graph.replace_settings(nid, {**stored, "password": "typed-in-clear"})  # the settings dict, by hand
    ref = project.graph.node(nid).settings["password"]
    assert ref.startswith("vault:") and secrets.get_secret(ref) == "typed-in-clear"
    assert "typed-in-clear" not in project.save().read_text("utf-8")
