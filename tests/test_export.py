"""Exports: Chinese headers, masked IDs, inert formulas, BOM CSV, Parquet, the export audit."""

from __future__ import annotations

import datetime as dt

import openpyxl
import polars as pl

from conftest import make_id
from pipeline.export import HEADERS_ZH, export_leads
from pipeline.store import open_database


def _leads() -> pl.DataFrame:
    pid = make_id(seq=246)
    return pl.DataFrame({
        "rank": [1, 2], "tier": ["A", "C"], "score": [88.0, 26.0], "change": ["new", "unchanged"],
        "change_detail": ["", ""],
        "status": ["new", "assigned"], "lead_id": ["XS1", "XS2"], "subject_name": ["=HYPERLINK(\"x\")", "李娜"],
        "subject_role": ["被害人", "近亲属（配偶）"], "id_masked": ["350425********1234", ""],
        "phone": ["138****0000", ""], "address": ["+大田县", "@均溪镇"], "victim_name": ["王芳", "张伟"],
        "case_no": ["-1", "C2"], "charge": ["故意伤害罪", "交通肇事罪"], "injury": ["重伤二级", "死亡"],
        "incident_date": [dt.date(2025, 3, 1), None], "unit": ["大田县人民检察院", None],
        "reasons": ["被害人重伤二级；终本未执行 22.3 万元", "被害人死亡"], "aid_estimate": ["上限参考 22.3 万元", ""],
        "referrals": ["民政", ""], "evidence": ["终本案件e.xlsx第3行：身份证号一致", ""],
        "source_rows": ["v.xlsx#2；e.xlsx#3", "v.xlsx#5"], "subject_id18": [pid, None],
        "subject_phone": ["13800000000", None],
    })


def test_xlsx_csv_parquet_are_written_masked_and_inert(tmp_path):
    con = open_database(tmp_path / "db.duckdb")
    files = export_leads(con, _leads(), tmp_path / "out", "R1", {"run_id": "R1", "sources": {}})
    wb = openpyxl.load_workbook(files.xlsx)
    assert wb.sheetnames == ["汇总", "线索清单", "同一人依据"]
    ws = wb["线索清单"]
    header = [c.value for c in ws[1]]
    assert header == list(HEADERS_ZH.values())
    row = {h: c.value for h, c in zip(header, ws[2])}
    assert row["救助对象"] == "'=HYPERLINK(\"x\")" and ws.cell(2, header.index("救助对象") + 1).data_type == "s"
    assert row["住址"] == "'+大田县" and row["案号"] == "'-1"
    assert row["身份证号"] == "350425********1234" and row["本次变化"] == "新增"
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref
    raw = files.csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "线索理由".encode() in raw
    assert make_id(seq=246).encode() not in raw
    assert pl.read_parquet(files.parquet).height == 2
    audit = con.execute("SELECT kind, rows, masked FROM exports ORDER BY kind").fetchall()
    assert audit == [("leads_csv", 2, True), ("leads_parquet", 2, True), ("leads_xlsx", 2, True)]
    assert (files.xlsx.stat().st_mode & 0o077) == 0


def test_unmasking_needs_a_reason_and_is_recorded(tmp_path):
    con = open_database(tmp_path / "db.duckdb")
    files = export_leads(con, _leads(), tmp_path / "out", "R1", {}, unmask_reason="核查需要")
    ws = openpyxl.load_workbook(files.xlsx)["线索清单"]
    header = [c.value for c in ws[1]]
    assert ws.cell(2, header.index("身份证号") + 1).value == make_id(seq=246)
    assert con.execute("SELECT DISTINCT masked, reason FROM exports").fetchall() == [(False, "核查需要")]
