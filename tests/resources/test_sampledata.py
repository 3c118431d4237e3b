"""Tests for the synthetic credit data generator (resources/sampledata/credit.py).

Why these checks: the data set is only useful if it is reproducible, has the documented shape and planted
problems, carries the documented signal, and the checked-in file still matches the generator.
"""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from resources.sampledata import credit
from resources.sampledata.credit import (
    CHINESE_HEADERS,
    TRUE_COEFFICIENTS,
    generate_applications,
    generate_transactions,
    true_logit,
    write_gbk_csv,
)

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "resources" / "sampledata" / "credit_applications.csv"

EXPECTED_SCHEMA = {
    "customer_id": pl.String,
    "application_date": pl.Date,
    "age": pl.Int64,
    "gender": pl.String,
    "education": pl.String,
    "marital_status": pl.String,
    "region": pl.String,
    "employment_type": pl.String,
    "employment_years": pl.Float64,
    "annual_income": pl.Float64,
    "monthly_debt": pl.Float64,
    "debt_to_income": pl.Float64,
    "credit_utilization": pl.Float64,
    "num_credit_lines": pl.Int64,
    "num_delinquencies_2y": pl.Int64,
    "months_since_last_delinquency": pl.Int64,
    "loan_amount": pl.Float64,
    "loan_term_months": pl.Int64,
    "loan_purpose": pl.String,
    "default": pl.Int64,
}


@pytest.fixture(scope="module")
def apps() -> pl.DataFrame:
    return generate_applications(50_000, seed=7)


@pytest.fixture(scope="module")
def small_apps() -> pl.DataFrame:
    return generate_applications(1_000, seed=11)


@pytest.fixture(scope="module")
def txns(small_apps: pl.DataFrame) -> pl.DataFrame:
    return generate_transactions(small_apps, seed=11)


# ---------------------------------------------------------------------------------------------------- applications
def test_same_seed_same_frame_and_different_seed_differs() -> None:
    a = generate_applications(1_000, seed=3)
    assert a.equals(generate_applications(1_000, seed=3))
    assert not a.equals(generate_applications(1_000, seed=4))
    assert not a["default"].equals(generate_applications(1_000, seed=4)["default"])


@pytest.mark.parametrize("n", [0, 1, 1_000, 2_345])
def test_sizes_and_ids(n: int) -> None:
    df = generate_applications(n, seed=1)
    assert df.height == n
    assert df["customer_id"].n_unique() == n
    if n:
        assert df["customer_id"][0] == "C0000001"
        assert df["customer_id"].str.contains(r"^C\d{7}$").all()


def test_negative_size_rejected() -> None:
    with pytest.raises(ValueError):
        generate_applications(-1)


