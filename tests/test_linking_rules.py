"""The pieces of resolution, one rule at a time: comparison levels, ID slips, blocking, weights, guards."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
import pytest

from matchers.blocking import candidate_pairs
from matchers.comparison import compare_pairs, id_typo_kinds, prepare_records
from matchers.households import relation_role
from matchers.idnumber import id_typo_relation
from matchers.linking import LinkSettings, resolve_people
from matchers.names import compare_names, parse_name
from test_linking_support import background, frame, link_row, linked, make_id, mistype, rec, swap

D = dt.date


def _compare(rows: list[dict]) -> pl.DataFrame:
    """Levels of the pair (row 0, row 1)."""
    prepared = prepare_records(frame(rows))
    return compare_pairs(prepared, pl.DataFrame({"record_id_l": [0], "record_id_r": [1]}))


# ------------------------------------------------------------------ names

NAME_PAIRS = [
    ("张伟", "张伟"), ("张伟", "张玮"), ("张伟", "张炜"), ("张伟", "张芳"), ("李娜", "张娜"), ("王小明", "王明小"),
    ("王小明", "王晓明"), ("王小明", "王小东"), ("陈淑华", "陳淑華"), ("欧阳娜娜", "欧阳娜", ), ("曾小凡", "曾小帆"),
    ("买买提·艾力", "买买提艾力"), ("买买提·艾力", "买买提•艾力"), ("张伟", None), ("刘德华", "刘华德"),
    ("章伟", "张伟"), ("张三丰", "张三"),
]


@pytest.mark.parametrize(("a", "b"), NAME_PAIRS)
def test_name_levels_match_compare_names(a, b):
    levels = _compare([rec(a), rec(b)])
    assert levels["name_level"][0] == str(compare_names(parse_name(a), parse_name(b)))


def test_gbk_question_mark_for_the_middle_dot_is_the_same_name():
    levels = _compare([rec("努尔买买提·阿不都拉"), rec("努尔买买提?阿不都拉")])
    assert levels["name_level"][0] == "exact"


def test_two_character_names_one_character_apart_are_weak():
    levels = _compare([rec("张伟"), rec("张芳")])
    assert levels["name_level"][0] == "one_char" and levels["name_model_level"][0] == "one_char_short"


# ------------------------------------------------------------------ ID slips

def test_every_substitution_and_swap_is_a_slip():
    rng = random.Random(4)
    for _ in range(30):
        valid = make_id(rng.choice(["350425", "110105"]), f"{rng.randrange(1940, 2015)}0{rng.randrange(1, 10)}1{rng.randrange(0, 9)}",
                        rng.randrange(0, 1000))
        variants = [mistype(valid, pos) for pos in range(17)] + [swap(valid, pos) for pos in range(17)]
        variants = [v for v in variants if v != valid]
        import numpy as np

        kinds = id_typo_kinds([valid] * len(variants), variants, np.zeros(len(variants), dtype=bool))
        expected = [id_typo_relation(valid, v) for v in variants]
        got = [{0: None, 1: "one_substitution", 2: "adjacent_transposition"}[int(k)] for k in kinds]
        assert got == expected


@pytest.mark.parametrize("pos", range(18))
def test_blocking_finds_a_mistyped_digit_anywhere(pos):
    valid = make_id("350425", "19840619", 357)
    typo = mistype(valid, pos, "X" if pos == 17 and valid[17] != "X" else None)
    if typo[17] == valid[17] and pos == 17:
        typo = valid[:17] + ("0" if valid[17] != "0" else "1")
    # a homophone and no birth date on the mistyped row: only the ID-typo keys can pair the two
    prepared = prepare_records(frame([rec("刘洋", valid), rec("刘阳", typo, source="disability")]))
    pairs, _ = candidate_pairs(prepared, 100)
    assert pairs.height == 1


_SWAP_ID = make_id("350425", "19840619", 357)


@pytest.mark.parametrize("pos", [p for p in range(17) if _SWAP_ID[p] != _SWAP_ID[p + 1]])
def test_blocking_finds_two_swapped_digits_anywhere(pos):
    """Every position whose neighbours differ (swapping equal digits changes nothing)."""
    valid = _SWAP_ID
    typo = swap(valid, pos)
    # a homophone and no birth date on the mistyped row: only the ID-typo keys can pair the two
    prepared = prepare_records(frame([rec("刘洋", valid), rec("刘阳", typo, source="disability")]))
    pairs, _ = candidate_pairs(prepared, 100)
    assert pairs.height == 1


def test_ids_one_slip_apart_under_unrelated_names_are_not_compared():
    """Neighbouring ID numbers of two strangers (刘洋 / 王芳, nothing in common) cannot be an ID slip of one
    person: the ID-typo keys do not pair them, while a homophone under the same slip is paired."""
    valid = make_id("350425", "19840619", 357)
    typo = mistype(valid, 11)
    strangers = prepare_records(frame([rec("刘洋", valid), rec("王芳", typo, source="disability")]))
    assert candidate_pairs(strangers, 100)[0].height == 0
    homophones = prepare_records(frame([rec("刘洋", valid), rec("留阳", typo, source="disability")]))
    assert candidate_pairs(homophones, 100)[0].height == 1


def test_legacy_number_with_a_slip_links_by_its_body():
    """A mistyped 15-digit number gets a freshly computed (valid) check character when upgraded."""
    valid = make_id("350425", "19620304", 215)
    legacy = valid[:6] + valid[8:14] + "216"  # sequence mistyped 215 → 216
    rows = background(400, seed=2) + [rec("魏春生", valid, tag="a"), rec("魏春生", legacy, source="subsistence", tag="b")]
    records = frame(rows)
    res = resolve_people(records)
    row = link_row(res, records, "a", "b")
    assert row is not None and row["method"] == "id_typo"


def test_mistyped_id_with_a_different_name_is_not_an_id_typo_link():
    valid = make_id("350425", "19620304", 215)
    rows = background(400, seed=2) + [rec("魏春生", valid, tag="a"),
                                      rec("陈国栋", mistype(valid, 16), source="disability", birth=D(1962, 3, 4), tag="b")]
    records = frame(rows)
    assert not linked(resolve_people(records), records, "a", "b")


# ------------------------------------------------------------------ other fields

@pytest.mark.parametrize(("a", "b", "level"), [
    (D(1980, 3, 12), D(1980, 3, 12), "agree"),
    (D(1980, 3, 12), D(1980, 3, 13), "partial"),   # one digit
    (D(1980, 3, 12), D(1980, 12, 3), "partial"),   # day and month swapped
    (D(1980, 3, 12), D(1980, 3, 1), "partial"),    # recorded as year-month
    (D(1980, 3, 12), D(1980, 1, 1), "partial"),    # recorded as a year
    (D(1980, 3, 12), D(1981, 7, 30), "disagree"),
    (D(1980, 3, 12), None, "missing"),
])
def test_birth_date_levels(a, b, level):
    assert _compare([rec("甲乙", birth=a), rec("甲乙", birth=b)])["birth_date_level"][0] == level


@pytest.mark.parametrize(("a", "b", "level"), [
    ("福建省三明市大田县均溪镇玉田村3组5号", "大田县均溪镇玉田村3组5号", "agree"),
    ("大田县均溪镇玉田村3组5号", "大田县均溪镇玉田村", "partial"),
    ("大田县均溪镇玉田村3组5号", "大田县均溪镇玉田村3组6号", "partial"),
    ("大田县均溪镇玉田村3组5号", "大田县上京镇三阳村1组2号", "disagree"),
])
def test_address_levels(a, b, level):
    assert _compare([rec("甲乙", address=a), rec("甲乙", address=b)])["address_level"][0] == level


@pytest.mark.parametrize(("a", "b", "level"), [
    ("13905981234", "13905981234", "agree"), ("13905981234", "13905981284", "partial"),
    ("13905981234", "13905982134", "partial"), ("13905981234", "18800001111", "disagree"),
])
def test_phone_levels(a, b, level):
    assert _compare([rec("甲乙", phone=a), rec("甲乙", phone=b)])["phone_level"][0] == level


@pytest.mark.parametrize(("a", "b", "level"), [
    ("黄大龙", "黄大龍", "agree"), ("黄大龙", "黄大龙、黄二虎", "partial"), ("黄二虎，黄大龙", "黄大龙", "partial"),
    ("黄大龙", "某某建材有限公司", "disagree"),
])
def test_counterpart_levels(a, b, level):
    assert _compare([rec("甲乙", counterpart_name=a), rec("甲乙", counterpart_name=b)])["counterpart_level"][0] == level


def test_relation_roles():
    assert [relation_role(t) for t in ("户主", "妻", "长子", "孙女", "岳母", "儿媳", "姐夫", "母亲", None)] == \
        ["head", "spouse", "child", "grandchild", "parent_in_law", "child_in_law", "other", "parent", None]


# ------------------------------------------------------------------ rules and guards

@pytest.fixture(scope="module")
def county():
    return background(2500, seed=17)


def test_a_family_members_id_under_another_name_is_not_linked(county):
    """A child entered under the parent's ID: same valid ID, an unrelated given name."""
    parent = make_id("350425", "19700707", 71)
    records = frame(county + [rec("罗建华", parent, tag="p"), rec("罗思琪", parent, source="disability", tag="c")])
    res = resolve_people(records)
    assert not linked(res, records, "p", "c")
    assert res.stats["id_agree_name_different"] == 1


