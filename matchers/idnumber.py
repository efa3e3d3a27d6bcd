"""Resident ID numbers (GB 11643): clean dirty cells, check, upgrade 15→18, derive birth date, sex and region.

An ID is trusted only when its birth date is a real date and its check character agrees; an
18-character string that fails either is kept as `candidate`, as evidence of a typo, never as
an identity. Digits lost to Excel's scientific notation are never guessed.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Literal

import polars as pl

from pipeline.values import combine_with_scalar, is_null_token

__all__ = [
    "IdStatus",
    "IdParse",
    "parse_id",
    "parse_ids",
    "check_character",
    "upgrade_15_to_18",
    "is_valid_id18",
    "id_typo_relation",
    "id_from_certificate",
    "ids_from_certificates",
    "mask_id",
    "mask_phone",
]


class IdStatus(StrEnum):
    """What a cell in an ID column turned out to hold."""

    VALID = "valid"
    LEGACY15 = "legacy15"  # a valid 15-digit ID, upgraded to 18 (id18 is set)
    BAD_CHECK = "bad_check"
    BAD_DATE = "bad_date"
    DAMAGED = "damaged"  # scientific notation, wrong length, garbage
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class IdParse:
    """One parsed ID cell; birth_date, sex and region are derived only when id18 is set."""

    raw: str | None
    id18: str | None
    candidate: str | None
    status: IdStatus
    birth_date: dt.date | None = None
    sex: Literal["M", "F"] | None = None
    region: str | None = None


# GB 11643 weights are 2**(17-i) mod 11: 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2.
# Because 13 ≡ 2 (mod 11), reading the 17 digits as a base-13 number gives the weighted sum / 2
# (mod 11) in one C call — several times faster than a Python loop over the digits.
_CHECK = "10X98765432"
_ID18_PATTERN = "[0-9]{17}[0-9X]"  # shared with the column parsers
_ID18 = re.compile(_ID18_PATTERN)
_ID15 = re.compile(r"\d{15}", re.ASCII)
_FLOAT_TEXT = re.compile(r"(\d+)\.0+", re.ASCII)  # str() of a float: "…1234.0"
_QUOTES = "'\"`‘’“”"
_BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">", "【": "】", "〔": "〕", "《": "》", "「": "」"}
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_SEPARATOR_CHARACTERS = "-_‐‑–—"  # and whitespace
_SEPARATORS = re.compile(rf"[\s{re.escape(_SEPARATOR_CHARACTERS)}]")
_CACHE_SIZE = 1 << 18


def check_character(first17: str) -> str:
    """The GB 11643 check character ('0'–'9' or 'X') for the first 17 digits of an ID."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("check_character needs exactly 17 ASCII digits")
    return _CHECK[2 * int(first17, 13) % 11]


def upgrade_15_to_18(id15: str) -> str:
    """The 18-character form of a legacy 15-digit ID: '19' inserted before the year, check character appended."""
    if len(id15) != 15 or not id15.isascii() or not id15.isdigit():
        raise ValueError("upgrade_15_to_18 needs exactly 15 ASCII digits")
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_character(first17)


class _BirthDates:
    """Every valid birth date 1900-01-01 … today as 'YYYYMMDD' → date; rebuilt when the day changes."""

    dates: dict[str, dt.date] = {}
    expires: float = 0.0

    @classmethod
    def table(cls) -> dict[str, dt.date]:
        """The table for today (~46,000 shared date objects, built in well under a second)."""
        if time.time() >= cls.expires:
            today = dt.date.today()
            first = dt.date(1900, 1, 1).toordinal()
            days = (dt.date.fromordinal(n) for n in range(first, today.toordinal() + 1))
            cls.dates = {d.strftime("%Y%m%d"): d for d in days}
            tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time())
            cls.expires = tomorrow.timestamp()
        return cls.dates


def _birth_date(id18: str) -> dt.date | None:
    """The birth date in characters 7–14 if it is a real date between 1900-01-01 and today."""
    return _BirthDates.table().get(id18[6:14])


