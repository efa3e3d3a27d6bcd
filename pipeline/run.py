"""The nightly job's stages as plain functions: each opens the database, does one thing, returns counts.

Stages hand each other nothing but the run id: every intermediate result lives in DuckDB, so a
stage can be rerun, tested or orchestrated alone, and no personal data crosses a task boundary
(Prefect stores task parameters and results; these carry only ids and counts).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from matchers.case_context import case_context_links, merge_links_into_clusters
from matchers.clustering import inherit_person_ids
from matchers.comparison import compare_pairs
from matchers.households import household_relations
from matchers.linking import LinkSettings, Meter, resolve_people
from pipeline import reuse
from pipeline.compare_cache import CachedCompare
from pipeline.errors import AidLeadsError
from pipeline.export import LEADS_OF_RUN, export_leads, xlsx_password
from pipeline.ingest import FileOutcome, ingest_sources
from pipeline.lifecycle import apply_lifecycle
from pipeline.normalise import FACT_TABLES, SOURCE_ORDER, NormalisedData, normalise_all
from pipeline.persons import id_key, persons_frame, previous_person_ids, store_resolution, with_id_hmac
from pipeline.resolve_delta import DeltaOutcome, has_link_state, resolve_changes, store_link_state
from pipeline.quality import write_quality_report
from pipeline.score_cache import scored_leads
from pipeline.store import ensure_schema, on_cursor, open_database, query_frame
from schemas.config import AidLeadsConfig
from schemas.sources import SOURCES

__all__ = [
    "RunResult", "new_run_id", "start_run", "finish_run", "ingest_stage", "normalise_stage", "resolve_stage",
    "score_stage", "export_stage", "run_summary", "database", "night_database", "with_database", "prepare_build", "publish_build",
    "record_failure", "building_path", "stage_reused",
]


@dataclass
class RunResult:
    run_id: str
    database: Path
    exports_dir: Path
    summary: dict[str, Any]
    errors: list[str]


_HELD: dict[Path, duckdb.DuckDBPyConnection] = {}
"""databases a night holds open from its first stage to its last (night_database), by resolved path"""
_VIEWS_READY: set[Path] = set()
"""held databases whose analyst views are all there: their stages need not look again"""


@contextmanager
def night_database(config: AidLeadsConfig) -> Iterator[None]:
    """Hold the night's database open from the first stage to the last.

    A stage that opens the file itself pays for opening it, checking its schema and, on closing, a
    checkpoint: at a province about 0.1 s a stage, most of a second a night. While this is held, the
    stages (in any thread: Prefect runs tasks in worker threads) each work on a cursor of this one
    connection, and the file is closed, with its final checkpoint, once, when the night lets go of it.
    """
    path = config.database_path.resolve()
    if path in _HELD:
        raise RuntimeError(f"the database {path.name} is already held open by this night")
    con = open_database(path)
    _HELD[path] = con
    try:
        yield
    finally:
        del _HELD[path]
        _VIEWS_READY.discard(path)
        con.close()


@contextmanager
def database(config: AidLeadsConfig) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the config's database: a cursor of the night's, while a night holds it open."""
    path = config.database_path.resolve()
    held = _HELD.get(path)
    if held is None:
        con = open_database(config.database_path)
    else:  # the views over tables an earlier stage made tonight are created as open_database would
        con = held.cursor()
        _trim_buffer_pool(con)
        if path not in _VIEWS_READY and ensure_schema(con):
            _VIEWS_READY.add(path)
    try:
        yield con
    finally:
        con.close()


def _trim_buffer_pool(con: duckdb.DuckDBPyConnection) -> None:
    """Let DuckDB drop the table blocks it keeps cached from earlier stages, as closing the file did.

    Held open all night, the cache grew by about 0.8 GiB at ten provinces, on top of the compare step's
    peak (15.0 GiB of the 16 GiB allowed, against 14.2 with a connection per stage). Lowering the memory
    limit evicts what is not in use; the default limit is put back at once. Should DuckDB be unable to evict (it
    holds something in use), the limit is put back and nothing else changes.
    """
    try:
        con.execute("SET memory_limit = '64MB'")
    except duckdb.Error:
        pass
    finally:
        con.execute("RESET memory_limit")  # DuckDB's default (80 % of the memory); the night sets no other


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("R%Y%m%dT%H%M%S%f")[:-3]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _count(con: duckdb.DuckDBPyConnection, run_id: str, stage: str, metric: str, subject: str, value: int) -> None:
    _count_many(con, run_id, stage, [(metric, subject, value)])


