"""Personal-data detection: ID card and Luhn checksums, masking, and column-level findings on a bank-like table."""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from nodes.explore.pii import PiiFinding, detect_pii, is_valid_cn_id, luhn_ok, mask

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def id_number(base17: str) -> str:
    """Complete 17 digits with the GB 11643 MOD 11-2 check character, computed independently of the module."""
    return base17 + "10X98765432"[sum(int(d) * w for d, w in zip(base17, WEIGHTS)) % 11]


def card_number(prefix: str, length: int = 16) -> str:
    """Pad `prefix` with zeros and append the Luhn check digit."""
    body = prefix.ljust(length - 1, "0")
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled positions, counted from the check digit's left neighbour
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def valid_ids(count: int) -> list[str]:
    return [id_number(f"110105{1960 + i % 40}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}") for i in range(count)]


# --- ID card numbers -------------------------------------------------------------------------------------------

def test_valid_id_numbers_pass():
    for value in valid_ids(50):
        assert is_valid_cn_id(value), value


def test_x_check_character_in_either_case():
    base = next(b for b in (f"11010519800101{i:03d}" for i in range(1000)) if id_number(b).endswith("X"))
    assert is_valid_cn_id(id_number(base))
    assert is_valid_cn_id(id_number(base)[:17] + "x")
    assert not is_valid_cn_id(id_number(base)[:17] + "0")


def test_wrong_check_digit_fails():
    good = id_number("11010519850615123")
    bad = good[:17] + next(c for c in "0123456789X" if c != good[17])
    assert not is_valid_cn_id(bad)


@pytest.mark.parametrize("birth", ["19850230", "19851301", "19850000", "18991231", f"{dt.date.today().year + 1}0101"])
def test_impossible_birth_dates_fail_even_with_a_correct_checksum(birth):
    assert not is_valid_cn_id(id_number(f"110105{birth}123"))


@pytest.mark.parametrize("value", ["", "11010519850615123", "1101051985061512345", "11010519850615123Y",
                                   "1101051985061512X3", "１１０１０５１９８５０６１５１２３４"])
def test_malformed_id_numbers_fail(value):
    assert not is_valid_cn_id(value)


# --- Luhn ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("number", ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117",
                                    "3530111333300000", "6212345678901265", card_number("622202", 19)])
def test_luhn_accepts_known_test_cards(number):
    assert luhn_ok(number)


@pytest.mark.parametrize("number", ["4111111111111112", "5555555555554445", "411111111111", "41111111111111111111",
                                    "4111 1111 1111 1111", "", "abcdefghijklmnop"])
def test_luhn_rejects_wrong_checksums_and_non_cards(number):
    assert not luhn_ok(number)


# --- masking ---------------------------------------------------------------------------------------------------

def test_masking_keeps_only_the_recognisable_ends():
    assert mask("cn_id_card", "110105198506151234") == "110105********1234"
    assert mask("cn_mobile", "+86 138-1234-5678") == "138****5678"
    assert mask("cn_mobile", "13812345678") == "138****5678"
    assert mask("bank_card", "6222 0212 3456 7890") == "6222 **** **** 7890"
    assert mask("bank_card", "6222021234567890123") == "6222 **** **** *** 0123"
    assert mask("email", "zhang.san@example.com") == "z***@example.com"
    assert mask("cn_id_card", "12345") == "*****"  # too short to hide anything: hide all
    with pytest.raises(ValueError):
        mask("passport", "E12345678")


# --- detect_pii ------------------------------------------------------------------------------------------------

N = 200


def bank_frame() -> pl.DataFrame:
    rng = np.random.default_rng(7)
    ids: list[str | None] = valid_ids(N)
    for i in range(0, N, 10):  # 10% wrong check digits
        ids[i] = ids[i][:17] + ("0" if ids[i][17] != "0" else "1")
    for i in range(5, N, 10):  # 10% nulls
        ids[i] = None
    mobiles = [[f"+86 138-{i:04d}-{i * 7 % 10000:04d}", f"86 139 {i:04d} 5678", f"150{i:08d}"][i % 3]
               for i in range(N)]
    cards = [card_number(f"6222{i:06d}") for i in range(N)]
    accounts = rng.integers(10**15, 10**16, N)  # random 16-digit ids: Luhn passes ~10% by chance
    return pl.DataFrame({
        "id_card": ids,
        "mobile": mobiles,
        "card_int": [int(c) for c in cards],
        "card_str": [f"  {c[:4]} {c[4:8]} {c[8:12]} {c[12:]} " if i % 2 else f"{c[:4]}-{c[4:8]}-{c[8:12]}-{c[12:]}"
                     for i, c in enumerate(cards)],
        "email": [f"user{i}@bank{i % 3}.example.com" for i in range(N)],
        "account_id": accounts,
        "account_str": [str(4 * 10**15 + int(a) % 10**15) for a in accounts],  # even with a Visa-like first digit
        "note": [f"customer called about loan {i}" for i in range(N)],
        "amount": rng.normal(1000, 200, N),
    }, schema_overrides={"card_int": pl.Int64, "account_id": pl.Int64})


