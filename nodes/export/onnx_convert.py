"""A LightGBM model and the preparation fitted with it -> one self-contained ONNX graph that scores raw tables.

Why one named input per raw column (not one float matrix in `info["features"]` order): a bank's scoring service
holds raw application records, not our encoded matrix. With one input per column the package scores the same
table the model was trained from, and everything between (the fitted preparation: impute, scale, encode, binning,
and the LightGBM text-to-code mapping) is inside the graph, so a consumer cannot prepare data differently from
training. Numeric and boolean columns are `double` tensors of shape [N, 1] (booleans as 0/1; missing = NaN), text
columns are `string` tensors of shape [N, 1] (missing = the empty string, since ONNX strings have no null).

Preparation runs in double precision, as polars does; the values are cast to float32 only in front of the tree
ensemble, whose ONNX operator compares in float32 (onnxmltools rounds LightGBM's thresholds to match). Every
export is checked against native LightGBM on held-out rows (nodes/export/onnx_export.py), so a precision or
conversion problem fails the export instead of shipping.

Outputs: binary: `label` [N] (the class value) and `probability` [N] (the positive class); multiclass: `label`
and `probabilities` [N, C] (columns in `info["classes"]` order); regression: `prediction` [N].
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr
from engine.ports import FittedTransform, ModelRef

OPSET = 15  # the newest default-domain opset onnxmltools 1.16 converts LightGBM to
ML_OPSET = 3  # ai.onnx.ml: LabelEncoder v2 (typed keys and values)
IR_VERSION = 8  # the IR version that goes with opset 15; readable by every onnxruntime since 1.10
DOUBLE = "double"
STRING = "string"
MISSING_TEXT = ""
RESERVED = frozenset({"label", "probability", "probabilities", "prediction", "features"})  # graph outputs, inner
_INTERNAL = re.compile(r"^(lf\d+_|lgbm_)")  # the prefixes of generated tensor names


@dataclass(frozen=True)
class InputSpec:
    """One graph input: a raw table column, its kind (numeric | boolean | text) and ONNX element type."""

    name: str
    kind: str
    dtype: str  # "double" | "string"


@dataclass
class Converted:
    model: Any  # onnx.ModelProto
    inputs: list[InputSpec]
    outputs: list[str]
    problem_type: str


# ---- which raw columns the graph takes -------------------------------------------------------------
def transform_steps(model: ModelRef) -> list[FittedTransform]:
    from nodes.features.fitted import steps

    spec = model.info.get("transform")
    if not spec:
        return []
    return steps(FittedTransform(spec["kind"], spec["params"], tuple(spec["columns"])))


def raw_columns(model: ModelRef) -> list[str]:
    """The table columns scoring reads: those the preparation reads before making them, then the model's
    features that no step makes (in the model's feature order)."""
    needed: list[str] = []
    made: set[str] = set()
    for step in transform_steps(model):
        needed.extend(c for c in step.columns if c not in made and c not in needed)
        made.update(step.params.get("outputs", []))
    needed.extend(f for f in model.info.get("features", []) if f not in made and f not in needed)
    return needed


def input_specs(model: ModelRef, table: pl.DataFrame) -> list[InputSpec]:
    """Graph inputs typed from `table` (a raw table as scoring will see it); NodeInputError naming a missing or
    unusable column."""
    from nodes.automl.flavors import kind_of

    columns = raw_columns(model)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise NodeInputError(tr("The holdout table lacks columns the model reads: {cols}",
                                cols=", ".join(repr(c) for c in missing)))
    expected = model.info.get("feature_kinds") or {}
    specs = []
    for c in columns:
        kind = kind_of(table.schema[c])
        if kind == "other":  # an all-null column: trust what training saw
            kind = expected.get(c, "numeric")
        if kind not in ("numeric", "boolean", "text"):
            raise NodeInputError(tr("Column {col!r} is {dtype}; an ONNX package takes numbers, booleans and text "
                                    "only. Derive numbers from it before training.", col=c,
                                    dtype=str(table.schema[c])))
        want = expected.get(c)
        if want and want != kind and {want, kind} != {"numeric", "boolean"}:
            raise NodeInputError(tr("Column {col!r} is {got} in the holdout table, but the model was trained on "
                                    "{want}", col=c, got=kind, want=want))
        if c in RESERVED or _INTERNAL.match(c):
            raise NodeInputError(tr("Column {col!r} has a name the ONNX graph uses for its own tensors; rename it "
                                    "before training to export the model", col=c))
        specs.append(InputSpec(c, kind, STRING if kind == "text" else DOUBLE))
    return specs


def feeds(inputs: list[InputSpec], table: pl.DataFrame) -> dict[str, np.ndarray]:
    """The onnxruntime feed for `table`: doubles with NaN for missing, strings with "" for missing."""
    out: dict[str, np.ndarray] = {}
    for spec in inputs:
        col = table.get_column(spec.name)
        if spec.dtype == STRING:
            values = col.cast(pl.String).fill_null(MISSING_TEXT).to_numpy().astype(object)
        else:
            values = col.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64)
        out[spec.name] = values.reshape(-1, 1)
    return out


