"""The column-wise cluster step gives what the one-by-one version gave: case-context links, merged
clusters, person ids, person summaries and their ID hashes — on hand-made edge cases and on random data
compared with a plain-Python reference written the way the step used to be."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import random
import re
import unicodedata
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from matchers.case_context import case_context_links, merge_links_into_clusters
from matchers.clustering import cluster_records, component_labels, person_id_for
from matchers.households import household_relations
from matchers.names import NameAgreement, compare_names, parse_name, split_parties
from pipeline.persons import id_hmac, persons_frame, with_id_hmac
from test_linking_support import make_id

# --- references: the step as it was, one row at a time ---------------------------------------------

_NOISE = re.compile(r"[\s()（）〔〕\[\]【】]")


def _reference_case_key(text: object) -> str | None:
    if text is None:
        return None
    key = _NOISE.sub("", unicodedata.normalize("NFKC", str(text)))
    return key or None


def reference_case_context_links(records: pl.DataFrame, victim_facts: pl.DataFrame,
                                 enforcement_facts: pl.DataFrame) -> pl.DataFrame:
    schema = {"record_id_l": pl.Int64, "record_id_r": pl.Int64, "method": pl.String,
              "match_weight": pl.Float64, "match_probability": pl.Float64, "evidence_zh": pl.String}
    if enforcement_facts.height == 0:
        return pl.DataFrame(schema=schema)
    by_id = {r["record_id"]: r for r in records.select("record_id", "name", "id18").to_dicts()}
    parties: dict[str, list[tuple[int, str]]] = {}
    by_case: dict[str, list[int]] = {}

    def keys(names: object) -> list[str]:
        return sorted({k for k in (parse_name(n).pinyin for n in split_parties(names)) if k})

    for v in victim_facts.iter_rows(named=True):
        for key in keys(v["defendant_name"]):
            parties.setdefault(key, []).append((v["record_id"], "被执行人即本案被告人"))
        case = _reference_case_key(v["case_no"])
        if case:
            by_case.setdefault(case, []).append(v["record_id"])
    for e in enforcement_facts.iter_rows(named=True):
        if e["record_id"] is not None:
            for key in keys(e["respondent_name"]):
                parties.setdefault(key, []).append((e["record_id"], "同一被执行人的终本案件"))
    pairs = []
    for e in enforcement_facts.iter_rows(named=True):
        rid = e["record_id"]
        if rid is None:
            continue
        candidates: dict[int, str] = {}
        for key in keys(e["respondent_name"]):
            for other, why in parties.get(key, []):
                candidates.setdefault(other, why)
        for other in by_case.get(_reference_case_key(e["origin_case_no"]) or "", []):
            candidates[other] = "执行依据为本案"
        candidates.pop(rid, None)
        applicant = by_id[rid]
        for other, why in candidates.items():
            party = by_id[other]
            if applicant["id18"] and party["id18"] and applicant["id18"] != party["id18"]:
                continue
            agreement = compare_names(parse_name(applicant["name"]), parse_name(party["name"]))
            if agreement not in (NameAgreement.EXACT, NameAgreement.SAME_PINYIN):
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


def reference_merge(clusters: pl.DataFrame, extra: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
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


def _mode(column: str) -> pl.Expr:
    return pl.col(column).drop_nulls().mode().sort().first().alias(column)


_FIELDS = ("name", "id18", "birth_date", "sex", "phone", "address")


def reference_persons_frame(records: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    joined = records.join(clusters, on="record_id", how="inner")
    return joined.group_by("person_id").agg(
        *[_mode(f) for f in _FIELDS], pl.len().cast(pl.UInt32).alias("n_records"),
        pl.col("source").unique().sort().str.join(",").alias("sources"),
    ).sort("person_id")


# --- small builders ----------------------------------------------------------------------------------

_RECORDS = {"record_id": pl.Int64, "record_key": pl.String, "source": pl.String, "name": pl.String,
            "id18": pl.String, "birth_date": pl.Date, "sex": pl.String, "phone": pl.String, "address": pl.String}
_VICTIM_FACTS = {"record_id": pl.Int64, "case_no": pl.String, "defendant_name": pl.String}
_ENFORCEMENT_FACTS = {"record_id": pl.Int64, "respondent_name": pl.String, "origin_case_no": pl.String}


def records_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame([{c: r.get(c) for c in _RECORDS} for r in rows], schema=_RECORDS)


def clusters_of(records: pl.DataFrame, groups: list[list[int]] | None = None) -> pl.DataFrame:
    """record_id → person_id, one person per record unless grouped."""
    person = {rid: person_id_for(key) for rid, key in zip(records["record_id"], records["record_key"])}
    for group in groups or []:
        for rid in group:
            person[rid] = person[group[0]]
    return pl.DataFrame({"record_id": list(person), "person_id": list(person.values())})


def context_links(pairs: list[tuple[int, int]]) -> pl.DataFrame:
    return pl.DataFrame({"record_id_l": [a for a, _ in pairs], "record_id_r": [b for _, b in pairs]},
                        schema={"record_id_l": pl.Int64, "record_id_r": pl.Int64})


# --- case context ------------------------------------------------------------------------------------

ID_1 = make_id("350425", "19800312", 11)
ID_2 = make_id("350426", "19751107", 131)


def test_no_enforcement_rows_give_no_links():
    records = records_frame([{"record_id": 0, "record_key": "a", "source": "victims", "name": "李明"}])
    victims = pl.DataFrame([{"record_id": 0, "case_no": "(2023)闽0425刑初1号", "defendant_name": "王五"}],
                           schema=_VICTIM_FACTS)
    out = case_context_links(records, victims, pl.DataFrame(schema=_ENFORCEMENT_FACTS))
    assert out.height == 0 and out.schema == reference_case_context_links(
        records, victims, pl.DataFrame(schema=_ENFORCEMENT_FACTS)).schema
    assert case_context_links(records.clear(), victims.clear(), pl.DataFrame(schema=_ENFORCEMENT_FACTS)).height == 0


def test_applicant_links_to_the_victim_through_defendant_basis_and_homophone():
    records = records_frame([
        {"record_id": 0, "record_key": "v0", "source": "victims", "name": "李明华", "id18": ID_1},
        {"record_id": 1, "record_key": "v1", "source": "victims", "name": "陈淑华"},
        {"record_id": 2, "record_key": "e2", "source": "enforcement", "name": "李明华"},
        {"record_id": 3, "record_key": "e3", "source": "enforcement", "name": "陈淑桦"},
        {"record_id": 4, "record_key": "e4", "source": "enforcement", "name": "李明华", "id18": ID_2},
    ])
    victims = pl.DataFrame([
        {"record_id": 0, "case_no": "(2023)闽0425刑初1号", "defendant_name": "王五"},
        {"record_id": 1, "case_no": "（２０２３）闽0425刑初2号", "defendant_name": "赵六、钱七"},
    ], schema=_VICTIM_FACTS)
    enforcement = pl.DataFrame([
        {"record_id": 2, "respondent_name": "王伍", "origin_case_no": None},           # homophone respondent
        {"record_id": 3, "respondent_name": "孙八", "origin_case_no": "〔2023〕闽0425刑初2号"},  # the basis names the case
        {"record_id": 4, "respondent_name": "王五", "origin_case_no": None},           # different ID: vetoed
        {"record_id": None, "respondent_name": "王五", "origin_case_no": None},
    ], schema=_ENFORCEMENT_FACTS)
    out = case_context_links(records, victims, enforcement)
    assert_frame_equal(out, reference_case_context_links(records, victims, enforcement))
    assert out.select("record_id_l", "record_id_r", "evidence_zh").rows() == [
        (0, 2, "姓名一致、被执行人即本案被告人（终本申请执行人即同一案件当事人）"),
        (1, 3, "姓名同音、执行依据为本案（终本申请执行人即同一案件当事人）"),
        (2, 4, "姓名一致、同一被执行人的终本案件（终本申请执行人即同一案件当事人）"),
    ]


def test_a_namesake_offender_in_another_province_is_another_case():
    """Across ten provinces, two 李明华 robbed by two 王五 are common enough: when the case numbers name different
    provinces, the respondent's name is not evidence; the same province, or a number that does not say, still is."""
    records = records_frame([
        {"record_id": 0, "record_key": "v0", "source": "victims", "name": "李明华"},
        {"record_id": 1, "record_key": "v1", "source": "victims", "name": "陈淑华"},
        {"record_id": 2, "record_key": "v2", "source": "victims", "name": "张芳"},
        {"record_id": 3, "record_key": "e3", "source": "enforcement", "name": "李明华"},
        {"record_id": 4, "record_key": "e4", "source": "enforcement", "name": "陈淑华"},
        {"record_id": 5, "record_key": "e5", "source": "enforcement", "name": "张芳"},
    ])
    victims = pl.DataFrame([
        {"record_id": 0, "case_no": "(2023)闽0425刑初1号", "defendant_name": "王五"},
        {"record_id": 1, "case_no": "浙大检刑诉〔2023〕12号", "defendant_name": "赵六"},
        {"record_id": 2, "case_no": "大检刑诉〔2023〕15号", "defendant_name": "孙八"},  # says no province
    ], schema=_VICTIM_FACTS)
    enforcement = pl.DataFrame([
        {"record_id": 3, "respondent_name": "王五", "origin_case_no": None, "enforcement_case_no": "(2024)浙0425执3号"},
        {"record_id": 4, "respondent_name": "赵六", "origin_case_no": "(2023)浙0425刑初9号", "enforcement_case_no": None},
        {"record_id": 5, "respondent_name": "孙八", "origin_case_no": None, "enforcement_case_no": "(2024)苏0425执7号"},
    ], schema={**_ENFORCEMENT_FACTS, "enforcement_case_no": pl.String})
    out = case_context_links(records, victims, enforcement)
    assert out.select("record_id_l", "record_id_r").rows() == [(1, 4), (2, 5)]
    same = enforcement.with_columns(pl.lit("(2024)闽0425执3号").alias("enforcement_case_no"))
    assert (0, 3) in case_context_links(records, victims, same).select("record_id_l", "record_id_r").rows()


