"""Household relations between resolved people, from the subsistence rolls and the victims' case files.

A row (person_id, household_person_id, relation, basis) reads: *household_person is person's
<relation>* — e.g. (victim, wife, 配偶), (victim, son, 子女), (son, victim, 父母).

- Subsistence (basis 'subsistence'): members sharing a household_key are one household. Each member's
  relation to the household head (与户主关系) gives the relation between two members: the head's
  spouse is the head's 配偶; a child of the head is the head's spouse's 子女 too; two children of the
  head are 兄弟姐妹. Pairs the roll does not pin down are 同户成员.
- Victims (basis 'victim_case'): a row with role 'relative' belongs to the household of the victim
  of the same case (records column `case_no`); its relation (与被害人关系) is its relation to the
  victim. Cases with more than one victim are skipped: the relation would be ambiguous.
"""

from __future__ import annotations

import polars as pl

__all__ = ["household_relations", "relation_role", "relation_roles"]

# Keyword → role, checked in order (the first match wins): 孙女 before 女, 岳父 before 父, 姐夫 before 夫.
_ROLE_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("head", ("户主", "本人", "申请人")),
    ("other", ("姐夫", "妹夫", "嫂", "弟媳", "弟妹", "侄", "甥", "叔", "伯", "姑", "舅", "姨", "堂", "表")),
    ("grandchild", ("孙", "外孙")),
    ("grandparent", ("祖父", "祖母", "爷爷", "奶奶", "外公", "外婆", "姥")),
    ("child_in_law", ("儿媳", "女婿")),
    ("parent_in_law", ("岳父", "岳母", "公公", "婆婆", "配偶父", "配偶母")),
    ("spouse", ("配偶", "妻", "夫", "爱人", "老伴", "老公", "老婆")),
    ("parent", ("父", "母", "爸", "妈")),
    ("child", ("子", "女", "儿")),
    ("sibling", ("兄", "弟", "姐", "妹", "哥")),
)

# (A's role, B's role), both relative to the household head → what B is to A.
_PAIR_RELATION: dict[tuple[str, str], str] = {
    ("head", "spouse"): "配偶", ("head", "child"): "子女", ("head", "parent"): "父母",
    ("head", "sibling"): "兄弟姐妹", ("head", "grandchild"): "孙子女", ("head", "grandparent"): "祖父母",
    ("head", "child_in_law"): "子女配偶", ("head", "parent_in_law"): "配偶父母",
    ("spouse", "head"): "配偶", ("spouse", "child"): "子女", ("spouse", "grandchild"): "孙子女",
    ("spouse", "parent"): "配偶父母", ("spouse", "parent_in_law"): "父母", ("spouse", "child_in_law"): "子女配偶",
    ("child", "head"): "父母", ("child", "spouse"): "父母", ("child", "child"): "兄弟姐妹",
    ("child", "parent"): "祖父母", ("child", "parent_in_law"): "祖父母",
    ("parent", "head"): "子女", ("parent", "spouse"): "子女配偶", ("parent", "child"): "孙子女",
    ("parent", "parent"): "配偶", ("parent", "sibling"): "子女",
    ("parent_in_law", "spouse"): "子女", ("parent_in_law", "head"): "子女配偶",
    ("parent_in_law", "parent_in_law"): "配偶",
    ("sibling", "head"): "兄弟姐妹", ("sibling", "sibling"): "兄弟姐妹", ("sibling", "parent"): "父母",
    ("grandchild", "head"): "祖父母", ("grandchild", "spouse"): "祖父母",
    ("grandparent", "head"): "孙子女",
    ("child_in_law", "head"): "配偶父母", ("child_in_law", "spouse"): "配偶父母",
}
_SAME_HOUSEHOLD = "同户成员"

# What a victim's relative is to the victim → (relation label, the inverse: what the victim is to them).
_VICTIM_RELATION: dict[str, tuple[str, str]] = {
    "spouse": ("配偶", "配偶"), "child": ("子女", "父母"), "parent": ("父母", "子女"),
    "sibling": ("兄弟姐妹", "兄弟姐妹"), "grandchild": ("孙子女", "祖父母"), "grandparent": ("祖父母", "孙子女"),
    "child_in_law": ("子女配偶", "配偶父母"), "parent_in_law": ("配偶父母", "子女配偶"),
}
_RELATIVE = "亲属"
_SPECIFIC_FIRST = {_SAME_HOUSEHOLD: 1, _RELATIVE: 1}


def relation_role(text: str | None) -> str | None:
    """A relation as written (与户主关系 / 与被害人关系) → head / spouse / child / parent / sibling /
    grandchild / grandparent / child_in_law / parent_in_law / other; None when blank."""
    if text is None:
        return None
    t = "".join(str(text).split())
    if not t:
        return None
    for role, words in _ROLE_KEYWORDS:
        if any(w in t for w in words):
            return role
    return "other"


