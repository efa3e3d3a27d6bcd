"""Score: per victim and case, how likely the case left the family in hardship, with readable reasons.

The national judicial-aid rules open aid for serious harm (death, serious injury, disability) where no
compensation is obtainable (终本, offender insolvent) and the household is in hardship; they exclude
victims who were reasonably compensated or bear major fault. Each rule becomes a signal with points
from `ScoringConfig`; each signal carries a Chinese reason with its figure.

When the victim died or lost the ability to work, the lead's subject is the relative who carries the
burden (spouse first, then an adult child, then a parent), and the lead names the victim and the case.

The work is set-based: every case's family, facts, signals and lead fields are polars frames, so a
province's 50,000 cases cost a few dozen joins rather than 50,000 Python loops. Python still formats the
distinct figures (amounts, shares) and computes the distinct unpaid amounts' points, so texts and scores
are Python's to the last digit and bit; and it hashes and masks once per lead.

Order conventions, which decide reason order among equal points and which record a shared enforcement
case or household is cited from: the victim, then the case's relatives in the order of their rows, then
household members (sharing a subsistence household with the victim or a relative) by person id; a
person's facts in record-id order, then in the order of the fact table's rows (enforcement facts in
the order of the table's rows).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import duckdb
import polars as pl

from matchers.idnumber import mask_id, mask_phone
from pipeline.persons import keyed_hashes
from pipeline.store import query_frame, registered
from schemas.config import ScoringConfig

__all__ = ["score_leads", "load_score_inputs", "work_out_reach", "ScoreInputs", "LEAD_COLUMNS"]

_SPOUSE = ("配偶", "妻", "夫", "丈夫", "妻子", "老伴")
_CHILD = ("子", "女", "儿")
_PARENT = ("父", "母")
_DISABLING_INJURIES = ("死亡", "重伤一级")
_KIND_ORDER = {"spouse": 0, "child": 1, "parent": 2, "household": 3, "other": 4}
_CROSS_SOURCE = ("unpaid", "disability", "key_group", "subsistence")
_NO_FAULT = ("无", "否", "没有", "0")
_LEVEL_ZH = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}
_SOURCE_ZH = {"victims": "被害人", "disability": "残疾人持证", "subsistence": "低保特困", "enforcement": "终本案件",
              "key_groups": "重点人群"}
_PY_WHITESPACE = "".join(ch for ch in map(chr, range(0x3001)) if ch.isspace())
"""what str.strip() removes (Python counts a few control characters that Rust's whitespace does not)"""
_BEST_COLUMNS = ("name", "id18", "birth_date", "sex", "phone", "address")
_CASE_COLUMNS = ("charge", "injury", "incident_date", "unit", "compensation_ordered", "compensation_received",
                 "victim_fault")
_ORDER = ["stage", "pos", "part", "order_record", "order_row"]
"""a signal's place in the order the rules raise signals; reasons with equal points keep this order"""

LEAD_COLUMNS = [
    "lead_id", "case_no", "subject_person_id", "victim_person_id", "subject_role", "score", "tier",
    "subject_name", "id_masked", "phone", "address", "victim_name", "charge", "injury", "incident_date", "unit",
    "reasons", "evidence", "source_rows", "referrals", "aid_estimate", "fingerprint", "sources_hit",
    "subject_id18", "subject_phone", "priority_groups",
]


class ScoreInputs(NamedTuple):
    """What score_leads reads: records with person_id, fact tables, and evidence (record_id, evidence_zh)."""

    records: pl.DataFrame
    facts: dict[str, pl.DataFrame]
    evidence: pl.DataFrame


_RECORD_COLUMNS = ("record_id", "source", "source_file", "row_number", "name_raw", "name", "id18", "birth_date",
                   "sex", "phone", "address")
_FACT_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "victim_facts": {"record_id": pl.Int64(), "case_no": pl.String(), "role": pl.String(), "relation": pl.String(),
                     "charge": pl.String(), "injury": pl.String(), "incident_date": pl.Date(), "unit": pl.String(),
                     "compensation_ordered": pl.Float64(), "compensation_received": pl.Float64(),
                     "victim_fault": pl.String()},
    "disability_facts": {"record_id": pl.Int64(), "category": pl.String(), "level": pl.Int64(),
                         "issue_date": pl.Date()},
    "subsistence_facts": {"record_id": pl.Int64(), "household_key": pl.String(), "aid_type": pl.String(),
                          "monthly_amount": pl.Float64(), "start_date": pl.Date()},
    "enforcement_facts": {"record_id": pl.Int64(), "enforcement_case_no": pl.String(),
                          "amount_ordered": pl.Float64(), "amount_unpaid": pl.Float64()},
    "key_group_facts": {"record_id": pl.Int64(), "group_name": pl.String(), "list_date": pl.Date()},
}
"""the fact columns scoring reads, in the types it reads them"""
_REACH_SQL = """
CREATE OR REPLACE TEMP TABLE score_reach AS
WITH case_people AS (       -- victims and relatives named in a case file
    SELECT DISTINCT coalesce(v.case_no, 'None') AS case_file, m.person_id
    FROM victim_facts v JOIN person_members m USING (record_id)
), case_households AS (     -- subsistence households a case file's people belong to
    SELECT DISTINCT c.case_file, s.household_key
    FROM case_people c JOIN person_members m USING (person_id) JOIN subsistence_facts s USING (record_id)
)
SELECT case_file, person_id FROM case_people
UNION
SELECT h.case_file, m.person_id
FROM case_households h JOIN subsistence_facts s USING (household_key) JOIN person_members m USING (record_id)
"""
_IN_UNITS = "coalesce(v.case_no, 'None') IN (SELECT case_file FROM _score_units)"
"""a victim row of the case files asked for (a row without a case number belongs to the file 'None')"""


def work_out_reach(con: duckdb.DuckDBPyConnection) -> None:
    """The temp table score_reach: per case file (its case number, 'None' for rows without one), the people its
    leads can draw on — those named in it and everyone sharing a subsistence household with them."""
    con.execute(_REACH_SQL)


