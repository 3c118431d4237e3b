"""Derived column, Filter rows and Select columns on real tables, with positioned errors for bad input."""
from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from engine.testing import NodeFailed, run_node
from nodes.features.table_ops import DeriveColumn, FilterRows, SelectColumns


@pytest.fixture
def loans() -> pl.DataFrame:
    return pl.DataFrame({
        "age": [22, 35, 51, None],
        "annual_income": [60000.0, 120000.0, 90000.0, 30000.0],
        "monthly_debt": [1000.0, 2500.0, None, 500.0],
        "region": ["华东", "North", "华南", "North"],
        "月收入": [5000, 10000, 7500, 2500],
        "opened": [date(2024, 1, 5), date(2023, 6, 30), date(2022, 12, 1), date(2024, 3, 3)],
        "amount_text": ["100", "250.5", "n/a", "75"],
    })


def test_derived_column_ratio_and_functions(loans):
    out = run_node(DeriveColumn, {"table": loans}, {"name": "dti", "expression": "monthly_debt / (annual_income / 12)"})
    assert out["table"]["dti"].to_list() == pytest.approx([0.2, 0.25, None, 0.2], nan_ok=True)
    out = run_node(DeriveColumn, {"table": loans},
                   {"name": "band", "expression": "if(age < 30, 'young', if(is_null(age), 'unknown', 'other'))"})
    assert out["table"]["band"].to_list() == ["young", "other", "other", "unknown"]
    out = run_node(DeriveColumn, {"table": loans}, {"name": "年份", "expression": "year(opened) * 100 + month(opened)"})
    assert out["table"]["年份"].to_list() == [202401, 202306, 202212, 202403]
    out = run_node(DeriveColumn, {"table": loans}, {"name": "月收入", "expression": "月收入 * 12"})
    assert out["table"]["月收入"].to_list() == [60000, 120000, 90000, 30000]  # replaced in place


def test_derived_column_errors_point_at_the_expression(loans):
    with pytest.raises(NodeFailed) as err:
        run_node(DeriveColumn, {"table": loans}, {"name": "x", "expression": "monthly_debt / anual_income"})
    message = str(err.value)
    assert "Expression" in message and "anual_income" in message and "annual_income" in message
    assert "column 16" in message
    with pytest.raises(NodeFailed, match="cannot be computed"):
        run_node(DeriveColumn, {"table": loans}, {"name": "x", "expression": "region * opened"})


def test_filter_rows(loans):
    out = run_node(FilterRows, {"table": loans}, {"condition": "age >= 30 and region in ('North', '华南')"})
    assert out["table"]["age"].to_list() == [35, 51]
    out = run_node(FilterRows, {"table": loans}, {"condition": "monthly_debt > 600"})  # null → dropped
    assert out["table"].height == 2
    with pytest.raises(NodeFailed, match="not true/false"):
        run_node(FilterRows, {"table": loans}, {"condition": "age + 1"})
    with pytest.raises(NodeFailed, match="=="):
        run_node(FilterRows, {"table": loans}, {"condition": "region = 'North'"})


def test_select_rename_and_cast(loans):
    out = run_node(SelectColumns, {"table": loans}, {"columns": ["region", "age"], "rename": {"age": "年龄"},
                                                     "cast": {"age": "float"}})["table"]
    assert out.columns == ["region", "年龄"] and out.schema["年龄"] == pl.Float64
    with pytest.raises(NodeFailed, match=r"column 'amount_text', row 3: cannot convert 'n/a' to float"):
        run_node(SelectColumns, {"table": loans}, {"cast": {"amount_text": "float"}})
    with pytest.raises(NodeFailed, match="several columns the name age"):
        run_node(SelectColumns, {"table": loans}, {"rename": {"region": "age"}})
    with pytest.raises(NodeFailed, match="'nope' is not in the table"):
        run_node(SelectColumns, {"table": loans}, {"columns": ["nope"]})