def _count_many(con: duckdb.DuckDBPyConnection, run_id: str, stage: str, counts: list[tuple[str, str, int]]) -> None:
    """Several (metric, subject, value) counts of a stage in one statement (each statement costs milliseconds)."""
    if not counts:
        return
    rows = ", ".join(["(?, ?, ?, ?, ?)"] * len(counts))
    params = [p for metric, subject, value in counts for p in (run_id, stage, metric, subject, int(value))]
    con.execute(f"INSERT OR REPLACE INTO run_counts VALUES {rows}", params)


def start_run(config: AidLeadsConfig, config_file: str | None, run_id: str | None = None) -> str:
    run_id = run_id or new_run_id()
    config.work_dir.mkdir(parents=True, exist_ok=True)
    with database(config) as con:
        con.execute("INSERT INTO runs (run_id, started_at, status, config_file) VALUES (?, ?, 'running', ?)",
                    [run_id, _now(), config_file])
    return run_id


def finish_run(config: AidLeadsConfig, run_id: str, status: str, message: str | None = None) -> None:
    with database(config) as con:
        con.execute("UPDATE runs SET finished_at = ?, status = ?, message = ? WHERE run_id = ?",
                    [_now(), status, message, run_id])


def ingest_stage(config: AidLeadsConfig, run_id: str) -> dict[str, Any]:
    """Load new files; returns per-source counts and the one-line errors of rejected files."""
    with database(config) as con:
        report = ingest_sources(con, config, run_id)
        out: dict[str, Any] = {"errors": report.errors, "files": {}}
        counts: list[tuple[str, str, int]] = []
        for source in config.sources:
            files = [f for f in report.files if f.source == source]
            for what in ("loaded", "skipped", "rejected"):
                counts.append((f"files_{what}", source, sum(f.status == what for f in files)))
            counts.append(("rows_loaded", source, report.count(source, "rows_loaded")))
            counts.append(("rows_quarantined", source, report.count(source, "rows_quarantined")))
            out["files"][source] = {s: sum(f.status == s for f in files) for s in ("loaded", "skipped", "rejected")}
        _count_many(con, run_id, "ingest", counts)
        return out


_NORMALISED = ("person_records", *FACT_TABLES)
_RESOLVED = ("links", "person_members", "persons", "record_evidence")


def normalise_stage(config: AidLeadsConfig, run_id: str) -> dict[str, int]:
    """Person records per source; rebuilt only when the files in force (or the code) changed since."""
    with database(config) as con:
        key = reuse.inputs_key(con, "normalise")
        built_by = reuse.is_current(con, "normalise", key, _NORMALISED)
        if built_by is None:
            # a source whose files did not change keeps its records as they are; of the others only the new rows
            # are parsed, the unchanged ones keeping their records and ids (record_changes lists those added and
            # removed; rows_parsed counts the rows parsed per source)
            source_keys = reuse.source_keys(con, "normalise", SOURCE_ORDER)
            keep = reuse.kept_sources(con, "normalise", source_keys, _NORMALISED)
            found = con.execute("SELECT run_id FROM stage_state WHERE stage = 'normalise'").fetchall()

            def remember(built: NormalisedData) -> None:  # written with the tables, in their transaction
                if built.full_build:
                    counts = [("full_build", "all", 1)]
                else:
                    counts = [("source_kept", source, 1) for source in sorted(keep)]
                    counts += _record_change_counts(con, built.changes)
                counts += [("rows_parsed", source, n) for source, n in built.rows_parsed.items()]
                _count_many(con, run_id, "normalise", counts)
                # what record_changes is relative to: the run that built the person_records it was worked out against
                base = "full build" if built.full_build or not found else found[0][0]
                reuse.remember(con, "record_changes", base, run_id)
                reuse.remember(con, "normalise", key, run_id)
                for source, source_key in source_keys.items():
                    reuse.remember(con, f"normalise/{source}", source_key, run_id)

            normalise_all(con, keep=keep, before_commit=remember)
        else:
            _count(con, run_id, "normalise", "reused_from", built_by, 1)
        out = dict(con.execute("SELECT source, count(*) FROM person_records GROUP BY source").fetchall())
        _count_many(con, run_id, "normalise", [("person_records", source, n) for source, n in out.items()])
        return out


