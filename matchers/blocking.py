"""Candidate pairs: the record pairs worth comparing, from several blocking rules, deduplicated.

A pair is a candidate if the two records share the key of at least one rule. Rules:

| rule             | key                                            | finds |
|------------------|------------------------------------------------|-------|
| id_exact         | valid id18                                     | the same ID in two rows |
| id_typo_*        | id18-or-candidate with one part masked (7 keys) | one digit mistyped or two neighbours swapped |
| birth_surname    | birth date + surname                           | given-name typos, homophones |
| birth_given      | birth date + given name                        | surname typos |
| birth_pinyin     | birth date + name pinyin                       | homophone / traditional variants |
| pinyin_year      | name pinyin + birth year                       | month / day typos |
| pinyin_monthday  | name pinyin + month-day                        | year typos |
| pinyin_phone     | name pinyin + phone                            | no birth date, shared phone |
| phone            | phone                                          | name typos with the same phone |
| pinyin_address   | name pinyin + address tail (last 12 characters) | no birth date, no phone |
| pinyin_counterpart | name pinyin + (first) defendant / respondent | a 终本 applicant without ID = the victim |
| household / case | subsistence household / victims case number    | duplicated members; who must stay apart |

ID-typo keys: the first 17 characters are split into region (1–6), birth date (7–14) and sequence
(15–17); one substituted character leaves two of the three parts intact, so the keys region+birth,
region+sequence and birth+sequence catch it; a swap across a part boundary is caught by masking the
two swapped positions (6/7 and 14/15). Region+sequence is split further by the half of the birth date a
slip leaves intact (region+year+sequence, region+month-day+sequence, and positions 10/11 masked for a
swap across the two): sequence numbers cluster (their first digits often name the police station), so
region+sequence alone pairs each mistyped ID with dozens of a province's records. The check character
is left out (a slip anywhere changes it when a legacy 15-digit number is upgraded).

Two records that both carry a valid ID are only paired by the ID rules: different valid IDs are
different people unless a keying slip explains them, so comparing their names would only add work.
The ID-typo rules only pair a record whose ID is suspect (fails its check, or is an upgraded legacy
number) with another, so they cost a few pairs per mistyped ID, not per record.
Blocks larger than `max_block_size` are skipped and counted (a phone shared by a whole village).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from matchers.comparison import ADDRESS_TAIL

__all__ = ["BlockingRule", "BLOCKING_RULES", "candidate_pairs", "hashed_keys", "folded_keys", "suspect_column",
           "HashedKeys"]


@dataclass(frozen=True)
class BlockingRule:
    name: str
    key: pl.Expr
    id_rule: bool = False
    """ID rules may pair two records that both carry a valid ID."""
    suspects: pl.Expr | None = None
    """When set, only pairs with at least one record for which this is true (the ID-typo rules)."""


def _cat(*parts: pl.Expr) -> pl.Expr:
    return pl.concat_str(list(parts), separator="|")


_ID = pl.col("id_any")
_MISTYPED = pl.col("id18").is_null()
_SUSPECT = _MISTYPED | pl.col("legacy")
"""An ID that may hold a keying slip: one failing its check, or a legacy number upgraded with its check recomputed."""
_BIRTH = pl.col("birth_key")
"""A birth date stated, or derived from a valid ID (not from one that fails its check: matchers.comparison)."""
BLOCKING_RULES: tuple[BlockingRule, ...] = (
    BlockingRule("id_exact", pl.col("id18"), id_rule=True),
    BlockingRule("id_typo_region_birth", _ID.str.slice(0, 14), id_rule=True, suspects=_SUSPECT),
    # a slip in the birth date leaves its year or its month-day intact (or, swapped across them, the rest):
    # region + sequence alone would pair everyone of a county sharing a sequence number (they cluster: the
    # first digits often name the police station). A legacy number's slip in its birth date could never
    # link anyway (rule 2 wants the birth dates to agree), so legacy numbers are not suspects here
    BlockingRule("id_typo_region_year_seq", _cat(_ID.str.slice(0, 10), _ID.str.slice(14, 3)), id_rule=True,
                 suspects=_MISTYPED),
    BlockingRule("id_typo_region_monthday_seq", _ID.str.slice(0, 6) + _ID.str.slice(10, 7), id_rule=True,
                 suspects=_MISTYPED),
    BlockingRule("id_typo_swap_9_10", _cat(_ID.str.slice(0, 9), _ID.str.slice(11, 6)), id_rule=True, suspects=_MISTYPED),
    BlockingRule("id_typo_birth_seq", _ID.str.slice(6, 11), id_rule=True, suspects=_SUSPECT),
    BlockingRule("id_typo_swap_6_7", _cat(_ID.str.slice(0, 5), _ID.str.slice(7, 10)), id_rule=True, suspects=_SUSPECT),
    BlockingRule("id_typo_swap_14_15", _cat(_ID.str.slice(0, 13), _ID.str.slice(15, 2)), id_rule=True, suspects=_SUSPECT),
    BlockingRule("birth_surname", _cat(_BIRTH, pl.col("surname"))),
    BlockingRule("birth_given", _cat(_BIRTH, pl.when(pl.col("given").str.len_chars() > 0).then(pl.col("given")))),
    BlockingRule("birth_pinyin", _cat(_BIRTH, pl.col("pinyin"))),
    BlockingRule("pinyin_year", _cat(pl.col("pinyin"), _BIRTH.str.slice(0, 4))),
    BlockingRule("pinyin_monthday", _cat(pl.col("pinyin"), _BIRTH.str.slice(4, 4))),
    BlockingRule("pinyin_phone", _cat(pl.col("pinyin"), pl.col("phone"))),
    BlockingRule("phone", pl.col("phone")),
    BlockingRule("pinyin_address", _cat(pl.col("pinyin"), pl.col("address").str.slice(-ADDRESS_TAIL))),
    BlockingRule("pinyin_counterpart", _cat(pl.col("pinyin"), pl.col("counterpart_first"))),
    # members of one household roll / one case file: duplicates to merge, or people to keep apart
    BlockingRule("household", pl.col("household_key")),
    BlockingRule("case", pl.col("case_no")),
)


def _pairs_within_blocks(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) position pairs, i before j, that share a block code; `codes` sorted so blocks are contiguous."""
    n = len(codes)
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    sizes = np.diff(np.r_[starts, n])
    block_end = np.repeat(starts + sizes, sizes)
    after = block_end - np.arange(n) - 1  # records after this one in its block
    total = int(after.sum())
    left = np.repeat(np.arange(n), after)
    first_of_left = np.repeat(np.cumsum(after) - after, after)
    right = left + 1 + (np.arange(total) - first_of_left)
    return left, right


