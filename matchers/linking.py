"""Person resolution: which records, across and within sources, are the same person — and why.

    resolution = resolve_people(records)          # records: schemas.records columns
    resolution.links      # one row per linked pair, with per-field levels, weights and evidence_zh
    resolution.clusters   # record_id → person_id, every record exactly once
    resolution.households # person_id, household_person_id, relation, basis
    resolution.stats      # counts only

Steps: blocking (matchers.blocking) → comparison levels (matchers.comparison) → Fellegi–Sunter
weights with m/u estimated from the data (matchers.weights) → the link rules below → clusters with
a guard (matchers.clustering) → households (matchers.households).

Link rules (hard rules first; the weights decide only what the rules leave open):
1. Two valid IDs agree → link ('id_exact') — unless the names are not one slip apart (not exact,
   homophone, swapped, one of 3+ characters, or one name inside the other such as a truncated minority
   name): that is a family member's number typed into the row (a child under a parent's ID), not
   linked and counted in stats['id_agree_name_different'].
2. Two different valid IDs → never linked, unless one keying slip (one character, or two neighbours
   swapped; for an upgraded 15-digit number, in the body) explains them AND the names agree (exact or
   homophone) AND the birth dates agree AND the match probability reaches the threshold (a disagreeing
   phone and address say: two namesakes born the same day with neighbouring numbers) → 'id_typo'.
3. A mistyped ID (fails its check) one slip from the other record's ID, names agreeing (exact,
   homophone or two characters swapped) and birth dates not contradicting → 'id_typo'.
4. Otherwise (at most one valid ID) a probabilistic link needs all of:
   a. names at most one slip apart: exact / same_pinyin / transposed, or one_char in a name of 3+
      characters (张伟/张芳 share only the surname);
   b. an identity anchor: birth dates agree or nearly agree, or the IDs agree or are one slip apart,
      or an exact / homophone name with the same phone, the same address or the same other party of
      the case (defendant / respondent);
   c. corroboration — phone, address, region or other party agreeing (at least partially), or ID
      evidence — whenever the name or the birth date is itself one slip off, and for every link when
      LinkSettings.require_corroboration is set. Same name + birth year never links (the dates
      disagree, or nearly agree and need corroboration); same name alone never anchors;
   d. no conflict: two rows of one subsistence household or one victims case file are two people when
      their names differ (beyond a homophone) or their roles differ (户主/子女, victim/relative); names
      that only sound the same under two sexes (子文 / 子雯) are a brother and a sister; and birth dates
      more than a year apart are two people (a father and son of one name), not a date keyed wrong
      (a mistyped ID's date part counts as a birth date here, for comparison only);
   e. match probability ≥ LinkSettings.match_probability (0.99). With an exact name and an exact birth
      date and nothing else, this is where term frequencies decide: a rare name born on an ordinary day
      can reach it, 张伟 or a 1 January birth date cannot, and a disagreeing phone, address or sex
      weighs against.
Clusters never join two different valid IDs, nor the two sides of a conflict (matchers.clustering).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from matchers.blocking import candidate_pairs, folded_keys, hashed_keys
from matchers.clustering import cluster_records
from matchers.comparison import FIELDS, compare_pairs, prepare_records
from matchers.households import household_relations
from matchers.weights import LINKABLE_NAME_LEVELS, FSModel, estimate_model, score_pairs

__all__ = ["LinkSettings", "Resolution", "resolve_people", "decide_pairs", "LINK_COLUMNS", "Meter", "Compare"]

LINK_COLUMNS: tuple[str, ...] = (
    "record_id_l", "record_id_r", "method", "match_weight", "match_probability",
    *[c for f in FIELDS for c in (f"{f}_level", f"{f}_weight")], "evidence_zh",
)


class LinkSettings(BaseModel):
    """Tunable parts of resolution; defaults are what the nightly run uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match_probability: float = Field(0.99, gt=0.5, lt=1.0, description="probabilistic links below this are not made")
    max_block_size: int = Field(5000, ge=10, description="blocks larger than this are skipped and counted")
    require_corroboration: bool = Field(
        False, description="rule 4c for every probabilistic link: even an exact name and birth date need a phone, "
                           "address or region agreeing")
    tf_adjust: bool = Field(True, description="term-frequency adjustment of exact agreement")
    u_sample_pairs: int = Field(100_000, ge=1000, description="random pairs used to estimate u (100k and 400k give "
                                "identical links on the 300k and 5M generated areas; 400k cost 3 s more)")
    em_max_iterations: int = Field(50, ge=1)
    seed: int = Field(20240601, description="seed of the random-pair sample (results are deterministic)")


