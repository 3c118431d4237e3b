"""Seeded synthetic bank credit data whose true default drivers are known.

Why synthetic: demos, tests and benchmarks need realistic-looking credit data that can be shared freely, sized
from a thousand rows to ten million, and whose ground truth is known, so a workbench user (or a test) can
check that a model, a feature-importance chart or a data-cleaning step recovers what was planted. The label
comes from the logistic process in ``TRUE_COEFFICIENTS`` applied to the *clean* values; missing values and
income outliers are planted afterwards, so they are data-quality problems rather than signal.

Everything is vectorised with numpy (no per-row Python) and driven by ``numpy.random.default_rng(seed)``:
the same seed and size always give the same frame. See README.md in this folder for the generating process.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl

__all__ = [
    "APPLICATION_COLUMNS",
    "CHINESE_HEADERS",
    "TRANSACTION_COLUMNS",
    "TRUE_COEFFICIENTS",
    "generate_applications",
    "generate_transactions",
    "main",
    "true_logit",
    "write_gbk_csv",
]

# --------------------------------------------------------------------------------------------------------------
# Category vocabularies (English values; the GBK export translates headers only).
# --------------------------------------------------------------------------------------------------------------
GENDERS: tuple[str, ...] = ("Female", "Male")
EDUCATIONS: tuple[str, ...] = ("High school or below", "Junior college", "Bachelor", "Master or above")
MARITAL_STATUSES: tuple[str, ...] = ("Single", "Married", "Divorced", "Widowed")
REGIONS: tuple[str, ...] = ("East", "North", "South", "Central", "Southwest", "Northwest", "Northeast")
EMPLOYMENT_TYPES: tuple[str, ...] = (
    "Civil servant",
    "State-owned enterprise",
    "Private enterprise",
    "Self-employed",
    "Freelance",
)
LOAN_PURPOSES: tuple[str, ...] = (
    "Consumption",
    "Home renovation",
    "Car purchase",
    "Education",
    "Business operation",
    "Debt consolidation",
    "Medical",
)
LOAN_TERMS: tuple[int, ...] = (12, 24, 36, 60)
CHANNELS: tuple[str, ...] = ("POS", "Online", "Mobile app", "ATM")
MERCHANT_CATEGORIES: tuple[str, ...] = (
    "Groceries",
    "Dining",
    "Transport",
    "Utilities",
    "Online shopping",
    "Apparel",
    "Travel",
    "Entertainment",
    "Healthcare",
    "Education",
    "Cash withdrawal",
    "Lottery & gaming",
)

_EDUCATION_P = (0.22, 0.30, 0.36, 0.12)
_REGION_P = (0.28, 0.15, 0.18, 0.13, 0.11, 0.07, 0.08)
_EMPLOYMENT_P = (0.08, 0.17, 0.50, 0.15, 0.10)
_PURPOSE_P = (0.30, 0.14, 0.14, 0.08, 0.14, 0.14, 0.06)
_TERM_P = (0.20, 0.30, 0.35, 0.15)

# Application dates are spread uniformly over these three years (end exclusive).
_FIRST_APPLICATION = dt.date(2021, 1, 1)
_END_APPLICATION = dt.date(2024, 1, 1)
_EPOCH = dt.date(1970, 1, 1)

# --------------------------------------------------------------------------------------------------------------
# The generating process of the label.
# --------------------------------------------------------------------------------------------------------------
AGE_CENTRE: float = 40.0
"""``age`` enters the logit as ``age - AGE_CENTRE`` so the intercept describes a 40-year-old."""
INCOME_CENTRE: float = 100_000.0
"""``annual_income`` enters as ``ln(annual_income / INCOME_CENTRE)`` (CNY per year)."""
DELINQUENCY_CAP: int = 5
"""``num_delinquencies_2y`` enters as ``min(n, DELINQUENCY_CAP)``: the sixth late payment adds no news."""

TRUE_COEFFICIENTS: dict[str, float] = {
    "intercept": -3.65,
    "debt_to_income": 3.6,  # per unit of ratio (0.1 more DTI -> +0.36 logit)
    "credit_utilization": 2.6,  # per unit of utilisation (0..~1.1)
    "num_delinquencies_2y": 0.7,  # per delinquency, capped at DELINQUENCY_CAP
    "log_annual_income": -1.0,  # per unit of ln(income / INCOME_CENTRE)
    "employment_years": -0.06,  # per year in the current job
    "age": -0.02,  # per year of (age - AGE_CENTRE)
    "region[Northeast]": 0.45,
    "region[Northwest]": 0.35,
    "region[East]": -0.30,
    "employment_type[Civil servant]": -0.90,
    "employment_type[State-owned enterprise]": -0.45,
    "employment_type[Self-employed]": 0.40,
    "employment_type[Freelance]": 0.60,
}
"""Coefficients of the true logit; a category not listed (e.g. region South) has effect 0.