def test_a_truncated_minority_name_under_the_same_id_links(county):
    id_ = make_id("653101", "19750505", 33)
    records = frame(county + [rec("阿依古丽·买买提", id_, tag="a"), rec("阿依古丽", id_, source="key_groups", tag="b")])
    res = resolve_people(records)
    row = link_row(res, records, "a", "b")
    assert row is not None and row["method"] == "id_exact" and "姓名部分一致" in row["evidence_zh"]


def test_namesakes_in_one_household_in_different_roles_stay_apart(county):
    """户主 钟伟 and his son 钟伟 (no ID) in one roll: the son's row must not join the father's records."""
    father = make_id("350426", "19600126", 57)
    hh = "hh_zhong"
    rows = county + [
        rec("钟伟", father, source="victims", phone="18881344543", address="尤溪县城关镇侨新社区城关路86号", tag="f_v"),
        rec("钟伟", father, source="subsistence", household_key=hh, relation="户主", phone="18881344543", tag="f_s"),
        rec("钟伟", None, source="subsistence", household_key=hh, relation="子女", phone="18881344543", sex="M",
            address="尤溪县城关镇侨新社区城关路86号", tag="son"),
    ]
    records = frame(rows)
    res = resolve_people(records)
    assert linked(res, records, "f_v", "f_s")
    assert not linked(res, records, "son", "f_s")


