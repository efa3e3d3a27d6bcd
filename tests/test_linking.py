"""Person resolution on concrete pairs embedded in a background population: what must link, what must not."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
import pytest

from matchers.linking import LINK_COLUMNS, LinkSettings, resolve_people
from test_linking_support import background, frame, link_row, linked, make_id, mistype, rec, swap

D = dt.date
ID_A = make_id("350425", "19800312", 11)       # male
ID_B = make_id("350425", "19800312", 24)       # female, same county and birth date as ID_A
ID_C = make_id("350426", "19751107", 131)
ID_D = make_id("350427", "19660203", 58)


def _cases() -> list[dict]:
    rows = []

    def add(tag: str, *args, **kw) -> None:
        rows.append(rec(*args, tag=tag, **kw))

    # same valid ID, the name written differently → link
    add("spell_1", "王晓明", ID_C, source="victims", phone="13905981234")
    add("spell_2", "王小明", ID_C, source="disability")
    # traditional characters and a homophone slip under the same ID → link
    add("trad_1", "陳淑華", ID_D, source="victims")
    add("trad_2", "陈淑华", ID_D, source="subsistence", household_key="hh_t")
    add("trad_3", "陈淑桦", ID_D, source="enforcement")
    # mistyped ID (one digit) + same name + birth date → link
    id_e = make_id("350425", "19720815", 333)
    add("typo_1", "黄丽芬", id_e, source="victims", phone="13812345678")
    add("typo_2", "黄丽芬", mistype(id_e, 15), source="disability", birth=D(1972, 8, 15), sex="F")
    # two neighbouring digits swapped + same name + birth date → link
    id_f = make_id("350426", "19580304", 271)
    add("swap_1", "郑国平", id_f, source="victims")
    add("swap_2", "郑国平", swap(id_f, 14), source="key_groups", birth=D(1958, 3, 4), sex="M")
    # blank ID + same name + birth date + phone → link
    id_g = make_id("350425", "19890621", 402)
    add("blank_1", "林美玲", id_g, source="victims", phone="15959812345", address="大田县均溪镇玉田村3组5号")
    add("blank_2", "林美玲", None, source="subsistence", birth=D(1989, 6, 21), sex="F", phone="15959812345",
        household_key="hh_b")
    # Excel-damaged ID is missing evidence, not a contradiction: name + birth + address still link
    add("sci_1", "罗永福", make_id("350427", "19500101", 19), source="victims", address="大田县石牌镇大洋村7组2号")
    add("sci_2", "罗永福", "3.50427195E+17", source="key_groups", birth=D(1950, 1, 1), sex="M",
        address="大田县石牌镇大洋村7组2号")
    # legacy 15-digit number upgraded = the 18-digit one → link
    id_h = make_id("350403", "19630917", 125)
    add("legacy_1", "曾祥福", id_h, source="victims")
    add("legacy_2", "曾祥福", id_h[:6] + id_h[8:17], source="subsistence", household_key="hh_l")
    # two 张伟 born the same year, different valid IDs → no link
    add("zw_1", "张伟", make_id("350425", "19850304", 15), source="victims", phone="13700000001")
    add("zw_2", "张伟", make_id("350425", "19851120", 37), source="disability", phone="13700000002")
    # two 李娜, same birth date, no IDs, different phone and address → no link
    add("ln_1", "李娜", None, source="victims", birth=D(1990, 5, 1), sex="F", phone="13811112222",
        address="大田县上京镇三阳村2组8号")
    add("ln_2", "李娜", None, source="key_groups", birth=D(1990, 5, 1), sex="F", phone="13933334444",
        address="大田县广平镇铭溪村5组1号")
    # different valid IDs, same name, birth date, phone and address → never linked
    add("twin_1", "刘建国", ID_A, source="victims", phone="13600001111", address="大田县均溪镇许思坑村1组1号")
    add("twin_2", "刘建国", make_id("350425", "19800312", 13), source="disability", phone="13600001111",
        address="大田县均溪镇许思坑村1组1号")
    # same name + birth year only, nothing else → no link
    add("year_1", "吴秀英", None, source="victims", birth=D(1948, 2, 2), sex="F")
    add("year_2", "吴秀英", None, source="key_groups", birth=D(1948, 9, 30), sex="F")
    # the same row twice, no ID → one person (dedup within a source)
    for t in ("dup_1", "dup_2"):
        add(t, "何春燕", None, source="key_groups", birth=D(1977, 12, 9), sex="F", phone="13507770777")
    # cluster guard: a record without ID that fits two people with different valid IDs
    add("guard_a", "陈静", ID_B, source="victims", phone="13306060606", address="大田县桃源镇东坂村4组9号")
    add("guard_b", "陈静", make_id("350425", "19800312", 46), source="disability", phone="18800000000",
        address="大田县太华镇小华村2组3号")
    add("guard_x", "陈静", None, source="key_groups", birth=D(1980, 3, 12), sex="F", phone="13306060606",
        address="大田县太华镇小华村2组3号")
    return rows


@pytest.fixture(scope="module")
def resolved():
    records = frame(background(3000, seed=11) + _cases())
    return records, resolve_people(records)


@pytest.mark.parametrize(("a", "b", "method", "says"), [
    ("spell_1", "spell_2", "id_exact", "身份证号一致"),
    ("trad_1", "trad_2", "id_exact", "身份证号一致"),
    ("trad_1", "trad_3", "id_exact", "身份证号一致、姓名同音"),
    ("typo_1", "typo_2", "id_typo", "身份证号仅一位不同（疑似录入错误）、姓名一致、出生日期一致"),
    ("swap_1", "swap_2", "id_typo", "身份证号相邻两位颠倒（疑似录入错误）、姓名一致、出生日期一致"),
    ("blank_1", "blank_2", "probabilistic", "姓名一致、出生日期一致、电话一致"),
    ("sci_1", "sci_2", "probabilistic", "姓名一致、出生日期一致、住址一致"),
    ("legacy_1", "legacy_2", "id_exact", "身份证号一致"),
    ("dup_1", "dup_2", "probabilistic", "姓名一致、出生日期一致、电话一致"),
])
def test_must_link(resolved, a, b, method, says):
    records, res = resolved
    assert linked(res, records, a, b)
    row = link_row(res, records, a, b)
    assert row is not None and row["method"] == method
    assert row["evidence_zh"].startswith(says)
    assert row["match_probability"] >= 0.99 or method != "probabilistic"


@pytest.mark.parametrize(("a", "b"), [
    ("zw_1", "zw_2"), ("ln_1", "ln_2"), ("twin_1", "twin_2"), ("year_1", "year_2"), ("guard_a", "guard_b"),
])
def test_must_not_link(resolved, a, b):
    records, res = resolved
    assert not linked(res, records, a, b)
    assert link_row(res, records, a, b) is None


def test_guard_keeps_the_stronger_link(resolved):
    records, res = resolved
    assert linked(res, records, "guard_x", "guard_a") != linked(res, records, "guard_x", "guard_b")
    assert res.stats["links_cut_by_guard"] >= 1


def test_clusters_cover_every_record_once(resolved):
    records, res = resolved
    assert res.clusters.height == records.height
    assert res.clusters["record_id"].n_unique() == records.height
    assert res.clusters["person_id"].null_count() == 0


def test_no_cluster_holds_two_valid_ids(resolved):
    records, res = resolved
    ids = records.select("record_id", "id18").join(res.clusters, on="record_id").drop_nulls("id18")
    assert ids.group_by("person_id").agg(pl.col("id18").n_unique().alias("n"))["n"].max() == 1


def test_links_table_contract(resolved):
    _, res = resolved
    assert tuple(res.links.columns) == LINK_COLUMNS
    assert (res.links["record_id_l"] < res.links["record_id_r"]).all()
    assert set(res.links["method"].unique()) <= {"id_exact", "id_typo", "probabilistic"}
    assert res.links["evidence_zh"].null_count() == 0
    assert all(isinstance(v, int) for v in res.stats.values())
    for key in ("candidate_pairs", "links", "clusters", "links_id_exact", "links_probabilistic"):
        assert key in res.stats


def test_background_is_resolved_accurately(resolved):
    """Background people: no two merged; most of their records found (some lack every usable field)."""
    records, res = resolved
    bg = records.select("record_id", "tag").join(res.clusters, on="record_id").filter(pl.col("tag").str.starts_with("bg"))
    merged = bg.group_by("person_id").agg(pl.col("tag").n_unique().alias("n")).filter(pl.col("n") > 1)
    assert merged.height == 0
    split = bg.group_by("tag").agg(pl.col("person_id").n_unique().alias("n")).filter(pl.col("n") > 1)
    assert split.height < 0.15 * bg["tag"].n_unique()


def test_person_ids_are_stable_across_runs_and_row_order():
    rows = background(400, seed=3) + _cases()
    records = frame(rows)
    first = resolve_people(records).clusters
    shuffled = records.sample(fraction=1.0, shuffle=True, seed=5)
    second = resolve_people(shuffled).clusters
    assert first.sort("record_id").equals(second.sort("record_id"))


def test_household_twins_with_different_names_never_link():
    rows = background(1500, seed=5)
    for tag, name in (("tw_1", "周建国"), ("tw_2", "周建军")):
        rows.append(rec(name, None, source="subsistence", birth=D(2001, 4, 4), sex="M", phone="13000000000",
                        address="大田县均溪镇玉田村1组1号", household_key="hh_twins", relation="子", tag=tag))
    records = frame(rows)
    res = resolve_people(records)
    assert not linked(res, records, "tw_1", "tw_2")


def test_households_from_rolls_and_cases():
    rows = background(500, seed=9)
    hh = "hh_001"
    head_id, wife_id, son_id = (make_id("350425", "19700101", 11), make_id("350425", "19720202", 22),
                                make_id("350425", "19950505", 33))
    rows += [
        rec("赵大山", head_id, source="subsistence", household_key=hh, relation="户主", tag="head"),
        rec("钱小凤", wife_id, source="subsistence", household_key=hh, relation="妻", tag="wife"),
        rec("赵小山", son_id, source="subsistence", household_key=hh, relation="长子", tag="son"),
        rec("赵大山", head_id, source="victims", case_no="大检刑诉[2024]1号", tag="victim"),
        rec("赵小山", None, source="victims", role="relative", relation="儿子", case_no="大检刑诉[2024]1号",
            birth=D(1995, 5, 5), tag="rel_son"),
    ]
    records = frame(rows)
    res = resolve_people(records)
    pid = dict(zip(records["tag"].to_list(), records.join(res.clusters, on="record_id")["person_id"].to_list()))
    rel = {(a, b): r for a, b, r in res.households.select("person_id", "household_person_id", "relation").iter_rows()}
    assert rel[(pid["head"], pid["wife"])] == "配偶"
    assert rel[(pid["head"], pid["son"])] == "子女"
    assert rel[(pid["son"], pid["wife"])] == "父母"
    assert rel[(pid["son"], pid["head"])] == "父母"
    assert pid["victim"] == pid["head"]
    # the relative row of the case: linked or not to the son, the victim's household knows the son
    assert rel[(pid["victim"], pid["rel_son"])] == "子女"
    assert rel[(pid["rel_son"], pid["victim"])] == "父母"


def test_stricter_threshold_never_adds_links():
    records = frame(background(800, seed=21) + _cases())
    loose = resolve_people(records, LinkSettings(match_probability=0.9))
    strict = resolve_people(records, LinkSettings(match_probability=0.9999))
    key = ["record_id_l", "record_id_r"]
    assert strict.links.join(loose.links, on=key, how="anti").height == 0


def test_empty_and_tiny_inputs():
    empty = frame([])
    res = resolve_people(empty)
    assert res.links.height == 0 and res.clusters.height == 0
    one = frame([rec("张三", make_id(), source="victims")])
    res = resolve_people(one)
    assert res.clusters.height == 1 and res.links.height == 0


def test_deterministic():
    records = frame(background(600, seed=random.Random(1).randrange(100)) + _cases())
    a, b = resolve_people(records), resolve_people(records)
    assert a.links.equals(b.links) and a.clusters.equals(b.clusters)
