"""The dirt of real agency exports, applied cell by cell to clean values.

Rates live in `DirtRates`; every function draws from the generator it is given, so a file's dirt
depends only on the seed. Loops run only over the cells that get dirty.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import polars as pl

from data_samples import _tables as T

EXCEL_EPOCH = np.datetime64("1899-12-30", "D")
DATE_FORMATS = ("%Y-%m-%d", "%Y/%-m/%-d", "%Y年%-m月%-d日", "%Y%m%d", "%Y.%m.%d")
SERIAL, DATE_CELL = 5, 6
"""format codes beyond DATE_FORMATS: an Excel serial number as text/number, a real XLSX date cell"""
_FULLWIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


@dataclass(frozen=True)
class DirtRates:
    """Share of cells (or rows) that get each kind of dirt."""

    id_blank: float = 0.08
    id_blank_relative: float = 0.30
    id_mistyped: float = 0.02
    id_legacy15: float = 0.02
    id_fullwidth: float = 0.01
    id_lower_x: float = 0.5
    """of X-ending IDs, in the sources that write a lowercase x"""
    id_spaces: float = 0.01
    id_apostrophe: float = 0.01
    id_scientific: float = 0.005
    id_garbage: float = 0.002
    name_spaces: float = 0.02
    name_traditional: float = 0.02
    name_homophone: float = 0.02
    name_annotation: float = 0.01
    name_dot_variant: float = 0.3
    """of names with a middle dot"""
    name_blank: float = 0.0005
    date_other_format: float = 0.06
    date_serial: float = 0.02
    date_bad: float = 0.0005
    amount_other_format: float = 0.1
    amount_bad: float = 0.0005
    phone_format: float = 0.15
    duplicate_row: float = 0.01
    respelled_duplicate: float = 0.002


def at_least_one(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Row indices for a 'handful' kind of dirt: about rate * n of them, but at least one."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(rng.choice(n, size=min(n, max(1, round(rate * n))), replace=False))


# ---------------------------------------------------------------- ID numbers

def mistype_id(text: str, rng: np.random.Generator) -> str:
    """One digit changed or two adjacent different digits swapped; the check character then fails."""
    digits = list(text)
    if rng.random() < 0.5:
        for _ in range(8):
            i = int(rng.integers(0, 16))
            if digits[i] != digits[i + 1]:
                digits[i], digits[i + 1] = digits[i + 1], digits[i]
                return "".join(digits)
    i = int(rng.integers(0, 17))
    digits[i] = str((int(digits[i]) + int(rng.integers(1, 10))) % 10)
    return "".join(digits)


ID_DIRT = ("mistyped", "legacy15", "fullwidth", "spaces", "apostrophe", "scientific", "garbage")


def dirty_ids(ids: list[str | None], rng: np.random.Generator, rates: DirtRates, *, blank_p: np.ndarray | float,
              lower_x: bool) -> tuple[list[str | None], list[float | None], dict[int, str]]:
    """ID cells as written, the float an XLSX writer should store instead (Excel's scientific notation),
    and what was done to each dirty cell."""
    n = len(ids)
    out = list(ids)
    numeric: list[float | None] = [None] * n
    tags: dict[int, str] = {}
    blank = rng.random(n) < blank_p
    kinds = np.array([rates.id_mistyped, rates.id_legacy15, rates.id_fullwidth, rates.id_spaces, rates.id_apostrophe,
                      rates.id_scientific, rates.id_garbage])
    kind = np.searchsorted(np.cumsum(kinds), rng.random(n), side="right")  # len(kinds) = clean
    lower = (rng.random(n) < rates.id_lower_x) & lower_x
    for i in np.flatnonzero(blank | (kind < len(kinds)) | lower):
        text = out[i]
        if not text:
            continue
        if blank[i]:
            out[i] = None
            tags[i] = "blank"
            continue
        k = int(kind[i])
        before = text
        if k == 0:
            text = mistype_id(text, rng)
        elif k == 1 and text[6:10] < "2000":
            text = text[:6] + text[8:17]
        elif k == 2:
            text = text.translate(_FULLWIDTH)
        elif k == 3:
            text = f"{text[:6]} {text[6:14]} {text[14:]}" if rng.random() < 0.5 else f"{text[:10]} {text[10:]}"
        elif k == 4:
            text = "'" + text
        elif k == 5 and text[-1] != "X":
            numeric[i] = float(text)
            text = f"{float(text):.5E}"
        elif k == 6:
            garbage = (text[:17], text + str(int(rng.integers(10))), text[:14], "待补录", text[:6] + text[8:16])
            text = garbage[int(rng.integers(len(garbage)))]
        if text != before:
            tags[i] = ID_DIRT[k]
        if lower[i] and text.endswith("X"):
            text = text[:-1] + "x"
            tags[i] = tags[i] + "+lower_x" if i in tags else "lower_x"
        out[i] = text
    return out, numeric, tags


# ---------------------------------------------------------------- names

@cache
def _s2t():
    import opencc

    return opencc.OpenCC("s2t")


def traditional(text: str) -> str:
    return _s2t().convert(text)


def homophone(name: str, rng: np.random.Generator) -> str:
    """One given-name character replaced by another with the same pinyin (伟→玮), if the name has one."""
    start = 2 if "·" not in name and len(name) >= 4 else 1
    spots = [i for i in range(start, len(name)) if name[i] in T.HOMOPHONES]
    if not spots or "·" in name:
        return name
    i = spots[int(rng.integers(len(spots)))]
    options = T.HOMOPHONES[name[i]]
    return name[:i] + options[int(rng.integers(len(options)))] + name[i + 1:]


def spaced(name: str, rng: np.random.Generator) -> str:
    if len(name) < 2:
        return name
    sep = " " if rng.random() < 0.8 else "\u3000"
    if len(name) == 2 or rng.random() < 0.5:
        return name[0] + sep + name[1:]
    return sep.join(name) if rng.random() < 0.5 else name[:2] + sep + name[2:]


NAME_DIRT = ("spaces", "traditional", "homophone", "annotation")


def dirty_names(names: list[str | None], rng: np.random.Generator, rates: DirtRates, *,
                annotations: tuple[str, ...] = T.NAME_ANNOTATIONS,
                deceased: np.ndarray | None = None) -> tuple[list[str | None], dict[int, str]]:
    """Names with inner spaces, traditional characters, homophone typos, annotations, middle-dot variants;
    and what was done to each dirty cell. Company names stay as they are."""
    n = len(names)
    out = list(names)
    tags: dict[int, str] = {}
    kinds = np.array([rates.name_spaces, rates.name_traditional, rates.name_homophone, rates.name_annotation])
    kind = np.searchsorted(np.cumsum(kinds), rng.random(n), side="right")
    dot = rng.random(n) < rates.name_dot_variant
    dotted = np.array([bool(t) and "·" in t for t in out], dtype=bool)
    kind[[i for i in range(n) if not out[i] or "公司" in out[i]]] = len(kinds)
    trad = [i for i in np.flatnonzero(kind == 1)]
    if trad:
        converted = _s2t().convert("\n".join(out[i] for i in trad)).split("\n")
        for i, text in zip(trad, converted):
            if text != out[i]:
                out[i], tags[i] = text, "traditional"
    for i in np.flatnonzero(((kind != 1) & (kind < len(kinds))) | (dot & dotted)):
        text = before = out[i]
        k = int(kind[i])
        if k == 0:
            text = spaced(text, rng)
        elif k == 2:
            text = homophone(text, rng)
        elif k == 3:
            text += "（已故）" if deceased is not None and deceased[i] else annotations[int(rng.integers(len(annotations)))]
        if text != before:
            tags[i] = NAME_DIRT[k]
        if dot[i] and "·" in text:
            text = text.replace("·", ("•", ".", "．", "", "・")[int(rng.integers(5))])
            tags[i] = tags[i] + "+dot" if i in tags else "dot"
        out[i] = text
    return out, tags


# ---------------------------------------------------------------- dates, amounts, phones

def format_dates(dates: np.ndarray, rng: np.random.Generator, rates: DirtRates, *, main: int,
                 serial_ok: bool = True) -> tuple[pl.Series, pl.Series, np.ndarray]:
    """Date cells as text in mixed formats, the real date for rows an XLSX writer stores as a date cell,
    and the rows given an unreadable date."""
    n = len(dates)
    dates = np.asarray(dates, dtype="datetime64[D]")
    code = np.full(n, main, dtype=np.int64)
    other = rng.random(n) < rates.date_other_format
    code[other] = rng.integers(0, len(DATE_FORMATS), int(other.sum()))
    if serial_ok:
        code[rng.random(n) < rates.date_serial] = SERIAL
    frame = pl.DataFrame({"d": pl.Series(dates, dtype=pl.Date), "c": code,
                          "s": (dates - EXCEL_EPOCH).astype(np.int64)})
    expr = pl.when(pl.col("c") == SERIAL).then(pl.col("s").cast(pl.Utf8))
    for c, fmt in enumerate(DATE_FORMATS):
        expr = expr.when(pl.col("c") == c).then(pl.col("d").dt.strftime(fmt))
    expr = expr.otherwise(pl.col("d").dt.strftime(DATE_FORMATS[0]))
    out = frame.select(pl.when(pl.col("d").is_null()).then(None).otherwise(expr).alias("t"),
                       pl.when(pl.col("c") == DATE_CELL).then(pl.col("d")).alias("cell"))
    text, cell = out["t"], out["cell"]
    present = np.flatnonzero(~np.isnat(dates))
    bad = np.zeros(0, dtype=np.int64)
    if len(present) and rates.date_bad > 0:
        bad = present[at_least_one(rng, len(present), rates.date_bad)]
        junk = []
        for i in bad:
            y = str(dates[i])[:4]
            junk.append((f"{y}-02-30", f"{y}.13.01", f"{y}年", "待查", f"{y}-00-00")[int(rng.integers(5))])
        text = text.scatter(bad, junk)
        cell = cell.scatter(bad, None)
    return text, cell, bad


def format_amounts(values: np.ndarray, rng: np.random.Generator, rates: DirtRates, *,
                   main: int) -> tuple[list[str | None], np.ndarray]:
    """Amounts as 12000 / 12000.00 / 12,000.00, sometimes ￥12000, 1.2万, 12000元; a handful unreadable
    (their rows are returned too)."""
    n = len(values)
    style = np.where(rng.random(n) < rates.amount_other_format, rng.integers(0, 6, n), main)
    out: list[str | None] = []
    for v, s in zip(values.tolist(), style.tolist()):
        if v != v:  # NaN: no value
            out.append(None)
        elif s == 0:
            out.append(f"{v:.0f}" if v == int(v) else f"{v:.2f}")
        elif s == 1:
            out.append(f"{v:.2f}")
        elif s == 2:
            out.append(f"{v:,.2f}")
        elif s == 3:
            out.append(f"￥{v:.0f}")
        elif s == 4 and v >= 10_000 and v % 100 == 0:
            out.append(f"{v / 10_000:g}万")
        else:
            out.append(f"{v:.0f}元")
    present = np.flatnonzero(~np.isnan(values))
    bad = np.zeros(0, dtype=np.int64)
    if len(present) and rates.amount_bad > 0:
        bad = present[at_least_one(rng, len(present), rates.amount_bad)]
        for i in bad:
            out[i] = ("约3万", "三万元", "见判决书", "12000..00")[int(rng.integers(4))]
    return out, bad


def format_phones(phones: np.ndarray, rng: np.random.Generator, rates: DirtRates) -> list[str | None]:
    """Mobiles mostly as 11 digits; some with +86, dashes, spaces, or a landline added."""
    n = len(phones)
    style = np.where(rng.random(n) < rates.phone_format, rng.integers(1, 7, n), 0)
    out: list[str | None] = []
    for p, s in zip(phones.tolist(), style.tolist()):
        if p == 0:
            out.append(None)
            continue
        t = str(p)
        out.append((t, f"+86 {t[:3]} {t[3:7]} {t[7:]}", f"{t[:3]}-{t[3:7]}-{t[7:]}", f"{t[:3]} {t[3:7]} {t[7:]}",
                    f"86-{t}", f"+86{t}", f"{t}/0598-72{t[-5:]}")[s])
    return out


def gender_cells(sex: np.ndarray, rng: np.random.Generator, style: int) -> list[str | None]:
    """男/女 (style 0), 男性/女性 (1) or the codes 1/2 (2), with a few blanks."""
    words = (("女", "男"), ("女性", "男性"), ("2", "1"))[style]
    blank = rng.random(len(sex)) < 0.01
    return [None if b else words[s] for s, b in zip(sex.tolist(), blank.tolist())]