def is_valid_id18(s: str) -> bool:
    """True if s is an 18-character ID (upper-case X) with a real birth date and a correct check character."""
    return (
        isinstance(s, str)
        and _ID18.fullmatch(s) is not None
        and _birth_date(s) is not None
        and check_character(s[:17]) == s[17]
    )


def _clean(text: str) -> str:
    """NFKC, no whitespace or separators, no quotes or surrounding brackets, no float tail, upper-case X."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    text = _SEPARATORS.sub("", text).strip(_QUOTES)
    while len(text) >= 2 and _BRACKETS.get(text[0]) == text[-1]:
        text = text[1:-1].strip(_QUOTES)
    text = text.upper().replace("×", "X")
    if m := _FLOAT_TEXT.fullmatch(text):
        text = m[1]
    return text


def _from_id18(raw: str, id18: str, legacy: bool) -> IdParse:
    """Validate an 18-character string (digits + X) and derive birth date, sex and region."""
    born = _BirthDates.table().get(id18[6:14])  # _birth_date, inlined: this is the hot path
    if born is None:
        return IdParse(raw, None, id18, IdStatus.BAD_DATE)
    if _CHECK[2 * int(id18[:17], 13) % 11] != id18[17]:  # check_character without re-validating
        return IdParse(raw, None, id18, IdStatus.BAD_CHECK)
    status = IdStatus.LEGACY15 if legacy else IdStatus.VALID
    sex: Literal["M", "F"] = "M" if id18[16] in "13579" else "F"
    return IdParse(raw, id18, None, status, born, sex, id18[:6])


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_text(raw: str) -> IdParse:
    """parse_id for a string cell (cached: the same person appears in many rows and sources)."""
    if len(raw) == 18 and _ID18.fullmatch(raw):
        return _from_id18(raw, raw, legacy=False)  # fast path: already clean
    if is_null_token(raw):
        return IdParse(raw, None, None, IdStatus.MISSING)
    text = _clean(raw)
    if not text or is_null_token(text):
        return IdParse(raw, None, None, IdStatus.MISSING)
    if len(text) == 18 and _ID18.fullmatch(text):
        return _from_id18(raw, text, legacy=False)
    if len(text) == 15 and _ID15.fullmatch(text):
        return _from_id18(raw, upgrade_15_to_18(text), legacy=True)
    return IdParse(raw, None, None, IdStatus.DAMAGED)


def parse_id(raw: object) -> IdParse:
    """Parse one ID cell (str, int, float or None) into an `IdParse`; never raises."""
    if type(raw) is str:
        return _parse_text(raw)
    if raw is None:
        return IdParse(None, None, None, IdStatus.MISSING)
    if isinstance(raw, bool):
        return IdParse(str(raw), None, None, IdStatus.DAMAGED)
    if isinstance(raw, float):
        if math.isnan(raw):
            return IdParse(None, None, None, IdStatus.MISSING)
        # A float has ~16 significant digits: an 18-digit ID read as a number has lost digits.
        # Exact integers below 1e15 (a 15-digit legacy ID) are still intact.
        if math.isinf(raw) or raw >= 1e15 or raw != int(raw):
            return IdParse(repr(raw), None, None, IdStatus.DAMAGED)
        raw = int(raw)
    return _parse_text(str(raw))  # an int (e.g. polars Int64) holds all 18 digits exactly


_ID_COLUMNS = {
    "id18": pl.String, "candidate": pl.String, "status": pl.String,
    "birth_date": pl.Date, "sex": pl.String, "region": pl.String,
}


# Cells whose `_clean` parse_ids does in polars: digits, X, ASCII separators and quotes, and the full-width
# digits, X and space (which NFKC turns into ASCII). For them `_clean` is: NFKC, drop spaces and separators,
# strip quotes, upper-case — no brackets, no float tail, no invisible characters.
_ASCII_SEPARATORS = " " + "".join(c for c in _SEPARATOR_CHARACTERS if c.isascii())
_ASCII_QUOTES = "".join(c for c in _QUOTES if c.isascii())
_FULL_WIDTH = {c: unicodedata.normalize("NFKC", c) for c in "０１２３４５６７８９Ｘｘ\u3000"}
_SIMPLE_ID_CELL = f"^[0-9Xx{re.escape(_ASCII_SEPARATORS + _ASCII_QUOTES + ''.join(_FULL_WIDTH))}]*$"


def _check_character(key: pl.Expr) -> pl.Expr:
    """check_character of the first 17 characters of key (null unless they are digits)."""
    first17 = key.str.slice(0, 17).str.to_integer(base=13, strict=False)  # 13**17 < 2**63: fits in Int64
    return (first17 % 11 * 2 % 11).replace_strict(dict(enumerate(_CHECK)), return_dtype=pl.String)


def _cleaned_keys(raw: pl.Series) -> pl.DataFrame:
    """`_clean` of simple cells, 15-digit IDs upgraded; `done` is False for the cells left to parse_id."""
    key, legacy = pl.col("key"), pl.col("legacy")
    text = raw.str.replace_many(list(_FULL_WIDTH), list(_FULL_WIDTH.values()))
    cleaned = (
        text.str.replace_all(f"[{re.escape(_ASCII_SEPARATORS)}]", "").str.strip_chars(_ASCII_QUOTES).str.to_uppercase()
    )
    return (
        pl.DataFrame({"done": raw.str.contains(_SIMPLE_ID_CELL), "key": cleaned})
        .with_columns(legacy=key.str.contains("^[0-9]{15}$"))
        .with_columns(key=pl.when(legacy).then(key.str.slice(0, 6) + "19" + key.str.slice(6)).otherwise(key))
        .with_columns(key=pl.when(legacy).then(key + _check_character(key)).otherwise(key))  # upgrade_15_to_18
    )


def _text_ids(raw: pl.Series) -> pl.DataFrame:
    """parse_id's columns for text cells, and `done`: False for the cells left to parse_id (other characters)."""
    clean = raw.str.contains(f"^{_ID18_PATTERN}$").fill_null(False)  # most cells: no `_clean` needed
    frame = pl.DataFrame({"key": raw}).with_columns(legacy=pl.lit(False), done=pl.lit(True))
    dirty = (~clean & raw.is_not_null()).arg_true()
    if dirty.len():
        cleaned = _cleaned_keys(raw.gather(dirty))
        for column in frame.columns:
            frame = frame.with_columns(frame[column].scatter(dirty, cleaned[column]))
    key, legacy, valid, born = pl.col("key"), pl.col("legacy"), pl.col("valid"), pl.col("born")
    frame = (
        frame.with_columns(  # `_from_id18`
            is_id=key.str.contains(f"^{_ID18_PATTERN}$").fill_null(False),
            born=key.str.slice(6, 8).str.to_date("%Y%m%d", strict=False),
            check=_check_character(key),
        )
        .with_columns(good_date=(born.is_between(dt.date(1900, 1, 1), dt.date.today()) & "is_id").fill_null(False))
        .with_columns(valid=pl.col("good_date") & (pl.col("check") == key.str.slice(17, 1)).fill_null(False))
    )
    status = (
        pl.when(key.is_null() | (key == "")).then(pl.lit(str(IdStatus.MISSING)))
        .when(~pl.col("is_id")).then(pl.lit(str(IdStatus.DAMAGED)))
        .when(valid & legacy).then(pl.lit(str(IdStatus.LEGACY15)))
        .when(valid).then(pl.lit(str(IdStatus.VALID)))
        .when(~pl.col("good_date")).then(pl.lit(str(IdStatus.BAD_DATE)))
        .otherwise(pl.lit(str(IdStatus.BAD_CHECK)))
    )
    sex = pl.when(key.str.slice(16, 1).is_in(list("13579"))).then(pl.lit("M")).otherwise(pl.lit("F"))
    return frame.select(
        "done",
        id18=pl.when(valid).then(key),
        candidate=pl.when(~valid & pl.col("is_id")).then(key),
        status=status,
        birth_date=pl.when(valid).then(born),
        sex=pl.when(valid).then(sex),
        region=pl.when(valid).then(key.str.slice(0, 6)),
    )


