"""Data-quality report per run (XLSX and HTML): what is wrong with each agency's files, and where.

Per source and file: rows read / loaded / quarantined / blank, encoding and header row, the column
mapping used, ID number quality (valid, legacy 15-digit, bad check character, bad date, damaged,
missing), exact duplicate rows, records that matched nobody else; then the quarantined rows and the
unreadable values, each with file, row and reason — names and ID numbers masked — so a data officer
can send each agency a concrete list of what to fix.
"""

from __future__ import annotations

import html
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import polars as pl

from matchers.idnumber import mask_id, mask_phone
from pipeline.workbook import write_tables_xlsx
from pipeline.store import on_cursor, query_frame

__all__ = ["quality_tables", "write_quality_report"]

_FILES = """
SELECT q.source AS 来源, q.file_name AS 文件, coalesce(q.sheet, '') AS 工作表, coalesce(q.encoding, '') AS 编码,
       q.header_row AS 表头行, q.rows_read AS 数据行, q.rows_loaded AS 入库行, q.rows_quarantined AS 隔离行,
       q.rows_blank AS 空行, q.field_issues AS 字段问题,
       q.ids_valid AS 身份证有效, q.ids_legacy15 AS 身份证15位, q.ids_wrong AS 身份证错误, q.ids_damaged AS 身份证损坏,
       q.ids_missing AS 身份证缺失, q.records_unmatched AS 未匹配他人记录,
       f.column_mapping::VARCHAR AS 列映射, q.status AS 状态, coalesce(q.error, '') AS 问题
FROM analyst.file_quality q JOIN main.ingested_files f USING (file_id)
WHERE q.status IN ('loaded', 'rejected')
ORDER BY q.source, q.file_name, q.sheet
"""
"""Per file: the analysts' file_quality view (one definition of the per-file counts), with Chinese headers."""


def _duplicates(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], int]:
    """Exact duplicate rows per (source, file): rows whose every mapped value repeats an earlier row.

    A loaded file's rows never change, so its count is kept (table file_duplicate_rows) and a night counts only
    the files it loaded; a read-only connection counts them all."""
    try:
        con.execute("""CREATE TABLE IF NOT EXISTS file_duplicate_rows (file_id BIGINT PRIMARY KEY, duplicate_rows BIGINT);
                       COMMENT ON TABLE file_duplicate_rows IS '重复行数: exact duplicate rows of each loaded file (for the data-quality report)'""")
        cached = True
    except duckdb.Error:  # read-only
        cached = False
        con.execute("CREATE OR REPLACE TEMP TABLE file_duplicate_rows_now (file_id BIGINT, duplicate_rows BIGINT)")
    table = "file_duplicate_rows" if cached else "file_duplicate_rows_now"
    missing = {r[0] for r in con.execute(
        "SELECT DISTINCT source FROM ingested_files WHERE status = 'loaded'"
        + (" AND file_id NOT IN (SELECT file_id FROM file_duplicate_rows)" if cached else "")).fetchall()}
    for source in ("victims", "disability", "subsistence", "enforcement", "key_groups"):
        if source not in missing:
            continue
        # DISTINCT on the rows' values (NULLs equal) counts what md5s of their text did, 3x faster
        not_yet = "AND f.file_id NOT IN (SELECT file_id FROM file_duplicate_rows)" if cached else ""
        counted = f"""SELECT f.file_id, count(*) - count(DISTINCT r) AS duplicate_rows
                      FROM (SELECT * EXCLUDE (file_id, source_file, file_sha256, sheet, row_number), file_id AS fid
                            FROM raw_{source}) r
                      JOIN ingested_files f ON f.file_id = r.fid WHERE f.status = 'loaded' {not_yet} GROUP BY f.file_id"""
        con.execute(f"INSERT INTO {table} {counted}")
    rows = con.execute(f"""SELECT f.source, f.file_name, sum(d.duplicate_rows) FROM {table} d
                           JOIN ingested_files f USING (file_id) WHERE f.status = 'loaded'
                           GROUP BY f.source, f.file_name""").fetchall()
    return {(source, name): int(dup) for source, name, dup in rows}