def load_score_inputs(con: duckdb.DuckDBPyConnection, units: pl.Series | None = None) -> ScoreInputs:
    """The records, facts and evidence a lead can draw on, and only those: every record of the people in
    the reach of a case file (`work_out_reach`). A province's rolls are mostly people no case touches. Fact
    rows keep their table order (it decides which record a shared fact is cited from).

    Without `units`, for every case file (the reach is worked out here and dropped). With `units` (case
    numbers, 'None' for rows without one), only what those case files draw on, and of the victim rows only
    theirs: score_leads then gives exactly those files' leads. The caller (pipeline.score_cache) has then
    worked out score_reach already, for its digests."""
    if units is None:
        work_out_reach(con)
    cases = "TRUE" if units is None else _IN_UNITS
    wanted = "TRUE" if units is None else "case_file IN (SELECT case_file FROM _score_units)"
    try:
        with registered(con, _score_units=pl.DataFrame({"case_file": units if units is not None else []},
                                                       schema={"case_file": pl.String})):
            con.execute(f"""CREATE OR REPLACE TEMP TABLE score_reach_records AS
                            SELECT m.record_id, m.person_id FROM person_members m
                            WHERE m.person_id IN (SELECT person_id FROM score_reach WHERE {wanted})""")
            records = query_frame(con, f"""
                SELECT {", ".join("r." + c for c in _RECORD_COLUMNS)}, s.person_id
                FROM person_records r JOIN score_reach_records s USING (record_id)""")
            facts = {table: query_frame(con, f"""
                         SELECT {", ".join("v." + c for c in columns)} FROM {table} v
                         WHERE record_id IN (SELECT record_id FROM score_reach_records)
                         {"AND " + cases if table == "victim_facts" else ""} ORDER BY v.rowid""")
                     for table, columns in _FACT_SCHEMAS.items()}
            evidence = query_frame(con, """
                SELECT record_id, evidence_zh FROM record_evidence
                WHERE record_id IN (SELECT record_id FROM score_reach_records) ORDER BY rowid""")
    finally:
        con.execute("DROP TABLE IF EXISTS score_reach_records")
        if units is None:
            con.execute("DROP TABLE IF EXISTS score_reach")
    return ScoreInputs(records, facts, evidence)


def _wan(amount: float) -> str:
    return f"{amount / 10000:.1f} 万元" if amount >= 10000 else f"{amount:,.0f} 元"


def _rel_kind(relation: str | None) -> str:
    """spouse / child / parent / other, from a relation written in Chinese."""
    text = relation or ""
    if any(s in text for s in _SPOUSE) and not text.endswith(("姐夫", "妹夫")):
        return "spouse"
    if text.startswith(_PARENT):
        return "parent"
    if any(s in text for s in _CHILD) or "孙" in text:
        return "child"
    if any(s in text for s in _PARENT):
        return "parent"
    return "other"


def _per_value(frame: pl.DataFrame, value: pl.Expr, fn: Callable[[Any], Any],
               dtype: pl.DataType = pl.String()) -> pl.Series:
    """fn of a value per row, computed in Python once per distinct value; nulls stay null.

    For Python's own number formatting, and for arithmetic that must match Python's to the last bit
    (polars divides by a constant through its reciprocal, which can differ in the last bit)."""
    values = frame.select(value).to_series()
    distinct = values.drop_nulls().unique()
    return values.replace_strict(distinct, [fn(v) for v in distinct.to_list()], default=None, return_dtype=dtype)



_STARS = "*" * 64
_PLAIN = r"^[0-9A-Za-z]{1,64}$"
"""values masked in polars: ASCII letters and digits only (nothing to strip; no null token is all digits, and
the letter-only tokens are left to Python), at most 64 characters"""


def _masked(frame: pl.DataFrame, value: pl.Expr, mask: Callable[[Any], str], keep_head: int,
            keep_tail: int) -> pl.Series:
    """mask (mask_id, mask_phone) of a value per row: plain digit-led values in polars, the rest once per
    distinct value in Python, as `_per_value` does; nulls stay null."""
    values = frame.select(value).to_series().cast(pl.String)
    plain = (values.str.contains(_PLAIN) & values.str.contains("^[0-9]")).fill_null(False)
    n = values.str.len_chars()
    stars = pl.lit(_STARS)
    fast = pl.select(pl.when(n <= keep_head + keep_tail).then(stars.str.slice(0, n))
                     .otherwise(pl.concat_str(values.str.slice(0, keep_head),
                                              stars.str.slice(0, n - keep_head - keep_tail),
                                              values.str.slice(-keep_tail)))).to_series()
    slow = _per_value(pl.DataFrame({"v": values.set(plain, None)}), pl.col("v"), mask)
    return pl.select(pl.when(pl.lit(plain)).then(fast).otherwise(slow)).to_series()


def _percent(share: float) -> str:
    return f"{share:.0%}"


def _age(birth: pl.Expr, on: pl.Expr) -> pl.Expr:
    """Whole years from birth to on; null when birth is null."""
    def month_day(date: pl.Expr) -> pl.Expr:
        return date.dt.month().cast(pl.Int32) * 100 + date.dt.day().cast(pl.Int32)

    before_birthday = month_day(on) < month_day(birth)
    return (on.dt.year() - birth.dt.year() - before_birthday.cast(pl.Int32)).cast(pl.Int64)


def _has_text(column: str) -> pl.Expr:
    """Python truthiness of a text column: neither null nor empty."""
    return pl.col(column).is_not_null() & (pl.col(column) != "")


def _nonzero(column: str) -> pl.Expr:
    """Python truthiness of a number column: neither null nor zero."""
    return pl.col(column).is_not_null() & (pl.col(column) != 0)


def _or(column: str, default: str) -> pl.Expr:
    """`value or default` for a text column."""
    return pl.when(_has_text(column)).then(pl.col(column)).otherwise(pl.lit(default))


def _after(date: str) -> pl.Expr:
    """（案发后纳入）/（案发前已纳入） when both dates are known, else empty."""
    return (pl.when(pl.col(date).is_null() | pl.col("incident_date").is_null()).then(pl.lit(""))
            .when(pl.col(date) >= pl.col("incident_date")).then(pl.lit("（案发后纳入）"))
            .otherwise(pl.lit("（案发前已纳入）")))


