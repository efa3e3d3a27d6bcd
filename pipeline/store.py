"""The DuckDB database: opening it, creating the schema, and replacing the tables a run rebuilds."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl

from pipeline.errors import DatabaseError
from schemas.sources import SOURCES, SourceSpec

__all__ = ["open_database", "ensure_schema", "ensure_views", "raw_table", "replace_table", "create_table_from",
           "LINEAGE_COLUMNS", "transaction", "registered", "on_cursor", "query_frame"]

T = TypeVar("T")

LINEAGE_COLUMNS: dict[str, tuple[str, str]] = {
    "file_id": ("BIGINT", "文件号 (ingested_files.file_id)"),
    "source_file": ("VARCHAR", "源文件名"),
    "file_sha256": ("VARCHAR", "源文件 SHA-256"),
    "sheet": ("VARCHAR", "工作表名 (workbooks only)"),
    "row_number": ("INTEGER", "行号 (as the spreadsheet shows it, header = row 1)"),
}


def open_database(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (or create) the database; a lock or version problem becomes a DatabaseError."""
    path = Path(path)
    if read_only and not path.exists():
        raise DatabaseError(f"database not found: {path}", hint="run `aidleads run` or `aidleads demo` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise DatabaseError(
            f"cannot open database {path}: it is in use by another process",
            hint="close other programs holding it, or wait for the running job to finish",
        ) from exc
    except duckdb.Error as exc:
        raise DatabaseError(f"cannot open database {path} ({type(exc).__name__})") from exc
    if not read_only:
        ensure_schema(con)
    return con


def raw_table(source: str) -> str:
    return f"raw_{source}"


def _raw_ddl(spec: SourceSpec) -> str:
    cols = [f"{name} {typ}" for name, (typ, _) in LINEAGE_COLUMNS.items()]
    cols += [f'"{f.name}" VARCHAR' for f in spec.fields]
    cols.append("extra_columns JSON")
    lines = [f"CREATE TABLE IF NOT EXISTS {raw_table(spec.name)} (", ",\n".join(f"    {c}" for c in cols),
             ", PRIMARY KEY (file_id, row_number));"]
    comments = [f"COMMENT ON TABLE {raw_table(spec.name)} IS '原始数据: {spec.label_zh} rows as read (text), with lineage';"]
    for name, (_, comment) in LINEAGE_COLUMNS.items():
        comments.append(f"COMMENT ON COLUMN {raw_table(spec.name)}.{name} IS '{comment}';")
    for f in spec.fields:
        comments.append(f"COMMENT ON COLUMN {raw_table(spec.name)}.\"{f.name}\" IS '{f.label_zh} (原文)';")
    comments.append(f"COMMENT ON COLUMN {raw_table(spec.name)}.extra_columns IS '未识别列 (header → text)';")
    return "\n".join(lines + comments)


_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*)\)\s*$", re.S)
_COLUMN = re.compile(r"^\s*(\w+)\s+([A-Z]+)")


def _add_missing_columns(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    """A table made by an older version gains the columns added since (as nullable columns)."""
    match = _CREATE.search(statement)
    if not match:
        return
    table, body = match.groups()
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND schema_name = 'main'", [table]).fetchall()}
    for line in body.splitlines():
        column = _COLUMN.match(line)
        if column and column.group(1) not in have and column.group(1) != "PRIMARY":
            con.execute(f"ALTER TABLE {table} ADD COLUMN {column.group(1)} {column.group(2)}")


@lru_cache(maxsize=1)
def _schema_fingerprint() -> str:
    """What the schema this version creates looks like: the DDL, the views and the raw-table layout."""
    digest = hashlib.sha256()
    for name in ("ddl.sql", "views.sql"):
        digest.update(resources.files("schemas").joinpath(name).read_bytes())
    for spec in SOURCES.values():
        digest.update(_raw_ddl(spec).encode("utf-8"))
    return digest.hexdigest()


def _schema_current(con: duckdb.DuckDBPyConnection, fingerprint: str) -> bool:
    """True when this database already has this version's tables (its fingerprint)."""
    state = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'schema_state'").fetchall()
    if not state[0][0]:
        return False
    stored = con.execute("SELECT value FROM schema_state WHERE key = 'fingerprint'").fetchall()
    return bool(stored) and stored[0][0] == fingerprint


def _views_complete(con: duckdb.DuckDBPyConnection) -> bool:
    views = con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'analyst'").fetchall()[0][0]
    return views >= _expected_views()


def ensure_schema(con: duckdb.DuckDBPyConnection) -> bool:
    """Create every table that does not exist yet and add columns newer versions need (idempotent).
    True when every analyst view is there as well (until then, each call tries the missing ones again).

    Hundreds of DDL and COMMENT statements take over a second, and every stage opens the database:
    a database that already carries this version's schema (its fingerprint) is left as it is.
    """
    fingerprint = _schema_fingerprint()
    if _schema_current(con, fingerprint):
        # a first night's stages open the database before the tables some views read exist: only the
        # views are tried again (not the hundreds of table statements) until every one is there
        if _views_complete(con):
            return True
        ensure_views(con, only_missing=True)
        return _views_complete(con)
    ddl = resources.files("schemas").joinpath("ddl.sql").read_text(encoding="utf-8")
    with transaction(con):
        for statement in re.split(r";\s*\n", ddl):
            if not any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines()):
                continue
            con.execute(statement)
            _add_missing_columns(con, statement)
        for spec in SOURCES.values():
            con.execute(_raw_ddl(spec))
        con.execute("CREATE TABLE IF NOT EXISTS schema_state (key VARCHAR PRIMARY KEY, value VARCHAR)")
        con.execute("COMMENT ON TABLE schema_state IS '库结构版本: fingerprint of the schema this database was last brought up to'")
        con.execute("INSERT OR REPLACE INTO schema_state VALUES ('fingerprint', ?)", [fingerprint])
    ensure_views(con)  # outside the transaction: a view whose tables do not exist yet fails, and is skipped
    return _views_complete(con)