def by_column(findings: list[PiiFinding]) -> dict[str, PiiFinding]:
    return {f.column: f for f in findings}


def test_detect_pii_finds_each_kind_with_its_sensitivity():
    found = by_column(detect_pii(bank_frame()))
    assert {c: (f.kind, f.sensitivity) for c, f in found.items()} == {
        "id_card": ("cn_id_card", "C3"),
        "mobile": ("cn_mobile", "C2"),
        "card_int": ("bank_card", "C3"),
        "card_str": ("bank_card", "C3"),
        "email": ("email", "C2"),
    }
    ids = found["id_card"]
    assert ids.sample_size == N - N // 10  # nulls are not checked
    assert ids.share == pytest.approx((N - N // 5) / (N - N // 10))  # wrong check digits do not count
    for col in ("mobile", "card_int", "card_str", "email"):
        assert found[col].share == 1.0 and found[col].sample_size == N


def test_findings_never_carry_a_full_value():
    df = bank_frame()
    findings = detect_pii(df)
    text = repr(findings)
    for col in ("id_card", "mobile", "card_int", "card_str", "email"):
        for value in df[col].drop_nulls().cast(pl.String):
            assert value.strip() not in text
            assert value.replace(" ", "").replace("-", "").strip() not in text
    found = by_column(findings)
    assert found["id_card"].example.count("*") == 8
    assert found["mobile"].example.startswith("138****")
    assert found["card_int"].example.startswith("6222 **** **** ")
    assert found["card_str"].example.startswith("6222 **** **** ")
    assert found["email"].example == "u***@bank0.example.com"


def test_random_account_ids_are_not_bank_cards_even_at_a_low_threshold():
    found = by_column(detect_pii(bank_frame(), min_share=0.01))
    assert "account_id" not in found and "account_str" not in found
    assert "note" not in found and "amount" not in found


def test_eighteen_digit_integer_ids_are_found():
    ids = [int(v) for v in valid_ids(300) if v[-1] != "X"]
    [finding] = detect_pii(pl.DataFrame({"cid": ids}, schema={"cid": pl.Int64}))
    assert (finding.kind, finding.sensitivity, finding.share) == ("cn_id_card", "C3", 1.0)


def test_min_share_decides_whether_a_mixed_column_is_reported():
    df = pl.DataFrame({"contact": [f"client{i}@example.com" if i % 5 < 3 else "n/a" for i in range(100)]})
    [finding] = detect_pii(df, min_share=0.5)
    assert finding.kind == "email" and finding.share == pytest.approx(0.6)
    assert detect_pii(df, min_share=0.6) != []  # the threshold is inclusive
    assert detect_pii(df, min_share=0.7) == []


def test_one_finding_per_column_and_ties_go_to_the_more_sensitive_kind():
    df = pl.DataFrame({"mixed": [v for pair in zip(valid_ids(50), (f"c{i}@example.com" for i in range(50)))
                                 for v in pair]})
    [finding] = detect_pii(df, min_share=0.4)
    assert (finding.kind, finding.sensitivity, finding.share) == ("cn_id_card", "C3", 0.5)


def test_sampling_bounds_the_work_and_is_deterministic():
    rows = 200_000
    df = pl.DataFrame({"mobile": [f"1{3 + i % 7}{i:09d}" for i in range(rows)],
                       "other": pl.Series(range(rows), dtype=pl.Int64)})
    first = detect_pii(df, sample=5_000, seed=3)
    assert [(f.column, f.kind, f.sample_size, f.share) for f in first] == [("mobile", "cn_mobile", 5_000, 1.0)]
    assert detect_pii(df, sample=5_000, seed=3) == first
    assert detect_pii(df)[0].sample_size == 10_000


def test_blank_and_all_null_columns_are_skipped():
    df = pl.DataFrame({"empty": pl.Series([None] * 10, dtype=pl.String), "blank": ["  "] * 10,
                       "flags": [True] * 10})
    assert detect_pii(df) == []


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError):
        detect_pii(pl.DataFrame({"a": ["x"]}), min_share=0)
    with pytest.raises(ValueError):
        detect_pii(pl.DataFrame({"a": ["x"]}), sample=0)
