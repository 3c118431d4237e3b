"""PackageScorer: a verified package scores raw tables, online (one call) and in shards (concurrent calls)."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.errors import ArtifactIntegrityError
from engine.testing import run_node
from nodes.automl.flavors import score
from nodes.export import scoring
from nodes.export.onnx_export import ExportONNX
from nodes.export.scoring import PackageScorer
from tests.modeling.test_export_onnx import train_lightgbm


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scorer")
    rng = np.random.default_rng(11)
    n = 5_000  # more than SHARD_ROWS, so a whole-table call is split
    x = rng.normal(size=(n, 3))
    table = pl.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2],
                          "segment": pl.Series(rng.choice(["retail", "sme", ""], n)).replace("", None)}).with_columns(
        y=pl.Series((x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=n) > 0).astype(np.int64)))
    model = train_lightgbm(tmp / "m", table, "y", "binary", rounds=30)
    run_node(ExportONNX, {"model": model, "holdout": table}, {"folder": str(tmp / "p"), "package_name": "s"})
    return tmp / "p" / "s", model, table


def test_scores_match_the_model_online_and_sharded(package):
    path, model, table = package
    assert table.height > scoring.SHARD_ROWS
    native = score(model, table)
    with PackageScorer(path, threads=2) as scorer:
        whole = scorer.score(table)  # sharded across two concurrent calls
        one = scorer.score(table.slice(17, 1))  # a single applicant: one call
        assert scorer.manifest["signed_here"] is True
    assert set(whole) == {"label", "probability"}
    assert np.abs(whole["probability"] - native.proba["1"].to_numpy()).max() < 1e-5
    np.testing.assert_array_equal(whole["label"], native.prediction)
    assert one["probability"][0] == pytest.approx(whole["probability"][17], abs=1e-7)
    with PackageScorer(path, threads=1) as single:
        np.testing.assert_allclose(single.score(table, ["probability"])["probability"], whole["probability"],
                                   atol=1e-7)


def test_a_changed_package_is_never_loaded(package, tmp_path):
    import shutil

    path, _, _ = package
    copy = tmp_path / "s"
    shutil.copytree(path, copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-1] ^= 1
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="model.onnx"):
        PackageScorer(copy)