# ---- graph building ----------------------------------------------------------------------------------
class _Graph:
    """Nodes and constants of the graph under construction, with unique generated names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        safe = "".join(ch if ch.isalnum() else "_" for ch in hint)[:40]
        return f"lf{self._n}_{safe}"

    def const(self, value: Any, hint: str = "c", dtype: Any = None) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        arr = np.asarray(value, dtype=dtype)
        if arr.dtype.kind in "OU":
            arr = arr.astype(object)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str = "", domain: str = "", **attrs: Any) -> str:
        from onnx import helper

        out = self.name(hint or op_type)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def missing(self, x: str, dtype: str) -> str:
        """Bool [N, 1]: NaN for doubles, the empty string for text."""
        if dtype == DOUBLE:
            return self.op("IsNaN", [x], "isnan")
        # string Equal arrives only with opset 19: a one-key LabelEncoder finds the empty string instead
        flag = self.op("LabelEncoder", [x], "empty", domain="ai.onnx.ml", keys_strings=[MISSING_TEXT],
                       values_int64s=[1], default_int64=0)
        return self.op("Cast", [flag], "isempty", to=_onnx().TensorProto.BOOL)

    def as_double(self, b: str) -> str:
        return self.op("Cast", [b], "cast", to=_onnx().TensorProto.DOUBLE)

    def code(self, x: str, dtype: str, keys: list[str], codes: list[int], default: int, hint: str) -> str:
        """Int64 [N, 1]: codes[i] where x equals keys[i] (text keys as stored: strings), else `default`."""
        if dtype == STRING:
            if not keys:
                return self.op("Where", [self.missing(x, dtype), self.const([default], "d", np.int64),
                                         self.const([default], "d", np.int64)], hint)
            return self.op("LabelEncoder", [x], hint, domain="ai.onnx.ml", keys_strings=list(keys),
                           values_int64s=[int(c) for c in codes], default_int64=int(default))
        numbers = [(k, c) for k, c in zip(keys, codes) if _number(k) is not None]
        if not numbers:
            return self.op("Where", [self.missing(x, dtype), self.const([default], "d", np.int64),
                                     self.const([default], "d", np.int64)], hint)
        TensorProto = _onnx().TensorProto
        values = self.const([_number(k) for k, _ in numbers], "keys", np.float64)
        hits = self.op("Cast", [self.op("Equal", [x, values], "eq")], "hits", to=TensorProto.DOUBLE)  # [N, K]
        table = self.const([[float(c)] for _, c in numbers], "codes", np.float64)  # [K, 1]
        # at most one key matches a value: (hits @ codes) is its code, the row max says whether one matched
        picked = self.op("Cast", [self.op("MatMul", [hits, table], "pick")], "pick64", to=TensorProto.INT64)
        found = self.op("ReduceMax", [hits], "found", axes=[1], keepdims=1)
        matched = self.op("Greater", [found, self.const([0.5], "half", np.float64)], "matched")
        return self.op("Where", [matched, picked, self.const([default], "d", np.int64)], hint)

    def lookup(self, index: str, values: list[Any], dtype: str, hint: str) -> str:
        """values[index] for an int64 [N, 1] index (double or string values)."""
        table = self.const(values, "table", np.float64 if dtype == DOUBLE else object)
        return self.op("Gather", [table, index], hint, axis=0)


def _onnx():
    import onnx

    return onnx


def _number(key: str) -> float | None:
    """A category key (stored as text) as the double an integer or boolean column carries in the graph."""
    if key == "true":
        return 1.0
    if key == "false":
        return 0.0
    try:
        value = float(key)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


Env = dict[str, tuple[str, str]]  # column -> (tensor name, "double" | "string")


def _cannot(kind: str, why: str = "") -> NodeInputError:
    msg = tr("cannot export transform {kind} to ONNX", kind=kind)
    return NodeInputError(f"{msg}: {why}" if why else msg)


def _column(env: Env, col: str, kind: str) -> tuple[str, str]:
    if col not in env:
        raise _cannot(kind, tr("column {col!r} is not available at this step", col=col))
    return env[col]


def _impute(g: _Graph, env: Env, params: dict) -> None:
    flags = {}
    for c in params.get("indicators", []):
        x, dtype = _column(env, c, "impute")
        flags[f"{c}_was_missing"] = (g.as_double(g.missing(x, dtype)), DOUBLE)
    for c, value in params.get("numeric", {}).items():
        x, dtype = _column(env, c, "impute")
        if dtype != DOUBLE:
            raise _cannot("impute", tr("column {col!r} was numeric when fitted but is text here", col=c))
        env[c] = (g.op("Where", [g.missing(x, dtype), g.const([float(value)], "fill", np.float64), x], c), DOUBLE)
    for c, value in params.get("categorical", {}).items():
        x, dtype = _column(env, c, "impute")
        if dtype == STRING:
            env[c] = (g.op("Where", [g.missing(x, dtype), g.const(np.array([value], dtype=object), "fill"), x], c),
                      STRING)
        elif value in ("true", "false"):  # a boolean column stays 0/1
            fill = g.const([1.0 if value == "true" else 0.0], "fill", np.float64)
            env[c] = (g.op("Where", [g.missing(x, dtype), fill, x], c), DOUBLE)
        else:
            raise _cannot("impute", tr("filling boolean column {col!r} with {value!r} turns it into text",
                                       col=c, value=value))
    env.update(flags)


def _scale(g: _Graph, env: Env, params: dict) -> None:
    for c, mid in params.get("center", {}).items():
        x, dtype = _column(env, c, "scale")
        if dtype != DOUBLE:
            raise _cannot("scale", tr("column {col!r} is text", col=c))
        centred = g.op("Sub", [x, g.const([float(mid)], "center", np.float64)], "sub")
        env[c] = (g.op("Div", [centred, g.const([float(params["scale"][c])], "scale", np.float64)], c), DOUBLE)


def _onehot(g: _Graph, env: Env, params: dict) -> None:
    for e in params.get("entries", []):
        x, dtype = _column(env, e["column"], "encode_onehot")
        cats = list(e["categories"])
        n = len(cats)
        idx = g.code(x, dtype, cats, list(range(n)), n, "onehot_idx")
        for i, name in enumerate(e["names"]):
            env[name] = (g.as_double(g.op("Equal", [idx, g.const([i], "i", np.int64)], "is")), DOUBLE)
        if e.get("other"):
            unknown = g.op("Equal", [idx, g.const([n], "n", np.int64)], "unknown")
            other = g.op("And", [unknown, g.op("Not", [g.missing(x, dtype)], "present")], "other")
            env[e["other"]] = (g.as_double(other), DOUBLE)
    if params.get("drop_original"):
        for e in params.get("entries", []):
            env.pop(e["column"], None)


def _lookup_encoding(kind: str, values_key: str):  # target and WOE encodings share one shape
    def emit(g: _Graph, env: Env, params: dict) -> None:
        for e in params.get("entries", []):
            x, dtype = _column(env, e["column"], kind)
            cats = list(e["categories"])
            n = len(cats)
            idx = g.code(x, dtype, cats, list(range(n)), n, "enc_idx")
            known = g.lookup(idx, [float(v) for v in e[values_key]] + [float(e["unseen"])], DOUBLE, "enc")
            miss = g.const([float(e["missing"])], "missing", np.float64)
            env[e["output"]] = (g.op("Where", [g.missing(x, dtype), miss, known], e["output"]), DOUBLE)
        if params.get("drop_original"):
            for e in params.get("entries", []):
                env.pop(e["column"], None)
    return emit


def _binning(g: _Graph, env: Env, params: dict) -> None:
    from onnx import TensorProto

    for e in params.get("entries", []):
        x, dtype = _column(env, e["column"], "binning")
        k = len(e["labels"])
        if e["type"] == "numeric":
            if dtype != DOUBLE:
                raise _cannot("binning", tr("column {col!r} was numeric when fitted but is text here",
                                            col=e["column"]))
            if e["splits"]:  # bin = number of edges at or below x (left-closed bins), as search_sorted(right)
                above = g.op("GreaterOrEqual", [x, g.const(e["splits"], "splits", np.float64)], "ge")
                idx = g.op("ReduceSum", [g.op("Cast", [above], "ge64", to=TensorProto.INT64),
                                         g.const([1], "ax", np.int64)], "bin", keepdims=1)
            else:
                idx = g.op("Where", [g.missing(x, dtype), g.const([0], "z", np.int64),
                                     g.const([0], "z", np.int64)], "bin")
        else:
            keys = [c for grp in e["groups"] for c in grp]
            codes = [i for i, grp in enumerate(e["groups"]) for _ in grp]
            idx = g.code(x, dtype, keys, codes, k + 1, "bin")
        idx = g.op("Where", [g.missing(x, dtype), g.const([k], "k", np.int64), idx], "bin_or_missing")
        if params["output"] == "woe":
            env[e["output"]] = (g.lookup(idx, [*map(float, e["woe"]), float(e["missing_woe"]), 0.0], DOUBLE,
                                         e["output"]), DOUBLE)
        else:
            from nodes.features.transforms.binning import MISSING, UNSEEN

            env[e["output"]] = (g.lookup(idx, [*e["labels"], MISSING, UNSEEN], STRING, e["output"]), STRING)
    if not params.get("keep_original", True):
        for e in params.get("entries", []):
            env.pop(e["column"], None)


_EMITTERS = {
    "impute": _impute,
    "scale": _scale,
    "encode_onehot": _onehot,
    "encode_target": _lookup_encoding("encode_target", "values"),
    "encode_woe": _lookup_encoding("encode_woe", "woe"),
    "binning": _binning,
}


def check_exportable(model: ModelRef) -> None:
    """Fail before any work when a preparation step has no ONNX form (e.g. derived expressions)."""
    for step in transform_steps(model):
        if step.kind not in _EMITTERS:
            raise _cannot(step.kind)


# ---- the model --------------------------------------------------------------------------------------
def _booster(model: ModelRef):
    import lightgbm as lgb

    path = Path(model.path) / "model.txt"
    if not path.is_file():
        raise NodeInputError(tr("The LightGBM model folder {path} has no model.txt", path=model.path))
    return lgb.Booster(model_file=str(path))


def _tree_graph(model: ModelRef, n_features: int, input_name: str) -> tuple[list, list, dict[str, str]]:
    """onnxmltools' conversion of the booster, its tensors renamed under "lgbm_" so they cannot clash with ours;
    returns its nodes, constants and {its output name: our tensor name}."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster = _booster(model)
    if booster.num_feature() != n_features:
        raise NodeInputError(tr("The LightGBM model has {n} features but the model's info lists {m}",
                                n=booster.num_feature(), m=n_features))
    try:
        onx = convert_lightgbm(booster, initial_types=[("features", FloatTensorType([None, n_features]))],
                               zipmap=False, target_opset=OPSET)
    except (NotImplementedError, RuntimeError, TypeError, ValueError) as exc:
        raise NodeInputError(tr("onnxmltools cannot convert this LightGBM model: {error}",
                                error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None
    graph = onx.graph
    rename = {"features": input_name}

    def new(name: str) -> str:
        if not name:
            return name
        return rename.setdefault(name, f"lgbm_{name}")

    for init in graph.initializer:
        init.name = new(init.name)
    for n in graph.node:
        n.input[:] = [new(i) for i in n.input]
        n.output[:] = [new(o) for o in n.output]
        n.name = f"lgbm_{n.name}" if n.name else new(n.output[0])
    outputs = {o.name: rename.get(o.name, o.name) for o in graph.output}
    return list(graph.node), list(graph.initializer), outputs


def _feature_matrix(g: _Graph, env: Env, info: dict) -> str:
    """Float32 [N, F] in `info["features"]` order, encoded as the lightgbm flavor's `encode` does."""
    from onnx import TensorProto

    features: list[str] = list(info.get("features", []))
    if not features:
        raise NodeInputError(tr("The model lists no features"))
    categories: dict[str, list[str]] = info.get("categories") or {}
    columns = []
    for f in features:
        if f not in env:
            raise NodeInputError(tr("Feature {col!r} is neither a table column nor made by the preparation",
                                    col=f))
        x, dtype = env[f]
        if f in categories:  # LightGBM's code for a text label: its index in the training labels, else missing
            if dtype != STRING:
                raise NodeInputError(tr("Feature {col!r} was text in training but is a number here", col=f))
            labels = [str(v) for v in categories[f]]
            idx = g.code(x, dtype, labels, list(range(len(labels))), len(labels), "cat")
            x = g.lookup(idx, [float(i) for i in range(len(labels))] + [float("nan")], DOUBLE, f)
        elif dtype != DOUBLE:
            raise NodeInputError(tr("Feature {col!r} is text but the model has no categories for it (info "
                                    "'categories')", col=f))
        columns.append(x)
    matrix = g.op("Concat", columns, "features64", axis=1) if len(columns) > 1 else columns[0]
    return g.op("Cast", [matrix], "features", to=TensorProto.FLOAT)


def _class_table(g: _Graph, classes: list[Any]) -> tuple[str, int]:
    """The class values as a constant to gather labels from, and its ONNX element type."""
    from onnx import TensorProto

    if all(isinstance(c, bool) for c in classes):
        return g.const(classes, "classes", np.bool_), TensorProto.BOOL
    if any(isinstance(c, str) for c in classes):
        return g.const([str(c) for c in classes], "classes", object), TensorProto.STRING
    if all(float(c).is_integer() for c in classes):
        return g.const([int(c) for c in classes], "classes", np.int64), TensorProto.INT64
    return g.const([float(c) for c in classes], "classes", np.float64), TensorProto.DOUBLE


def _outputs(g: _Graph, info: dict, tree_out: dict[str, str]) -> list:
    """The public outputs (see the module docstring) on top of the tree ensemble's."""
    from onnx import TensorProto, helper

    problem = info["problem_type"]
    if problem == "regression":
        g.nodes.append(helper.make_node("Reshape", [tree_out["variable"], g.const([-1], "shape", np.int64)],
                                        ["prediction"], name="prediction"))
        return [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [None])]
    proba = tree_out["probabilities"]
    classes = info.get("class_values") or []
    if problem == "binary":  # as the lightgbm flavor: class_values[1] (the positive) from 0.5 up
        if len(classes) != 2:
            raise NodeInputError(tr("A binary model must list two class values; this one lists {n}",
                                    n=len(classes)))
        p1 = g.op("Gather", [proba, g.const([1], "pos", np.int64)], "p1", axis=1)
        index = g.op("Cast", [g.op("GreaterOrEqual", [p1, g.const([0.5], "half", np.float32)], "ge")],
                     "index", to=TensorProto.INT64)
        index = g.op("Reshape", [index, g.const([-1], "shape", np.int64)], "index")
    else:  # columns in class_values order (LightGBM was trained on the index in class_values)
        if not classes:
            raise NodeInputError(tr("The model lists no class values (info 'class_values')"))
        index = g.op("ArgMax", [proba], "argmax", axis=1, keepdims=0)
    table, elem = _class_table(g, classes)
    g.nodes.append(helper.make_node("Gather", [table, index], ["label"], name="label", axis=0))
    outputs = [helper.make_tensor_value_info("label", elem, [None])]
    if problem == "binary":
        g.nodes.append(helper.make_node("Gather", [proba, g.const(1, "pos", np.int64)], ["probability"],
                                        name="probability", axis=1))
        outputs.append(helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None]))
    else:
        g.nodes.append(helper.make_node("Identity", [proba], ["probabilities"], name="probabilities"))
        outputs.append(helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(classes)]))
    return outputs