HashedKeys = tuple[pl.DataFrame, dict[str, np.ndarray]]
"""(one 64-bit hash column per rule, null where a record has no key; the suspect flags of the ID-typo rules)"""


def hashed_keys(prepared: pl.DataFrame) -> HashedKeys:
    """Every rule's key as a 64-bit hash (null where the record has no key), computed in one pass, and the
    suspect flags of the rules that have them.

    Blocks are formed on the hash: two different keys share a block only if their hashes collide (about one
    chance in 10^12 for a province), and then the comparison judges the extra pair like any other."""
    keys = prepared.select([pl.when(r.key.is_not_null()).then(r.key.hash(seed=bit)).alias(r.name)
                            for bit, r in enumerate(BLOCKING_RULES)])
    flagged = prepared.select([r.suspects.fill_null(False).alias(r.name) for r in BLOCKING_RULES if r.suspects is not None])
    suspects = {name: flagged[name].to_numpy() for name in flagged.columns}
    return keys, suspects


def folded_keys(record_ids: pl.Series, keys: HashedKeys) -> pl.DataFrame:
    """record_id, each rule's key hash folded to 32 bits, and for the ID-typo rules whether the record is a
    suspect there (`suspect_<rule>`): enough to find the records that may share a block with given ones and
    pair with them (a fold collision only adds a record to look at; the pairs come from the full hashes)."""
    hashes, suspects = keys
    folded = {c: _fold(hashes[c]) for c in hashes.columns}
    flags = {suspect_column(name): pl.Series(flag, dtype=pl.Boolean) for name, flag in suspects.items()}
    return pl.DataFrame({"record_id": record_ids, **folded, **flags})


def suspect_column(rule: str) -> str:
    """The folded-keys column saying whether a record is a suspect of an ID-typo rule."""
    return f"suspect_{rule}"


