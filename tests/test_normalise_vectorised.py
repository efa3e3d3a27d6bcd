"""Column parsers (polars fast paths + scalar fallback) give exactly what the scalar parsers give, value for value."""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
from collections.abc import Callable
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers.idnumber import (
    IdParse,
    check_character,
    id_from_certificate,
    ids_from_certificates,
    parse_id,
    parse_ids,
)
from matchers.names import one_party_mask, parse_name, parse_names, split_parties
from pipeline.values import (
    NULL_TOKENS,
    PLAIN_TEXT,
    is_null_token,
    lenient,
    normalise_address,
    normalise_addresses,
    normalise_phone,
    normalise_phones,
    null_token_mask,
    parse_amount,
    parse_amounts,
    parse_date,
    parse_dates,
    simplified_lines,
)
from tests.conftest import make_id

# AIDLEADS_FUZZ_EXAMPLES=2000 for a long randomised run (as in test_hostile_inputs.py).
_SETTINGS = settings(max_examples=int(os.environ.get("AIDLEADS_FUZZ_EXAMPLES", "0")) or 60, deadline=None)



def column(values: list[str | None]) -> pl.Series:
    return pl.Series(values, dtype=pl.String)


def assert_same(vectorised: Callable[[pl.Series], pl.Series], scalar: Callable[[Any], Any], values: list[str | None]) -> None:
    got = vectorised(column(values)).to_list()
    expected = [scalar(v) for v in values]
    assert [(v, g) for v, g in zip(values, got)] == [(v, e) for v, e in zip(values, expected)]


def pieces(parts: list[str], max_size: int) -> st.SearchStrategy[str]:
    """Strings glued from parts (single characters or longer pieces)."""
    return st.lists(st.sampled_from(parts), max_size=max_size).map("".join)


def id_row(p: IdParse) -> dict[str, object]:
    return {"id18": p.id18, "candidate": p.candidate, "status": str(p.status), "birth_date": p.birth_date,
            "sex": p.sex, "region": p.region}


def name_row(raw: str | None) -> dict[str, object]:
    p = parse_name(raw)
    return {"name": p.name, "annotation": p.annotation, "surname": p.surname, "given": p.given, "pinyin": p.pinyin}


# ---------------------------------------------------------------- the premises of the fast paths


def test_plain_text_is_unchanged_by_nfkc_and_has_only_the_ascii_space() -> None:
    plain = [chr(c) for c in [*range(0x20, 0x7F), *range(0x4E00, 0xA000)]]
    assert column(plain).str.contains(PLAIN_TEXT).all()
    assert all(unicodedata.normalize("NFKC", c) == c for c in plain)
    assert [c for c in plain if c.isspace()] == [" "]
    assert not column(["\u3000", "\t", "（", "０", "\u00a0", "\uf900"]).str.contains(PLAIN_TEXT).any()


def test_simplified_lines_converts_each_line_as_alone() -> None:
    texts = ["乾隆", "干部", "頭髮", "髮", "頭", "臺灣", "著名", "发", "後來", "人民幣", "", "abc", "於是", "瞭解", "理髮店"]
    single = [simplified_lines([t])[0] for t in texts]
    assert simplified_lines(texts) == single
    assert simplified_lines(texts[::-1]) == single[::-1]
    with pytest.raises(ValueError):
        simplified_lines(["a\nb"])


# ---------------------------------------------------------------- null tokens


NULL_LIKE = sorted(NULL_TOKENS) + [None, " 无 ", "\u3000", "NULL", "N/A", "#N/A", "＃Ｎ/Ａ", "Nan", "  -  ", "--- ", "不详 ",
                                    "无无", "无 无", "0", "张三", "\t无\n", "NaT", "n / a", "#VALUE!", "#Null!"]


def test_null_token_mask() -> None:
    assert_same(null_token_mask, is_null_token, NULL_LIKE)


# ---------------------------------------------------------------- IDs

ID = make_id()
ID_X = next(i for seq in range(1000) if (i := make_id("110105", "19491001", seq)).endswith("X"))
ID15 = "350425800101123"
BAD_DATE = "350425" + "20210230" + "123"
TRICKY_IDS = [
    ID, ID_X, ID_X.lower(), ID_X[:-1] + "ｘ", ID[:17] + ("0" if ID[17] != "0" else "1"), BAD_DATE + check_character(BAD_DATE),
    "350425" + "18991231" + "123" + "0", "350425" + "21000101" + "123" + "0", ID15, "350425000230123", f"'{ID}", f'"{ID}"',
    f"`{ID}`", f" {ID} ", f"{ID[:6]} {ID[6:14]} {ID[14:]}", f"{ID[:6]}-{ID[6:14]}-{ID[14:]}", f"{ID[:6]}_{ID[6:]}",
    "".join(chr(ord(c) + 0xFEE0) for c in ID), "".join(chr(ord(c) + 0xFEE0) for c in ID15), f"{ID[:6]}\u3000{ID[6:]}",
    f"({ID})", f"【{ID}】", f"{ID}.0", "9.90101198E+17", "3.50425198E+17", "12345", "", " ", "-", "--", "'", "''", "无",
    "不详", "#N/A", "待补录", "/", "null", None, ID + "1", ID[:-1], "X" * 18, "x", f"{ID[:-1]}×", f"{ID}\u200b", "1" * 15,
    "0" * 18, "35042519800101123X", "35042519800101123x ", "350425800101123.0",
]


