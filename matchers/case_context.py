"""Links from case context: a 终本 applicant is the victim (or a relative) of the criminal case it enforces.

Court enforcement exports often carry no usable applicant ID. What they do carry is the case: the
respondent (被执行人) is the offender and the basis (执行依据) is the criminal judgment. An applicant
whose name agrees with a victim-file person of a case (exact or homophone), where the respondent is
that case's defendant, or the basis names that case, is the same person: two namesakes suing
namesake offenders is far rarer than any typo. Different valid IDs on both sides still veto.

Both steps run on whole columns: names are parsed once per distinct cell (matchers.names.parse_names),
candidates come from joins, and clusters merge by connected components; only a component where
people with different IDs meet is merged link by link.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import polars as pl

from matchers.clustering import component_labels
from matchers.names import one_party_mask, parse_names, split_parties

__all__ = ["case_context_links", "merge_links_into_clusters"]

_CASE_NO_NOISE = re.compile(r"[\s()（）〔〕\[\]【】]")
# Case numbers _case_key can clean in polars: printable ASCII, spaces, CJK ideographs and the brackets
# it removes. NFKC leaves all of these alone but the full-width parentheses, which are removed either way.
_PLAIN_CASE_NO = r"^[\x20-\x7E\u4e00-\u9fff（）〔〕【】]*$"
_PLAIN_NOISE = r"[ ()（）〔〕\[\]【】]"

_MIDDLE_DOT = "\u00b7"
_SCHEMA = {"record_id_l": pl.Int64, "record_id_r": pl.Int64, "method": pl.String,
           "match_weight": pl.Float64, "match_probability": pl.Float64, "evidence_zh": pl.String}
# How a candidate was found, by precedence: the basis names the case, the respondent is the case's defendant,
# the respondent is another 终本 case's respondent.
_WHY = {0: "执行依据为本案", 1: "被执行人即本案被告人", 2: "同一被执行人的终本案件"}


def _case_key(text: object) -> str | None:
    if text is None:
        return None
    key = _CASE_NO_NOISE.sub("", unicodedata.normalize("NFKC", str(text)))
    return key or None


def _case_keys(values: pl.Series) -> pl.Series:
    """`_case_key` of each value: plain case numbers in polars, any other distinct value in Python."""
    texts = values.cast(pl.String)
    plain = texts.str.contains(_PLAIN_CASE_NO).fill_null(True)
    other = texts.filter(~plain).unique()
    mapped = dict(zip(other.to_list(), (_case_key(v) for v in other.to_list())))
    cleaned = texts.str.replace_all(_PLAIN_NOISE, "")
    return (pl.DataFrame({"text": texts, "plain": plain, "cleaned": cleaned}).select(
        pl.when(pl.col("plain")).then(pl.col("cleaned").replace("", None))
        .otherwise(pl.col("text").replace_strict(mapped, default=None, return_dtype=pl.String))
    ).to_series().alias("case_key"))


_PROVINCES = list("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼港澳台")


def _province(case_keys: pl.Series) -> pl.Expr:
    """The province a case number names, when it says: a court's number after its year ((2023)闽0425刑初…), a
    procuratorate's first (闽大检刑诉〔2023〕…); null otherwise."""
    court = case_keys.str.extract(r"^\d{4}(\p{Han})", 1)
    first = case_keys.str.slice(0, 1)
    return (pl.when(court.is_in(_PROVINCES)).then(court).when(first.is_in(_PROVINCES)).then(first)
            .otherwise(None).alias("province"))


def _party_cells(cells: pl.Series) -> pl.DataFrame:
    """(cell, party): the parties `split_parties` finds in each distinct cell."""
    distinct = cells.cast(pl.String).drop_nulls().unique()
    single = one_party_mask(distinct)
    several = [(cell, part) for cell in distinct.filter(~single).to_list() for part in split_parties(cell)]
    split = pl.DataFrame(several, schema={"cell": pl.String, "party": pl.String}, orient="row")
    alone = distinct.filter(single)
    return pl.concat([pl.DataFrame({"cell": alone, "party": alone}), split])


def _parsed(texts: pl.Series) -> pl.DataFrame:
    """(text, name, core, pinyin) per distinct text: parse_name's name, the name without middle dots, the pinyin key."""
    distinct = texts.drop_nulls().unique()
    parsed = parse_names(distinct)
    return pl.DataFrame({"text": distinct, "name": parsed["name"], "pinyin": parsed["pinyin"]}).with_columns(
        pl.col("name").str.replace_all(_MIDDLE_DOT, "", literal=True).alias("core"))


