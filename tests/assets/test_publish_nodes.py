"""Publish and Asset nodes against a real embedded asset center (SQLite, blobs, signatures, encryption) in a
temporary home, with a real Export ONNX package from a small LightGBM model."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assetcenter.connection import (
    AssetConnectionError,
    ConnectionSettings,
    connect,
    load_settings,
    save_settings,
    settings_path,
)
from engine.errors import ArtifactIntegrityError
from engine.executors.base import NodeTask, execute_task
from engine.sdk import FingerprintContext
from engine.templates import SAMPLE_DATA
from engine.testing import NodeFailed, run_node
from nodes.assets.archive import pack_folder, unpack_safely
from nodes.assets.asset_input import AssetInput
from nodes.assets.publish import PublishAsset
from nodes.explore.profile import Profile
from nodes.export.onnx_export import ExportONNX
from nodes.export.package import verify_package
from tests.modeling.test_export_onnx import train_lightgbm

LABEL = "default"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty embedded asset center for this test; the OS user becomes its admin on first use."""
    home = tmp_path / "assetcenter"
    monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_HOME", str(home))
    monkeypatch.delenv("LEDGERFLOW_ASSETCENTER_URL", raising=False)
    monkeypatch.delenv("LEDGERFLOW_TOKEN", raising=False)
    return home


@pytest.fixture(scope="module")
def loans():
    return pl.read_csv(SAMPLE_DATA).head(300)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """A real, verified model package written by the Export ONNX node."""
    base = tmp_path_factory.mktemp("package")
    table = pl.read_csv(SAMPLE_DATA).drop("customer_id", "application_date")
    model = train_lightgbm(base / "model", table.head(800), LABEL, "binary", rounds=15)
    model.info["lineage"] = {"data_fingerprint": "f" * 64, "data_node": "read-1"}
    out = run_node(ExportONNX, {"model": model, "holdout": table.tail(200)},
                   {"folder": str(base / "out"), "package_name": "pd-model", "parity_rows": 200},
                   workdir=base / "work")
    return out["report"]


def _publish(inputs: dict, workdir: Path, lineage: dict | None = None, **settings) -> dict:
    """Run Publish through the real executor, with the run lineage the scheduler would give it."""
    task = NodeTask(node_cls=PublishAsset, settings=settings, inputs=inputs, node_id="publish-1", title="Publish",
                    seed=3, project_dir=None, workdir=str(workdir), lineage=lineage or {})
    outcome = execute_task(task, lambda kind, payload: None, lambda: False)
    if outcome.error is not None:
        raise NodeFailed(outcome.error, outcome.traceback, outcome.input_error)
    return outcome.outputs["report"].metrics


