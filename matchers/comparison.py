"""Vectorised comparison of record pairs: one agreement level per field, computed on whole pair arrays.

Levels (the evidence vocabulary of the links table):

| field      | levels |
|------------|--------|
| name       | exact / same_pinyin / transposed / one_char / different / missing |
| id         | agree / partial (one keying slip) / disagree (also: the leading digits Excel left of one, 3.60730E+17, do not fit the other) / missing |
| birth_date | agree / partial (one digit, day↔month, or day unknown) / disagree / missing — a record without a stated date is compared by the date part of its ID when that ID only fails its check |
| sex        | agree / disagree / missing |
| region     | agree / partial (same prefecture, first 4 digits) / disagree / missing |
| phone      | agree / partial (one digit wrong, missing or swapped) / disagree / missing |
| address    | agree / partial (one contains the other, or ≥ 0.85 character similarity) / disagree / missing |
| counterpart| agree / partial (one of several names) / disagree / missing — the other party of the case: the
|            | defendant of a victim's case, the respondent (被执行人) of a 终本 case (optional column) |

Chinese names are compared character by character (rapidfuzz on code points, never a ratio, never
DuckDB's byte-counting `levenshtein`): 张伟/张玮 is `same_pinyin`, 张伟/张炜 with different
pinyin is `one_char`, 李娜/张娜 is `different` (a different surname is a different family).
The semantics match `matchers.names.compare_names`; this module is the vectorised version.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from rapidfuzz.distance import OSA, Hamming, Indel
from rapidfuzz.process import cpdist

from matchers.households import relation_roles

__all__ = [
    "FIELDS",
    "FIELD_LEVELS",
    "prepare_records",
    "compare_pairs",
    "id_typo_kinds",
    "MODEL_LEVELS",
    "model_level_column",
    "address_tail",
]

FIELDS: tuple[str, ...] = ("name", "id", "birth_date", "sex", "region", "phone", "address", "counterpart")
_GENERIC = ("agree", "partial", "disagree", "missing")
FIELD_LEVELS: dict[str, tuple[str, ...]] = {
    "name": ("exact", "same_pinyin", "transposed", "one_char", "different", "missing"),
    "id": _GENERIC,
    "birth_date": _GENERIC,
    "sex": ("agree", "disagree", "missing"),
    "region": _GENERIC,
    "phone": _GENERIC,
    "address": _GENERIC,
    "counterpart": _GENERIC,
}
MODEL_LEVELS: dict[str, tuple[str, ...]] = {
    **FIELD_LEVELS,
    "name": ("exact", "same_pinyin", "transposed", "one_char", "one_char_short", "different", "missing"),
}
"""Levels the weights are estimated for: a two-character name one character off (张伟/张芳) is only the
surname agreeing, far weaker evidence than 2 of 3 characters, so it gets its own m and u."""


def model_level_column(field: str) -> str:
    """The compared-pairs column holding the level the weights use for `field`."""
    return "name_model_level" if field == "name" else f"{field}_level"


ADDRESS_TAIL = 12
ADDRESS_SIMILARITY = 0.85
"""Character-level Indel similarity above which two (long) addresses count as the same place written
differently; addresses are 10–30 characters, where a ratio is meaningful (unlike 2–3 character names)."""
_MIN_CONTAINED_ADDRESS = 6
"""A contained address shorter than this (e.g. a bare county name) says nothing about the household."""

_COLUMNS = ("record_id", "record_key", "source", "name", "surname", "given", "pinyin", "name_len",
            "id18", "id_any", "id_leading", "legacy", "birth", "birth_key", "sex", "region", "phone", "address",
            "household_key", "case_no", "counterpart", "counterpart_first", "role", "relation_role")
_NAME_SEPARATORS = r"[、,，;；/]+"


def _counterparts(raw: pl.Series) -> pl.Series:
    """The other party's names, each parsed like a person's name (spaces, traditional characters,
    annotations), joined with 、 in their written order."""
    from matchers.names import parse_names

    present = raw.is_not_null()  # most records name no other party: parse only those that do
    parts = raw.filter(present).str.replace_all(_NAME_SEPARATORS, "\u0000").str.split("\u0000")
    exploded = pl.DataFrame({"row": pl.int_range(raw.len(), eager=True).filter(present), "part": parts}).explode("part")
    exploded = exploded.with_columns(parse_names(exploded["part"], with_pinyin=False)["name"].alias("part")).drop_nulls("part")
    joined = exploded.group_by("row", maintain_order=True).agg(pl.col("part").str.join("、"))
    return (pl.DataFrame({"row": pl.int_range(raw.len(), eager=True)})
            .join(joined, on="row", how="left", maintain_order="left")["part"].alias("counterpart"))


_EARLIEST_BIRTH_YEAR = 1900


def _candidate_birth(candidate: pl.Expr) -> pl.Expr:
    """YYYYMMDD from positions 7–14 of an ID that failed its check, where they form a real date after 1900.

    One mistyped character leaves the date intact, or one digit off (birth_date `partial`): for comparison
    only, so that two namesakes at one address whose numbers were born years apart are seen to disagree.
    normalise still derives no birth date from such a number (ages and scores never rest on it), and blocking
    does not use it (`birth_key`): at ten provinces it added 18 % more candidate pairs, common surnames born on
    one day, that the ID-typo keys already pair where they matter."""
    part = candidate.str.slice(6, 8)
    day = part.str.strptime(pl.Date, "%Y%m%d", strict=False)
    return pl.when(day.dt.year() >= _EARLIEST_BIRTH_YEAR).then(part)


_EXCEL_NUMBER = r"^(\d)\.(\d{3,14})[eE]\+?17$"
"""An 18-digit ID that Excel showed as a number: 3.50425E+17 keeps its first digits (the region code)."""


def _excel_leading_digits(raw: pl.Expr) -> pl.Expr:
    """The leading digits an ID cell keeps after Excel turned it into a number (at least 4), else null."""
    return raw.str.extract(_EXCEL_NUMBER, 1) + raw.str.extract(_EXCEL_NUMBER, 2)


def prepare_records(records: pl.DataFrame) -> pl.DataFrame:
    """The comparison view of the records frame: trimmed values, derived keys, sorted by record_id."""
    def text(col: str) -> pl.Expr:
        if col not in records.columns:
            return pl.lit(None, dtype=pl.String).alias(col)
        c = pl.col(col).cast(pl.String).str.strip_chars()
        return pl.when(c.str.len_chars() > 0).then(c).otherwise(None).alias(col)

    frame = records.select(
        pl.col("record_id").cast(pl.Int64),
        text("record_key"), text("source"), text("name"), text("surname"),
        text("name_pinyin").str.to_lowercase().alias("pinyin"),
        text("id18"), text("id_candidate"), text("id_status"), text("id_raw"),
        (pl.col("birth_date").cast(pl.Date) if "birth_date" in records.columns
         else pl.lit(None, dtype=pl.Date)).alias("birth_date"),
        text("sex").str.to_uppercase(), text("region"), text("phone"), text("address"),
        text("household_key"), text("case_no"), text("role"), text("relation"),
        text("counterpart_name").alias("counterpart"),
    )
    frame = frame.with_columns(_counterparts(frame["counterpart"]),
                               relation_roles(frame["relation"]).alias("relation_role"))
    # names compare on their letters only: without the middle dot (买买提·艾力 = 买买提艾力, as
    # matchers.names.compare_names does) or whatever a GBK export wrote for it ('?', '.', '•')
    frame = frame.with_columns(pl.col("name").str.replace_all(r"[^\p{L}]", ""))
    frame = frame.with_columns(pl.when(pl.col("name").str.len_chars() > 0).then(pl.col("name")).alias("name"))
    surname_ok = pl.col("surname").is_not_null() & pl.col("name").str.starts_with(pl.col("surname"))
    return frame.with_columns(
        pl.when(surname_ok).then(pl.col("surname")).alias("surname"),
        pl.when(surname_ok).then(pl.col("name").str.slice(pl.col("surname").str.len_chars())).alias("given"),
        pl.col("name").str.len_chars().alias("name_len"),
        pl.coalesce("id18", pl.when(pl.col("id_candidate").str.len_chars() == 18).then(pl.col("id_candidate")))
        .alias("id_any"),
        (pl.col("id_status") == "legacy15").fill_null(False).alias("legacy"),
        pl.col("birth_date").dt.strftime("%Y%m%d").alias("birth_key"),
        pl.coalesce(pl.col("birth_date").dt.strftime("%Y%m%d"), _candidate_birth(pl.col("id_candidate"))).alias("birth"),
        _excel_leading_digits(pl.col("id_raw")).alias("id_leading"),
        pl.when(pl.col("sex").is_in(["M", "F"])).then(pl.col("sex")).alias("sex"),
        pl.when(pl.col("counterpart").str.len_chars() > 0).then(pl.col("counterpart")).alias("counterpart"),
        pl.col("counterpart").str.split("、").list.first().alias("counterpart_first"),
    ).with_columns(
        pl.when(pl.col("birth").str.len_chars() == 8).then(pl.col("birth")).alias("birth"),
        pl.when(pl.col("birth_key").str.len_chars() == 8).then(pl.col("birth_key")).alias("birth_key"),
    ).select(_COLUMNS).sort("record_id")


def _as_levels(field: str, codes: np.ndarray) -> pl.Series:
    """Level codes (indices into FIELD_LEVELS[field]) as the level names."""
    names = dict(enumerate(FIELD_LEVELS[field]))
    return pl.Series(f"{field}_level", codes, dtype=pl.Int8).replace_strict(names, return_dtype=pl.String)


def _codes(field: str, n: int, initial: str) -> tuple[np.ndarray, dict[str, int]]:
    index = {lvl: i for i, lvl in enumerate(FIELD_LEVELS[field])}
    return np.full(n, index[initial], dtype=np.int8), index


def _gather_pairs(prepared: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """Left and right values side by side (suffix _l / _r) for each pair, in pair order."""
    ids = prepared["record_id"].to_numpy()
    left = np.searchsorted(ids, pairs["record_id_l"].to_numpy())
    right = np.searchsorted(ids, pairs["record_id_r"].to_numpy())
    cols = [c for c in _COLUMNS if c not in ("record_id", "record_key", "birth_key")]
    lf = prepared.select(cols)[left]
    rf = prepared.select(cols)[right]
    return pl.concat(
        [pairs.select("record_id_l", "record_id_r"),
         lf.rename({c: f"{c}_l" for c in cols}), rf.rename({c: f"{c}_r" for c in cols})],
        how="horizontal",
    )


def _ascii_matrix(values: list[str], width: int) -> np.ndarray:
    """Fixed-width ASCII strings (IDs, dates) as an (n, width) uint8 matrix."""
    if not values:
        return np.zeros((0, width), dtype=np.uint8)
    return np.frombuffer("".join(values).encode("ascii"), dtype=np.uint8).reshape(-1, width)


def _slip_kinds(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Per row: 1 = one character substituted, 2 = two adjacent characters swapped, 0 = neither."""
    diff = left != right
    n_diff = diff.sum(axis=1)
    out = np.zeros(len(left), dtype=np.int8)
    out[n_diff == 1] = 1
    two = np.flatnonzero(n_diff == 2)
    if len(two):
        first = diff[two].argmax(axis=1)
        second = np.minimum(first + 1, left.shape[1] - 1)
        adjacent = diff[two, second] & (second == first + 1)
        swapped = (left[two, first] == right[two, second]) & (left[two, second] == right[two, first])
        out[two[adjacent & swapped]] = 2
    return out