@dataclass
class Resolution:
    links: pl.DataFrame
    clusters: pl.DataFrame
    households: pl.DataFrame
    stats: dict[str, int]
    cut_links: pl.DataFrame = field(default_factory=pl.DataFrame)
    """Links made by the rules but cut by the cluster guard (same columns as links)."""
    model: FSModel | None = field(default=None, repr=False)
    """The estimated model, term frequencies included (they hold names and phones: the caller stores them in
    the database beside the records or drops them; they go nowhere else)."""
    cannot_link: pl.DataFrame = field(default_factory=pl.DataFrame)
    """Pairs the rules keep apart (rule 4d), which the cluster guard enforces: (record_id_l, record_id_r)."""
    block_keys: pl.DataFrame = field(default_factory=pl.DataFrame)
    """Per record, its blocking keys folded to 32 bits (matchers.blocking.folded_keys): lets a later night find
    the stored records that share a block with new ones without preparing every record again."""


_NAME_TWO_WAY = ("exact", "same_pinyin")
_NAME_ID_TYPO = ("exact", "same_pinyin", "transposed")
_NAME_PROBABILISTIC = LINKABLE_NAME_LEVELS
"""name_model_level values; one_char_short (张伟/张芳: only the surname agrees) never links without an ID"""
_AGREEISH = ("agree", "partial")


def _level(f: str) -> pl.Expr:
    return pl.col(f"{f}_level")


def _conflict() -> pl.Expr:
    """Rule 4d: two rows of one household roll or one case file that are two people (different names,
    or different roles: 户主 and 子女, victim and relative)."""
    name = _level("name")
    return (pl.col("same_household") | pl.col("same_case")) & (~name.is_in(_NAME_TWO_WAY) | pl.col("different_roles"))


def _decide(scored: pl.DataFrame, settings: LinkSettings) -> pl.DataFrame:
    """Adds `method` (null when no link) following the link rules of the module docstring."""
    name, idl, birth = _level("name"), _level("id"), _level("birth_date")
    conflict = _conflict()
    # a family member's ID typed into the row (a child under a parent's number, 王志 under 王娜's):
    # same ID, names that are not one slip apart — not linked, counted
    name_compatible = name.is_in([*_NAME_ID_TYPO, "missing"]) | pl.col("name_nested") \
        | (pl.col("name_model_level") == "one_char")
    id_exact = pl.col("both_valid") & (idl == "agree") & name_compatible
    # two valid numbers one slip apart are also two namesakes born the same day in one county (neighbouring
    # sequence numbers are registered together): the other fields must not say otherwise
    id_typo_valid = (pl.col("both_valid") & (idl == "partial") & name.is_in(_NAME_TWO_WAY) & (birth == "agree")
                     & (pl.col("match_probability") >= settings.match_probability))
    id_typo_mistyped = (~pl.col("both_valid") & (idl == "partial") & name.is_in(_NAME_ID_TYPO)
                        & (birth != "disagree") & ~conflict)
    household_fact = (_level("phone") == "agree") | _level("address").is_in(_AGREEISH) \
        | _level("counterpart").is_in(_AGREEISH)
    corroborated = idl.is_in(_AGREEISH) | _level("phone").is_in(_AGREEISH) | _level("address").is_in(_AGREEISH) \
        | _level("region").is_in(_AGREEISH) | _level("counterpart").is_in(_AGREEISH)
    anchor = birth.is_in(_AGREEISH) | idl.is_in(_AGREEISH) | (name.is_in(_NAME_TWO_WAY) & household_fact)
    # a name or birth date that is itself one slip off, or a strict setting, needs a fact beyond name + birth
    needs_more = (birth != "agree") | ~name.is_in(_NAME_TWO_WAY) | pl.lit(settings.require_corroboration)
    # 子文 and 子雯, 伟 and 薇: a name that only sounds the same, under another sex, is a brother and a sister
    siblings = (name == "same_pinyin") & (_level("sex") == "disagree")
    # 钟伟 born 1958 and 钟伟 born 1984 at one house are a father and his son, whatever else they share
    generations = pl.col("born_years_apart")
    probabilistic = (~pl.col("both_valid") & pl.col("name_model_level").is_in(_NAME_PROBABILISTIC) & anchor & ~siblings
                     & ~generations
                     & (corroborated | ~needs_more) & ~conflict
                     & (pl.col("match_probability") >= settings.match_probability))
    return scored.with_columns(
        pl.when(id_exact).then(pl.lit("id_exact"))
        .when(id_typo_valid | id_typo_mistyped).then(pl.lit("id_typo"))
        .when(probabilistic).then(pl.lit("probabilistic"))
        .otherwise(pl.lit(None, dtype=pl.String)).alias("method"),
        (pl.col("both_valid") & (idl == "agree") & ~name_compatible).alias("id_name_conflict"),
        conflict.alias("cannot_link"),
    )


