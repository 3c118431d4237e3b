"""Feature store nodes: register a table as a feature view, materialize it online, and build a training set.

The store lives outside the project (shared across projects, by default in the user's Ledgerflow home), so
Get features declares a fingerprint of the store's registry: the engine cache re-runs it when the store changes.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl
from pydantic import Field, field_validator

from engine.errors import NodeInputError
from engine.featurestore import FeatureStore, FeatureStoreError, FeatureView
from engine.featurestore.offline import part_paths
from engine.featurestore.online import PASSWORD_ENV
from engine.featurestore.registry import Registry, validate_view_name
from engine.fileio import canonical_json, sha256_text
from engine.i18n import N_, tr
from engine.ports import Report, ReportPort, Table
from engine.sdk import Context, FingerprintContext, Node, NodeSettings, PortSpec, node
from nodes.columns import require_columns

CATEGORY = N_("Feature store")


class StoreSettings(NodeSettings):
    store: str = Field("", title=N_("Feature store folder"), description=N_(
        "Empty: the shared store in your Ledgerflow folder; a relative path is inside the project"),
        json_schema_extra={"widget": "folder"})
    online: str = Field("", title=N_("Online store"), description=N_(
        "Empty: SQLite in the store folder; or redis://host:port/db (password in LEDGERFLOW_REDIS_PASSWORD)"))

    @field_validator("online")
    @classmethod
    def _no_password(cls, value: str) -> str:
        """Project files are shared and versioned: a password typed here would be saved in them."""
        value = value.strip()
        if value in ("", "sqlite"):
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(tr("Online store must be empty (SQLite) or a redis:// URL"))
        if parts.password:
            raise ValueError(tr("Do not put the Redis password in the URL (it would be saved in the project file); "
                                "set the environment variable {env} instead", env=PASSWORD_ENV))
        return value


def _root(settings: StoreSettings, ctx: Context | FingerprintContext) -> Path:
    return ctx.resolve_path(settings.store) if settings.store.strip() else FeatureStore.default_root()


@contextmanager
def _open(settings: StoreSettings, ctx: Context) -> Iterator[FeatureStore]:
    """The store, closed afterwards; its errors become the node's input errors (they say what to fix)."""
    store = FeatureStore(_root(settings, ctx), online=settings.online or None)
    try:
        yield store
    except FeatureStoreError as exc:
        raise NodeInputError(str(exc)) from None
    finally:
        store.close()


def _registry_hash(root: Path, names: list[str] | None) -> str:
    """Hash of the named views' registry entries (all views when None) and the part files present on disk."""
    try:
        views = Registry(root).views()
    except FeatureStoreError as exc:
        return sha256_text("unreadable", str(exc))
    entries = {n: views.get(n) for n in (names if names is not None else sorted(views))}
    parts = []
    for name, entry in entries.items():
        if entry is not None:
            try:
                parts += [f"{name}/{p.name}:{p.is_file()}" for p in part_paths(root, entry)]
            except FeatureStoreError:
                parts.append(f"{name}/malformed")
    return sha256_text(str(root), canonical_json(entries), *parts)


# ---- Register ---------------------------------------------------------------------------------------------------
class RegisterSettings(StoreSettings):
    name: str = Field(min_length=1, max_length=64, title=N_("Feature view name"), description=N_(
        "Letters, digits and underscores (Chinese characters are fine)"))
    entity: str = Field(min_length=1, title=N_("Entity key column"), description=N_("e.g. customer_id"),
                        json_schema_extra={"widget": "column"})
    timestamp: str = Field(min_length=1, title=N_("Event time column"), description=N_(
        "When each value became known (a date or datetime)"), json_schema_extra={"widget": "column"})
    features: list[str] = Field(default_factory=list, title=N_("Feature columns"), description=N_(
        "Empty: every column except the entity and event time"))
    ttl_days: float | None = Field(None, gt=0, title=N_("Values expire after (days)"), description=N_(
        "A value older than this at the label time counts as missing; empty: never"))
    description: str = Field("", title=N_("Description"))

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        try:
            return validate_view_name(value)
        except FeatureStoreError as exc:
            raise ValueError(str(exc)) from None


