"""Parse the dirty scalar values of government exports: null tokens, dates, amounts, phones and codes.

Every parser takes whatever a reader produced (str, int, float, date, None) and returns one clean
value. Parsers whose failure matters to ingest raise `ValueParseError`; the others return None or
`Injury.UNKNOWN` and never raise. Error messages never contain the raw value (it may be personal data).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from pipeline.errors import AidLeadsError

if TYPE_CHECKING:
    import opencc
    from polars._typing import PolarsDataType

__all__ = [
    "lenient",
    "ValueParseError",
    "NULL_TOKENS",
    "is_null_token",
    "parse_date",
    "parse_amount",
    "normalise_phone",
    "parse_gender",
    "Injury",
    "parse_injury",
    "DISABILITY_CATEGORIES",
    "parse_disability_category",
    "parse_disability_level",
    "normalise_address",
    "PLAIN_TEXT",
    "map_distinct",
    "combine_with_scalar",
    "null_token_mask",
    "parse_dates",
    "parse_amounts",
    "normalise_phones",
    "simplified_lines",
    "normalise_addresses",
]


class ValueParseError(AidLeadsError, ValueError):
    """A cell cannot be read as its field type; `reason_zh` says why, `raw` holds the value (never in the message)."""

    def __init__(self, field_type: str, reason_zh: str, *, raw: object = None) -> None:
        self.field_type = field_type
        self.reason_zh = reason_zh
        self.raw = raw
        super().__init__(f"{field_type}: {reason_zh}")


# Compared after NFKC, whitespace stripping and casefolding.
NULL_TOKENS: frozenset[str] = frozenset(
    {
        "", "无", "不详", "未知", "暂无", "空", "未填", "/", "\\", "-", "--", "—", "——", "?", "??",
        "null", "none", "nan", "nat", "na", "n/a", "#n/a", "#null!", "#value!",
    }
)

_EXCEL_EPOCH = dt.date(1899, 12, 30)
_MAX_SERIAL = 80000
_MIN_YEAR, _MAX_YEAR = 1900, 2100


def _text(raw: object) -> str:
    """NFKC-normalised, stripped text of a value."""
    return unicodedata.normalize("NFKC", str(raw)).strip()


def is_null_token(raw: object) -> bool:
    """True for None, NaN and the null tokens exports write for 'no value' (无, 不详, #N/A …)."""
    if raw is None:
        return True
    if isinstance(raw, float):
        return math.isnan(raw)
    if isinstance(raw, str):
        return _text(raw).casefold() in NULL_TOKENS
    return False


@cache
def _t2s() -> opencc.OpenCC:
    """The one traditional → simplified converter of this module, created on first use."""
    import opencc

    return opencc.OpenCC("t2s")


# ---------------------------------------------------------------- dates

# Separators after the year and the month, and the day's end; shared with the column parser below.
_AFTER_YEAR, _AFTER_MONTH, _DAY_END = "[-/.年]", "[-/.月]", "[日号]"
_DATE_YMD = re.compile(
    rf"(\d{{4}})\s*{_AFTER_YEAR}\s*(\d{{1,2}})\s*{_AFTER_MONTH}\s*(\d{{1,2}})\s*{_DAY_END}?"
    r"(?:[ T]*\d{1,2}[:时]\d{1,2}[:分秒.\dZ+\-]*)?"
)
_DATE_YM = re.compile(rf"(\d{{4}})\s*{_AFTER_YEAR}\s*(\d{{1,2}})\s*月?")
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_SERIAL = re.compile(r"\d{1,5}(?:\.\d+)?")


def _make_date(year: int, month: int, day: int, raw: object) -> dt.date:
    """A calendar date within 1900–2100, or ValueParseError."""
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        raise ValueParseError("date", "日期超出合理范围", raw=raw)
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueParseError("date", "日期不存在", raw=raw) from None


def _from_serial(serial: float, raw: object) -> dt.date:
    """An Excel serial day number (1900 date system) as a date."""
    if _MIN_YEAR <= serial <= _MAX_YEAR and serial == int(serial):
        # A bare 1900–2100 is a year without month, not a 1905 serial date.
        raise ValueParseError("date", "只有年份，缺少月日", raw=raw)
    if not 1 <= serial <= _MAX_SERIAL:
        raise ValueParseError("date", "日期无法识别", raw=raw)
    return _EXCEL_EPOCH + dt.timedelta(days=int(serial))


def parse_date(raw: object) -> dt.date | None:
    """A date from date objects, common Chinese text formats, yyyymmdd or an Excel serial number."""
    if isinstance(raw, dt.datetime):
        return None if raw != raw else raw.date()  # pandas NaT is a datetime
    if isinstance(raw, dt.date):
        return raw
    if is_null_token(raw):
        return None
    if isinstance(raw, bool):
        raise ValueParseError("date", "日期无法识别", raw=raw)
    if isinstance(raw, int):
        if 10_000_000 <= raw <= 99_999_999:
            return _make_date(raw // 10000, raw // 100 % 100, raw % 100, raw)
        return _from_serial(raw, raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueParseError("date", "日期无法识别", raw=raw)
        if raw == int(raw) and 10_000_000 <= raw <= 99_999_999:
            return parse_date(int(raw))
        return _from_serial(raw, raw)
    text = _text(raw)
    if m := _DATE_YMD.fullmatch(text):
        return _make_date(int(m[1]), int(m[2]), int(m[3]), raw)
    if m := _DATE_YM.fullmatch(text):
        return _make_date(int(m[1]), int(m[2]), 1, raw)
    if m := _DATE_COMPACT.fullmatch(text):
        return _make_date(int(m[1]), int(m[2]), int(m[3]), raw)
    if _SERIAL.fullmatch(text):
        return _from_serial(float(text), raw)
    raise ValueParseError("date", "日期无法识别", raw=raw)


# ---------------------------------------------------------------- amounts

_AMOUNT = re.compile(
    r"(?P<sign>[-+])?(?:人民币|rmb|cny|[¥$])?(?P<sign2>[-+])?"
    r"(?P<num>\d+(?:\.\d*)?|\.\d+)(?P<exp>e[-+]?\d+)?"
    r"(?P<unit>万|亿|千)?(?:元|圆)?(?:整)?(?:人民币|rmb|cny)?"
)
_UNITS = {None: Decimal(1), "千": Decimal(1000), "万": Decimal(10_000), "亿": Decimal(100_000_000)}


def parse_amount(raw: object) -> float | None:
    """An amount in yuan from numbers or text such as '223,000.00', '￥223000', '22.3万元', '1.2亿'."""
    if is_null_token(raw):
        return None
    if isinstance(raw, bool):
        raise ValueParseError("amount", "金额无法识别", raw=raw)
    if isinstance(raw, int | float):
        value = float(raw)
        if not math.isfinite(value):
            raise ValueParseError("amount", "金额无法识别", raw=raw)
    else:
        text = "".join(_text(raw).split()).replace(",", "").replace("\u2212", "-").casefold()
        if text.startswith("(") and text.endswith(")"):
            raise ValueParseError("amount", "金额为负数", raw=raw)
        m = _AMOUNT.fullmatch(text)
        if m is None:
            raise ValueParseError("amount", "金额无法识别", raw=raw)
        try:
            number = Decimal(m["num"] + (m["exp"] or "")) * _UNITS[m["unit"]]
        except InvalidOperation:
            raise ValueParseError("amount", "金额无法识别", raw=raw) from None
        value = -float(number) if "-" in (m["sign"], m["sign2"]) else float(number)
    if value < 0:
        raise ValueParseError("amount", "金额为负数", raw=raw)
    return value + 0.0  # no -0.0


# ---------------------------------------------------------------- phones

# Matched against ASCII digit strings only; shared with the column parser below.
_MOBILE_DIGITS = "1[3-9][0-9]{9}"
_LANDLINE_DIGITS = "0[0-9]{9,11}|[2-9][0-9]{6,7}"
_COUNTRY_PREFIXES = ("0086", "86", "0")  # tried in this order before a mobile number
_PHONE_SEPARATORS = ";,/、|"
_MOBILE = re.compile(_MOBILE_DIGITS)
_LANDLINE = re.compile(_LANDLINE_DIGITS)
_PHONE_SPLIT = re.compile(f"[{re.escape(_PHONE_SEPARATORS)}]|或|和")
_NON_DIGITS = re.compile(r"[^0-9]")
_FLOAT_TEXT = re.compile(r"^(\d+)\.0+$")  # str() of a float: '13812345678.0'
_EXTENSION = re.compile(r"(?:转|分机|ext\.?|x|#).*$", re.IGNORECASE)


def _phone_digits(digits: str) -> str | None:
    """A mobile or landline number from a digit string, or None."""
    if len(set(digits)) <= 1:
        return None
    for prefix in _COUNTRY_PREFIXES:
        rest = digits[len(prefix):]
        if digits.startswith(prefix) and _MOBILE.fullmatch(rest):
            return rest
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
        return digits
    return None


def normalise_phone(raw: object) -> str | None:
    """The first valid phone number as digits only (mobile 1[3-9]xxxxxxxxx, or landline with area code); never raises."""
    if is_null_token(raw) or isinstance(raw, bool):
        return None
    if isinstance(raw, float):
        if not math.isfinite(raw) or raw != int(raw):
            return None
        raw = int(raw)
    for part in _PHONE_SPLIT.split(_FLOAT_TEXT.sub(r"\1", _text(raw))):
        digits = _NON_DIGITS.sub("", _EXTENSION.sub("", part))
        if found := _phone_digits(digits):
            return found
        # Several mobiles run together, e.g. '138 1234 5678 139 8765 4321'.
        chunks = [digits[i : i + 11] for i in range(0, len(digits), 11)] if len(digits) % 11 == 0 else []
        if len(chunks) > 1 and all(_MOBILE.fullmatch(c) for c in chunks):
            return chunks[0]
    return None


# ---------------------------------------------------------------- gender

_GENDER: dict[str, Literal["M", "F"]] = {
    "男": "M", "男性": "M", "m": "M", "male": "M", "1": "M", "男士": "M",
    "女": "F", "女性": "F", "f": "F", "female": "F", "2": "F", "女士": "F",
}


def parse_gender(raw: object) -> Literal["M", "F"] | None:
    """'M' or 'F' from 男/女, M/F, 男性/女性 or the GB/T 2261.1 codes 1/2; anything else is None."""
    if is_null_token(raw) or isinstance(raw, bool):
        return None
    if isinstance(raw, float) and raw == int(raw):
        raw = int(raw)
    return _GENDER.get("".join(_text(raw).split()).casefold())


# ---------------------------------------------------------------- injury


class Injury(StrEnum):
    """Forensic injury grade of a victim, most to least severe."""

    DEATH = "死亡"
    SERIOUS_1 = "重伤一级"
    SERIOUS_2 = "重伤二级"
    MINOR_1 = "轻伤一级"
    MINOR_2 = "轻伤二级"
    SLIGHT = "轻微伤"
    NONE = "无伤情"
    UNKNOWN = "未知"


_SEVERITY = list(Injury)  # index = severity rank, DEATH first
_NUM = r"10|[一二三四五六七八九十壹贰叁肆1-9IV]+"
_DEATH = re.compile(r"(?<![未没无非])(?:死亡|身亡|死|亡故|已亡|溺亡|遇害|罹难)")
_NEGATED = re.compile(r"(?:不|未|没)(?:构成|够|达到|达)(轻微伤|轻伤|重伤)(?:[(\[]?(?:一|二|1|2|I|II)级?[)\]]?)?")
_NO_INJURY = re.compile(r"无伤|未受伤|没有受伤|未伤|无明显伤")
_GRADED = re.compile(rf"(重伤|轻伤)[(\[]?(?:({_NUM})级?)?|({_NUM})级(重伤|轻伤)")
_SLIGHT = re.compile(r"轻微")
_DISABLED = re.compile(rf"伤残[^0-9一二三四五六七八九十]{{0,4}}({_NUM})级|({_NUM})级伤残|伤残")
_NUMERALS = {
    "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
    "壹": 1, "贰": 2, "叁": 3, "肆": 4, "I": 1, "II": 2, "III": 3, "IV": 4,
}
# What a negated grade implies: 不构成轻微伤 → no injury, 不构成轻伤 → at most 轻微伤.
_BELOW = {"轻微伤": Injury.NONE, "轻伤": Injury.SLIGHT}


def _numeral(token: str | None) -> int | None:
    """1, 2, … from '1', '一', '壹', 'I', '10'; None when absent or not a numeral."""
    if not token:
        return None
    if token.isdigit():
        return int(token)
    return _NUMERALS.get(token)


def _graded(kind: str, grade: int | None) -> Injury:
    """重伤/轻伤 with an optional grade; no or odd grade → the milder grade (the safe guess)."""
    if kind == "重伤":
        return Injury.SERIOUS_1 if grade == 1 else Injury.SERIOUS_2
    return Injury.MINOR_1 if grade == 1 else Injury.MINOR_2


def _disability_injury(grade: int | None) -> Injury:
    """Best guess from a 伤残 grade (1 most severe … 10): 1–4 重伤一级, 5–8 or none 重伤二级, 9–10 轻伤一级."""
    if grade is not None and grade <= 4:
        return Injury.SERIOUS_1
    if grade is not None and grade >= 9:
        return Injury.MINOR_1
    return Injury.SERIOUS_2


def parse_injury(raw: object) -> Injury:
    """The most severe injury grade named in a free-text cell; unknown text gives UNKNOWN, never raises."""
    if raw is None or isinstance(raw, float) and math.isnan(raw):
        return Injury.UNKNOWN
    text = _t2s().convert("".join(_text(raw).split())).upper()
    if text in ("无", "没有", "否"):
        return Injury.NONE
    if is_null_token(text):
        return Injury.UNKNOWN
    if _DEATH.search(text):
        return Injury.DEATH
    found: list[Injury] = []
    negated = [_BELOW.get(m[1], Injury.UNKNOWN) for m in _NEGATED.finditer(text)]
    text = _NEGATED.sub("", text)
    for m in _GRADED.finditer(text):
        kind, grade = (m[1], m[2]) if m[1] else (m[4], m[3])
        found.append(_graded(kind, _numeral(grade)))
    found += [_disability_injury(_numeral(m[1] or m[2])) for m in _DISABLED.finditer(text)]
    if _SLIGHT.search(text):
        found.append(Injury.SLIGHT)
    if not found and _NO_INJURY.search(text):
        found.append(Injury.NONE)
    found += [injury for injury in negated if not found]
    return min(found, key=_SEVERITY.index) if found else Injury.UNKNOWN


# ---------------------------------------------------------------- disability

DISABILITY_CATEGORIES: tuple[str, ...] = ("视力", "听力", "言语", "肢体", "智力", "精神", "多重")
_CATEGORY_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("多重", ("多重",)),
    ("视力", ("视力", "视残", "盲", "低视")),
    ("听力", ("听力", "听残", "聋")),
    ("言语", ("言语", "语言", "哑")),
    ("肢体", ("肢体", "肢残")),
    ("智力", ("智力", "智残")),
    ("精神", ("精神",)),
)
_LEVEL = re.compile(r"(?<![0-9])(IV|III|II|I|[1-4一二三四壹贰叁肆])(?:级|等)")


def parse_disability_category(raw: object) -> str | None:
    """One of 视力 听力 言语 肢体 智力 精神 多重, from text or the certificate digit 1–7."""
    if is_null_token(raw) or isinstance(raw, bool):
        return None
    if isinstance(raw, float) and raw == int(raw):
        raw = int(raw)
    text = "".join(_t2s().convert(_text(raw)).split())
    if text.isdigit() and 1 <= int(text) <= 7:
        return DISABILITY_CATEGORIES[int(text) - 1]
    for category, words in _CATEGORY_WORDS:
        if any(word in text for word in words):
            return category
    return None


def parse_disability_level(raw: object) -> int | None:
    """Disability level 1–4 from 一级, 1级, 1, 壹级, I级 (and the like); anything else is None."""
    if is_null_token(raw) or isinstance(raw, bool):
        return None
    if isinstance(raw, float) and raw == int(raw):
        raw = int(raw)
    text = "".join(_t2s().convert(_text(raw)).split()).upper()
    for prefix in ("残疾", "等级", "第"):
        text = text.replace(prefix, "")
    m = _LEVEL.search(text)
    token = m[1] if m else text
    level = _numeral(token)
    return level if level is not None and 1 <= level <= 4 else None


# ---------------------------------------------------------------- addresses


def normalise_address(raw: object) -> str | None:
    """An address with NFKC (half-width digits), no whitespace, in simplified characters."""
    if is_null_token(raw):
        return None
    text = "".join(_text(raw).split())
    return _t2s().convert(text) or None


# ---------------------------------------------------------------- columns
#
# The column parsers give, for every value of a column, exactly what the scalar parser above gives for
# it. The common clean shapes are computed in polars with regexes built from the scalar parsers'
# constants; every other value goes through the scalar parser, once per distinct value.

# Printable ASCII and the CJK Unified Ideographs: NFKC leaves text made only of these unchanged, and its
# only whitespace is the ASCII space, so `_text` of such text is just `text.strip(" ")`.
PLAIN_TEXT = "^[ -~\u4e00-\u9fff]*$"
_PRINTABLE_ASCII = "^[ -~]*$"
_EXCEL_EPOCH_DAYS = (_EXCEL_EPOCH - dt.date(1970, 1, 1)).days  # polars Date counts days from 1970-01-01


def map_distinct(values: pl.Series, fn: Callable[[Any], Any], dtype: PolarsDataType) -> pl.Series:
    """fn applied once per distinct value (null included), as a column in the order of values."""
    distinct = values.unique()
    mapped = pl.Series([fn(v) for v in distinct.to_list()], dtype=dtype)
    return values.replace_strict(distinct, mapped, return_dtype=dtype)


def combine_with_scalar(values: pl.Series, done: pl.Series, fast: pl.Series, scalar: Callable[[Any], Any]) -> pl.Series:
    """`fast` where `done` is true, elsewhere `scalar` of the value (called once per distinct value)."""
    done = done.fill_null(False)
    if done.all():
        return fast
    out = fast.clone()
    out.scatter(done.not_().arg_true(), map_distinct(values.filter(done.not_()), scalar, fast.dtype))
    return out


def lenient(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """fn, with None for a value it rejects."""
    def call(raw: Any) -> Any:
        try:
            return fn(raw)
        except ValueParseError:
            return None
    return call


_LONGEST_NULL_TOKEN = max(map(len, NULL_TOKENS))


def _plain_null_tokens(text: pl.Series) -> pl.Series:
    """is_null_token of PLAIN_TEXT values: `_text(raw).casefold()` is strip(" ") and (ASCII) lower-casing there."""
    stripped = text.str.strip_chars(" ")
    short = (stripped.str.len_chars() <= _LONGEST_NULL_TOKEN).fill_null(False).arg_true()
    blank = pl.Series([False] * text.len(), dtype=pl.Boolean)
    blank.scatter(short, stripped.gather(short).str.to_lowercase().is_in(sorted(NULL_TOKENS)))
    return blank


def null_token_mask(values: pl.Series) -> pl.Series:
    """is_null_token over a column: True for nulls and the null tokens exports write for 'no value'."""
    text = values.cast(pl.String)
    plain = text.str.contains(PLAIN_TEXT)
    fast = _plain_null_tokens(text) | text.is_null()
    return combine_with_scalar(text, plain | text.is_null(), fast, is_null_token)


def _on_distinct(values: pl.Series, parse: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """parse (a column parser) run on the distinct values only, as a column in the order of values."""
    distinct = values.unique()
    lookup = pl.DataFrame({"value": distinct, "parsed": parse(distinct)})
    joined = pl.DataFrame({"value": values}).join(lookup, on="value", how="left", nulls_equal=True, maintain_order="left")
    return joined["parsed"].alias(values.name)


def _calendar_date(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """The date year-month-day when it exists and lies in 1900–2100 (as `_make_date`), else null."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = (
        pl.when(month == 2).then(pl.when(leap).then(29).otherwise(28))
        .when(month.is_in([4, 6, 9, 11])).then(30)
        .otherwise(31)
    )
    exists = year.is_between(_MIN_YEAR, _MAX_YEAR) & month.is_between(1, 12) & day.is_between(1, month_days)
    # pl.date raises on a date that does not exist: give it 1970-01-01 there and null the result.
    safe = [pl.when(exists).then(part).otherwise(default) for part, default in ((year, 1970), (month, 1), (day, 1))]
    return pl.when(exists).then(pl.date(*safe))


# The text shapes parse_dates reads in polars, each as (year, month, day) groups; a month alone is its day 1.
# A value has at most one of these shapes; each is a case of the scalar regex of the same name.
_DATE_SHAPES = {
    "ymd": rf"^(?<y>[0-9]{{4}}){_AFTER_YEAR}(?<m>[0-9]{{1,2}}){_AFTER_MONTH}(?<d>[0-9]{{1,2}}){_DAY_END}?$",
    "ym": rf"^(?<y>[0-9]{{4}}){_AFTER_YEAR}(?<m>[0-9]{{1,2}})月?(?<d>)$",
    "compact": r"^(?<y>[0-9]{4})(?<m>[0-9]{2})(?<d>[0-9]{2})$",
}
_SERIAL_INTEGER = r"^[0-9]{1,5}$"


def _dates(text: pl.Series) -> pl.Series:
    """parse_dates of distinct values."""
    shapes = pl.DataFrame({"text": text}).with_columns(
        pl.col("text").str.extract_groups(pattern).alias(name) for name, pattern in _DATE_SHAPES.items()
    )
    parts = shapes.select(
        "text",
        *(pl.coalesce(pl.col(shape).struct.field(part) for shape in _DATE_SHAPES)
          .replace("", "1").cast(pl.Int32).alias(part) for part in "ymd"),
        serial=pl.when(pl.col("text").str.contains(_SERIAL_INTEGER)).then(pl.col("text").cast(pl.Int32, strict=False)),
    )
    serial = pl.col("serial")
    from_serial = pl.when(serial.is_between(1, _MAX_SERIAL) & ~serial.is_between(_MIN_YEAR, _MAX_YEAR)).then(
        (serial + _EXCEL_EPOCH_DAYS).cast(pl.Date)  # `_from_serial` of a whole number
    )
    fast = parts.select(
        date=pl.when(pl.col("y").is_not_null()).then(_calendar_date(pl.col("y"), pl.col("m"), pl.col("d")))
        .otherwise(from_serial),
        done=pl.col("y").is_not_null() | serial.is_not_null() | pl.col("text").is_null(),
    )
    return combine_with_scalar(text, fast["done"], fast["date"], lenient(parse_date))


def parse_dates(values: pl.Series) -> pl.Series:
    """parse_date over a text column; null where parse_date finds no date or rejects the value."""
    return _on_distinct(values.cast(pl.String), _dates)


def _amounts(text: pl.Series) -> pl.Series:
    """parse_amounts of distinct values."""
    plain = text.str.contains(r"^(?:[0-9]{1,15}|[0-9]{1,3}(?:,[0-9]{3}){1,4})(?:\.[0-9]{1,12})?$")
    number = text.str.replace_all(",", "", literal=True).cast(pl.Float64, strict=False)
    fast = pl.select(pl.when(plain).then(number)).to_series()
    return combine_with_scalar(text, plain | text.is_null(), fast, lenient(parse_amount))


def parse_amounts(values: pl.Series) -> pl.Series:
    """parse_amount over a text column; null where parse_amount finds no amount or rejects the value.

    Plain decimals (digits, thousands commas, at most 27 significant digits so that Decimal arithmetic is
    exact) are cast in polars: both casts round correctly, so they give the same float.
    """
    return _on_distinct(values.cast(pl.String), _amounts)


def normalise_phones(values: pl.Series) -> pl.Series:
    """normalise_phone over a text column.

    Fast: printable ASCII whose first part (before a separator) is digits, spaces, '+' and '-' only
    and gives a mobile (after an optional country prefix) or a landline number.
    """
    text = values.cast(pl.String)
    ascii_separators = re.escape("".join(c for c in _PHONE_SEPARATORS if c.isascii()))
    first = text.str.extract(rf"^([0-9 +\-]*)(?:[{ascii_separators}].*)?$", 1)
    digits = first.str.replace_all("[^0-9]", "")
    prefixes = "|".join(_COUNTRY_PREFIXES)
    mobile = digits.str.extract(rf"^(?:{prefixes})?({_MOBILE_DIGITS})$", 1)
    one_digit = "|".join(f"{d}+" for d in "0123456789")
    landline = digits.str.contains(f"^(?:{_LANDLINE_DIGITS})$") & ~digits.str.contains(f"^(?:{one_digit})$")
    frame = pl.DataFrame({"mobile": mobile, "landline": landline, "digits": digits})
    fast = frame.select(pl.coalesce("mobile", pl.when("landline").then("digits"))).to_series()
    done = (text.str.contains(_PRINTABLE_ASCII) & fast.is_not_null()) | text.is_null()
    return combine_with_scalar(text, done, fast, normalise_phone).alias(values.name)


def simplified_lines(texts: list[str]) -> list[str]:
    """Traditional → simplified of each text (none may contain a newline), in one OpenCC call.

    OpenCC converts by longest dictionary match and no dictionary entry spans a newline, so a text
    converts the same on its own line as alone.
    """
    if not texts:
        return []
    joined = "\n".join(texts)
    if joined.count("\n") != len(texts) - 1:
        raise ValueError("simplified_lines: a text contains a newline")
    lines = _t2s().convert(joined).split("\n")
    if len(lines) != len(texts):  # never seen; convert one by one rather than misalign
        return [_t2s().convert(t) for t in texts]
    return lines


def _addresses(text: pl.Series) -> pl.Series:
    """normalise_addresses of distinct values."""
    plain = text.str.contains(PLAIN_TEXT).fill_null(False)
    blank = _plain_null_tokens(text)
    to_convert = (plain & ~blank).arg_true()
    converted = simplified_lines(text.gather(to_convert).str.replace_all(" ", "", literal=True).to_list())
    fast = pl.Series([None] * text.len(), dtype=pl.String)
    fast.scatter(to_convert, pl.Series(converted, dtype=pl.String))
    fast = pl.select(pl.when(fast != "").then(fast)).to_series()  # `convert(text) or None`
    return combine_with_scalar(text, plain | text.is_null(), fast, normalise_address)


def normalise_addresses(values: pl.Series) -> pl.Series:
    """normalise_address over a text column; PLAIN_TEXT values are converted in one OpenCC call."""
    return _on_distinct(values.cast(pl.String), _addresses)