def _record_change_counts(con: duckdb.DuckDBPyConnection, changes: pl.DataFrame) -> list[tuple[str, str, int]]:
    """records_added / records_removed / records_kept per source of a delta normalise."""
    now = dict(con.execute("SELECT source, count(*) FROM person_records GROUP BY source").fetchall())
    changed = {(c, s): n for c, s, n in changes.group_by("change", "source").len().iter_rows()}
    counts = []
    for source in SOURCE_ORDER:
        added, removed = changed.get(("added", source), 0), changed.get(("removed", source), 0)
        counts += [("records_added", source, added), ("records_removed", source, removed),
                   ("records_kept", source, now.get(source, 0) - added)]
    return counts


def stage_reused(config: AidLeadsConfig, run_id: str, stage: str) -> str | None:
    """The run whose result `stage` reused in this run (no input changed), or None when it was rebuilt."""
    with database(config) as con:
        row = con.execute("SELECT subject FROM run_counts WHERE run_id = ? AND stage = ? AND metric = 'reused_from'",
                          [run_id, stage]).fetchall()
        return row[0][0] if row else None


def resolve_stage(config: AidLeadsConfig, run_id: str, meter: Meter | None = None) -> dict[str, int]:
    """Link records into persons; `meter` (block / compare / cluster) lets the benchmark time the steps.

    A night whose normalise changed a few records resolves only those (pipeline.resolve_delta); the first
    night, a large change, a code or settings change, or every `linking.full_resolve_every` nights, in full."""
    meter = meter or (lambda step: nullcontext())
    with database(config) as con:
        settings_dump = config.linking.model_dump(exclude={"distributed", "incremental", "incremental_max_change",
                                                           "full_resolve_every"})
        key = reuse.inputs_key(con, "resolve", settings_dump)
        built_by = reuse.is_current(con, "resolve", key, _RESOLVED)
        if built_by is not None:
            return _resolution_counts(con, run_id, built_by)
        settings = LinkSettings(match_probability=config.linking.match_probability,
                                max_block_size=config.linking.max_block_size)
        compare = compare_pairs
        if config.linking.distributed.enabled:
            from flows.distributed import dask_compare, scratch_folder

            dist = config.linking.distributed
            compare = dask_compare(dist, scratch_folder(dist, config.work_dir))
        state_key = reuse.settings_key("link_state", settings_dump)
        why_full = _why_full_resolution(con, config, state_key)
        if why_full is None:
            delta = resolve_changes(con, settings, compare, id_key(config.work_dir), meter)
            if delta is not None:
                return _incremental_counts(con, run_id, key, delta)
            why_full = "no model stored"
        _count(con, run_id, "resolve", "full", why_full, 1)
        with meter("block"):
            records = query_frame(con, "SELECT * FROM person_records ORDER BY record_id")
        cached = CachedCompare(con, records, compare, run_id)
        resolution = resolve_people(records, settings, meter, cached, households=False)
        with meter("cluster"):
            context = case_context_links(
                records, query_frame(con, "SELECT record_id, case_no, defendant_name FROM victim_facts"),
                query_frame(con, "SELECT record_id, respondent_name, origin_case_no, enforcement_case_no "
                                 "FROM enforcement_facts"))
            if context.height:
                resolution.clusters = merge_links_into_clusters(resolution.clusters, context, records)
                resolution.links = pl.concat([resolution.links, context], how="diagonal_relaxed")
            # people keep the ids they had (a lead marked aided names one); records are known by their keys
            keyed = resolution.clusters.with_columns(records["record_key"]) \
                if resolution.clusters["record_id"].equals(records["record_id"]) else \
                resolution.clusters.join(records.select("record_id", "record_key"), on="record_id", how="left")
            resolution.clusters = inherit_person_ids(keyed, previous_person_ids(con))
            # the relations name people as merged along the case, as an incremental night names them
            resolution.households = household_relations(records, resolution.clusters)
            resolution.stats["household_relations"] = resolution.households.height
            persons = with_id_hmac(persons_frame(records, resolution.clusters), id_key(config.work_dir))
            store_resolution(con, resolution, persons)
            store_link_state(con, resolution)
            if resolution.model is not None:
                resolution.model.tf = {}  # stored beside the records; not kept in memory or handed on
        stats = {k: int(v) for k, v in resolution.stats.items() if isinstance(v, (int, float))}
        stats["persons"] = persons.height
        stats["links"] = resolution.links.height
        with meter("compare"):
            cached.store()
        _count_many(con, run_id, "resolve", [
            *(("links", method, n) for method, n in resolution.links.group_by("method").len().iter_rows()),
            ("persons", "all", persons.height), ("pairs_reused", "all", cached.reused),
            ("pairs_compared", "all", cached.compared)])
        stats.update(pairs_reused=cached.reused, pairs_compared=cached.compared)
        reuse.remember(con, "resolve", key, run_id)
        reuse.remember(con, "link_state", state_key, run_id)
        reuse.remember(con, "resolve/incremental_nights", "0", run_id)
        reuse.remember(con, "resolve/records", _normalise_run(con), run_id)
        return stats