def _joined(separator: str, parts: list[pl.Expr]) -> pl.Expr:
    """separator.join of the parts that are not null, per row."""
    return pl.concat_str(parts, separator=separator, ignore_nulls=True).fill_null("")


def _empty_leads() -> pl.DataFrame:
    return pl.DataFrame(schema={c: pl.String for c in LEAD_COLUMNS})


_BULK_LEAD_IDS = 2_000
"""from this many leads on, their ids are hashed by DuckDB (a province's 20,000 in a tenth of the loop's time)"""


def _lead_ids(key: bytes, case_numbers: list[str], identities: list[str]) -> list[str]:
    """Stable, non-reversible lead ids: a keyed hash (HMAC-SHA256) of case number and identity."""
    if len(case_numbers) >= _BULK_LEAD_IDS:
        messages = pl.Series([f"{case_no}|{identity}" for case_no, identity in zip(case_numbers, identities)])
        return ("XS" + keyed_hashes(messages, key).str.slice(0, 12).str.to_uppercase()).to_list()
    keyed = hmac.new(key, digestmod=hashlib.sha256)
    ids = []
    for case_no, identity in zip(case_numbers, identities):
        mac = keyed.copy()
        mac.update(f"{case_no}|{identity}".encode("utf-8"))
        ids.append("XS" + mac.hexdigest()[:12].upper())
    return ids


def score_leads(
    records: pl.DataFrame,
    facts: dict[str, pl.DataFrame],
    evidence_by_record: Mapping[int, str] | pl.DataFrame,
    cfg: ScoringConfig,
    lead_key: bytes,
    today: dt.date | None = None,
    aided_before: dict[str, str] | None = None,
) -> pl.DataFrame:
    """One row per (case, subject) worth a prosecutor's look, ranked; columns LEAD_COLUMNS.

    records: person_records with person_id. evidence_by_record: record id → why the record is the person
    (a mapping, or a frame of record_id and evidence_zh). aided_before maps a person id to the case in
    which that person already received judicial aid.
    """
    today = today or dt.date.today()
    victims = _fact_frame(facts, "victim_facts")
    if victims.height == 0:
        return _empty_leads()
    person_of = records.select("record_id", "person_id")
    rows = (victims.with_row_index("row").join(person_of, on="record_id")  # a row without its record raises no lead
            .sort("row"))
    is_relative = (pl.col("role") == "relative").fill_null(False)
    cases = (rows.filter(~is_relative)
             .group_by("case_no", "person_id", maintain_order=True)
             .agg(pl.col("record_id").alias("victim_records"), *[pl.col(c).first() for c in _CASE_COLUMNS])
             .rename({"person_id": "victim"})
             .with_row_index("case"))  # case i is row i, in the order the victims' rows first name them
    if cases.height == 0:
        return _empty_leads()
    victim_records = cases.select("case", record_id="victim_records").explode("record_id")
    cases = cases.drop("victim_records")
    relatives = rows.filter(is_relative).select("case_no", "person_id", "relation", "record_id", "row")
    subsistence = _person_facts(facts, "subsistence_facts", person_of)
    members = _members(cases, relatives, subsistence)
    records = records.join(members.select("person_id").unique(), on="person_id", how="semi")  # all a lead draws on
    person_of = records.select("record_id", "person_id")
    disability = _person_facts(facts, "disability_facts", person_of)
    key_groups = _person_facts(facts, "key_group_facts", person_of)
    enforcement = _person_facts(facts, "enforcement_facts", person_of)
    subsistence = subsistence.join(person_of.select("record_id"), on="record_id", how="semi")
    people = _people(records, disability, aided_before or {}, today)
    members = members.join(people, on="person_id", how="left", maintain_order="left")
    cases = _with_subject(cases, members)
    members = _with_case_roles(members, cases)
    cases = _with_case_facts(cases, members, today, cfg)

    signals = pl.concat([
        _harm_signals(cases, cfg),
        _unpaid_signals(members, enforcement, cfg),
        _roll_signals(members, disability, key_groups, cfg),
        _subsistence_signals(members, subsistence, cfg),
    ])
    scored = _scored(signals, cfg)
    cases = cases.join(scored, on="case")  # a case without a cross-source signal raises no lead
    cases = cases.join(_unpaid_totals(members, enforcement), on="case", how="left")
    signals = pl.concat([signals.join(cases.select("case"), on="case", how="semi"), _case_signals(cases, today, cfg)])
    leads = _scored_leads(cases, signals, cfg)
    if leads.height == 0:
        return _empty_leads()
    used = _used_records(leads, signals, victim_records, relatives, records, members, evidence_by_record)
    return _lead_frame(leads, used, lead_key, cfg)


def _fact_frame(facts: dict[str, pl.DataFrame], table: str) -> pl.DataFrame:
    """A fact table in the types scoring reads: absent counts as empty, and the empty table written for a
    source that sent nothing (all text columns) is typed like a full one."""
    schema = _FACT_SCHEMAS[table]
    frame = facts.get(table)
    if frame is None:
        return pl.DataFrame(schema=schema)
    return frame.cast({column: dtype for column, dtype in schema.items()
                       if column in frame.columns and frame.schema[column] != dtype})


def _person_facts(facts: dict[str, pl.DataFrame], table: str, person_of: pl.DataFrame) -> pl.DataFrame:
    """A fact table with the person of each fact and its row number ('row'); facts without a record dropped."""
    return _fact_frame(facts, table).with_row_index("row").join(person_of, on="record_id")


