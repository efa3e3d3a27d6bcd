"""Ingest: find new or changed export files, map their headers, validate rows, load them with lineage.

Good rows land in raw_<source>; rows missing a required value land in `quarantine` with the field and
the reason; an unreadable optional value is recorded in `field_issues` and its row still loads; a file
that cannot be read, or lacks a required column, is recorded as rejected and the others still load.
The same content (SHA-256) is loaded once; a new version of the same file supersedes the old one: the file
at the same path, or at the same place under its source's folder when the folder was moved or re-mounted (the
old path is gone), so a moved inbox does not leave last month's roll in force beside this month's.

A file is prepared (read, mapped, checked: `pipeline.validate`) without touching the database, then
written in one transaction, in order. While one file is written, the next ones to load are prepared in
worker threads: the readers (calamine, polars) and DuckDB do their heavy work without holding the GIL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipeline.errors import MissingColumnError, SourceFormatError
from pipeline.headers import HeaderMapping, find_header
from pipeline.readers import DAMAGED_CHAR, SUPPORTED_SUFFIXES, SheetRows, read_table_file
from pipeline.store import raw_table, transaction
from pipeline.validate import CheckedTable, check_table
from schemas.config import AidLeadsConfig
from schemas.sources import SOURCES, SourceSpec

__all__ = ["FileOutcome", "IngestReport", "ingest_sources", "ingest_file", "discover_files"]

_PREPARE_AHEAD = 2
"""files prepared (read and checked) at once, in worker threads, while the files before them are written"""
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
    superseded: int = 0
    """loaded versions this file replaced (a file, or each sheet of a workbook), at its path or at its place in a
    moved inbox"""


@dataclass
class IngestReport:
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [f.error for f in self.files if f.error]

    def count(self, source: str, what: str) -> int:
        return sum(getattr(f, what) for f in self.files if f.source == source)


@dataclass
class _Prepared:
    """A file read, mapped and checked, ready to be written; or why it cannot be loaded."""

    tables: list[CheckedTable]
    problems: list[str]
    """sheets (or the whole file) that cannot be loaded, one line each"""
    encoding: str | None = None
    error: str | None = None
    """the whole file is rejected: this line"""


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
    """Load every new or changed file of every enabled source, in order, each in its own transaction."""
    report = IngestReport()
    files = [(source, path, src.columns, _place(config.resolve(src.path), path))
             for source, src in config.sources.items() if src.enabled
             for path in discover_files(config.resolve(src.path))]
    identities: list[tuple[str, int] | OSError] = []
    ahead: dict[int, Future[_Prepared]] = {}
    pool = ThreadPoolExecutor(max_workers=_PREPARE_AHEAD, thread_name_prefix="aidleads-ingest")

    def prepare_ahead() -> None:
        """Keep the next few files that need loading being prepared (a file already loaded is not read)."""
        while len(ahead) < _PREPARE_AHEAD and len(identities) < len(files):
            source, path, overrides, _ = files[len(identities)]
            identity = _identity(path)
            identities.append(identity)
            if isinstance(identity, tuple) and not _already_loaded(con, source, identity[0]):
                ahead[len(identities) - 1] = pool.submit(_prepare, source, path, overrides)

    try:
        for i, (source, path, overrides, place) in enumerate(files):
            prepare_ahead()
            pending = ahead.pop(i, None)
            prepare_ahead()
            outcome = _ingest_file(con, source, path, overrides, run_id, identities[i], pending, place)
            report.files.append(outcome)
            if on_file:
                on_file(outcome)
    finally:
        pool.shutdown(cancel_futures=True)  # after a failure, files not yet started are not read for nothing
    return report


def ingest_file(
    con: duckdb.DuckDBPyConnection, source: str, path: Path, overrides: dict[str, str], run_id: str
) -> FileOutcome:
    """Load one file (all its sheets) in one transaction; never raises for bad content."""
    path = Path(path)
    return _ingest_file(con, source, path, overrides, run_id, _identity(path), None, path.name)


def _place(location: Path, path: Path) -> str:
    """Where a file sits within its source's configured location: its path under the folder, else its name."""
    if location.is_dir():
        try:
            return path.relative_to(location).as_posix()
        except ValueError:
            pass
    return path.name


def _moved_versions(con: duckdb.DuckDBPyConnection, source: str, path: Path, place: str) -> list[str]:
    """Paths of the source's files in force that sat at this file's place in a folder that is gone: an inbox
    moved or mounted elsewhere. A same-named file in another subfolder, or one still on disk, is another file."""
    tail = tuple(place.split("/"))
    rows = con.execute("SELECT DISTINCT path FROM ingested_files WHERE source = ? AND status = 'loaded' "
                       "AND file_name = ? AND path <> ?", [source, path.name, str(path)]).fetchall()
    return [old for (old,) in rows if Path(old).parts[-len(tail):] == tail and not Path(old).exists()]


def _identity(path: Path) -> tuple[str, int] | OSError:
    """(SHA-256, size) of a file's content, or why it cannot be read."""
    try:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest(), path.stat().st_size
    except OSError as exc:
        return exc


def _already_loaded(con: duckdb.DuckDBPyConnection, source: str, sha: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM ingested_files WHERE source = ? AND sha256 = ? AND status IN ('loaded', 'superseded')",
        [source, sha],
    ).fetchall()[0][0])