def test_case_keys_in_polars_are_those_of_case_key():
    from matchers.case_context import _case_key, _case_keys

    rng = random.Random(5)
    alphabet = "(2023)闽0425刑初12号 （）〔〕【】[]\t\u3000\xa0\x1c２０ＡＢ﹙﹚-_/刑民执恢"
    values = [None, "", " ", "()", "（2023）闽0425刑初1号", "(2023)\u3000闽0425刑初1号", "〔２０２３〕闽0425执12号"]
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 14))) for _ in range(400)]
    assert _case_keys(pl.Series(values, dtype=pl.String)).to_list() == [_case_key(v) for v in values]


_NAMES = ("李明华", "李明骅", "张伟", "张玮", "陳淑華", "陈淑华", "阿依古丽·买买提", "阿依古丽买买提", "John Smith",
          "john  smith", "欧阳修", "王小明(户主)", "王小明", "曾祥福", "", None)
_PARTIES = ("王五", "王伍", "赵六、钱七", "钱七", "孙八 / 王五", "", None, "錢七", "Li Si", "李四；王五")
_CASES = ("(2023)闽0425刑初1号", "（2023）闽0425刑初1号", "〔2023〕闽0425刑初1号", "(２０２３)闽0425刑初1号",
          "(2023) 闽0425刑初2号", "【2022】闽0425刑初3号", "()", "", None)


