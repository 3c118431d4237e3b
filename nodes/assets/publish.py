"""Publish: a workflow output becomes an immutable, signed asset version in the asset center.

What can be published: a table (a dataset or a feature view, stored as Parquet), a model package (the report of an
Export ONNX node: the package folder is verified, then archived deterministically) or any other report (its HTML).
A bare Model is refused: its native format can run code when loaded, so only a verified ONNX package is shared.

Personal data is never published in clear: columns a connected Profile node flagged C2/C3, and columns this node's
own check (the same detector) finds, go into metadata["sensitivity"], and the asset center encrypts such datasets.

Publishing the same bytes again creates no version: the node compares with the latest version's content hash first
and reports "unchanged". Its receipt is that latest version, so the cache re-runs the node only when the asset
center's state for this asset changed (a new version from elsewhere, a different store).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import Field, field_validator

from assetcenter.connection import Assets, connect, latest_version, load_settings
from assetcenter.service import NAME_RE, PROJECT_RE, SENSITIVE_CLASSES, TAG_RE
from engine.errors import ArtifactIntegrityError, LedgerflowError, NodeInputError
from engine.fileio import sha256_file, sha256_text
from engine.i18n import N_, tr
from engine.ports import Model, Report, ReportPort, Table
from engine.sdk import Context, FingerprintContext, Node, NodeSettings, PortSpec, node
from nodes.assets.archive import pack_folder

Kind = Literal["auto", "dataset", "feature_view", "model_package", "report"]
_TABLE_KINDS = ("dataset", "feature_view")
_REPORT_KINDS = ("model_package", "report")


class PublishSettings(NodeSettings):
    project: str = Field("default", title=N_("Project"), description=N_(
        "The asset center project to publish into (your roles are granted per project)"))
    name: str = Field(min_length=1, title=N_("Asset name"), description=N_(
        "The asset's name in its project; each publication with new content becomes its next version"))
    description: str = Field("", max_length=4000, title=N_("Description"),
                             description=N_("What this asset is, for the people who will reuse it"))
    tags: list[str] = Field(default_factory=list, title=N_("Tags"),
                            description=N_("Labels to search by, e.g. retail, pd-model, 2024Q4"))
    kind: Kind = Field("auto", title=N_("Asset kind"), description=N_(
        "auto: a table is a dataset, an Export ONNX report a model package, any other report a report; a table "
        "may also be published as a feature view"))
    sensitive: bool = Field(False, title=N_("Always encrypt"), description=N_(
        "Encrypt at rest even when no column is flagged as personal data"))

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not PROJECT_RE.match(value):
            raise ValueError(tr("use letters, digits, '.', '-' and '_' (up to 128, starting with a letter or digit)"))
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(tr("use letters, digits, spaces and . _ ( ) - (up to 200, starting with a letter or "
                                "digit)"))
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if not TAG_RE.match(t)]
        if bad:
            raise ValueError(tr("tag {tag!r}: use letters, digits and . : / - _ (up to 64)", tag=bad[0][:64]))
        return value


def _input_error(exc: LedgerflowError) -> NodeInputError:
    return NodeInputError(tr("Asset center: {reason}", reason=str(exc)))


def sensitivity_from_profile(report: Report, table: pl.DataFrame) -> dict[str, str]:
    """column -> C2/C3 for the table's columns that a Profile report's alerts flag as personal data."""
    if report.kind != "profile":
        raise NodeInputError(tr("The 'profile' input takes the report of a Profile node; this report is a "
                                "{kind!r} report", kind=report.kind))
    flagged: dict[str, str] = {}
    for frame in report.tables.values():
        if {"column", "sensitivity"} <= set(frame.columns):
            for column, cls in frame.select("column", "sensitivity").iter_rows():
                if cls in SENSITIVE_CLASSES and column in table.columns:
                    flagged[column] = max(flagged.get(column, cls), cls)  # C3 over C2
    return flagged


def detected_sensitivity(table: pl.DataFrame, seed: int) -> dict[str, str]:
    """The Profile node's own personal-data detector, run here too, so an unprofiled table is not published in
    clear by mistake."""
    from nodes.explore.pii import detect_pii

    return {f.column: f.sensitivity for f in detect_pii(table, seed=seed)}


def _lineage_links(ctx: Context, ports: dict[str, str]) -> list[tuple[str, str, str]]:
    """(relation, target kind, target) links from this run's lineage: which run published, and per input the
    artifact digest and the run that produced it."""
    run = ctx.lineage or {}
    links: list[tuple[str, str, str]] = []
    if run.get("run_id"):
        links.append(("published_by", "run", str(run["run_id"])))
    if ctx.project_dir is not None:
        links.append(("workflow", "workflow", ctx.project_dir.name[:128]))
    for port, relation in ports.items():
        entry = (run.get("inputs") or {}).get(port) or {}
        if entry.get("digest"):
            links.append((relation, "artifact", str(entry["digest"])))
        if entry.get("run_id"):
            links.append((f"{relation}_run", "run", str(entry["run_id"])))
    return links


def _package_links(manifest: dict[str, Any]) -> list[tuple[str, str, str]]:
    lineage = manifest.get("lineage") or {}
    pairs = (("trained_on", "dataset", "training_data_fingerprint"), ("trained_by", "run", "training_run_id"),
             ("exported_by", "run", "export_run_id"), ("model", "artifact", "model_artifact"),
             ("holdout", "dataset", "holdout_fingerprint"))
    return [(relation, kind, str(lineage[key])) for relation, kind, key in pairs if lineage.get(key)]


def _write_table(table: pl.DataFrame, path: Path) -> None:
    import pyarrow.parquet as pq

    # fixed writer options: the same table always gives the same bytes, so re-publishing it is "unchanged"
    pq.write_table(table.to_arrow(), path, compression="zstd", write_statistics=True)


@node("assets.publish", version=1, title=N_("Publish asset"), category=N_("Export"), icon="file-export", heavy=True)
class PublishAsset(Node):
    """Publish a table, a model package (Export ONNX report) or a report to the asset center as a signed version."""

    inputs: ClassVar[dict[str, Any]] = {
        "table": PortSpec("table", Table, required=False, description=N_(
            "A table: published as a dataset (Parquet), or a feature view")),
        "report": PortSpec("report", ReportPort, required=False, description=N_(
            "The report of an Export ONNX node (publishes its model package), or any report (published as HTML)")),
        "model": PortSpec("model", Model, required=False, description=N_(
            "Not published directly: connect the model to Export ONNX and its report here")),
        "profile": PortSpec("profile", ReportPort, required=False, description=N_(
            "Optional: the Profile report of the table; columns it flags C2/C3 make the dataset encrypted")),
    }
    outputs: ClassVar[dict[str, Any]] = {"report": ReportPort}
    Settings = PublishSettings

    @classmethod
    def receipt(cls, settings: PublishSettings, ctx: FingerprintContext) -> str | None:
        """The asset's latest version in the embedded asset center: the node re-runs when that changes. A shared
        server is not contacted here: receipts are checked whenever cache states are shown (opening a project, on
        the GUI thread), and a slow or unreachable server must not stall that; the connection itself is the receipt
        then, so switching servers re-runs the node."""
        configured = load_settings()
        if configured.url:
            return sha256_text("server", configured.url)
        try:
            with connect(configured) as assets:
                latest = latest_version(assets, settings.project, settings.name)
                where = assets.describe()
        except Exception:  # noqa: BLE001 - unreachable or refused: re-run, and the run says why
            return None
        if latest is None:
            return None
        return sha256_text(where, latest["ref"], latest["content_sha256"])

    def compute(self, inputs: dict, settings: PublishSettings, ctx: Context) -> dict:
        connected = [p for p in ("table", "report", "model") if inputs.get(p) is not None]
        if "model" in connected:
            raise NodeInputError(tr("Publish does not take a bare model: its native format may run code when "
                                    "loaded. Connect the model to an Export ONNX node and that node's report to "
                                    "Publish's 'report' input to publish a verified model package."))
        if len(connected) != 1:
            raise NodeInputError(tr("Connect exactly one of the inputs 'table' or 'report' to Publish (connected: "
                                    "{ports})", ports=", ".join(connected) or tr("none")))
        if inputs.get("profile") is not None and "table" not in connected:
            raise NodeInputError(tr("The 'profile' input describes a table: connect the table too"))
        work = Path(tempfile.mkdtemp(prefix="publish-", dir=ctx.workdir))
        metadata: dict[str, Any] = {"producer": "ledgerflow", "node": ctx.title}
        try:  # the file to publish may hold personal data in clear: it never outlives the node
            if "table" in connected:
                kind, path, links, sensitivity = self._table(inputs, settings, ctx, work, metadata)
            else:
                kind, path, links = self._report(inputs["report"], settings, ctx, work, metadata)
                sensitivity = {}
            ctx.check_cancelled()
            content_sha = sha256_file(path)
            ctx.progress(0.5, tr("contacting the asset center"))
            try:
                with connect() as assets:
                    info, status = self._publish(assets, path, content_sha, kind, settings, metadata, links, ctx)
                    where = assets.describe()
            except LedgerflowError as exc:
                raise _input_error(exc) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if status == "unchanged":  # the version that holds this content, with the lineage it was published with
            links = [(link["relation"], link["kind"], link["target"]) for link in info.get("lineage") or []]
        ctx.progress(1.0)
        return {"report": _report(info, status, where, sensitivity, links)}

    # ---- what is published ----------------------------------------------------------------------------------------
    def _table(self, inputs: dict, settings: PublishSettings, ctx: Context, work: Path,
               metadata: dict[str, Any]) -> tuple[str, Path, list, dict[str, str]]:
        table: pl.DataFrame = inputs["table"]
        kind = "dataset" if settings.kind == "auto" else settings.kind
        if kind not in _TABLE_KINDS:
            raise NodeInputError(tr("A table is published as a dataset or a feature view, not as a {kind}",
                                    kind=kind))
        ctx.progress(0.1, tr("checking {n} columns for personal data", n=table.width))
        sensitivity = detected_sensitivity(table, ctx.seed)
        if inputs.get("profile") is not None:
            for column, cls in sensitivity_from_profile(inputs["profile"], table).items():
                sensitivity[column] = max(sensitivity.get(column, cls), cls)
        if sensitivity:
            metadata["sensitivity"] = dict(sorted(sensitivity.items()))
        metadata.update({"format": "parquet", "rows": table.height,
                         "columns": [{"name": c, "type": str(t)} for c, t in table.schema.items()]})
        path = work / "table.parquet"
        ctx.progress(0.2, tr("writing {n:,} rows as Parquet", n=table.height))
        _write_table(table, path)
        ports = {"table": "derived_from"}
        if inputs.get("profile") is not None:
            ports["profile"] = "profiled_by"
        return kind, path, _lineage_links(ctx, ports), sensitivity

    def _report(self, report: Report, settings: PublishSettings, ctx: Context, work: Path,
                metadata: dict[str, Any]) -> tuple[str, Path, list]:
        package = report.metrics.get("package") if report.kind in ("export", "asset") else None
        kind = settings.kind if settings.kind != "auto" else ("model_package" if package else "report")
        if kind not in _REPORT_KINDS:
            raise NodeInputError(tr("A report is published as a model package or a report, not as a {kind}",
                                    kind=kind))
        if kind == "report":
            path = work / "report.html"
            path.write_text(report.to_html(), "utf-8")
            metadata.update({"format": "html", "title": report.title, "report_kind": report.kind})
            return kind, path, _lineage_links(ctx, {"report": "derived_from"})
        if not package:
            raise NodeInputError(tr("A model package is published from the report of an Export ONNX node; this is "
                                    "a {kind!r} report", kind=report.kind))
        from nodes.export.package import verify_package

        folder = Path(package)
        ctx.progress(0.1, tr("verifying the model package {path}", path=folder))
        try:
            manifest = verify_package(folder)
        except ArtifactIntegrityError as exc:
            raise NodeInputError(tr("The model package was not published: {reason}", reason=exc)) from None
        path = work / f"{folder.name}.tar"
        pack_folder(folder, path)
        model = manifest.get("model") or {}
        metadata.update({"format": "ledgerflow-model-package+tar", "package_name": manifest.get("package_name"),
                         "label": model.get("label"), "problem_type": model.get("problem_type"),
                         "best_model": model.get("best_model"), "metrics": manifest.get("metrics") or {},
                         "features": manifest.get("features") or [], "parity": manifest.get("parity"),
                         "package_lineage": manifest.get("lineage") or {}})
        return kind, path, _lineage_links(ctx, {"report": "exported_by_node"}) + _package_links(manifest)

    def _publish(self, assets: Assets, path: Path, content_sha: str, kind: str, settings: PublishSettings,
                 metadata: dict[str, Any], links: list, ctx: Context) -> tuple[dict, str]:
        latest = latest_version(assets, settings.project, settings.name)
        encrypt = settings.sensitive or "sensitivity" in metadata
        # the same bytes, unless they must now be encrypted and the latest version is not
        if latest is not None and latest["content_sha256"] == content_sha and (latest["sensitive"] or not encrypt):
            ctx.log.info(tr("{ref} already holds this content; nothing was published", ref=latest["ref"]))
            return latest, "unchanged"
        ctx.progress(0.6, tr("publishing {name}", name=settings.name))
        info = assets.publish_file(path, project=settings.project, kind=kind, name=settings.name,
                                   description=settings.description, tags=settings.tags, metadata=metadata,
                                   lineage=links, sensitive=settings.sensitive)
        if info["content_sha256"] != content_sha:  # the center hashed other bytes than we wrote: never trust it
            raise ArtifactIntegrityError(tr("The asset center recorded {ref} with another SHA-256 than the file "
                                            "sent", ref=info["ref"]))
        ctx.log.info(tr("published {ref}", ref=info["ref"]))
        return info, "published"


def _report(info: dict, status: str, where: str, sensitivity: dict[str, str], links: list) -> Report:
    report = Report(title=tr("Asset {ref}", ref=info["ref"]), kind="asset")
    report.metrics = {"ref": info["ref"], "version": info["version"], "kind": info["kind"],
                      "content_sha256": info["content_sha256"], "size": info["size"],
                      "sensitive": bool(info["sensitive"]), "stage": info.get("stage") or "",
                      "status": status, "asset_center": where}
    if status == "unchanged":
        report.notes.append(tr("The content is the same as the latest version {ref}, so no new version was "
                               "created.", ref=info["ref"]))
    else:
        report.notes.append(tr("Published {ref} to the {where}. The version is immutable and its manifest is "
                               "signed; use it elsewhere with an Asset node set to {ref}.", ref=info["ref"],
                               where=where))
    if info["sensitive"]:
        report.notes.append(tr("Encrypted at rest: columns flagged as personal data: {cols}.",
                               cols=", ".join(f"{c} ({k})" for c, k in sorted(sensitivity.items())) or tr("none "
                                                                                                       "(forced)")))
    if info.get("stage"):
        report.notes.append(tr("Stage: {stage}. An approver other than the author promotes it (Assets panel ▸ "
                               "Promote…).", stage=info["stage"]))
    report.tables[tr("Lineage")] = pl.DataFrame(
        {"relation": [r for r, _, _ in links], "kind": [k for _, k, _ in links],
         "target": [t for _, _, t in links]}, schema={"relation": pl.String, "kind": pl.String, "target": pl.String})
    return report
