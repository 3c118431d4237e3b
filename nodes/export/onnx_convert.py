"""A LightGBM model and the preparation fitted with it -> one self-contained ONNX graph that scores raw tables.

Why raw columns in (not our encoded matrix): a bank's scoring service holds raw application records. The package
scores the same table the model was trained from, and everything between (the fitted preparation: impute, scale,
encode, binning, and the LightGBM text-to-code mapping) is inside the graph, so a consumer cannot prepare data
differently from training.

Why two matrix inputs (not one named input per column): onnxruntime converts and checks every input of every call,
and with 50 one-column inputs that cost (about 1 µs each) was twice the work of the 500 trees themselves for an
online, one-row decision. The raw columns therefore travel in at most two tensors: `numbers`, a `double` [N, k]
matrix of the numeric and boolean columns (booleans as 0/1; missing = NaN), and `texts`, a `string` [N, m] matrix
of the text columns (missing = the empty string, since ONNX strings have no null). The manifest lists every column
with its tensor and position; `feeds` builds both from a table.

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
NUMBERS, TEXTS = "numbers", "texts"  # the graph's two inputs
RESERVED = frozenset({"label", "probability", "probabilities", "prediction", "features", NUMBERS, TEXTS})
_INTERNAL = re.compile(r"^(lf\d+_|lgbm_)")  # the prefixes of generated tensor names


@dataclass(frozen=True)
class InputSpec:
    """One raw table column: its kind (numeric | boolean | text), ONNX element type, and where it travels: column
    `index` of the `tensor` input (NUMBERS for doubles, TEXTS for strings)."""

    name: str
    kind: str
    dtype: str  # "double" | "string"
    tensor: str = NUMBERS
    index: int = 0


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
    width = {NUMBERS: 0, TEXTS: 0}
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
        tensor = TEXTS if kind == "text" else NUMBERS
        specs.append(InputSpec(c, kind, STRING if kind == "text" else DOUBLE, tensor, width[tensor]))
        width[tensor] += 1
    return specs


def tensors(inputs: list[InputSpec]) -> dict[str, list[InputSpec]]:
    """The graph's inputs in order: tensor name -> its columns by position (only tensors with columns)."""
    out: dict[str, list[InputSpec]] = {}
    for spec in sorted(inputs, key=lambda s: (s.tensor != NUMBERS, s.index)):
        out.setdefault(spec.tensor, []).append(spec)
    return out


def feeds(inputs: list[InputSpec], table: pl.DataFrame) -> dict[str, np.ndarray]:
    """The onnxruntime feed for `table`: a double matrix with NaN for missing, a string matrix with "" for
    missing."""
    out: dict[str, np.ndarray] = {}
    for tensor, specs in tensors(inputs).items():
        names = [s.name for s in specs]
        if tensor == TEXTS:
            frame = table.select(pl.col(names).cast(pl.String).fill_null(MISSING_TEXT))
            out[tensor] = frame.to_numpy().astype(object).reshape(table.height, len(names))
        else:
            frame = table.select(pl.col(names).cast(pl.Float64).fill_null(float("nan")))
            out[tensor] = np.ascontiguousarray(frame.to_numpy(), dtype=np.float64).reshape(table.height, len(names))
    return out


# ---- graph building ----------------------------------------------------------------------------------
class _Graph:
    """Nodes and constants of the graph under construction, with unique generated names."""

    def __init__(self, numbers_width: int = 0) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self.numbers_width = numbers_width  # columns of the `numbers` input
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


@dataclass(frozen=True)
class _Raw:
    """A raw column not yet cut out of its input matrix: most columns go straight to the trees, and one Gather
    for all of them (in _feature_matrix) is far cheaper per call than one per column."""

    spec: InputSpec


Env = dict[str, tuple["str | _Raw", str]]  # column -> (tensor name or raw column, "double" | "string")


def _cannot(kind: str, why: str = "") -> NodeInputError:
    msg = tr("cannot export transform {kind} to ONNX", kind=kind)
    return NodeInputError(f"{msg}: {why}" if why else msg)


def _column(g: _Graph, env: Env, col: str, kind: str) -> tuple[str, str]:
    """Column `col` as a [N, 1] tensor for a preparation step of `kind` (cut out of its input on first use)."""
    if col not in env:
        raise _cannot(kind, tr("column {col!r} is not available at this step", col=col))
    x, dtype = env[col]
    if isinstance(x, _Raw):
        x = g.op("Gather", [x.spec.tensor, g.const([x.spec.index], "at", np.int64)], col, axis=1)
        env[col] = (x, dtype)
    return x, dtype


