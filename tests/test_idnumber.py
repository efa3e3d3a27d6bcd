"""ID numbers: cleaning, GB 11643 check, 15→18 upgrade, typo relations, certificates, masking.

Every ID here is synthetic: built from an unassigned region code (99xxxx) with check_character.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from matchers.idnumber import (
    IdParse,
    IdStatus,
    check_character,
    id_from_certificate,
    id_typo_relation,
    is_valid_id18,
    mask_id,
    mask_phone,
    parse_id,
    parse_ids,
    upgrade_15_to_18,
)


def make_id(region: str = "990101", born: dt.date = dt.date(1980, 1, 2), seq: str = "123") -> str:
    """A synthetic 18-character ID with a correct check character."""
    first17 = region + born.strftime("%Y%m%d") + seq
    return first17 + check_character(first17)


def make_id_ending_x() -> str:
    """A synthetic ID whose check character is X."""
    return next(i for i in (make_id(seq=f"{n:03d}") for n in range(1000)) if i.endswith("X"))


def make_numeric_id() -> str:
    """A synthetic ID of digits only (it can be read as an integer)."""
    return next(i for i in (make_id(seq=f"{n:03d}") for n in range(1000)) if not i.endswith("X"))


ID = make_id()
ID_X = make_id_ending_x()
FULL_WIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


# ---------------------------------------------------------------- check character and validity


def test_check_character_follows_gb11643() -> None:
    # 17 ones: sum of the weights = 100; 100 mod 11 = 1 -> "10X98765432"[1] = "0"
    assert check_character("1" * 17) == "0"
    assert check_character("0" * 17) == "1"
    assert check_character("0" * 16 + "1") == "X"  # 1*2 = 2 -> "10X98765432"[2] = "X"


@given(st.from_regex(r"[0-9]{17}", fullmatch=True))
def test_check_character_is_iso7064_mod11_2(first17: str) -> None:
    # ISO 7064 MOD 11-2: weights 2^(17-i) mod 11, and sum + check value = 1 (mod 11), X = 10.
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    value = (1 - total) % 11
    assert check_character(first17) == ("X" if value == 10 else str(value))


@pytest.mark.parametrize("bad", ["", "1" * 16, "1" * 18, "1" * 16 + "X", "１" * 17])
def test_check_character_rejects_non_17_digit_input(bad: str) -> None:
    with pytest.raises(ValueError):
        check_character(bad)


def test_is_valid_id18() -> None:
    assert is_valid_id18(ID)
    assert is_valid_id18(ID_X)
    assert not is_valid_id18(ID_X.lower())
    assert not is_valid_id18(ID[:17] + ("0" if ID[17] != "0" else "1"))
    assert not is_valid_id18(ID[:17])
    assert not is_valid_id18("990101" + "20210230" + "123" + "0")


# ---------------------------------------------------------------- parse_id: valid and dirty input


def test_valid_id_derives_birth_date_sex_region() -> None:
    p = parse_id(ID)
    assert p == IdParse(ID, ID, None, IdStatus.VALID, dt.date(1980, 1, 2), "M", "990101")  # 17th digit 3: odd


def test_even_17th_digit_is_female() -> None:
    assert parse_id(make_id(seq="124")).sex == "F"


@pytest.mark.parametrize(
    "dirty",
    [
        f" {ID} ",
        f"'{ID}",
        f'"{ID}"',
        f"‘{ID}’",
        ID.translate(FULL_WIDTH),
        f"{ID[:6]} {ID[6:14]} {ID[14:]}",
        f"{ID[:6]}\u3000{ID[6:]}",
        f"({ID})",
        f"【{ID}】",
        f"{ID}\t",
        f"{ID}.0",
        f"\ufeff{ID}",
    ],
)
def test_dirty_spellings_of_a_valid_id(dirty: str) -> None:
    assert parse_id(dirty).id18 == ID
    assert parse_id(dirty).status is IdStatus.VALID
    assert parse_id(dirty).raw == dirty


@pytest.mark.parametrize("dirty", [ID_X, ID_X.lower(), ID_X.translate(FULL_WIDTH).replace("Ｘ", "ｘ"), f"'{ID_X.lower()}"])
def test_ids_ending_in_x(dirty: str) -> None:
    assert parse_id(dirty).id18 == ID_X


def test_int_input_keeps_all_18_digits() -> None:
    numeric = make_numeric_id()
    assert parse_id(int(numeric)).id18 == numeric


@pytest.mark.parametrize("token", [None, "", "  ", "无", "不详", "/", "-", "null", "NULL", "None", "nan", "#N/A", float("nan")])
def test_null_tokens_are_missing(token: object) -> None:
    p = parse_id(token)
    assert p.status is IdStatus.MISSING
    assert p.id18 is None and p.candidate is None


@pytest.mark.parametrize("mangled", ["9.90101198E+17", "9.90101198e+17", "9.90101198001E17", "'9.90101198E+17"])
def test_scientific_notation_is_damaged(mangled: str) -> None:
    p = parse_id(mangled)
    assert p.status is IdStatus.DAMAGED
    assert p.id18 is None and p.candidate is None


def test_float_with_lost_digits_is_damaged() -> None:
    assert parse_id(float(ID[:17] + "0")).status is IdStatus.DAMAGED
    assert parse_id(9.90101198e17).status is IdStatus.DAMAGED
    assert parse_id(12345.5).status is IdStatus.DAMAGED


@pytest.mark.parametrize("garbage", ["12345", ID[:17], ID + "1", "身份证", "99010119800102123A", "ABC", "12X456789012345678", True])
def test_wrong_length_or_garbage_is_damaged(garbage: object) -> None:
    assert parse_id(garbage).status is IdStatus.DAMAGED


def test_bad_check_keeps_candidate_only() -> None:
    wrong = ID[:17] + ("0" if ID[17] != "0" else "1")
    p = parse_id(wrong)
    assert p.status is IdStatus.BAD_CHECK
    assert p.candidate == wrong and p.id18 is None
    assert p.birth_date is None and p.sex is None and p.region is None


@pytest.mark.parametrize(
    "birth",
    ["20210230", "19801301", "18991231", "19800100", (dt.date.today() + dt.timedelta(days=1)).strftime("%Y%m%d")],
)
def test_bad_date(birth: str) -> None:
    first17 = "990101" + birth + "123"
    p = parse_id(first17 + check_character(first17))  # correct check, impossible date
    assert p.status is IdStatus.BAD_DATE
    assert p.candidate == first17 + check_character(first17)
    assert p.id18 is None


def test_birth_date_today_and_1900_are_valid() -> None:
    assert parse_id(make_id(born=dt.date.today())).status is IdStatus.VALID
    assert parse_id(make_id(born=dt.date(1900, 1, 1))).status is IdStatus.VALID


# ---------------------------------------------------------------- 15 → 18


def test_upgrade_15_to_18() -> None:
    id15 = "990101" + "800102" + "123"
    upgraded = upgrade_15_to_18(id15)
    assert upgraded == make_id(born=dt.date(1980, 1, 2))
    assert is_valid_id18(upgraded)
    with pytest.raises(ValueError):
        upgrade_15_to_18("12345")


def test_legacy15_parses_to_id18() -> None:
    p = parse_id(" 990101800102124 ")
    assert p.status is IdStatus.LEGACY15
    assert p.id18 == make_id(seq="124")
    assert p.birth_date == dt.date(1980, 1, 2) and p.sex == "F" and p.region == "990101"


def test_legacy15_as_int_and_float() -> None:
    assert parse_id(990101800102124).status is IdStatus.LEGACY15
    assert parse_id(990101800102124.0).id18 == make_id(seq="124")


def test_legacy15_with_bad_date() -> None:
    p = parse_id("990101800230123")
    assert p.status is IdStatus.BAD_DATE
    assert p.candidate == upgrade_15_to_18("990101800230123")


# ---------------------------------------------------------------- typo relations


def test_id_typo_relation() -> None:
    sub = ID[:5] + ("0" if ID[5] != "0" else "1") + ID[6:]
    swapped = ID[:8] + ID[9] + ID[8] + ID[10:]  # year digits '8','0' swapped
    assert id_typo_relation(ID, sub) == "one_substitution"
    assert id_typo_relation(ID, swapped) == "adjacent_transposition"
    assert id_typo_relation(ID, ID) is None
    assert id_typo_relation(ID, ID[:17]) is None
    far = ID[:2] + ID[3] + ID[2] + ID[4:]
    assert id_typo_relation(ID, far[:10] + ("0" if far[10] != "0" else "1") + far[11:]) is None
    non_adjacent = ID[:4] + ID[6] + ID[5] + ID[4] + ID[7:]
    assert id_typo_relation(ID, non_adjacent) is None


# ---------------------------------------------------------------- certificates and masking


@pytest.mark.parametrize(
    "cert",
    [ID + "42", f"{ID} 4 2", f"{ID}42 ", ID, f"'{ID}42", (ID + "42").translate(FULL_WIDTH)],
)
def test_id_from_certificate(cert: str) -> None:
    assert id_from_certificate(cert) == ID


def test_id_from_certificate_lowercase_x() -> None:
    assert id_from_certificate(ID_X.lower() + "71") == ID_X


@pytest.mark.parametrize("cert", [None, "", "无", "12345", float(ID + "42"), "残疾证" + ID])
def test_id_from_certificate_none(cert: object) -> None:
    assert id_from_certificate(cert) is None


def test_id_from_certificate_does_not_validate() -> None:
    wrong = ID[:17] + ("0" if ID[17] != "0" else "1")
    assert id_from_certificate(wrong + "11") == wrong
    assert parse_id(id_from_certificate(wrong + "11")).status is IdStatus.BAD_CHECK


def test_mask_id() -> None:
    assert mask_id(ID) == ID[:6] + "*" * 8 + ID[-4:]
    assert mask_id("990101800102123") == "990101*****2123"
    assert mask_id(None) == ""
    assert mask_id("") == ""
    assert mask_id("12345") == "*****"


def test_mask_phone() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone(13812345678) == "138****5678"
    assert mask_phone(None) == ""
    assert mask_phone("12345") == "*****"


# ---------------------------------------------------------------- properties

regions = st.from_regex(r"[1-9][0-9]{5}", fullmatch=True)
births = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date.today())
seqs = st.from_regex(r"[0-9]{3}", fullmatch=True)
valid_ids = st.builds(make_id, regions, births, seqs)


@st.composite
def dirty_spellings(draw: st.DrawFn, id18: str) -> str:
    """id18 with random full-width characters, inner spaces, lower-case x and a leading quote."""
    chars = [c.translate(FULL_WIDTH) if draw(st.booleans()) else c for c in id18]
    chars = [c + (" " if draw(st.integers(0, 4)) == 0 else "") for c in chars]
    text = "".join(chars)
    if draw(st.booleans()):
        text = text.replace("X", "x").replace("Ｘ", "ｘ")
    prefix = draw(st.sampled_from(["", "'", " ", "\u3000", '"']))
    return prefix + text + draw(st.sampled_from(["", " ", "\t"]))


@given(data=st.data(), id18=valid_ids)
def test_any_valid_id_survives_dirt(data: st.DataObject, id18: str) -> None:
    dirty = data.draw(dirty_spellings(id18))
    p = parse_id(dirty)
    assert p.status is IdStatus.VALID
    assert p.id18 == id18


@given(regions, st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1999, 12, 31)), seqs)
def test_upgraded_15_digit_ids_are_valid(region: str, born: dt.date, seq: str) -> None:
    id15 = region + born.strftime("%y%m%d") + seq
    assert is_valid_id18(upgrade_15_to_18(id15))
    p = parse_id(id15)
    assert p.status is IdStatus.LEGACY15 and p.birth_date == born


@given(valid_ids, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_one_substitution_is_never_valid(id18: str, pos: int, ch: str) -> None:
    typo = id18[:pos] + ch + id18[pos + 1 :]
    if typo == id18:
        return
    assert not is_valid_id18(typo)
    assert id_typo_relation(id18, typo) == "one_substitution"


@given(valid_ids, st.integers(0, 16))
def test_adjacent_transposition_is_never_valid(id18: str, pos: int) -> None:
    typo = id18[:pos] + id18[pos + 1] + id18[pos] + id18[pos + 2 :]
    if typo == id18:
        return
    assert not is_valid_id18(typo)
    assert id_typo_relation(id18, typo) == "adjacent_transposition"


# ---------------------------------------------------------------- vectorised


def as_row(p: IdParse) -> dict[str, object]:
    """parse_id's result in parse_ids' row shape."""
    return {"id18": p.id18, "candidate": p.candidate, "status": str(p.status), "birth_date": p.birth_date,
            "sex": p.sex, "region": p.region}


def test_parse_ids_matches_parse_id_and_keeps_order() -> None:
    bad_date = "990101" + "20210230" + "123"
    values = [ID, None, f"'{ID_X.lower()}", ID[:17] + "0", "9.90101198E+17", "990101800102124", "无", ID,
              bad_date + check_character(bad_date), "", ID_X]
    out = parse_ids(pl.Series(values, dtype=pl.String))
    assert out.columns == ["id18", "candidate", "status", "birth_date", "sex", "region"]
    assert out.to_dicts() == [as_row(parse_id(v)) for v in values]


def test_parse_ids_numeric_columns() -> None:
    ints = [int(make_numeric_id()), 990101800102124, None]
    assert parse_ids(pl.Series(ints)).to_dicts() == [as_row(parse_id(v)) for v in ints]
    floats = [9.90101198e17, None, 990101800102124.0, float("nan")]
    assert parse_ids(pl.Series(floats)).to_dicts() == [as_row(parse_id(v)) for v in floats]
    assert parse_ids(pl.Series([], dtype=pl.String)).height == 0


@given(st.lists(st.one_of(
    valid_ids,
    valid_ids.map(lambda i: i[:17] + ("0" if i[17] != "0" else "1")),
    st.builds(lambda r, d, q: r + d.strftime("%y%m%d") + q, regions, births, seqs),
    st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True),
    st.sampled_from([None, "", "无", "#N/A", "9.90101198E+17", "12345"]),
), max_size=30))
def test_parse_ids_equals_parse_id(values: list[str | None]) -> None:
    out = parse_ids(pl.Series(values, dtype=pl.String))
    assert out.to_dicts() == [as_row(parse_id(v)) for v in values]