def _members(cases: pl.DataFrame, relatives: pl.DataFrame, subsistence: pl.DataFrame) -> pl.DataFrame:
    """Per case, the victim (pos 0) and everyone else who could carry the burden (pos from 1): the case's
    relatives in the order of their rows, then people sharing a subsistence household with the victim or a
    relative, by person id. Sorted by case and pos."""
    case_relatives = (
        cases.select("case", "case_no", "victim")
        .join(relatives, on="case_no", nulls_equal=True)
        .filter(pl.col("person_id") != pl.col("victim"))
        .group_by("case", "person_id")
        .agg(pl.col("row").min().alias("first_row"), pl.col("relation").sort_by("row").last())
    )
    case_relatives = case_relatives.with_columns(
        kind=_per_value(case_relatives, pl.col("relation").fill_null(""), _rel_kind))
    households = subsistence.select("person_id", "household_key").unique()
    anchors = pl.concat([cases.select("case", person_id=pl.col("victim")), case_relatives.select("case", "person_id")])
    household = (
        anchors.join(households, on="person_id")
        .join(households.rename({"person_id": "member"}), on="household_key")
        .select("case", person_id=pl.col("member")).unique()
        .join(cases.select("case", "victim"), on="case")
        .filter(pl.col("person_id") != pl.col("victim"))
        .join(case_relatives.select("case", "person_id"), on=["case", "person_id"], how="anti")
    )
    family = pl.concat([
        case_relatives.select("case", "person_id", "kind", "relation", group=pl.lit(0), first_row=pl.col("first_row")),
        household.select("case", "person_id", kind=pl.lit("household"), relation=pl.lit(None, pl.String),
                         group=pl.lit(1), first_row=pl.lit(0, pl.UInt32)),
    ]).sort("case", "group", "first_row", "person_id")
    family = family.select(
        "case", "person_id",
        pos=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("case"),
        kind="kind", relation="relation", label=_or("relation", "家庭成员"),
    )
    victims = cases.select("case", person_id=pl.col("victim"), pos=pl.lit(0, pl.Int64), kind=pl.lit("victim"),
                           relation=pl.lit(None, pl.String), label=pl.lit("被害人"))
    return pl.concat([victims, family]).sort("case", "pos")


def _best_values(records: pl.DataFrame) -> pl.DataFrame:
    """Per person, the most common non-null value of each identity column (a tie goes to the greatest as text),
    and the raw name of the person's first record (by record id)."""
    several = pl.col("person_id").is_duplicated()
    single = records.filter(~several).select("person_id", *_BEST_COLUMNS, first_name_raw="name_raw")
    shared = records.filter(several)
    persons = shared.group_by("person_id").agg(
        pl.col("name_raw").sort_by("record_id").first().alias("first_name_raw"),
        *[pl.col(c).min().alias(f"{c}_low") for c in _BEST_COLUMNS], *[pl.col(c).max() for c in _BEST_COLUMNS])
    for column in _BEST_COLUMNS:  # where the records disagree, count; elsewhere the one value is the answer
        disputed = persons.filter(pl.col(f"{column}_low") != pl.col(column)).select("person_id")
        if disputed.height == 0:
            continue
        counted = (shared.join(disputed, on="person_id", how="semi").filter(pl.col(column).is_not_null())
                   .group_by("person_id", column).len()
                   .sort(["len", column], descending=True)
                   .unique("person_id", keep="first", maintain_order=True)
                   .select("person_id", **{f"{column}_counted": column}))
        persons = (persons.join(counted, on="person_id", how="left")
                   .with_columns(pl.coalesce(f"{column}_counted", column).alias(column))
                   .drop(f"{column}_counted"))
    return pl.concat([single, persons.select(single.columns)])


def _people(records: pl.DataFrame, disability: pl.DataFrame, aided_before: dict[str, str],
            today: dt.date) -> pl.DataFrame:
    """Per person: identity (best values), age today, certified disabled (any level, and level 1–2), earlier aid."""
    certified = (disability.group_by("person_id")
                 .agg(severe=(_nonzero("level") & (pl.col("level") <= 2)).any())
                 .with_columns(disabled=pl.lit(True)))
    aided = pl.DataFrame({"person_id": list(aided_before), "aided_case": list(aided_before.values())},
                         schema={"person_id": pl.String, "aided_case": pl.String}).with_columns(aided=pl.lit(True))
    return (_best_values(records)
            .join(certified, on="person_id", how="left")
            .join(aided, on="person_id", how="left")
            .with_columns(pl.col("disabled", "severe", "aided").fill_null(False),
                          age=_age(pl.col("birth_date"), pl.lit(today))))


def _each_case(members: pl.DataFrame, who: pl.Expr) -> pl.DataFrame:
    """The one member per case that `who` picks, row i for case i."""
    return members.filter(who).sort("case")