def parse_ids(values: pl.Series) -> pl.DataFrame:
    """parse_id over a column, one row per input row in order.

    Text and integer cells in the common shapes (clean, separated, quoted, lower-case x, full-width, 15-digit)
    are parsed in polars; every other distinct value (and every float) through parse_id.
    """
    if values.dtype == pl.String or values.dtype.is_integer():
        out = _text_ids(values.cast(pl.String))
        rest = values.cast(pl.String).filter(~out["done"])
    else:  # floats and objects: parse_id itself judges what a float has lost
        out = pl.DataFrame({"done": [False] * len(values)}, schema={"done": pl.Boolean}).with_columns(
            pl.lit(None, dtype).alias(name) for name, dtype in _ID_COLUMNS.items()
        )
        rest = values
    out, done = out.drop("done"), out["done"]
    if rest.len():
        distinct = rest.unique(maintain_order=True)
        parsed = [parse_id(v) for v in distinct.to_list()]
        where = done.not_().arg_true()
        for name, dtype in _ID_COLUMNS.items():
            column = [str(p.status) for p in parsed] if name == "status" else [getattr(p, name) for p in parsed]
            slow = rest.replace_strict(distinct, pl.Series(column, dtype=dtype), return_dtype=dtype)
            out = out.with_columns(out[name].scatter(where, slow))
    return out