_PHRASES: dict[str, dict[str, str]] = {
    "name": {"exact": "姓名一致", "same_pinyin": "姓名同音", "transposed": "姓名字序颠倒", "one_char": "姓名仅一字不同"},
    "birth_date": {"agree": "出生日期一致", "partial": "出生日期相近（疑似录入错误）"},
    "phone": {"agree": "电话一致", "partial": "电话仅一位不同"},
    "address": {"agree": "住址一致", "partial": "住址相近"},
    "region": {"agree": "户籍地区划一致", "partial": "户籍地同一地市"},
    "counterpart": {"agree": "案件对方当事人一致", "partial": "案件对方当事人之一一致"},
}
_CONTRADICTIONS = {"name": ("different", "姓名"), "birth_date": ("disagree", "出生日期"),
                   "sex": ("disagree", "性别"), "phone": ("disagree", "电话"), "address": ("disagree", "住址")}


def _phrase(f: str) -> pl.Expr:
    return _level(f).replace_strict(_PHRASES[f], default=None, return_dtype=pl.String)


def _evidence() -> pl.Expr:
    """A short Chinese sentence: the agreeing evidence, then what contradicts, e.g.
    '身份证号仅一位不同（疑似录入错误）、姓名一致、出生日期一致' or '姓名同音、出生日期一致、电话一致；不一致：住址'."""
    id_phrase = (
        pl.when(_level("id") == "agree").then(
            pl.when(pl.col("both_valid")).then(pl.lit("身份证号一致")).otherwise(pl.lit("身份证号相同（均未通过校验）")))
        .when(_level("id") == "partial").then(
            pl.when(pl.col("id_typo") == "adjacent_transposition").then(pl.lit("身份证号相邻两位颠倒（疑似录入错误）"))
            .otherwise(pl.lit("身份证号仅一位不同（疑似录入错误）")))
    )
    positives = pl.concat_list([id_phrase, *[_phrase(f) for f in _PHRASES]]).list.drop_nulls().list.join("、")
    negatives = pl.concat_list(
        [pl.when(_level(f) == bad).then(pl.lit(label)) for f, (bad, label) in _CONTRADICTIONS.items()]
    ).list.drop_nulls().list.join("、")
    full = pl.when(negatives.str.len_chars() > 0).then(positives + pl.lit("；不一致：") + negatives).otherwise(positives)
    name_note = pl.when(_level("name") == "exact").then(pl.lit("")).when(pl.col("name_nested")).then(
        pl.lit("、姓名部分一致（一方为简写）")).otherwise(
        pl.lit("、") + _level("name").replace_strict(
            {**_PHRASES["name"], "different": "姓名不同", "missing": "姓名缺失"}, default="", return_dtype=pl.String))
    return pl.when(pl.col("method") == "id_exact").then(pl.lit("身份证号一致") + name_note).otherwise(full).alias("evidence_zh")


