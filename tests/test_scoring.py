"""Scoring on constructed households: who carries the burden, what outranks what, what is excluded."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import config_for, make_id, write_csv, write_xlsx
from pipeline import run as stages
from pipeline.store import open_database

HUSBAND = make_id(birth="19800101", seq=123)
WIDOW = make_id(birth="19820202", seq=124)
KID1, KID2 = make_id(birth="20150505", seq=125), make_id(birth="20180808", seq=126)
AFTER = make_id(birth="19700101", seq=11)
BEFORE = make_id(birth="19710303", seq=13)
PAID = make_id(birth="19720404", seq=15)


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("scoring")
    inbox = root / "inbox"
    header = ["案号", "罪名", "被害人姓名", "身份证号码", "伤情", "案发日期", "人员类型", "与被害人关系", "被告人",
              "判决赔偿金额", "已获赔偿金额"]
    write_xlsx(inbox / "victims/v.xlsx", [
        header,
        ["(2025)闽0425刑初1号", "故意杀人罪", "张伟", HUSBAND, "死亡", "2025-01-05", "被害人", None, "李四", 600000, 0],
        ["(2025)闽0425刑初1号", "故意杀人罪", "王芳", WIDOW, None, "2025-01-05", "近亲属", "配偶", "李四", None, None],
        ["(2024)闽0425刑初2号", "故意伤害罪", "郑国平", AFTER, "重伤二级", "2024-03-01", "被害人", None, "赵五", 200000, 0],
        ["(2024)闽0425刑初3号", "故意伤害罪", "林永福", BEFORE, "重伤二级", "2024-03-01", "被害人", None, "钱六", 200000, 0],
        ["(2024)闽0425刑初4号", "故意伤害罪", "黄丽芬", PAID, "重伤二级", "2024-03-01", "被害人", None, "孙七", 100000, 100000],
    ])
    write_csv(inbox / "enforcement/e.csv", [
        ["执行案号", "申请执行人", "申请执行人身份证号", "被执行人", "执行标的", "已执行金额", "未执行金额"],
        ["(2025)闽0425执1号", "王芳", WIDOW, "李四", "600000", "0", "600000"],
        ["(2024)闽0425执2号", "郑国平", AFTER, "赵五", "200000", "0", "200000"],
        ["(2024)闽0425执3号", "林永福", BEFORE, "钱六", "200000", "0", "200000"],
    ])
    write_csv(inbox / "disability/d.csv", [
        ["姓名", "残疾证号", "残疾类别", "残疾等级", "发证日期"],
        ["郑国平", AFTER + "42", "肢体", "二级", "2024-09-01"],
        ["林永福", BEFORE + "42", "肢体", "二级", "2014-03-01"],
        ["黄丽芬", PAID + "42", "肢体", "二级", "2024-09-01"],
    ], encoding="gbk")
    write_csv(inbox / "subsistence/s.csv", [
        ["户编号", "户主姓名", "成员姓名", "成员身份证号", "与户主关系", "救助类型", "月保障金额", "纳入日期"],
        ["H1", "王芳", "王芳", WIDOW, "本人", "农村低保", "900", "2025-06-01"],
        ["H1", "王芳", "张小明", KID1, "子女", "农村低保", "900", "2025-06-01"],
        ["H1", "王芳", "张小红", KID2, "子女", "农村低保", "900", "2025-06-01"],
    ], encoding="utf-8-sig")
    config = config_for(root, inbox)
    run_id = stages.start_run(config, None)
    for stage in (stages.ingest_stage, stages.normalise_stage, stages.resolve_stage, stages.score_stage):
        stage(config, run_id)
    con = open_database(config.database_path, read_only=True)
    rows = con.execute(
        """SELECT l.case_no, h.subject_name, l.subject_role, h.victim_name, h.tier, h.score, h.reasons, h.referrals
           FROM lead_history h JOIN leads l USING (lead_id) WHERE h.run_id = ?""", [run_id]).fetchall()
    con.close()
    keys = ("case_no", "subject", "role", "victim", "tier", "score", "reasons", "referrals")
    return {r[0]: dict(zip(keys, r)) for r in rows}


def test_deceased_victims_widow_with_two_minor_children_is_tier_a(scored):
    lead = scored["(2025)闽0425刑初1号"]
    assert lead["subject"] == "王芳" and lead["role"].startswith("近亲属") and lead["victim"] == "张伟"
    assert lead["tier"] == "A"
    assert "被害人死亡" in lead["reasons"] and "终本未执行 60.0 万元" in lead["reasons"]
    assert "未成年子女/家庭成员 2 人" in lead["reasons"]
    assert "妇联" in lead["referrals"] and "教育" in lead["referrals"]


def test_certificate_issued_after_the_incident_outranks_one_issued_ten_years_before(scored):
    after, before = scored["(2024)闽0425刑初2号"], scored["(2024)闽0425刑初3号"]
    assert after["score"] > before["score"]
    assert "残疾证 肢体二级（案发后办证）" in after["reasons"]
    assert "残疾证 肢体二级（案发前已持证）" in before["reasons"]


def test_reasonably_compensated_victim_is_not_raised_above_tier_c(scored):
    lead = scored.get("(2024)闽0425刑初4号")
    assert lead is None or (lead["tier"] == "C" and "已获赔偿 10.0 万元" in lead["reasons"])