def id_typo_relation(a: str, b: str) -> Literal["one_substitution", "adjacent_transposition"] | None:
    """How two 18-character IDs differ by one keying slip: one character changed, or two neighbours swapped."""
    if not a or not b or len(a) != 18 or len(b) != 18 or a == b:
        return None
    diff = [i for i in range(18) if a[i] != b[i]]
    if len(diff) == 1:
        return "one_substitution"
    if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]:
        return "adjacent_transposition"
    return None


def id_from_certificate(cert_no: object) -> str | None:
    """The 18 ID characters at the start of a disability certificate number (ID + category + level digits)."""
    if cert_no is None or isinstance(cert_no, bool | float) or is_null_token(cert_no):
        return None  # a 20-digit certificate read as a float has lost digits
    text = _clean(str(cert_no))
    head, tail = text[:18], text[18:]
    if _ID18.fullmatch(head) and (not tail or len(tail) <= 4 and tail.isascii() and tail.isalnum()):
        return head
    return None


def ids_from_certificates(values: pl.Series) -> pl.Series:
    """id_from_certificate over a text column: plain certificate numbers (ASCII letters and digits, the ID first,
    its check character in either case) in polars, the rest via id_from_certificate."""
    text = values.cast(pl.String)
    clean = text.str.contains("^[0-9]{17}[0-9Xx][0-9A-Za-z]{0,4}$")
    head = pl.select(pl.when(clean).then(text.str.slice(0, 18).str.to_uppercase())).to_series()
    return combine_with_scalar(text, clean | text.is_null(), head, id_from_certificate).alias(values.name)


def _mask(value: str, keep_head: int, keep_tail: int) -> str:
    """value with all but its first keep_head and last keep_tail characters replaced by '*'."""
    if len(value) <= keep_head + keep_tail:
        return "*" * len(value)
    return value[:keep_head] + "*" * (len(value) - keep_head - keep_tail) + value[-keep_tail:]


def mask_id(id_str: str | None) -> str:
    """An ID for display: first 6 and last 4 characters kept, '*' between; short values fully masked."""
    if not id_str:
        return ""
    return _mask("".join(str(id_str).split()), 6, 4)


def mask_phone(phone: object) -> str:
    """A phone number for display: first 3 and last 4 digits kept, '*' between; short values fully masked."""
    if phone is None or is_null_token(phone):
        return ""
    return _mask("".join(str(phone).split()), 3, 4)