def _empty_links() -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {"record_id_l": pl.Int64, "record_id_r": pl.Int64, "method": pl.String,
                                      "match_weight": pl.Float64, "match_probability": pl.Float64}
    for f in FIELDS:
        schema[f"{f}_level"] = pl.String
        schema[f"{f}_weight"] = pl.Float64
    schema["evidence_zh"] = pl.String
    return pl.DataFrame(schema=schema)


Meter = Callable[[str], AbstractContextManager[object]]
"""meter('block' | 'compare' | 'cluster') wraps a step of resolution, e.g. to time it (pipeline.bench)."""


def _no_meter(step: str) -> AbstractContextManager[object]:
    return nullcontext()


Compare = Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]
"""compare(prepared, pairs) → matchers.comparison.compare_pairs's frame, rows in the order of `pairs`;
pairs are compared independently, so this may cut them into pieces and fan out (flows.distributed)."""


def resolve_people(records: pl.DataFrame, settings: LinkSettings | None = None, meter: Meter = _no_meter,
                   compare: Compare = compare_pairs, *, households: bool = True) -> Resolution:
    """Resolve the records into people: links with evidence, clusters, households and counts.

    `households=False` leaves the household relations empty, for a caller that merges more links into the
    clusters first (pipeline.run: case context) and works them out then."""
    settings = settings or LinkSettings()
    with meter("block"):
        prepared = prepare_records(records)
        if prepared["record_id"].n_unique() != prepared.height:
            raise ValueError("records.record_id must be unique")
        keys = hashed_keys(prepared)
        pairs, stats = candidate_pairs(prepared, settings.max_block_size, keys=keys)
        stats["records"] = prepared.height
    with meter("compare"):
        compared = compare(prepared, pairs)
        model = None
        links = _empty_links()
        cannot_link = pl.DataFrame(schema={"record_id_l": pl.Int64, "record_id_r": pl.Int64})
        if compared.height:
            model = estimate_model(prepared, compared, u_pairs=settings.u_sample_pairs, seed=settings.seed,
                                   em_iterations=settings.em_max_iterations)
            links, cannot_link, conflicts = decide_pairs(compared, model, settings)
            stats.update(anchor_pairs=model.n_anchor_pairs, random_pairs=model.n_random_pairs,
                         em_iterations=model.em_iterations, id_agree_name_different=conflicts)
    with meter("cluster"):
        clusters, cut = cluster_records(prepared, links, cannot_link)
        if cut.height:
            cut_keys = cut.select("record_id_l", "record_id_r")
            links = links.join(cut_keys, on=["record_id_l", "record_id_r"], how="anti")
        links = links.sort("record_id_l", "record_id_r")
        relations = household_relations(records, clusters) if households else \
            pl.DataFrame(schema={"person_id": pl.String, "household_person_id": pl.String, "relation": pl.String,
                                 "basis": pl.String})
    for method in ("id_exact", "id_typo", "probabilistic"):
        stats[f"links_{method}"] = int((links["method"] == method).sum())
    stats.update(links=links.height, links_cut_by_guard=cut.height, cannot_link_pairs=cannot_link.height,
                 clusters=clusters["person_id"].n_unique(),
                 household_relations=relations.height)
    return Resolution(links=links, clusters=clusters, households=relations, stats=stats, cut_links=cut, model=model,
                      cannot_link=cannot_link, block_keys=folded_keys(prepared["record_id"], keys))


def decide_pairs(compared: pl.DataFrame, model: FSModel,
                 settings: LinkSettings) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Weights, link rules and evidence for compared pairs: (links in LINK_COLUMNS, the pairs the rules keep
    apart, the number of pairs sharing a valid ID under names that are not one slip apart)."""
    decided = _decide(score_pairs(compared, model, tf_adjust=settings.tf_adjust), settings)
    links = decided.filter(pl.col("method").is_not_null()).with_columns(_evidence()).select(LINK_COLUMNS)
    cannot_link = decided.filter(pl.col("cannot_link")).select("record_id_l", "record_id_r")
    return links, cannot_link, int(decided["id_name_conflict"].sum())
