"""线索核查单: a one-page, printable verification sheet for one lead (XLSX, A4, fit to one page)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.export import inert
from pipeline.lifecycle import STATUS_ZH, LeadNotFoundError

__all__ = ["write_verification_sheet"]

_FIELDS = (
    ("线索编号", "lead_id"), ("优先级 / 评分", "tier_score"), ("处理状态", "status"),
    ("救助对象", "subject_name"), ("对象身份", "subject_role"), ("身份证号", "id_masked"), ("联系电话", "phone"),
    ("住址", "address"), ("被害人", "victim_name"), ("案号", "case_no"), ("罪名", "charge"), ("伤情", "injury"),
    ("案发日期", "incident_date"), ("承办单位", "unit"), ("线索理由", "reasons"), ("救助金额参考", "aid_estimate"),
    ("建议协同单位", "referrals"), ("同一人依据", "evidence"), ("来源行", "source_rows"),
)
_CHECKS = ("核实身份与联系方式", "核实伤情、死亡或残疾情况", "核实赔偿执行情况（终本裁定、被告人财产）",
           "核实家庭经济状况（收入、低保、负担人口）", "排除：被害人重大过错 / 已获合理赔偿 / 非因案致困")


def write_verification_sheet(con: duckdb.DuckDBPyConnection, lead_id: str, path: Path) -> Path:
    """Write the sheet for a lead as listed by its latest run (masked identity)."""
    import xlsxwriter

    rows = con.execute(
        """SELECT h.*, l.case_no, l.subject_role, l.status FROM lead_history h JOIN leads l USING (lead_id)
           WHERE h.lead_id = ? ORDER BY h.run_id DESC LIMIT 1""", [lead_id])
    columns = [d[0] for d in rows.description]
    found = rows.fetchall()
    if not found:
        raise LeadNotFoundError(f"no lead with id {lead_id}", hint="see `aidleads leads` for lead ids")
    lead = dict(zip(columns, found[0]))
    lead["tier_score"] = f"{lead['tier']} 级 / {lead['score']}"
    lead["status"] = STATUS_ZH.get(lead["status"], lead["status"])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False})
    ws = wb.add_worksheet("线索核查单")
    title = wb.add_format({"bold": True, "font_size": 16, "align": "center"})
    label = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "valign": "top", "text_wrap": True})
    value = wb.add_format({"border": 1, "valign": "top", "text_wrap": True})
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 1)
    ws.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.6)
    ws.set_column(0, 0, 16)
    ws.set_column(1, 1, 80)
    ws.merge_range(0, 0, 0, 1, "司法救助线索核查单", title)
    r = 2
    for text, key in _FIELDS:
        ws.write_string(r, 0, text, label)
        ws.write_string(r, 1, str(inert("" if lead.get(key) is None else lead[key])).replace("；", "；\n"), value)
        r += 1
    r += 1
    ws.write_string(r, 0, "核查事项", label)
    ws.write_string(r, 1, "\n".join(f"□ {c}" for c in _CHECKS), value)
    ws.set_row(r, 90)
    for text in ("核查结论", "承办检察官 / 日期", "部门负责人意见"):
        r += 1
        ws.write_string(r, 0, text, label)
        ws.write_string(r, 1, "", value)
        ws.set_row(r, 40)
    wb.close()
    return path