def _normalise_run(con: duckdb.DuckDBPyConnection) -> str:
    """The run that built tonight's person_records."""
    row = con.execute("SELECT run_id FROM stage_state WHERE stage = 'normalise'").fetchall()
    return row[0][0] if row else ""


def _why_full_resolution(con: duckdb.DuckDBPyConnection, config: AidLeadsConfig, state_key: str) -> str | None:
    """Why tonight resolves in full (a short reason for run_counts), or None when it may resolve the change alone."""
    linking = config.linking
    if not linking.incremental:
        return "incremental resolution is off"
    if not has_link_state(con):
        return "first resolution"
    state = dict(con.execute("SELECT stage, inputs_key FROM stage_state WHERE list_contains(?, stage)",
                             [["link_state", "resolve/incremental_nights", "resolve/records", "record_changes"]]
                             ).fetchall())
    if state.get("link_state") != state_key:
        return "code or link settings changed"
    if state.get("record_changes") != state.get("resolve/records"):
        return "records rebuilt in full"
    if int(state.get("resolve/incremental_nights") or 0) >= linking.full_resolve_every:
        return f"a full resolution is due (every {linking.full_resolve_every} incremental nights)"
    changed, total = con.execute("SELECT (SELECT count(*) FROM record_changes), "
                                 "(SELECT count(*) FROM person_records)").fetchall()[0]
    if changed > linking.incremental_max_change * max(total, 1):
        return "too many records changed"
    return None


def _incremental_counts(con: duckdb.DuckDBPyConnection, run_id: str, key: str, delta: DeltaOutcome) -> dict[str, int]:
    nights = con.execute("SELECT inputs_key FROM stage_state WHERE stage = 'resolve/incremental_nights'").fetchall()
    counts = [("incremental", "records_added", delta.stats["records_added"]),
              ("incremental", "records_removed", delta.stats["records_removed"]),
              ("incremental", "records_reclustered", delta.stats["people_rebuilt"]),
              ("pairs_compared", "all", delta.stats["pairs_compared"]), ("persons", "all", delta.persons),
              *(("links", method, n) for method, n in delta.links.iter_rows())]
    _count_many(con, run_id, "resolve", counts)
    reuse.remember(con, "resolve", key, run_id)
    reuse.remember(con, "resolve/incremental_nights", str(int(nights[0][0]) + 1 if nights else 1), run_id)
    reuse.remember(con, "resolve/records", _normalise_run(con), run_id)
    stats = dict(delta.stats)
    stats.update(persons=delta.persons, links=int(delta.links["n"].sum()), incremental=1)
    return stats


def _resolution_counts(con: duckdb.DuckDBPyConnection, run_id: str, built_by: str) -> dict[str, int]:
    """The counts of a resolution reused from an earlier run (nothing it was built from has changed)."""
    links = con.execute("SELECT method, count(*) FROM links GROUP BY method").fetchall()
    persons = con.execute("SELECT count(*) FROM persons").fetchall()[0][0]
    _count_many(con, run_id, "resolve", [("reused_from", built_by, 1), *(("links", m, n) for m, n in links),
                                         ("persons", "all", persons)])
    return {"persons": persons, "links": sum(n for _, n in links), "reused": 1}


