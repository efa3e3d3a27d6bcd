"""Ingest: find new or changed export files, map their headers, validate rows, load them with lineage.

Good rows land in raw_<source>; rows missing a required value land in `quarantine` with the field and
the reason; an unreadable optional value is recorded in `field_issues` and its row still loads; a file
that cannot be read, or lacks a required column, is recorded as rejected and the others still load.
The same content (SHA-256) is loaded once; a new version of the same file supersedes the old one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipeline.errors import MissingColumnError, SourceFormatError
from pipeline.headers import HeaderMapping, find_header
from pipeline.readers import DAMAGED_CHAR, SUPPORTED_SUFFIXES, SheetRows, read_table_file
from pipeline.store import LINEAGE_COLUMNS, raw_table
from pipeline.values import ValueParseError, is_null_token, parse_amount, parse_date
from schemas.config import AidLeadsConfig
from schemas.sources import SOURCES, FieldType, SourceSpec

__all__ = ["FileOutcome", "IngestReport", "ingest_sources", "ingest_file", "discover_files"]

MAX_TEXT_CHARS = 1000
"""a cell longer than this is not a value an agency meant to send; the row is quarantined"""
_BIG5 = "cp950"
"""Big5 as Windows writes it; Big5 bytes also read as (garbled) GB18030, so it is tried when no header is found"""


@dataclass
class FileOutcome:
    source: str
    path: str
    status: str
    """loaded / skipped (same content already loaded) / rejected"""
    rows_loaded: int = 0
    rows_quarantined: int = 0
    error: str | None = None


@dataclass
class IngestReport:
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [f.error for f in self.files if f.error]

    def count(self, source: str, what: str) -> int:
        return sum(getattr(f, what) for f in self.files if f.source == source)


def discover_files(location: Path) -> list[Path]:
    """Input files at a configured location: a file, a folder (searched recursively) or a glob."""
    if location.is_file():
        return [location]
    if location.is_dir():
        found = [p for p in location.rglob("*") if p.is_file()]
    else:
        found = [p for p in location.parent.glob(location.name) if p.is_file()] if location.parent.is_dir() else []
    return sorted(p for p in found if p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith(("~$", ".")))


def ingest_sources(
    con: duckdb.DuckDBPyConnection,
    config: AidLeadsConfig,
    run_id: str,
    on_file: Callable[[FileOutcome], None] | None = None,
) -> IngestReport:
    """Load every new or changed file of every enabled source."""
    report = IngestReport()
    for source, src in config.sources.items():
        if not src.enabled:
            continue
        for path in discover_files(config.resolve(src.path)):
            outcome = ingest_file(con, source, path, src.columns, run_id)
            report.files.append(outcome)
            if on_file:
                on_file(outcome)
    return report


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ingest_file(
    con: duckdb.DuckDBPyConnection, source: str, path: Path, overrides: dict[str, str], run_id: str
) -> FileOutcome:
    """Load one file (all its sheets) in one transaction; never raises for bad content."""
    spec = SOURCES[source]
    path = Path(path)
    try:
        sha = _sha256(path)
        size = path.stat().st_size
    except OSError as exc:
        return FileOutcome(source, str(path), "rejected", error=f"{path}: cannot be read ({exc.strerror})")
    done = con.execute(
        "SELECT count(*) FROM ingested_files WHERE source = ? AND sha256 = ? AND status IN ('loaded', 'superseded')",
        [source, sha],
    ).fetchall()[0][0]
    if done:
        return FileOutcome(source, str(path), "skipped")
    # a rejected earlier attempt of the same content is retried (the config may have been fixed)
    con.execute("DELETE FROM ingested_files WHERE source = ? AND sha256 = ? AND status = 'rejected'", [source, sha])

    try:
        tables = read_table_file(path)
    except SourceFormatError as exc:
        _record_rejected(con, source, path, sha, size, None, None, str(exc), run_id)
        return FileOutcome(source, str(path), "rejected", error=str(exc))

    outcome = FileOutcome(source, str(path), "loaded")
    mapped: list[tuple[SheetRows, HeaderMapping]] = []
    problems: list[str] = []
    for table in tables:
        where = f"{path}" + (f" [{table.sheet}]" if table.sheet and len(tables) > 1 else "")
        if table.problem:
            problems.append(f"{where}: {table.problem}")
            continue
        if not any(any(c is not None for c in cells) for _, cells in table.rows):
            problems.append(f"{where}: the file is empty (no header, no rows)")
            continue
        mapping = find_header(table.rows, spec, overrides)
        if mapping is None and table.sheet is None and table.encoding == "gb18030":
            table, mapping = _as_big5(path, spec, overrides, table, mapping)
        if mapping is None:
            problems.append(f"{where}: no header row with known column names found")
            continue
        missing = mapping.missing_required(spec)
        if missing:
            header = [str(h) for h in mapping.header if h]
            problems.append(str(MissingColumnError(where, source, missing, header)))
            continue
        mapped.append((table, mapping))
    if not mapped:
        error = problems[0] if problems else f"{path}: the file holds no table"
        if not problems and not tables:
            error = f"{path}: the file is empty (no header, no rows)"
        _record_rejected(con, source, path, sha, size, None, tables[0].encoding if tables else None, error, run_id)
        return FileOutcome(source, str(path), "rejected", error=error)

    con.execute("BEGIN TRANSACTION")
    try:
        for table, mapping in mapped:
            loaded, quarantined = _load_table(con, spec, path, sha, size, table, mapping, run_id)
            outcome.rows_loaded += loaded
            outcome.rows_quarantined += quarantined
        con.execute(
            """UPDATE ingested_files SET status = 'superseded'
               WHERE source = ? AND path = ? AND sha256 <> ? AND status = 'loaded'""",
            [source, str(path), sha],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if problems:
        outcome.error = "; ".join(problems)  # sheets skipped, the rest loaded
    return outcome


def _as_big5(path: Path, spec: SourceSpec, overrides: dict[str, str], table: SheetRows,
             mapping: HeaderMapping | None) -> tuple[SheetRows, HeaderMapping | None]:
    """A text file whose GB18030 reading has no header: if its Big5 reading has one, use that."""
    try:
        big5 = read_table_file(path, encoding=_BIG5)[0]
    except SourceFormatError:
        return table, mapping
    if DAMAGED_CHAR in "".join(c or "" for _, cells in big5.rows[:50] for c in cells):
        return table, mapping
    found = find_header(big5.rows, spec, overrides)
    return (big5, found) if found is not None else (table, mapping)


def _record_rejected(con, source, path, sha, size, sheet, encoding, error, run_id) -> None:
    con.execute(
        """INSERT INTO ingested_files (source, path, file_name, sha256, size_bytes, sheet, encoding,
               status, error, run_id, ingested_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'rejected', ?, ?, ?)""",
        [source, str(path), path.name, sha, size, sheet, encoding, error, run_id, _now()],
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _row_problems(spec: SourceSpec, values: dict[str, str | None]) -> tuple[tuple[str, str] | None, list[tuple[str, str, str]]]:
    """The reason a row cannot be loaded (field, Chinese reason), if any, and the field issues of a loadable row.

    Only a missing required value or an absurdly long cell stops a row: an unreadable optional date or
    amount ("见判决书", "2020-00-00") must not cost a victim their lead, so the row loads with that value
    empty and the issue recorded in `field_issues` for the data-quality report.
    """
    issues: list[tuple[str, str, str]] = []
    for f in spec.fields:
        raw = values.get(f.name)
        if raw is not None and len(raw) > MAX_TEXT_CHARS:
            return (f.name, f"{f.label_zh}内容过长（超过{MAX_TEXT_CHARS}字）"), []
        if f.required and (raw is None or is_null_token(raw)):
            return (f.name, f"缺少必填字段：{f.label_zh}"), []
        if raw is None or is_null_token(raw):
            continue
        if DAMAGED_CHAR in raw:
            if f.required:
                return (f.name, f"{f.label_zh}含无法识别的字符（文件编码损坏）"), []
            issues.append((f.name, f"{f.label_zh}：含无法识别的字符（文件编码损坏）", raw))
            continue
        try:
            if f.type is FieldType.DATE:
                parse_date(raw)
            elif f.type is FieldType.AMOUNT:
                parse_amount(raw)
        except ValueParseError as exc:
            issues.append((f.name, f"{f.label_zh}：{exc.reason_zh}", raw))
    return None, issues


def _load_table(con, spec: SourceSpec, path: Path, sha: str, size: int, table: SheetRows,
                mapping: HeaderMapping, run_id: str) -> tuple[int, int]:
    header = mapping.header
    file_id = con.execute(
        """INSERT INTO ingested_files (source, path, file_name, sha256, size_bytes, sheet, encoding, header_row,
               column_mapping, unmapped_headers, status, run_id, ingested_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'loaded', ?, ?) RETURNING file_id""",
        [spec.name, str(path), path.name, sha, size, table.sheet, table.encoding, mapping.header_row,
         json.dumps(mapping.as_labels(), ensure_ascii=False), json.dumps(mapping.unmapped, ensure_ascii=False),
         run_id, _now()],
    ).fetchall()[0][0]

    good: dict[str, list] = {name: [] for name in (*LINEAGE_COLUMNS, *spec.field_names, "extra_columns")}
    bad: list[tuple] = []
    field_issues: list[tuple] = []
    names = _column_names(header, max((len(cells) for _, cells in table.rows), default=0))
    mapped_idx = set(mapping.columns.values())
    header_cells = {idx: header[idx] for idx in mapped_idx}
    read = blank = 0
    for number, cells in table.rows:
        if number <= mapping.header_row:
            continue
        read += 1
        if not any(c is not None for c in cells) or _repeats_header(cells, header_cells):
            blank += 1  # a blank line, or the header again (two exports pasted together): not data
            continue
        values = {name: (cells[idx] if idx < len(cells) else None) for name, idx in mapping.columns.items()}
        problem, issues = _row_problems(spec, values)
        if problem is not None:
            raw_row = {names[i]: c[:MAX_TEXT_CHARS] for i, c in enumerate(cells) if c is not None}
            bad.append((file_id, spec.name, path.name, number, problem[0], problem[1],
                        json.dumps(raw_row, ensure_ascii=False)))
            continue
        field_issues.extend((file_id, spec.name, path.name, number, fname, reason, raw[:MAX_TEXT_CHARS])
                            for fname, reason, raw in issues)
        for fname, _, _ in issues:
            if DAMAGED_CHAR in (values.get(fname) or ""):
                values[fname] = None  # like an unreadable date: the row loads, the value is left empty
        good["file_id"].append(file_id)
        good["source_file"].append(path.name)
        good["file_sha256"].append(sha)
        good["sheet"].append(table.sheet)
        good["row_number"].append(number)
        for name in spec.field_names:
            good[name].append(values.get(name))
        # every cell not mapped to a field is kept: unknown columns, and cells beyond the header (ragged rows)
        extras = {names[i]: c for i, c in enumerate(cells) if c is not None and i not in mapped_idx}
        good["extra_columns"].append(json.dumps(extras, ensure_ascii=False) if extras else None)

    loaded = len(good["file_id"])
    if loaded:
        frame = pl.DataFrame(good, schema={
            **{k: (pl.Int64 if k == "file_id" else pl.Int32 if k == "row_number" else pl.String) for k in good},
        })
        con.register("_ingest_rows", frame.to_arrow())
        try:
            cols = ", ".join(f'"{c}"' for c in good)
            con.execute(f"INSERT INTO {raw_table(spec.name)} ({cols}) SELECT {cols} FROM _ingest_rows")
        finally:
            con.unregister("_ingest_rows")
    if bad:
        con.executemany(
            "INSERT INTO quarantine (file_id, source, source_file, row_number, field, reason, raw_row) VALUES (?, ?, ?, ?, ?, ?, ?)",
            bad,
        )
    if field_issues:
        con.executemany(
            "INSERT INTO field_issues (file_id, source, source_file, row_number, field, reason, raw_value) VALUES (?, ?, ?, ?, ?, ?, ?)",
            field_issues,
        )
    con.execute(
        "UPDATE ingested_files SET rows_read = ?, rows_loaded = ?, rows_quarantined = ?, rows_blank = ? WHERE file_id = ?",
        [read, loaded, len(bad), blank, file_id],
    )
    return loaded, len(bad)


def _repeats_header(cells: list[str | None], header_cells: dict[int, str | None]) -> bool:
    """The header row again, as two exports pasted into one file repeat it (compared as text: cheap per row)."""
    return all(idx < len(cells) and cells[idx] == text for idx, text in header_cells.items())


def _column_names(header: list[str | None], width: int) -> list[str]:
    """A distinct name per column, for the JSON of unmapped and quarantined cells: the header text,
    suffixed when it repeats; 列N for a column without a header (or beyond it, in a ragged row)."""
    names: list[str] = []
    seen: set[str] = set()
    for i in range(max(width, len(header))):
        base = str(header[i]) if i < len(header) and header[i] else f"列{i + 1}"
        name, n = base, 2
        while name in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        names.append(name)
    return names