def _with_subject(cases: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """The case's subject: the victim, or, when the victim lost the ability to work, the relative who carries
    the burden (spouse, then child, then parent, then other household members; adults first; then person id)."""
    victim = _each_case(members, pl.col("pos") == 0)
    cases = cases.with_columns(
        lost_capacity=pl.col("injury").is_in(_DISABLING_INJURIES).fill_null(False) | victim["severe"])
    family = members.filter(pl.col("pos") > 0).join(cases.filter("lost_capacity").select("case"), on="case",
                                                     how="semi")
    adult = pl.when(pl.col("age").is_null() | (pl.col("age") == 0)).then(30).otherwise(pl.col("age")) >= 18
    chosen = (family.filter(adult | ~adult.any().over("case"))
              .with_columns(order=pl.col("kind").replace_strict(_KIND_ORDER, return_dtype=pl.Int32))
              .sort("case", "order", "person_id")
              .unique("case", keep="first", maintain_order=True)
              .select("case", chosen="person_id", chosen_label="label"))
    return (cases.join(chosen, on="case", how="left", maintain_order="left")
            .with_columns(subject=pl.coalesce("chosen", "victim"),
                          subject_role=pl.when(pl.col("chosen").is_null()).then(pl.lit("被害人"))
                          .otherwise(pl.lit("近亲属（") + pl.col("chosen_label") + pl.lit("）")))
            .drop("chosen", "chosen_label"))


def _with_case_roles(members: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
    """Members with their case's victim, subject and incident date, and how a reason names them ('who':
    nothing for the subject, the relation or 被害人 for the others)."""
    at = members["case"]
    return (members.hstack(cases.select(pl.col("victim", "subject", "incident_date").gather(at)))
            .with_columns(is_victim=pl.col("pos") == 0, is_subject=pl.col("person_id") == pl.col("subject"))
            .with_columns(who=pl.when(pl.col("is_subject")).then(pl.lit("")).otherwise(pl.col("label"))))


def _with_case_facts(cases: pl.DataFrame, members: pl.DataFrame, today: dt.date, cfg: ScoringConfig) -> pl.DataFrame:
    """What the case-level rules need: dependents, the victim's and the subject's identity, sex, age and
    disability, earlier aid."""
    minor = pl.col("age").is_not_null() & (pl.col("age") < 18)
    elder = pl.col("age").is_not_null() & (pl.col("age") >= 60)
    dependents = members.filter(pl.col("pos") > 0).group_by("case").agg(
        n_minor=minor.sum(), n_elder=elder.sum(), n_disabled=(~minor & ~elder & pl.col("disabled")).sum(),
        n_school=(minor & (pl.col("age") >= 6)).sum(),
    )
    victim = _each_case(members, pl.col("is_victim")).select(
        victim_sex="sex", victim_birth="birth_date", victim_name="name", victim_address="address",
        victim_disabled="disabled", victim_in="aided", victim_aided="aided_case")
    subject = _each_case(members, pl.col("is_subject")).select(
        subject_sex="sex", subject_birth="birth_date", subject_age="age", subject_best_name="name",
        subject_id18="id18", phone_best="phone", subject_address="address", first_name_raw="first_name_raw",
        subject_disabled="disabled", subject_in="aided", subject_aided="aided_case")
    cases = (cases.join(dependents, on="case", how="left", maintain_order="left")
             .with_columns(pl.col("n_minor", "n_elder", "n_disabled", "n_school").fill_null(0))
             .hstack(victim).hstack(subject))
    subject_other = pl.col("subject_in") & pl.col("subject_aided").ne_missing(pl.col("case_no"))
    victim_other = pl.col("victim_in") & pl.col("victim_aided").ne_missing(pl.col("case_no"))
    charge = pl.col("charge").fill_null("")
    return cases.with_columns(
        earlier=pl.when(subject_other).then(pl.col("subject_aided")).when(victim_other).then(pl.col("victim_aided")),
        victim_age=_age(pl.col("victim_birth"), pl.coalesce("incident_date", pl.lit(today))),
        offence=pl.any_horizontal([charge.str.contains(o, literal=True) for o in cfg.priority_offences] or
                                  [pl.lit(False)]),
    )


def _signal_frame(frame: pl.DataFrame, code: str, points: pl.Expr, reason: pl.Expr, *, stage: int,
                  record_id: pl.Expr | None = None, pos: pl.Expr | None = None, part: int = 0,
                  order_record: pl.Expr | None = None, order_row: pl.Expr | None = None) -> pl.DataFrame:
    """Signals in the common shape: case, code, points, reason, record_id and their place in the rules' order."""
    return frame.select(
        "case", code=pl.lit(code), points=points.cast(pl.Float64), reason=reason.cast(pl.String),
        record_id=(record_id if record_id is not None else pl.lit(None)).cast(pl.Int64),
        stage=pl.lit(stage, pl.Int32), pos=(pos if pos is not None else pl.lit(0)).cast(pl.Int64),
        part=pl.lit(part, pl.Int32),
        order_record=(order_record if order_record is not None else pl.lit(0)).cast(pl.Int64),
        order_row=(order_row if order_row is not None else pl.lit(0)).cast(pl.Int64),
    )


def _harm_signals(cases: pl.DataFrame, cfg: ScoringConfig) -> pl.DataFrame:
    """The injury, and compensation already received (a penalty)."""
    injury_points = pl.col("injury").replace_strict(cfg.injury, default=0, return_dtype=pl.Float64)
    injured = cases.filter(injury_points != 0)
    ordered, received = pl.col("compensation_ordered"), pl.col("compensation_received")
    paid = cases.filter(_nonzero("compensation_ordered") & received.is_not_null() & (ordered > 0)
                        & (received >= cfg.compensated_ratio * ordered))
    paid = paid.with_columns(
        _per_value(paid, received, _wan).alias("received_text"),
        _per_value(paid, ordered, _wan).alias("ordered_text"),
        _per_value(paid, received / ordered, _percent).alias("share"),
    )
    return pl.concat([
        _signal_frame(injured, "injury", injury_points, pl.lit("被害人") + pl.col("injury"), stage=0),
        _signal_frame(paid, "compensated", pl.lit(-cfg.compensated_penalty),
                      pl.concat_str(pl.lit("已获赔偿 "), "received_text", pl.lit("（判赔 "), "ordered_text",
                                    pl.lit(" 的 "), "share", pl.lit("），可能不符合救助条件")), stage=1),
    ])


def _unpaid_signals(members: pl.DataFrame, enforcement: pl.DataFrame, cfg: ScoringConfig) -> pl.DataFrame:
    """Each enforcement case terminated with money unpaid (终本), once per case, of the victim or the family."""
    facts = (members.select("case", "person_id", "pos", "who")
             .join(enforcement, on="person_id")
             .with_columns(unpaid=pl.col("amount_unpaid").fill_null(0.0))
             .filter(pl.col("unpaid") > 0)
             .sort("case", "pos", "row")
             .unique(["case", "enforcement_case_no"], keep="first", maintain_order=True))
    unpaid, ordered = pl.col("unpaid"), pl.col("amount_ordered")
    bonus = _nonzero("amount_ordered") & (unpaid >= 0.8 * ordered)
    facts = facts.with_columns(
        _per_value(facts, unpaid, lambda amount: cfg.unpaid_per_10k * amount / 10000, pl.Float64()).alias("scaled"))
    scaled = pl.col("scaled")
    facts = facts.with_columns(
        _per_value(facts, unpaid, _wan).alias("unpaid_text"),
        _per_value(facts, pl.when(bonus & (unpaid < ordered)).then(1 - unpaid / ordered), _percent).alias("short"),
        points=(cfg.unpaid_base + pl.when(scaled < cfg.unpaid_cap).then(scaled).otherwise(cfg.unpaid_cap))
        + pl.when(bonus).then(cfg.unpaid_ratio_bonus).otherwise(0.0),
    )
    gap = (pl.when(~bonus).then(pl.lit(""))
           .when(unpaid < ordered).then(pl.lit("，执行到位不足 ") + pl.col("short"))
           .otherwise(pl.lit("，分文未执行")))
    reason = pl.concat_str(pl.col("who"), pl.lit("终本未执行 "), "unpaid_text", pl.lit("（"),
                           pl.col("enforcement_case_no").fill_null("None"), pl.lit("）"), gap)
    return _signal_frame(facts, "unpaid", pl.col("points"), reason, stage=2, record_id=pl.col("record_id"),
                         pos=pl.col("pos"), order_row=pl.col("row"))


def _roll_signals(members: pl.DataFrame, disability: pl.DataFrame, key_groups: pl.DataFrame,
                  cfg: ScoringConfig) -> pl.DataFrame:
    """Disability certificates and key-group listings of the victim and the family."""
    person = members.select("case", "person_id", "pos", "who", "is_victim", "is_subject", "incident_date")
    certs = person.join(disability, on="person_id")
    level_points = pl.col("level").cast(pl.String).replace_strict(
        {k: float(v) for k, v in cfg.disability_level.items()}, default=6.0, return_dtype=pl.Float64)
    dated = pl.col("incident_date").is_not_null() & pl.col("issue_date").is_not_null()
    after = dated & (pl.col("issue_date") >= pl.col("incident_date"))
    points = (pl.when(pl.col("is_victim") | pl.col("is_subject")).then(level_points).otherwise(4.0)
              + pl.when(after & pl.col("is_victim")).then(cfg.enrolled_after_incident_bonus).otherwise(0.0))
    note = pl.when(~dated).then(pl.lit("")).when(after).then(pl.lit("（案发后办证）")).otherwise(pl.lit("（案发前已持证）"))
    level = pl.col("level").replace_strict(_LEVEL_ZH, default="等级不详", return_dtype=pl.String)
    reason = pl.concat_str(pl.col("who"), pl.lit("残疾证 "), pl.col("category").fill_null(""), level, note)
    listed = person.join(key_groups, on="person_id").with_columns(group=_or("group_name", "重点人群"))
    group_points = pl.col("group").replace_strict({k: float(v) for k, v in cfg.key_groups.items()},
                                                  default=cfg.key_group_default, return_dtype=pl.Float64)
    return pl.concat([
        _signal_frame(certs, "disability", points, reason, stage=3, record_id=pl.col("record_id"),
                      pos=pl.col("pos"), part=0, order_record=pl.col("record_id"), order_row=pl.col("row")),
        _signal_frame(listed, "key_group", group_points,
                      pl.concat_str(pl.col("who"), pl.col("group"), _after("list_date")), stage=3,
                      record_id=pl.col("record_id"), pos=pl.col("pos"), part=1,
                      order_record=pl.col("record_id"), order_row=pl.col("row")),
    ])


def _subsistence_signals(members: pl.DataFrame, subsistence: pl.DataFrame, cfg: ScoringConfig) -> pl.DataFrame:
    """Subsistence aid (低保 / 特困) of a household of the victim or the family, once per household."""
    rolls = (members.select("case", "person_id", "pos", "incident_date")
             .join(subsistence, on="person_id")
             .sort("case", "pos", "record_id", "row")
             .unique(["case", "household_key"], keep="first", maintain_order=True)
             .with_columns(aid=_or("aid_type", "低保")))
    points = pl.lit(12.0)
    for kind, value in reversed(list(cfg.subsistence.items())):  # the first kind named in the aid type wins
        points = pl.when(pl.col("aid").str.contains(kind, literal=True)).then(float(value)).otherwise(points)
    after = (pl.col("start_date").is_not_null() & pl.col("incident_date").is_not_null()
             & (pl.col("start_date") >= pl.col("incident_date")))
    points = points + pl.when(after).then(cfg.enrolled_after_incident_bonus).otherwise(0.0)
    rolls = rolls.with_columns(_per_value(rolls, pl.col("monthly_amount"), "{:,.0f}".format).alias("amount_text"))
    amount = pl.when(_nonzero("monthly_amount")).then(pl.lit(" 月 ") + pl.col("amount_text") + pl.lit(" 元")) \
        .otherwise(pl.lit(""))
    reason = pl.concat_str(pl.lit("家庭享受"), pl.col("aid"), amount, _after("start_date"))
    return _signal_frame(rolls, "subsistence", points, reason, stage=4, record_id=pl.col("record_id"),
                         pos=pl.col("pos"), order_record=pl.col("record_id"), order_row=pl.col("row"))


def _scored(signals: pl.DataFrame, cfg: ScoringConfig) -> pl.DataFrame:
    """Per case with a cross-source signal: what the case's facts say, for the case-level rules."""
    return (signals.group_by("case")
            .agg(cross=pl.col("code").is_in(_CROSS_SOURCE).any(),
                 has_subsistence=(pl.col("code") == "subsistence").any(),
                 has_disability=(pl.col("code") == "disability").any(),
                 severe_injury=((pl.col("code") == "injury") & pl.col("reason").str.contains("重伤", literal=True)).any(),
                 veteran=((pl.col("code") == "key_group")
                          & pl.col("reason").str.contains("退役军人", literal=True)).any())
            .filter("cross").drop("cross"))


def _unpaid_totals(members: pl.DataFrame, enforcement: pl.DataFrame) -> pl.DataFrame:
    """Per case, the money left unpaid across the victim's and the family's enforcement cases (summed in order)."""
    return (members.select("case", "person_id", "pos").join(enforcement, on="person_id")
            .group_by("case")
            .agg(unpaid_total=pl.col("amount_unpaid").fill_null(0.0).sort_by("pos", "row").cum_sum().last()))


def _case_signals(cases: pl.DataFrame, today: dt.date, cfg: ScoringConfig) -> pl.DataFrame:
    """Dependents, priority groups, the victim's age, a recent incident, earlier aid and the victim's fault."""
    n = pl.col("n_minor") + pl.col("n_elder") + pl.col("n_disabled")
    per_head = cfg.dependents_per_person * n.cast(pl.Float64)
    parts = _joined("、", [
        pl.when(pl.col("n_minor") > 0).then(pl.format("未成年子女/家庭成员 {} 人", "n_minor")),
        pl.when(pl.col("n_elder") > 0).then(pl.format("60岁以上老人 {} 人", "n_elder")),
        pl.when(pl.col("n_disabled") > 0).then(pl.format("残疾家庭成员 {} 人", "n_disabled")),
    ])
    woman = cases.filter((pl.col("victim_sex") == "F").fill_null(False) & pl.col("offence"))
    mother = cases.filter((pl.col("subject") != pl.col("victim")) & (pl.col("subject_sex") == "F").fill_null(False)
                          & (pl.col("n_minor") > 0) & pl.col("lost_capacity"))
    age = pl.col("victim_age")
    minor = cases.filter((age < 18).fill_null(False))
    elderly = cases.filter((age >= 18).fill_null(False) & (age >= cfg.elderly_age).fill_null(False))
    recent = cases.filter(pl.col("incident_date").is_not_null()
                          & ((pl.lit(today) - pl.col("incident_date")).dt.total_days()
                             <= 365 * cfg.recent_incident_years))
    fault = cases.filter(_has_text("victim_fault")
                         & ~pl.col("victim_fault").str.strip_chars(_PY_WHITESPACE).is_in(_NO_FAULT))
    return pl.concat([
        _signal_frame(cases.filter(n > 0), "dependents",
                      pl.when(per_head < cfg.dependents_cap).then(per_head).otherwise(cfg.dependents_cap),
                      pl.lit("家中") + parts, stage=5),
        _signal_frame(woman, "priority", pl.lit(cfg.priority_woman_offence),
                      pl.lit("重点群体：女性被害人（") + pl.col("charge").fill_null("") + pl.lit("）"), stage=6),
        _signal_frame(mother, "priority", pl.lit(cfg.priority_woman_offence),
                      pl.lit("重点群体：因案失去家庭主要劳动力、抚养未成年子女的妇女"), stage=7),
        _signal_frame(minor, "minor", pl.lit(cfg.minor_victim), pl.format("未成年被害人（案发时 {} 岁）", "victim_age"),
                      stage=8),
        _signal_frame(elderly, "elderly", pl.lit(cfg.elderly_victim),
                      pl.format("高龄被害人（案发时 {} 岁）", "victim_age"), stage=8),
        _signal_frame(recent, "recent", pl.lit(cfg.recent_incident),
                      pl.format(f"案发于 {{}}（{cfg.recent_incident_years} 年内）", pl.col("incident_date").cast(pl.String)),
                      stage=9),
        _signal_frame(cases.filter(_has_text("earlier")), "already_aided", pl.lit(-cfg.already_aided_penalty),
                      pl.format("已于案件 {} 获司法救助（核实是否重复救助）", "earlier"), stage=10),
        _signal_frame(fault, "fault", pl.lit(-cfg.fault_penalty),
                      pl.format("被害人过错：{}（需核实是否属重大过错）", "victim_fault"), stage=11),
    ])


def _scored_leads(cases: pl.DataFrame, signals: pl.DataFrame, cfg: ScoringConfig) -> pl.DataFrame:
    """Cases whose score reaches tier C, with score, tier and reasons (highest points first, ties in rule order).

    The score adds the points in the order the rules raise them and rounds as Python does, so it is the same
    number to the last bit however the points are spread."""
    totals = (signals.sort("case", *_ORDER).group_by("case", maintain_order=True)
              .agg(pl.col("points").cum_sum().last().alias("total")))
    reasons = (signals.sort(["case", "points", *_ORDER], descending=[False, True] + [False] * len(_ORDER))
               .group_by("case", maintain_order=True).agg(pl.col("reason").str.join("；").alias("reasons")))
    score = pl.Series("score", [round(total, 1) for total in totals["total"].to_list()], dtype=pl.Float64)
    tier = (pl.when(pl.col("score") >= cfg.tier_a).then(pl.lit("A"))
            .when(pl.col("score") >= cfg.tier_b).then(pl.lit("B")).otherwise(pl.lit("C")))
    kept = totals.with_columns(score).filter(~(pl.col("score") < cfg.tier_c)).with_columns(tier=tier)
    return cases.join(kept.drop("total"), on="case").join(reasons, on="case").sort("case")


def _used_records(leads: pl.DataFrame, signals: pl.DataFrame, victim_records: pl.DataFrame,
                  relatives: pl.DataFrame, records: pl.DataFrame, members: pl.DataFrame,
                  evidence_by_record: Mapping[int, str] | pl.DataFrame) -> pl.DataFrame:
    """Per lead, the records behind it in record-id order: the signals', the victim's and the case relatives'
    (each the victim's or a family member's, named by relation)."""
    if isinstance(evidence_by_record, pl.DataFrame):
        evidence = (evidence_by_record.select("record_id", evidence="evidence_zh")
                    .unique("record_id", keep="last", maintain_order=True))  # as a mapping would keep it
    else:
        evidence = pl.DataFrame({"record_id": list(evidence_by_record), "evidence": list(evidence_by_record.values())},
                                schema={"record_id": pl.Int64, "evidence": pl.String})
    lead_cases = leads.select("case", "case_no")
    used = pl.concat([
        signals.join(lead_cases, on="case", how="semi").filter(pl.col("record_id").is_not_null())
        .select("case", "record_id"),
        victim_records.join(lead_cases, on="case", how="semi"),
        lead_cases.join(relatives, on="case_no", nulls_equal=True).select("case", "record_id"),
    ]).unique()
    info = records.select("record_id", "person_id", "source", "source_file", "row_number")
    used = (used.join(info, on="record_id")
            .join(members.select("case", "person_id", "label", "name"), on=["case", "person_id"], how="left")
            .join(evidence.with_columns(has=pl.lit(True)), on="record_id", how="left"))
    whose = (pl.concat_str(pl.col("label").fill_null("家庭成员"), pl.lit(" "), pl.col("name").fill_null(""))
             .str.strip_chars(_PY_WHITESPACE))
    file, row = pl.col("source_file").fill_null("None"), pl.col("row_number").cast(pl.String).fill_null("None")
    cited = pl.concat_str(pl.col("source").replace_strict(_SOURCE_ZH, return_dtype=pl.String), pl.lit(" "), file,
                          pl.lit(" 第"), row, pl.lit("行（"), whose, pl.lit("）："),
                          pl.col("evidence").fill_null("None"))
    texts = (used.with_columns(cited=pl.when(pl.col("has").fill_null(False)).then(cited),
                               source_row=pl.concat_str(file, pl.lit("#"), row))
             .sort("case", "record_id")
             .group_by("case", maintain_order=True)
             .agg(evidence=pl.col("cited").str.join("；"), source_rows=pl.col("source_row").str.join("；")))
    sources = (used.select("case", "source").unique().sort("case", "source")
               .group_by("case", maintain_order=True).agg(sources_hit=pl.col("source").str.join(",")))
    return texts.join(sources, on="case")


def _lead_frame(leads: pl.DataFrame, used: pl.DataFrame, lead_key: bytes, cfg: ScoringConfig) -> pl.DataFrame:
    """The leads in LEAD_COLUMNS, one per lead id (the first case wins), highest score first."""
    cap = 36 * cfg.average_monthly_wage
    frame = leads.join(used, on="case", how="left").sort("case")
    unpaid_total = pl.col("unpaid_total").fill_null(0.0)
    frame = frame.with_columns(
        gap=pl.when(unpaid_total != 0).then(unpaid_total)
        .otherwise(pl.col("compensation_ordered").fill_null(0.0) - pl.col("compensation_received").fill_null(0.0)))
    frame = frame.with_columns(
        estimate=pl.when(pl.col("gap") > 0).then(pl.when(pl.col("gap") < cap).then(pl.col("gap")).otherwise(cap))
        .otherwise(cap))
    aid = pl.concat_str(pl.lit("上限参考 "), pl.col("estimate_text"), pl.lit(f"（36个月平均工资 {_wan(cap)}"),
                        pl.when(pl.col("gap") > 0).then(pl.lit("，未获赔偿 ") + pl.col("gap_text") + pl.lit("）"))
                        .otherwise(pl.lit("）")))
    woman_harmed = (pl.col("victim_sex") == "F").fill_null(False) & pl.col("offence")
    woman_carer = ((pl.col("subject") != pl.col("victim")) & (pl.col("subject_sex") == "F").fill_null(False)
                   & (pl.col("n_minor") > 0) & pl.col("lost_capacity"))
    priority = _joined("、", [
        pl.when(woman_harmed).then(pl.lit("妇女（遭受侵害）")),
        pl.when(woman_carer).then(pl.lit("妇女（家庭主要劳动力因案死亡/伤残，抚养未成年子女）")),
        pl.when(pl.col("victim_disabled") | pl.col("subject_disabled")).then(pl.lit("残疾人")),
        pl.when(pl.col("veteran")).then(pl.lit("退役军人")),
        *[pl.when(pl.col("charge").fill_null("").str.contains(marker, literal=True)).then(pl.lit(group))
          for marker, group in (("交通肇事", "交通事故"), ("重大责任事故", "工伤事故"), ("医疗事故", "医疗纠纷"))],
        pl.when(pl.col("victim_age") < 18).then(pl.lit("未成年人")),
    ])
    referrals = _joined("；", [
        pl.when(pl.col("has_subsistence")).then(pl.lit("民政：已享受低保/特困，可申请临时救助"))
        .otherwise(pl.lit("民政：家庭未在低保/特困名单，可评估低保或临时救助")),
        pl.when(pl.col("has_disability")).then(pl.lit("残联：持证残疾人，可申请残疾人两项补贴及康复救助"))
        .when(pl.col("severe_injury")).then(pl.lit("残联：重伤未见残疾证，可协助残疾评定办证")),
        pl.when(pl.col("n_school") > 0).then(pl.format("教育：在学年龄子女 {} 人，可落实学费减免与助学金", "n_school")),
        pl.when(woman_harmed | woman_carer).then(pl.lit("妇联：符合“5+2”重点妇女群体，可协同关爱帮扶")),
        pl.when((pl.col("subject_age") >= 18) & (pl.col("subject_age") < 60) & ~pl.col("lost_capacity"))
        .then(pl.lit("人社：劳动年龄人口，可提供就业援助与技能培训")),
    ])
    frame = frame.with_columns(
        _per_value(frame, pl.col("estimate"), _wan).alias("estimate_text"),
        _per_value(frame, pl.when(pl.col("gap") > 0).then("gap"), _wan).alias("gap_text"),
    )
    identity = (pl.when(_has_text("subject_id18")).then(pl.col("subject_id18"))
                .otherwise(pl.concat_str(pl.col("subject_best_name").fill_null("None"), pl.lit("|"),
                                         pl.col("subject_birth").cast(pl.String).fill_null("None"))))
    frame = frame.with_columns(identity=identity)
    lead_ids = _lead_ids(lead_key, frame["case_no"].fill_null("None").to_list(), frame["identity"].to_list())
    fingerprints = [hashlib.sha256(text.encode("utf-8")).hexdigest()[:16] for text in frame["reasons"].to_list()]
    out = frame.select(
        lead_id=pl.Series(lead_ids, dtype=pl.String), case_no="case_no", subject_person_id="subject",
        victim_person_id="victim", subject_role="subject_role", score="score", tier="tier",
        subject_name=pl.when(_has_text("subject_best_name")).then(pl.col("subject_best_name"))
        .otherwise(pl.col("first_name_raw")),
        id_masked=_masked(frame, pl.col("subject_id18"), mask_id, 6, 4).fill_null(""),
        phone=_masked(frame, pl.when(_has_text("phone_best")).then("phone_best"), mask_phone, 3, 4).fill_null(""),
        address=pl.when(_has_text("subject_address")).then(pl.col("subject_address"))
        .when(_has_text("victim_address")).then(pl.col("victim_address")).otherwise(pl.lit("")),
        victim_name="victim_name", charge="charge", injury="injury", incident_date="incident_date", unit="unit",
        reasons="reasons", evidence=pl.col("evidence").fill_null(""), source_rows=pl.col("source_rows").fill_null(""),
        referrals=referrals, aid_estimate=aid,
        fingerprint=pl.Series(fingerprints, dtype=pl.String), sources_hit=pl.col("sources_hit").fill_null(""),
        subject_id18="subject_id18", subject_phone="phone_best",
        priority_groups=priority,
    )
    return (out.unique("lead_id", keep="first", maintain_order=True)
            .sort(["score", "lead_id"], descending=[True, False]))