def _lead_key(config: AidLeadsConfig) -> bytes:
    """Secret for stable, non-reversible lead ids; created once per work folder, owner-readable only."""
    path = config.work_dir / ".lead_key"
    if not path.exists():
        try:  # created with mode 0600 from the start, never readable by others even briefly
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
    return path.read_bytes()


def aided_before(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Person id → the case in which that person (as subject or victim of a lead) first received judicial aid.

    One case, the same every night (the earliest marked aided, then the smallest case number): a reason that
    cited another case of the same person on another night would read as new evidence and raise a handled
    lead again."""
    return dict(con.execute(
        """SELECT p, first(case_no ORDER BY status_at NULLS LAST, case_no) FROM (
               SELECT subject_person_id AS p, case_no, status_at FROM leads WHERE status = 'aided'
               UNION ALL SELECT victim_person_id, case_no, status_at FROM leads WHERE status = 'aided')
           GROUP BY p""").fetchall())


def score_stage(config: AidLeadsConfig, run_id: str, today: dt.date | None = None) -> dict[str, int]:
    """Score the case files whose inputs changed (all of them on a first night or after a settings change),
    keep the stored leads of the rest, and merge the ranked list into the lead lifecycle."""
    with database(config) as con:
        outcome = scored_leads(con, config.scoring, _lead_key(config), today or dt.date.today(), aided_before(con),
                               run_id)
        counts = apply_lifecycle(con, outcome.leads, run_id)
        _count_many(con, run_id, "score", [("leads", tier, counts.get(tier, 0)) for tier in ("A", "B", "C")]
                    + [("leads_change", c, counts.get(c, 0)) for c in ("new", "changed", "unchanged")]
                    + [("case_files", "scored", outcome.units_scored), ("case_files", "reused", outcome.units_reused),
                       ("case_files_scored", outcome.reason, 1)])
        return counts


def run_summary(config: AidLeadsConfig, run_id: str) -> dict[str, Any]:
    """Counts of a run, for the terminal, the workbook's summary sheet and the UI (no personal data)."""
    with database(config) as con:
        return _summary(con, run_id)


def _summary(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    rows = con.execute("SELECT stage, metric, subject, value FROM run_counts WHERE run_id = ?", [run_id]).fetchall()
    summary: dict[str, Any] = {"run_id": run_id, "generated_at": _now().strftime("%Y-%m-%d %H:%M UTC"),
                               "sources": {}, "links": {}, "leads": {}, "changes": {}}
    totals = dict(con.execute(
        """SELECT source, count(*) FROM person_records GROUP BY source""").fetchall()) if _has(con, "person_records") else {}
    linked = dict(con.execute(
        """SELECT r.source, count(DISTINCT m.person_id) FROM person_records r JOIN person_members m USING (record_id)
           WHERE m.person_id IN (SELECT m2.person_id FROM person_members m2 JOIN person_records r2 USING (record_id)
                                 WHERE r2.source = 'victims')
             AND r.source <> 'victims' GROUP BY r.source""").fetchall()) if _has(con, "person_members") else {}
    quarantined = dict(con.execute("SELECT source, count(*) FROM quarantine GROUP BY source").fetchall())
    loaded = dict(con.execute(
        """SELECT source, sum(rows_loaded) FROM ingested_files WHERE status = 'loaded' GROUP BY source""").fetchall())
    for source in SOURCES:
        summary["sources"][SOURCES[source].label_zh] = {
            "rows": int(loaded.get(source, 0) or 0), "quarantined": int(quarantined.get(source, 0)),
            "records": int(totals.get(source, 0)), "linked_to_victims": int(linked.get(source, 0)),
        }
    for stage, metric, subject, value in rows:
        if stage == "resolve" and metric == "links":
            summary["links"][subject] = value
        elif stage == "resolve" and metric == "persons":
            summary["persons"] = value
        elif stage == "score" and metric == "leads":
            summary["leads"][subject] = value
        elif stage == "score" and metric == "leads_change":
            summary["changes"][subject] = value
    return summary


def _has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchall()[0][0])


def export_stage(config: AidLeadsConfig, run_id: str, unmask_reason: str | None = None) -> dict[str, Any]:
    with database(config) as con:
        leads = query_frame(con, LEADS_OF_RUN, [run_id])
        summary = _summary(con, run_id)
        out_dir = config.exports_dir / run_id
        # the data-quality report reads only what ingest and normalise made: it is written alongside the lead
        # files, on a cursor of its own in a second thread (DuckDB, polars and zlib let go of the GIL)
        with ThreadPoolExecutor(1, thread_name_prefix="quality-report") as pool:
            report = pool.submit(on_cursor, con.cursor(), write_quality_report, out_dir)
            files = export_leads(con, leads, out_dir, run_id, summary, unmask_reason=unmask_reason,
                                 password=xlsx_password(config))
            quality = report.result()
        _count(con, run_id, "export", "rows", "leads", files.rows)
        return {"xlsx": str(files.xlsx), "csv": str(files.csv), "parquet": str(files.parquet), "rows": files.rows,
                "folder": str(out_dir), "data_quality": str(quality["xlsx"])}


def with_database(config: AidLeadsConfig, database: Path | str) -> AidLeadsConfig:
    """The same config, reading and writing another database file (the night's build copy)."""
    return config.model_copy(update={"paths": config.paths.model_copy(update={"database": str(database)})})


def building_path(config: AidLeadsConfig) -> Path:
    return config.database_path.with_name(config.database_path.name + ".building")


def prepare_build(config: AidLeadsConfig) -> Path:
    """Copy the live database to the build file the night's stages write to (the live one is only read).

    Analysts may hold the live file open read-only all night: DuckDB would refuse a writer on it, so
    the run never opens it for writing. A build file left by a killed run is discarded.
    """
    build = building_path(config)
    build.unlink(missing_ok=True)
    build.with_name(build.name + ".wal").unlink(missing_ok=True)
    build.parent.mkdir(parents=True, exist_ok=True)
    if config.database_path.exists():
        shutil.copyfile(config.database_path, build)
        wal = config.database_path.with_name(config.database_path.name + ".wal")
        if wal.exists():  # a writer that was killed left changes not yet checkpointed
            shutil.copyfile(wal, build.with_name(build.name + ".wal"))
    if build.exists():
        os.chmod(build, 0o600)
    return build


def publish_build(config: AidLeadsConfig, build: Path, run_id: str) -> None:
    """Swap the finished build in as the live database (atomic rename), then point exports/latest at this run."""
    os.replace(build, config.database_path)
    os.chmod(config.database_path, 0o600)
    _point_latest(config.exports_dir / "latest", config.exports_dir / run_id)


def record_failure(config: AidLeadsConfig, run_id: str, message: str) -> None:
    """Best effort: note a failed run in the live database (skipped while a reader holds it)."""
    try:
        con = open_database(config.database_path)
    except AidLeadsError:
        return
    try:
        con.execute("INSERT OR REPLACE INTO runs (run_id, started_at, finished_at, status, message) VALUES (?, ?, ?, 'failed', ?)",
                    [run_id, _now(), _now(), message])
    finally:
        con.close()


def _point_latest(link: Path, target: Path) -> None:
    """exports/latest → this run's folder (a symlink swapped atomically)."""
    tmp = link.with_name(".latest.tmp")
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(target.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        pass


def leads_frame(config: AidLeadsConfig, run_id: str | None = None) -> pl.DataFrame:
    """The lead list of a run (default: the latest succeeded run), for terminal display."""
    con = open_database(config.database_path, read_only=True)
    try:
        if run_id is None:
            row = con.execute("SELECT max(run_id) FROM runs WHERE status = 'succeeded'").fetchall()[0]
            run_id = row[0] if row else None
        if run_id is None:
            return pl.DataFrame()
        return query_frame(con, 
            """SELECT h.rank, h.tier, h.score, h.change, l.status, h.lead_id, h.subject_name, h.id_masked,
                      l.case_no, h.reasons
               FROM lead_history h JOIN leads l USING (lead_id) WHERE h.run_id = ? ORDER BY h.rank""",
            [run_id])
    finally:
        con.close()