def id_typo_kinds(id_l: list[str], id_r: list[str], legacy: np.ndarray) -> np.ndarray:
    """Keying-slip relation between 18-character IDs: 0 none, 1 one substitution, 2 adjacent transposition.

    Equal IDs are 0. When either side was upgraded from a legacy 15-digit number, its check character
    was recomputed from the (possibly mistyped) body, so the slip is looked for in the first 17 characters.
    """
    a, b = _ascii_matrix(id_l, 18), _ascii_matrix(id_r, 18)
    kinds = _slip_kinds(a, b)
    if legacy.any():
        body = _slip_kinds(a[legacy, :17], b[legacy, :17])
        kinds[legacy] = np.where(kinds[legacy] > 0, kinds[legacy], body)
    return kinds


def _same_characters(left: list[str], right: list[str]) -> np.ndarray:
    """Per pair, whether the two strings hold the same characters in any order (code points sorted)."""
    width = max(max(map(len, left), default=1), max(map(len, right), default=1), 1)
    a = np.sort(np.array(left, dtype=f"<U{width}").view(np.uint32).reshape(-1, width), axis=1)
    b = np.sort(np.array(right, dtype=f"<U{width}").view(np.uint32).reshape(-1, width), axis=1)
    return (a == b).all(axis=1)


