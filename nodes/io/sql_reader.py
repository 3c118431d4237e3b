"""Read SQL: a query or a whole table from a database through SQLAlchemy, read-only, streamed in batches.

The password never appears in the URL, the project file or the logs: the Password setting holds a reference to
this machine's vault ("vault:<id>") or to an environment variable ("env:NAME"), resolved only while connecting.
Only single SELECT/WITH statements are accepted, and they run inside a READ ONLY transaction (PostgreSQL, MySQL)
or a read-only connection (SQLite): the keyword check gives a clear message, the database is the real guard.
Other databases get the keyword check only, so give Ledgerflow an account that can only read.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import sqlalchemy as sa
from pydantic import ConfigDict, Field, field_validator, model_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from engine import secrets
from engine.errors import LedgerflowError, NodeInputError
from engine.fileio import sha256_text
from engine.i18n import N_, tr
from engine.ports import Table
from engine.sdk import (
    Context,
    FingerprintContext,
    Node,
    NodeSettings,
    node,
    resolve_project_path,
)
from nodes.io.common import POLARS_TYPES, ColumnType, cast_strings, require_file

BATCH_ROWS = 50_000
_HIDDEN_URL = "<URL with a password, hidden>"
_HIDDEN_PASSWORD = "<hidden>"
_SECRET_QUERY_KEYS = {"password", "passwd", "pwd", "sslpassword"}
_SECRET_IN_VALUE = re.compile(r"(?i)\b(pwd|password)\s*=")
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}
# module that is missing -> the pip package that provides it
_DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "pg8000": "pg8000",
                    "pymysql": "PyMySQL", "MySQLdb": "mysqlclient", "mysql": "mysql-connector-python",
                    "mariadb": "mariadb", "pyodbc": "pyodbc", "pymssql": "pymssql", "oracledb": "oracledb",
                    "cx_Oracle": "cx_Oracle"}
# dialects that are plugins, not part of SQLAlchemy -> their pip package
_DIALECT_PACKAGES = {"snowflake": "snowflake-sqlalchemy", "duckdb": "duckdb-engine", "clickhouse":
                     "clickhouse-sqlalchemy", "trino": "trino", "hive": "PyHive", "bigquery": "sqlalchemy-bigquery",
                     "databricks": "databricks-sqlalchemy", "redshift": "sqlalchemy-redshift"}
_READ_ONLY_TRANSACTION = {"postgresql", "mysql", "mariadb"}
_BIND_PARAM = re.compile(r"(?<![:\w\\]):(\w+)(?![:\w])")  # sqlalchemy.sql.elements.TextClause's own pattern
# Statement verbs that never belong in a read query (as whole words outside literals, comments and quoted names).
_WRITE_WORDS = re.compile(r"(?i)\b(INSERT|UPDATE|DELETE|MERGE|UPSERT|DROP|CREATE|ALTER|TRUNCATE|"
                          r"GRANT|REVOKE|INTO|CALL|EXEC|EXECUTE|ATTACH|DETACH|VACUUM|REINDEX|LOCK|COPY|PRAGMA)\b")


# ---- settings ---------------------------------------------------------------------------------------------------

def _url_has_password(text: str) -> bool:
    """Whether a URL carries a password (user:pass@, ?password=, PWD= inside an ODBC string), parsed or not."""
    try:
        url = make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        head = text.split("://", 1)[-1].rpartition("@")[0]
        return ":" in head
    if url.password is not None or "@" in (url.host or ""):
        return True
    return any(k.lower() in _SECRET_QUERY_KEYS or any(_SECRET_IN_VALUE.search(v) for v in
                                                      ((val,) if isinstance(val, str) else val))
               for k, val in url.query.items())


def _hidden(field: str, value: Any) -> Any:
    """A settings value with any password replaced by a marker that validation refuses."""
    if field == "url" and isinstance(value, str) and _url_has_password(value):
        return _HIDDEN_URL
    if field == "password" and isinstance(value, str) and value and not secrets.is_reference(value):
        return _HIDDEN_PASSWORD
    return value


class ReadSQLSettings(NodeSettings):
    # Settings errors never repeat what was typed (it may be a password), in messages or in `errors()` inputs.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, hide_input_in_errors=True)

    url: str = Field(min_length=1, title=N_("Database URL"),
                     description=N_("SQLAlchemy URL without password, e.g. postgresql+psycopg://analyst@host:5432/risk "
                                    "or sqlite:///data/loans.db (SQLite paths are relative to the project folder)"))
    password: str = Field("", title=N_("Password"),
                          description=N_("Typed passwords are kept in this computer's vault and the project stores "
                                         "only a reference (vault:<id>); env:NAME reads it from an environment "
                                         "variable instead. Empty: no password."),
                          json_schema_extra={"widget": "secret"})
    query: str = Field("", title=N_("Query"), description=N_("One SELECT (or WITH … SELECT) statement"),
                       json_schema_extra={"widget": "multiline"})
    table: str = Field("", title=N_("Table"),
                       description=N_("Read a whole table (or view) instead of a query; schema.table for another "
                                      "schema"))
    limit: int | None = Field(None, ge=1, title=N_("Row limit"),
                              description=N_("Read at most this many rows (for previews); empty reads all"))
    column_types: dict[str, ColumnType] = Field(default_factory=dict, title=N_("Column types"),
                                                  description=N_("Convert some columns to another type"))
    timeout_s: int = Field(10, ge=1, le=600, title=N_("Connect timeout (s)"))

    @model_validator(mode="before")
    @classmethod
    def _hide_secrets(cls, data: Any) -> Any:
        """Replace a typed password before validation, so no error report or settings issue can show it."""
        if isinstance(data, dict):
            data = {**data, **{k: _hidden(k, data[k]) for k in ("url", "password") if k in data}}
        return data

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, _hidden(name, value))  # assignment validates too: hide the value there as well

    @field_validator("url")
    @classmethod
    def _no_password_in_url(cls, v: str) -> str:
        if v == _HIDDEN_URL or _url_has_password(v):
            raise ValueError(tr("the URL contains a password; remove it from the URL and type it in the Password "
                                "field instead, which keeps it in this computer's vault, never in the project"))
        return v

    @field_validator("password")
    @classmethod
    def _reference_only(cls, v: str) -> str:
        if v and not secrets.is_reference(v):
            raise ValueError(tr("must be empty, a vault reference (vault:<id>) or env:NAME; type the password in the "
                                "password box, which stores it in this computer's vault"))
        return v


# ---- the read-only statement check -------------------------------------------------------------------------------

def _code_only(sql: str) -> str:
    """`sql` with comments blanked to spaces and literals/quoted names to NULs (same length), for keyword checks.

    Deliberately conservative: no backslash escapes and no nested comments, so it may see *more* code than the
    database does (and refuse), never less.
    """
    out = list(sql)
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        end, fill = -1, "\0"
        if sql.startswith("--", i):
            end, fill = sql.find("\n", i), " "
            end = n if end < 0 else end
        elif sql.startswith("/*", i):
            end, fill = sql.find("*/", i + 2), " "
            end = n if end < 0 else end + 2
        elif ch in "'\"`":
            end = sql.find(ch, i + 1)
            end = n if end < 0 else end + 1
        elif ch == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if m:
                close = sql.find(m.group(0), i + len(m.group(0)))
                end = n if close < 0 else close + len(m.group(0))
        if end < 0:
            i += 1
            continue
        for j in range(i, end):
            if out[j] != "\n":
                out[j] = fill
        i = end
    return "".join(out)


def read_only_statement(sql: str) -> str:
    """The query without trailing semicolons, or a NodeInputError when it is not one read-only SELECT/WITH."""
    code = _code_only(sql)
    body = re.sub(r"[\s;]+$", "", code)  # trailing semicolons and comments
    text = sql[: len(body)]
    if not body.strip():
        raise NodeInputError(tr("Query is empty"))
    if ";" in body:
        raise NodeInputError(tr("Query must be a single statement; remove the ';' and everything after it "
                                "(only read queries are allowed)"))
    first = re.match(r"[\s(]*([A-Za-z]+)", body)
    if not first or first.group(1).upper() not in ("SELECT", "WITH"):
        raise NodeInputError(tr("Only read queries are allowed: the query must start with SELECT or WITH, not {word}",
                                word=(sql.split() or ["?"])[0][:20]))
    bad = _WRITE_WORDS.search(body)
    if bad:
        raise NodeInputError(tr("Only read queries are allowed: {word} at position {pos} changes data (if it is a "
                                "column name, put it in double quotes)", word=bad.group(1).upper(),
                                pos=bad.start() + 1))
    return text


# ---- connection ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    """Where to connect: the URL with the resolved password, and what may be shown of it."""

    url: URL
    shown: str  # the URL as logs and messages show it (password masked)
    backend: str
    address: str  # host:port, for "cannot reach" messages
    sqlite_file: Path | None


def parse_url(text: str) -> URL:
    """The settings URL parsed, or a NodeInputError saying what a URL looks like."""
    try:
        return make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        raise NodeInputError(tr("Database URL: not a database URL; expected e.g. "
                                "postgresql+psycopg://user@host:5432/database or sqlite:///data/file.db")) from None


def _target(settings: ReadSQLSettings, project_dir: Path | None, password: str | None) -> _Target:
    url = parse_url(settings.url)
    backend = url.get_backend_name()
    sqlite_file = None
    if backend == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise NodeInputError(tr("A SQLite URL must name a database file, e.g. sqlite:///data/loans.db"))
        sqlite_file = require_file(resolve_project_path(url.database, project_dir))
    if password:
        url = url.set(password=password)
    port = url.port or _DEFAULT_PORTS.get(backend, "")
    return _Target(url=url, shown=url.render_as_string(hide_password=True), backend=backend,
                   address=f"{url.host or 'localhost'}:{port}" if port else str(url.host or "localhost"),
                   sqlite_file=sqlite_file)


def _engine(target: _Target, timeout_s: int) -> sa.Engine:
    """A pool-less engine (one connection, closed at the end); SQLite opens the file read-only and never creates it."""
    if target.sqlite_file is not None:
        import sqlite3

        uri = target.sqlite_file.resolve().as_uri() + "?mode=ro"
        return sa.create_engine("sqlite://", poolclass=NullPool,
                                creator=lambda: sqlite3.connect(uri, uri=True, timeout=timeout_s))
    connect_args: dict[str, Any] = {}
    if target.backend in ("postgresql", "mysql", "mariadb"):
        connect_args["connect_timeout"] = timeout_s
    try:
        engine = sa.create_engine(target.url, poolclass=NullPool, connect_args=connect_args)
    except sa.exc.NoSuchModuleError:
        name = target.url.drivername
        package = _DIALECT_PACKAGES.get(target.backend)
        hint = tr("pip install {package}", package=package) if package else tr(
            "check the spelling, e.g. postgresql+psycopg, mysql+pymysql, mssql+pyodbc, oracle+oracledb, sqlite")
        raise NodeInputError(tr("Unknown database type or driver {name!r} in the URL: {hint}", name=name,
                                hint=hint)) from None
    except ImportError as exc:
        module = (exc.name or "").split(".")[0]
        package = _DRIVER_PACKAGES.get(module, module)
        raise NodeInputError(tr("The database driver for {name!r} is not installed: pip install {package}",
                                name=target.url.drivername, package=package)) from None
    if engine.dialect.is_async:
        raise NodeInputError(tr("{name!r} is an async driver; use a regular one, e.g. postgresql+psycopg",
                                name=target.url.drivername))
    return engine


def _scrub(text: str, password: str | None) -> str:
    """A database message with the password blanked, should a driver ever echo it."""
    text = " ".join(str(text).split())
    return text.replace(password, "***") if password else text


def _connect_error(exc: sa.exc.DBAPIError, target: _Target, password: str | None) -> NodeInputError:
    orig = exc.orig
    msg = _scrub(str(orig) if orig is not None else str(exc), password)
    low = msg.lower()
    code = getattr(orig, "sqlstate", None)
    if code in ("28P01", "28000") or "authentication failed" in low or "access denied" in low or \
            "no password supplied" in low or "login failed" in low:
        return NodeInputError(tr("Authentication failed for user {user!r} at {url}: check the user name and the "
                                 "password ({detail})", user=target.url.username or "", url=target.shown,
                                 detail=msg))
    if code == "3D000" or ("database" in low and "does not exist" in low) or "unknown database" in low:
        return NodeInputError(tr("Database {db!r} does not exist on {address} ({url})", db=target.url.database or "",
                                 address=target.address, url=target.shown))
    if target.sqlite_file is not None:
        return NodeInputError(tr("Cannot open the SQLite file {path}: {detail}", path=target.sqlite_file, detail=msg))
    return NodeInputError(tr("Cannot reach the database server at {address} ({url}). Check the host and port, and "
                             "that the server is running and accepts connections from this computer. Details: "
                             "{detail}", address=target.address, url=target.shown, detail=msg))


def _begin_read_only(conn: sa.Connection, backend: str) -> None:
    """Make the database itself refuse writes for this connection's transaction."""
    if backend == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
    elif backend in _READ_ONLY_TRANSACTION:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")


