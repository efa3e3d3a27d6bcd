"""The run summary as shown in Prefect's UI: counts only, never names, ID numbers, phones, addresses or case numbers.

`ui_summary` gathers the figures; `summary_markdown` and `source_count_rows` lay them out for a markdown
and a table artifact. Everything here is a count keyed by a fixed label (source, link method, tier,
change, status), so nothing a person typed into a source file can reach Prefect's database.
"""

from __future__ import annotations

from typing import Any

from pipeline.run import run_summary
from pipeline.store import open_database
from schemas.config import AidLeadsConfig
from schemas.sources import SOURCES

__all__ = ["ui_summary", "summary_markdown", "source_count_rows"]

_CHANGES = (("new", "新增 new"), ("changed", "有变化 changed"), ("unchanged", "无变化 unchanged"))
_STATUSES = ("new", "assigned", "verifying", "aided", "not_eligible", "referred", "closed")
_CLOSED = ("aided", "not_eligible", "referred", "closed")
_ZERO = {"rows": 0, "quarantined": 0, "records": 0, "linked_to_victims": 0}


def ui_summary(config: AidLeadsConfig, run_id: str, export_rows: int) -> dict[str, Any]:
    """The run's counts (pipeline.run.run_summary) plus this run's new files and rows, exported rows and
    leads by status."""
    summary = run_summary(config, run_id)
    con = open_database(config.database_path, read_only=True)
    try:
        statuses = dict(con.execute("SELECT status, count(*) FROM leads GROUP BY status").fetchall())
        ingested = con.execute("""SELECT subject, metric, value FROM run_counts
                                  WHERE run_id = ? AND stage = 'ingest' AND metric IN ('files_loaded', 'rows_loaded')""",
                               [run_id]).fetchall()
    finally:
        con.close()
    this_run: dict[str, dict[str, int]] = {}
    for source, metric, value in ingested:
        label = SOURCES[source].label_zh if source in SOURCES else source
        this_run.setdefault(label, {})[metric] = int(value or 0)
    return {**summary, "export_rows": int(export_rows), "this_run": this_run,
            "statuses": {s: int(statuses.get(s, 0)) for s in _STATUSES}}


def source_count_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per source: files and rows new this run, rows in force, quarantined, person records,
    persons linked to a victim."""
    this_run = summary.get("this_run", {})
    return [{"来源 source": source,
             "新文件 new files": this_run.get(source, {}).get("files_loaded", 0),
             "本次入库 rows loaded": this_run.get(source, {}).get("rows_loaded", 0),
             "在用 rows in force": c["rows"], "隔离 quarantined": c["quarantined"],
             "人员记录 records": c["records"], "关联被害人 linked": c["linked_to_victims"]}
            for source, c in summary["sources"].items()]


def summary_markdown(summary: dict[str, Any]) -> str:
    """The whole summary as markdown tables (counts and fixed labels only)."""
    lines = [f"# 运行汇总 run {summary['run_id']}", "", f"generated {summary['generated_at']}", "",
             "| " + " | ".join(source_count_rows({"sources": {"": _ZERO}})[0]) + " |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in source_count_rows(summary):
        lines.append("| " + " | ".join(str(v) for v in row.values()) + " |")
    lines += ["", "| 关联方式 link method | 关联 links |", "|---|---:|"]
    lines += [f"| {method} | {n} |" for method, n in sorted(summary["links"].items())] or ["| – | 0 |"]
    leads = summary["leads"]
    lines += ["", "| 项目 item | 数量 count |", "|---|---:|", f"| 人员 persons | {summary.get('persons', 0)} |"]
    lines += [f"| {tier}级 tier {tier} leads | {leads.get(tier, 0)} |" for tier in "ABC"]
    lines += [f"| {label} | {summary['changes'].get(key, 0)} |" for key, label in _CHANGES]
    closed = sum(summary["statuses"].get(s, 0) for s in _CLOSED)
    lines += [f"| 已办结 closed (aided, not eligible, referred, closed; all runs) | {closed} |",
              f"| 导出行 exported rows (leads.xlsx) | {summary['export_rows']} |"]
    lines += ["", "| 处理状态 lead status (all runs) | 线索 leads |", "|---|---:|"]
    lines += [f"| {status} | {n} |" for status, n in summary["statuses"].items()]
    return "\n".join(lines) + "\n"