def _impute(g: _Graph, env: Env, params: dict) -> None:
    flags = {}
    for c in params.get("indicators", []):
        x, dtype = _column(g, env, c, "impute")
        flags[f"{c}_was_missing"] = (g.as_double(g.missing(x, dtype)), DOUBLE)
    for c, value in params.get("numeric", {}).items():
        x, dtype = _column(g, env, c, "impute")
        if dtype != DOUBLE:
            raise _cannot("impute", tr("column {col!r} was numeric when fitted but is text here", col=c))
        env[c] = (g.op("Where", [g.missing(x, dtype), g.const([float(value)], "fill", np.float64), x], c), DOUBLE)
    for c, value in params.get("categorical", {}).items():
        x, dtype = _column(g, env, c, "impute")
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
        x, dtype = _column(g, env, c, "scale")
        if dtype != DOUBLE:
            raise _cannot("scale", tr("column {col!r} is text", col=c))
        centred = g.op("Sub", [x, g.const([float(mid)], "center", np.float64)], "sub")
        env[c] = (g.op("Div", [centred, g.const([float(params["scale"][c])], "scale", np.float64)], c), DOUBLE)


def _onehot(g: _Graph, env: Env, params: dict) -> None:
    for e in params.get("entries", []):
        x, dtype = _column(g, env, e["column"], "encode_onehot")
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
            x, dtype = _column(g, env, e["column"], kind)
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
        x, dtype = _column(g, env, e["column"], "binning")
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
    returns its nodes, constants and {its output name: our tensor name}. A binary model comes back as its
    positive-class probability "p1" [N, 1] instead (see _binary_trees)."""
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
    if model.info.get("problem_type") == "binary":
        binary = _binary_trees(graph, input_name)
        if binary is not None:
            return binary
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


def _binary_trees(graph: Any, input_name: str) -> tuple[list, list, dict[str, str]] | None:
    """A binary classifier's trees as TreeEnsembleRegressor (the summed log-odds) followed by Sigmoid.

    Why: onnxruntime scores a one-target ensemble in blocks of rows, tree by tree (cache-friendly), but a
    two-class TreeEnsembleClassifier row by row through every tree; on 10,000 rows of a 500-tree model the
    regressor form is about 7% faster, and it also skips building the negative class's column. The sum, the
    sigmoid and so the probabilities are the same; the export's parity check compares them with LightGBM anyway.
    None (keep onnxmltools' graph) when the classifier is not the plain one-score binary form."""
    from onnx import helper

    trees = [n for n in graph.node if n.op_type == "TreeEnsembleClassifier"]
    if len(trees) != 1:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in trees[0].attribute}
    plain = set(attrs) <= {"class_ids", "class_nodeids", "class_treeids", "class_weights", "classlabels_int64s",
                           "post_transform"} | {k for k in attrs if k.startswith("nodes_")}
    if not plain or attrs.get("post_transform") != b"LOGISTIC" or set(attrs.get("class_ids", [])) != {0}:
        return None
    reg = {k: v for k, v in attrs.items() if k.startswith("nodes_")}
    reg.update(target_ids=attrs["class_ids"], target_nodeids=attrs["class_nodeids"],
               target_treeids=attrs["class_treeids"], target_weights=attrs["class_weights"], n_targets=1,
               aggregate_function="SUM", post_transform="NONE")
    nodes = [helper.make_node("TreeEnsembleRegressor", [input_name], ["lgbm_margin"], name="lgbm_trees",
                              domain="ai.onnx.ml", **reg),
             helper.make_node("Sigmoid", ["lgbm_margin"], ["lgbm_p1"], name="lgbm_sigmoid")]
    return nodes, [], {"p1": "lgbm_p1"}


