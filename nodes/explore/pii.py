"""Personal-data detection for the Profile node: flag columns that look like Chinese ID card numbers, mainland
mobile numbers, bank card numbers or e-mail addresses, so a bank can mask them before data leaves the team.

Profiling must stay fast on millions of rows, so each column is sampled, the cheap shape checks run vectorised in
polars, and the Python checksums (ID card MOD 11-2, Luhn) only see the sampled values whose shape already matches.
Findings carry a masked example only: they end up in reports and logs.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

# Sensitivity classes after the usual bank data-classification scheme: C3 identifies a person or an account on its
# own, C2 is contact data.
SENSITIVITY = {"cn_id_card": "C3", "bank_card": "C3", "cn_mobile": "C2", "email": "C2"}

# Rust regex (polars): `\d` would accept any Unicode digit, so digits are spelt [0-9].
_ID_RE = r"^[0-9]{17}[0-9Xx]$"
_MOBILE_RE = r"^(?:(?:\+|00)?86[ \-]?)?1[3-9][0-9][ \-]?[0-9]{4}[ \-]?[0-9]{4}$"
_CARD_RE = r"^[0-9](?:[ \-]?[0-9]){12,18}$"
_EMAIL_RE = (r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
             r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$")
_SEPARATORS = r"[ \-]"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# Issuer digits of the card networks a Chinese bank sees: 3 (JCB, Amex, Diners), 4 (Visa), 5 (Mastercard),
# 6 (UnionPay, Discover). Internal account or customer ids rarely keep to them, and "86" + mobile (13 digits) starts
# with 8, so requiring them on top of Luhn keeps random 16-digit ids and prefixed phone numbers out.
_CARD_FIRST_DIGITS = frozenset("3456")
# Random digit strings pass Luhn one time in ten; a real card column passes nearly always. A column is only a card
# column when most of its card-shaped values pass, whatever min_share the user picked.
_MIN_LUHN_RATE = 0.5


@dataclass(frozen=True)
class PiiFinding:
    """One column that looks like personal data; `example` is always masked."""

    column: str
    kind: str  # "cn_id_card" | "cn_mobile" | "bank_card" | "email"
    sensitivity: str  # "C3" (cn_id_card, bank_card) | "C2" (cn_mobile, email)
    share: float  # share of non-null sampled values that match (0..1)
    sample_size: int  # how many non-null values were checked
    example: str  # one matching value, masked


def is_valid_cn_id(value: str) -> bool:
    """A mainland resident ID number (GB 11643): 17 digits, MOD 11-2 check character, plausible birth date.

    The checksum and the date together make random 18-digit numbers pass about once in 11 * 30, so an ID column is
    told apart from any other 18-digit code.
    """
    if len(value) != 18 or not value.isascii() or not value[:17].isdigit():
        return False
    expected = _ID_CHECK[sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS)) % 11]
    return value[17].upper() == expected and _plausible_birth_date(value[6:14])


def _plausible_birth_date(yyyymmdd: str) -> bool:
    """A real calendar date from 1900 up to today (nobody is born in the future)."""
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:])
    today = dt.date.today()
    if not 1900 <= year <= today.year:
        return False
    try:
        return dt.date(year, month, day) <= today
    except ValueError:
        return False


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) checksum of a 13..19 digit bank card number; anything else is not a card number."""
    if not 13 <= len(digits) <= 19 or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask(kind: str, value: str) -> str:
    """Mask a value of a personal-data kind the way Chinese banks print them, keeping just enough to recognise it."""
    value = value.strip()
    if kind == "cn_id_card":
        return _keep_ends(value, 6, 4)
    if kind == "cn_mobile":
        return _keep_ends(_digits(value)[-11:], 3, 4)
    if kind == "bank_card":
        return _mask_card(_digits(value))
    if kind == "email":
        return _mask_email(value)
    raise ValueError(f"unknown personal-data kind {kind!r}")


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isascii() and ch.isdigit())


def _keep_ends(value: str, head: int, tail: int) -> str:
    """Keep `head` and `tail` characters; a value too short to hide anything in between is masked completely."""
    hidden = len(value) - head - tail
    if hidden < max(head, tail):
        return "*" * len(value)
    return value[:head] + "*" * hidden + value[-tail:]


