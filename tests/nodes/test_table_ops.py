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


def test_join_keeps_rows_by_kind_and_widens_numeric_keys():
    from nodes.features.table_ops import Join

    customers = pl.DataFrame({"customer_id": pl.Series([1, 2, 3], dtype=pl.Int32), "name": ["张三", "李四", "王五"]})
    txns = pl.DataFrame({"customer_id": [1, 1, 3, 9], "amount": [10.0, 5.0, 7.5, 1.0], "name": ["a", "b", "c", "d"]})
    left = run_node(Join, {"left": customers, "right": txns}, {"left_on": ["customer_id"]})["table"]
    assert left.height == 4 and left.columns == ["customer_id", "name", "amount", "name_right"]
    assert left.filter(pl.col("customer_id") == 2)["amount"].to_list() == [None]
    inner = run_node(Join, {"left": customers, "right": txns}, {"left_on": ["customer_id"], "how": "inner"})["table"]
    assert inner.height == 3
    anti = run_node(Join, {"left": customers, "right": txns}, {"left_on": ["customer_id"], "how": "anti"})["table"]
    assert anti["name"].to_list() == ["李四"]


def test_join_keys_of_different_kinds_are_refused_with_both_types():
    from nodes.features.table_ops import Join

    left = pl.DataFrame({"id": [1, 2]})
    right = pl.DataFrame({"cust": ["1", "2"], "x": [1, 2]})
    with pytest.raises(NodeFailed, match=r"left 'id' is Int64, right 'cust' is String"):
        run_node(Join, {"left": left, "right": right}, {"left_on": ["id"], "right_on": ["cust"]})
    with pytest.raises(NodeFailed, match="1 key columns on the left but 2 on the right"):
        run_node(Join, {"left": left, "right": right}, {"left_on": ["id"], "right_on": ["cust", "x"]})


def test_group_by_aggregates_in_group_order():
    from nodes.features.table_ops import GroupBy

    txns = pl.DataFrame({"customer": ["b", "a", "b", "a", "b"], "amount": [1.0, 2.0, 3.0, None, 5.0],
                         "txn": [1, 2, 3, 4, 5]})
    out = run_node(GroupBy, {"table": txns}, {"by": ["customer"], "aggregations": [
        {"column": "amount", "function": "sum"}, {"column": "txn", "function": "count", "name": "n"},
        {"column": "amount", "function": "max"}]})["table"]
    assert out.to_dicts() == [{"customer": "b", "amount_sum": 9.0, "n": 3, "amount_max": 5.0},
                              {"customer": "a", "amount_sum": 2.0, "n": 2, "amount_max": 2.0}]
    with pytest.raises(NodeFailed, match="sum needs a numeric column, but 'customer' is String"):
        run_node(GroupBy, {"table": txns}, {"by": ["txn"], "aggregations": [{"column": "customer", "function": "sum"}]})
    with pytest.raises(NodeFailed, match="clash with the group columns: customer"):
        run_node(GroupBy, {"table": txns}, {"by": ["customer"], "aggregations": [
            {"column": "amount", "function": "sum", "name": "customer"}]})