def case_context_links(records: pl.DataFrame, victim_facts: pl.DataFrame, enforcement_facts: pl.DataFrame) -> pl.DataFrame:
    """Applicant ↔ case-party record pairs supported by the case (method 'case_context').

    Parties of a case are victim-file rows (victim or relative; the other party is the defendant) and
    other 终本 rows (the other party is the respondent). The other parties are compared by pinyin, so a
    homophone slip in the defendant's name (李明华 / 李明骅) does not hide the case.

    A pair found by the other party's name alone is not made when the two case numbers name different
    provinces (a court's number after its year, a procuratorate's first: 闽, 浙 …; the 终本 case's own number,
    else the judgment it enforces): namesakes suing namesake offenders do meet across a country.

    Columns used: records (record_id, name, id18), victim_facts (record_id, case_no, defendant_name),
    enforcement_facts (record_id, respondent_name, origin_case_no, and enforcement_case_no when present);
    when one pair is found by several 终本 rows, the evidence is the first row's.
    """
    if enforcement_facts.height == 0:
        return pl.DataFrame(schema=_SCHEMA)
    origin = _case_keys(enforcement_facts["origin_case_no"])
    # where the enforcement runs: its own case number, else the judgment it enforces
    own = _case_keys(enforcement_facts["enforcement_case_no"]) if "enforcement_case_no" in enforcement_facts.columns \
        else pl.Series([None] * enforcement_facts.height, dtype=pl.String)
    enforcement = enforcement_facts.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), pl.col("record_id").alias("applicant"),
        pl.col("respondent_name").cast(pl.String).alias("cell"), origin,
        pl.select(pl.coalesce(pl.select(_province(own)).to_series(), pl.select(_province(origin)).to_series()))
        .to_series().alias("province"),
    ).filter(pl.col("applicant").is_not_null())
    case_keys = _case_keys(victim_facts["case_no"])
    victims = victim_facts.select(
        pl.col("record_id").alias("other"), pl.col("defendant_name").cast(pl.String).alias("cell"), case_keys,
        pl.select(_province(case_keys)).to_series(),
    ).filter(pl.col("other").is_not_null())

    cells = _party_cells(pl.concat([victims["cell"], enforcement["cell"]]))
    involved = pl.concat([victims["other"], enforcement["applicant"]]).unique()  # every applicant and party
    names = records.select("record_id", pl.col("name").cast(pl.String), "id18").filter(
        pl.col("record_id").is_in(involved.implode()))
    parsed = _parsed(pl.concat([cells["party"], names["name"]]))
    keys = cells.join(parsed.select(pl.col("text").alias("party"), pl.col("pinyin").alias("key")), on="party") \
        .filter(pl.col("key") != "").select("cell", "key").unique()
    parties = pl.concat([
        victims.select("other", "cell", pl.lit(1).alias("why"), "province"),
        enforcement.select(pl.col("applicant").alias("other"), "cell", pl.lit(2).alias("why"), "province"),
    ]).join(keys, on="cell").select("key", "other", "why", pl.col("province").alias("other_province"))
    # a namesake offender in another province is another case: the two case numbers name different provinces
    # (ten provinces of generated data: three quarters of the false links were such pairs)
    by_party = enforcement.join(keys, on="cell").join(parties, on="key").filter(
        pl.col("province").is_null() | pl.col("other_province").is_null()
        | (pl.col("province") == pl.col("other_province"))).select("row", "applicant", "other", "why")
    by_case = enforcement.filter(pl.col("case_key").is_not_null()).join(
        victims.filter(pl.col("case_key").is_not_null()).select("case_key", "other"), on="case_key",
    ).select("row", "applicant", "other", pl.lit(0).alias("why"))
    candidates = (
        pl.concat([by_case, by_party]).filter(pl.col("other") != pl.col("applicant"))
        .group_by("row", "applicant", "other").agg(pl.col("why").min())
    )

    person = names.rename({"name": "text"}).join(parsed, on="text", how="left").drop("text")
    pairs = (
        candidates
        .join(person.select(pl.col("record_id").alias("applicant"), pl.all().exclude("record_id").name.suffix("_a")),
              on="applicant")
        .join(person.select(pl.col("record_id").alias("other"), pl.all().exclude("record_id").name.suffix("_b")),
              on="other")
    )
    has_id = (pl.col("id18_a").fill_null("") != "") & (pl.col("id18_b").fill_null("") != "")
    exact = pl.col("core_a") == pl.col("core_b")
    homophone = ((pl.col("core_a").str.len_chars() == pl.col("core_b").str.len_chars())
                 & (pl.col("pinyin_a").fill_null("") != "") & (pl.col("pinyin_a") == pl.col("pinyin_b")))
    named = (pl.col("name_a").fill_null("") != "") & (pl.col("name_b").fill_null("") != "")
    accepted = pairs.filter(~(has_id & (pl.col("id18_a") != pl.col("id18_b"))) & named & (exact | homophone))
    if accepted.height == 0:
        return pl.DataFrame(schema=_SCHEMA)
    evidence = (pl.when(exact).then(pl.lit("姓名一致")).otherwise(pl.lit("姓名同音")) + pl.lit("、")
                + pl.col("why").replace_strict(_WHY, return_dtype=pl.String) + pl.lit("（终本申请执行人即同一案件当事人）"))
    return (
        accepted.select(
            "row", pl.min_horizontal("applicant", "other").alias("record_id_l"),
            pl.max_horizontal("applicant", "other").alias("record_id_r"), evidence.alias("evidence_zh"),
        )
        .sort("row").unique(["record_id_l", "record_id_r"], keep="first")  # the first 终本 row that found the pair
        .with_columns(pl.lit("case_context").alias("method"), pl.lit(20.0).alias("match_weight"),
                      pl.lit(0.999).alias("match_probability"))
        .select(list(_SCHEMA)).sort(["record_id_l", "record_id_r"])
    )