logit = intercept + sum(coef * feature). No other column (gender, education, marital_status, loan_purpose,
loan_amount, loan_term_months, num_credit_lines, months_since_last_delinquency, monthly_debt, dates) enters the
logit; some of them are correlated with the drivers (education and region shift income), which is deliberate.
"""

# Planted data-quality problems (applied after the label is drawn).
EMPLOYMENT_YEARS_MISSING_RATE: float = 0.05
ANNUAL_INCOME_MISSING_RATE: float = 0.03
ANNUAL_INCOME_OUTLIER_RATE: float = 0.005
ANNUAL_INCOME_OUTLIER_FACTOR: tuple[float, float] = (50.0, 100.0)

APPLICATION_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "application_date",
    "age",
    "gender",
    "education",
    "marital_status",
    "region",
    "employment_type",
    "employment_years",
    "annual_income",
    "monthly_debt",
    "debt_to_income",
    "credit_utilization",
    "num_credit_lines",
    "num_delinquencies_2y",
    "months_since_last_delinquency",
    "loan_amount",
    "loan_term_months",
    "loan_purpose",
    "default",
)
TRANSACTION_COLUMNS: tuple[str, ...] = ("customer_id", "txn_time", "amount", "channel", "merchant_category")

CHINESE_HEADERS: dict[str, str] = {
    "customer_id": "客户编号",
    "application_date": "申请日期",
    "age": "年龄",
    "gender": "性别",
    "education": "学历",
    "marital_status": "婚姻状况",
    "region": "地区",
    "employment_type": "就业类型",
    "employment_years": "工作年限",
    "annual_income": "年收入",
    "monthly_debt": "月还款额",
    "debt_to_income": "负债收入比",
    "credit_utilization": "信用额度使用率",
    "num_credit_lines": "信用账户数",
    "num_delinquencies_2y": "近两年逾期次数",
    "months_since_last_delinquency": "距上次逾期月数",
    "loan_amount": "贷款金额",
    "loan_term_months": "贷款期限（月）",
    "loan_purpose": "贷款用途",
    "default": "是否违约",
    "txn_time": "交易时间",
    "amount": "交易金额",
    "channel": "交易渠道",
    "merchant_category": "商户类别",
}
"""Chinese header for every application and transaction column, as a Chinese bank's export would carry."""


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------
def _draw_codes(rng: np.random.Generator, probabilities: Sequence[float], n: int) -> np.ndarray:
    """Categorical codes by inverse CDF: one uniform per row, so it costs the same at any size."""
    cumulative = np.cumsum(np.asarray(probabilities, dtype=np.float64))
    cumulative /= cumulative[-1]
    codes = np.searchsorted(cumulative, rng.random(n), side="right")
    return np.minimum(codes, len(cumulative) - 1)


def _draw_conditional(rng: np.random.Generator, table: np.ndarray, condition: np.ndarray) -> np.ndarray:
    """Draw column codes with probabilities ``table[condition]`` per row, in one searchsorted.

    Why this shape: gathering a per-row CDF (rows x k floats) costs gigabytes at 20M+ rows. Instead the CDFs
    are laid end to end, row ``r`` shifted by ``r``, and ``r + u`` is searched in that single sorted array.
    """
    k = table.shape[1]
    cumulative = np.cumsum(np.asarray(table, dtype=np.float64), axis=1)
    cumulative /= cumulative[:, -1:]
    flat = (cumulative + np.arange(table.shape[0])[:, None]).ravel()
    found = np.searchsorted(flat, condition + rng.random(len(condition)), side="right")
    return np.minimum(found - k * condition, k - 1)


def _labels(name: str, vocabulary: Sequence[str], codes: np.ndarray) -> pl.Series:
    """Map codes to strings inside polars (a numpy object array would be slow and memory-hungry at 10M rows)."""
    return pl.Series(name, list(vocabulary), dtype=pl.String).gather(codes)


