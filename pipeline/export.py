"""Export the ranked lead list: leads.xlsx for prosecutors, leads.csv (UTF-8 with BOM) and leads.parquet.

Cells that a spreadsheet would run as a formula (starting with = + - @, tab or CR) are written as
inert text. ID numbers and phones are masked unless the caller unmasks them with a stated reason;
every export is recorded in the `exports` table. leads.xlsx can be password-protected (ECMA-376
agile encryption, which Excel and WPS open); files are created readable by their owner only.
"""

from __future__ import annotations

import datetime as dt
import getpass
import io
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.errors import ConfigError
from pipeline.lifecycle import STATUS_ZH
from schemas.config import AidLeadsConfig

__all__ = ["ExportedFiles", "export_leads", "xlsx_password", "HEADERS_ZH", "inert", "inert_text", "LEADS_OF_RUN"]

HEADERS_ZH: dict[str, str] = {
    "rank": "排名",
    "tier": "优先级",
    "score": "评分",
    "change": "本次变化",
    "change_detail": "变化内容",
    "status": "处理状态",
    "lead_id": "线索编号",
    "subject_name": "救助对象",
    "subject_role": "对象身份",
    "id_masked": "身份证号",
    "phone": "联系电话",
    "address": "住址",
    "victim_name": "被害人",
    "case_no": "案号",
    "charge": "罪名",
    "injury": "伤情",
    "incident_date": "案发日期",
    "unit": "承办单位",
    "reasons": "线索理由",
    "aid_estimate": "救助金额参考",
    "referrals": "建议协同单位",
    "evidence": "同一人依据",
    "source_rows": "来源行",
    "outcome": "处理结果",
    "aid_amount": "救助金额（元）",
    "outcome_note": "处理备注",
}
_CHANGE_ZH = {"new": "新增", "changed": "有变化", "unchanged": "无变化"}
_WIDTHS = {"change_detail": 30, "reasons": 60, "evidence": 60, "referrals": 40, "address": 30, "source_rows": 30, "case_no": 24,
           "aid_estimate": 28, "lead_id": 16, "id_masked": 20, "subject_role": 14, "unit": 18}
_TIER_COLOURS = {"A": "#F8CBAD", "B": "#FFE699", "C": "#E2EFDA"}


@dataclass
class ExportedFiles:
    xlsx: Path
    csv: Path
    parquet: Path
    rows: int
    encrypted: bool = False


def inert(value: Any) -> Any:
    """A text cell that a spreadsheet would evaluate becomes literal text (leading apostrophe)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def inert_text(text: pl.Expr) -> pl.Expr:
    """`inert` for a text column."""
    return text.str.replace(r"^([=+\-@\t\r])", "'$1")


def _private(path: Path) -> None:
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass


def _private_temp(folder: Path, suffix: str) -> Path:
    """An empty owner-only file in `folder` (writers that truncate it keep the mode)."""
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    return Path(name)


LEADS_OF_RUN = """
SELECT h.*, l.case_no, l.subject_person_id, l.victim_person_id, l.subject_role, l.status,
       p.id18 AS subject_id18, p.phone AS subject_phone
FROM lead_history h JOIN leads l USING (lead_id)
LEFT JOIN persons p ON p.person_id = l.subject_person_id
WHERE h.run_id = ? ORDER BY h.rank
"""
"""A run's ranked lead list with what the export needs (the subject's ID and phone, masked on export)."""


def xlsx_password(config: AidLeadsConfig, password_env: str | None = None) -> str | None:
    """The leads.xlsx password: from the variable named by `password_env` if given, else from the
    config's [export] password_env, then password_file; None when no password is configured.

    A configured source that is unset or empty is an error naming the variable or file, never the value.
    """
    env_name = password_env or config.export.password_env
    file_name = None if password_env else config.export.password_file
    if env_name and os.environ.get(env_name):
        return os.environ[env_name]
    unset = f"environment variable {env_name} is not set or is empty" if env_name else ""
    if not file_name:
        if not env_name:
            return None
        raise ConfigError(f"export password: {unset}",
                          hint=f"set {env_name} to the leads.xlsx password before running (it is named by "
                               "--password-env or [export] password_env)")
    path = config.resolve(file_name)
    also = f"; {unset}" if unset else ""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ConfigError(f"export password: cannot read [export] password_file {path} ({problem}){also}",
                          hint="create the file, readable by its owner only, with the password on its first line"
                          ) from None
    if not lines or not lines[0].strip():
        raise ConfigError(f"export password: [export] password_file {path} is empty{also}",
                          hint="write the password on the file's first line")
    return lines[0]


def _encrypted(workbook: io.BytesIO, password: str, sealed: Path) -> None:
    """Write an XLSX's password-protected form (ECMA-376 agile encryption in an OLE container) to `sealed`."""
    from msoffcrypto.format.ooxml import OOXMLFile

    workbook.seek(0)
    with sealed.open("wb") as out:
        OOXMLFile(workbook).encrypt(password, out)