# ---- errors while reading -------------------------------------------------------------------------------------------

def _position(sql: str, pos: int) -> str:
    line = sql.count("\n", 0, pos - 1) + 1
    col = pos - (sql.rfind("\n", 0, pos - 1) + 1)
    return tr("position {pos} (line {line}, column {col})", pos=pos, line=line, col=col)


def _explain_position(engine: sa.Engine, target: _Target, sql: str) -> int | None:
    """PostgreSQL reports positions in the DECLARE statement that streams the rows; EXPLAIN (which runs nothing)
    gives the error again with a position in the query itself."""
    prefix = "EXPLAIN "
    try:
        with engine.connect() as conn:
            _begin_read_only(conn, target.backend)
            conn.execute(sa.text(prefix + _no_bind_params(sql)))
    except sa.exc.DBAPIError as exc:
        pos = getattr(getattr(exc.orig, "diag", None), "statement_position", None)
        if pos and str(pos).isdigit() and int(pos) > len(prefix):
            return int(pos) - len(prefix)
    return None


def _query_error(exc: sa.exc.DBAPIError, engine: sa.Engine, target: _Target, sql: str | None, what: str,
                 password: str | None) -> NodeInputError:
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    code = getattr(orig, "sqlstate", None)
    detail = _scrub(getattr(diag, "message_primary", None) or str(orig or exc).splitlines()[0], password)
    where = ""
    if sql is not None and getattr(diag, "statement_position", None):
        pos = _explain_position(engine, target, sql)
        where = " " + tr("at {where}", where=_position(sql, pos)) if pos else ""
    low = detail.lower()
    if code == "25006" or "read-only" in low or "readonly" in low:
        return NodeInputError(tr("Only read queries are allowed; the database refused a change: {detail}",
                                 detail=detail))
    if code == "42601" or "syntax error" in low:
        return NodeInputError(tr("Syntax error in {what}{where}: {detail}", what=what, where=where, detail=detail))
    if code == "42P01" or "no such table" in low or ("relation" in low and "does not exist" in low):
        return NodeInputError(tr("Table not found in {url}{where}: {detail}", url=target.shown, where=where,
                                 detail=detail))
    hint = getattr(diag, "message_hint", None)
    return NodeInputError(tr("The database could not run {what}{where}: {detail}", what=what, where=where,
                             detail=detail) + (f" ({_scrub(hint, password)})" if hint else ""))


