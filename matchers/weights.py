"""Fellegi–Sunter match weights with m and u estimated from the data, and term-frequency adjustment.

For each field and agreement level, weight = log2(m / u):
- m = P(level | same person), u = P(level | two different people), both given that neither value is
  missing (a missing value weighs 0).
- u comes from random record pairs (nearly all of which are different people), add-one smoothed, with
  a documented floor (U_FLOOR) for agreements too rare to be seen in a sample (two IDs one slip
  apart), and a documented prior (PRIOR_U) for a field too few records carry.
- m for name, phone and address comes from *anchored* pairs: records sharing a valid ID, which are
  labelled matches whose names, phones and addresses were typed independently of the ID. Birth date,
  sex and region of such records are derived from the ID itself, so their m (and the m of the ID
  levels among records without a valid ID on both sides) is estimated by EM on the candidate pairs
  that are not both anchored, with u and the anchored m held fixed (as Splink does).
- Term frequencies replace u for exact agreement: u(张伟) = the share of people named 张伟 among those
  with a name, so a common name, a default birth date such as 1970-01-01, a village phone, a bare
  village address or a company as the other party weighs less than a rare one. A homophone weighs as
  its pinyin's frequency. Frequencies count people (records sharing a valid ID count once).
- A two-character name one character off (张伟/张芳: only the surname agrees) is estimated apart from
  one character off in a longer name (the model level one_char_short).
- Every m is blended with a documented prior worth PRIOR_PAIRS labelled pairs, so a tiny export or
  one without IDs still gets sane weights; on a county's data the estimates dominate.

The prior match probability is that of two random records: pairs sharing a valid ID over all pairs
of records with a valid ID (the EM share of the candidate pairs when no IDs are present).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from matchers.comparison import FIELDS, MODEL_LEVELS, address_tail, compare_pairs, model_level_column

__all__ = ["FSModel", "estimate_model", "score_pairs", "PRIOR_M", "LINKABLE_NAME_LEVELS"]

PRIOR_PAIRS = 50.0
"""Weight of the prior m distributions, in labelled pairs."""

PRIOR_M: dict[str, dict[str, float]] = {
    # Typical rates among true matches in government exports (given both values present): names are
    # retyped (homophone IME slips ~4 %, one wrong character ~4 %, swapped characters ~1 %); birth dates
    # are mistyped or recorded as year-month in ~6 %; people change phones and addresses between agencies.
    "name": {"exact": 0.87, "same_pinyin": 0.04, "transposed": 0.01, "one_char": 0.04, "one_char_short": 0.01,
             "different": 0.03},
    "id": {"agree": 0.90, "partial": 0.08, "disagree": 0.02},
    "birth_date": {"agree": 0.90, "partial": 0.06, "disagree": 0.04},
    "sex": {"agree": 0.98, "disagree": 0.02},
    "region": {"agree": 0.90, "partial": 0.05, "disagree": 0.05},
    "phone": {"agree": 0.60, "partial": 0.05, "disagree": 0.35},
    "address": {"agree": 0.40, "partial": 0.30, "disagree": 0.30},
    # the same case seen by the prosecutor and by the court names the same defendant / respondent
    "counterpart": {"agree": 0.80, "partial": 0.10, "disagree": 0.10},
}
U_FLOOR: dict[str, dict[str, float]] = {
    # Agreements so rare that a sample of random pairs may never show one; without a floor their u
    # would be 1/sample size, i.e. set by how many pairs we happened to draw.
    # Two people's numbers one keying slip apart: a number has ~170 one-slip neighbours among the
    # ~3·10^7 numbers a county's people hold (region × birth date × sequence), so ≈ 5·10^-6.
    "id": {"agree": 1e-6, "partial": 5e-6},
}
PRIOR_U: dict[str, dict[str, float]] = {
    # Used instead of the random-pair sample when it holds fewer than MIN_U_PAIRS pairs with both values
    # present (an export where only one source carries the field): two unrelated cases naming the same
    # other party is about as likely as two people sharing a full name, ~10^-3.
    "counterpart": {"agree": 1e-3, "partial": 1e-3, "disagree": 0.998},
}
M_CEILING: dict[str, dict[str, float]] = {
    # How often one person's records disagree outright (beyond a keying slip, a swapped day and month or a
    # missing day) on these, at most. EM cannot tell a person from a family at one address: the name and
    # address weights are fixed from ID-anchored pairs, so a father and son of one name at one house look
    # like one person whose birth dates and ID numbers disagree, and EM learns that one person's dates
    # disagree a fifth of the time (0.22 on the province sample, where the truth is 0.0002). Capped at
    # the prior's level, a disagreeing date, number or sex stays evidence of two people.
    "birth_date": {"disagree": 0.05},
    "id": {"disagree": 0.05},
    "sex": {"disagree": 0.05},
}
MIN_U_PAIRS = 200
ANCHORED_FIELDS = ("name", "phone", "address", "counterpart")
"""Fields whose m is estimated from pairs sharing a valid ID (their values do not come from the ID)."""
EM_FIELDS = ("id", "birth_date", "sex", "region")
TF_FIELDS = {"name": "name_value", "birth_date": "birth_value", "phone": "phone_value", "address": "address_value",
             "counterpart": "counterpart_value"}
"""Field → the pair column holding the agreed value, for term-frequency adjustment of exact agreement."""
_TF_SOURCE = {"name": "name", "pinyin": "pinyin", "birth_date": "birth", "phone": "phone", "address": "address",
              "counterpart": "counterpart"}
_EXACT = {"name": "exact"}
LINKABLE_NAME_LEVELS = ("exact", "same_pinyin", "transposed", "one_char")
"""Name levels under which two records without a shared valid ID can be linked at all (linking rule 4a);
one_char_short (张伟/张芳: only the surname agrees) and different names never are."""


@dataclass
class FSModel:
    """Estimated parameters of the match-weight model (counts-free; safe to log)."""

    m: dict[str, dict[str, float]]
    u: dict[str, dict[str, float]]
    prior: float
    tf: dict[str, pl.DataFrame] = field(repr=False)
    n_people: int = 0
    tf_floor: dict[str, float] = field(default_factory=dict)
    """Per field, the frequency of a value not in `tf` (a model stored without its rarest values; see
    pipeline.resolve_delta): the frequency a value held by one person has. Without it, 1 / n_people."""
    n_anchor_pairs: int = 0
    n_random_pairs: int = 0
    em_iterations: int = 0

    def level_weight(self, field_name: str, level: str) -> float:
        """log2(m/u) of one level without term-frequency adjustment (0 for missing)."""
        if level == "missing":
            return 0.0
        return math.log2(self.m[field_name][level] / self.u[field_name][level])


def _level_counts(compared: pl.DataFrame, field_name: str) -> dict[str, float]:
    col = model_level_column(field_name)
    counts = compared.group_by(col).len()
    got = dict(zip(counts[col].to_list(), counts["len"].to_list()))
    return {lvl: float(got.get(lvl, 0)) for lvl in MODEL_LEVELS[field_name] if lvl != "missing"}


def _smoothed(counts: dict[str, float], prior: dict[str, float] | None) -> dict[str, float]:
    """m from counts blended with the prior (PRIOR_PAIRS pseudo-pairs), or u add-one smoothed."""
    total = sum(counts.values())
    if prior is None:
        return {lvl: (c + 1.0) / (total + len(counts)) for lvl, c in counts.items()}
    return {lvl: (c + PRIOR_PAIRS * prior[lvl]) / (total + PRIOR_PAIRS) for lvl, c in counts.items()}


def _person_proxy() -> pl.Expr:
    """Who holds a value: the valid ID (hashed, top bit set) or else the record itself (its id, top bit clear).
    Integers hash and compare faster than the ID strings; two IDs sharing a 63-bit hash would merely count
    as one holder of a value in a frequency."""
    return (pl.when(pl.col("id18").is_null()).then(pl.col("record_id").cast(pl.UInt64))
            .otherwise(pl.col("id18").hash(seed=0) | pl.lit(1 << 63, dtype=pl.UInt64)))


def term_frequencies(prepared: pl.DataFrame) -> tuple[dict[str, pl.DataFrame], int]:
    """Per field, value → the chance that another person (with a value for the field) has this one:
    people holding it, less the one compared, over people with a value."""
    people = prepared.select(_person_proxy().alias("person"), *set(_TF_SOURCE.values()) - {"address"},
                             address_tail(pl.col("address")).alias("address"))
    n_people = max(people["person"].n_unique(), 1)
    out = {}
    for name, col in _TF_SOURCE.items():
        held = people.lazy().filter(pl.col(col).is_not_null()).select(col, "person").unique()
        n_with = max(held.select(pl.col("person").n_unique()).collect().item(), 1)
        # the pair compared holds the value itself: count the *other* people who hold it (at least one)
        out[name] = (
            held.group_by(col).agg(pl.len().alias("n"))
            .select(pl.col(col).alias("value"), (pl.max_horizontal(pl.col("n") - 1, 1) / n_with).alias("tf"))
            .collect()
        )
    return out, n_people


def _random_pairs(n: int, n_pairs: int, seed: int) -> pl.DataFrame:
    """Row-index pairs i < j: all pairs when there are few, else a seeded uniform sample."""
    total = n * (n - 1) // 2
    if total <= n_pairs:
        i, j = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        a = rng.integers(0, n, size=n_pairs)
        b = rng.integers(0, n - 1, size=n_pairs)
        b = b + (b >= a)  # uniform over the other records
        i, j = np.minimum(a, b), np.maximum(a, b)
    return pl.DataFrame({"i": i.astype(np.int64), "j": j.astype(np.int64)})


def _estimate_u(prepared: pl.DataFrame, n_pairs: int, seed: int) -> tuple[dict[str, dict[str, float]], int]:
    idx = _random_pairs(prepared.height, n_pairs, seed)
    # drawn by position in record_key order: the sample (hence u) is the same whatever ids the records got
    # (an incremental night keeps ids and appends new ones; a full build numbers them afresh)
    keys = prepared["record_key"]
    ids = prepared["record_id"].gather(keys.arg_sort()) if keys.null_count() == 0 else prepared["record_id"]
    pairs = pl.DataFrame({"record_id_l": ids.gather(idx["i"]), "record_id_r": ids.gather(idx["j"])})
    compared = compare_pairs(prepared, pairs)
    return {f: _u_from_counts(f, _level_counts(compared, f)) for f in FIELDS}, pairs.height


def _u_from_counts(field_name: str, counts: dict[str, float]) -> dict[str, float]:
    """u: add-one smoothed random-pair frequencies (PRIOR_U when too few), at least U_FLOOR, summing to 1."""
    if sum(counts.values()) < MIN_U_PAIRS and field_name in PRIOR_U:
        u = dict(PRIOR_U[field_name])
    else:
        u = _smoothed(counts, None)
    floors = U_FLOOR.get(field_name, {})
    u = {lvl: max(p, floors.get(lvl, 0.0)) for lvl, p in u.items()}
    total = sum(u.values())
    return {lvl: p / total for lvl, p in u.items()}


def _capped(m: dict[str, float], ceiling: dict[str, float]) -> dict[str, float]:
    """m with each capped level at most its ceiling, the excess shared by the other levels pro rata."""
    over = {lvl: m[lvl] - cap for lvl, cap in ceiling.items() if m[lvl] > cap}
    if not over:
        return m
    rest = {lvl: p for lvl, p in m.items() if lvl not in ceiling}
    scale = 1.0 + sum(over.values()) / sum(rest.values())
    return {lvl: ceiling[lvl] if lvl in over else p * scale if lvl in rest else p for lvl, p in m.items()}


def _em(uncertain: pl.DataFrame, m: dict[str, dict[str, float]], u: dict[str, dict[str, float]],
        max_iterations: int, tolerance: float = 1e-5) -> tuple[dict[str, dict[str, float]], float, int]:
    """EM over the distinct level patterns of the uncertain candidate pairs; updates the m of EM_FIELDS."""
    cols = [model_level_column(f) for f in FIELDS]
    patterns = uncertain.group_by(cols).len().sort(cols)  # a fixed order: sums, hence weights, reproducible
    if patterns.height == 0:
        return m, 0.0, 0
    count = patterns["len"].to_numpy().astype(float)
    levels = {f: patterns[model_level_column(f)].to_numpy() for f in FIELDS}
    m = {f: dict(v) for f, v in m.items()}
    lam, iteration = 0.1, 0
    for iteration in range(1, max_iterations + 1):
        log_bf = np.zeros(len(count))
        for f in FIELDS:
            table = {lvl: math.log2(m[f][lvl] / u[f][lvl]) for lvl in m[f]} | {"missing": 0.0}
            log_bf += np.vectorize(table.__getitem__, otypes=[float])(levels[f])
        odds = lam / (1 - lam) * np.exp2(np.clip(log_bf, -200, 200))
        post = odds / (1 + odds)
        weighted = post * count
        new_lam = float(np.clip(weighted.sum() / count.sum(), 1e-9, 1 - 1e-9))
        change = abs(new_lam - lam)
        for f in EM_FIELDS:
            counts = {lvl: float(weighted[levels[f] == lvl].sum()) for lvl in m[f]}
            new = _capped(_smoothed(counts, PRIOR_M[f]), M_CEILING.get(f, {}))
            change = max(change, max(abs(new[k] - m[f][k]) for k in new))
            m[f] = new
        lam = new_lam
        if change < tolerance:
            break
    return m, lam, iteration


def estimate_model(prepared: pl.DataFrame, compared: pl.DataFrame, *, u_pairs: int = 100_000,
                   seed: int = 0, em_iterations: int = 50) -> FSModel:
    """Estimate m, u, term frequencies and the prior from the records and their compared candidate pairs."""
    u, n_random = _estimate_u(prepared, u_pairs, seed)
    anchored = compared.filter(pl.col("both_valid") & (pl.col("id_level") == "agree"))
    m = {f: dict(PRIOR_M[f]) for f in FIELDS}
    for f in ANCHORED_FIELDS:
        m[f] = _smoothed(_level_counts(anchored, f), PRIOR_M[f])
    # EM learns from the pairs the weights will decide: two rows whose names could be one person's.
    # Over every candidate pair it mistakes a household for a person (same address, other names) and
    # learns that one person's birth dates, sexes and ID numbers disagree half the time.
    uncertain = compared.filter(~pl.col("both_valid") & pl.col("name_model_level").is_in(LINKABLE_NAME_LEVELS))
    m, em_lambda, iterations = _em(uncertain, m, u, em_iterations)
    tf, n_people = term_frequencies(prepared)

    n = prepared.height
    all_pairs = max(n * (n - 1) / 2, 1.0)
    id_counts = prepared.filter(pl.col("id18").is_not_null()).group_by("id18").len()["len"].to_numpy()
    n_id = int(id_counts.sum())
    same_id_pairs = float((id_counts * (id_counts - 1) / 2).sum())
    if n_id >= 2 and same_id_pairs > 0:
        prior = same_id_pairs / (n_id * (n_id - 1) / 2)
    else:  # no anchors: the matches EM finds among the candidate pairs, over all pairs
        prior = max(em_lambda * uncertain.height, 1.0) / all_pairs
    prior = min(max(prior, 1.0 / all_pairs), 0.5)
    return FSModel(m=m, u=u, prior=prior, tf=tf, n_people=n_people, n_anchor_pairs=anchored.height,
                   n_random_pairs=n_random, em_iterations=iterations)


def _tf_lookup(compared: pl.DataFrame, model: FSModel, tf_name: str, value_col: str) -> pl.Series:
    table = model.tf[tf_name]
    looked = compared.select(pl.col(value_col).alias("value")).join(table, on="value", how="left",
                                                                    maintain_order="left")
    return looked["tf"].fill_null(model.tf_floor.get(tf_name, 1.0 / max(model.n_people, 1)))


def score_pairs(compared: pl.DataFrame, model: FSModel, *, tf_adjust: bool = True) -> pl.DataFrame:
    """The compared pairs with `<field>_weight`, `match_weight` (log2 Bayes factor incl. the prior) and
    `match_probability`."""
    weight_cols = []
    for f in FIELDS:
        table = {lvl: model.level_weight(f, lvl) for lvl in MODEL_LEVELS[f]}
        base = pl.col(model_level_column(f)).replace_strict(table, return_dtype=pl.Float64)
        if tf_adjust and f in TF_FIELDS:
            exact = _EXACT.get(f, "agree")
            tf = _tf_lookup(compared, model, f, TF_FIELDS[f])
            tf_weight = math.log2(model.m[f][exact]) - np.log2(tf.to_numpy())
            base = pl.when(pl.col(f"{f}_level") == exact).then(pl.Series(tf_weight)).otherwise(base)
            if f == "name":  # a homophone is as rare as its pinyin: 张伟/张玮 share zhangwei with many
                py = _tf_lookup(compared, model, "pinyin", "pinyin_value")
                py_weight = math.log2(model.m["name"]["same_pinyin"]) - np.log2(py.to_numpy())
                base = pl.when(pl.col("name_level") == "same_pinyin").then(pl.Series(py_weight)).otherwise(base)
        weight_cols.append(base.alias(f"{f}_weight"))
    prior_weight = math.log2(model.prior / (1 - model.prior))
    scored = compared.with_columns(weight_cols)
    return scored.with_columns(
        (pl.lit(prior_weight) + pl.sum_horizontal([f"{f}_weight" for f in FIELDS])).alias("match_weight"),
    ).with_columns(
        (1.0 / (1.0 + pl.lit(2.0).pow(-pl.col("match_weight")))).alias("match_probability"),
    )