def _table(leads: pl.DataFrame, unmask: bool) -> pl.DataFrame:
    frame = leads
    if unmask:
        frame = frame.with_columns(
            pl.coalesce(pl.col("subject_id18"), pl.col("id_masked")).alias("id_masked"),
            pl.coalesce(pl.col("subject_phone"), pl.col("phone")).alias("phone"),
        )
    frame = frame.with_columns(
        pl.col("change").replace_strict(_CHANGE_ZH, default=pl.col("change")),
        pl.col("status").replace_strict(STATUS_ZH, default=pl.col("status")),
        pl.lit("").alias("outcome"), pl.lit("").alias("aid_amount"), pl.lit("").alias("outcome_note"),
    )
    return frame.select(list(HEADERS_ZH))


def export_leads(
    con: duckdb.DuckDBPyConnection,
    leads: pl.DataFrame,
    out_dir: Path,
    run_id: str,
    summary: dict[str, Any],
    *,
    unmask_reason: str | None = None,
    password: str | None = None,
) -> ExportedFiles:
    """Write the three lead files and record the export; returns their paths.

    With `password`, leads.xlsx is password-protected; the unprotected workbook is never written to disk.
    `unmask_reason` (non-blank) writes full ID numbers and phones and is recorded with the export.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    unmask = bool(unmask_reason and unmask_reason.strip())
    table = _table(leads, unmask)
    safe = table.with_columns(inert_text(pl.col(pl.String)))
    renamed = safe.rename(HEADERS_ZH)

    files = ExportedFiles(out_dir / "leads.xlsx", out_dir / "leads.csv", out_dir / "leads.parquet", table.height,
                          encrypted=bool(password))
    # each file is written to an owner-only temporary file in the folder, and all three are renamed into place
    # once all are written; with a password the plain workbook exists only in memory, so a run killed halfway
    # leaves no unprotected copy on disk. leads.csv and leads.parquet are written on a second thread while
    # the workbook is built (polars lets go of the GIL)
    temps = [_private_temp(out_dir, ".xlsx"), _private_temp(out_dir, ".csv"), _private_temp(out_dir, ".parquet")]
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="export-flat") as pool:
            flat = pool.submit(_write_flat, renamed, table.rename(HEADERS_ZH), temps[1], temps[2])
            if password:
                plain = io.BytesIO()
                _write_xlsx(plain, safe, leads, summary, masked=not unmask)
                _encrypted(plain, password, temps[0])
            else:
                _write_xlsx(temps[0], safe, leads, summary, masked=not unmask)
            flat.result()
        for tmp, path in zip(temps, (files.xlsx, files.csv, files.parquet)):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    user = _os_user()
    for kind, path in (("leads_xlsx", files.xlsx), ("leads_csv", files.csv), ("leads_parquet", files.parquet)):
        _private(path)
        con.execute(
            """INSERT INTO exports (run_id, exported_at, os_user, path, kind, rows, masked, reason, encrypted)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [run_id, now, user, str(path), kind, table.height, not unmask, unmask_reason if unmask else None,
             kind == "leads_xlsx" and files.encrypted],
        )
    return files


