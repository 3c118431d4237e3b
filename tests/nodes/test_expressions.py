"""The analyst expression language: evaluation on a small table, precedence, functions and pinpointed errors."""
from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from nodes.features.expressions import (
    ExpressionError,
    parse_expression,
    referenced_columns,
)

DF = pl.DataFrame({
    "a": [1, 2, None, 4],
    "b": [10, 20, 30, None],
    "x": [1.5, -2.25, 0.0, None],
    "name": ["Alice", "bob", None, "O'Neil"],
    "d": [dt.date(2024, 1, 1), dt.date(2024, 3, 1), None, dt.date(2024, 12, 31)],
    "d2": [dt.date(2024, 1, 11), dt.date(2024, 2, 1), dt.date(2024, 1, 1), None],
    "月收入": [5000, 8000, None, 12000],
    "monthly income": [100.0, 200.0, 300.0, 400.0],
    "year": [2020, 2021, 2022, 2023],
    "flag": [True, False, None, True],
    "num_text": ["1.5", "2", "x", None],
})


def ev(text: str) -> list:
    """Evaluate `text` on DF, broadcasting literals to the table's height."""
    return DF.with_columns(parse_expression(text, DF.columns).alias("__out")).get_column("__out").to_list()


def err(text: str, columns=DF.columns) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, columns)
    return info.value


# ------------------------------------------------------------------------------------------- evaluation

@pytest.mark.parametrize("text, expected", [
    ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20), ("-2 ** 2", -4), ("2 ** 3 ** 2", 512), ("2 ** -1", 0.5),
    ("7 // 2", 3), ("7 % 3", 1), ("7 / 2", 3.5), ("10 - 4 - 3", 3), ("1e3", 1000.0), (".5 + 1.", 1.5),
    ("- -3", 3), ("+4", 4), ("'it\\'s'", "it's"), ('"a\\"b\\n"', 'a"b\n'), ("'tab\\there'", "tab\there"),
    ("TRUE", True), ("not false", True), ("true and not false or false", True), ("null", None),
])
def test_literals_and_precedence(text, expected):
    assert ev(text) == [expected] * DF.height


def test_columns_arithmetic():
    assert ev("(a + b) / 2") == [5.5, 11.0, None, None]
    assert ev("a * 2 + x") == [3.5, 1.75, None, None]
    assert ev("b / 0")[0] == math.inf  # polars semantics: division by zero is inf, not null


def test_backticks_and_unicode_names():
    assert ev("`monthly income` * 2") == [200.0, 400.0, 600.0, 800.0]
    assert ev("月收入 / 1000") == [5.0, 8.0, None, 12.0]
    assert ev("year + 1") == [2021, 2022, 2023, 2024]  # a function name without '(' is a column
    assert ev("year(d)") == [2024, 2024, None, 2024]


def test_comparisons_and_boolean_logic():
    assert ev("a >= 2") == [False, True, None, True]
    assert ev("a == 1 or b == 20") == [True, True, None, None]
    assert ev("a > 1 and b < 30") == [False, True, False, None]
    assert ev("not (a < 2)") == [False, True, None, True]
    assert ev("a != 2 and flag") == [True, False, None, True]
    assert ev("name == 'bob'") == [False, True, None, False]
    assert ev("x <= 0") == [False, True, True, None]


def test_in_and_not_in():
    assert ev("a in (1, 4)") == [True, False, None, True]
    assert ev("a NOT IN (1, 4)") == [False, True, None, False]
    assert ev("x in (1.5, 0)") == [True, False, True, None]
    assert ev("name in ('Alice', 'bob')") == [True, True, None, False]
    assert ev("a + 1 in (b / 10 + 1, 5)") == [True, True, None, True]


def test_null_handling():
    assert ev("is_null(a)") == [False, False, True, False]
    assert ev("is_not_null(name)") == [True, True, False, True]
    assert ev("coalesce(a, b, 0)") == [1, 2, 30, 4]
    assert ev("a == null") == [None] * 4  # comparisons with null follow polars
    assert ev("if(is_null(a), -1, a * 10)") == [10, 20, -1, 40]


@pytest.mark.parametrize("text, expected", [
    ("abs(x)", [1.5, 2.25, 0.0, None]),
    ("round(x)", [2.0, -2.0, 0.0, None]),
    ("round(x * 3, 1)", [4.5, -6.8, 0.0, None]),
    ("floor(x)", [1.0, -3.0, 0.0, None]),
    ("ceil(x)", [2.0, -2.0, 0.0, None]),
    ("round(log(exp(a)), 6)", [1.0, 2.0, None, 4.0]),
    ("log10(b)", [1.0, pytest.approx(math.log10(20)), pytest.approx(math.log10(30)), None]),
    ("sqrt(a * 4)", [2.0, pytest.approx(math.sqrt(8)), None, 4.0]),
    ("min(a, b, 3)", [1, 2, 3, 3]),
    ("MAX(a, b)", [10, 20, 30, 4]),
    ("clip(b, 15, 25)", [15, 20, 25, None]),
    ("upper(name)", ["ALICE", "BOB", None, "O'NEIL"]),
    ("lower(name)", ["alice", "bob", None, "o'neil"]),
    ("length(name)", [5, 3, None, 6]),
    ("contains(name, \"'\")", [False, False, None, True]),
    ("contains(name, '.')", [False, False, None, False]),  # literal, not a regex
    ("starts_with(name, 'A')", [True, False, None, False]),
    ("ends_with(name, 'b')", [False, True, None, False]),
    ("month(d)", [1, 3, None, 12]),
    ("day(d)", [1, 1, None, 31]),
    ("weekday(d)", [1, 5, None, 2]),
    ("days_between(d, d2)", [10, -29, None, None]),
    ("days_between('2024-01-01', d)", [0, 60, None, 365]),
    ("to_float(num_text)", [1.5, 2.0, None, None]),
    ("to_int(x)", [1, -2, 0, None]),
    ("to_str(a)", ["1", "2", None, "4"]),
    ("if(a > 1, 'big', 'small')", ["small", "big", "small", "big"]),
])
def test_every_function(text, expected):
    assert ev(text) == expected


