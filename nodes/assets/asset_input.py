"""Asset: one pinned asset version as a workflow input, checked before anything reads it.

The reference must name a version (project/name@3): a workflow that silently follows "the latest" would give
different results on different days. The asset center checks the version's signed manifest and the content's
SHA-256 as the bytes arrive (the client checks them again against the server's pinned key), and a model package
is unpacked without trusting its archive and re-verified file by file before its folder is handed on.

The cache fingerprint is the reference and the version's content hash, so the node recomputes if the asset center
ever answers with other content for the same reference (a different store, a restored backup).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
from pydantic import Field

from assetcenter.connection import Assets, connect, latest_version, load_settings
from assetcenter.home import default_home
from assetcenter.service import parse_ref
from engine.errors import ArtifactIntegrityError, LedgerflowError, NodeInputError
from engine.fileio import sha256_text
from engine.i18n import N_, tr
from engine.ports import Report, ReportPort, Table
from engine.sdk import Context, FingerprintContext, Node, NodeSettings, node
from nodes.assets.archive import unpack_safely


class AssetSettings(NodeSettings):
    ref: str = Field(min_length=1, title=N_("Asset version"), description=N_(
        "project/name@version, e.g. default/loans@3; the version is required so the workflow is reproducible"))


def pinned_ref(ref: str, assets: Assets | None = None) -> tuple[str, str, int]:
    """(project, name, number) of a reference that names a version; a clear NodeInputError otherwise (naming the
    latest version when `assets` can tell it)."""
    try:
        project, name, number = parse_ref(ref.strip())
    except LedgerflowError as exc:
        raise NodeInputError(tr("Asset version {ref!r}: {reason}", ref=ref[:120], reason=exc)) from None
    if number is None:
        latest = None
        if assets is not None:
            try:
                latest = latest_version(assets, project, name)
            except LedgerflowError:
                latest = None
        hint = tr(" The latest is {ref}.", ref=latest["ref"]) if latest else ""
        raise NodeInputError(tr("Asset version {ref!r} names no version: write project/name@version so the "
                                "workflow always reads the same data.{hint}", ref=ref[:120], hint=hint))
    return project, name, number


def _version_info(assets: Assets, ref: str) -> dict:
    project, name, number = pinned_ref(ref, assets)
    try:
        return assets.info(f"{project}/{name}@{number}")
    except LedgerflowError as exc:
        try:
            latest = latest_version(assets, project, name)
        except LedgerflowError:
            latest = None
        hint = tr(" The latest is {ref}.", ref=latest["ref"]) if latest else ""
        raise NodeInputError(tr("Asset version {ref}: {reason}.{hint}", ref=ref, reason=str(exc).rstrip("."),
                                hint=hint)) from None


@node("assets.asset", version=1, title=N_("Asset"), category=N_("Data sources"), icon="database", heavy=True)
class AssetInput(Node):
    """Use a pinned asset center version (dataset or model package) as input, its signature and hash verified."""

    inputs: ClassVar[dict[str, Any]] = {}
    outputs: ClassVar[dict[str, Any]] = {"table": Table, "report": ReportPort}
    Settings = AssetSettings

    @classmethod
    def fingerprint(cls, settings: AssetSettings, ctx: FingerprintContext) -> str:
        """A version never changes, so the pinned reference and the asset center it comes from identify the content.
        Nothing is contacted here: fingerprints are computed whenever cache states are shown (opening a project,
        on the GUI thread), and a slow or unreachable server must not stall that. The signature and the hash are
        checked when the node runs."""
        project, name, number = pinned_ref(settings.ref)
        where = load_settings()
        return sha256_text(where.url or str(where.home or default_home()), f"{project}/{name}@{number}")

    def compute(self, inputs: dict, settings: AssetSettings, ctx: Context) -> dict:
        work = Path(tempfile.mkdtemp(prefix="asset-", dir=ctx.workdir))
        try:  # the downloaded (decrypted) bytes never outlive the node; the outputs carry what is needed
            return self._load(settings, ctx, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _load(self, settings: AssetSettings, ctx: Context, work: Path) -> dict:
        try:
            with connect() as assets:
                info = _version_info(assets, settings.ref)
                ctx.progress(0.1, tr("downloading {ref}", ref=info["ref"]))
                blob = work / "content"
                try:
                    info = assets.fetch(info["ref"], blob)  # signature, manifest and SHA-256 checked on the way
                except LedgerflowError as exc:
                    raise NodeInputError(tr("Asset {ref} cannot be used: {reason}", ref=info["ref"],
                                            reason=exc)) from None
                history = _history(assets, info)
        except NodeInputError:
            raise
        except LedgerflowError as exc:
            raise NodeInputError(tr("Asset center: {reason}", reason=exc)) from None
        ctx.check_cancelled()
        report = _describe(info, history)
        if info["kind"] in ("dataset", "feature_view"):
            try:
                table = pl.read_parquet(blob)
            except Exception as exc:  # noqa: BLE001 - a verified blob that is not Parquet: published wrong
                raise NodeInputError(tr("Asset {ref} is a {kind} but not a Parquet table: {reason}",
                                        ref=info["ref"], kind=info["kind"], reason=exc)) from None
            report.metrics.update({"rows": table.height, "columns": table.width})
        elif info["kind"] == "model_package":
            table = self._package(info, blob, ctx, report)
        else:
            kept = ctx.workdir / f"asset-{info['content_sha256'][:16]}"
            blob.replace(kept)
            report.metrics["file"] = str(kept)
            table = pl.DataFrame()
        ctx.progress(1.0)
        return {"table": table, "report": report}

    def _package(self, info: dict, blob: Path, ctx: Context, report: Report) -> pl.DataFrame:
        """Unpack into the node's workdir safely, verify every file, and describe the package's inputs."""
        from nodes.export.package import verify_package

        folder = ctx.workdir / f"package-{info['content_sha256'][:16]}"
        if folder.exists():  # an earlier run's copy: replaced, then verified again below
            shutil.rmtree(folder)
        try:
            unpack_safely(blob, folder)
            manifest = verify_package(folder)
        except ArtifactIntegrityError as exc:
            raise NodeInputError(tr("Asset {ref} is not a usable model package: {reason}", ref=info["ref"],
                                    reason=exc)) from None
        report.metrics["package"] = str(folder)
        report.notes.append(tr("Model package unpacked to {path} and verified file by file.", path=folder))
        rows = manifest.get("inputs") or []
        return pl.DataFrame({"column": [str(r.get("name")) for r in rows], "kind": [str(r.get("kind")) for r in rows],
                             "type": [str(r.get("type")) for r in rows]},
                            schema={"column": pl.String, "kind": pl.String, "type": pl.String})


def _history(assets: Assets, info: dict) -> list[dict]:
    if info["kind"] != "model_package":
        return []
    try:
        return [h for h in assets.history(info["ref"]) if h.get("version") == info["version"]]
    except LedgerflowError:
        return []


def _describe(info: dict, history: list[dict]) -> Report:
    report = Report(title=tr("Asset {ref}", ref=info["ref"]), kind="asset")
    report.metrics = {"ref": info["ref"], "version": info["version"], "kind": info["kind"],
                      "content_sha256": info["content_sha256"], "size": info["size"], "owner": info["owner"],
                      "created_at": info["created_at"], "stage": info.get("stage") or "",
                      "sensitive": bool(info["sensitive"]),
                      "signed_by": f"{info['signature'].get('alg', '')} {info['signature'].get('key_id', '')}".strip()}
    if info.get("description"):
        report.notes.append(info["description"])
    report.notes.append(tr("Signature and SHA-256 verified when the version was read."))
    links = info.get("lineage") or []
    report.tables[tr("Lineage")] = pl.DataFrame(
        {"relation": [str(link.get("relation")) for link in links], "kind": [str(link.get("kind")) for link in links],
         "target": [str(link.get("target")) for link in links]},
        schema={"relation": pl.String, "kind": pl.String, "target": pl.String})
    if history:
        report.tables[tr("Stage history")] = pl.DataFrame(
            {"at": [str(h.get("at")) for h in history], "from": [str(h.get("from") or "") for h in history],
             "to": [str(h.get("to")) for h in history], "by": [str(h.get("by")) for h in history],
             "comment": [str(h.get("comment") or "") for h in history]},
            schema={"at": pl.String, "from": pl.String, "to": pl.String, "by": pl.String, "comment": pl.String})
    if info.get("metadata"):
        report.tables[tr("Metadata")] = pl.DataFrame(
            {"key": sorted(info["metadata"]),
             "value": [json.dumps(info["metadata"][k], ensure_ascii=False, sort_keys=True)[:2000]
                       for k in sorted(info["metadata"])]}, schema={"key": pl.String, "value": pl.String})
    return report