def _feature_matrix(g: _Graph, env: Env, info: dict) -> str:
    """Float32 [N, F] in `info["features"]` order, encoded as the lightgbm flavor's `encode` does. Raw numeric
    features come from the `numbers` input in one Gather (none when it already is the matrix); only made and
    encoded columns are concatenated to it."""
    from onnx import TensorProto

    features: list[str] = list(info.get("features", []))
    if not features:
        raise NodeInputError(tr("The model lists no features"))
    categories: dict[str, list[str]] = info.get("categories") or {}
    made: list[str] = []  # [N, 1] tensors appended after the raw numbers
    positions: list[int | str] = []  # per feature: its column in `numbers`, or its made tensor
    for f in features:
        if f not in env:
            raise NodeInputError(tr("Feature {col!r} is neither a table column nor made by the preparation",
                                    col=f))
        x, dtype = env[f]
        if isinstance(x, _Raw) and dtype == DOUBLE and f not in categories:
            positions.append(x.spec.index)
            continue
        x, dtype = _column(g, env, f, "features")
        if f in categories:  # LightGBM's code for a text label: its index in the training labels, else missing
            if dtype != STRING:
                raise NodeInputError(tr("Feature {col!r} was text in training but is a number here", col=f))
            labels = [str(v) for v in categories[f]]
            idx = g.code(x, dtype, labels, list(range(len(labels))), len(labels), "cat")
            x = g.lookup(idx, [float(i) for i in range(len(labels))] + [float("nan")], DOUBLE, f)
        elif dtype != DOUBLE:
            raise NodeInputError(tr("Feature {col!r} is text but the model has no categories for it (info "
                                    "'categories')", col=f))
        positions.append(x)
        made.append(x)
    raw = [p for p in positions if isinstance(p, int)]
    offset = g.numbers_width if raw else 0  # made columns follow the whole `numbers` matrix
    parts = ([NUMBERS] if raw else []) + made
    order, k = [], 0
    for p in positions:
        order.append(p if isinstance(p, int) else offset + k)
        k += not isinstance(p, int)
    wide = g.op("Concat", parts, "features64", axis=1) if len(parts) > 1 else parts[0]
    if order == list(range(offset + len(made))):
        matrix = wide  # already in feature order (always so for a model on raw numbers alone): no Gather
    else:
        matrix = g.op("Gather", [wide, g.const(order, "order", np.int64)], "features64", axis=1)
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
    classes = info.get("class_values") or []
    if problem == "binary":  # as the lightgbm flavor: class_values[1] (the positive) from 0.5 up
        if len(classes) != 2:
            raise NodeInputError(tr("A binary model must list two class values; this one lists {n}",
                                    n=len(classes)))
        p1 = tree_out.get("p1") or g.op("Gather", [tree_out["probabilities"], g.const([1], "pos", np.int64)], "p1",
                                         axis=1)
        index = g.op("Cast", [g.op("GreaterOrEqual", [p1, g.const([0.5], "half", np.float32)], "ge")],
                     "index", to=TensorProto.INT64)
        index = g.op("Reshape", [index, g.const([-1], "shape", np.int64)], "index")
    else:  # columns in class_values order (LightGBM was trained on the index in class_values)
        if not classes:
            raise NodeInputError(tr("The model lists no class values (info 'class_values')"))
        index = g.op("ArgMax", [tree_out["probabilities"]], "argmax", axis=1, keepdims=0)
    table, elem = _class_table(g, classes)
    g.nodes.append(helper.make_node("Gather", [table, index], ["label"], name="label", axis=0))
    outputs = [helper.make_tensor_value_info("label", elem, [None])]
    if problem == "binary":
        g.nodes.append(helper.make_node("Reshape", [p1, g.const([-1], "shape", np.int64)], ["probability"],
                                        name="probability"))
        outputs.append(helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None]))
    else:
        g.nodes.append(helper.make_node("Identity", [tree_out["probabilities"]], ["probabilities"],
                                        name="probabilities"))
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
    groups = tensors(inputs)
    g = _Graph(len(groups.get(NUMBERS, [])))
    env: Env = {s.name: (_Raw(s), s.dtype) for s in inputs}
    for step in transform_steps(model):
        _EMITTERS[step.kind](g, env, step.params)
    features = list(info.get("features", []))
    tree_nodes, tree_inits, tree_out = _tree_graph(model, len(features), _feature_matrix(g, env, info))
    g.nodes.extend(tree_nodes)
    g.initializers.extend(tree_inits)
    outputs = _outputs(g, info, tree_out)
    graph_inputs = [helper.make_tensor_value_info(name, TensorProto.DOUBLE if name == NUMBERS else TensorProto.STRING,
                                                  [None, len(cols)]) for name, cols in groups.items()]
    graph = helper.make_graph(g.nodes, "ledgerflow_scoring", graph_inputs, outputs, initializer=g.initializers)
    onx = helper.make_model(graph, producer_name="ledgerflow", opset_imports=[
        helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
    onx.ir_version = IR_VERSION
    onx.doc_string = tr("Scores raw {label} records: the fitted preparation and the LightGBM model in one graph.",
                        label=info.get("label", ""))
    checker.check_model(onx)
    return Converted(onx, list(inputs), [o.name for o in outputs], problem)
