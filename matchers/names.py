"""Personal names: clean dirty cells, split surname and given name, build pinyin keys, compare two names.

Comparison is at the character level (equal, same pinyin, one character, swapped given name):
generic similarity ratios mislead on two- and three-character Chinese names.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import polars as pl
from pypinyin import Style, lazy_pinyin

from pipeline.values import NULL_TOKENS, is_null_token, simplified_lines

if TYPE_CHECKING:
    import opencc

__all__ = [
    "SURNAME_PINYIN",
    "COMPOUND_SURNAMES",
    "NameParse",
    "parse_name",
    "parse_names",
    "NameAgreement",
    "compare_names",
    "split_parties",
    "one_party_mask",
]

# Surnames whose surname reading differs from pypinyin's default reading of the character.
SURNAME_PINYIN: dict[str, str] = {
    "曾": "zeng", "单": "shan", "解": "xie", "仇": "qiu", "区": "ou", "查": "zha", "朴": "piao",
    "盖": "ge", "乐": "yue", "员": "yun", "缪": "miao", "翟": "zhai", "覃": "qin", "秘": "bi",
    "召": "shao", "繁": "po", "种": "chong", "折": "she", "隗": "wei", "黑": "he", "能": "nai",
    "牟": "mou", "句": "gou", "阚": "kan", "祭": "zhai", "宓": "fu", "长": "chang", "重": "chong",
    "藏": "zang", "都": "du", "尉迟": "yuchi", "万俟": "moqi", "长孙": "zhangsun", "单于": "chanyu",
    "澹台": "tantai", "令狐": "linghu", "亓官": "qiguan", "鲜于": "xianyu",
}

COMPOUND_SURNAMES: frozenset[str] = frozenset(
    {
        "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
        "夏侯", "轩辕", "令狐", "钟离", "澹台", "万俟", "端木", "司空", "闻人", "单于", "太史", "申屠",
        "公羊", "濮阳", "淳于", "赫连", "呼延", "独孤", "南宫", "西门", "东郭", "百里", "第五", "公冶",
        "亓官", "鲜于", "闾丘", "子车", "巫马", "左丘", "谷梁", "拓跋", "仲孙", "微生", "羊舌", "梁丘",
    }
)

_MIDDLE_DOT = "\u00b7"
# Separators written for the middle dot of minority names (after NFKC).
_DOT_VARIANTS = re.compile(r"[\u00b7\u2022\u2027\u30fb\uff65\u2219\u22c5\u0387\u16eb\u2e31\u2010\u2011\u2012\u2013\u2014\u2015\u25cf\u00b8.\-。]+")
_LOST_DOT = re.compile(r"(?<=[\u4e00-\u9fff])[?？\ufffd]+(?=[\u4e00-\u9fff])")
_BRACKETED = re.compile(r"[(\[【〔《{]([^)\]】〕》}]*)[)\]】〕》}]")
_UNCLOSED = re.compile(r"[(\[【〔《{]([^)\]】〕》}]*)$")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
# Words written after a name without brackets, e.g. 张三户主; only multi-character words are
# stripped (代, 亡 could end a real name), and never relations such as 之子 (that names someone else).
_SUFFIX_ANNOTATIONS = ("已死亡", "已去世", "户主", "本人", "已故", "死亡", "去世", "重复")
# Characters traditional → simplified must leave alone in names (乾 is not 干, 於 is its own surname).
_KEPT_CHARACTERS = "乾於昇甯"
_KEEP_IN_NAMES = re.compile(f"([{_KEPT_CHARACTERS}])")
_HAN = "\u4e00-\u9fff"  # CJK Unified Ideographs: NFKC leaves them alone
_LATIN = re.compile(r"[A-Za-z][A-Za-z .'\-]*", re.ASCII)
_CACHE_SIZE = 1 << 18


@dataclass(frozen=True, slots=True)
class NameParse:
    """One parsed name cell; all fields but raw are None for a blank cell or a null token (无, 不详 …)."""

    raw: str | None
    name: str | None
    annotation: str | None = None
    surname: str | None = None
    given: str | None = None
    pinyin: str | None = None


class NameAgreement(StrEnum):
    """How two names agree, strongest first."""

    EXACT = "exact"
    SAME_PINYIN = "same_pinyin"  # different characters, identical pinyin: a homophone typo
    ONE_CHAR = "one_char"  # same surname and length, one character differs
    TRANSPOSED = "transposed"  # same surname, two given-name characters swapped
    DIFFERENT = "different"
    MISSING = "missing"


@cache
def _t2s() -> opencc.OpenCC:
    """The one traditional → simplified converter of this module, created on first use."""
    import opencc

    return opencc.OpenCC("t2s")


def _simplified(text: str) -> str:
    """text in simplified characters, leaving the characters names keep as they are."""
    if text.isascii():
        return text
    parts = _KEEP_IN_NAMES.split(text)
    return "".join(p if i % 2 else _t2s().convert(p) for i, p in enumerate(parts))


def _strip_annotations(text: str) -> tuple[str, str | None]:
    """text without bracketed or trailing annotations, and the first annotation found."""
    notes = [m.strip() for m in _BRACKETED.findall(text)]
    text = _BRACKETED.sub("", text)
    if m := _UNCLOSED.search(text):  # '张三(户主' — a cut-off annotation
        notes.append(m[1].strip())
        text = text[: m.start()]
    text = text.strip()
    for word in _SUFFIX_ANNOTATIONS:
        rest = text.removesuffix(word).strip()
        if rest != text and len(rest) >= 2 and not rest.isascii():
            notes.append(word)
            text = rest
            break
    note = next((n for n in notes if n), None)
    return text, note


def _split(name: str) -> tuple[str | None, str | None]:
    """(surname, given) of a Chinese name; (None, None) for minority names with a dot and Latin names."""
    if _MIDDLE_DOT in name or name.isascii() or len(name) < 2:
        return None, None
    if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    return name[0], name[1:]


@lru_cache(maxsize=_CACHE_SIZE)
def _syllables(text: str) -> str:
    """Toneless lower-case pinyin of text, letters and digits only (cached: given names repeat a lot).

    The text goes to pypinyin as one list item, as `_readings` sends each name in its batch: a string would
    be cut into dictionary words first, and a name like 一标的 would read ...biaodi here and ...biaode there."""
    joined = "".join(lazy_pinyin([text], style=Style.NORMAL)).lower()
    return "".join(ch for ch in joined if ch.isalnum())


def _pinyin(name: str, surname: str | None, given: str | None) -> str:
    """Toneless lower-case pinyin without spaces or dots, with the surname reading applied."""
    if name.isascii():
        return "".join(ch for ch in name if ch.isalnum())
    if surname is not None and given is not None:
        return (SURNAME_PINYIN.get(surname) or _syllables(surname)) + _syllables(given)
    return _syllables(name)


def _name_fields(raw: str) -> NameParse:
    """parse_name for a string cell, all but the pinyin key (left None)."""
    if is_null_token(raw):
        return NameParse(raw, None)
    text = unicodedata.normalize("NFKC", raw).translate(_INVISIBLE)
    text, note = _strip_annotations(text)
    if _LATIN.fullmatch(text.strip()):
        name = " ".join(text.split()).casefold()
    else:
        name = _simplified("".join(text.split()))
        name = _DOT_VARIANTS.sub(_MIDDLE_DOT, name)
        # a middle dot that did not survive a GBK export arrives as '?' between two characters
        name = _LOST_DOT.sub(_MIDDLE_DOT, name).strip(_MIDDLE_DOT)
    if not name or is_null_token(name):
        return NameParse(raw, None, note)
    surname, given = _split(name)
    return NameParse(raw, name, note, surname, given)


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_text(raw: str) -> NameParse:
    """parse_name for a string cell (cached)."""
    p = _name_fields(raw)
    if p.name is None:
        return p
    return NameParse(raw, p.name, p.annotation, p.surname, p.given, _pinyin(p.name, p.surname, p.given))


def parse_name(raw: object) -> NameParse:
    """Parse one name cell: annotations removed, whitespace removed, simplified, middle dots unified, pinyin key."""
    if raw is None or isinstance(raw, float) and raw != raw:
        return NameParse(None, None)
    return _parse_text(str(raw))


_NAME_FIELDS = ("name", "annotation", "surname", "given", "pinyin")
# Cells parse_names handles in polars: Han characters and spaces (ASCII or ideographic), optionally followed by one
# bracketed annotation of Han characters; none of the characters kept out of conversion, no annotation word at the
# end of the name. parse_name of such a cell: the name part simplified without spaces, the annotation as written.
_SPACES = " \u3000"  # NFKC turns the ideographic space into a space
_SIMPLE_NAME = f"^(?<text>[{_SPACES}{_HAN}]+?)(?:[(（](?<note>[{_HAN}]*)[)）])?[{_SPACES}]*$"
_SUFFIX_AT_END = f"(?:{'|'.join(_SUFFIX_ANNOTATIONS)})[{_SPACES}]*$"
_HAN_ONLY = re.compile(f"[{_HAN}]+")


def _readings(texts: list[str]) -> dict[str, str]:
    """`_syllables` of each text; the Han-only ones converted in one pypinyin call.

    pypinyin segments and converts each list item on its own, one syllable per Han character; should
    the count not add up, each text is converted alone instead.
    """
    han = [t for t in texts if t and _HAN_ONLY.fullmatch(t)]
    out = {t: _syllables(t) for t in texts if not (t and _HAN_ONLY.fullmatch(t))}
    flat = lazy_pinyin(han, style=Style.NORMAL) if han else []
    if len(flat) != sum(map(len, han)):
        return out | {t: _syllables(t) for t in han}
    start = 0
    for text in han:
        joined = "".join(flat[start : start + len(text)]).lower()
        out[text] = "".join(ch for ch in joined if ch.isalnum())
        start += len(text)
    return out


def _pinyin_column(fields: pl.DataFrame) -> pl.Series:
    """`_pinyin` of each row of (name, surname, given); None where name is None."""
    name, surname, given = pl.col("name"), pl.col("surname"), pl.col("given")
    latin = name.str.contains(r"^[\x00-\x7F]*$")  # str.isascii
    split = ~latin & surname.is_not_null() & given.is_not_null()
    whole = fields.filter(~latin & ~split)["name"].drop_nulls()
    parts = fields.filter(split)
    surnames = parts["surname"].unique()
    readings = _readings(pl.concat([surnames, parts["given"], whole]).unique().sort().to_list())
    surname_readings = {s: SURNAME_PINYIN.get(s) or readings[s] for s in surnames.to_list()}
    pinyin = (
        pl.when(latin).then(name.str.replace_all("[^0-9A-Za-z]", ""))
        .when(split).then(surname.replace_strict(surname_readings, default=None, return_dtype=pl.String)
                          + given.replace_strict(readings, default=None, return_dtype=pl.String))
        .otherwise(name.replace_strict(readings, default=None, return_dtype=pl.String))
    )
    return fields.select(pinyin.alias("pinyin")).to_series()


def _simple_name_fields(raws: pl.Series) -> pl.DataFrame:
    """`_name_fields` of distinct cells; `done` is False where the cell is not simple or conversion left more than Han."""
    parts = raws.str.extract_groups(_SIMPLE_NAME).struct.unnest()
    simple = (
        parts["text"].is_not_null()
        & ~raws.str.contains(f"[{_KEPT_CHARACTERS}]")  # converted piecewise by `_simplified`
        & ~parts["text"].str.contains(_SUFFIX_AT_END).fill_null(False)  # a trailing annotation word
    )
    text = parts["text"].filter(simple).str.replace_all(f"[{_SPACES}]", "")
    converted = pl.Series([None] * raws.len(), dtype=pl.String)
    converted.scatter(simple.arg_true(), pl.Series(simplified_lines(text.to_list()), dtype=pl.String))
    tokens = sorted(NULL_TOKENS)
    frame = pl.DataFrame({"_raw": raws, "name": converted, "note": parts["note"]}).with_columns(
        done=simple & pl.col("name").str.contains(f"^[{_HAN}]*$"),
        blank_cell=pl.col("_raw").str.strip_chars(_SPACES).is_in(tokens),  # is_null_token(raw)
        name=pl.when(~pl.col("name").is_in(tokens) & (pl.col("name") != "")).then("name"),
    )
    length = pl.col("name").str.len_chars()
    compound = pl.col("name").str.slice(0, 2).is_in(sorted(COMPOUND_SURNAMES)) & (length >= 3)
    surname_length = pl.when(compound).then(2).when(length >= 2).then(1)  # `_split`; None: one character
    return frame.select(
        "_raw",
        "name",
        annotation=pl.when(~pl.col("blank_cell") & (pl.col("note") != "")).then("note"),
        surname=pl.when(surname_length.is_not_null()).then(pl.col("name").str.slice(0, surname_length)),
        given=pl.when(surname_length.is_not_null()).then(pl.col("name").str.slice(surname_length)),
        done=pl.col("done").fill_null(False),
    )


def parse_names(values: pl.Series, *, with_pinyin: bool = True) -> pl.DataFrame:
    """parse_name over a column, one output row per input row, in order.

    Simple cells are cleaned in polars with one OpenCC call; every other distinct value goes through
    parse_name's own steps; the pinyin keys of all come from one pypinyin call. Without `with_pinyin` the
    pinyin column is null: pypinyin is most of the cost, and a caller that only wants the names skips it.
    """
    texts = values.cast(pl.String)
    distinct = texts.drop_nulls().unique()
    fast = _simple_name_fields(distinct)
    rest = fast.filter(~pl.col("done"))["_raw"]
    parsed = [_name_fields(v) for v in rest.to_list()]
    fields = [f for f in _NAME_FIELDS if f != "pinyin"]
    slow = pl.DataFrame(
        {"_raw": rest, **{f: [getattr(p, f) for p in parsed] for f in fields}},
        schema={"_raw": pl.String, **dict.fromkeys(fields, pl.String)},
    )
    lookup = pl.concat([fast.filter("done").drop("done"), slow])
    pinyin = _pinyin_column(lookup) if with_pinyin else pl.lit(None, dtype=pl.String).alias("pinyin")
    lookup = lookup.with_columns(pinyin)
    return pl.DataFrame({"_raw": texts}).join(lookup, on="_raw", how="left", maintain_order="left").select(_NAME_FIELDS)


def _core(p: NameParse) -> str:
    """The name compared: without middle dots (a missing dot is formatting, not a different name)."""
    return (p.name or "").replace(_MIDDLE_DOT, "")


def _surnames_agree(a: NameParse, b: NameParse, core_a: str, core_b: str) -> bool:
    """Same surname, or for names without one (minority, Latin) the same first character."""
    if a.surname is not None and b.surname is not None:
        return a.surname == b.surname
    return core_a[:1] == core_b[:1]


def compare_names(a: NameParse, b: NameParse) -> NameAgreement:
    """How two parsed names agree, at the character level."""
    if not a.name or not b.name:
        return NameAgreement.MISSING
    core_a, core_b = _core(a), _core(b)
    if core_a == core_b:
        return NameAgreement.EXACT
    if len(core_a) != len(core_b):
        return NameAgreement.DIFFERENT
    if a.pinyin and a.pinyin == b.pinyin:
        return NameAgreement.SAME_PINYIN
    if not _surnames_agree(a, b, core_a, core_b):
        return NameAgreement.DIFFERENT
    differing = [i for i, (x, y) in enumerate(zip(core_a, core_b)) if x != y]
    if len(differing) == 1 and len(core_a) >= 2:
        return NameAgreement.ONE_CHAR
    if len(differing) == 2 and a.given is not None and b.given is not None and a.surname == b.surname:
        i, j = differing
        if core_a[i] == core_b[j] and core_a[j] == core_b[i]:
            return NameAgreement.TRANSPOSED
    return NameAgreement.DIFFERENT


_PARTY_SEPARATORS = "、，,;；/"
_PARTY_SPLIT = re.compile(rf"\s*[{_PARTY_SEPARATORS}]\s*")
# A cell split_parties returns unchanged: no separator, and no whitespace (str.isspace) at either end.
_NOT_EDGE = f"[^\\s\\x1c-\\x1f{_PARTY_SEPARATORS}]"
_ONE_PARTY = f"^(?:{_NOT_EDGE}(?:[^{_PARTY_SEPARATORS}]*{_NOT_EDGE})?)?$"


def split_parties(text: object) -> list[str]:
    """'张三、李四' → ['张三', '李四']: court and case rows often name several parties in one cell."""
    if text is None:
        return []
    return [p for p in _PARTY_SPLIT.split(str(text).strip()) if p]


def one_party_mask(values: pl.Series) -> pl.Series:
    """True where split_parties gives the cell itself as the only party (or nothing: null, empty); polars."""
    return values.cast(pl.String).str.contains(_ONE_PARTY).fill_null(True)