@pytest.mark.parametrize(("second", "sex", "apart"), [("陆子雯", "F", True), ("陆子雯", "M", False),
                                                   ("陆子文", "F", False)])
def test_a_name_that_only_sounds_the_same_under_another_sex_is_a_sibling(county, second, sex, apart):
    """陆子文 (boy, with an ID) and 陆子雯 (girl, no ID), born the same day at one address and phone: twins, a
    brother and a sister, not one child. The same sound under the same sex, or the same name under another sex
    (a sex keyed wrong), still links."""
    boy = make_id("350425", "20220729", 33)  # odd sequence digit: a boy
    address = "大田县太华镇高思坑村4组1号"
    rows = county + [
        rec("陆子文", boy, source="disability", phone="13015769741", address=address, tag="a"),
        rec(second, None, source="key_groups", birth=D(2022, 7, 29), sex=sex, phone="13015769741", address=address,
            tag="b"),
    ]
    records = frame(rows)
    res = resolve_people(records)
    assert linked(res, records, "a", "b") is not apart


def test_fathers_and_sons_of_one_name_at_one_house_stay_apart(county):
    """Forty fathers (with an ID) and sons of the same name, born 26 years later, at one house each, the son's row
    without an ID; and forty people listed twice the same way, same birth date. The weights must learn from the
    first that a birth date disagreeing is two people, not one person keyed differently."""
    rng = random.Random(5)
    rows = list(county)
    for i in range(40):
        born = D(1950, 1, 1) + dt.timedelta(days=rng.randrange(0, 9000))
        name = f"{rng.choice('钟罗郑晏')}{rng.choice('建国伟强')}{rng.choice('华明林海')}"
        address = f"大田县石牌镇{rng.choice('北坑东坂西山')}村{i + 1}组{rng.randrange(1, 99)}号"
        father = make_id("350425", born.strftime("%Y%m%d"), 11 + 2 * i)
        son_born = born.replace(year=born.year + 26)
        rows += [rec(name, father, source="disability", address=address, tag=f"f{i}"),
                 rec(name, None, source="key_groups", birth=son_born, sex="M", address=address, tag=f"s{i}")]
        twice = make_id("350425", born.strftime("%Y%m%d"), 501 + 2 * i)
        rows += [rec(name + "一", twice, source="disability", address=address + "之一", tag=f"a{i}"),
                 rec(name + "一", None, source="key_groups", birth=born, sex="M", address=address + "之一", tag=f"b{i}")]
    records = frame(rows)
    res = resolve_people(records)
    assert not any(linked(res, records, f"f{i}", f"s{i}") for i in range(40))
    assert all(linked(res, records, f"a{i}", f"b{i}") for i in range(40))