def merge_links_into_clusters(clusters: pl.DataFrame, extra: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Join clusters along extra links, never merging two clusters that hold different valid IDs.

    A group of clusters joined by extra links takes the smallest person_id among them. Where people
    with different IDs meet in one group, the links are taken in order (by record ids) and a link that
    would join two different IDs is skipped.
    """
    if extra.height == 0:
        return clusters
    person_of = clusters.select("record_id", "person_id")
    ends = extra.select("record_id_l", "record_id_r").with_row_index("link").join(
        person_of.rename({"record_id": "record_id_l", "person_id": "person_l"}), on="record_id_l"
    ).join(person_of.rename({"record_id": "record_id_r", "person_id": "person_r"}), on="record_id_r").sort("link")
    touched = pl.concat([ends["person_l"], ends["person_r"]]).unique().sort()
    a = touched.search_sorted(ends["person_l"]).to_numpy()
    b = touched.search_sorted(ends["person_r"]).to_numpy()
    group = component_labels(len(touched), a, b)

    held = (  # (person_id, id18): the valid IDs of each touched person's records
        person_of.filter(pl.col("person_id").is_in(touched.implode()))
        .join(records.select("record_id", "id18").filter(pl.col("id18").fill_null("") != ""), on="record_id")
        .select("person_id", "id18")
    )
    ids = held.group_by("person_id").agg(pl.col("id18").unique().sort().str.join("\n").alias("ids"))
    people = pl.DataFrame({"person_id": touched, "group": group}).join(ids, on="person_id", how="left")
    vetoed = (people.filter(pl.col("ids").is_not_null()).group_by("group").agg(pl.col("ids").n_unique())
              .filter(pl.col("ids") > 1)["group"].to_numpy())
    root = touched.gather(group)  # a group without two different IDs merges whole, into its smallest person_id
    if len(vetoed):
        ordered = _merge_in_order(ends.filter(pl.Series(np.isin(group[a], vetoed))), held)
        root = root.scatter(touched.search_sorted(pl.Series(list(ordered), dtype=pl.String)).to_numpy(),
                            pl.Series(list(ordered.values()), dtype=pl.String))
    return clusters.with_columns(pl.col("person_id").replace(touched, root))


def _merge_in_order(ends: pl.DataFrame, held: pl.DataFrame) -> dict[str, str]:
    """person_id → merged person_id, taking the links one by one and skipping those that join two different IDs."""
    people = set(ends["person_l"].to_list()) | set(ends["person_r"].to_list())
    ids_of: dict[str, set[str]] = {}
    for person, id18 in held.filter(pl.col("person_id").is_in(list(people))).iter_rows():
        ids_of.setdefault(person, set()).add(id18)
    parent: dict[str, str] = {}

    def find(p: str) -> str:
        while parent.get(p, p) != p:
            p = parent[p]
        return p

    for left, right in ends.select("person_l", "person_r").iter_rows():
        a, b = find(left), find(right)
        if a == b:
            continue
        ia, ib = ids_of.get(a, set()), ids_of.get(b, set())
        if ia and ib and ia != ib:
            continue
        keep, gone = sorted((a, b))
        parent[gone] = keep
        ids_of[keep] = ia | ib
    return {p: find(p) for p in people}