@lru_cache(maxsize=1)
def _expected_views() -> int:
    sql = resources.files("schemas").joinpath("views.sql").read_text(encoding="utf-8")
    return len(_VIEW.findall(sql))


_VIEW = re.compile(r"^\s*CREATE OR REPLACE VIEW (\S+)", re.M)


def ensure_views(con: duckdb.DuckDBPyConnection, *, only_missing: bool = False) -> list[str]:
    """(Re)create the analyst views of schemas/views.sql with their comments; returns the views made.

    A view over a table (or column) that no run has made yet is skipped, with its comments; the next
    opening after the run has made it creates the view. `only_missing` leaves the views that exist as
    they are (the schema is current; only those still waiting for their tables are tried).
    """
    sql = resources.files("schemas").joinpath("views.sql").read_text(encoding="utf-8")
    existing = {f"analyst.{r[0]}" for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = 'analyst'").fetchall()} if only_missing else set()
    made: list[str] = []
    skipping = False
    for statement in re.split(r";\s*\n", sql):
        if not any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines()):
            continue
        view = _VIEW.search(statement)
        if view and view.group(1) in existing:
            skipping = True  # and its comments
        elif view:
            try:
                con.execute(statement)
            except (duckdb.CatalogException, duckdb.BinderException):
                skipping = True
            else:
                skipping = False
                made.append(view.group(1))
        elif not skipping:
            con.execute(statement)
    return made


def create_table_from(con: duckdb.DuckDBPyConnection, name: str, source: str, uncompressed: Collection[str] = ()) -> None:
    """CREATE OR REPLACE table `name` holding the rows of the registered frame `source`.

    Columns named in `uncompressed` are stored without compression: hashes and ids (person ids, keyed ID
    hashes, record keys, ID and phone numbers) are random-looking text DuckDB compresses slowly and hardly at
    all — writing a province's persons takes half the time for a 60 MB file instead of 36 MB."""
    if not uncompressed:
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {source}")
        return
    columns = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    definitions = ", ".join(f'"{column}" {kind}' + (" USING COMPRESSION uncompressed" if column in uncompressed else "")
                            for column, kind, *_ in columns)
    con.execute(f"CREATE OR REPLACE TABLE {name} ({definitions})")
    con.execute(f"INSERT INTO {name} SELECT * FROM {source}")


def replace_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    frame: pl.DataFrame,
    *,
    table_comment: str,
    column_comments: dict[str, str],
    uncompressed: Collection[str] = (),
) -> None:
    """Replace a table a run rebuilds with `frame`, documenting every column.

    One transaction: readers see the old table or the new one with its comments, never a table
    without them; and the comments do not each commit on their own. The frame goes to DuckDB as
    Arrow string views, which polars hands over without copying the strings.
    """
    con.register("_replace_src", frame.to_arrow(compat_level=pl.CompatLevel.newest()))
    try:
        with transaction(con):
            create_table_from(con, name, "_replace_src", uncompressed)
            con.execute(f"COMMENT ON TABLE {name} IS {_quote(table_comment)}")
            for column in frame.columns:
                comment = column_comments.get(column)
                if comment:
                    con.execute(f'COMMENT ON COLUMN {name}."{column}" IS {_quote(comment)}')
    finally:
        con.unregister("_replace_src")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The statements of the block as one transaction: committed when the block ends, rolled back if it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, **frames: pl.DataFrame) -> Iterator[None]:
    """The frames readable by SQL under their keyword names for the block (Arrow string views, which DuckDB
    reads without a copy), and gone after it."""
    try:
        for name, frame in frames.items():
            con.register(name, frame.to_arrow(compat_level=pl.CompatLevel.newest()))
        yield
    finally:
        for name in frames:
            con.unregister(name)


def on_cursor(cursor: duckdb.DuckDBPyConnection, work: Callable[..., T], *args: Any) -> T:
    """work(cursor, *args) on a cursor of its own (for another thread), which is closed when the work is done."""
    try:
        return work(cursor, *args)
    finally:
        cursor.close()


def _quote(text: str) -> str:
    # COMMENT ON takes a literal, not a parameter; comments are our own constants.
    return "'" + text.replace("'", "''") + "'"


def query_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | dict[str, object] | None = None) -> pl.DataFrame:
    """A query's result as a polars frame (DuckDB 2.0 results no longer have .pl())."""
    return pl.from_arrow(con.sql(sql, params=params or None).to_arrow_table())
