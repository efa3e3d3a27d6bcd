"""Names: cleaning, annotations, traditional → simplified, middle dots, pinyin keys, comparison."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from matchers.names import (
    COMPOUND_SURNAMES,
    SURNAME_PINYIN,
    NameAgreement,
    NameParse,
    compare_names,
    parse_name,
    parse_names,
)

DOT = "\u00b7"


# ---------------------------------------------------------------- cleaning


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("张伟", "张伟"),
        (" 张 伟 ", "张伟"),
        ("张\u3000伟", "张伟"),
        ("张\t伟\n", "张伟"),
        ("張偉", "张伟"),
        ("劉德華", "刘德华"),
        ("\ufeff张伟\u200b", "张伟"),
        ("ＺＨＡＮＧ Wei", "zhang wei"),
        ("John  SMITH", "john smith"),
    ],
)
def test_clean_name(raw: str, name: str) -> None:
    assert parse_name(raw).name == name
    assert parse_name(raw).raw == raw


@pytest.mark.parametrize(
    ("raw", "name", "annotation"),
    [
        ("王五（户主）", "王五", "户主"),
        ("王五(户主)", "王五", "户主"),
        ("李四【已故】", "李四", "已故"),
        ("李四[死亡]", "李四", "死亡"),
        ("赵六(代)", "赵六", "代"),
        ("赵六（本人）", "赵六", "本人"),
        ("孙七(之子)", "孙七", "之子"),
        ("孙七（重复）（户主）", "孙七", "重复"),
        ("（户主）周八", "周八", "户主"),
        ("周八(户主", "周八", "户主"),
        ("张三户主", "张三", "户主"),
        ("张三 已故", "张三", "已故"),
        ("欧阳娜娜本人", "欧阳娜娜", "本人"),
    ],
)
def test_annotations_removed_first_kept(raw: str, name: str, annotation: str) -> None:
    p = parse_name(raw)
    assert (p.name, p.annotation) == (name, annotation)


@pytest.mark.parametrize("raw", ["王时代", "李代", "张主"])
def test_unbracketed_suffix_needs_known_word_and_two_char_rest(raw: str) -> None:
    p = parse_name(raw)
    assert p.annotation is None and p.name == raw


def test_relation_suffix_without_brackets_is_kept() -> None:
    # '张三之子' names 张三's son, not 张三: never strip it into 张三.
    assert parse_name("张三之子").name == "张三之子"


@pytest.mark.parametrize(
    "raw",
    [
        "阿依古丽·买买提",
        "阿依古丽•买买提",
        "阿依古丽‧买买提",
        "阿依古丽・买买提",
        "阿依古丽･买买提",
        "阿依古丽∙买买提",
        "阿依古丽⋅买买提",
        "阿依古丽‐买买提",
        "阿依古丽.买买提",
        "阿依古丽．买买提",
        "阿依古丽\u00b7\u00b7买买提",
        "阿依古丽 · 买买提",
    ],
)
def test_middle_dot_variants(raw: str) -> None:
    p = parse_name(raw)
    assert p.name == f"阿依古丽{DOT}买买提"
    assert p.pinyin == "ayigulimaimaiti"
    assert p.surname is None and p.given is None


@pytest.mark.parametrize("token", [None, "", "   ", "无", "不详", "/", "-", "null", "None", "nan", "#N/A", float("nan")])
def test_null_tokens(token: object) -> None:
    p = parse_name(token)
    assert (p.name, p.annotation, p.surname, p.given, p.pinyin) == (None, None, None, None, None)


def test_only_annotation_is_no_name() -> None:
    p = parse_name("(户主)")
    assert p.name is None and p.annotation == "户主"


def test_names_keep_characters_t2s_would_change() -> None:
    assert parse_name("张乾").name == "张乾"
    assert parse_name("於梅").name == "於梅"


# ---------------------------------------------------------------- surname and pinyin


@pytest.mark.parametrize(
    ("raw", "surname", "given", "pinyin"),
    [
        ("曾伟", "曾", "伟", "zengwei"),
        ("单田芳", "单", "田芳", "shantianfang"),
        ("解放", "解", "放", "xiefang"),
        ("仇英", "仇", "英", "qiuying"),
        ("区小明", "区", "小明", "ouxiaoming"),
        ("查良镛", "查", "良镛", "zhaliangyong"),
        ("朴槿", "朴", "槿", "piaojin"),
        ("盖聂", "盖", "聂", "genie"),
        ("翟丽", "翟", "丽", "zhaili"),
        ("覃海", "覃", "海", "qinhai"),
        ("缪斯", "缪", "斯", "miaosi"),
        ("尉迟恭", "尉迟", "恭", "yuchigong"),
        ("万俟卨", "万俟", "卨", "moqixie"),
        ("长孙无忌", "长孙", "无忌", "zhangsunwuji"),
        ("欧阳娜娜", "欧阳", "娜娜", "ouyangnana"),
        ("诸葛亮", "诸葛", "亮", "zhugeliang"),
        ("吕方", "吕", "方", "lvfang"),
        ("张伟", "张", "伟", "zhangwei"),
    ],
)
def test_surname_given_pinyin(raw: str, surname: str, given: str, pinyin: str) -> None:
    p = parse_name(raw)
    assert (p.surname, p.given, p.pinyin) == (surname, given, pinyin)


def test_two_char_name_starting_like_compound_surname() -> None:
    # '欧阳' alone is more likely 欧 + 阳 than a bare compound surname.
    p = parse_name("欧阳")
    assert (p.surname, p.given) == ("欧", "阳")


def test_surname_tables() -> None:
    assert {"欧阳", "司马", "诸葛", "上官", "尉迟", "万俟", "长孙", "令狐", "端木"} <= COMPOUND_SURNAMES
    assert SURNAME_PINYIN["曾"] == "zeng" and SURNAME_PINYIN["尉迟"] == "yuchi"
    assert all(v.isascii() and v.islower() and " " not in v for v in SURNAME_PINYIN.values())


def test_latin_name_pinyin_is_letters_only() -> None:
    assert parse_name("O'Brien Mary").pinyin == "obrienmary"


# ---------------------------------------------------------------- comparison


def agree(a: object, b: object) -> NameAgreement:
    return compare_names(parse_name(a), parse_name(b))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("张伟", "张伟", NameAgreement.EXACT),
        ("张伟", " 張 偉(户主)", NameAgreement.EXACT),
        ("阿依古丽·买买提", "阿依古丽买买提", NameAgreement.EXACT),
        ("张伟", "张玮", NameAgreement.SAME_PINYIN),
        ("张伟", "张炜", NameAgreement.SAME_PINYIN),
        ("李娜", "黎娜", NameAgreement.SAME_PINYIN),
        ("张伟", "张传", NameAgreement.ONE_CHAR),
        ("欧阳娜娜", "欧阳丽娜", NameAgreement.ONE_CHAR),
        ("王晓明", "王晓亮", NameAgreement.ONE_CHAR),
        ("李娜", "张娜", NameAgreement.DIFFERENT),
        ("王晓明", "王明晓", NameAgreement.TRANSPOSED),
        ("王晓明", "王小明", NameAgreement.SAME_PINYIN),
        ("张伟", "张伟明", NameAgreement.DIFFERENT),
        ("张伟", "王芳", NameAgreement.DIFFERENT),
        ("王晓明", "王亮华", NameAgreement.DIFFERENT),
        ("张伟", None, NameAgreement.MISSING),
        ("无", "张伟", NameAgreement.MISSING),
        (None, None, NameAgreement.MISSING),
    ],
)
def test_compare_names(a: object, b: object, expected: NameAgreement) -> None:
    assert agree(a, b) is expected
    assert agree(b, a) is expected


def test_compare_names_minority_one_char() -> None:
    assert agree("阿依古丽·买买提", "阿依古丽·买卖提") is NameAgreement.SAME_PINYIN
    assert agree("阿依古丽·买买提", "阿依古丽·买买江") is NameAgreement.ONE_CHAR
    assert agree("阿依古丽·买买提", "热依古丽·买买提") is NameAgreement.DIFFERENT


def test_same_pinyin_needs_same_length() -> None:
    # 张西安 and 张先 both read 'zhangxian' without syllable breaks.
    assert agree("张西安", "张先") is NameAgreement.DIFFERENT


# ---------------------------------------------------------------- vectorised


def test_parse_names_matches_parse_name_and_keeps_order() -> None:
    values = pl.Series(["曾伟", None, "王五（户主）", "曾伟", "  ", "張偉", "王五（户主）"])
    out = parse_names(values)
    assert out.columns == ["name", "annotation", "surname", "given", "pinyin"]
    assert out.height == values.len()
    for row, raw in zip(out.iter_rows(named=True), values.to_list()):
        p = parse_name(raw)
        assert row == {"name": p.name, "annotation": p.annotation, "surname": p.surname, "given": p.given, "pinyin": p.pinyin}


def test_parse_names_without_pinyin_gives_the_same_names() -> None:
    values = pl.Series(["曾伟", None, "王五（户主）", "張偉", "买买提·艾力"])
    full, names_only = parse_names(values), parse_names(values, with_pinyin=False)
    assert names_only.drop("pinyin").equals(full.drop("pinyin"))
    assert names_only["pinyin"].null_count() == values.len()


def test_parse_names_empty_and_non_string() -> None:
    assert parse_names(pl.Series([], dtype=pl.String)).height == 0
    assert parse_names(pl.Series([None, None], dtype=pl.String))["name"].to_list() == [None, None]
    assert parse_names(pl.Series([1, None]))["name"].to_list() == ["1", None]


# ---------------------------------------------------------------- properties

hanzi = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
cjk_names = st.text(hanzi, min_size=2, max_size=4)


@given(cjk_names)
def test_parse_is_idempotent(raw: str) -> None:
    p = parse_name(raw)
    assume(p.name is not None)  # e.g. 不详
    assert parse_name(p.name).name == p.name


@given(cjk_names, st.lists(st.sampled_from([" ", "\u3000", "\t"]), max_size=3))
def test_whitespace_never_matters(raw: str, spaces: list[str]) -> None:
    dirty = "".join(s + c for s, c in zip(spaces + [""] * len(raw), raw))
    assume(parse_name(raw).name is not None)
    assert compare_names(parse_name(raw), parse_name(dirty)) is NameAgreement.EXACT


@given(cjk_names, cjk_names)
def test_comparison_is_symmetric(a: str, b: str) -> None:
    assert compare_names(parse_name(a), parse_name(b)) is compare_names(parse_name(b), parse_name(a))


def test_name_parse_is_frozen() -> None:
    p = parse_name("张伟")
    assert isinstance(p, NameParse)
    with pytest.raises(AttributeError):
        p.name = "x"  # type: ignore[misc]


def test_transposed_means_two_characters_swapped() -> None:
    assert agree("欧阳晓明", "欧阳明晓") is NameAgreement.TRANSPOSED
    assert agree("王晓明亮", "王明亮晓") is NameAgreement.DIFFERENT  # rotated, not swapped
    assert agree("晓王明", "王晓明") is NameAgreement.DIFFERENT  # surname involved


def test_a_middle_dot_lost_in_a_gbk_export_is_restored():
    lost = parse_name("努尔买买提?阿不都拉")
    assert lost.name == "努尔买买提·阿不都拉"
    assert compare_names(lost, parse_name("努尔买买提·阿不都拉")) is NameAgreement.EXACT


def test_a_name_holding_a_dictionary_word_reads_the_same_alone_and_in_a_batch() -> None:
    # 标的 is a word (biāodì); a lone name and the same name among others must get one pinyin key
    values = ["?一标的", "张标的", "王一标的明", "李四"]
    batch = parse_names(pl.Series(values))["pinyin"].to_list()
    assert batch == [parse_name(v).pinyin for v in values]