def _no_bind_params(sql: str) -> str:
    """Escape what SQLAlchemy's text() would take for a ":name" parameter: queries here have no parameters, and the
    database receives the text unchanged (same positions in its error messages)."""
    return _BIND_PARAM.sub(r"\\:\1", sql)


def _table_statement(name: str) -> sa.Select:
    """SELECT * FROM a table named by the user, quoted by SQLAlchemy (never pasted into SQL text)."""
    schema, _, table = name.strip().rpartition(".")
    return sa.select(sa.literal_column("*")).select_from(sa.table(table, schema=schema or None))


def _overrides(table: pl.DataFrame, overrides: dict[str, str]) -> pl.DataFrame:
    unknown = sorted(set(overrides) - set(table.columns))
    if unknown:
        raise NodeInputError(tr("Column types name columns that are not in the result: {cols}. Columns: {have}",
                                cols=", ".join(unknown), have=", ".join(table.columns)))
    for col, kind in overrides.items():
        source = table[col]
        try:
            if source.dtype == pl.String:
                cast = cast_strings(source, kind)
                counted = source.is_not_null() & (source.str.strip_chars() != "")
            else:
                target = pl.String() if kind == "category" else POLARS_TYPES[kind]
                cast = source.cast(target, strict=False)
                cast = cast.cast(pl.Categorical) if kind == "category" else cast
                counted = source.is_not_null()
        except pl.exceptions.PolarsError as exc:
            raise NodeInputError(tr("Column {name!r} ({dtype}) cannot be converted to {kind}: {exc}", name=col,
                                    dtype=source.dtype, kind=kind, exc=str(exc).splitlines()[0])) from None
        failed = (cast.is_null() & counted).arg_true()
        if len(failed):
            row = int(failed[0])
            raise NodeInputError(tr("Row {row}, column {name!r}: cannot read {value!r} as {kind} ({n} values in "
                                    "this column fail). Change the column type or convert it in the query.",
                                    row=row + 1, name=col, value=source[row], kind=kind, n=len(failed)))
        table = table.with_columns(cast.alias(col))
    return table