def random_case_data(seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = random.Random(seed)
    ids = (ID_1, ID_2, make_id("350427", "19660203", 58), None, None, "")
    rows = [{"record_id": i, "record_key": f"k{rng.randrange(10**6):06d}", "source": "victims" if i < 40 else "enforcement",
             "name": rng.choice(_NAMES), "id18": rng.choice(ids)} for i in range(70)]
    victims = [{"record_id": i, "case_no": rng.choice(_CASES), "defendant_name": rng.choice(_PARTIES)}
               for i in range(40) for _ in range(rng.choice((1, 1, 2)))]
    enforcement = [{"record_id": rng.choice([*range(40, 70), None]) if rng.random() < 0.95 else None,
                    "respondent_name": rng.choice(_PARTIES), "origin_case_no": rng.choice(_CASES)} for _ in range(45)]
    return (records_frame(rows), pl.DataFrame(victims, schema=_VICTIM_FACTS),
            pl.DataFrame(enforcement, schema=_ENFORCEMENT_FACTS))


@pytest.mark.parametrize("seed", range(12))
def test_case_context_links_and_merge_match_the_one_by_one_version(seed):
    records, victims, enforcement = random_case_data(seed)
    links = case_context_links(records, victims, enforcement)
    assert_frame_equal(links, reference_case_context_links(records, victims, enforcement))
    rng = random.Random(seed)
    groups = [[rng.randrange(70) for _ in range(rng.choice((2, 3)))] for _ in range(8)]
    clusters = clusters_of(records, [sorted(set(g)) for g in groups])
    assert_frame_equal(merge_links_into_clusters(clusters, links, records), reference_merge(clusters, links, records))


# --- merging along case-context links ----------------------------------------------------------------

def _chain_records(ids: tuple[str | None, str | None, str | None]) -> pl.DataFrame:
    return records_frame([{"record_id": i, "record_key": key, "source": "victims", "name": "李明", "id18": id18}
                          for i, (key, id18) in enumerate(zip(("k_c", "k_a", "k_b"), ids))])


def test_a_chain_of_case_context_links_makes_one_person_with_the_smallest_id():
    records = _chain_records((None, None, ID_1))
    clusters = clusters_of(records)
    merged = merge_links_into_clusters(clusters, context_links([(0, 1), (1, 2)]), records)
    assert merged["person_id"].n_unique() == 1
    assert merged["person_id"][0] == min(clusters["person_id"])
    assert_frame_equal(merged, reference_merge(clusters, context_links([(0, 1), (1, 2)]), records))


@pytest.mark.parametrize("order", [[(0, 1), (1, 2)], [(1, 2), (0, 1)]])
def test_a_chain_between_two_ids_is_cut_where_the_second_id_would_join(order):
    records = _chain_records((ID_1, None, ID_2))  # 0 holds ID_1, 2 holds ID_2, 1 has no ID
    clusters = clusters_of(records)
    merged = merge_links_into_clusters(clusters, context_links(order), records)
    assert_frame_equal(merged, reference_merge(clusters, context_links(order), records))
    person = dict(zip(merged["record_id"], merged["person_id"]))
    assert person[0] != person[2]
    first = order[0]
    assert person[first[0]] == person[first[1]]  # the first link taken wins the record without an ID


def test_merging_nothing_keeps_the_clusters():
    records = _chain_records((None, None, None))
    clusters = clusters_of(records)
    assert_frame_equal(merge_links_into_clusters(clusters, context_links([]), records), clusters)


# --- clusters and person ids -------------------------------------------------------------------------

def _prepared(keys: list[str | None], id18: list[str | None] | None = None) -> pl.DataFrame:
    return pl.DataFrame({"record_id": range(len(keys)), "record_key": keys, "id18": id18 or [None] * len(keys)},
                        schema={"record_id": pl.Int64, "record_key": pl.String, "id18": pl.String})


def _links(pairs: list[tuple[int, int, str]]) -> pl.DataFrame:
    return pl.DataFrame([(a, b, m, 10.0) for a, b, m in pairs],
                        schema={"record_id_l": pl.Int64, "record_id_r": pl.Int64, "method": pl.String,
                                "match_weight": pl.Float64}, orient="row")


def _expected_person_ids(prepared: pl.DataFrame, clusters: pl.DataFrame) -> list[str]:
    keys = prepared.select("record_id", pl.coalesce("record_key", pl.col("record_id").cast(pl.String)).alias("key"))
    smallest = keys.join(clusters, on="record_id").group_by("person_id").agg(pl.col("key").min())
    assert all(person_id_for(k) == p for p, k in smallest.iter_rows())
    return clusters["person_id"].to_list()


def test_cluster_records_of_no_records():
    clusters, cut = cluster_records(_prepared([]), _links([]), None)
    assert clusters.height == 0 and cut.height == 0
    assert clusters.schema == pl.Schema({"record_id": pl.Int64, "person_id": pl.String})


def test_lone_records_are_their_own_person_and_a_cluster_takes_its_smallest_key():
    keys = ["victims|f|0000009", "张三|键", None, "disability|f|0000001", "subsistence|é|2", "victims|f|0000003"]
    prepared = _prepared(keys)
    clusters, cut = cluster_records(prepared, _links([(0, 3, "probabilistic"), (3, 5, "id_exact")]), None)
    assert cut.height == 0
    person = clusters["person_id"].to_list()
    assert person[0] == person[3] == person[5] == person_id_for("disability|f|0000001")
    assert person[1] == person_id_for("张三|键") and person[2] == person_id_for("2")
    assert person[4] == person_id_for("subsistence|é|2")
    _expected_person_ids(prepared, clusters)


def test_the_guard_still_cuts_the_weakest_link_between_two_ids():
    prepared = _prepared([f"k{i}" for i in range(4)], [ID_1, None, ID_2, ID_2])
    links = _links([(0, 1, "probabilistic"), (1, 2, "id_exact"), (2, 3, "id_exact")])
    clusters, cut = cluster_records(prepared, links, None)
    assert cut.select("record_id_l", "record_id_r").rows() == [(0, 1)]
    person = clusters["person_id"].to_list()
    assert person[0] != person[1] and person[1] == person[2] == person[3]


@pytest.mark.parametrize("seed", range(5))
def test_person_ids_on_random_graphs_are_those_of_the_smallest_key(seed):
    rng = random.Random(seed)
    n = 300
    keys = [f"{rng.choice('甲乙abc')}|{rng.randrange(10**6):06d}" if rng.random() < 0.95 else None for _ in range(n)]
    pairs = {tuple(sorted(rng.sample(range(n), 2))) for _ in range(200)}
    prepared = _prepared(keys)
    clusters, _ = cluster_records(prepared, _links([(a, b, "id_exact") for a, b in sorted(pairs)]), None)
    _expected_person_ids(prepared, clusters)
    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    label = component_labels(n, a, b)
    same = dict(zip(range(n), label.tolist()))
    person = clusters["person_id"].to_list()
    assert all((person[x] == person[y]) == (same[x] == same[y]) for x in range(0, n, 7) for y in range(0, n, 11))


# --- persons and their ID hashes ---------------------------------------------------------------------

def test_persons_frame_matches_the_mode_per_person_on_random_records():
    rng = random.Random(3)
    rows = [{"record_id": i, "record_key": f"k{i}", "source": rng.choice(("victims", "disability", "subsistence")),
             "name": rng.choice(("李明", "李敏", None)), "id18": rng.choice((ID_1, ID_2, None)),
             "birth_date": rng.choice((None, dt.date(1980, 3, 12), dt.date(1975, 11, 7))), "sex": rng.choice(("M", "F", None)),
             "phone": rng.choice((None, "13900000001", "13900000002")),
             "address": rng.choice((None, "均溪镇玉田村3组5号", "上京镇三阳村2组8号", "石牌镇大洋村"))}
            for i in range(400)]
    records = records_frame(rows)
    clusters = pl.DataFrame({"record_id": range(400), "person_id": [f"P{rng.randrange(150):016x}" for _ in range(400)]})
    expected = reference_persons_frame(records, clusters)
    assert_frame_equal(persons_frame(records, clusters), expected, check_column_order=False)
    shuffled = clusters.sample(fraction=1.0, shuffle=True, seed=1)  # not in record order: joined, same result
    assert_frame_equal(persons_frame(records, shuffled), expected, check_column_order=False)
    renamed = clusters.with_columns(pl.col("person_id").str.to_uppercase())  # not hex: sorted as text
    assert persons_frame(records, renamed)["person_id"].is_sorted()


def test_persons_frame_of_no_records():
    out = persons_frame(records_frame([]), pl.DataFrame(schema={"record_id": pl.Int64, "person_id": pl.String}))
    assert out.height == 0 and out.columns == ["person_id", *_FIELDS, "n_records", "sources"]


@pytest.mark.parametrize("key", [b"k" * 16, b"0123456789abcdef" * 2, bytes(range(64)), bytes(range(100))])
def test_with_id_hmac_is_hmac_sha256_of_each_number(key):
    numbers = [ID_1, None, "", f" {ID_2[:-1].lower()}x ", ID_2[:-1] + "x", "110101199003070000"]
    persons = pl.DataFrame({"person_id": [f"P{i}" for i in range(len(numbers))], "id18": numbers})
    out = with_id_hmac(persons, key)
    assert out.columns == ["person_id", "id18", "id_hmac"]
    expected = [hmac.new(key, n.strip().upper().encode("ascii"), hashlib.sha256).hexdigest() if n else None
                for n in numbers]
    assert out["id_hmac"].to_list() == expected == [id_hmac(n, key) for n in numbers]
    assert with_id_hmac(persons.clear(), key).columns == ["person_id", "id18", "id_hmac"]


# --- households --------------------------------------------------------------------------------------

def test_household_relations_of_no_records_and_of_unknown_roles():
    schema = {"record_id": pl.Int64, "source": pl.String, "role": pl.String, "household_key": pl.String,
              "case_no": pl.String, "relation": pl.String}
    empty = household_relations(pl.DataFrame(schema=schema), pl.DataFrame(schema={"record_id": pl.Int64,
                                                                                  "person_id": pl.String}))
    assert empty.height == 0
    records = pl.DataFrame([(0, "subsistence", "subsistence_member", "h1", None, "户主"),
                            (1, "subsistence", "subsistence_member", "h1", None, "妻子"),
                            (2, "subsistence", "subsistence_member", "h1", None, None),
                            (3, "disability", "disability_holder", None, None, None)], schema=schema, orient="row")
    clusters = pl.DataFrame({"record_id": [0, 1, 2, 3], "person_id": ["P0", "P1", "P2", "P3"]})
    out = household_relations(records, clusters)
    assert out.rows() == [("P0", "P1", "配偶", "subsistence"), ("P0", "P2", "同户成员", "subsistence"),
                          ("P1", "P0", "配偶", "subsistence"), ("P1", "P2", "同户成员", "subsistence"),
                          ("P2", "P0", "同户成员", "subsistence"), ("P2", "P1", "同户成员", "subsistence")]


# --- person ids from night to night ------------------------------------------------------------------

def test_a_person_keeps_its_id_when_a_record_with_a_smaller_key_joins_it():
    from matchers.clustering import inherit_person_ids

    previous = pl.DataFrame({"record_key": ["k5", "k6", "k7", "k8", "k9"],
                             "person_id": ["P5", "P5", "P5", "P8", "P8"]})
    tonight = pl.DataFrame({"record_key": ["k1", "k5", "k6", "k7", "k8", "k9", "k2"],
                            # k1 joined the first person; the second split in two; k2 is someone new
                            "person_id": ["P1", "P1", "P1", "P1", "P8", "P9", "P2"]})
    kept = dict(inherit_person_ids(tonight, previous).select("record_key", "person_id").iter_rows())
    assert kept == {"k1": "P5", "k5": "P5", "k6": "P5", "k7": "P5",  # most of its records were P5
                    "k8": "P8", "k9": "P9",  # the part whose own id is the old one keeps it; the other part its own
                    "k2": "P2"}
    assert inherit_person_ids(tonight, previous.clear()).equals(tonight)


def test_an_old_id_goes_to_one_person_only():
    from matchers.clustering import inherit_person_ids

    previous = pl.DataFrame({"record_key": ["a", "b", "c", "d"], "person_id": ["P0", "P0", "P0", "P0"]})
    tonight = pl.DataFrame({"record_key": ["a", "b", "c", "d"], "person_id": ["Px", "Px", "Py", "Py"]})
    ids = inherit_person_ids(tonight, previous)["person_id"].to_list()
    assert ids == ["P0", "P0", "Py", "Py"]  # a tie: the smaller of the two people's ids takes it
