"""Table operations analysts do all day: a derived column, filtering rows, selecting/renaming/casting columns.

Expressions are the safe language of `nodes.features.expressions` (parsed to polars, never evaluated as Python),
so a project file from someone else cannot run code, and a typo is reported at its column in the expression.
"""
from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.columns import require_columns
from nodes.features.expressions import ExpressionError, parse_expression
from nodes.io.common import POLARS_TYPES, ColumnType, cast_strings


def _evaluate(table: pl.DataFrame, text: str, what: str, build) -> pl.DataFrame:  # noqa: ANN001
    """Parse `text` against the table's columns and apply `build(expr)`; both kinds of failure name the setting."""
    try:
        expr = parse_expression(text, table.columns)
    except ExpressionError as exc:
        raise NodeInputError(tr("{what}: {error}", what=what, error=exc)) from None
    try:
        return build(expr)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        message = tr("{what}: the expression cannot be computed on this table: {error}", what=what,
                     error=str(exc).splitlines()[0])
        used = [c for c in dict.fromkeys(expr.meta.root_names()) if c in table.columns]
        if used:  # polars names types, not columns: say which column has which type (a number read as text)
            message += ". " + tr("Columns used: {columns}", columns=", ".join(
                f"{c!r} ({table.schema[c]})" for c in used))
        raise NodeInputError(message) from None


class DeriveSettings(NodeSettings):
    name: str = Field(min_length=1, title=N_("New column"), description=N_("Name of the column to add (or replace)"))
    expression: str = Field(min_length=1, title=N_("Expression"), description=N_(
        "e.g. monthly_debt / (annual_income / 12), if(age < 25, 'young', 'other'), year(opened)"))