def _card_numbers(n: int, seed: int = 0) -> list[str]:
    """Luhn-valid 16-digit card numbers (a C3 class of personal data)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        body = [6, 2, 2, 2, 0, 2, *rng.integers(0, 10, 9).tolist()]
        total = 0
        for i, d in enumerate(reversed(body)):
            d = d * 2 if i % 2 == 0 else d
            total += d - 9 if d > 9 else d
        out.append("".join(map(str, body)) + str((10 - total % 10) % 10))
    return out


def _blob_files(home: Path) -> list[Path]:
    return [p for p in (home / "blobs").rglob("*") if p.is_file()]


def test_dataset_round_trip_and_unchanged_republish(store, loans, tmp_path):
    lineage = {"run_id": "run-7", "node_id": "publish-1",
               "inputs": {"table": {"digest": "d" * 64, "node_id": "read-1", "run_id": "run-6"}}}
    first = _publish({"table": loans}, tmp_path / "w1", lineage, name="loans", tags=["retail"])
    assert (first["ref"], first["status"], first["kind"], first["sensitive"]) == \
        ("default/loans@1", "published", "dataset", False)
    again = _publish({"table": loans}, tmp_path / "w2", lineage, name="loans")
    assert (again["ref"], again["status"]) == ("default/loans@1", "unchanged")
    with connect() as assets:
        (version,) = assets.versions("default", "loans")
        assert version["tags"] == ["retail"]
        links = {(link["relation"], link["target"]) for link in version["lineage"]}
        assert {("published_by", "run-7"), ("derived_from", "d" * 64), ("derived_from_run", "run-6")} <= links
    out = run_node(AssetInput, {}, {"ref": "default/loans@1"}, workdir=tmp_path / "w3")
    assert_frame_equal(out["table"], loans)
    assert out["report"].metrics["content_sha256"] == first["content_sha256"]
    changed = _publish({"table": loans.head(100)}, tmp_path / "w4", name="loans")
    assert (changed["ref"], changed["status"]) == ("default/loans@2", "published")
    fp = [AssetInput.fingerprint(AssetInput.Settings(ref=f"default/loans@{n}"), FingerprintContext(None, None))
          for n in (1, 2)]
    assert fp[0] != fp[1] and len(fp[0]) == 64


def test_receipt_follows_the_latest_version(store, loans, tmp_path):
    settings = PublishAsset.Settings(name="loans")
    ctx = FingerprintContext(None, None)
    assert PublishAsset.receipt(settings, ctx) is None  # nothing published yet: run
    _publish({"table": loans}, tmp_path / "w1", name="loans")
    before = PublishAsset.receipt(settings, ctx)
    assert before is not None and PublishAsset.receipt(settings, ctx) == before
    _publish({"table": loans.head(10)}, tmp_path / "w2", name="loans")  # e.g. someone else published
    assert PublishAsset.receipt(settings, ctx) not in (None, before)


def test_card_numbers_make_the_dataset_encrypted(store, loans, tmp_path):
    table = loans.head(120).select("customer_id", "annual_income").with_columns(card=pl.Series(_card_numbers(120)))
    out = _publish({"table": table}, tmp_path / "w", name="cards")
    assert out["sensitive"] is True
    assert not list((tmp_path / "w").rglob("*.parquet"))  # no clear copy left behind by the node
    with connect() as assets:
        info = assets.info("default/cards@1")
    assert info["metadata"]["sensitivity"] == {"card": "C3"}
    # at rest only ciphertext: no stored blob is the Parquet file (which starts with PAR1)
    blobs = _blob_files(store)
    assert blobs and all(not p.read_bytes().startswith(b"PAR1") for p in blobs)
    assert not any(p.name == info["content_sha256"] for p in blobs)
    back = run_node(AssetInput, {}, {"ref": "default/cards@1"}, workdir=tmp_path / "r")
    assert_frame_equal(back["table"], table)  # decrypted for a reader allowed to see it


def test_profile_flags_decide_sensitivity(store, tmp_path):
    emails = [f"user{i}@bank.example.cn" if i % 10 < 3 else f"note {i}" for i in range(200)]
    table = pl.DataFrame({"id": list(range(200)), "contact": emails})
    profile = run_node(Profile, {"table": table}, {"pii_share": 0.2}, workdir=tmp_path / "p")["report"]
    out = _publish({"table": table, "profile": profile}, tmp_path / "w", name="contacts")
    assert out["sensitive"] is True  # 30% e-mails: only the Profile (threshold 20%) flags the column
    with connect() as assets:
        assert assets.info("default/contacts@1")["metadata"]["sensitivity"] == {"contact": "C2"}
    plain = _publish({"table": table}, tmp_path / "w2", name="contacts-plain")
    assert plain["sensitive"] is False


def test_model_package_published_with_lineage_and_round_trips(store, package, tmp_path):
    lineage = {"run_id": "run-9", "inputs": {"report": {"digest": "e" * 64, "node_id": "export-1",
                                                         "run_id": "run-8"}}}
    out = _publish({"report": package}, tmp_path / "w1", lineage, project="credit", name="pd-model",
                   description="PD model")
    assert (out["ref"], out["kind"], out["stage"], out["status"]) == \
        ("credit/pd-model@1", "model_package", "candidate", "published")
    again = _publish({"report": package}, tmp_path / "w2", lineage, project="credit", name="pd-model")
    assert again["status"] == "unchanged"  # the archive is deterministic
    with connect() as assets:
        info = assets.info("credit/pd-model@1")
    links = {(link["relation"], link["kind"], link["target"]) for link in info["lineage"]}
    assert ("trained_on", "dataset", "f" * 64) in links
    assert ("published_by", "run", "run-9") in links and ("exported_by_node", "artifact", "e" * 64) in links
    assert info["metadata"]["label"] == LABEL and info["metadata"]["problem_type"] == "binary"
    got = run_node(AssetInput, {}, {"ref": "credit/pd-model@1"}, workdir=tmp_path / "r")
    folder = Path(got["report"].metrics["package"])
    assert folder.is_relative_to(tmp_path / "r")
    original = verify_package(Path(package.metrics["package"]))
    assert verify_package(folder)["files"] == original["files"]
    assert got["table"]["column"].to_list() == [i["name"] for i in original["inputs"]]


def test_tampered_blob_blocks_the_asset_node(store, loans, tmp_path):
    out = _publish({"table": loans}, tmp_path / "w", name="loans")
    (blob,) = [p for p in _blob_files(store) if p.name == out["content_sha256"]]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.chmod(0o600)
    blob.write_bytes(bytes(data))
    with pytest.raises(NodeFailed) as failed:
        run_node(AssetInput, {}, {"ref": "default/loans@1"}, workdir=tmp_path / "r")
    assert "default/loans@1" in str(failed.value) and "blocked" in str(failed.value)
    assert "SHA-256" in str(failed.value)


def test_bad_references_are_named(store, loans, tmp_path):
    _publish({"table": loans}, tmp_path / "w", name="loans")
    cases = {"loans@1": "project/name", "default/loans": "names no version",
             "default/loans@9": "default/loans@9", "default/nothing@1": "default/nothing@1",
             "default/../x@1": "Invalid asset name"}
    for ref, expected in cases.items():
        with pytest.raises(NodeFailed) as failed:
            run_node(AssetInput, {}, {"ref": ref}, workdir=tmp_path / "r")
        assert expected in str(failed.value), (ref, str(failed.value))
    with pytest.raises(NodeFailed, match="The latest is default/loans@1"):
        run_node(AssetInput, {}, {"ref": "default/loans"}, workdir=tmp_path / "r")


def test_publish_refuses_wrong_inputs(store, loans, package, tmp_path):
    model_folder = tmp_path / "m"
    model = train_lightgbm(model_folder, loans.drop("customer_id", "application_date"), LABEL, "binary", rounds=3)
    with pytest.raises(NodeFailed, match="Export ONNX"):
        _publish({"model": model}, tmp_path / "w1", name="m")
    with pytest.raises(NodeFailed, match="exactly one"):
        _publish({}, tmp_path / "w2", name="m")
    with pytest.raises(NodeFailed, match="exactly one"):
        _publish({"table": loans, "report": package}, tmp_path / "w3", name="m")
    with pytest.raises(NodeFailed, match="dataset or a feature view"):
        _publish({"table": loans}, tmp_path / "w4", name="m", kind="model_package")
    with pytest.raises(NodeFailed, match="Invalid settings"):
        _publish({"table": loans}, tmp_path / "w5", name="../etc")
    (Path(package.metrics["package"]) / "extra.txt").write_text("not in the manifest")
    try:
        with pytest.raises(NodeFailed, match="extra.txt"):
            _publish({"report": package}, tmp_path / "w6", name="pkg")
    finally:
        (Path(package.metrics["package"]) / "extra.txt").unlink()


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return buf.getvalue()


@pytest.mark.parametrize("name,kind", [("../evil.txt", tarfile.REGTYPE), ("/etc/passwd", tarfile.REGTYPE),
                                       ("sub/model.onnx", tarfile.REGTYPE), ("link", tarfile.SYMTYPE),
                                       ("dev", tarfile.CHRTYPE)])
def test_unpack_refuses_unsafe_members(tmp_path, name, kind):
    member = tarfile.TarInfo(name)
    member.type = kind
    member.size = 3 if kind == tarfile.REGTYPE else 0
    if kind == tarfile.SYMTYPE:
        member.linkname = "/etc/passwd"
    archive = tmp_path / "a.tar"
    archive.write_bytes(_tar_with(member, b"abc"))
    with pytest.raises(ArtifactIntegrityError, match="not a plain file"):
        unpack_safely(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and list((tmp_path / "out").iterdir()) == []


def test_pack_is_deterministic(tmp_path):
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "b.txt").write_text("b")
    (folder / "a.txt").write_text("a")
    pack_folder(folder, tmp_path / "one.tar")
    (folder / "a.txt").touch()  # a new mtime changes nothing
    pack_folder(folder, tmp_path / "two.tar")
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    assert unpack_safely(tmp_path / "one.tar", tmp_path / "out") == ["a.txt", "b.txt"]


def test_connection_settings_never_hold_the_token(tmp_path, monkeypatch):
    for var in ("LEDGERFLOW_ASSETCENTER_URL", "LEDGERFLOW_ASSETCENTER_HOME", "LEDGERFLOW_ASSETCENTER_CA",
                "LEDGERFLOW_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path))
    save_settings(ConnectionSettings(url="https://Assets.Bank.example/", ca_file=None))
    assert json.loads(settings_path().read_text()) == {"url": "https://assets.bank.example:443", "ca_file": None,
                                                       "labels_url": None}
    assert load_settings().url == "https://assets.bank.example:443"
    with pytest.raises(AssetConnectionError, match="No token for the asset center"):
        connect()
    monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_URL", "http://10.1.2.3:8765")  # the environment wins
    monkeypatch.setenv("LEDGERFLOW_TOKEN", "abc.def")
    assert load_settings().url == "http://10.1.2.3:8765"
    with pytest.raises(AssetConnectionError, match="plain http"):
        connect()


def test_nodes_work_against_a_server_on_loopback(tmp_path, monkeypatch, loans):
    """The same nodes, configured by LEDGERFLOW_ASSETCENTER_URL and LEDGERFLOW_TOKEN, talk HTTP to a real server;
    downloads are checked against the server's key pinned on first use."""
    from assetcenter.server import create_app
    from assetcenter.server_thread import ServerThread
    from assetcenter.service import AssetCenter

    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path / "user"))  # the pinned keys of this "desktop"
    monkeypatch.delenv("LEDGERFLOW_ASSETCENTER_HOME", raising=False)
    center = AssetCenter(tmp_path / "server")
    token = center.init()
    _, admin_token = center.redeem(token)
    admin = center.authenticate(admin_token)
    center.create_user(admin, "ana")
    center.grant(admin, "ana", "analyst", "credit")
    ana_token = center.issue_token(admin, "ana", label="desktop")
    table = loans.head(80).select("customer_id", "annual_income").with_columns(card=pl.Series(_card_numbers(80)))
    try:
        with ServerThread(create_app(center)) as server:
            monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_URL", server.url)
            monkeypatch.setenv("LEDGERFLOW_TOKEN", ana_token)
            out = _publish({"table": table}, tmp_path / "w", project="credit", name="cards")
            assert (out["ref"], out["sensitive"]) == ("credit/cards@1", True)
            assert out["asset_center"].startswith("server http://127.0.0.1:")
            assert _publish({"table": table}, tmp_path / "w2", project="credit", name="cards")["status"] == \
                "unchanged"
            back = run_node(AssetInput, {}, {"ref": "credit/cards@1"}, workdir=tmp_path / "r")
            assert_frame_equal(back["table"], table)
            with connect() as assets:
                assert assets.whoami()["name"] in ("ana", None)  # None: the server has no /v1/whoami yet
            with pytest.raises(NodeFailed, match="User ana lacks permission asset.read on project other"):
                _publish({"table": loans}, tmp_path / "w3", project="other", name="x")
    finally:
        center.close()


