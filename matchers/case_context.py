"""Links from case context: a 终本 applicant is the victim (or a relative) of the criminal case it enforces.

Court enforcement exports often carry no usable applicant ID. What they do carry is the case: the
respondent (被执行人) is the offender and the basis (执行依据) is the criminal judgment. An applicant
whose name agrees with a victim-file person of a case (exact or homophone), where the respondent is
that case's defendant, or the basis names that case, is the same person: two namesakes suing
namesake offenders is far rarer than any typo. Different valid IDs on both sides still veto.
"""

from __future__ import annotations

from typing import Any

import re
import unicodedata

import polars as pl

from matchers.names import NameAgreement, compare_names, parse_name, split_parties

__all__ = ["case_context_links", "merge_links_into_clusters"]

_ACCEPTED = {NameAgreement.EXACT, NameAgreement.SAME_PINYIN}
_CASE_NO_NOISE = re.compile(r"[\s()（）〔〕\[\]【】]")


def _case_key(text: object) -> str | None:
    if text is None:
        return None
    key = _CASE_NO_NOISE.sub("", unicodedata.normalize("NFKC", str(text)))
    return key or None


def case_context_links(records: pl.DataFrame, victim_facts: pl.DataFrame, enforcement_facts: pl.DataFrame) -> pl.DataFrame:
    """Applicant ↔ case-party record pairs supported by the case (method 'case_context').

    Parties of a case are victim-file rows (victim or relative; the other party is the defendant) and
    other 终本 rows (the other party is the respondent). The other parties are compared by pinyin, so a
    homophone slip in the defendant's name (李明华 / 李明骅) does not hide the case.
    """
    schema = {"record_id_l": pl.Int64, "record_id_r": pl.Int64, "method": pl.String,
              "match_weight": pl.Float64, "match_probability": pl.Float64, "evidence_zh": pl.String}
    if enforcement_facts.height == 0:
        return pl.DataFrame(schema=schema)
    by_id = {r["record_id"]: r for r in records.select("record_id", "name", "id18").to_dicts()}
    parties: dict[str, list[tuple[int, str]]] = {}
    by_case: dict[str, list[int]] = {}
    parsed: dict[object, Any] = {}
    key_cache: dict[object, set[str]] = {}

    def parse(name: object) -> Any:  # a province repeats names: parse each once
        if name not in parsed:
            parsed[name] = parse_name(name)
        return parsed[name]

    def keys(names: object) -> set[str]:
        if names not in key_cache:
            key_cache[names] = {k for k in (parse(n).pinyin for n in split_parties(names)) if k}
        return key_cache[names]

    for v in victim_facts.iter_rows(named=True):
        for key in keys(v["defendant_name"]):
            parties.setdefault(key, []).append((v["record_id"], "被执行人即本案被告人"))
        case = _case_key(v["case_no"])
        if case:
            by_case.setdefault(case, []).append(v["record_id"])
    for e in enforcement_facts.iter_rows(named=True):
        if e["record_id"] is not None:
            for key in keys(e["respondent_name"]):
                parties.setdefault(key, []).append((e["record_id"], "同一被执行人的终本案件"))
    pairs: list[tuple[int, int, str]] = []
    for e in enforcement_facts.iter_rows(named=True):
        rid = e["record_id"]
        if rid is None:
            continue
        candidates: dict[int, str] = {}
        for key in keys(e["respondent_name"]):
            for other, why in parties.get(key, []):
                candidates.setdefault(other, why)
        for other in by_case.get(_case_key(e["origin_case_no"]) or "", []):
            candidates[other] = "执行依据为本案"
        candidates.pop(rid, None)
        applicant = by_id[rid]
        a_name = parse(applicant["name"])
        for other, why in candidates.items():
            party = by_id[other]
            if applicant["id18"] and party["id18"] and applicant["id18"] != party["id18"]:
                continue
            agreement = compare_names(a_name, parse(party["name"]))
            if agreement not in _ACCEPTED:
                continue
            name_zh = "姓名一致" if agreement is NameAgreement.EXACT else "姓名同音"
            pairs.append((min(rid, other), max(rid, other), f"{name_zh}、{why}（终本申请执行人即同一案件当事人）"))
    if not pairs:
        return pl.DataFrame(schema=schema)
    frame = pl.DataFrame(pairs, schema=["record_id_l", "record_id_r", "evidence_zh"], orient="row")
    return frame.unique(["record_id_l", "record_id_r"], keep="first").with_columns(
        pl.lit("case_context").alias("method"), pl.lit(20.0).alias("match_weight"),
        pl.lit(0.999).alias("match_probability"),
    ).select(list(schema)).sort(["record_id_l", "record_id_r"])


def merge_links_into_clusters(clusters: pl.DataFrame, extra: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Join clusters along extra links, never merging two clusters that hold different valid IDs."""
    if extra.height == 0:
        return clusters
    person_of = dict(zip(clusters["record_id"].to_list(), clusters["person_id"].to_list()))
    ids_of: dict[str, set[str]] = {}
    for rid, id18 in zip(records["record_id"].to_list(), records["id18"].to_list()):
        if id18:
            ids_of.setdefault(person_of[rid], set()).add(id18)
    parent: dict[str, str] = {}

    def find(p: str) -> str:
        while parent.get(p, p) != p:
            p = parent[p]
        return p

    for left, right in extra.select("record_id_l", "record_id_r").iter_rows():
        a, b = find(person_of[left]), find(person_of[right])
        if a == b:
            continue
        ia, ib = ids_of.get(a, set()), ids_of.get(b, set())
        if ia and ib and ia != ib:
            continue
        keep, gone = sorted((a, b))
        parent[gone] = keep
        ids_of[keep] = ia | ib
    return clusters.with_columns(pl.col("person_id").map_elements(find, return_dtype=pl.String))