def test_referenced_columns():
    assert referenced_columns("if(b > a, `monthly income`, a) + 月收入 * b") == ["b", "a", "monthly income", "月收入"]
    assert referenced_columns("year(d) + year") == ["d", "year"]
    assert referenced_columns("1 + 2") == []
    with pytest.raises(ExpressionError):
        referenced_columns("a +")


def test_filter_usage():
    out = DF.filter(parse_expression("a > 1 and name != 'bob'", DF.columns))
    assert out.get_column("a").to_list() == [4]


# ------------------------------------------------------------------------------------------- errors

def test_unknown_column_suggests_and_draws_a_caret():
    e = err("income / incme", ["income"])
    assert e.position == 10
    assert e.message == "Unknown column 'incme' at column 10 (did you mean 'income'?)"
    assert str(e).splitlines() == [e.message, "  income / incme", "           ^"]
    assert "did you mean" not in err("zzz + 1").message


def test_unknown_function_suggests():
    e = err("a + lenght(name)")
    assert e.position == 5 and "Unknown function 'lenght'" in e.message and "did you mean 'length'?" in e.message


@pytest.mark.parametrize("text, position, fragment", [
    ("a = 1", 3, "use '=='"),
    ("a > 1 && b < 2", 7, "use 'and'"),
    ("a > 1 || b < 2", 7, "use 'or'"),
    ("!flag", 1, "use 'not'"),
    ("name == 'bob", 9, "Unterminated string"),
    ("`monthly income * 2", 1, "Unterminated column name"),
    ("(a + b", 7, "Missing ')'"),
    ("round(a, 1", 11, "Missing ')'"),
    ("a + b)", 6, "Unmatched ')'"),
    ("a + ", 5, "Expected a value after '+'"),
    ("a * / b", 5, "Expected a value after '*'"),
    ("max(a,)", 7, "Expected a value after ','"),
    ("a b", 3, "Unexpected 'b'"),
    ("1 2", 3, "Unexpected '2'"),
    ("", 1, "empty"),
    ("   ", 1, "empty"),
    ("a # 1", 3, "Unexpected character '#'"),
    ("1 < a < 3", 7, "cannot be chained"),
    ("a in 1, 2", 6, "Expected '('"),
    ("a in ()", 6, "is empty"),
    ("1e+ 2", 1, "Malformed number"),
    ("round(a, b)", 10, "whole number"),
])
def test_syntax_errors_point_at_the_problem(text, position, fragment):
    e = err(text)
    assert e.position == position, e
    assert fragment in e.message
    assert f"at column {position}" in e.message


@pytest.mark.parametrize("text, fragment", [
    ("abs()", "abs() takes 1 argument(s) but got 0"),
    ("round(a, 1, 2)", "round() takes 1 to 2 arguments but got 3"),
    ("if(a > 1, 2)", "if() takes 3 argument(s) but got 2"),
    ("coalesce()", "coalesce() takes at least 1 argument(s) but got 0"),
])
def test_wrong_arity(text, fragment):
    e = err(text)
    assert e.position == 1 and fragment in e.message


@pytest.mark.parametrize("text, fragment", [
    ("__import__('os')", "Unknown function '__import__'"),
    ("a.b", "Unexpected character '.'"),
    ("name.upper()", "Unexpected character '.'"),
    ("(lambda: 1)()", "Unexpected character ':'"),
    ("eval('1')", "Unknown function 'eval'"),
    ("a[0]", "Unexpected character '['"),
])
def test_python_is_not_reachable(text, fragment):
    assert fragment in err(text).message


def test_limits_against_runaway_recursion():
    assert "nested too deeply" in err("(" * 150 + "1" + ")" * 150).message
    assert "nested too deeply" in err("-" * 150 + "1").message
    assert "nested too deeply" in err("+".join(["a"] * 150)).message
    assert "nested too deeply" in err("abs(" * 120 + "a" + ")" * 120).message
    e = err("a + " * 600 + "a")
    assert "too long" in e.message and e.position == 2001
    assert ev("+".join(["1"] * 90)) == [90] * DF.height


def test_error_is_a_value_error():
    assert isinstance(err("a +"), ValueError)
