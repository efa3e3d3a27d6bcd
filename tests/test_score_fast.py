"""Scoring on tiny inline frames: empty and missing inputs, cases without a victim record, a person in
several sources, ties, and the set-based loader."""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline.score import LEAD_COLUMNS, load_score_inputs, score_leads
from schemas.config import ScoringConfig

TODAY = dt.date(2026, 11, 20)
KEY = b"k" * 32
CASE = "(2025)闽0425刑初1号"

_RECORD = {"record_id": pl.Int64, "person_id": pl.String, "source": pl.String, "source_file": pl.String,
           "row_number": pl.Int32, "name_raw": pl.String, "name": pl.String, "id18": pl.String,
           "birth_date": pl.Date, "sex": pl.String, "phone": pl.String, "address": pl.String}
_FACTS = {
    "victim_facts": {"record_id": pl.Int64, "case_no": pl.String, "charge": pl.String, "injury": pl.String,
                     "incident_date": pl.Date, "unit": pl.String, "role": pl.String, "relation": pl.String,
                     "compensation_ordered": pl.Float64, "compensation_received": pl.Float64,
                     "victim_fault": pl.String},
    "disability_facts": {"record_id": pl.Int64, "category": pl.String, "level": pl.Int64, "issue_date": pl.Date},
    "subsistence_facts": {"record_id": pl.Int64, "household_key": pl.String, "aid_type": pl.String,
                          "monthly_amount": pl.Float64, "start_date": pl.Date},
    "enforcement_facts": {"record_id": pl.Int64, "enforcement_case_no": pl.String, "amount_ordered": pl.Float64,
                          "amount_unpaid": pl.Float64},
    "key_group_facts": {"record_id": pl.Int64, "group_name": pl.String, "list_date": pl.Date},
}


def record(record_id: int, person: str, source: str, name: str, birth: dt.date | None = dt.date(1980, 1, 1),
           sex: str | None = "M", address: str | None = "建宁县") -> dict:
    return {"record_id": record_id, "person_id": person, "source": source, "source_file": f"{source}.csv",
            "row_number": record_id + 1, "name_raw": name, "name": name, "id18": None, "birth_date": birth,
            "sex": sex, "phone": None, "address": address}


def victim(record_id: int, case_no: str = CASE, injury: str | None = "重伤二级", role: str = "victim",
           relation: str | None = None, incident: dt.date = dt.date(2025, 1, 5)) -> dict:
    return {"record_id": record_id, "case_no": case_no, "charge": "故意伤害罪", "injury": injury,
            "incident_date": incident, "unit": "建宁县人民检察院", "role": role, "relation": relation,
            "compensation_ordered": None, "compensation_received": None, "victim_fault": None}