def _write_flat(inert_table: pl.DataFrame, table: pl.DataFrame, csv: Path, parquet: Path) -> None:
    """leads.csv (cells inert, UTF-8 with BOM for Excel) and leads.parquet (values as they are)."""
    inert_table.write_csv(csv, include_bom=True)
    table.write_parquet(parquet)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _write_xlsx(path: Path | io.BytesIO, table: pl.DataFrame, leads: pl.DataFrame, summary: dict[str, Any], *,
                masked: bool = True) -> None:
    import xlsxwriter

    from pipeline.xlsx_write import SheetRows, style_id, workbook_with_rows

    # xlsxwriter lays out the workbook (formats, widths, header rows, filters); the data rows are added after
    # (pipeline.xlsx_write). in_memory: xlsxwriter otherwise stages sheets, with their personal data, in /tmp
    layout = io.BytesIO()
    wb = xlsxwriter.Workbook(layout, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                      "strings_to_numbers": False})
    head = wb.add_format({"bold": True, "bg_color": "#1F4E78", "font_color": "#FFFFFF", "text_wrap": True,
                          "valign": "vcenter", "border": 1})
    wrap = wb.add_format({"text_wrap": True, "valign": "top"})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd", "valign": "top"})
    tiers = {t: wb.add_format({"bg_color": c, "bold": True, "align": "center", "valign": "top"})
             for t, c in _TIER_COLOURS.items()}

    _summary_sheet(wb, head, summary, table, masked)

    ws = wb.add_worksheet("线索清单")
    columns = list(HEADERS_ZH)
    for c, name in enumerate(columns):
        ws.write_string(0, c, HEADERS_ZH[name], head)
        ws.set_column(c, c, _WIDTHS.get(name, 11), wrap)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(table.height, 1), len(columns) - 1)
    ws.set_row(0, 30)
    outcome_col = columns.index("outcome")
    ws.data_validation(1, outcome_col, max(table.height, 1), outcome_col, {
        "validate": "list", "source": ["已分派", "核查中", "已救助", "不符合条件", "已移送", "已办结"],
        "ignore_blank": True, "error_type": "warning"})

    evidence = _evidence_rows(leads)
    ev = wb.add_worksheet("同一人依据")
    for c, name in enumerate(evidence.columns):
        ev.write_string(0, c, name, head)
    ev.set_column(0, 0, 16)
    ev.set_column(1, 1, 12)
    ev.set_column(2, 2, 36)
    ev.set_column(3, 3, 70, wrap)
    ev.freeze_panes(1, 0)
    ev.autofilter(0, 0, max(evidence.height, 1), evidence.width - 1)

    # cells take the formats xlsxwriter would give them: tiers coloured, dates formatted, the rest of the
    # lead list wrapped (its columns' format)
    wrapped = style_id(wrap)
    lead_styles: dict[str, int | pl.Expr] = {name: wrapped for name in columns}
    lead_styles["tier"] = pl.col("tier").replace_strict({t: style_id(f) for t, f in tiers.items()}, default=wrapped,
                                                        return_dtype=pl.Int64)
    lead_styles["incident_date"] = style_id(date_fmt)
    wb.close()
    workbook = workbook_with_rows(layout.getvalue(), {
        "线索清单": SheetRows(table, lead_styles),
        "同一人依据": SheetRows(evidence, {"依据": wrapped}),
    })
    if isinstance(path, io.BytesIO):
        path.write(workbook)
    else:
        path.write_bytes(workbook)


def _evidence_rows(leads: pl.DataFrame) -> pl.DataFrame:
    """One row per piece of same-person evidence ("where：why" items separated by "；"), cells inert."""
    items = (leads.select(pl.col("lead_id").cast(pl.String), pl.col("subject_name").cast(pl.String).fill_null(""),
                          pl.col("evidence").cast(pl.String).fill_null("").str.split("；").alias("item"))
             .explode("item").filter(pl.col("item") != "")
             .with_columns(pl.col("item").str.splitn("：", 2).alias("parts")))
    return items.select(
        inert_text(pl.col("lead_id")).alias("线索编号"),
        inert_text(pl.col("subject_name")).alias("救助对象"),
        inert_text(pl.col("parts").struct.field("field_0")).alias("来源及行号"),
        inert_text(pl.col("parts").struct.field("field_1").fill_null("")).alias("依据"),
    )


def _summary_sheet(wb: Any, head: Any, summary: dict[str, Any], table: pl.DataFrame, masked: bool = True) -> None:
    ws = wb.add_worksheet("汇总")
    ws.set_column(0, 0, 28)
    ws.set_column(1, 4, 14)
    bold = wb.add_format({"bold": True, "font_size": 14})
    ws.write_string(0, 0, "司法救助线索清单", bold)
    ws.write_string(1, 0, f"运行号 {summary.get('run_id', '')}  生成时间 {summary.get('generated_at', '')}")
    ws.write_string(3, 0, "优先级", head)
    ws.write_string(3, 1, "线索数", head)
    counts = table.group_by("tier").len().sort("tier")
    r = 4
    for tier, n in counts.iter_rows():
        ws.write_string(r, 0, f"{tier} 级")
        ws.write_number(r, 1, n)
        r += 1
    ws.write_string(r, 0, "合计")
    ws.write_number(r, 1, table.height)
    r += 2
    ws.write_string(r, 0, "数据来源", head)
    for c, label in enumerate(("入库行数", "隔离行数", "关联人数"), start=1):
        ws.write_string(r, c, label, head)
    r += 1
    for source, counts_ in summary.get("sources", {}).items():
        ws.write_string(r, 0, source)
        ws.write_number(r, 1, counts_.get("rows", 0))
        ws.write_number(r, 2, counts_.get("quarantined", 0))
        ws.write_number(r, 3, counts_.get("linked_to_victims", 0))
        r += 1
    r += 1
    shown = "身份证号、电话已脱敏" if masked else "本文件含未脱敏的身份证号和电话，请妥善保管，用毕删除"
    ws.write_string(r, 0, f"说明：{shown}；“处理结果”列可填写后交回导入（aidleads lead import）。")
