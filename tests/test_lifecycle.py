"""Lead lifecycle: outcomes from a returned workbook, closed leads kept quiet, reopened on new evidence, deadlines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from conftest import config_for, make_id, write_csv, write_xlsx
from pipeline import run as stages
from pipeline.errors import AidLeadsError
from pipeline.lifecycle import apply_lifecycle, import_outcomes, overdue_leads, set_status, working_days_between
from pipeline.score import LEAD_COLUMNS
from pipeline.store import open_database

WIDOW = make_id(birth="19820202", seq=124)
INJURED = make_id(birth="19700101", seq=11)


def _inbox(root: Path) -> Path:
    inbox = root / "inbox"
    husband, child = make_id(birth="19800101", seq=123), make_id(birth="20150505", seq=125)
    write_xlsx(inbox / "victims/v.xlsx", [
        ["案号", "罪名", "被害人姓名", "身份证号码", "伤情", "案发日期", "人员类型", "与被害人关系", "被告人"],
        ["C1", "故意杀人罪", "张伟", husband, "死亡", "2025-01-05", "被害人", None, "李四"],
        ["C1", "故意杀人罪", "王芳", WIDOW, None, "2025-01-05", "近亲属", "配偶", "李四"],
        ["C2", "交通肇事罪", "郑丽", INJURED, "重伤二级", "2025-06-01", "被害人", None, "赵五"]])
    write_csv(inbox / "enforcement/e.csv", [
        ["执行案号", "申请执行人", "申请执行人身份证号", "被执行人", "执行标的", "已执行金额", "未执行金额"],
        ["(2025)闽0425执1号", "王芳", WIDOW, "李四", "300000", "0", "300000"],
        ["(2025)闽0425执2号", "郑丽", INJURED, "赵五", "200000", "10000", "190000"]])
    write_csv(inbox / "subsistence/s.csv", [
        ["户编号", "户主姓名", "成员姓名", "成员身份证号", "与户主关系", "救助类型", "月保障金额", "纳入日期"],
        ["H1", "王芳", "王芳", WIDOW, "本人", "农村低保", "800", "2025-06-01"],
        ["H1", "王芳", "张小明", child, "子女", "农村低保", "800", "2025-06-01"]])
    return inbox


def _run(config) -> str:
    run_id = stages.start_run(config, None)
    for stage in (stages.ingest_stage, stages.normalise_stage, stages.resolve_stage, stages.score_stage, stages.export_stage):
        stage(config, run_id)
    stages.finish_run(config, run_id, "succeeded")
    return run_id


def _listed(config, run_id) -> dict[str, tuple[str, str, str]]:
    con = open_database(config.database_path, read_only=True)
    try:
        return {r[0]: r[1:] for r in con.execute(
            """SELECT h.lead_id, l.case_no, h.change, coalesce(h.change_detail, '') FROM lead_history h
               JOIN leads l USING (lead_id) WHERE h.run_id = ?""", [run_id]).fetchall()}
    finally:
        con.close()


def test_widow_lead_outcome_import_quiet_rerun_and_reopening(tmp_path):
    inbox = _inbox(tmp_path)
    config = config_for(tmp_path, inbox)
    first = _run(config)
    leads = _listed(config, first)
    by_case = {case: lead for lead, (case, _, _) in leads.items()}
    assert set(by_case) == {"C1", "C2"}

    con = open_database(config.database_path, read_only=True)
    subject, tier = con.execute(
        "SELECT subject_name, tier FROM lead_history WHERE lead_id = ?", [by_case["C1"]]).fetchall()[0]
    con.close()
    assert subject == "王芳" and tier == "A"  # the widow carries the burden of the deceased victim's case

    # the prosecutor marks C1 as aided in the exported workbook and sends it back
    xlsx = config.exports_dir / first / "leads.xlsx"
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["线索清单"]
    header = [c.value for c in ws[1]]
    for row in ws.iter_rows(min_row=2):
        if row[header.index("线索编号")].value == by_case["C1"]:
            row[header.index("处理结果")].value = "已救助"
    returned = tmp_path / "returned.xlsx"
    wb.save(returned)
    con = open_database(config.database_path)
    report = import_outcomes(con, returned, by="检察官甲")
    status = con.execute("SELECT status, status_by FROM leads WHERE lead_id = ?", [by_case["C1"]]).fetchall()[0]
    events = con.execute("SELECT status, origin FROM lead_events WHERE lead_id = ?", [by_case["C1"]]).fetchall()
    con.close()
    assert report.updated == 1 and not report.problems
    assert status == ("aided", "检察官甲") and events == [("aided", "import")]

    # same inputs again: the aided lead is not raised, the other one is unchanged
    second = _run(config)
    listed = _listed(config, second)
    assert by_case["C1"] not in listed and listed[by_case["C2"]][1] == "unchanged"

    # a new 终本 case for the widow arrives: the closed lead comes back, saying what changed
    write_csv(inbox / "enforcement/e2.csv", [
        ["执行案号", "申请执行人", "申请执行人身份证号", "被执行人", "未执行金额"],
        ["(2026)闽0425执9号", "王芳", WIDOW, "李四", "50000"]])
    third = _run(config)
    listed = _listed(config, third)
    case, change, detail = listed[by_case["C1"]]
    assert change == "changed" and "新增" in detail and "(2026)闽0425执9号" in detail
    con = open_database(config.database_path, read_only=True)
    status, reopened = con.execute(
        """SELECT l.status, (SELECT count(*) FROM lead_events e WHERE e.lead_id = l.lead_id AND e.origin = 'run')
           FROM leads l WHERE lead_id = ?""", [by_case["C1"]]).fetchall()[0]
    con.close()
    assert status == "new" and reopened == 1


def test_status_errors_and_overdue_working_days(tmp_path):
    config = config_for(tmp_path, _inbox(tmp_path))
    run_id = _run(config)
    lead = next(iter(_listed(config, run_id)))
    con = open_database(config.database_path)
    with pytest.raises(AidLeadsError, match="unknown status"):
        set_status(con, lead, "done")
    with pytest.raises(AidLeadsError, match="no lead"):
        set_status(con, "XS000", "assigned")
    monday = dt.datetime(2026, 11, 2, 9, 0)
    set_status(con, lead, "已分派", by="检察官乙", at=monday)
    assert overdue_leads(con, 7, today=dt.date(2026, 11, 11)) == []  # 7 working days used
    late = overdue_leads(con, 7, today=dt.date(2026, 11, 12))
    con.close()
    assert [(r["lead_id"], r["working_days"], r["by"]) for r in late] == [(lead, 8, "检察官乙")]


@pytest.mark.parametrize(("start", "end", "days"), [
    (dt.date(2026, 11, 6), dt.date(2026, 11, 9), 1),   # Friday → Monday
    (dt.date(2026, 11, 2), dt.date(2026, 11, 13), 9),  # two weeks less one day
    (dt.date(2026, 11, 7), dt.date(2026, 11, 8), 0),   # a weekend
])
def test_working_days_skip_weekends(start, end, days):
    assert working_days_between(start, end) == days


def test_quarterly_report_figures_match_sql_and_render(tmp_path):
    from pipeline.report import parse_quarter, quarterly_tables, write_quarterly_report

    config = config_for(tmp_path, _inbox(tmp_path))
    run_id = _run(config)
    leads = sorted(_listed(config, run_id))
    con = open_database(config.database_path)
    quarter_day = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    set_status(con, leads[0], "aided", by="甲", amount=30000.0, at=quarter_day)
    set_status(con, leads[1], "not_eligible", by="乙", at=quarter_day)
    q = parse_quarter(f"{quarter_day.year}Q{(quarter_day.month - 1) // 3 + 1}")
    tables = quarterly_tables(con, q)
    found = con.execute("""SELECT count(*) FROM leads l JOIN runs r ON r.run_id = l.first_run_id
                           WHERE r.started_at >= ? AND r.started_at < ?""",
                        [dt.datetime.combine(q.start, dt.time()), dt.datetime.combine(q.end, dt.time())]).fetchall()[0][0]
    aided, amount = con.execute("SELECT count(DISTINCT lead_id), sum(amount) FROM lead_events WHERE status = 'aided'").fetchall()[0]
    overall = tables["总体"].row(0, named=True)
    assert (overall["发现线索"], overall["核查办结"], overall["救助"], overall["救助金额（元）"]) == (found, 2, aided, amount)
    assert tables["按来源组合"]["发现线索"].sum() == found
    paths = write_quarterly_report(con, q, tmp_path / "reports")
    con.close()
    png = paths["png"].read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    page = paths["html"].read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "按来源组合" in page and "30000" in page
    wb = openpyxl.load_workbook(paths["xlsx"])
    assert wb.sheetnames == ["总体", "按来源组合", "按重点群体", "按承办单位"]
    assert parse_quarter("2026q3").start == dt.date(2026, 7, 1) and parse_quarter("2026Q4").end == dt.date(2027, 1, 1)


def test_verification_sheet_is_one_printable_page_with_masked_identity(tmp_path):
    from pipeline.verification_sheet import write_verification_sheet

    config = config_for(tmp_path, _inbox(tmp_path))
    run_id = _run(config)
    lead = next(iter(_listed(config, run_id)))
    con = open_database(config.database_path, read_only=True)
    path = write_verification_sheet(con, lead, tmp_path / "sheet.xlsx")
    with pytest.raises(AidLeadsError, match="no lead"):
        write_verification_sheet(con, "XS000", tmp_path / "none.xlsx")
    con.close()
    ws = openpyxl.load_workbook(path)["线索核查单"]
    values = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(1, ws.max_row + 1)}
    assert values["线索编号"] == lead and "*" in values["身份证号"] and WIDOW not in str(values)
    assert ws.page_setup.paperSize == 9 and ws.sheet_properties.pageSetUpPr.fitToPage  # A4, fit to one page


def test_a_person_already_aided_in_another_case_is_flagged(tmp_path):
    inbox = _inbox(tmp_path)
    config = config_for(tmp_path, inbox)
    first = _run(config)
    c1 = next(lead for lead, (case, _, _) in _listed(config, first).items() if case == "C1")
    con = open_database(config.database_path)
    set_status(con, c1, "aided", by="甲", amount=30000.0)
    con.close()
    write_xlsx(inbox / "victims/v2.xlsx", [
        ["案号", "罪名", "被害人姓名", "身份证号码", "伤情", "案发日期", "被告人"],
        ["C3", "故意伤害罪", "王芳", WIDOW, "轻伤一级", "2026-03-01", "周八"]])
    write_csv(inbox / "enforcement/e3.csv", [
        ["执行案号", "申请执行人", "申请执行人身份证号", "被执行人", "未执行金额"],
        ["(2026)闽0425执3号", "王芳", WIDOW, "周八", "20000"]])
    second = _run(config)
    con = open_database(config.database_path, read_only=True)
    reasons = con.execute("""SELECT h.reasons FROM lead_history h JOIN leads l USING (lead_id)
                             WHERE h.run_id = ? AND l.case_no = 'C3'""", [second]).fetchall()
    con.close()
    assert reasons and "已于案件 C1 获司法救助" in reasons[0][0]


def _scored(*leads: dict[str, object]) -> pl.DataFrame:
    """A ranked lead frame as score_leads returns it, with only the fields a test cares about filled in."""
    base = {c: "" for c in LEAD_COLUMNS} | {"subject_role": "被害人", "tier": "B", "incident_date": None}
    frame = pl.DataFrame([base | {"case_no": lead["lead_id"][1:], "subject_person_id": "P" + lead["lead_id"],
                                  "victim_person_id": "V" + lead["lead_id"]} | lead for lead in leads],
                         schema_overrides={"score": pl.Float64, "incident_date": pl.Date})
    return frame.select(LEAD_COLUMNS)


def test_a_relisted_lead_gets_the_run_id_and_exactly_the_fields_that_changed(tmp_path):
    con = open_database(tmp_path / "leads.duckdb")
    apply_lifecycle(con, _scored(
        {"lead_id": "L1", "score": 9.0, "reasons": "甲", "fingerprint": "f1"},
        {"lead_id": "L2", "score": 0.0, "reasons": "乙", "fingerprint": "f2"},
        {"lead_id": "L3", "score": 5.0, "reasons": "丙", "fingerprint": "f3"}), "R1")
    set_status(con, "L3", "aided", by="甲")

    # L1 as before; L2 keeps its fingerprint but not its score, subject or reasons; L3 was handled and nothing
    # is new; L4 is new
    counts = apply_lifecycle(con, _scored(
        {"lead_id": "L4", "score": 9.5, "reasons": "丁", "fingerprint": "f4", "tier": "A"},
        {"lead_id": "L1", "score": 9.0, "reasons": "甲", "fingerprint": "f1"},
        {"lead_id": "L2", "score": 2.5, "reasons": "乙；又", "fingerprint": "f2", "subject_person_id": "Q2",
         "subject_role": "近亲属"},
        {"lead_id": "L3", "score": 5.0, "reasons": "丙", "fingerprint": "f3"}), "R2")
    assert counts == {"A": 1, "B": 2, "new": 1, "unchanged": 2}
    leads = con.execute("""SELECT lead_id, first_run_id, last_run_id, change, score::VARCHAR, subject_person_id,
                                  subject_role, reasons, status FROM leads ORDER BY lead_id""").fetchall()
    assert leads == [
        ("L1", "R1", "R2", "unchanged", "9.0", "PL1", "被害人", "甲", "new"),
        ("L2", "R1", "R2", "unchanged", "2.5", "Q2", "近亲属", "乙；又", "new"),
        ("L3", "R1", "R1", "new", "5.0", "PL3", "被害人", "丙", "aided"),
        ("L4", "R2", "R2", "new", "9.5", "PL4", "被害人", "丁", "new")]
    history = con.execute("SELECT lead_id, rank, change FROM lead_history WHERE run_id = 'R2' ORDER BY rank").fetchall()
    assert history == [("L4", 1, "new"), ("L1", 2, "unchanged"), ("L2", 3, "unchanged")]

    # new evidence on the handled lead: listed as changed with what changed, and reopened
    counts = apply_lifecycle(con, _scored(
        {"lead_id": "L3", "score": 6.0, "reasons": "丙；戊", "fingerprint": "f3b"},
        {"lead_id": "L1", "score": 9.0, "reasons": "甲", "fingerprint": "f1"}), "R3")
    assert counts == {"B": 2, "changed": 1, "unchanged": 1}
    assert con.execute("SELECT lead_id, last_run_id, change, status, reasons FROM leads WHERE lead_id IN ('L1', 'L3') "
                       "ORDER BY lead_id").fetchall() == [("L1", "R3", "unchanged", "new", "甲"),
                                                          ("L3", "R3", "changed", "new", "丙；戊")]
    listed = con.execute("SELECT lead_id, change_detail FROM lead_history WHERE run_id = 'R3' ORDER BY rank").fetchall()
    reopened = con.execute("SELECT status, note FROM lead_events WHERE lead_id = 'L3' AND origin = 'run'").fetchall()
    assert listed == [("L3", "新增：戊"), ("L1", "")]
    assert reopened == [("new", "新证据重新提示（新增：戊）")]
    con.close()


@pytest.mark.parametrize("order", [("L1", "L2", "L3"), ("L3", "L2", "L1")])
def test_a_person_aided_in_two_cases_is_always_cited_with_the_first(tmp_path, order):
    """The case a reason cites must not move from night to night: that would read as new evidence."""
    con = open_database(tmp_path / "aided.duckdb")
    rows = {"L1": ("C9", "P1", "V1", dt.datetime(2026, 5, 1)), "L2": ("C2", "V2", "P1", dt.datetime(2026, 1, 3)),
            "L3": ("C1", "P1", "V3", dt.datetime(2026, 6, 1))}
    for lead_id in order:
        case_no, subject, victim, at = rows[lead_id]
        con.execute("""INSERT INTO leads (lead_id, case_no, subject_person_id, victim_person_id, subject_role,
                           first_run_id, last_run_id, score, tier, fingerprint, change, status, status_at)
                       VALUES (?, ?, ?, ?, '被害人', 'R1', 'R1', 50, 'B', 'f', 'new', 'aided', ?)""",
                    [lead_id, case_no, subject, victim, at])
    aided = stages.aided_before(con)
    con.close()
    assert aided["P1"] == "C2"  # aided first on 3 January, as the victim of C2
    assert aided["V1"] == "C9" and aided["V3"] == "C1"