def test_parse_ids_tricky_values() -> None:
    values = TRICKY_IDS + TRICKY_IDS[::-1]
    assert parse_ids(column(values)).to_dicts() == [id_row(parse_id(v)) for v in values]


id_alphabet = st.sampled_from(list("0123456789Xx '\"`-_()．.０１９Ｘｘ\u3000E+"))


@_SETTINGS
@given(st.lists(st.one_of(
    st.text(id_alphabet, max_size=22),
    st.builds(lambda s, i: s + make_id(seq=i) + s, st.sampled_from(["", " ", "'", "\u3000"]), st.integers(0, 999)),
    st.builds(lambda i, sep: f"{make_id(seq=i)[:6]}{sep}{make_id(seq=i)[6:]}", st.integers(0, 999), st.sampled_from(" -_")),
    st.from_regex(r"[0-9]{15}", fullmatch=True),
    st.from_regex(r"[0-9]{17}[0-9Xx]", fullmatch=True),
    st.none(),
), max_size=25))
def test_parse_ids_equals_parse_id(values: list[str | None]) -> None:
    assert parse_ids(column(values)).to_dicts() == [id_row(parse_id(v)) for v in values]


TRICKY_CERTS = [ID + "12", ID + "7", ID, ID_X.lower() + "43", ID + "1234", ID + "12345", ID + "ab", f" {ID}12", f"{ID}-12",
                "".join(chr(ord(c) + 0xFEE0) for c in ID + "12"), ID[:17], "2.0123E+19", "", "无", None, ID + "1２"]


def test_ids_from_certificates() -> None:
    assert_same(ids_from_certificates, id_from_certificate, TRICKY_CERTS)


@_SETTINGS
@given(st.lists(st.one_of(st.text(id_alphabet, max_size=24),
                          st.builds(lambda i, t: make_id(seq=i) + t, st.integers(0, 999),
                                    st.text(st.sampled_from("0123456789abXx -"), max_size=5))), max_size=20))
def test_ids_from_certificates_equals_scalar(values: list[str]) -> None:
    assert_same(ids_from_certificates, id_from_certificate, values)


# ---------------------------------------------------------------- names

TRICKY_NAMES = [
    "张三", "張三", "张 三", " 张三 ", "张\u3000三", "李\u3000浩\u3000博", "张三(已故)", "张三（已故）", "张三（户主）", "张三（代領）",
    "张三(代", "张三()", "(代)", " (代)", "张三户主", "张三 户主", "张三已死亡", "张三户主(代)", "张三(代)(户主)", "欧阳娜娜",
    "欧阳", "欧阳娜", "单于", "单于一", "曾伟", "单", "李", "乾隆", "於丽", "王昇", "甯静", "乾隆(代)", "阿卜杜拉·热合曼",
    "阿卜杜拉?热合曼", "阿卜杜拉．热合曼", "阿卜杜拉.热合曼", "买买提•艾力", "艾力・买买提", "John Smith", "JOHN  smith", "无",
    "無", " 无 ", "不详", "未知", "无(代)", "無（代）", "", "  ", "\u3000", None, "#N/A", "/", "张三1", "张\u200b三", "張三豐",
    "髮", "頭髮", "著名", "于谦", "於谦", "杨乾坤", "張（户主）三", "张三 (本人)  ", "张三（本 人）", "张三【户主】", "㐀三",
    "\uf900三", "⺀三", "张三　（代）", "王老五代", "赵亡", "钱重复", "孙本人", "李已故", "周去世",
]


def test_parse_names_tricky_values() -> None:
    values = TRICKY_NAMES + TRICKY_NAMES[::-1]
    assert parse_names(column(values)).to_dicts() == [name_row(v) for v in values]


name_alphabet = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5),
    st.sampled_from(list("张王李欧阳单于曾乾於昇甯無髮頭後臺灣著乾户主代已故死亡本人重复去世 \u3000()（）【】·.?•A")),
)