def _nullable(name: str, values: np.ndarray, missing: np.ndarray, dtype: pl.DataType) -> pl.Series:
    """A column with nulls where ``missing`` is set (NaN marks them on the way in)."""
    data = values.astype(np.float64, copy=True)
    data[missing] = np.nan
    return pl.Series(name, data).fill_nan(None).cast(dtype)


def _logit_from_arrays(
    *,
    debt_to_income: np.ndarray,
    credit_utilization: np.ndarray,
    num_delinquencies_2y: np.ndarray,
    annual_income: np.ndarray,
    employment_years: np.ndarray,
    age: np.ndarray,
    region: np.ndarray,
    employment_type: np.ndarray,
) -> np.ndarray:
    """The one implementation of the true logit, shared by the generator and ``true_logit``.

    ``region`` and ``employment_type`` are arrays of English labels or of codes into the vocabularies.
    """
    c = TRUE_COEFFICIENTS
    logit = np.full(len(age), c["intercept"], dtype=np.float64)
    logit += c["debt_to_income"] * np.asarray(debt_to_income, dtype=np.float64)
    logit += c["credit_utilization"] * np.asarray(credit_utilization, dtype=np.float64)
    logit += c["num_delinquencies_2y"] * np.minimum(np.asarray(num_delinquencies_2y, dtype=np.float64), DELINQUENCY_CAP)
    logit += c["log_annual_income"] * np.log(np.asarray(annual_income, dtype=np.float64) / INCOME_CENTRE)
    logit += c["employment_years"] * np.asarray(employment_years, dtype=np.float64)
    logit += c["age"] * (np.asarray(age, dtype=np.float64) - AGE_CENTRE)
    for column, vocabulary, values in (
        ("region", REGIONS, region),
        ("employment_type", EMPLOYMENT_TYPES, employment_type),
    ):
        values = np.asarray(values)
        for code, label in enumerate(vocabulary):
            effect = c.get(f"{column}[{label}]", 0.0)
            if effect:
                hit = values == (code if np.issubdtype(values.dtype, np.integer) else label)
                logit += effect * hit
    return logit