def frames(records: list[dict], **facts: list[dict]) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Records and fact tables; a table not named is absent, as scoring allows."""
    return (pl.DataFrame(records, schema=_RECORD),
            {f"{table}_facts": pl.DataFrame(rows, schema=_FACTS[f"{table}_facts"]) for table, rows in facts.items()})


def scored(records: pl.DataFrame, facts: dict[str, pl.DataFrame], cfg: ScoringConfig | None = None,
           evidence: dict[int, str] | None = None, **kwargs: object) -> pl.DataFrame:
    return score_leads(records, facts, evidence or {}, cfg or ScoringConfig(), KEY, today=TODAY, **kwargs)


def test_no_victim_rows_gives_an_empty_list_with_every_column():
    records, facts = frames([record(1, "P1", "disability", "张伟")], victim=[], disability=[])
    leads = scored(records, facts)
    assert leads.height == 0 and leads.columns == LEAD_COLUMNS
    assert scored(records, {}).columns == LEAD_COLUMNS


def test_missing_fact_tables_count_as_empty():
    records, facts = frames([record(1, "P1", "victims", "张伟"), record(2, "P1", "enforcement", "张伟")],
                            victim=[victim(1)],
                            enforcement=[{"record_id": 2, "enforcement_case_no": "(2025)闽0425执1号",
                                          "amount_ordered": 200000.0, "amount_unpaid": 200000.0}])
    leads = scored(records, facts)
    assert leads.height == 1
    assert leads["reasons"][0].startswith("终本未执行 20.0 万元（(2025)闽0425执1号），分文未执行；被害人重伤二级")
    assert leads["referrals"][0].startswith("民政：家庭未在低保/特困名单")


def test_a_case_with_only_relative_rows_raises_no_lead():
    records, facts = frames([record(1, "P1", "victims", "王芳"), record(2, "P1", "disability", "王芳")],
                            victim=[victim(1, role="relative", relation="配偶")],
                            disability=[{"record_id": 2, "category": "肢体", "level": 2, "issue_date": None}])
    assert scored(records, facts).height == 0


def test_a_victim_row_whose_record_is_not_resolved_is_skipped():
    records, facts = frames(
        [record(1, "P1", "victims", "张伟"), record(2, "P1", "disability", "张伟")],
        victim=[victim(1), victim(99, case_no="(2025)闽0425刑初9号")],  # record 99 is in no person
        disability=[{"record_id": 2, "category": "肢体", "level": 2, "issue_date": dt.date(2025, 3, 1)}])
    leads = scored(records, facts)
    assert leads["case_no"].to_list() == [CASE]


def test_a_person_with_facts_in_several_sources_cites_each_record_once_in_record_order():
    records, facts = frames(
        [record(5, "P1", "key_groups", "张伟"), record(1, "P1", "victims", "张伟"),
         record(3, "P1", "disability", "张伟"), record(4, "P1", "subsistence", "张伟"),
         record(2, "P1", "enforcement", "张伟")],
        victim=[victim(1)],
        disability=[{"record_id": 3, "category": "肢体", "level": 2, "issue_date": dt.date(2025, 3, 1)}],
        subsistence=[{"record_id": 4, "household_key": "hh_1", "aid_type": "农村低保", "monthly_amount": 1786.0,
                      "start_date": dt.date(2025, 6, 1)}],
        enforcement=[{"record_id": 2, "enforcement_case_no": "(2025)闽0425执1号", "amount_ordered": 100000.0,
                      "amount_unpaid": 50000.0}],
        key_group=[{"record_id": 5, "group_name": "防止返贫监测对象", "list_date": dt.date(2024, 1, 1)}])
    evidence = {r: f"证据{r}" for r in (1, 2, 3, 4, 5)}
    lead = scored(records, facts, evidence=evidence).row(0, named=True)
    assert lead["sources_hit"] == "disability,enforcement,key_groups,subsistence,victims"
    assert lead["source_rows"] == "victims.csv#2；enforcement.csv#3；disability.csv#4；subsistence.csv#5；key_groups.csv#6"
    assert [part.split("：")[-1] for part in lead["evidence"].split("；")] == [f"证据{r}" for r in (1, 2, 3, 4, 5)]
    assert "（被害人 张伟）" in lead["evidence"]
    for reason in ("被害人重伤二级", "终本未执行 5.0 万元", "残疾证 肢体二级（案发后办证）", "防止返贫监测对象（案发前已纳入）",
                   "家庭享受农村低保 月 1,786 元（案发后纳入）"):
        assert reason in lead["reasons"]
    assert lead["priority_groups"] == "残疾人"


def test_reasons_with_equal_points_keep_the_order_the_rules_raise_them():
    # key group 16 points and subsistence 16 points: the key group is raised first, so it is listed first
    records, facts = frames(
        [record(1, "P1", "victims", "张伟"), record(2, "P1", "key_groups", "张伟"),
         record(3, "P1", "subsistence", "张伟")],
        victim=[victim(1, injury="轻微伤")],
        subsistence=[{"record_id": 3, "household_key": "hh_1", "aid_type": "农村低保", "monthly_amount": None,
                      "start_date": None}],
        key_group=[{"record_id": 2, "group_name": "防止返贫监测对象", "list_date": None}])
    reasons = scored(records, facts)["reasons"][0].split("；")
    assert reasons[:2] == ["防止返贫监测对象", "家庭享受农村低保"]


def test_household_members_are_listed_by_person_id_whatever_the_input_order():
    """Two people sharing the victim's household, with equal points: their reasons come in person-id order,
    and shuffling the rows changes nothing (the lead's fingerprint stays the same from night to night)."""
    people = [record(1, "P1", "victims", "张伟"), record(2, "P1", "subsistence", "张伟"),
              record(3, "P9", "subsistence", "张甲"), record(4, "P9", "disability", "张甲"),
              record(5, "P5", "subsistence", "张乙"), record(6, "P5", "disability", "张乙")]
    household = [{"record_id": r, "household_key": "hh_1", "aid_type": "农村低保", "monthly_amount": None,
                  "start_date": None} for r in (2, 3, 5)]
    certificates = [{"record_id": 4, "category": "视力", "level": 4, "issue_date": None},
                    {"record_id": 6, "category": "听力", "level": 4, "issue_date": None}]
    records, facts = frames(people, victim=[victim(1)], subsistence=household, disability=certificates)
    first = scored(records, facts)
    assert "家庭成员残疾证 听力四级；家庭成员残疾证 视力四级" in first["reasons"][0]  # P5 before P9
    rng = random.Random(7)
    for _ in range(5):
        shuffled = {table: frame.sample(fraction=1.0, shuffle=True, seed=rng.randrange(1000))
                    for table, frame in facts.items() if table != "victim_facts"}
        again = scored(records.sample(fraction=1.0, shuffle=True, seed=rng.randrange(1000)),
                       {**facts, **shuffled})
        assert_frame_equal(first, again)


def test_the_most_common_value_wins_and_a_tie_goes_to_the_greatest():
    records, facts = frames(
        [record(1, "P1", "victims", "张伟", address="甲村"), record(2, "P1", "disability", "张伟", address="乙村"),
         record(3, "P1", "key_groups", "张玮", address="乙村"), record(4, "P1", "subsistence", "张玮", address=None)],
        victim=[victim(1)],
        disability=[{"record_id": 2, "category": "肢体", "level": 3, "issue_date": None}])
    lead = scored(records, facts).row(0, named=True)
    assert lead["address"] == "乙村"                       # two records against one
    assert lead["subject_name"] == max("张伟", "张玮")       # one each: the greater


def test_the_spouse_carries_the_burden_of_a_victim_who_died():
    records, facts = frames(
        [record(1, "P1", "victims", "张伟"), record(2, "P2", "victims", "王芳", sex="F", birth=dt.date(1982, 2, 2)),
         record(3, "P2", "enforcement", "王芳", sex="F", birth=dt.date(1982, 2, 2)),
         record(4, "P3", "victims", "张小明", birth=dt.date(2015, 5, 5))],
        victim=[victim(1, injury="死亡"), victim(2, role="relative", relation="配偶"),
                victim(4, role="relative", relation="儿子")],
        enforcement=[{"record_id": 3, "enforcement_case_no": "(2025)闽0425执1号", "amount_ordered": 600000.0,
                      "amount_unpaid": 600000.0}])
    lead = scored(records, facts).row(0, named=True)
    assert (lead["subject_person_id"], lead["subject_role"], lead["subject_name"]) == ("P2", "近亲属（配偶）", "王芳")
    assert "家中未成年子女/家庭成员 1 人" in lead["reasons"]
    assert "妇女（家庭主要劳动力因案死亡/伤残，抚养未成年子女）" in lead["priority_groups"]


def test_the_score_is_python_arithmetic_to_the_last_bit():
    """30.1 + (18.1 + 1.3 × 115000 / 10000) + 5.7 is 68.85 in Python and rounds to 68.8; dividing through the
    reciprocal (as a vectorised division by a constant does) gives 68.85000000000001 and 68.9."""
    cfg = ScoringConfig(injury={"重伤二级": 30.1}, unpaid_base=18.1, unpaid_per_10k=1.3, unpaid_cap=19.7,
                        recent_incident=5.7, recent_incident_years=5)
    records, facts = frames(
        [record(1, "P1", "victims", "张伟"), record(2, "P1", "enforcement", "张伟")],
        victim=[victim(1, incident=dt.date(2022, 4, 14))],
        enforcement=[{"record_id": 2, "enforcement_case_no": "(2021)闽04执146号", "amount_ordered": 268100.0,
                      "amount_unpaid": 115000.0}])
    expected = round(30.1 + (18.1 + min(19.7, 1.3 * 115000.0 / 10000)) + 5.7, 1)
    assert expected == 68.8
    assert scored(records, facts, cfg)["score"].to_list() == [expected]


def test_earlier_aid_in_another_case_is_a_penalty_and_in_the_same_case_is_not():
    records, facts = frames(
        [record(1, "P1", "victims", "张伟"), record(2, "P1", "disability", "张伟")],
        victim=[victim(1)],
        disability=[{"record_id": 2, "category": "肢体", "level": 1, "issue_date": None}])
    same = scored(records, facts, aided_before={"P1": CASE})
    other = scored(records, facts, aided_before={"P1": "(2020)闽0425刑初7号"})
    assert "已于案件" not in same["reasons"][0]
    assert "已于案件 (2020)闽0425刑初7号 获司法救助（核实是否重复救助）" in other["reasons"][0]
    assert other["score"][0] == same["score"][0] - ScoringConfig().already_aided_penalty


@pytest.fixture
def small_database() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("""CREATE TABLE person_records AS SELECT * FROM (VALUES
        (1, 'victims', 'v.csv', 2, '张伟', '张伟', NULL, DATE '1980-01-01', 'M', NULL, '甲村'),
        (2, 'subsistence', 's.csv', 2, '张伟', '张伟', NULL, DATE '1980-01-01', 'M', NULL, '甲村'),
        (3, 'subsistence', 's.csv', 3, '王芳', '王芳', NULL, DATE '1982-02-02', 'F', NULL, '甲村'),
        (4, 'disability', 'd.csv', 2, '王芳', '王芳', NULL, DATE '1982-02-02', 'F', NULL, '甲村'),
        (5, 'disability', 'd.csv', 3, '李四', '李四', NULL, DATE '1970-01-01', 'M', NULL, '乙村'),
        (6, 'subsistence', 's.csv', 4, '李四', '李四', NULL, DATE '1970-01-01', 'M', NULL, '乙村'))
        t(record_id, source, source_file, row_number, name_raw, name, id18, birth_date, sex, phone, address)""")
    con.execute("""CREATE TABLE person_members AS SELECT * FROM (VALUES
        (1, 'P1'), (2, 'P1'), (3, 'P2'), (4, 'P2'), (5, 'P3'), (6, 'P3')) t(record_id, person_id)""")
    con.execute(f"""CREATE TABLE victim_facts AS SELECT 1::BIGINT AS record_id, '{CASE}' AS case_no,
        '故意伤害罪' AS charge, '死亡' AS injury, DATE '2025-01-05' AS incident_date, '院' AS unit,
        'victim' AS role, NULL::VARCHAR AS relation, NULL::DOUBLE AS compensation_ordered,
        NULL::DOUBLE AS compensation_received, NULL::VARCHAR AS victim_fault""")
    con.execute("""CREATE TABLE subsistence_facts AS SELECT * FROM (VALUES
        (6, 'hh_2', '农村低保', 500.0, NULL::DATE), (3, 'hh_1', '农村低保', 900.0, NULL::DATE),
        (2, 'hh_1', '农村低保', 900.0, NULL::DATE)) t(record_id, household_key, aid_type, monthly_amount, start_date)""")
    con.execute("""CREATE TABLE disability_facts AS SELECT * FROM (VALUES
        (5, '肢体', 1, NULL::DATE), (4, '视力', 3, NULL::DATE)) t(record_id, category, level, issue_date)""")
    con.execute("""CREATE TABLE enforcement_facts (record_id BIGINT, enforcement_case_no VARCHAR,
        amount_ordered DOUBLE, amount_unpaid DOUBLE)""")
    con.execute("CREATE TABLE key_group_facts (record_id BIGINT, group_name VARCHAR, list_date DATE)")
    con.execute("""CREATE TABLE record_evidence AS SELECT * FROM (VALUES (2, '身份证号一致'), (3, '身份证号一致'),
        (5, '身份证号一致')) t(record_id, evidence_zh)""")
    yield con
    con.close()


def test_the_loader_reads_only_the_case_people_and_their_households(small_database):
    records, facts, evidence = load_score_inputs(small_database)
    assert sorted(records["person_id"].unique()) == ["P1", "P2"]  # P3 shares no household with the case
    assert facts["subsistence_facts"]["record_id"].to_list() == [3, 2]  # table order kept
    assert facts["disability_facts"]["record_id"].to_list() == [4]
    assert evidence["record_id"].to_list() == [2, 3]
    assert small_database.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'score_reach'").fetchall()[0][0] == 0
    leads = score_leads(records, facts, evidence, ScoringConfig(), KEY, today=TODAY)
    assert leads["subject_person_id"].to_list() == ["P2"]  # the victim died: the household member carries it


def test_the_loaded_inputs_score_as_the_full_tables_do(small_database):
    full = {table: pl.from_arrow(small_database.sql(f"SELECT * FROM {table}").to_arrow_table())
            for table in ("victim_facts", "subsistence_facts", "disability_facts", "enforcement_facts",
                          "key_group_facts")}
    records = pl.from_arrow(small_database.sql(
        "SELECT r.*, m.person_id FROM person_records r JOIN person_members m USING (record_id) ORDER BY record_id"
    ).to_arrow_table())
    evidence = dict(small_database.execute("SELECT record_id, evidence_zh FROM record_evidence").fetchall())
    loaded = load_score_inputs(small_database)
    assert_frame_equal(score_leads(records, full, evidence, ScoringConfig(), KEY, today=TODAY),
                       score_leads(*loaded, ScoringConfig(), KEY, today=TODAY))


def test_an_empty_fact_table_written_as_text_columns_is_read_as_empty():
    """A source that sent nothing leaves a fact table whose columns are all text."""
    records, facts = frames([record(1, "P1", "victims", "张伟"), record(2, "P1", "key_groups", "张伟")],
                            victim=[victim(1)],
                            key_group=[{"record_id": 2, "group_name": "退役军人", "list_date": None}])
    as_text = {table: pl.DataFrame(schema={c: (pl.Int64 if c == "record_id" else pl.String) for c in schema})
               for table, schema in _FACTS.items() if table not in facts}
    leads = scored(records, {**facts, **as_text})
    assert leads["priority_groups"].to_list() == ["退役军人"]


def test_masks_in_polars_equal_the_python_masks() -> None:
    # plain numbers are masked in polars, everything else by mask_id / mask_phone themselves: the same text
    from matchers.idnumber import mask_id, mask_phone
    from pipeline.score import _masked

    values = ["13812345678", "1381234", "12345678", "", None, "无", "NULL", "na", "138 1234 5678",
              "１３８１２３４５６７８", "11010519491231002X", "110105491231002", "abc", "0", "1" * 70, "12ab",
              "x1234567890", " 13812345678", "1234567", "123456789012", "1234567890\t"]
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    for mask, head, tail in ((mask_id, 6, 4), (mask_phone, 3, 4)):
        assert _masked(frame, pl.col("v"), mask, head, tail).to_list() == [
            None if v is None else mask(v) for v in values]


def test_lead_ids_in_bulk_equal_the_python_hmac() -> None:
    # a province's lead ids are hashed by DuckDB: they must be the ids the Python HMAC gives (ids are kept across
    # nights, and a small run with the same key must name the same lead the same way)
    import hmac as std_hmac

    from pipeline.score import _BULK_LEAD_IDS, _lead_ids

    cases = [f"（2024）粤0101刑初{i}号" if i % 7 else "None" for i in range(_BULK_LEAD_IDS + 5)]
    identities = [f"44010119800101{i:04d}" if i % 3 else f"张三丰·{i}|1980-01-01" for i in range(len(cases))]
    expected = ["XS" + std_hmac.new(KEY, f"{c}|{n}".encode(), "sha256").hexdigest()[:12].upper()
                for c, n in zip(cases, identities)]
    assert _lead_ids(KEY, cases, identities) == expected
    assert _lead_ids(KEY, cases[:5], identities[:5]) == expected[:5]
