"""Export ONNX: parity with native LightGBM on the sample data, the loud failures, and the package's integrity.

Models are trained here with lightgbm directly, stored as the lightgbm flavor's contract says (model.txt, text as
codes via info["categories"]), so these tests do not depend on the training node's settings.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import polars as pl
import pytest

from engine.errors import ArtifactIntegrityError
from engine.ports import FittedTransform, ModelRef
from engine.templates import SAMPLE_DATA
from engine.testing import NodeFailed, run_node
from nodes.automl.flavors import feature_kinds, score
from nodes.automl.gbm_flavor import encode_counting
from nodes.export.onnx_convert import feeds, input_specs
from nodes.export.onnx_export import ExportONNX
from nodes.export.package import verify_package
from nodes.features.fitted import apply_transform, chain
from nodes.features.transforms.binning import fit_binning
from nodes.features.transforms.encode import fit_onehot, fit_target, fit_woe
from nodes.features.transforms.impute import ImputeSettings, fit_impute
from nodes.features.transforms.scale import ScaleSettings, fit_scale

LABEL = "default"


def train_lightgbm(folder: Path, train: pl.DataFrame, label: str, problem_type: str, *,
                   transform: FittedTransform | None = None, rounds: int = 60, **params) -> ModelRef:
    """A lightgbm-flavor ModelRef trained on `train` (raw; prepared with `transform` first when given)."""
    prepared = apply_transform(transform, train) if transform is not None else train
    frame = prepared.drop(label)
    kinds = feature_kinds(frame)
    categories = {c: sorted(frame[c].drop_nulls().cast(pl.String).unique().to_list())
                  for c, k in kinds.items() if k == "text"}
    values = [] if problem_type == "regression" else prepared[label].unique().sort().to_list()
    info = {"label": label, "problem_type": problem_type, "features": frame.columns, "feature_kinds": kinds,
            "categories": categories, "classes": [str(v) for v in values], "class_values": values,
            "positive_class": str(values[1]) if problem_type == "binary" else None, "train_rows": train.height,
            "best_model": "LightGBM", "metrics": {"auc": 0.75}}
    if transform is not None:
        info["transform"] = {"kind": transform.kind, "params": transform.params, "columns": list(transform.columns)}
    x, _ = encode_counting(info, frame)
    y = prepared[label].to_numpy() if problem_type == "regression" else \
        prepared[label].replace_strict(values, list(range(len(values)))).to_numpy()
    objective = {"binary": {"objective": "binary"}, "regression": {"objective": "regression"},
                 "multiclass": {"objective": "multiclass", "num_class": len(values)}}[problem_type]
    booster = lgb.train({**objective, "verbose": -1, "seed": 1, "deterministic": True, "num_threads": 1,
                         "min_data_per_group": 5, **params},
                        lgb.Dataset(x, y, categorical_feature=[i for i, c in enumerate(frame.columns)
                                                               if c in categories]), rounds)
    folder.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(folder / "model.txt"))
    return ModelRef("lightgbm", folder, info)


@pytest.fixture(scope="module")
def data():
    table = pl.read_csv(SAMPLE_DATA).drop("customer_id", "application_date")
    return table.head(1400), table.tail(600)


@pytest.fixture(scope="module")
def preparation(data):
    """Every exportable kind in one chain: impute (+ indicators), scale, one-hot, WOE and target encoding, WOE
    binning and bin-label binning (a text feature made by the preparation)."""
    train = data[0]
    steps = []

    def add(step):
        nonlocal train
        steps.append(step)
        train = apply_transform(step, train)

    add(fit_impute(train, ImputeSettings(columns=["employment_years", "months_since_last_delinquency"],
                                         add_indicator=True)))
    add(fit_scale(train, ScaleSettings(columns=["annual_income", "monthly_debt"]))[0])
    add(fit_onehot(train, ["gender", "region"], 4, True)[0])
    add(fit_woe(train, ["education"], LABEL, True)[0])
    add(fit_target(train, ["loan_purpose"], LABEL, 10.0, True)[0])
    add(fit_binning(train, ["age", "debt_to_income"], target=LABEL, method="quantile", max_bins=5)[0])
    add(fit_binning(train, ["credit_utilization"], target=LABEL, method="quantile", max_bins=4, output="bin",
                    keep_original=False)[0])
    return chain(*steps)


@pytest.fixture(scope="module")
def model(data, preparation, tmp_path_factory):
    return train_lightgbm(tmp_path_factory.mktemp("gbm") / "m", data[0], LABEL, "binary", transform=preparation,
                          rounds=150)


@pytest.fixture(scope="module")
def exported(data, model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("packages")
    out = run_node(ExportONNX, {"model": model, "holdout": data[1]},
                   {"folder": str(folder), "package_name": "credit", "quantize": True},
                   workdir=tmp_path_factory.mktemp("work"))
    return folder / "credit", out["report"]


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_package_scores_raw_rows_like_lightgbm(data, model, exported):
    package, report = exported
    holdout = data[1]
    native = score(model, holdout)
    specs = input_specs(model, holdout)
    sess = _session(package / "model.onnx")
    # two matrix inputs: the numbers (double) and the texts (string), each column at its position
    assert [(i.name, i.type, i.shape[1]) for i in sess.get_inputs()] == [
        ("numbers", "tensor(double)", sum(s.tensor == "numbers" for s in specs)),
        ("texts", "tensor(string)", sum(s.tensor == "texts" for s in specs))]
    for tensor in ("numbers", "texts"):
        assert sorted(s.index for s in specs if s.tensor == tensor) == list(range(sum(s.tensor == tensor
                                                                                      for s in specs)))
    assert {s.name for s in specs if s.tensor == "texts"} == {s.name for s in specs if s.kind == "text"}
    fed = feeds(specs, holdout)
    age = next(s for s in specs if s.name == "age")
    np.testing.assert_array_equal(fed["numbers"][:, age.index], holdout["age"].cast(pl.Float64).to_numpy())
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds(specs, holdout))))
    diff = np.abs(out["probability"] - native.proba["1"].to_numpy()).max()
    assert diff < 1e-5
    np.testing.assert_array_equal(out["label"], native.prediction)
    assert report.kind == "export"
    assert report.metrics["max_abs_diff"] < 1e-5 and report.metrics["parity_rows"] == holdout.height
    assert report.metrics["package"] == str(package)
    # the preparation really is inside the graph: raw text and raw numbers go in, nothing is encoded outside
    assert {"education", "region", "credit_utilization", "loan_purpose"} <= {s.name for s in specs}


def test_missing_and_unseen_values_score_like_lightgbm(data, model, exported):
    holdout = data[1].head(50).with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(None).otherwise(pl.col("age")).alias("age"),
        pl.when(pl.int_range(pl.len()) % 4 == 0).then(pl.lit("Mars")).otherwise(pl.col("region")).alias("region"),
        pl.when(pl.int_range(pl.len()) % 5 == 0).then(None).otherwise(pl.col("education")).alias("education"),
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(None).otherwise(pl.col("annual_income"))
        .alias("annual_income"))
    native = score(model, holdout).proba["1"].to_numpy()
    specs = input_specs(model, holdout)
    sess = _session(exported[0] / "model.onnx")
    onnx_p = sess.run(["probability"], feeds(specs, holdout))[0]
    assert np.abs(onnx_p - native).max() < 1e-5


def test_manifest_describes_the_package(model, exported):
    package, _ = exported
    manifest = verify_package(package)
    assert manifest["signed_here"] is True
    assert set(manifest["files"]) == {"model.onnx", "model.quant.onnx", "model_card.html"}
    assert manifest["format_version"] == 1
    assert manifest["model"]["flavor"] == "lightgbm" and manifest["model"]["best_model"] == "LightGBM"
    assert manifest["features"] == model.info["features"]
    assert manifest["preparation"] == ["impute", "scale", "encode_onehot", "encode_woe", "encode_target",
                                       "binning", "binning"]
    inputs = {s["name"]: s for s in manifest["inputs"]}
    assert inputs["education"]["type"] == "string" and inputs["education"]["range_source"] == "training"
    assert "Bachelor" in inputs["education"]["categories"]
    assert inputs["age"]["type"] == "double" and inputs["age"]["min"] <= inputs["age"]["max"]
    assert inputs["age"]["tensor"] == "numbers" and inputs["education"]["tensor"] == "texts"
    assert sorted(s["position"] for s in manifest["inputs"] if s["tensor"] == "texts") == \
        list(range(sum(s["tensor"] == "texts" for s in manifest["inputs"])))
    assert manifest["metrics"] == {"auc": 0.75}
    assert manifest["parity"]["max_abs_diff"] < 1e-5 and manifest["parity"]["tolerance"] == 1e-5
    lineage = manifest["lineage"]
    assert lineage["training_data_fingerprint"] is None and lineage["training_run_id"] is None  # unknown: null
    assert len(lineage["holdout_fingerprint"]) == 64
    assert [o["name"] for o in manifest["outputs"]] == ["label", "probability"]


def test_model_card_is_self_contained(exported):
    card = (exported[0] / "model_card.html").read_text("utf-8")
    for heading in ("Purpose", "Data", "Metrics", "Parity with the original model", "Inputs", "Limitations"):
        assert f"<h2>{heading}</h2>" in card
    assert "<script" not in card and "src=" not in card and "href=" not in card
    assert "education" in card


def test_quantization_is_reported(exported):
    package, report = exported
    assert (package / "model.quant.onnx").is_file()
    quant = json.loads((package / "manifest.json").read_text("utf-8"))["quantization"]
    assert quant["max_abs_diff"] == report.metrics["quantized_max_abs_diff"]
    assert 0.5 < report.metrics["quantized_auc"] <= 1.0 and 0.5 < report.metrics["unquantized_auc"] <= 1.0
    assert report.metrics["quantized_max_abs_diff"] >= 0.0


def test_tampering_is_detected_and_named(exported, tmp_path):
    copy = tmp_path / "credit"
    shutil.copytree(exported[0], copy)
    verify_package(copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="model.onnx was changed"):
        verify_package(copy)
    shutil.copy2(exported[0] / "model.onnx", copy / "model.onnx")
    (copy / "extra.py").write_text("print('hi')")
    with pytest.raises(ArtifactIntegrityError, match="extra.py is not in the manifest"):
        verify_package(copy)
    (copy / "extra.py").unlink()
    (copy / "model_card.html").unlink()
    with pytest.raises(ArtifactIntegrityError, match="model_card.html is missing"):
        verify_package(copy)
    # rewriting the manifest to match a changed file passes the hashes but not this user's signature
    shutil.copy2(exported[0] / "model_card.html", copy / "model_card.html")
    doc = json.loads((copy / "manifest.json").read_text("utf-8"))
    doc["parity"]["max_abs_diff"] = 0.0
    (copy / "manifest.json").write_text(json.dumps(doc))
    assert verify_package(copy)["signed_here"] is False


def test_unexportable_transform_fails_and_keeps_the_old_package(data, model, exported, tmp_path):
    package, _ = exported
    before = {p.name: p.read_bytes() for p in package.iterdir()}
    derive = FittedTransform("derive", {"expressions": {}, "outputs": []}, ("age",))
    spec = model.info["transform"]
    info = {**model.info, "transform": {"kind": "pipeline", "params": {"steps": [
        {"kind": derive.kind, "params": derive.params, "columns": list(derive.columns)}, *spec["params"]["steps"]]},
        "columns": spec["columns"]}}
    bad = ModelRef("lightgbm", model.path, info)
    with pytest.raises(NodeFailed, match="cannot export transform derive to ONNX") as exc:
        run_node(ExportONNX, {"model": bad, "holdout": data[1]},
                 {"folder": str(package.parent), "package_name": "credit"}, workdir=tmp_path)
    assert exc.value.input_error
    assert {p.name: p.read_bytes() for p in package.iterdir()} == before
    assert sorted(p.name for p in package.parent.iterdir()) == ["credit"]  # no temp folders left


def test_parity_failure_is_loud_and_writes_nothing(data, tmp_path):
    """Linear trees: onnxmltools converts the tree structure but not the leaves' linear models, so the graph
    scores differently. The parity check must refuse it and name the cause."""
    linear = train_lightgbm(tmp_path / "linear", data[0].select("age", "annual_income", "debt_to_income", LABEL),
                            LABEL, "binary", rounds=20, linear_tree=True)
    out = tmp_path / "out"
    with pytest.raises(NodeFailed, match=r"ONNX parity check failed: on 600 holdout rows .* by up to 0\.\d+ "
                                         r"\(tolerance 1e-05\)\. Nothing was written\. .*linear trees") as exc:
        run_node(ExportONNX, {"model": linear, "holdout": data[1]}, {"folder": str(out), "package_name": "lin"},
                 workdir=tmp_path / "w")
    assert exc.value.input_error
    assert not out.exists() or not any(out.iterdir())


def test_reexport_replaces_the_package_completely(data, model, tmp_path):
    folder = tmp_path / "pk"
    settings = {"folder": str(folder), "package_name": "m", "parity_rows": 100}
    run_node(ExportONNX, {"model": model, "holdout": data[1]}, {**settings, "quantize": True}, workdir=tmp_path / "a")
    assert (folder / "m" / "model.quant.onnx").is_file()
    report = run_node(ExportONNX, {"model": model, "holdout": data[1]}, settings, workdir=tmp_path / "b")["report"]
    assert not (folder / "m" / "model.quant.onnx").exists()  # the old package was replaced, not merged
    assert verify_package(folder / "m")["parity"]["rows"] == 100 == report.metrics["parity_rows"]
    assert sorted(p.name for p in folder.iterdir()) == ["m"]


def test_multiclass_and_regression(tmp_path):
    rng = np.random.default_rng(3)
    n = 600
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    grade = np.where(x1 + 0.3 * rng.normal(size=n) > 0.5, "A", np.where(x2 > 0, "B", "C"))
    table = pl.DataFrame({"x1": x1, "x2": x2, "flag": x2 > 0.3, "segment": rng.choice(["s1", "s2", "s3"], n),
                          "grade": grade, "amount": x1 * 2 + x2 + rng.normal(size=n) * 0.1})
    multi = train_lightgbm(tmp_path / "multi", table.drop("amount"), "grade", "multiclass", rounds=30)
    rep = run_node(ExportONNX, {"model": multi, "holdout": table}, {"folder": str(tmp_path / "p"),
                                                                       "package_name": "multi"})["report"]
    assert rep.metrics["max_abs_diff"] < 1e-5
    sess = _session(tmp_path / "p" / "multi" / "model.onnx")
    out = sess.run(None, feeds(input_specs(multi, table), table))
    np.testing.assert_array_equal(out[0], score(multi, table).prediction)  # string labels "A", "B", "C"
    reg = train_lightgbm(tmp_path / "reg", table.drop("grade"), "amount", "regression", rounds=30)
    rep = run_node(ExportONNX, {"model": reg, "holdout": table}, {"folder": str(tmp_path / "p"),
                                                                     "package_name": "reg"})["report"]
    assert rep.metrics["max_abs_diff"] < 1e-5
    assert [o["name"] for o in verify_package(tmp_path / "p" / "reg")["outputs"]] == ["prediction"]
    # a target in the hundreds of thousands: float32 output rounding (~0.01) is within the scale-free tolerance
    large = table.drop("grade").with_columns(pl.col("amount") * 1e5 + 2.5e5)
    big = train_lightgbm(tmp_path / "big", large, "amount", "regression", rounds=30)
    rep = run_node(ExportONNX, {"model": big, "holdout": large}, {"folder": str(tmp_path / "p"),
                                                                     "package_name": "big"})["report"]
    manifest = verify_package(tmp_path / "p" / "big")
    assert manifest["parity"]["tolerance_applies_to"].startswith("max |native − onnx| / max(1")
    assert rep.metrics["max_abs_diff"] < 1.0


def test_bad_inputs_are_named(data, model, tmp_path):
    settings = {"folder": str(tmp_path), "package_name": "x"}
    with pytest.raises(NodeFailed, match="lacks columns the model reads: 'education'"):
        run_node(ExportONNX, {"model": model, "holdout": data[1].drop("education")}, settings)
    with pytest.raises(NodeFailed, match="supports LightGBM models; this model's flavor is 'scorecard'"):
        run_node(ExportONNX, {"model": ModelRef("scorecard", model.path, model.info), "holdout": data[1]}, settings)
    with pytest.raises(NodeFailed, match="no rows"):
        run_node(ExportONNX, {"model": model, "holdout": data[1].head(0)}, settings)
    with pytest.raises(NodeFailed, match="letters, digits"):
        run_node(ExportONNX, {"model": model, "holdout": data[1]}, {**settings, "package_name": "../escape"})
    assert not (tmp_path.parent / "escape").exists()


def test_booleans_integers_and_grouped_categories(tmp_path):
    """Booleans arrive as 0/1 doubles, integer categories are matched as numbers, optimal binning's category
    groups and a boolean imputed with its most frequent value all run inside the graph."""
    rng = np.random.default_rng(5)
    n = 800
    products = rng.integers(1, 5, n)
    city = rng.choice(["north", "south", "east", "west", "centre"], n)
    owner = pl.Series(rng.random(n) > 0.5).scatter(np.flatnonzero(rng.random(n) < 0.1), None)
    risk = 0.8 * (products == 3) + 0.6 * np.isin(city, ["east", "west"]) + rng.normal(size=n) * 0.5
    table = pl.DataFrame({"products": products, "city": city, "owner": owner, "income": rng.lognormal(10, 1, n),
                          "bad": (risk > 0.7).astype(np.int64)})
    train, holdout = table.head(600), table.tail(200)
    imp = fit_impute(train, ImputeSettings(columns=["owner"]))
    one = fit_onehot(apply_transform(imp, train), ["products"], 10, False)[0]
    binned = fit_binning(train, ["city"], target="bad", method="optimal", max_bins=3, keep_original=False)[0]
    model = train_lightgbm(tmp_path / "m", train, "bad", "binary", transform=chain(imp, one, binned), rounds=40)
    report = run_node(ExportONNX, {"model": model, "holdout": holdout},
                      {"folder": str(tmp_path / "p"), "package_name": "mixed"})["report"]
    assert report.metrics["max_abs_diff"] < 1e-5
    kinds = {s.name: s.dtype for s in input_specs(model, holdout)}
    assert kinds == {"owner": "double", "products": "double", "city": "string", "income": "double"}
    sess = _session(tmp_path / "p" / "mixed" / "model.onnx")
    odd = holdout.head(20).with_columns(pl.lit("atlantis").alias("city"), pl.lit(7).alias("products"),
                                        pl.lit(None, pl.Boolean).alias("owner"))
    onnx_p = sess.run(["probability"], feeds(input_specs(model, odd), odd))[0]
    assert np.abs(onnx_p - score(model, odd).proba["1"].to_numpy()).max() < 1e-5


def test_receipt_follows_the_written_files(data, model, tmp_path):
    from engine.fileio import FileFingerprints
    from engine.sdk import FingerprintContext

    settings = ExportONNX.Settings(folder=str(tmp_path / "pk"), package_name="r", parity_rows=50)
    ctx = FingerprintContext(project_dir=None, files=FileFingerprints())
    assert ExportONNX.receipt(settings, ctx) is None
    run_node(ExportONNX, {"model": model, "holdout": data[1]}, settings.model_dump(), workdir=tmp_path / "w")
    first = ExportONNX.receipt(settings, ctx)
    assert first is not None
    with open(tmp_path / "pk" / "r" / "model_card.html", "a") as fh:
        fh.write("<!-- edited -->")
    assert ExportONNX.receipt(settings, ctx) not in (None, first)


def test_a_folder_that_is_not_a_package_is_not_replaced(data, model, tmp_path):
    mine = tmp_path / "pk" / "notes"
    mine.mkdir(parents=True)
    (mine / "keep.txt").write_text("mine")
    with pytest.raises(NodeFailed, match="exists and is not a model package"):
        run_node(ExportONNX, {"model": model, "holdout": data[1]},
                 {"folder": str(tmp_path / "pk"), "package_name": "notes", "parity_rows": 50}, workdir=tmp_path / "w")
    assert (mine / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / "pk").iterdir()) == ["notes"]


def test_column_names_and_types_the_graph_cannot_take(tmp_path):
    rng = np.random.default_rng(9)
    table = pl.DataFrame({"probability": rng.random(300), "x": rng.normal(size=300),
                          "y": (rng.random(300) > 0.5).astype(np.int64)})
    clash = train_lightgbm(tmp_path / "m", table, "y", "binary", rounds=5)
    with pytest.raises(NodeFailed, match="Column 'probability' has a name the ONNX graph uses"):
        run_node(ExportONNX, {"model": clash, "holdout": table}, {"folder": str(tmp_path), "package_name": "c"})
    ok = train_lightgbm(tmp_path / "ok", table.drop("probability"), "y", "binary", rounds=5)
    as_text = table.with_columns(pl.col("x").cast(pl.String))
    with pytest.raises(NodeFailed, match="Column 'x' is text in the holdout table, but the model was trained on "
                                         "numeric"):
        run_node(ExportONNX, {"model": ok, "holdout": as_text}, {"folder": str(tmp_path), "package_name": "c"})


def test_a_model_on_raw_numbers_scores_its_input_matrix_directly(tmp_path):
    """Online scoring cost: with no preparation and only numeric features, the `numbers` input goes straight to
    the trees (no per-column Gather or Concat), and a binary model is one-score trees plus a sigmoid."""
    import onnx

    rng = np.random.default_rng(5)
    n = 800
    x = rng.normal(size=(n, 4))
    x[rng.random(x.shape) < 0.05] = np.nan
    table = pl.DataFrame({f"x{i}": x[:, i] for i in range(4)}).with_columns(
        y=pl.Series((np.nan_to_num(x[:, 0]) + rng.normal(size=n) > 0).astype(np.int64)))
    model = train_lightgbm(tmp_path / "m", table, "y", "binary", rounds=40)
    rep = run_node(ExportONNX, {"model": model, "holdout": table}, {"folder": str(tmp_path / "p"),
                                                                     "package_name": "raw"})["report"]
    assert rep.metrics["max_abs_diff"] < 1e-5
    graph = onnx.load(str(tmp_path / "p" / "raw" / "model.onnx")).graph
    ops = [node.op_type for node in graph.node]
    assert "TreeEnsembleRegressor" in ops and "TreeEnsembleClassifier" not in ops and "Sigmoid" in ops
    assert "Concat" not in ops and "Gather" not in ops[:ops.index("TreeEnsembleRegressor")]
    specs = input_specs(model, table)
    probability, label = _session(tmp_path / "p" / "raw" / "model.onnx").run(
        ["probability", "label"], feeds(specs, table))
    native = score(model, table)
    assert np.abs(probability - native.proba["1"].to_numpy()).max() < 1e-5
    np.testing.assert_array_equal(label, native.prediction)