def _name_level(p: pl.DataFrame) -> pl.Series:
    """Name agreement per pair, with the semantics of `matchers.names.compare_names`: exact; else (same
    length) same pinyin; else (same surname, or the same first character for names without one)
    the given name's characters reordered, or exactly one character different."""
    n = p.height
    missing = (p["name_l"].is_null() | p["name_r"].is_null()).to_numpy()
    exact = (p["name_l"] == p["name_r"]).fill_null(False).to_numpy()
    same_len = (p["name_len_l"] == p["name_len_r"]).fill_null(False).to_numpy()
    same_py = (p["pinyin_l"] == p["pinyin_r"]).fill_null(False).to_numpy() & ~exact & same_len
    level, code = _codes("name", n, "different")
    level[same_py] = code["same_pinyin"]
    level[exact] = code["exact"]
    both_surnames = (p["surname_l"].is_not_null() & p["surname_r"].is_not_null()).to_numpy()
    surnames_agree = np.where(
        both_surnames,
        (p["surname_l"] == p["surname_r"]).fill_null(False).to_numpy(),
        (p["name_l"].str.slice(0, 1) == p["name_r"].str.slice(0, 1)).fill_null(False).to_numpy(),
    )
    idx = np.flatnonzero(~missing & ~exact & ~same_py & same_len & surnames_agree)
    if len(idx):
        sub = p.select("name_l", "name_r", "given_l", "given_r")[idx]
        ham = cpdist(sub["name_l"].to_list(), sub["name_r"].to_list(), scorer=Hamming.distance, workers=-1)
        level[idx[(ham == 1) & (sub["name_l"].str.len_chars().to_numpy() >= 2)]] = code["one_char"]
        two = np.flatnonzero((ham == 2) & both_surnames[idx])
        if len(two):
            given = sub[two]
            reordered = _same_characters(given["given_l"].fill_null("").to_list(), given["given_r"].fill_null("").to_list())
            reordered &= given["given_l"].str.len_chars().fill_null(0).to_numpy() >= 2
            level[idx[two[reordered]]] = code["transposed"]
    level[missing] = code["missing"]
    return _as_levels("name", level)