_NAME_FIELDS = {"name", "head_name", "applicant_name", "respondent_name", "defendant_name"}
_ID_FIELDS = {"id_number", "head_id_number", "applicant_id_number", "respondent_id_number", "cert_no"}


def _mask_row(raw: str, mapping: dict[str, str]) -> str:
    """A quarantined row as text, its names, ID numbers and phones masked (columns known from the file's mapping)."""
    try:
        row = json.loads(raw)
    except ValueError:
        return ""
    field_of = {header: field for field, header in mapping.items()}
    shown = []
    for header, value in row.items():
        text, field = str(value), field_of.get(header)
        if field in _ID_FIELDS:
            text = mask_id(text) if len(text) > 10 else "*" * len(text)
        elif field in _NAME_FIELDS and text:
            text = text[0] + "*" * (len(text) - 1)
        elif field == "phone":
            text = mask_phone(text)
        shown.append(f"{header}={text}")
    return "；".join(shown)[:500]


def quality_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """The report's tables: per file, quarantined rows, unreadable values (identities masked).

    The per-file figures (most of the time: they count every person record) are queried on a second thread,
    on a cursor of `con`, while the rest is read and masked here (DuckDB lets go of the GIL).
    """
    with ThreadPoolExecutor(1, thread_name_prefix="quality-files") as pool:
        files_read = pool.submit(on_cursor, con.cursor(), query_frame, _FILES)
        tables = _rows_tables(con)
        duplicates = _duplicates(con)
        files = files_read.result()
    files = files.with_columns(pl.struct("来源", "文件").map_elements(
        lambda s: duplicates.get((s["来源"], s["文件"]), 0), return_dtype=pl.Int64).alias("重复行"))
    return {"文件概况": files, **tables}


def _rows_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """The quarantined rows (masked) and the unreadable values, each with file, row and reason."""
    quarantine = query_frame(con, """SELECT q.source AS 来源, q.source_file AS 文件, q.row_number AS 行号, q.field AS 字段,
                                            q.reason AS 原因, q.raw_row, f.column_mapping::VARCHAR AS mapping
                                     FROM quarantine q JOIN ingested_files f USING (file_id) ORDER BY 1, 2, 3""")
    masked = [_mask_row(raw, json.loads(mapping or "{}"))
              for raw, mapping in zip(quarantine["raw_row"].to_list(), quarantine["mapping"].to_list())]
    quarantine = quarantine.with_columns(pl.Series("行内容（已脱敏）", masked, dtype=pl.String)).drop("raw_row", "mapping")
    issues = query_frame(con, """SELECT source AS 来源, source_file AS 文件, row_number AS 行号, field AS 字段,
                                        reason AS 原因 FROM field_issues ORDER BY 1, 2, 3""")
    return {"隔离行": quarantine, "字段问题": issues}


def write_quality_report(con: duckdb.DuckDBPyConnection, out_dir: Path) -> dict[str, Path]:
    """Write data_quality.xlsx and data_quality.html; returns their paths."""
    tables = quality_tables(con)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"xlsx": out_dir / "data_quality.xlsx", "html": out_dir / "data_quality.html"}
    wide = ("列映射", "问题", "行内容（已脱敏）", "原因")
    write_tables_xlsx(paths["xlsx"], tables, lambda _, name: 40 if name in wide else 12)
    parts = ["<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'><title>数据质量报告</title><style>"
             "body{font-family:'Microsoft YaHei','PingFang SC','Noto Sans CJK SC',sans-serif;margin:2em}"
             "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #999;padding:3px 8px}"
             "th{background:#1F4E78;color:#fff}</style></head><body><h1>数据质量报告</h1>"]
    for title, table in tables.items():
        parts.append(f"<h2>{html.escape(title)}（{table.height}）</h2><table><tr>")
        parts += [f"<th>{html.escape(c)}</th>" for c in table.columns]
        parts.append("</tr>")
        for row in table.head(2000).iter_rows():
            parts.append("<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    paths["html"].write_text("".join(parts), encoding="utf-8")
    return paths