@node("features.derive", version=1, title=N_("Derived column"), category=N_("Features"), icon="derive")
class DeriveColumn(Node):
    """Add a column computed from others with a safe expression (arithmetic, comparisons, functions)."""

    inputs = {"table": Table}
    outputs = {"table": Table}
    Settings = DeriveSettings

    def compute(self, inputs: dict, settings: DeriveSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        if settings.name in table.columns:
            ctx.log.info("replacing the existing column %r", settings.name)
        out = _evaluate(table, settings.expression, tr("Expression"),
                        lambda e: table.with_columns(e.alias(settings.name)))
        return {"table": out}


class FilterSettings(NodeSettings):
    condition: str = Field(min_length=1, title=N_("Keep rows where"),
                           description=N_("e.g. age >= 18 and region in ('华东', 'North') and not is_null(income)"))


@node("features.filter", version=1, title=N_("Filter rows"), category=N_("Features"), icon="filter")
class FilterRows(Node):
    """Keep the rows where a condition holds (rows where it is null are dropped)."""

    inputs = {"table": Table}
    outputs = {"table": Table}
    Settings = FilterSettings

    def compute(self, inputs: dict, settings: FilterSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]

        def keep(expr: pl.Expr) -> pl.DataFrame:
            mask = table.select(expr.alias("_keep")).to_series()
            if mask.dtype != pl.Boolean:
                raise NodeInputError(tr("Keep rows where: the condition gives {dtype} values, not true/false; "
                                        "compare it, e.g. amount > 0", dtype=mask.dtype))
            return table.filter(mask.fill_null(False))

        out = _evaluate(table, settings.condition, tr("Keep rows where"), keep)
        ctx.log.info("kept %d of %d rows", out.height, table.height)
        return {"table": out}


class SelectSettings(NodeSettings):
    columns: list[str] = Field(default_factory=list, title=N_("Keep columns"),
                               description=N_("In this order; empty keeps every column"))
    rename: dict[str, str] = Field(default_factory=dict, title=N_("Rename"), description=N_("old name → new name"))
    cast: dict[str, ColumnType] = Field(default_factory=dict, title=N_("Change types"))


@node("features.select", version=1, title=N_("Select columns"), category=N_("Features"), icon="select")
class SelectColumns(Node):
    """Keep, reorder, rename and retype columns."""

    inputs = {"table": Table}
    outputs = {"table": Table}
    Settings = SelectSettings

    def compute(self, inputs: dict, settings: SelectSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        require_columns(table, settings.columns, tr("Keep columns"))
        require_columns(table, list(settings.rename), tr("Rename"))
        require_columns(table, list(settings.cast), tr("Change types"))
        for col, kind in settings.cast.items():
            table = table.with_columns(_cast(table[col], kind).alias(col))
        if settings.columns:
            table = table.select(settings.columns)
        names = [settings.rename.get(c, c) for c in table.columns]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise NodeInputError(tr("Rename would give several columns the name {names}", names=", ".join(duplicated)))
        return {"table": table.rename({k: v for k, v in settings.rename.items() if k in table.columns})}


def _cast(source: pl.Series, kind: str) -> pl.Series:
    """Cast a column; values that cannot be converted are an error naming the first one (never silent nulls)."""
    if source.dtype == pl.String:
        cast = cast_strings(source, kind)
    else:
        cast = source.cast(POLARS_TYPES[kind], strict=False)
    failed = (cast.is_null() & source.is_not_null()).arg_true()
    if len(failed):
        row = int(failed[0])
        raise NodeInputError(tr("Change types: column {name!r}, row {row}: cannot convert {value!r} to {kind} "
                                "({n} values fail)", name=source.name, row=row + 1, value=source[row], kind=kind,
                                n=len(failed)))
    return cast


JoinHow = Literal["inner", "left", "full", "semi", "anti"]


class JoinSettings(NodeSettings):
    left_on: list[str] = Field(min_length=1, title=N_("Key columns (left)"))
    right_on: list[str] = Field(default_factory=list, title=N_("Key columns (right)"),
                                description=N_("Empty: the same names as on the left"))
    how: JoinHow = Field("left", title=N_("Keep"), description=N_(
        "inner: matching rows; left: every left row; full: every row; semi: left rows with a match; anti: left "
        "rows without one"))
    suffix: str = Field("_right", min_length=1, title=N_("Suffix for clashing right columns"))


@node("features.join", version=1, title=N_("Join"), category=N_("Features"), icon="join")
class Join(Node):
    """Combine two tables on key columns."""

    inputs = {"left": Table, "right": Table}
    outputs = {"table": Table}
    Settings = JoinSettings

    def compute(self, inputs: dict, settings: JoinSettings, ctx: Context) -> dict:
        left, right = inputs["left"], inputs["right"]
        right_on = settings.right_on or settings.left_on
        if len(right_on) != len(settings.left_on):
            raise NodeInputError(tr("Join: {n} key columns on the left but {m} on the right; give the same number",
                                    n=len(settings.left_on), m=len(right_on)))
        require_columns(left, settings.left_on, tr("Key columns (left)"))
        require_columns(right, right_on, tr("Key columns (right)"))
        left, right = _align_key_types(left, right, settings.left_on, right_on)
        out = left.join(right, left_on=settings.left_on, right_on=right_on, how=settings.how,
                        suffix=settings.suffix, coalesce=True)
        ctx.log.info("%s join: %d left rows, %d right rows -> %d rows", settings.how, left.height, right.height,
                     out.height)
        return {"table": out}


def _align_key_types(left: pl.DataFrame, right: pl.DataFrame, left_on: list[str],
                     right_on: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Numeric keys of different widths are widened to a common type, categorical keys against text are compared as
    text, and a key of the Null type (no values at all) takes the other side's type; keys of different kinds (a
    number against text) are an error, because silently casting one would drop or mismatch rows."""
    for lc, rc in zip(left_on, right_on):
        lt, rt = left.schema[lc], right.schema[rc]
        if lt == rt:
            continue
        if lt.is_numeric() and rt.is_numeric():
            common = pl.Float64 if (lt.is_float() or rt.is_float()) else pl.Int64
            left, right = left.with_columns(pl.col(lc).cast(common)), right.with_columns(pl.col(rc).cast(common))
            continue
        if _is_text(lt) and _is_text(rt):  # categorical/enum against text: compare the labels
            left = left.with_columns(pl.col(lc).cast(pl.String))
            right = right.with_columns(pl.col(rc).cast(pl.String))
            continue
        if lt == pl.Null or rt == pl.Null:  # a key with no values at all (read as the Null type) matches nothing
            common = rt if lt == pl.Null else lt
            left, right = left.with_columns(pl.col(lc).cast(common)), right.with_columns(pl.col(rc).cast(common))
            continue
        raise NodeInputError(tr(
            "Join keys have different types: left {lc!r} is {lt}, right {rc!r} is {rt}. Convert one with Select "
            "columns (Change types) so both are the same.", lc=lc, lt=lt, rc=rc, rt=rt))
    return left, right


def _is_text(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum))


AggFunction = Literal["sum", "mean", "median", "min", "max", "std", "count", "n_unique", "first", "last"]


class Aggregation(NodeSettings):
    column: str = Field(min_length=1, title=N_("Column"))
    function: AggFunction = Field("sum", title=N_("Function"))
    name: str | None = Field(None, title=N_("Result name"), description=N_("Empty: column_function"))


class GroupBySettings(NodeSettings):
    by: list[str] = Field(min_length=1, title=N_("Group columns"))
    aggregations: list[Aggregation] = Field(min_length=1, title=N_("Aggregations"), description=N_(
        'e.g. [{"column": "amount", "function": "sum"}, {"column": "txn_id", "function": "count"}]'))


@node("features.group_by", version=1, title=N_("Group by"), category=N_("Features"), icon="group")
class GroupBy(Node):
    """Aggregate rows per group (sum, mean, count, …), one row per group, in a stable order."""

    inputs = {"table": Table}
    outputs = {"table": Table}
    Settings = GroupBySettings

    def compute(self, inputs: dict, settings: GroupBySettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        require_columns(table, settings.by, tr("Group columns"))
        require_columns(table, [a.column for a in settings.aggregations], tr("Aggregations"))
        exprs, names = [], []
        for agg in settings.aggregations:
            if agg.function in ("sum", "mean", "median", "std") and not table.schema[agg.column].is_numeric():
                raise NodeInputError(tr("Aggregations: {fn} needs a numeric column, but {col!r} is {dtype}",
                                        fn=agg.function, col=agg.column, dtype=table.schema[agg.column]))
            name = agg.name or f"{agg.column}_{agg.function}"
            names.append(name)
            col = pl.col(agg.column)
            exprs.append((col.count() if agg.function == "count" else getattr(col, agg.function)()).alias(name))
        clash = sorted({n for n in names if names.count(n) > 1 or n in settings.by})
        if clash:
            raise NodeInputError(tr("Aggregations: result names repeat or clash with the group columns: {names}",
                                    names=", ".join(clash)))
        out = table.group_by(settings.by, maintain_order=True).agg(exprs)
        return {"table": out}
