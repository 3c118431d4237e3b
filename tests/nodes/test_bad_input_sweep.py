"""Bad input for every built-in node that takes a table: a clear message on the node, never a crash.

Each node runs with sensible settings for a small credit table on the kinds of input bank extracts really hold:
no rows, a column with no values at all (a feature, the target, a text column, the date; typed, and of polars'
Null type as an empty Parquet/JSON column arrives), numbers in a text column next to words (as a CSV gives them)
and dates written several ways. The node must either succeed with a sensible output (same rows, the input
columns kept) or fail with a NodeInputError (`input_error`) whose message names the column or the problem.
Anything else (a KeyError, a raw polars or numpy error) is a crash, shown with a traceback instead of a message.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import nodes
from engine.executors.base import run_inline
from engine.ports import FittedTransform, Table
from engine.testing import NodeFailed, run_node

N = 40
# AutoML is too slow to train 20 times here (tests/modeling cover its input checks); the others need a trained model
SKIPPED = {"automl.autogluon", "automl.predict", "evaluate.evaluate", "export.onnx"}


def credit() -> pl.DataFrame:
    """40 applications: both classes, four regions (one in Chinese), a date per week."""
    return pl.DataFrame({
        "customer_id": [f"C{i:03d}" for i in range(N)],
        "application_date": [date(2024, 1, 1) + timedelta(days=7 * i) for i in range(N)],
        "age": [21 + (i * 7) % 37 for i in range(N)],
        "income": [1000.0 + 137.5 * ((i * 11) % 29) for i in range(N)],
        "region": [["North", "South", "East", "华东"][i % 4] for i in range(N)],
        "default": [1 if (i % 5 == 0 or i % 7 == 0) else 0 for i in range(N)],
    })


# ---- the bad inputs ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    make: Callable[[pl.DataFrame], pl.DataFrame]
    column: str | None  # the column made bad; a failure must name it (or one of `words`)
    words: tuple[str, ...] = ()  # other acceptable ways to name the problem


EMPTY_WORDS = ("no rows", "has 0", "at least")
DATE_TEXTS = ["2024-01-05", "2024/02/03", "20240304", "03/05/2024", "2024年3月5日"]  # months 1, 2, 3, 3, 3


def _null(col: str, dtype: pl.DataType | None = None) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda t: t.with_columns(pl.lit(None, dtype if dtype is not None else t.schema[col]).alias(col))


def _cycle(col: str, values: list[str]) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda t: t.with_columns(pl.Series(col, [values[i % len(values)] for i in range(t.height)],
                                              dtype=pl.String))


CASES: dict[str, Case] = {
    "empty": Case(lambda t: t.clear(), None, EMPTY_WORDS),
    "empty_csv": Case(lambda t: t.clear().cast(pl.String), None, (*EMPTY_WORDS, "String")),  # header-only CSV
    "single_row": Case(lambda t: t.head(1), None, ("at least", "distinct", "1 row")),
    "null_feature": Case(_null("income"), "income"),
    "null_feature_nulltype": Case(_null("income", pl.Null()), "income"),
    "nan_feature": Case(lambda t: t.with_columns(pl.lit(float("nan")).alias("income")), "income"),
    "null_target": Case(_null("default"), "default"),
    "null_target_nulltype": Case(_null("default", pl.Null()), "default"),
    "null_text": Case(_null("region"), "region"),
    "null_text_nulltype": Case(_null("region", pl.Null()), "region"),
    "null_key": Case(_null("customer_id"), "customer_id"),
    "null_date": Case(_null("application_date"), "application_date"),
    "mixed_text": Case(_cycle("income", ["12", "abc", "3.5"]), "income"),
    "mixed_target": Case(_cycle("default", ["0", "1", "n/a"]), "default"),
    "categorical_text": Case(lambda t: t.with_columns(pl.col("region").cast(pl.Categorical)), "region"),
    "dates_text": Case(_cycle("application_date", DATE_TEXTS), "application_date"),
    "dates_unreadable": Case(_cycle("application_date", ["2024-01-05", "not a date", "2024-13-45"]),
                             "application_date"),
}


# ---- each node with valid settings for the credit table ---------------------------------------------------------
Inputs = Callable[[pl.DataFrame, Path], dict[str, Any]]


def _table(t: pl.DataFrame, _: Path) -> dict[str, Any]:
    return {"table": t}


@dataclass(frozen=True)
class Spec:
    type_id: str
    settings: dict[str, Any]
    inputs: Inputs = _table
    variant: str = ""  # tells apart several specs of one node type in test ids
    same_rows: bool = True  # the "table" output keeps the input's rows (and columns)
    keeps_columns: bool = True

    @property
    def id(self) -> str:
        return f"{self.type_id}[{self.variant}]" if self.variant else self.type_id


REGIONS = pl.DataFrame({"region": ["North", "South", "East", "华东"], "region_rate": [0.1, 0.2, 0.15, 0.05]})


@functools.cache
def _fitted_transform() -> FittedTransform:
    """Impute → scale → one-hot → WOE bins, fitted on the valid table, as a test part would get them."""
    from nodes.features.transforms.binning import Binning
    from nodes.features.transforms.encode import Encode
    from nodes.features.transforms.impute import Impute
    from nodes.features.transforms.scale import Scale

    t = credit()
    step = run_node(Impute, {"table": t}, {"columns": ["income", "region"]})
    step = run_node(Scale, {"table": step["table"], "previous": step["transform"]}, {"columns": ["age"]})
    step = run_node(Encode, {"table": step["table"], "previous": step["transform"]},
                    {"columns": ["region"], "drop_original": False})
    step = run_node(Binning, {"table": step["table"], "previous": step["transform"]},
                    {"columns": ["income"], "target": "default", "method": "quantile", "max_bins": 4})
    return step["transform"]


def _register(project: Path, table: pl.DataFrame, name: str = "credit") -> Any:
    from nodes.featurestore.nodes import RegisterFeatureView

    return run_inline(RegisterFeatureView, {"table": table}, {"store": "fs", "name": name, "entity": "customer_id",
                                                              "timestamp": "application_date"}, project_dir=project)


def _get_features_inputs(t: pl.DataFrame, project: Path) -> dict[str, Any]:
    assert _register(project, credit().select("customer_id", "application_date", "income", "age")).error is None
    return {"entities": t.drop("income", "age")}


WINDOWS = {"entity": "customer_id", "timestamp": "application_date", "values": ["income"], "windows_days": [30, 90],
           "aggs": ["sum", "count", "mean", "std"]}
SPECS: list[Spec] = [
    Spec("io.write_csv", {"path": "out/applications.csv"}, same_rows=False),
    Spec("io.write_parquet", {"path": "out/applications.parquet"}, same_rows=False),
    Spec("explore.profile", {"target": "default"}, same_rows=False),
    Spec("features.filter", {"condition": "age >= 30 and income > 1500 and region != 'East'"}, same_rows=False),
    Spec("features.select", {"columns": ["customer_id", "age", "income", "default"], "rename": {"age": "age_years"},
                             "cast": {"income": "float", "age": "float"}}, keeps_columns=False),
    Spec("features.derive", {"name": "income_per_year", "expression": "income / age + if(region == 'North', 1, 0)"}),
    Spec("features.join", {"left_on": ["region"], "how": "left"}, inputs=lambda t, _: {"left": t, "right": REGIONS},
         variant="bad left"),
    Spec("features.join", {"left_on": ["region"], "how": "left"}, variant="bad right", keeps_columns=False,
         inputs=lambda t, _: {"left": REGIONS.select("region"), "right": t.unique("region", keep="first")}),
    Spec("features.group_by", {"by": ["region"], "aggregations": [
        {"column": "income", "function": "mean"}, {"column": "default", "function": "sum"},
        {"column": "customer_id", "function": "count"}]}, same_rows=False),
    Spec("features.split", {"stratify_by": "default"}, same_rows=False),
    Spec("features.date_parts", {"columns": ["application_date"], "parts": ["year", "month", "days_since"],
                                 "reference": "2024-12-31"}),
    Spec("features.window_aggregates", WINDOWS, inputs=lambda t, _: {"events": t, "entities": t},
         variant="bad events and entities"),
    Spec("features.window_aggregates", WINDOWS, inputs=lambda t, _: {"events": credit(), "entities": t},
         variant="bad entities"),
    Spec("features.impute", {"exclude": ["default"], "add_indicator": True}),
    Spec("features.scale", {"columns": ["age", "income"]}),
    Spec("features.encode", {"method": "onehot", "columns": ["region"], "drop_original": False}, variant="onehot"),
    Spec("features.encode", {"method": "woe", "columns": ["region"], "target": "default", "drop_original": False},
         variant="woe"),
    Spec("features.encode", {"method": "target", "columns": ["region"], "target": "default", "folds": 3,
                             "drop_original": False}, variant="target"),
    Spec("features.binning", {"columns": ["age", "income"], "target": "default", "method": "optimal"},
         variant="optimal"),
    Spec("features.binning", {"columns": ["age", "income"], "method": "quantile", "output": "bin"},
         variant="quantile"),
    Spec("features.auto", {"target": "default", "kinds": ["ratio", "difference", "woe_bin"], "top_k_pairs": 3,
                           "max_features": 5}),
    Spec("features.apply_transform", {}, inputs=lambda t, _: {"table": t, "transform": _fitted_transform()}),
    Spec("featurestore.register", {"store": "fs", "name": "applications", "entity": "customer_id",
                                   "timestamp": "application_date", "features": ["age", "income", "region"]},
         same_rows=False),
    Spec("automl.lightgbm", {"label": "default", "n_estimators": 5, "min_child_samples": 2},
         inputs=lambda t, _: {"train": t}, same_rows=False),
    Spec("automl.scorecard", {"label": "default", "min_iv": 0.0, "max_bins": 3},
         inputs=lambda t, _: {"train": t}, same_rows=False),
    Spec("automl.mlp", {"label": "default", "hidden_layers": "8", "epochs": 2},
         inputs=lambda t, _: {"train": t}, same_rows=False),
    Spec("featurestore.get_features", {"store": "fs", "features": ["credit"], "timestamp": "application_date"},
         inputs=_get_features_inputs, keeps_columns=False),
    # the embedded asset center in the tests' LEDGERFLOW_HOME; every bad table is still data someone may publish
    Spec("assets.publish", {"project": "sweep", "name": "applications"}, same_rows=False),
    Spec("label.label", {"task": "sweep", "id_column": "customer_id"}, variant="record"),
    Spec("label.label", {"task": "sweep", "kind": "text", "text_column": "region"}, variant="text"),
]
NODE_CLASSES = {cls.type_id: cls for cls in nodes.NODES}
# Nodes that may change a kept column's type: what they fill or scale, or join keys compared as text.
RETYPING = {"features.impute", "features.scale", "features.apply_transform", "features.join"}


def test_every_node_with_a_table_input_is_swept():
    with_table = {cls.type_id for cls in nodes.NODES
                  if any(issubclass(p.type, Table) for p in cls.input_ports.values())}
    assert with_table - SKIPPED == {s.type_id for s in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_valid_input_runs(spec: Spec, tmp_path: Path):
    """The settings are right: the clean table goes through, so failures below are about the bad input."""
    inputs = spec.inputs(credit(), tmp_path)
    outcome = run_inline(NODE_CLASSES[spec.type_id], inputs, spec.settings, project_dir=tmp_path)
    assert outcome.error is None, f"{outcome.error}\n{outcome.traceback}"
    _check_outputs(spec, inputs, outcome.outputs or {}, tmp_path)


@pytest.mark.parametrize("case", list(CASES), ids=str)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_bad_input_gives_a_clear_message_or_a_sensible_output(spec: Spec, case: str, tmp_path: Path):
    inputs = spec.inputs(CASES[case].make(credit()), tmp_path)
    outcome = run_inline(NODE_CLASSES[spec.type_id], inputs, spec.settings, project_dir=tmp_path)
    if outcome.error is not None:
        _assert_clear(outcome, case)
        return
    _check_outputs(spec, inputs, outcome.outputs or {}, tmp_path)


def _assert_clear(outcome: Any, case: str) -> None:
    """A NodeInputError (not a crash) whose message names the bad column or the problem."""
    assert outcome.input_error, f"crash on {case}: {outcome.error}\n{outcome.traceback}"
    named = [w for w in (CASES[case].column, *CASES[case].words) if w]
    assert any(w.lower() in outcome.error.lower() for w in named), \
        f"the message does not name {named}: {outcome.error}"


def _check_outputs(spec: Spec, inputs: dict[str, Any], outputs: dict[str, Any], project: Path) -> None:
    """Tables where tables are due; row-keeping nodes keep every row (0 in, 0 out) and the input columns."""
    ports = NODE_CLASSES[spec.type_id].output_ports
    assert set(outputs) == set(ports)
    for port, value in outputs.items():
        if ports[port].type is Table:
            assert isinstance(value, pl.DataFrame)
    first = next(iter(inputs.values()))  # the table the output rows follow (left, entities, table)
    if spec.type_id == "features.window_aggregates":
        first = inputs["entities"]
    if spec.same_rows:
        out = outputs["table"]
        assert out.height == first.height
        if spec.keeps_columns:
            assert set(first.columns) <= set(out.columns)
            if spec.type_id not in RETYPING:
                assert out.select(first.columns).schema == first.schema
    if spec.type_id == "features.split":
        assert outputs["train"].height + outputs["test"].height == first.height
    if spec.type_id == "features.filter":
        assert outputs["table"].height <= first.height and outputs["table"].columns == first.columns
    if spec.type_id.startswith("io.write_"):
        path = project / spec.settings["path"]
        back = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema=False)
        assert back.height == first.height and back.columns == first.columns


# ---- the feature store end to end: what Register accepted, Materialize and Get features must serve -------------
@pytest.mark.parametrize("case", list(CASES), ids=str)
def test_feature_store_serves_what_register_accepted(case: str, tmp_path: Path):
    from nodes.featurestore.nodes import GetFeatures, Materialize

    bad = CASES[case].make(credit())
    registered = _register(tmp_path, bad, "applications")
    if registered.error is not None:
        _assert_clear(registered, case)
        return
    materialized = run_inline(Materialize, {"report": registered.outputs["report"]}, {"store": "fs"},
                              project_dir=tmp_path)
    assert materialized.error is None, f"{materialized.error}\n{materialized.traceback}"
    labels = credit().select("customer_id", "application_date")
    got = run_inline(GetFeatures, {"entities": labels}, {"store": "fs", "features": ["applications:age",
                     "applications:region"], "timestamp": "application_date"}, project_dir=tmp_path)
    assert got.error is None, f"{got.error}\n{got.traceback}"
    out = got.outputs["table"]
    assert out.height == N and out.columns == ["customer_id", "application_date", "age", "region"]
    if case in ("null_feature", "null_target", "mixed_text"):  # keys, times, age and region untouched
        assert out.select("age", "region").equals(credit().select("age", "region"))
    if case in ("null_text", "null_text_nulltype"):
        assert out["region"].null_count() == N and out["age"].to_list() == credit()["age"].to_list()
    if case in ("null_key", "null_date", "empty"):  # nothing usable was stored: every feature is missing
        assert out["age"].null_count() == N


# ---- specific outcomes the sweep only checks in general ---------------------------------------------------------
def test_dates_written_several_ways_are_all_read():
    from nodes.features.dates import DateParts

    table = CASES["dates_text"].make(credit())
    out = run_node(DateParts, {"table": table}, {"columns": ["application_date"], "parts": ["year", "month", "day"]})
    assert out["table"]["application_date_year"].to_list() == [2024] * N
    assert out["table"]["application_date_month"].to_list() == [[1, 2, 3, 3, 3][i % 5] for i in range(N)]
    assert out["table"]["application_date_day"].to_list() == [[5, 3, 4, 5, 5][i % 5] for i in range(N)]


def test_unreadable_dates_are_listed_with_their_rows():
    from nodes.features.dates import DateParts

    with pytest.raises(NodeFailed) as err:
        run_node(DateParts, {"table": CASES["dates_unreadable"].make(credit())}, {"columns": ["application_date"]})
    assert err.value.input_error
    assert "row 2: 'not a date'" in str(err.value) and "row 3: '2024-13-45'" in str(err.value)


def test_numbers_read_as_text_are_named_with_their_type_in_expression_errors():
    from nodes.features.table_ops import DeriveColumn, FilterRows

    table = CASES["mixed_text"].make(credit())
    for cls, settings in ((DeriveColumn, {"name": "x", "expression": "income / age"}),
                          (FilterRows, {"condition": "income > 1500"})):
        with pytest.raises(NodeFailed) as err:
            run_node(cls, {"table": table}, settings)
        assert err.value.input_error and "cannot be computed" in str(err.value)
        assert "'income' (String)" in str(err.value)
    with pytest.raises(NodeFailed) as err:
        run_node(DeriveColumn, {"table": table}, {"name": "x", "expression": "age * 2 + income"})
    assert "'age' (Int64), 'income' (String)" in str(err.value)


def test_join_compares_categorical_keys_with_text_keys_as_text():
    from nodes.features.table_ops import Join

    left = credit().with_columns(pl.col("region").cast(pl.Categorical))
    expected = credit().join(REGIONS, on="region", how="left", maintain_order="left")["region_rate"]
    for l_, r_ in ((left, REGIONS), (credit(), REGIONS.with_columns(pl.col("region").cast(pl.Categorical))),
                   (left, REGIONS.with_columns(pl.col("region").cast(pl.Enum(["South", "North", "East", "华东"]))))):
        out = run_node(Join, {"left": l_, "right": r_}, {"left_on": ["region"]})["table"]
        assert out["region_rate"].to_list() == expected.to_list()
        assert out["region"].to_list() == credit()["region"].to_list()


def test_join_on_a_key_with_no_values_matches_nothing():
    from nodes.features.table_ops import Join

    left = CASES["null_text_nulltype"].make(credit())
    out = run_node(Join, {"left": left, "right": REGIONS}, {"left_on": ["region"], "how": "left"})["table"]
    assert out.height == N and out["region_rate"].null_count() == N
    inner = run_node(Join, {"left": REGIONS, "right": left}, {"left_on": ["region"], "how": "inner"})["table"]
    assert inner.height == 0
    with pytest.raises(NodeFailed, match=r"left 'customer_id' is String, right 'customer_id' is Int64") as err:
        run_node(Join, {"left": credit(), "right": credit().with_columns(pl.int_range(N).alias("customer_id"))},
                 {"left_on": ["customer_id"]})
    assert err.value.input_error


def test_split_counts_nan_in_the_stratify_column_as_missing():
    from nodes.features.split import Split

    table = credit().with_columns(pl.when(pl.int_range(N) % 4 == 0).then(float("nan"))
                                  .otherwise(pl.col("default").cast(pl.Float64)).alias("default"))
    with pytest.raises(NodeFailed, match=r"Stratify column 'default' has 10 missing values") as err:
        run_node(Split, {"table": table}, {"stratify_by": "default"})
    assert err.value.input_error


def test_automatic_features_name_the_numeric_columns_left_out():
    from nodes.features.autofeatures import AutoFeatures

    table = credit().with_columns(pl.lit(None, pl.Float64).alias("income"), pl.lit(30).alias("age"))
    with pytest.raises(NodeFailed) as err:
        run_node(AutoFeatures, {"table": table}, {"target": "default", "kinds": ["ratio", "woe_bin"]})
    assert err.value.input_error and "Numeric columns left out: 'age', 'income'" in str(err.value)