def convert(model: ModelRef, inputs: list[InputSpec]) -> Converted:
    """The whole scoring path as one ONNX model. NodeInputError for what has no faithful ONNX form."""
    from onnx import TensorProto, checker, helper

    if model.flavor != "lightgbm":
        raise NodeInputError(tr("Export ONNX supports LightGBM models; this model's flavor is {flavor!r}",
                                flavor=model.flavor))
    check_exportable(model)
    info = model.info
    problem = info.get("problem_type")
    if problem not in ("binary", "multiclass", "regression"):
        raise NodeInputError(tr("The model's problem type {kind!r} cannot be exported", kind=problem))
    g = _Graph()
    env: Env = {s.name: (s.name, s.dtype) for s in inputs}
    for step in transform_steps(model):
        _EMITTERS[step.kind](g, env, step.params)
    features = list(info.get("features", []))
    tree_nodes, tree_inits, tree_out = _tree_graph(model, len(features), _feature_matrix(g, env, info))
    g.nodes.extend(tree_nodes)
    g.initializers.extend(tree_inits)
    outputs = _outputs(g, info, tree_out)
    graph_inputs = [helper.make_tensor_value_info(s.name, TensorProto.DOUBLE if s.dtype == DOUBLE
                                                  else TensorProto.STRING, [None, 1]) for s in inputs]
    graph = helper.make_graph(g.nodes, "ledgerflow_scoring", graph_inputs, outputs, initializer=g.initializers)
    onx = helper.make_model(graph, producer_name="ledgerflow", opset_imports=[
        helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
    onx.ir_version = IR_VERSION
    onx.doc_string = tr("Scores raw {label} records: the fitted preparation and the LightGBM model in one graph.",
                        label=info.get("label", ""))
    checker.check_model(onx)
    return Converted(onx, list(inputs), [o.name for o in outputs], problem)
