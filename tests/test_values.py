"""Scalar value parsers: null tokens, dates, amounts, phones, gender, injury, disability, addresses."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import AidLeadsError
from pipeline.values import (
    Injury,
    ValueParseError,
    is_null_token,
    normalise_address,
    normalise_phone,
    parse_amount,
    parse_date,
    parse_disability_category,
    parse_disability_level,
    parse_gender,
    parse_injury,
)

# ---------------------------------------------------------------- null tokens


@pytest.mark.parametrize(
    "token", [None, "", "  ", "\u3000", "无", "不详", "/", "-", "null", "NULL", "None", "nan", "NaN", "#N/A", "＃Ｎ/Ａ", float("nan")]
)
def test_null_tokens(token: object) -> None:
    assert is_null_token(token)


@pytest.mark.parametrize("value", ["0", 0, 0.0, "张三", "无锡", dt.date(2021, 1, 1), "1"])
def test_not_null_tokens(value: object) -> None:
    assert not is_null_token(value)


# ---------------------------------------------------------------- errors


def test_value_parse_error_never_shows_the_raw_value() -> None:
    secret = "张三 13812345678"
    with pytest.raises(ValueParseError) as info:
        parse_date(secret)
    err = info.value
    assert err.field_type == "date" and err.reason_zh == "日期无法识别" and err.raw == secret
    assert secret not in str(err) and "张三" not in repr(err.args)
    assert isinstance(err, ValueError) and isinstance(err, AidLeadsError)


# ---------------------------------------------------------------- dates

MARCH_5 = dt.date(2021, 3, 5)


@pytest.mark.parametrize(
    "raw",
    [
        "2021-03-05",
        "2021/3/5",
        "2021年3月5日",
        "2021年03月05号",
        "20210305",
        "2021.3.5",
        "2021-03-05 00:00:00",
        "2021/3/5 8:30",
        "2021-03-05T08:30:00Z",
        " 2021-03-05 ",
        "２０２１－０３－０５",
        20210305,
        20210305.0,
        44260,
        44260.0,
        "44260",
        "44260.0",
        44260.75,
        dt.date(2021, 3, 5),
        dt.datetime(2021, 3, 5, 23, 59),
    ],
)
def test_parse_date(raw: object) -> None:
    assert parse_date(raw) == MARCH_5


@pytest.mark.parametrize(("raw", "expected"), [("2021-3", dt.date(2021, 3, 1)), ("2021年3月", dt.date(2021, 3, 1)), ("2021/03", dt.date(2021, 3, 1))])
def test_parse_month_only_gives_day_one(raw: str, expected: dt.date) -> None:
    assert parse_date(raw) == expected


def test_excel_serial_epoch() -> None:
    assert parse_date(61) == dt.date(1900, 3, 1)
    assert parse_date(80000) == dt.date(2119, 1, 11)


@pytest.mark.parametrize("token", [None, "", "无", "不详", "/", "#N/A", float("nan")])
def test_parse_date_null(token: object) -> None:
    assert parse_date(token) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("2021-02-30", "日期不存在"),
        ("20210230", "日期不存在"),
        ("2021-13-01", "日期不存在"),
        ("1850-01-01", "日期超出合理范围"),
        ("不知道哪天", "日期无法识别"),
        ("March 5", "日期无法识别"),
        ("05/03/2021", "日期无法识别"),
        (0, "日期无法识别"),
        (80001, "日期无法识别"),
        (-5, "日期无法识别"),
        (True, "日期无法识别"),
        (float("inf"), "日期无法识别"),
        ("2021", "只有年份，缺少月日"),
        (1985, "只有年份，缺少月日"),
    ],
)
def test_parse_date_errors(raw: object, reason: str) -> None:
    with pytest.raises(ValueParseError) as info:
        parse_date(raw)
    assert info.value.reason_zh == reason


# ---------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("raw", "yuan"),
    [
        ("223,000.00", 223000.0),
        ("223000元", 223000.0),
        ("￥223000", 223000.0),
        ("¥223,000", 223000.0),
        ("22.3万", 223000.0),
        ("22.3万元", 223000.0),
        ("1.2亿", 120000000.0),
        ("1.2亿元", 120000000.0),
        ("５０００", 5000.0),
        ("５，０００．５０元", 5000.5),
        ("人民币5000元整", 5000.0),
        ("RMB 5000", 5000.0),
        (" 5 000 ", 5000.0),
        ("0", 0.0),
        ("0.1万", 1000.0),
        ("2.23E+05", 223000.0),
        (5000, 5000.0),
        (5000.5, 5000.5),
        (Decimal("5000.50"), 5000.5),
    ],
)
def test_parse_amount(raw: object, yuan: float) -> None:
    assert parse_amount(raw) == yuan


@pytest.mark.parametrize("token", [None, "", "无", "/", "-", float("nan")])
def test_parse_amount_null(token: object) -> None:
    assert parse_amount(token) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("-100", "金额为负数"), (-1, "金额为负数"), ("-2.5万", "金额为负数"), ("(100)", "金额为负数"),
     ("很多", "金额无法识别"), ("1.2.3", "金额无法识别"), ("5万元整整", "金额无法识别"), (True, "金额无法识别"),
     (float("inf"), "金额无法识别")],
)
def test_parse_amount_errors(raw: object, reason: str) -> None:
    with pytest.raises(ValueParseError) as info:
        parse_amount(raw)
    assert info.value.reason_zh == reason and info.value.field_type == "amount"


@given(st.integers(0, 10**9), st.integers(0, 99))
def test_amount_thousands_separators_property(yuan: int, fen: int) -> None:
    assert parse_amount(f"{yuan:,}.{fen:02d}") == pytest.approx(yuan + fen / 100)


# ---------------------------------------------------------------- phones


@pytest.mark.parametrize(
    ("raw", "phone"),
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("008613812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("013812345678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        (13812345678, "13812345678"),
        (13812345678.0, "13812345678"),
        ("13812345678.0", "13812345678"),
        ("13812345678;13987654321", "13812345678"),
        ("13812345678，13987654321", "13812345678"),
        ("13812345678/13987654321", "13812345678"),
        ("13812345678 13987654321", "13812345678"),
        ("无效;13987654321", "13987654321"),
        ("0591-87654321", "059187654321"),
        ("(0598)7654321", "05987654321"),
        ("0598-7654321转8012", "05987654321"),
        ("87654321", "87654321"),
        ("7654321", "7654321"),
    ],
)
def test_normalise_phone(raw: object, phone: str) -> None:
    assert normalise_phone(raw) == phone


@pytest.mark.parametrize(
    "raw", [None, "", "无", "110", "12345", "12812345678", "1381234567", "138123456789", "00000000000", "1234567", "电话", 1.5, True]
)
def test_normalise_phone_invalid_is_none(raw: object) -> None:
    assert normalise_phone(raw) is None


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.sampled_from(["", "+86", "0086", "86 ", "+86-"]))
def test_mobile_with_country_code_property(mobile: str, prefix: str) -> None:
    assert normalise_phone(prefix + mobile) == mobile


# ---------------------------------------------------------------- gender


@pytest.mark.parametrize(
    ("raw", "sex"),
    [("男", "M"), ("女", "F"), ("M", "M"), ("m", "M"), ("F", "F"), ("f", "F"), ("1", "M"), ("2", "F"), (1, "M"),
     (2, "F"), (2.0, "F"), ("男性", "M"), ("女性", "F"), (" 女 ", "F"), ("Ｍ", "M"), ("male", "M"), ("Female", "F")],
)
def test_parse_gender(raw: object, sex: str) -> None:
    assert parse_gender(raw) == sex


@pytest.mark.parametrize("raw", [None, "", "无", "未知", "0", "9", "X", "其他", True])
def test_parse_gender_unknown(raw: object) -> None:
    assert parse_gender(raw) is None


# ---------------------------------------------------------------- injury


@pytest.mark.parametrize(
    ("raw", "injury"),
    [
        ("死亡", Injury.DEATH),
        ("已死亡", Injury.DEATH),
        ("被害人死亡", Injury.DEATH),
        ("经抢救无效身亡", Injury.DEATH),
        ("重伤一级", Injury.SERIOUS_1),
        ("重伤1级", Injury.SERIOUS_1),
        ("重伤（一级）", Injury.SERIOUS_1),
        ("重伤(1级)", Injury.SERIOUS_1),
        ("一级重伤", Injury.SERIOUS_1),
        ("重伤Ⅰ级", Injury.SERIOUS_1),
        ("重伤二级", Injury.SERIOUS_2),
        ("重伤 2 级", Injury.SERIOUS_2),
        ("重伤", Injury.SERIOUS_2),
        ("重傷二級", Injury.SERIOUS_2),
        ("轻伤一级", Injury.MINOR_1),
        ("轻伤（一级）", Injury.MINOR_1),
        ("构成轻伤一级", Injury.MINOR_1),
        ("轻伤二级", Injury.MINOR_2),
        ("轻伤", Injury.MINOR_2),
        ("轻微伤", Injury.SLIGHT),
        ("轻微", Injury.SLIGHT),
        ("未构成轻伤", Injury.SLIGHT),
        ("不构成轻微伤", Injury.NONE),
        ("无伤情", Injury.NONE),
        ("未受伤", Injury.NONE),
        ("无", Injury.NONE),
        ("伤残二级", Injury.SERIOUS_1),
        ("七级伤残", Injury.SERIOUS_2),
        ("伤残等级为十级", Injury.MINOR_1),
        ("伤残", Injury.SERIOUS_2),
        ("轻伤二级、轻微伤", Injury.MINOR_2),
        ("轻微伤；重伤二级", Injury.SERIOUS_2),
        ("未死亡，轻伤", Injury.MINOR_2),
        ("", Injury.UNKNOWN),
        (None, Injury.UNKNOWN),
        (float("nan"), Injury.UNKNOWN),
        ("不详", Injury.UNKNOWN),
        ("待鉴定", Injury.UNKNOWN),
        ("abc", Injury.UNKNOWN),
        (3, Injury.UNKNOWN),
    ],
)
def test_parse_injury(raw: object, injury: Injury) -> None:
    assert parse_injury(raw) is injury


def test_injury_values_are_the_chinese_labels() -> None:
    assert [str(i) for i in Injury] == ["死亡", "重伤一级", "重伤二级", "轻伤一级", "轻伤二级", "轻微伤", "无伤情", "未知"]
    assert all(parse_injury(str(i)) is i for i in Injury)


@given(st.text(max_size=30))
def test_parse_injury_never_raises(raw: str) -> None:
    assert isinstance(parse_injury(raw), Injury)


# ---------------------------------------------------------------- disability


@pytest.mark.parametrize(
    ("raw", "category"),
    [("视力残疾", "视力"), ("听力", "听力"), ("言语残疾", "言语"), ("语言残疾", "言语"), ("肢体残疾", "肢体"),
     ("智力", "智力"), ("精神残疾", "精神"), ("多重残疾（肢体、智力）", "多重"), ("視力殘疾", "视力"),
     ("1", "视力"), ("2", "听力"), ("3", "言语"), (4, "肢体"), ("5", "智力"), (6.0, "精神"), ("７", "多重")],
)
def test_parse_disability_category(raw: object, category: str) -> None:
    assert parse_disability_category(raw) == category


@pytest.mark.parametrize("raw", [None, "", "无", "0", "8", "其他", True])
def test_parse_disability_category_unknown(raw: object) -> None:
    assert parse_disability_category(raw) is None


@pytest.mark.parametrize(
    ("raw", "level"),
    [("一级", 1), ("1级", 1), ("1", 1), (1, 1), (1.0, 1), ("壹级", 1), ("I级", 1), ("Ⅰ级", 1), ("二级", 2),
     ("II级", 2), ("贰级", 2), ("三级", 3), ("Ⅲ级", 3), ("四级", 4), ("IV级", 4), ("4", 4), ("肢体二级", 2),
     ("二级（中度）", 2), ("残疾等级：三级", 3), ("１级", 1)],
)
def test_parse_disability_level(raw: object, level: int) -> None:
    assert parse_disability_level(raw) == level


@pytest.mark.parametrize("raw", [None, "", "无", "0", "5", "五级", "12级", "重度", True])
def test_parse_disability_level_unknown(raw: object) -> None:
    assert parse_disability_level(raw) is None


# ---------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        (" 福建省 三明市大田縣　均溪鎮１２號 ", "福建省三明市大田县均溪镇12号"),
        ("某某村３组", "某某村3组"),
        ("某某路\t8号", "某某路8号"),
    ],
)
def test_normalise_address(raw: str, address: str) -> None:
    assert normalise_address(raw) == address


@pytest.mark.parametrize("raw", [None, "", "  ", "无", "不详"])
def test_normalise_address_null(raw: object) -> None:
    assert normalise_address(raw) is None