@_SETTINGS
@given(st.lists(st.one_of(
    st.text(name_alphabet, max_size=8),
    st.builds(lambda a, b: f"{a}（{b}）", st.text(name_alphabet, min_size=1, max_size=4), st.text(name_alphabet, max_size=3)),
    st.sampled_from(TRICKY_NAMES),
), max_size=25))
def test_parse_names_equals_parse_name(values: list[str | None]) -> None:
    assert parse_names(column(values)).to_dicts() == [name_row(v) for v in values]


# ---------------------------------------------------------------- parties


PARTY_CELLS = ["张三", "张三、李四", " 张三", "张三 ", "张 三", "张三,李四", "张三；李四", "张三/李四", "", " ", None, "\u3000张三",
               "张三\x1c", "\x1f", "某某有限公司", "张三，", "/", "a b", "\t", "张三\u2028"]


@_SETTINGS
@given(st.lists(st.one_of(st.sampled_from(PARTY_CELLS), pieces(["张", "三", " ", "、", ",", "/", "\u3000", "\x1c", "a"], 6)),
                max_size=20))
def test_one_party_mask_marks_cells_split_parties_keeps(values: list[str | None]) -> None:
    for cell, one in zip(values, one_party_mask(column(values)).to_list()):
        if one:  # how normalise reads a 终本 applicant cell: split_parties(cell) or [cell]
            assert (split_parties(cell) or [cell]) == [cell]
    assert one_party_mask(column(PARTY_CELLS)).to_list() == [
        True, False, False, False, True, False, False, False, True, False, True, False, False, False, True, False, False,
        True, False, False]


# ---------------------------------------------------------------- phones

TRICKY_PHONES = [
    "13812345678", "138 1234 5678", "138-1234-5678", "+8613812345678", "+86 138 1234 5678", "86-13812345678",
    "008613812345678", "013812345678", "0086 138-1234-5678", "12812345678", "1381234567", "138123456789",
    "13812345678/0598-7226270", "0598-7226270/13812345678", "0598-7226270", "05987226270", "7226270", "17226270", "0000000",
    "1111111", "22222222", "13812345678.0", "1.3812345678E10", "13812345678转123", "0598-7226270 ext 12", "13812345678#1",
    "13812345678x2", "138123456781398765432", "138 1234 5678 139 8765 4321", "13812345678;13987654321", "13812345678,",
    "13812345678、13987654321", "13812345678或13987654321", "１３８１２３４５６７８", "138\u30001234\u30005678", "无", "-", "",
    " ", None, "86", "+86", "0", "13812345678 ", " 13812345678", "1381234567８", "abc", "13812345678|x", "++8613812345678",
    "86 86 13812345678", "0 13812345678", "8613812345678/", "/13812345678",
]


def test_normalise_phones_tricky_values() -> None:
    assert_same(normalise_phones, normalise_phone, TRICKY_PHONES + TRICKY_PHONES[::-1])