def test_the_receipt_never_contacts_a_shared_server(monkeypatch):
    """Receipts are checked when a project opens (on the GUI thread): with a server configured, none is contacted
    — an unreachable one would stall the open — and the server's address stands in for the published version."""
    import nodes.assets.publish as publish
    from engine.sdk import FingerprintContext
    from nodes.assets.publish import PublishAsset

    def no_connection(*_a, **_k):
        raise AssertionError("the receipt contacted the asset center")

    monkeypatch.setattr(publish, "connect", no_connection)
    monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_URL", "https://192.0.2.1:9")  # TEST-NET: nothing answers there
    settings = PublishAsset.Settings.model_validate({"project": "risk", "name": "x"})
    first = PublishAsset.receipt(settings, FingerprintContext(None, None))
    assert first is not None and first == PublishAsset.receipt(settings, FingerprintContext(None, None))
    monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_URL", "https://192.0.2.2:9")
    assert PublishAsset.receipt(settings, FingerprintContext(None, None)) != first


def test_the_asset_nodes_fingerprint_contacts_nothing(monkeypatch):
    """A pinned version is immutable: its reference and the center's address make the fingerprint, without a call."""
    import nodes.assets.asset_input as asset_input
    from engine.errors import NodeInputError
    from engine.sdk import FingerprintContext
    from nodes.assets.asset_input import AssetInput

    def no_connection(*_a, **_k):
        raise AssertionError("the fingerprint contacted the asset center")

    monkeypatch.setattr(asset_input, "connect", no_connection)
    monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_URL", "https://192.0.2.1:9")
    ctx = FingerprintContext(None, None)
    one = AssetInput.fingerprint(AssetInput.Settings.model_validate({"ref": "risk/loans@1"}), ctx)
    two = AssetInput.fingerprint(AssetInput.Settings.model_validate({"ref": "risk/loans@2"}), ctx)
    assert one != two
    monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_URL", "https://192.0.2.2:9")
    assert AssetInput.fingerprint(AssetInput.Settings.model_validate({"ref": "risk/loans@1"}), ctx) != one
    with pytest.raises(NodeInputError, match="names no version"):
        AssetInput.fingerprint(AssetInput.Settings.model_validate({"ref": "risk/loans"}), ctx)