def _fold(hashes: pl.Series) -> pl.Series:
    values = hashes.fill_null(0).to_numpy()
    folded = ((values ^ (values >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return pl.Series(hashes.name, folded, dtype=pl.UInt32).scatter(hashes.is_null().arg_true(), None) \
        if hashes.null_count() else pl.Series(hashes.name, folded, dtype=pl.UInt32)


def _rule_pairs(key: pl.Series, suspect: np.ndarray | None, max_block_size: int,
                touch: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Row pairs (left before right) sharing a key of one rule, and the number of blocks / records skipped as
    too large. With `touch`, only the pairs with at least one touched row (an incremental night's new records).

    ID-typo rules only pair a suspect ID with another ID (two checked IDs one slip apart cannot both be
    valid), so only blocks holding a suspect are expanded, and only their pairs with a suspect kept: a
    region+sequence block of a whole county would otherwise pair everyone born with the same sequence number."""
    present = key.is_not_null().to_numpy()
    rows = np.flatnonzero(present)
    hashes = key.to_numpy()[present] if len(rows) else np.empty(0, np.uint64)
    order = np.argsort(hashes)
    rows, hashes = rows[order], hashes[order]
    n = len(rows)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), 0, 0
    starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
    sizes = np.diff(np.r_[starts, n])
    has_suspect = np.ones(len(starts), dtype=bool) if suspect is None \
        else np.add.reduceat(suspect[rows].astype(np.int64), starts) > 0
    if touch is not None:
        has_suspect &= np.add.reduceat(touch[rows].astype(np.int64), starts) > 0
    too_big = has_suspect & (sizes > max_block_size)
    expand = np.repeat(has_suspect & (sizes >= 2) & (sizes <= max_block_size), sizes)
    block_of_row = np.repeat(np.arange(len(starts)), sizes)
    i, j = _pairs_within_blocks(block_of_row[expand])
    left, right = rows[expand][i], rows[expand][j]
    left, right = np.minimum(left, right), np.maximum(left, right)  # the sort need not keep rows in order
    for mask in (suspect, touch):
        if mask is not None and len(left):
            keep = mask[left] | mask[right]
            left, right = left[keep], right[keep]
    return left, right, int(too_big.sum()), int(sizes[too_big].sum())


def _names_may_agree(prepared: pl.DataFrame, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """False for pairs whose names share no character and no pinyin: an ID slip links two records only
    when their names agree or are one slip apart (exact, homophone, transposed, one character), and such
    names always share a character or their pinyin. Pairs missing a name are kept (nothing to judge by).

    Two people born the same day in one county have IDs one slip apart by the thousand; their names
    rarely have anything in common, so this halves the province's candidate pairs without losing a link."""
    if len(left) == 0:
        return np.ones(0, dtype=bool)
    names = prepared.select(pl.col("name").str.split("").alias("chars"), "pinyin")
    l, r = names[left], names[right]
    judged = pl.DataFrame({"chars_l": l["chars"], "chars_r": r["chars"], "pinyin_l": l["pinyin"],
                           "pinyin_r": r["pinyin"]})
    return judged.select(
        pl.col("chars_l").is_null() | pl.col("chars_r").is_null()
        | (pl.col("pinyin_l") == pl.col("pinyin_r")).fill_null(False)
        | (pl.col("chars_l").list.set_intersection(pl.col("chars_r")).list.len() > 0)
    ).to_series().to_numpy()


def candidate_pairs(prepared: pl.DataFrame, max_block_size: int, *, keys: HashedKeys | None = None,
                    touch: np.ndarray | None = None) -> tuple[pl.DataFrame, dict[str, int]]:
    """Deduplicated candidate pairs (record_id_l < record_id_r, `rules` = bit mask of the rules that
    found the pair, in BLOCKING_RULES order) and counts per rule.

    `keys`: hashed_keys(prepared) when the caller has them already. `touch` (a flag per row): only the pairs
    with at least one flagged row — an incremental night blocks its new records against every record that
    shares a key with one of them, which gives exactly the pairs a full run would find for them."""
    stats: dict[str, int] = {}
    valid = prepared["id18"].is_not_null().to_numpy()
    id_any = prepared["id_any"]
    hashes, suspects = keys if keys is not None else hashed_keys(prepared)
    frames = []
    for bit, rule in enumerate(BLOCKING_RULES):
        l_idx, r_idx, capped_blocks, capped_records = _rule_pairs(hashes[rule.name], suspects.get(rule.name),
                                                                  max_block_size, touch)
        if rule.name == "id_exact":
            keep = np.ones(len(l_idx), dtype=bool)
        elif rule.id_rule:
            keep = (id_any.gather(l_idx) != id_any.gather(r_idx)).fill_null(True).to_numpy()
            keep &= _names_may_agree(prepared, l_idx, r_idx)
        else:
            keep = ~(valid[l_idx] & valid[r_idx])
        pairs = pl.DataFrame({"row_l": l_idx[keep], "row_r": r_idx[keep]}, schema={"row_l": pl.Int64, "row_r": pl.Int64})
        stats[f"pairs_{rule.name}"] = pairs.height
        if capped_blocks:
            stats[f"capped_blocks_{rule.name}"] = capped_blocks
            stats[f"capped_records_{rule.name}"] = capped_records
        frames.append(pairs.with_columns(pl.lit(1 << bit, dtype=pl.Int64).alias("rules")))
    ids = prepared["record_id"]
    allpairs = (
        pl.concat(frames)
        .group_by("row_l", "row_r")
        .agg(pl.col("rules").sum())
        .sort("row_l", "row_r")
    )
    out = allpairs.select(
        ids.gather(allpairs["row_l"]).alias("record_id_l"),
        ids.gather(allpairs["row_r"]).alias("record_id_r"),
        "rules",
    ) if allpairs.height else pl.DataFrame(schema={"record_id_l": pl.Int64, "record_id_r": pl.Int64, "rules": pl.Int64})
    stats["candidate_pairs"] = out.height
    stats["capped_blocks"] = sum(v for k, v in stats.items() if k.startswith("capped_blocks_"))
    return out, stats