def _mask_card(digits: str) -> str:
    """First and last four digits, the rest as stars, in groups of four: "6222 **** **** 1234"."""
    hidden = len(digits) - 8
    if hidden < 4:
        return "*" * len(digits)
    stars = "*" * hidden
    groups = [stars[i:i + 4] for i in range(0, hidden, 4)]
    return " ".join([digits[:4], *groups, digits[-4:]])


def _mask_email(value: str) -> str:
    """First character of the local part, then the domain: "z***@example.com"."""
    local, _, domain = value.rpartition("@")
    if not local:
        return "*" * len(value)
    return local[0] + "***@" + domain


def detect_pii(df: pl.DataFrame, *, min_share: float = 0.5, sample: int = 10_000,
               seed: int = 0) -> list[PiiFinding]:
    """Columns whose sampled non-null values mostly look like personal data, at most one finding per column.

    String columns are checked for every kind; integer columns too, cast to text, because bank exports store
    mobile and card numbers (and sometimes checksum-digit IDs) as int64. A kind counts when its share of the
    sampled values is at least `min_share`; the kind with the highest share wins, C3 before C2 on a tie.
    """
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share must be in (0, 1], got {min_share}")
    if sample < 1:
        raise ValueError(f"sample must be at least 1, got {sample}")
    findings = []
    for name in df.columns:
        values = _sampled_text(df.get_column(name), sample, seed)
        if values is not None and len(values):
            finding = _best_finding(name, values, min_share)
            if finding is not None:
                findings.append(finding)
    return findings


def _sampled_text(col: pl.Series, sample: int, seed: int) -> pl.Series | None:
    """Up to `sample` non-null, non-blank values as stripped text; None for dtypes that cannot hold personal data."""
    dtype = col.dtype
    text = dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum))
    if not (text or dtype.is_integer()):
        return None
    col = col.drop_nulls()
    if len(col) > sample:  # sample first: stripping a million strings per column would dominate profiling
        col = col.sample(n=sample, seed=seed)
    col = col.cast(pl.String)
    if text:
        col = col.str.strip_chars()
        col = col.filter(col != "")  # blanks are how CSV exports spell missing
    return col


def _best_finding(name: str, values: pl.Series, min_share: float) -> PiiFinding | None:
    """Score every kind on one column's sample and keep the strongest one above `min_share`."""
    n = len(values)
    candidates = [(kind, len(matches) / n, matches[0])
                  for kind, matches in _matches(values).items() if matches and len(matches) / n >= min_share]
    if not candidates:
        return None
    kind, share, first = max(candidates, key=lambda c: (c[1], SENSITIVITY[c[0]] == "C3"))
    return PiiFinding(column=name, kind=kind, sensitivity=SENSITIVITY[kind], share=share, sample_size=n,
                      example=mask(kind, first))


def _matches(values: pl.Series) -> dict[str, list[str]]:
    """The sampled values that pass each kind's checks, in sample order (regex first, checksums on survivors)."""
    ids = values.filter(values.str.contains(_ID_RE)).to_list()
    return {
        "cn_id_card": [v for v in ids if is_valid_cn_id(v)],
        "cn_mobile": values.filter(values.str.contains(_MOBILE_RE)).to_list(),
        "bank_card": _card_matches(values),
        "email": values.filter(values.str.contains(_EMAIL_RE)).to_list(),
    }


def _card_matches(values: pl.Series) -> list[str]:
    """Card-shaped values passing Luhn with a card-network first digit; none unless Luhn passes far above chance."""
    shaped = values.filter(values.str.contains(_CARD_RE))
    if not len(shaped):
        return []
    digits = shaped.str.replace_all(_SEPARATORS, "").to_list()
    luhn = [luhn_ok(d) for d in digits]
    if sum(luhn) / len(digits) < _MIN_LUHN_RATE:
        return []
    return [v for v, d, ok in zip(shaped.to_list(), digits, luhn) if ok and d[0] in _CARD_FIRST_DIGITS]