def _id_levels(p: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """ID level and slip kind ('one_substitution' / 'adjacent_transposition' / None) per pair."""
    n = p.height
    a, b = p["id_any_l"], p["id_any_r"]
    missing = (a.is_null() | b.is_null()).to_numpy()
    agree = (a == b).fill_null(False).to_numpy()
    level, code = _codes("id", n, "disagree")
    kind = np.zeros(n, dtype=np.int8)
    idx = np.flatnonzero(~missing & ~agree)
    if len(idx):
        legacy = (p["legacy_l"] | p["legacy_r"]).gather(idx).to_numpy()
        kinds = id_typo_kinds(a.gather(idx).to_list(), b.gather(idx).to_list(), legacy)
        level[idx[kinds > 0]] = code["partial"]
        kind[idx] = kinds
    level[agree] = code["agree"]
    level[missing] = code["missing"]
    level[_excel_digits_disagree(p)] = code["disagree"]
    typo = pl.Series("id_typo", kind).replace_strict(
        {0: None, 1: "one_substitution", 2: "adjacent_transposition"}, return_dtype=pl.String)
    return _as_levels("id", level), typo


def _excel_digits_disagree(p: pl.DataFrame) -> np.ndarray:
    """Per pair: one side's ID survives only as Excel's leading digits (3.60730E+17), and the other side's
    ID does not start with them — not even one off in the last kept digit, which Excel rounds."""
    def side(digits: str, other: str) -> pl.Expr:
        kept = pl.col(digits).str.len_chars()
        shown = pl.col(digits).cast(pl.Int64, strict=False)
        actual = pl.col(other).str.slice(0, kept).cast(pl.Int64, strict=False)
        return pl.col(other).is_not_null() & pl.col(digits).is_not_null() & ((shown - actual).abs() > 1)

    either = (side("id_leading_l", "id_any_r") | side("id_leading_r", "id_any_l")).fill_null(False)
    return p.select(either).to_series().to_numpy()


def _birth_level(p: pl.DataFrame) -> pl.Series:
    """agree; partial = one digit wrong or two adjacent swapped (YYYYMMDD), day and month swapped, or
    the same year and month where one side records only a month (day 01) or only a year (01-01)."""
    n = p.height
    a, b = p["birth_l"], p["birth_r"]
    missing = (a.is_null() | b.is_null()).to_numpy()
    agree = (a == b).fill_null(False).to_numpy()
    level, code = _codes("birth_date", n, "disagree")
    idx = np.flatnonzero(~missing & ~agree)
    if len(idx):
        left, right = _ascii_matrix(a.gather(idx).to_list(), 8), _ascii_matrix(b.gather(idx).to_list(), 8)
        slip = _slip_kinds(left, right) > 0
        year_eq = (left[:, :4] == right[:, :4]).all(axis=1)
        md_swap = year_eq & (left[:, 4:6] == right[:, 6:8]).all(axis=1) & (left[:, 6:8] == right[:, 4:6]).all(axis=1)
        month_eq = year_eq & (left[:, 4:6] == right[:, 4:6]).all(axis=1)
        first_day = np.frombuffer(b"01", dtype=np.uint8)
        day_unknown = month_eq & ((left[:, 6:8] == first_day).all(axis=1) | (right[:, 6:8] == first_day).all(axis=1))
        jan_first = np.frombuffer(b"0101", dtype=np.uint8)
        year_only = year_eq & ((left[:, 4:8] == jan_first).all(axis=1) | (right[:, 4:8] == jan_first).all(axis=1))
        level[idx[slip | md_swap | day_unknown | year_only]] = code["partial"]
    level[agree] = code["agree"]
    level[missing] = code["missing"]
    return _as_levels("birth_date", level)


def _phone_level(p: pl.DataFrame) -> pl.Series:
    """agree; partial = one digit wrong, dropped, added, or two neighbours swapped."""
    n = p.height
    a, b = p["phone_l"], p["phone_r"]
    missing = (a.is_null() | b.is_null()).to_numpy()
    agree = (a == b).fill_null(False).to_numpy()
    level, code = _codes("phone", n, "disagree")
    idx = np.flatnonzero(~missing & ~agree)
    if len(idx):
        osa = cpdist(a.gather(idx).to_list(), b.gather(idx).to_list(), scorer=OSA.distance, workers=-1)
        shortest = np.minimum(p["phone_l"].gather(idx).str.len_chars().to_numpy(),
                              p["phone_r"].gather(idx).str.len_chars().to_numpy())
        level[idx[(osa <= 1) & (shortest >= 7)]] = code["partial"]  # a 7-digit landline is the shortest real number
    level[agree] = code["agree"]
    level[missing] = code["missing"]
    return _as_levels("phone", level)


def _names_a_house(address: pl.Expr) -> pl.Expr:
    return (address.str.len_chars() >= 8) & address.str.contains(r"\d")


def address_tail(address: pl.Expr) -> pl.Expr:
    """The last 12 characters of an address (village, group, house number): the part that identifies a
    household, whatever administrative prefix an agency writes before it."""
    return address.str.slice(-ADDRESS_TAIL)


def _address_level(p: pl.DataFrame) -> pl.Series:
    """agree = equal, or one ends with the other and the shorter still names a house (a number and ≥ 8
    characters): 福建省三明市大田县…85号 = 大田县…85号; partial = one address contains the other (≥ 6
    characters) or character similarity ≥ 0.85."""
    n = p.height
    a, b = p["address_l"], p["address_r"]
    missing = (a.is_null() | b.is_null()).to_numpy()
    agree = (a == b).fill_null(False).to_numpy()
    level, code = _codes("address", n, "disagree")
    idx = np.flatnonzero(~missing & ~agree)
    if len(idx):
        sub = p.select("address_l", "address_r")[idx]
        contained = sub.select(
            ((pl.col("address_l").str.contains(pl.col("address_r"), literal=True)
              & (pl.col("address_r").str.len_chars() >= _MIN_CONTAINED_ADDRESS))
             | (pl.col("address_r").str.contains(pl.col("address_l"), literal=True)
                & (pl.col("address_l").str.len_chars() >= _MIN_CONTAINED_ADDRESS))).alias("c")
        )["c"].to_numpy()
        sim = cpdist(sub["address_l"].to_list(), sub["address_r"].to_list(),
                     scorer=Indel.normalized_similarity, workers=-1)
        level[idx[contained | (sim >= ADDRESS_SIMILARITY)]] = code["partial"]
        house = sub.select(
            (pl.col("address_l").str.ends_with(pl.col("address_r")) & _names_a_house(pl.col("address_r")))
            | (pl.col("address_r").str.ends_with(pl.col("address_l")) & _names_a_house(pl.col("address_l")))
        ).to_series().fill_null(False).to_numpy()
        level[idx[house]] = code["agree"]
    level[agree] = code["agree"]
    level[missing] = code["missing"]
    return _as_levels("address", level)


BIRTHS_YEARS_APART_DAYS = 366
"""Birth dates further apart than this are two people, not one person's date keyed or reckoned differently:
a lunar-calendar birthday is weeks from the solar one, a father and son of one name decades apart."""


def _born_years_apart() -> pl.Expr:
    """Whether the two birth dates are more than BIRTHS_YEARS_APART_DAYS apart (false when either is missing)."""
    def day(col: str) -> pl.Expr:
        return pl.col(col).str.strptime(pl.Date, "%Y%m%d", strict=False)

    apart = (day("birth_l") - day("birth_r")).dt.total_days().abs() > BIRTHS_YEARS_APART_DAYS
    return (pl.col("birth_date_level") == "disagree") & apart.fill_null(False)


def _simple_levels(p: pl.DataFrame) -> list[pl.Expr]:
    def level(field: str, partial: pl.Expr | None = None) -> pl.Expr:
        left, right = pl.col(f"{field}_l"), pl.col(f"{field}_r")
        expr = pl.when(left.is_null() | right.is_null()).then(pl.lit("missing")).when(left == right).then(pl.lit("agree"))
        if partial is not None:
            expr = expr.when(partial).then(pl.lit("partial"))
        return expr.otherwise(pl.lit("disagree")).alias(f"{field}_level")

    cl, cr = pl.col("counterpart_l"), pl.col("counterpart_r")
    several = (cl.str.contains("、") | cr.str.contains("、")) & (
        (pl.lit("、") + cl + pl.lit("、")).str.contains(pl.lit("、") + pl.col("counterpart_first_r") + pl.lit("、"), literal=True)
        | (pl.lit("、") + cr + pl.lit("、")).str.contains(pl.lit("、") + pl.col("counterpart_first_l") + pl.lit("、"), literal=True))
    return [
        level("counterpart", several),
        level("sex"),
        level("region", pl.col("region_l").str.slice(0, 4) == pl.col("region_r").str.slice(0, 4)),
    ]


def compare_pairs(prepared: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """Per pair (record_id_l, record_id_r): `<field>_level` for every field, the slip kind of an ID
    `partial`, and the values the weights need (name, pinyin, birth, phone, address of the left record;
    both household and case keys; whether both records carry a valid ID)."""
    if pairs.height == 0:
        schema = {"record_id_l": pl.Int64, "record_id_r": pl.Int64, **{f"{f}_level": pl.String for f in FIELDS},
                  "id_typo": pl.String, "name_model_level": pl.String, "name_nested": pl.Boolean, "both_valid": pl.Boolean, "same_household": pl.Boolean,
                  "same_case": pl.Boolean, "different_roles": pl.Boolean, "born_years_apart": pl.Boolean,
                  "same_source": pl.Boolean, "name_value": pl.String,
                  "pinyin_value": pl.String, "birth_value": pl.String, "phone_value": pl.String,
                  "address_value": pl.String, "counterpart_value": pl.String}
        return pl.DataFrame(schema=schema)
    p = _gather_pairs(prepared, pairs)
    id_level, id_typo = _id_levels(p)
    p = p.with_columns(
        _name_level(p), id_level, id_typo, _birth_level(p), _phone_level(p), _address_level(p), *_simple_levels(p),
    )
    return p.select(
        "record_id_l", "record_id_r", *[f"{f}_level" for f in FIELDS], "id_typo",
        pl.when((pl.col("name_level") == "one_char") & (pl.col("name_len_l") <= 2)).then(pl.lit("one_char_short"))
        .otherwise(pl.col("name_level")).alias("name_model_level"),
        # one name inside the other (a truncated minority name, a given name without surname)
        ((pl.col("name_level") == "different")
         & ((pl.col("name_l").str.contains(pl.col("name_r"), literal=True) & (pl.col("name_len_r") >= 2))
            | (pl.col("name_r").str.contains(pl.col("name_l"), literal=True) & (pl.col("name_len_l") >= 2))))
        .fill_null(False).alias("name_nested"),
        (pl.col("id18_l").is_not_null() & pl.col("id18_r").is_not_null()).alias("both_valid"),
        (pl.col("household_key_l") == pl.col("household_key_r")).fill_null(False).alias("same_household"),
        (pl.col("case_no_l") == pl.col("case_no_r")).fill_null(False).alias("same_case"),
        # two rows of one household roll or one case file in different roles are two people
        ((pl.col("relation_role_l") != pl.col("relation_role_r"))
         | ((pl.col("case_no_l") == pl.col("case_no_r")) & (pl.col("role_l") != pl.col("role_r"))))
        .fill_null(False).alias("different_roles"),
        _born_years_apart().alias("born_years_apart"),
        (pl.col("source_l") == pl.col("source_r")).fill_null(False).alias("same_source"),
        pl.col("name_l").alias("name_value"),
        pl.col("pinyin_l").alias("pinyin_value"),
        pl.col("birth_l").alias("birth_value"),
        pl.col("phone_l").alias("phone_value"),
        address_tail(pl.col("address_l")).alias("address_value"),
        pl.col("counterpart_l").alias("counterpart_value"),
    )