def test_a_mistyped_number_born_years_apart_is_another_person(county):
    """韩子萱 with her ID, and a 韩子萱 at the same address whose number fails its check but whose date part reads
    2022-08-10: two girls of one name, not one girl with a mistyped number. One slip from her number still links."""
    her = make_id("350481", "20180914", 36)
    other = make_id("350481", "20220810", 322)
    other = other[:17] + ("0" if other[17] != "0" else "1")  # fails its check
    address = "永安市小陶镇竹坪村4组85号"
    for candidate, together in ((other, False), (mistype(her, 16), True)):
        rows = county + [rec("韩子萱", her, address=address, tag="v"),
                         rec("韩子萱", candidate, source="key_groups", sex="F", address="福建省三明市" + address, tag="k")]
        records = frame(rows)
        assert linked(resolve_people(records), records, "v", "k") is together


@pytest.mark.parametrize(("shown", "together"), [("3.60730E+17", False), ("3.50425E+17", True), ("3.50426E+17", True)])
def test_the_digits_excel_left_of_a_number_must_fit(county, shown, together):
    """徐浩 with his ID 350425…, and a 徐浩 at the same house whose ID Excel shows as a number: 3.60730E+17 cannot be
    his number; 3.50425E+17 can, and so can 3.50426E+17 (Excel rounds the last digit it shows)."""
    his = make_id("350425", "20151126", 125)
    address = "福建省三明市大田县吴山镇建坪村111号"
    rows = county + [rec("徐浩", his, source="subsistence", address=address, tag="a"),
                     rec("徐浩", shown, source="key_groups", sex="M", address=address, tag="b")]
    records = frame(rows)
    assert linked(resolve_people(records), records, "a", "b") is together


def test_enforcement_applicant_without_id_links_by_the_other_party(county):
    victim_id = make_id("350425", "19881010", 82)
    rows = county + [
        {**rec("郑美兰", victim_id, source="victims", phone="13959800000", tag="v"), "counterpart_name": "黄大龙"},
        {**rec("郑美兰", None, source="enforcement", tag="e"), "counterpart_name": "黄 大龙"},
        {**rec("郑美兰", None, source="enforcement", tag="other"), "counterpart_name": "某某建材有限公司"},
    ]
    records = frame(rows)
    res = resolve_people(records)
    row = link_row(res, records, "v", "e")
    assert row is not None and "案件对方当事人" in row["evidence_zh"]
    assert not linked(res, records, "v", "other")


def test_common_names_weigh_less_than_rare_ones(county):
    extra = [rec("张伟", None, birth=D(1950 + i % 50, 1 + i % 12, 1 + i % 28), tag=f"zw{i}") for i in range(60)]
    rows = county + extra + [
        rec("张伟", None, birth=D(1979, 5, 5), phone="13000000001", tag="c1"),
        rec("张伟", None, birth=D(1979, 5, 5), phone="13000000001", source="key_groups", tag="c2"),
        rec("晏紫萱", None, birth=D(1979, 5, 5), phone="13000000002", tag="r1"),
        rec("晏紫萱", None, birth=D(1979, 5, 5), phone="13000000002", source="key_groups", tag="r2"),
    ]
    records = frame(rows)
    res = resolve_people(records)
    common, rare = link_row(res, records, "c1", "c2"), link_row(res, records, "r1", "r2")
    assert common is not None and rare is not None
    assert common["name_weight"] < rare["name_weight"] - 3


def test_same_name_and_birth_date_with_contradicting_phone_and_address_do_not_link(county):
    rows = county + [
        rec("李娜", None, birth=D(1990, 5, 1), sex="F", phone="13811112222", address="大田县上京镇三阳村2组8号", tag="a"),
        rec("李娜", None, source="key_groups", birth=D(1990, 5, 1), sex="F", phone="13933334444",
            address="大田县广平镇铭溪村5组1号", tag="b"),
    ]
    records = frame(rows)
    for strict in (False, True):
        assert not linked(resolve_people(records, LinkSettings(require_corroboration=strict)), records, "a", "b")


def test_settings_reject_unknown_keys():
    with pytest.raises(ValueError):
        LinkSettings(match_probabilty=0.9)  # type: ignore[call-arg]