def _ingest_file(con: duckdb.DuckDBPyConnection, source: str, path: Path, overrides: dict[str, str], run_id: str,
                 identity: tuple[str, int] | OSError, pending: Future[_Prepared] | None, place: str) -> FileOutcome:
    """`ingest_file`, given the file's identity and perhaps its preparation under way."""
    spec = SOURCES[source]
    if isinstance(identity, OSError):
        return FileOutcome(source, str(path), "rejected", error=f"{path}: cannot be read ({identity.strerror})")
    sha, size = identity
    if _already_loaded(con, source, sha):
        return FileOutcome(source, str(path), "skipped")
    # a rejected earlier attempt of the same content is retried (the config may have been fixed)
    con.execute("DELETE FROM ingested_files WHERE source = ? AND sha256 = ? AND status = 'rejected'", [source, sha])

    prepared = pending.result() if pending is not None else _prepare(source, path, overrides)
    if prepared.error is not None:
        _record_rejected(con, source, path, sha, size, None, prepared.encoding, prepared.error, run_id)
        return FileOutcome(source, str(path), "rejected", error=prepared.error)

    outcome = FileOutcome(source, str(path), "loaded")
    with transaction(con):
        for checked in prepared.tables:
            _write_table(con, spec, path, sha, size, checked, run_id)
            outcome.rows_loaded += checked.loaded.height
            outcome.rows_quarantined += checked.quarantined.height
        earlier = [str(path), *_moved_versions(con, source, path, place)]
        outcome.superseded = con.execute(
            """UPDATE ingested_files SET status = 'superseded'
               WHERE source = ? AND list_contains(?, path) AND sha256 <> ? AND status = 'loaded'""",
            [source, earlier, sha],
        ).fetchall()[0][0]
    if prepared.problems:
        outcome.error = "; ".join(prepared.problems)  # sheets skipped, the rest loaded
    return outcome


def _prepare(source: str, path: Path, overrides: dict[str, str]) -> _Prepared:
    """Read, map and check a file, without the database (so that it can run in a worker thread)."""
    spec = SOURCES[source]
    try:
        tables = read_table_file(path)
    except SourceFormatError as exc:
        return _Prepared([], [], error=str(exc))
    checked: list[CheckedTable] = []
    problems: list[str] = []
    for table in tables:
        where = f"{path}" + (f" [{table.sheet}]" if table.sheet and len(tables) > 1 else "")
        if table.problem:
            problems.append(f"{where}: {table.problem}")
            continue
        if not table.has_cells():
            problems.append(f"{where}: the file is empty (no header, no rows)")
            continue
        mapping = find_header(table.iter_rows(), spec, overrides)
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
        checked.append(check_table(spec, table, mapping))
    encoding = tables[0].encoding if tables else None
    if not checked:
        error = problems[0] if problems else f"{path}: the file holds no table"
        if not problems and not tables:
            error = f"{path}: the file is empty (no header, no rows)"
        return _Prepared([], problems, encoding, error)
    return _Prepared(checked, problems, encoding)


def _write_table(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path, sha: str, size: int,
                 checked: CheckedTable, run_id: str) -> None:
    """One checked table into ingested_files, the raw table, quarantine and field_issues."""
    table, mapping = checked.table, checked.mapping
    file_id = con.execute(
        """INSERT INTO ingested_files (source, path, file_name, sha256, size_bytes, sheet, encoding, header_row,
               column_mapping, unmapped_headers, status, run_id, ingested_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'loaded', ?, ?) RETURNING file_id""",
        [spec.name, str(path), path.name, sha, size, table.sheet, table.encoding, mapping.header_row,
         json.dumps(mapping.as_labels(), ensure_ascii=False), json.dumps(mapping.unmapped, ensure_ascii=False),
         run_id, _now()],
    ).fetchall()[0][0]
    lineage = [pl.lit(file_id, pl.Int64).alias("file_id"), pl.lit(path.name, pl.String).alias("source_file")]
    if checked.quarantined.height:
        _insert(con, "quarantine", checked.quarantined.select(*lineage, pl.lit(spec.name).alias("source"), pl.all()))
    if checked.issues.height:
        _insert(con, "field_issues", checked.issues.select(*lineage, pl.lit(spec.name).alias("source"), pl.all()))
    if checked.loaded.height:
        _insert(con, raw_table(spec.name), checked.loaded.select(
            *lineage, pl.lit(sha, pl.String).alias("file_sha256"), pl.lit(table.sheet, pl.String).alias("sheet"),
            pl.all()))
    con.execute(
        "UPDATE ingested_files SET rows_read = ?, rows_loaded = ?, rows_quarantined = ?, rows_blank = ? WHERE file_id = ?",
        [checked.rows_read, checked.loaded.height, checked.quarantined.height, checked.rows_blank, file_id],
    )


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Append the frame's rows to a table, its columns by name, in one Arrow insert."""
    con.register("_ingest_rows", frame.to_arrow())
    try:
        cols = ", ".join(f'"{c}"' for c in frame.columns)
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _ingest_rows")
    finally:
        con.unregister("_ingest_rows")


def _as_big5(path: Path, spec: SourceSpec, overrides: dict[str, str], table: SheetRows,
             mapping: HeaderMapping | None) -> tuple[SheetRows, HeaderMapping | None]:
    """A text file whose GB18030 reading has no header: if its Big5 reading has one, use that."""
    try:
        big5 = read_table_file(path, encoding=_BIG5)[0]
    except SourceFormatError:
        return table, mapping
    damaged = pl.any_horizontal(pl.col(big5.columns).str.contains(DAMAGED_CHAR, literal=True).any())
    if big5.width and big5.frame.head(50).select(damaged).item():
        return table, mapping
    found = find_header(big5.iter_rows(), spec, overrides)
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