def relation_roles(relation: pl.Series) -> pl.Series:
    """relation_role over a column of relations as written, each distinct text worked out once (a few dozen
    across a province)."""
    distinct = relation.drop_nulls().unique().to_list()
    return relation.replace_strict(dict(zip(distinct, map(relation_role, distinct))), default=None,
                                   return_dtype=pl.String)


_PAIR_RELATIONS = pl.DataFrame(
    [(a, b, relation) for (a, b), relation in _PAIR_RELATION.items()],
    schema={"role": pl.String, "other_role": pl.String, "relation": pl.String}, orient="row",
)


def _subsistence_pairs(members: pl.DataFrame) -> pl.DataFrame:
    left = members.select("household_key", pl.col("person_id"), pl.col("role"))
    right = members.select("household_key", pl.col("person_id").alias("other"), pl.col("role").alias("other_role"))
    pairs = left.join(right, on="household_key").filter(pl.col("person_id") != pl.col("other"))
    pairs = pairs.join(_PAIR_RELATIONS, on=["role", "other_role"], how="left", maintain_order="left")
    return pairs.select(
        "person_id", pl.col("other").alias("household_person_id"),
        pl.col("relation").fill_null(_SAME_HOUSEHOLD), pl.lit("subsistence").alias("basis"),
    )


def _victim_case_pairs(victims: pl.DataFrame) -> pl.DataFrame:
    victim_rows = victims.filter(pl.col("role") == "victim").select("case_no", pl.col("person_id").alias("victim"))
    single = victim_rows.unique().group_by("case_no").agg(pl.col("victim").first(), pl.len().alias("n"))
    single = single.filter(pl.col("n") == 1).drop("n")
    rel = victims.filter(pl.col("role") == "relative").join(single, on="case_no")
    forward, backward = [], []
    for role in rel["role_rel"].to_list():
        fwd, back = _VICTIM_RELATION.get(role or "", (_RELATIVE, _RELATIVE))
        forward.append(fwd)
        backward.append(back)
    there = rel.select(pl.col("victim").alias("person_id"), pl.col("person_id").alias("household_person_id"),
                       pl.Series("relation", forward, dtype=pl.String))
    back = rel.select(pl.col("person_id"), pl.col("victim").alias("household_person_id"),
                      pl.Series("relation", backward, dtype=pl.String))
    return pl.concat([there, back]).with_columns(pl.lit("victim_case").alias("basis"))


def household_relations(records: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    """Household relations between people (see the module docstring); one row per ordered pair."""
    schema = {"person_id": pl.String, "household_person_id": pl.String, "relation": pl.String, "basis": pl.String}
    cols = set(records.columns)
    relation = pl.col("relation") if "relation" in cols else pl.lit(None, dtype=pl.String)
    base = records.select(
        "record_id",
        pl.col("source") if "source" in cols else pl.lit(None, dtype=pl.String).alias("source"),
        pl.col("role") if "role" in cols else pl.lit(None, dtype=pl.String).alias("role_raw"),
        pl.col("household_key") if "household_key" in cols else pl.lit(None, dtype=pl.String).alias("household_key"),
        pl.col("case_no").cast(pl.String) if "case_no" in cols else pl.lit(None, dtype=pl.String).alias("case_no"),
        relation.cast(pl.String).alias("relation_text"),
    ).filter(  # the rows a relation can come from: household rolls and victims' case files
        pl.col("household_key").is_not_null() | ((pl.col("source") == "victims") & pl.col("case_no").is_not_null())
    ).join(clusters, on="record_id", how="inner", maintain_order="left")
    base = base.with_columns(relation_roles(base["relation_text"]).alias("role_rel"))
    parts = [pl.DataFrame(schema=schema)]
    members = base.filter(pl.col("household_key").is_not_null()).select(
        "household_key", "person_id", pl.col("role_rel").alias("role")
    ).unique(["household_key", "person_id"], keep="first", maintain_order=True)
    if members.height:
        parts.append(_subsistence_pairs(members))
    if "role" in base.columns:
        victims = base.filter((pl.col("source") == "victims") & pl.col("case_no").is_not_null())
        if victims.height:
            parts.append(_victim_case_pairs(victims))
    out = pl.concat(parts, how="vertical_relaxed").filter(pl.col("person_id") != pl.col("household_person_id"))
    return (
        out.with_columns(pl.col("relation").replace_strict(_SPECIFIC_FIRST, default=0, return_dtype=pl.Int8).alias("_rank"))
        .sort("person_id", "household_person_id", "_rank", "basis")
        .unique(["person_id", "household_person_id"], keep="first", maintain_order=True)
        .drop("_rank")
    )