@_SETTINGS
@given(st.lists(st.one_of(
    pieces(list("0123456789 +-/;,|x#.转或和、") + ["13", "86", "0598", "1381234"], max_size=12),
    st.from_regex(r"(\+?86[ -]?)?1[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"0[0-9]{2,3}-?[0-9]{7,8}", fullmatch=True),
    st.sampled_from(TRICKY_PHONES),
), max_size=25))
def test_normalise_phones_equals_normalise_phone(values: list[str | None]) -> None:
    assert_same(normalise_phones, normalise_phone, values)


# ---------------------------------------------------------------- dates

TRICKY_DATES = [
    "2024-01-05", "2024-1-5", "2024/01/05", "2024/1/5", "2024.01.05", "2024.1.5", "2024年1月5日", "2024年01月05号",
    "2024年1月5", "2024-1/5", "2024年5月", "2024-05", "2024/5", "2024.5", "2024年", "20240105", "20241301", "20240230",
    "19000101", "18991231", "21001231", "21010101", "45000", "1", "0", "1899", "1900", "2100", "2101", "80000", "80001",
    "45000.5", "45000.0", "2024-02-29", "2023-02-29", "2000-02-29", "1900-02-29", "2024-13-01", "2024-00-10", "2024-01-00",
    "2024-01-32", "2024-04-31", " 2024-01-05 ", "2024 - 01 - 05", "2024-01-05 12:30", "2024-01-05T12:30:00Z",
    "2024-01-05 12:30:00.000", "２０２４-０１-０５", "２０２４年１月５日", "2024-1-05号", "待查", "无", "-", "/", "", " ", None,
    "0000-01-01", "9999-12-31", "2024-111", "202401", "2024010", "123456", "12345", "99999", "+2024-01-05", "2024-01-05日",
    "2024年1月5日号", "٢٠٢٤-٠١-٠٥", "2024—01—05", "1e4", "-45000",
]


def test_parse_dates_tricky_values() -> None:
    assert_same(parse_dates, lenient(parse_date), TRICKY_DATES + TRICKY_DATES[::-1])


def test_parse_dates_every_day_shape_at_the_edges() -> None:
    values = [f"{y}{s1}{m}{s2}{d}{end}"
              for y in ("1899", "1900", "2000", "2023", "2024", "2100", "2101")
              for m in ("0", "1", "01", "02", "2", "04", "12", "13")
              for d in ("0", "1", "01", "28", "29", "30", "31", "32")
              for s1, s2, end in (("-", "-", ""), ("/", "/", ""), (".", ".", ""), ("年", "月", "日"), ("年", "月", ""))]
    values += [f"{y}{m:02d}{d:02d}" for y in (1899, 1900, 2024, 2100, 2101) for m in range(14) for d in range(33)]
    values += [str(n) for n in range(0, 100_001, 37)] + [str(n) for n in range(1890, 2110)]
    assert_same(parse_dates, lenient(parse_date), values)


@_SETTINGS
@given(st.lists(st.one_of(
    pieces(list("0123456789-/.年月日号 T:０") + ["2024", "19", "20"], max_size=10),
    st.dates(dt.date(1880, 1, 1), dt.date(2120, 12, 31)).map(lambda d: d.strftime("%Y-%m-%d")),
    st.dates(dt.date(1880, 1, 1), dt.date(2120, 12, 31)).map(lambda d: f"{d.year}/{d.month}/{d.day}"),
    st.dates(dt.date(1880, 1, 1), dt.date(2120, 12, 31)).map(lambda d: d.strftime("%Y%m%d")),
    st.integers(0, 100_000).map(str),
), max_size=25))
def test_parse_dates_equals_parse_date(values: list[str]) -> None:
    assert_same(parse_dates, lenient(parse_date), values)


# ---------------------------------------------------------------- amounts

TRICKY_AMOUNTS = [
    "56300", "56300.00", "0", "0.0", "00012", "50,300.00", "1,234,567.89", "1,2", ",123", "123,", "1,23", "1,2345",
    "123456789012345", "1234567890123456", "123456789012345.123456789012", "0.1", "0.30000000000000004", ".5", "5.",
    "1e5", "1E5", "2.57万", "1.2亿", "3千", "￥1034", "¥1,034.00", "1200元", "1200元整", "人民币1200元", "-100", "+100",
    "(100)", "１２００", "1 200", " 1200 ", "无", "-", "", None, "见判决书", "9" * 30, "1,234,567,890,123.5",
    "999,999,999,999,999", "1,000,000,000,000,000", "4.35", "2.675", "1.005", "0.1234567890123",
]


def test_parse_amounts_tricky_values() -> None:
    assert_same(parse_amounts, lenient(parse_amount), TRICKY_AMOUNTS + TRICKY_AMOUNTS[::-1])


@_SETTINGS
@given(st.lists(st.one_of(
    st.decimals(min_value=0, max_value=10**15, places=4, allow_nan=False, allow_infinity=False).map(str),
    st.floats(min_value=0, max_value=1e15, allow_nan=False).map(lambda f: f"{f:,.2f}"),
    st.floats(min_value=0, max_value=1e15, allow_nan=False).map(repr),
    st.text(st.sampled_from(list("0123456789,.万元 -")), max_size=16),
), max_size=25))
def test_parse_amounts_equals_parse_amount(values: list[str]) -> None:
    assert_same(parse_amounts, lenient(parse_amount), values)


# ---------------------------------------------------------------- addresses

TRICKY_ADDRESSES = [
    "大田县湖美乡小格村8组9号", "大田县 湖美乡", " 大田县湖美乡 ", "臺灣省臺北市", "台湾省", "頭髮巷1號", "１號", "1号", "A栋 3单元",
    "福建省三明市大田县均溪镇南门社区北门街95号", "无", "無", "不详", " N/A ", "null", "", "  ", "\u3000", None, "乾隆路", "於家村",
    "干部新村", "發展路", "发展路", "后来村", "後來村", "理髮店", "著名小区", "張家\u3000莊", "abc", "#VALUE!", "无 无",
]


def test_normalise_addresses_tricky_values() -> None:
    assert_same(normalise_addresses, normalise_address, TRICKY_ADDRESSES + TRICKY_ADDRESSES[::-1])


@_SETTINGS
@given(st.lists(st.one_of(
    st.text(st.one_of(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5),
                      st.sampled_from(list("髮頭臺灣後來發於乾號 0１A-\u3000無"))), max_size=12),
    st.sampled_from(TRICKY_ADDRESSES),
), max_size=25))
def test_normalise_addresses_equals_normalise_address(values: list[str | None]) -> None:
    assert_same(normalise_addresses, normalise_address, values)