def test_blocks_keep_ids_unique_and_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large sizes are built block by block; ids must continue across blocks."""
    monkeypatch.setattr(credit, "APPLICATION_BLOCK_ROWS", 400)
    df = generate_applications(1_000, seed=5)
    assert df.height == 1_000
    assert df["customer_id"].to_list() == [f"C{i:07d}" for i in range(1, 1_001)]
    assert df.equals(generate_applications(1_000, seed=5))


def test_columns_and_dtypes(apps: pl.DataFrame) -> None:
    assert dict(apps.schema) == EXPECTED_SCHEMA
    assert tuple(apps.columns) == credit.APPLICATION_COLUMNS


def test_value_domains(apps: pl.DataFrame) -> None:
    assert set(apps["loan_term_months"].unique()) <= {12, 24, 36, 60}
    assert set(apps["default"].unique()) == {0, 1}
    assert set(apps["region"].unique()) == set(credit.REGIONS)
    assert set(apps["employment_type"].unique()) == set(credit.EMPLOYMENT_TYPES)
    assert apps["age"].min() >= 18 and apps["age"].max() <= 80
    assert apps["credit_utilization"].min() >= 0 and apps["credit_utilization"].max() > 1.0
    assert apps["num_delinquencies_2y"].min() == 0 and apps["num_delinquencies_2y"].max() > 0
    assert apps["application_date"].min() >= dt.date(2021, 1, 1)
    assert apps["application_date"].max() <= dt.date(2023, 12, 31)
    # Recent delinquency => months since last one is known and under 24.
    recent = apps.filter(pl.col("num_delinquencies_2y") > 0)["months_since_last_delinquency"]
    assert recent.null_count() == 0 and recent.max() < 24
    assert apps.filter(pl.col("num_delinquencies_2y") == 0)["months_since_last_delinquency"].null_count() > 0


def test_planted_missing_rates(apps: pl.DataFrame) -> None:
    assert apps["employment_years"].null_count() / apps.height == pytest.approx(0.05, abs=0.01)
    assert apps["annual_income"].null_count() / apps.height == pytest.approx(0.03, abs=0.008)
    for column in ("age", "debt_to_income", "credit_utilization", "default", "monthly_debt"):
        assert apps[column].null_count() == 0, column


def test_planted_income_outliers(apps: pl.DataFrame) -> None:
    clean = generate_applications(50_000, seed=7, clean=True)
    ratio = (apps["annual_income"] / clean["annual_income"]).drop_nulls()
    outliers = ratio.filter(ratio != 1.0)
    assert outliers.len() / apps.height == pytest.approx(0.005, abs=0.002)
    assert outliers.min() >= 49.9 and outliers.max() <= 100.1
    # Outliers and nulls are the only differences; the label is identical (drawn from clean values).
    assert clean["employment_years"].null_count() == 0 and clean["annual_income"].null_count() == 0
    assert apps["default"].equals(clean["default"])
    assert apps.drop("annual_income", "employment_years").equals(clean.drop("annual_income", "employment_years"))


def test_default_rate_in_range(apps: pl.DataFrame) -> None:
    assert 0.10 <= apps["default"].mean() <= 0.20


def test_label_signal_debt_to_income(apps: pl.DataFrame) -> None:
    q20, q80 = apps["debt_to_income"].quantile(0.2), apps["debt_to_income"].quantile(0.8)
    low = apps.filter(pl.col("debt_to_income") <= q20)["default"].mean()
    high = apps.filter(pl.col("debt_to_income") >= q80)["default"].mean()
    assert high > 1.5 * low


def test_label_follows_true_logit_and_gender_is_noise() -> None:
    clean = generate_applications(50_000, seed=9, clean=True)
    p = 1.0 / (1.0 + np.exp(-true_logit(clean)))
    y = clean["default"].to_numpy()
    assert p.mean() == pytest.approx(y.mean(), abs=0.01)
    # Rank AUC of the true probability: strong but far from perfect (no leakage).
    ranks = np.argsort(np.argsort(p)) + 1
    n_pos = y.sum()
    auc = (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (len(y) - n_pos))
    assert 0.75 <= auc <= 0.87
    by_gender = clean.group_by("gender").agg(pl.col("default").mean())["default"]
    assert abs(by_gender[0] - by_gender[1]) < 0.015
    assert TRUE_COEFFICIENTS["debt_to_income"] > 0 and TRUE_COEFFICIENTS["log_annual_income"] < 0


def test_checked_in_csv_matches_generator() -> None:
    stored = pl.read_csv(CHECKED_IN, try_parse_dates=True, encoding="utf8")
    expected = generate_applications(2_000, seed=42)
    assert stored.columns == expected.columns
    assert stored.height == 2_000
    for column in expected.columns:
        got, want = stored[column], expected[column]
        if want.dtype == pl.Float64:
            a, b = got.cast(pl.Float64).to_numpy(), want.to_numpy()
            assert np.array_equal(np.isnan(a), np.isnan(b)), column
            np.testing.assert_allclose(a, b, rtol=1e-9, equal_nan=True, err_msg=column)
        else:
            assert got.cast(want.dtype).equals(want), column


# ---------------------------------------------------------------------------------------------------- transactions
def test_transactions_schema_and_determinism(small_apps: pl.DataFrame, txns: pl.DataFrame) -> None:
    assert tuple(txns.columns) == credit.TRANSACTION_COLUMNS
    assert txns.schema["txn_time"] == pl.Datetime("us")
    assert txns.schema["amount"] == pl.Float64
    assert txns.equals(generate_transactions(small_apps, seed=11))
    assert not txns.equals(generate_transactions(small_apps, seed=12))


def test_transactions_within_window_and_known_customers(small_apps: pl.DataFrame, txns: pl.DataFrame) -> None:
    assert set(txns["customer_id"].unique()) <= set(small_apps["customer_id"])
    joined = txns.join(small_apps.select("customer_id", "application_date"), on="customer_id", how="left")
    assert joined["application_date"].null_count() == 0
    start = pl.col("application_date").cast(pl.Datetime("us"))
    inside = (pl.col("txn_time") < start) & (pl.col("txn_time") >= start - pl.duration(days=365))
    assert joined.select(inside.all()).item()


def test_transaction_counts_refunds_and_order(small_apps: pl.DataFrame, txns: pl.DataFrame) -> None:
    counts = txns.group_by("customer_id").len()["len"]
    assert counts.len() == small_apps.height
    assert counts.min() >= 5 and counts.max() <= 40
    assert (txns["amount"] < 0).any() and (txns["amount"] > 0).mean() > 0.9
    assert (txns["amount"] != 0).all()
    assert txns["customer_id"].is_sorted()
    assert txns.group_by("customer_id").agg(pl.col("txn_time").is_sorted())["txn_time"].all()
    atm = txns.filter(pl.col("channel") == "ATM")["merchant_category"].unique().to_list()
    assert atm == ["Cash withdrawal"]
    narrow = generate_transactions(small_apps.head(50), seed=1, per_customer=(2, 3))
    assert set(narrow.group_by("customer_id").len()["len"].unique()) <= {2, 3}


def test_transaction_blocks(monkeypatch: pytest.MonkeyPatch, small_apps: pl.DataFrame) -> None:
    monkeypatch.setattr(credit, "TRANSACTION_BLOCK_CUSTOMERS", 300)
    tx = generate_transactions(small_apps, seed=2)
    assert tx["customer_id"].n_unique() == small_apps.height and tx["customer_id"].is_sorted()


def test_defaulters_behave_differently(apps: pl.DataFrame) -> None:
    sample = apps.head(10_000)
    tx = generate_transactions(sample, seed=7).join(sample.select("customer_id", "default"), on="customer_id")
    stats = (
        tx.group_by("default")
        .agg(
            (pl.len() / pl.col("customer_id").n_unique()).alias("per_customer"),
            (pl.col("merchant_category") == "Cash withdrawal").mean().alias("cash"),
            (pl.col("txn_time").dt.hour() < 5).mean().alias("late"),
        )
        .sort("default")
    )
    repay, default = stats.row(0, named=True), stats.row(1, named=True)
    assert default["per_customer"] > repay["per_customer"] + 3
    assert default["cash"] > 1.8 * repay["cash"]
    assert default["late"] > 2 * repay["late"]


def test_transactions_need_columns() -> None:
    with pytest.raises(ValueError):
        generate_transactions(pl.DataFrame({"customer_id": ["C1"]}))
    with pytest.raises(ValueError):
        generate_transactions(generate_applications(5), per_customer=(4, 2))


# ---------------------------------------------------------------------------------------------------- writing
def test_gbk_round_trip(tmp_path: Path, small_apps: pl.DataFrame) -> None:
    path = tmp_path / "apps_gbk.csv"
    write_gbk_csv(small_apps, path)
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gbk")
    header = text.splitlines()[0].split(",")
    assert header == [CHINESE_HEADERS[c] for c in small_apps.columns]
    assert "年收入" in header and "是否违约" in header
    back = pl.read_csv(io.StringIO(text), try_parse_dates=True)
    assert back.height == small_apps.height
    assert back["客户编号"].equals(small_apps["customer_id"].alias("客户编号"))
    assert back["是否违约"].to_list() == small_apps["default"].to_list()
    assert [p.name for p in tmp_path.iterdir()] == ["apps_gbk.csv"]  # no temp file left behind


def test_every_column_has_a_gbk_encodable_chinese_header() -> None:
    for column in credit.APPLICATION_COLUMNS + credit.TRANSACTION_COLUMNS:
        CHINESE_HEADERS[column].encode("gbk")


def test_gbk_transactions_chunked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, txns: pl.DataFrame) -> None:
    monkeypatch.setattr(credit, "_GBK_CHUNK_ROWS", 1_000)
    path = tmp_path / "tx.csv"
    write_gbk_csv(txns, path)
    lines = path.read_bytes().decode("gbk").splitlines()
    assert len(lines) == txns.height + 1 and lines[0].startswith("客户编号,交易时间")


def test_failed_write_leaves_target_untouched(tmp_path: Path) -> None:
    path = tmp_path / "keep.csv"
    path.write_text("old", encoding="utf-8")
    bad = pl.DataFrame({"customer_id": ["€ is fine but 𝄞 is not GBK"]})
    with pytest.raises(UnicodeEncodeError):
        write_gbk_csv(bad, path)
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.csv"]


def test_cli_writes_csv_transactions_and_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, tx = tmp_path / "apps.csv", tmp_path / "tx.csv"
    assert credit.main([str(out), "--rows", "300", "--seed", "5", "--transactions", str(tx)]) == 0
    written = pl.read_csv(out, try_parse_dates=True)
    assert written.equals(generate_applications(300, seed=5))
    assert pl.read_csv(tx)["customer_id"].n_unique() == 300
    assert "wrote" in capsys.readouterr().out

    pq = tmp_path / "apps.parquet"
    assert credit.main([str(pq), "--rows", "200", "--seed", "5"]) == 0
    assert pl.read_parquet(pq).equals(generate_applications(200, seed=5))
    forced = tmp_path / "apps.bin"
    assert credit.main([str(forced), "--rows", "10", "--parquet"]) == 0
    assert pl.read_parquet(forced).height == 10

    gbk = tmp_path / "apps_gbk.csv"
    assert credit.main([str(gbk), "--rows", "50", "--gbk"]) == 0
    assert gbk.read_bytes().decode("gbk").startswith("客户编号,")
    with pytest.raises(SystemExit):
        credit.main([str(pq), "--rows", "5", "--gbk", "--parquet"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["apps.csv", "tx.csv", "apps.parquet", "apps.bin", "apps_gbk.csv"]
    )