def _storable(table: pl.DataFrame) -> pl.DataFrame:
    """Columns of Python objects (UUID, custom types) as text, so the table can be saved and cached."""
    objects = [c for c, t in table.schema.items() if t == pl.Object]
    if objects:
        table = table.with_columns(pl.Series(c, [None if v is None else str(v) for v in table[c].to_list()],
                                             dtype=pl.String) for c in objects)  # no vectorised cast exists
    return table


# ---- the node -------------------------------------------------------------------------------------------------------

@node("io.read_sql", version=1, title=N_("Read SQL"), category=N_("Data sources"), icon="database")
class ReadSQL(Node):
    """Read a query or a table from a database (PostgreSQL, MySQL, SQL Server, Oracle, SQLite…), read-only."""

    outputs: ClassVar[dict[str, Any]] = {"table": Table}
    Settings = ReadSQLSettings

    @classmethod
    def scrub_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """A password pasted inside the URL (or typed into the password setting) moves into this computer's vault;
        the settings keep the URL without it and the vault reference, so no project file ever holds it."""
        url, password = settings.get("url"), settings.get("password")
        out = dict(settings)
        if isinstance(password, str) and password and not secrets.is_reference(password):
            out["password"] = secrets.put_secret(password, label="Read SQL")
        if isinstance(url, str) and _url_has_password(url):
            try:
                parsed = make_url(url)
            except (sa.exc.ArgumentError, ValueError):
                out["url"] = _HIDDEN_URL  # unparseable: nothing safe to keep; validation asks for a clean URL
                return out
            if parsed.password is None or "@" in (parsed.host or "") or parsed.query:
                out["url"] = _HIDDEN_URL
                return out
            out["password"] = secrets.put_secret(str(parsed.password), label="Read SQL")
            bare = URL.create(parsed.drivername, username=parsed.username, host=parsed.host, port=parsed.port,
                              database=parsed.database, query=parsed.query)  # URL.set(password=None) keeps it
            out["url"] = bare.render_as_string(hide_password=False)
        return out

    @classmethod
    def preview(cls, settings: ReadSQLSettings, ctx: Context, rows: int) -> pl.DataFrame:
        """The first rows: the same read with a row limit (pushed into the SQL for a table, applied to the cursor
        for a query)."""
        limited = settings.model_copy(update={"limit": min(settings.limit or rows, rows)})
        return cls().compute({}, limited, ctx)["table"]

    @classmethod
    def fingerprint(cls, settings: ReadSQLSettings, ctx: FingerprintContext) -> str:
        """A SQLite file's content hash; for a database server, a value that changes on every run.

        A server database changes under us without any file to watch, so its result is never reused from the cache:
        the node re-reads it each run (use Write Parquet after it to freeze a snapshot).
        """
        url = parse_url(settings.url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            path = require_file(ctx.resolve_path(url.database))
            wal = path.with_name(path.name + "-wal")  # committed rows not yet copied into the main file
            return sha256_text(ctx.files.hash(path), ctx.files.hash(wal) if wal.exists() else "")
        return f"live:{time.time_ns()}"

    def compute(self, inputs: dict, settings: ReadSQLSettings, ctx: Context) -> dict:
        password = None
        if settings.password:
            try:
                password = secrets.get_secret(settings.password)
            except LedgerflowError as exc:
                raise NodeInputError(tr("Password: {problem}", problem=str(exc))) from None
        if bool(settings.query.strip()) == bool(settings.table.strip()):
            raise NodeInputError(tr("Set either Query or Table (exactly one of them)"))
        target = _target(settings, ctx.project_dir, password)
        if settings.query.strip():
            sql: str | None = read_only_statement(settings.query)
            statement: Any = sa.text(_no_bind_params(sql))
            what = tr("the query")
        else:
            sql = None
            statement = _table_statement(settings.table)
            if settings.limit:
                statement = statement.limit(settings.limit)
            what = tr("the read of table {table!r}", table=settings.table.strip())
        engine = _engine(target, settings.timeout_s)
        ctx.log.info("connecting to %s", target.shown)
        if target.backend != "sqlite" and target.backend not in _READ_ONLY_TRANSACTION:
            ctx.log.warning(tr("{db} has no read-only transaction here; only the query check guards against "
                               "writes. Use a database account that can only read.", db=target.backend))
        try:
            table = self._read(engine, target, statement, sql, what, settings.limit, password, ctx)
        finally:
            engine.dispose()
        table = _overrides(_storable(table), settings.column_types)
        ctx.log.info("read %d rows × %d columns from %s", table.height, table.width, target.shown)
        ctx.progress(1.0)
        return {"table": table}

    @staticmethod
    def _read(engine: sa.Engine, target: _Target, statement: Any, sql: str | None, what: str, limit: int | None,
              password: str | None, ctx: Context) -> pl.DataFrame:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            raise _connect_error(exc, target, password) from None
        frames: list[pl.DataFrame] = []
        rows = 0
        try:
            with conn:
                _begin_read_only(conn, target.backend)
                streaming = conn.execution_options(stream_results=True, max_row_buffer=BATCH_ROWS)
                batches = pl.read_database(statement, streaming, iter_batches=True, batch_size=BATCH_ROWS,
                                           infer_schema_length=None)
                for batch in batches:
                    frames.append(batch)
                    rows += batch.height
                    ctx.check_cancelled()
                    ctx.progress(min(rows / limit, 1.0) if limit else None, tr("{n} rows read", n=rows))
                    if limit and rows >= limit:
                        break
                if not frames:  # no rows, so no batch told the column names: ask again without streaming
                    frames.append(pl.read_database(statement, conn, infer_schema_length=None).head(0))
                conn.rollback()  # nothing to keep: the transaction was read-only
        except sa.exc.DBAPIError as exc:
            raise _query_error(exc, engine, target, sql, what, password) from None
        except sa.exc.StatementError as exc:  # e.g. ":name" in the text is taken for a parameter
            raise NodeInputError(tr("The database could not run {what}: {detail}", what=what,
                                    detail=_scrub(str(exc.orig or exc).splitlines()[0], password))) from None
        except pl.exceptions.PolarsError as exc:
            raise NodeInputError(tr("The result of {what} cannot be made into a table: {detail}", what=what,
                                    detail=str(exc).splitlines()[0])) from None
        if not frames:
            return pl.DataFrame()
        table = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
        return table.head(limit) if limit else table