def true_logit(applications: pl.DataFrame) -> np.ndarray:
    """The true log-odds of default for each row, from ``TRUE_COEFFICIENTS``.

    Meant for a frame from ``generate_applications(..., clean=True)``: on the default (dirty) frame, rows with a
    planted null give NaN and rows with a planted income outlier give a too-low value, which is exactly why the
    label is drawn from the clean values.
    """
    df = applications
    return _logit_from_arrays(
        debt_to_income=df["debt_to_income"].to_numpy(),
        credit_utilization=df["credit_utilization"].to_numpy(),
        num_delinquencies_2y=df["num_delinquencies_2y"].to_numpy(),
        annual_income=df["annual_income"].cast(pl.Float64).to_numpy(),
        employment_years=df["employment_years"].cast(pl.Float64).to_numpy(),
        age=df["age"].to_numpy(),
        region=df["region"].to_numpy(),
        employment_type=df["employment_type"].to_numpy(),
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------------------------------------------
# Applications
# --------------------------------------------------------------------------------------------------------------
APPLICATION_BLOCK_ROWS: int = 1_000_000
"""Rows generated per block: bounds the numpy temporaries (~30 arrays) whatever the total size. Part of the
definition of the data: a seed gives the same frame only for the same block size."""


def generate_applications(n_rows: int, seed: int = 42, *, clean: bool = False) -> pl.DataFrame:
    """One row per loan application, with a ``default`` label drawn from the known logistic process.

    ``clean=True`` returns the same rows before the planted missing values and income outliers (same draws,
    same label), so the effect of cleaning can be measured against the truth. Large sizes are generated in
    blocks of ``APPLICATION_BLOCK_ROWS`` from one random stream, so memory stays near the size of the result.
    """
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    total = int(n_rows)
    rng = np.random.default_rng(seed)
    customer_width = max(7, len(str(total)))
    blocks = [
        _application_block(rng, min(APPLICATION_BLOCK_ROWS, total - start), start, customer_width, clean)
        for start in range(0, total, APPLICATION_BLOCK_ROWS)
    ] or [_application_block(rng, 0, 0, customer_width, clean)]
    return blocks[0] if len(blocks) == 1 else pl.concat(blocks, how="vertical", rechunk=False)


def _application_block(
    rng: np.random.Generator, n: int, start: int, customer_width: int, clean: bool
) -> pl.DataFrame:
    """``n`` applications numbered from ``start + 1``, drawing from ``rng`` (see ``generate_applications``)."""
    # Every draw happens in this fixed order whatever the options, so a seed always means the same data.
    first_day = (_FIRST_APPLICATION - _EPOCH).days
    end_day = (_END_APPLICATION - _EPOCH).days
    application_day = rng.integers(first_day, end_day, size=n, dtype=np.int64)

    age = np.clip(np.rint(20.0 + rng.gamma(4.0, 4.7, size=n)), 20, 70).astype(np.int64)
    gender = (rng.random(n) < 0.52).astype(np.int64)  # 1 = Male
    education = _draw_codes(rng, _EDUCATION_P, n)

    # Marital status follows age: mostly single in the twenties, widowhood only later in life.
    p_single = _sigmoid(-(age - 29.0) / 3.0)
    p_divorced = 0.09 * (age >= 25)
    p_widowed = np.clip((age - 45.0) * 0.003, 0.0, 0.08)
    u = rng.random(n)
    marital = np.where(
        u < p_single,
        0,
        np.where(u < p_single + p_divorced, 2, np.where(u < p_single + p_divorced + p_widowed, 3, 1)),
    ).astype(np.int64)

    region = _draw_codes(rng, _REGION_P, n)
    employment = _draw_codes(rng, _EMPLOYMENT_P, n)

    # Years in the current job: a share of the years since 18, so it can never exceed the working life.
    employment_years = np.round(np.maximum(age - 18, 0) * rng.beta(1.6, 2.6, size=n), 1)

    # Income (CNY/year): education, employer, region and experience shift a log-normal.
    log_income = (
        np.log(85_000.0)
        + np.array([0.0, 0.20, 0.45, 0.80])[education]
        + np.array([0.15, 0.20, 0.0, 0.10, -0.15])[employment]
        + np.array([0.25, 0.15, 0.20, -0.05, -0.10, -0.20, -0.15])[region]
        + 0.015 * np.minimum(age - 20, 25)
        + rng.normal(0.0, 0.45, size=n)
    )
    annual_income = np.maximum(np.round(np.exp(log_income), -2), 12_000.0)

    # Debt service: the ratio is drawn, the monthly amount follows from the (verified, clean) income.
    dti_draw = np.clip(rng.beta(2.0, 5.0, size=n) * 0.85 + 0.04 * (education == 0), 0.0, 0.95)
    monthly_debt = np.round(dti_draw * annual_income / 12.0, 2)
    debt_to_income = np.round(monthly_debt * 12.0 / annual_income, 4)

    credit_utilization = np.round(rng.beta(1.5, 2.2, size=n) * 1.12, 4)
    num_credit_lines = rng.poisson(1.5 + 0.08 * (age - 20) + 0.6 * education).astype(np.int64)

    # Delinquencies rise with utilisation plus a personal latent factor (so they carry their own signal).
    delinquency_rate = 0.15 * np.exp(1.2 * credit_utilization + 0.5 * rng.normal(size=n))
    num_delinquencies_2y = rng.poisson(delinquency_rate).astype(np.int64)
    recent_gap = rng.integers(0, 24, size=n)
    older_gap = rng.integers(24, 121, size=n)
    has_older = rng.random(n) < 0.12
    months_since = np.where(num_delinquencies_2y > 0, recent_gap, older_gap)
    months_since_missing = (num_delinquencies_2y == 0) & ~has_older

    loan_amount = np.maximum(np.round(annual_income * rng.beta(2.0, 6.0, size=n) * 1.5, -3), 5_000.0)
    loan_term = np.asarray(LOAN_TERMS, dtype=np.int64)[_draw_codes(rng, _TERM_P, n)]
    purpose = _draw_codes(rng, _PURPOSE_P, n)

    # The label: Bernoulli(sigmoid(true logit)) on the clean values.
    logit = _logit_from_arrays(
        debt_to_income=debt_to_income,
        credit_utilization=credit_utilization,
        num_delinquencies_2y=num_delinquencies_2y,
        annual_income=annual_income,
        employment_years=employment_years,
        age=age,
        region=region,
        employment_type=employment,
    )
    default = (rng.random(n) < _sigmoid(logit)).astype(np.int64)
    del logit

    # Planted data-quality problems, drawn after the label so they cannot carry signal.
    employment_years_missing = rng.random(n) < EMPLOYMENT_YEARS_MISSING_RATE
    u_income = rng.random(n)
    income_missing = u_income < ANNUAL_INCOME_MISSING_RATE
    income_outlier = (u_income >= ANNUAL_INCOME_MISSING_RATE) & (
        u_income < ANNUAL_INCOME_MISSING_RATE + ANNUAL_INCOME_OUTLIER_RATE
    )
    outlier_factor = rng.uniform(*ANNUAL_INCOME_OUTLIER_FACTOR, size=n)
    if clean:  # the draws above still happened, so both variants share every other value
        employment_years_missing = np.zeros(n, dtype=bool)
        income_missing = np.zeros(n, dtype=bool)
        observed_income = annual_income
    else:
        observed_income = np.where(income_outlier, np.round(annual_income * outlier_factor, 2), annual_income)

    customer_id = (
        pl.int_range(start + 1, start + n + 1, eager=True, dtype=pl.Int64)
        .cast(pl.String)
        .str.zfill(customer_width)
    )
    return pl.DataFrame(
        [
            ("C" + customer_id).alias("customer_id"),
            pl.Series("application_date", application_day.astype(np.int32)).cast(pl.Date),
            pl.Series("age", age),
            _labels("gender", GENDERS, gender),
            _labels("education", EDUCATIONS, education),
            _labels("marital_status", MARITAL_STATUSES, marital),
            _labels("region", REGIONS, region),
            _labels("employment_type", EMPLOYMENT_TYPES, employment),
            _nullable("employment_years", employment_years, employment_years_missing, pl.Float64),
            _nullable("annual_income", observed_income, income_missing, pl.Float64),
            pl.Series("monthly_debt", monthly_debt),
            pl.Series("debt_to_income", debt_to_income),
            pl.Series("credit_utilization", credit_utilization),
            pl.Series("num_credit_lines", num_credit_lines),
            pl.Series("num_delinquencies_2y", num_delinquencies_2y),
            _nullable("months_since_last_delinquency", months_since, months_since_missing, pl.Int64),
            pl.Series("loan_amount", loan_amount),
            pl.Series("loan_term_months", loan_term),
            _labels("loan_purpose", LOAN_PURPOSES, purpose),
            pl.Series("default", default),
        ]
    )


# --------------------------------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------------------------------
# Category mix for customers who repay (row 0) and who default (row 1): defaulters withdraw more cash and
# gamble more, and spend less of their budget on groceries and utilities.
_CATEGORY_P = np.array(
    [
        [0.22, 0.16, 0.10, 0.08, 0.14, 0.07, 0.04, 0.06, 0.04, 0.02, 0.06, 0.01],
        [0.16, 0.14, 0.09, 0.05, 0.14, 0.07, 0.03, 0.07, 0.04, 0.01, 0.15, 0.05],
    ]
)
# Median amount (CNY) and log-sd per merchant category.
_AMOUNT_MEDIAN = np.array([85.0, 75.0, 25.0, 180.0, 160.0, 260.0, 1500.0, 120.0, 220.0, 800.0, 600.0, 100.0])
_AMOUNT_SIGMA = np.array([0.6, 0.6, 0.7, 0.5, 0.9, 0.8, 0.8, 0.8, 0.9, 0.9, 0.6, 0.9])
# Channel probabilities (POS, Online, Mobile app, ATM) per merchant category; only cash goes through ATMs.
_CHANNEL_P = np.array(
    [
        [0.70, 0.05, 0.25, 0.00],
        [0.60, 0.05, 0.35, 0.00],
        [0.40, 0.10, 0.50, 0.00],
        [0.10, 0.40, 0.50, 0.00],
        [0.00, 0.55, 0.45, 0.00],
        [0.60, 0.20, 0.20, 0.00],
        [0.20, 0.50, 0.30, 0.00],
        [0.50, 0.20, 0.30, 0.00],
        [0.70, 0.10, 0.20, 0.00],
        [0.30, 0.40, 0.30, 0.00],
        [0.00, 0.00, 0.00, 1.00],
        [0.20, 0.30, 0.50, 0.00],
    ]
)
_REFUNDABLE = np.array([True] * 10 + [False, False])  # no refunds of cash withdrawals or gaming stakes
REFUND_RATE: float = 0.03
DEFAULTER_AMOUNT_FACTOR: float = 1.15
DEFAULTER_RECENT_SHARE: float = 0.35  # share of a defaulter's transactions forced into the last 60 days
LATE_NIGHT_SHARE: tuple[float, float] = (0.06, 0.18)  # (repayers, defaulters): share between 00:00 and 05:00
_TXN_STREAM = 0x7458  # second seed word, so transactions do not reuse the applications' random stream


TRANSACTION_BLOCK_CUSTOMERS: int = 100_000
"""Customers per block of transactions (~2M rows at the default rate): bounds the temporaries. Part of the
definition of the data, like ``APPLICATION_BLOCK_ROWS``."""


def generate_transactions(
    applications: pl.DataFrame,
    seed: int = 42,
    per_customer: tuple[int, int] = (5, 40),
) -> pl.DataFrame:
    """Card/account transactions in the 365 days before each customer's application date.

    Defaulters behave differently (more transactions, more cash and gaming, bigger amounts, a burst in the last
    60 days, more late-night activity) so that transaction features carry real but partial signal. Sorted by
    customer (in the order of ``applications``) then time. ``applications`` needs customer_id,
    application_date and default.
    """
    low, high = int(per_customer[0]), int(per_customer[1])
    if low < 0 or high < low:
        raise ValueError(f"per_customer must be (low, high) with 0 <= low <= high, got {per_customer}")
    missing = {"customer_id", "application_date", "default"} - set(applications.columns)
    if missing:
        raise ValueError(f"applications lacks column(s): {sorted(missing)}")
    rng = np.random.default_rng([seed, _TXN_STREAM])
    blocks = [
        _transaction_block(rng, applications.slice(start, TRANSACTION_BLOCK_CUSTOMERS), low, high)
        for start in range(0, applications.height, TRANSACTION_BLOCK_CUSTOMERS)
    ] or [_transaction_block(rng, applications, low, high)]
    return blocks[0] if len(blocks) == 1 else pl.concat(blocks, how="vertical", rechunk=False)


def _transaction_block(rng: np.random.Generator, applications: pl.DataFrame, low: int, high: int) -> pl.DataFrame:
    """Transactions of the customers in ``applications`` (see ``generate_transactions``)."""
    n_customers = applications.height
    defaulted = applications["default"].fill_null(0).to_numpy().astype(bool)
    application_day = applications["application_date"].cast(pl.Int32).to_numpy().astype(np.int64)

    # Count per customer within [low, high]; defaulters' uniform is skewed upwards (sqrt) -> more transactions.
    u = rng.random(n_customers)
    u = np.where(defaulted, np.sqrt(u), u)
    counts = low + np.minimum(np.floor(u * (high - low + 1)), high - low).astype(np.int64)
    owner = np.repeat(np.arange(n_customers, dtype=np.int64), counts)
    n = len(owner)
    bad = defaulted[owner]

    # Day offset 1..365 before the application date; part of defaulters' activity crowds into the last 60 days.
    days_before = rng.integers(1, 366, size=n)
    recent = bad & (rng.random(n) < DEFAULTER_RECENT_SHARE)
    days_before = np.where(recent, rng.integers(1, 61, size=n), days_before)
    # Time of day: daytime 05:00-24:00, or late night 00:00-05:00 (more often for defaulters).
    late = rng.random(n) < np.where(bad, LATE_NIGHT_SHARE[1], LATE_NIGHT_SHARE[0])
    second_of_day = np.where(late, rng.integers(0, 5 * 3600, size=n), rng.integers(5 * 3600, 86_400, size=n))
    txn_us = ((application_day[owner] - days_before) * 86_400 + second_of_day) * 1_000_000

    # Merchant category from the repayer/defaulter mix; channel conditional on the category.
    category = _draw_conditional(rng, _CATEGORY_P, bad.astype(np.int64))
    channel = _draw_conditional(rng, _CHANNEL_P, category)

    amount = _AMOUNT_MEDIAN[category] * np.exp(_AMOUNT_SIGMA[category] * rng.normal(size=n))
    amount *= np.where(bad, DEFAULTER_AMOUNT_FACTOR, 1.0)
    refund = _REFUNDABLE[category] & (rng.random(n) < REFUND_RATE)
    amount = np.round(np.where(refund, -amount, amount), 2)
    amount[amount == 0.0] = 0.01
    del refund, bad

    # Sort by customer, then time: one int64 key (customer index, seconds into its 365-day window) sorts
    # much faster than a two-key lexsort.
    window_start_us = (application_day[owner] - 365) * 86_400 * 1_000_000
    key = owner * (366 * 86_400) + (txn_us - window_start_us) // 1_000_000
    del window_start_us
    order = np.argsort(key, kind="stable")
    del key
    return pl.DataFrame(
        [
            applications["customer_id"].gather(owner[order]).alias("customer_id"),
            pl.Series("txn_time", txn_us[order]).cast(pl.Datetime("us")),
            pl.Series("amount", amount[order]),
            _labels("channel", CHANNELS, channel[order]),
            _labels("merchant_category", MERCHANT_CATEGORIES, category[order]),
        ]
    )


# --------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------
_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_GBK_CHUNK_ROWS = 500_000


def _current_umask() -> int:
    """The process umask (only readable by setting it; restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def _atomic_target(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success move it into place, so readers never see half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode a plain open() would have had.
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_current_umask())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_gbk_csv(df: pl.DataFrame, path: str | os.PathLike[str]) -> None:
    """CSV with Chinese headers in GBK, as Chinese bank systems and Excel on a Chinese Windows export it.

    Why: the workbench must import such files, so tests and demos need realistic ones. Category values stay
    English; columns missing from ``CHINESE_HEADERS`` keep their name. Written in chunks so 10M rows do not need
    a second full copy as one string, and atomically (temp file + os.replace).
    """
    renamed = df.rename({c: CHINESE_HEADERS[c] for c in df.columns if c in CHINESE_HEADERS})
    with _atomic_target(path) as tmp, open(tmp, "w", encoding="gbk", newline="") as fh:
        if renamed.height == 0:
            fh.write(renamed.write_csv(datetime_format=_DATETIME_FORMAT))
        for start in range(0, renamed.height, _GBK_CHUNK_ROWS):
            chunk = renamed.slice(start, _GBK_CHUNK_ROWS)
            fh.write(chunk.write_csv(include_header=start == 0, datetime_format=_DATETIME_FORMAT))


def _write_table(df: pl.DataFrame, path: Path, *, parquet: bool, gbk: bool) -> None:
    """Write one output in the format the CLI flags ask for, atomically."""
    if parquet:
        with _atomic_target(path) as tmp:
            df.write_parquet(tmp)
    elif gbk:
        write_gbk_csv(df, path)
    else:
        with _atomic_target(path) as tmp:
            df.write_csv(tmp, datetime_format=_DATETIME_FORMAT)


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m resources.sampledata.credit OUT.csv --rows N --seed S [--gbk] [--transactions TX.csv]
    [--parquet]``. A ``.parquet`` suffix (or ``--parquet``) writes parquet; ``--gbk`` applies to CSV only."""
    parser = argparse.ArgumentParser(
        prog="python -m resources.sampledata.credit",
        description="Write seeded synthetic bank credit applications (and optionally transactions).",
    )
    parser.add_argument("out", type=Path, help="output file for the applications (.csv or .parquet)")
    parser.add_argument("--rows", type=int, default=2_000, help="number of applications (default 2000)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--gbk", action="store_true", help="CSV with Chinese headers in GBK encoding")
    parser.add_argument("--transactions", type=Path, default=None, help="also write a transactions table here")
    parser.add_argument("--parquet", action="store_true", help="write parquet whatever the suffix")
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be >= 0")

    outputs = [args.out] + ([args.transactions] if args.transactions is not None else [])
    as_parquet = {p: args.parquet or p.suffix.lower() == ".parquet" for p in outputs}
    if args.gbk and any(as_parquet.values()):
        parser.error("--gbk applies to CSV output only; it cannot be combined with parquet")

    applications = generate_applications(args.rows, args.seed)
    _write_table(applications, args.out, parquet=as_parquet[args.out], gbk=args.gbk)
    written = [f"{args.out} ({applications.height} applications)"]
    if args.transactions is not None:
        transactions = generate_transactions(applications, args.seed)
        _write_table(transactions, args.transactions, parquet=as_parquet[args.transactions], gbk=args.gbk)
        written.append(f"{args.transactions} ({transactions.height} transactions)")
    print("wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