@node("featurestore.register", version=1, title=N_("Register feature view"), category=CATEGORY, icon="featurestore")
class RegisterFeatureView(Node):
    """Store a table's features by entity and event time, so training sets and lookups can reuse them."""

    inputs = {"table": Table}
    outputs = {"report": ReportPort}
    Settings = RegisterSettings

    @classmethod
    def receipt(cls, settings: RegisterSettings, ctx: FingerprintContext) -> str | None:
        """The view's storage id: changes (so the node re-runs) only when the view is gone or recreated."""
        try:
            views = Registry(_root(settings, ctx)).views()
        except FeatureStoreError:
            return None
        entry = views.get(settings.name)
        return sha256_text(entry["id"]) if entry else None

    def compute(self, inputs: dict, settings: RegisterSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        require_columns(table, [settings.entity], tr("Entity key column"))
        require_columns(table, [settings.timestamp], tr("Event time column"))
        require_columns(table, settings.features, tr("Feature columns"))
        lineage = {"project_dir": str(ctx.project_dir) if ctx.project_dir else None, "node_id": ctx.node_id,
                   "node_title": ctx.title}
        view = FeatureView(name=settings.name, entity=settings.entity, timestamp=settings.timestamp,
                           features=tuple(settings.features), ttl_days=settings.ttl_days,
                           description=settings.description, lineage=lineage)
        with _open(settings, ctx) as store:
            stored = store.register(view, table)
            ctx.log.info("registered %d rows as feature view %s version %d in %s", table.height, stored.name,
                         stored.version, store.root)
            return {"report": _view_report(stored, store.offline(stored.name).collect())}


def _view_report(view: FeatureView, data: pl.DataFrame) -> Report:
    ts = data[view.timestamp]
    report = Report(title=tr("Feature view {name}", name=view.name), kind="featurestore")
    report.metrics = {
        tr("version"): view.version, tr("rows"): data.height, tr("entities"): data[view.entity].n_unique(),
        tr("first event time"): str(ts.min()) if data.height else "", tr("last event time"):
        str(ts.max()) if data.height else "", tr("features"): len(view.features),
        tr("expires after (days)"): view.ttl_days if view.ttl_days is not None else tr("never"),
    }
    report.tables[tr("Features")] = pl.DataFrame({
        tr("feature"): list(view.features), tr("type"): [view.dtypes.get(f, "") for f in view.features],
        tr("missing"): [int(data[f].null_count()) for f in view.features]})
    report.tables[tr("Lineage")] = pl.DataFrame({tr("item"): list(view.lineage),
                                                 tr("value"): [str(v) for v in view.lineage.values()]})
    if view.description:
        report.notes.append(view.description)
    return report


# ---- Materialize ------------------------------------------------------------------------------------------------
class MaterializeSettings(StoreSettings):
    views: list[str] = Field(default_factory=list, title=N_("Feature views"), description=N_("Empty: all views"))
    until: str = Field("", title=N_("As of"), description=N_(
        "ISO date/time, e.g. 2024-06-30T23:59:59; empty: now. Values with a later event time are left out"))

    @field_validator("until")
    @classmethod
    def _iso(cls, value: str) -> str:
        value = value.strip()
        if value:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(tr("As of: {value!r} is not an ISO date/time like 2024-06-30T23:59:59",
                                    value=value)) from None
        return value


@node("featurestore.materialize", version=1, title=N_("Materialize"), category=CATEGORY, icon="featurestore")
class Materialize(Node):
    """Copy the latest value per entity of feature views into the online store, for lookups at serving time."""

    inputs = {"report": PortSpec("report", ReportPort, required=False,
                                 description=N_("Optional: connect Register here to run after it"))}
    outputs = {"report": ReportPort}
    Settings = MaterializeSettings

    @classmethod
    def fingerprint(cls, settings: MaterializeSettings, ctx: FingerprintContext) -> str:
        return _registry_hash(_root(settings, ctx), settings.views or None)

    def compute(self, inputs: dict, settings: MaterializeSettings, ctx: Context) -> dict:
        until = datetime.fromisoformat(settings.until) if settings.until else None
        with _open(settings, ctx) as store:
            written = store.materialize(settings.views or None, until)
        ctx.log.info("materialized %s", ", ".join(f"{k}: {v}" for k, v in written.items()))
        report = Report(title=tr("Materialized feature views"), kind="featurestore")
        report.metrics = {tr("views"): len(written), tr("entities"): sum(written.values()),
                          tr("as of"): settings.until or tr("now")}
        report.tables[tr("Entities written")] = pl.DataFrame(
            {tr("feature view"): list(written), tr("entities"): list(written.values())},
            schema={tr("feature view"): pl.String, tr("entities"): pl.Int64})
        return {"report": report}


# ---- Get features -----------------------------------------------------------------------------------------------
class GetFeaturesSettings(StoreSettings):
    features: list[str] = Field(min_length=1, title=N_("Features"), description=N_(
        "'view' for all of a view's features or 'view:feature' for one"))
    timestamp: str = Field(min_length=1, title=N_("Label time column"), description=N_(
        "Each row gets the feature values known at this time, never later ones"),
        json_schema_extra={"widget": "column"})


@node("featurestore.get_features", version=1, title=N_("Get features"), category=CATEGORY, icon="featurestore")
class GetFeatures(Node):
    """Add point-in-time correct features to a table of entity keys and label times (no leakage from the future)."""

    inputs = {"entities": Table}
    outputs = {"table": Table}
    Settings = GetFeaturesSettings

    @classmethod
    def fingerprint(cls, settings: GetFeaturesSettings, ctx: FingerprintContext) -> str:
        names = sorted({spec.partition(":")[0] for spec in settings.features})
        return _registry_hash(_root(settings, ctx), names)

    def compute(self, inputs: dict, settings: GetFeaturesSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["entities"]
        require_columns(table, [settings.timestamp], tr("Label time column"))
        with _open(settings, ctx) as store:
            out = store.historical_features(table, settings.features, timestamp=settings.timestamp)
        added = out.width - table.width
        ctx.log.info("added %d feature columns to %d rows", added, out.height)
        return {"table": out}
