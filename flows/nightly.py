"""The nightly lead-discovery flow: ingest → normalise → resolve people → score → export.

Tasks wire the plain stage functions of pipeline.run. They pass only the config path, the path of
the night's build copy of the database and the run id, return only counts, and never cache or persist results, so no personal data reaches Prefect's
database or result storage.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline import run as stages
from pipeline.export import xlsx_password
from pipeline.lock import run_lock
from schemas.config import load_config

__all__ = ["nightly_flow"]

_TASK_OPTIONS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False, "retries": 0}


def _config(config_file: str, database: str) -> Any:
    return stages.with_database(load_config(Path(config_file)), database)


def _progress(step: int, text: str) -> None:
    """A progress line for the person at the terminal (stderr; counts only, never names)."""
    print(f"[{step}/5] {text}", file=sys.stderr, flush=True)


@task(name="ingest", **_TASK_OPTIONS)
def ingest_task(config_file: str, database: str, run_id: str) -> dict[str, Any]:
    return stages.ingest_stage(_config(config_file, database), run_id)


@task(name="normalise", **_TASK_OPTIONS)
def normalise_task(config_file: str, database: str, run_id: str) -> dict[str, int]:
    return stages.normalise_stage(_config(config_file, database), run_id)


@task(name="resolve-people", **_TASK_OPTIONS)
def resolve_task(config_file: str, database: str, run_id: str) -> dict[str, int]:
    return stages.resolve_stage(_config(config_file, database), run_id)


@task(name="score", **_TASK_OPTIONS)
def score_task(config_file: str, database: str, run_id: str) -> dict[str, int]:
    return stages.score_stage(_config(config_file, database), run_id)


@task(name="export", **_TASK_OPTIONS)
def export_task(config_file: str, database: str, run_id: str) -> dict[str, Any]:
    return stages.export_stage(_config(config_file, database), run_id)


@flow(name="aidleads-nightly", persist_result=False, log_prints=False)
def nightly_flow(config_file: str, run_id: str | None = None) -> dict[str, Any]:
    """Run every stage once; returns counts only. Log lines carry counts, never names or IDs."""
    logger = get_run_logger()
    config_path = str(Path(config_file).resolve())
    config = load_config(Path(config_path))
    xlsx_password(config)  # a configured but missing export password stops the night before any work
    with run_lock(config.work_dir):
        return _run_stages(config, config_path, run_id, logger)


def _stages(config_path: str, db: str, run_id: str, logger: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The five stage tasks in order, with progress lines; returns what ingest and export reported."""
    _progress(1, "ingest: reading new and changed files …")
    ingested = ingest_task(config_path, db, run_id)
    logger.info("ingest: %s", {s: c for s, c in ingested["files"].items()})
    new_files = sum(c.get("loaded", 0) for c in ingested["files"].values())
    _progress(2, "normalise: ID numbers, names, dates, amounts …" if new_files else
              "normalise: no new or replaced file tonight …")
    records = normalise_task(config_path, db, run_id)
    logger.info("normalise: person records per source %s", records)
    _progress(3, f"resolve people: {sum(records.values()):,} person records …")
    resolved = resolve_task(config_path, db, run_id)
    if resolved.get("reused"):
        _progress(3, "no input changed since the last run: person records and links reused, leads re-scored")
    logger.info("resolve: %d links, %d persons%s", resolved.get("links", 0), resolved.get("persons", 0),
                " (reused: no input changed)" if resolved.get("reused") else "")
    _progress(4, f"score: {resolved.get('persons', 0):,} persons, {resolved.get('links', 0):,} links …")
    scored = score_task(config_path, db, run_id)
    logger.info("score: leads by tier %s", {t: scored.get(t, 0) for t in "ABC"})
    _progress(5, f"export: {sum(scored.get(t, 0) for t in 'ABC'):,} leads …")
    exported = export_task(config_path, db, run_id)
    logger.info("export: %d leads written", exported["rows"])
    return ingested, exported


def _run_stages(config: Any, config_path: str, run_id: str | None, logger: Any) -> dict[str, Any]:
    """All stages write to a copy of the database; it replaces the live one only when every stage succeeded."""
    build = stages.prepare_build(config)
    db = str(build)
    night = stages.with_database(config, build)
    run_id = run_id or stages.new_run_id()
    try:
        started = time.monotonic()
        with stages.night_database(night):  # one connection for all stages; the tasks get cursors of it
            stages.start_run(night, config_path, run_id)
            ingested, exported = _stages(config_path, db, run_id, logger)
            stages.finish_run(night, run_id, "succeeded")
        summary = _counts_for_ui(night, run_id, exported["rows"], logger)
        stages.publish_build(config, build, run_id)
        _publish_summary_artifacts(summary, logger)
        print(f"done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    except BaseException as exc:
        build.unlink(missing_ok=True)
        stages.record_failure(config, run_id, type(exc).__name__)
        raise
    return {"run_id": run_id, "ingest_errors": len(ingested["errors"]), "exports": exported["folder"]}


SUMMARY_ARTIFACT_KEY = "aidleads-run-summary"
SOURCES_ARTIFACT_KEY = "aidleads-source-counts"


def _counts_for_ui(config: Any, run_id: str, export_rows: int, logger: Any) -> dict[str, Any] | None:
    """The night's counts for the UI, read from the finished build; a failure here never fails the night."""
    from pipeline.ui_summary import ui_summary

    try:
        return ui_summary(config, run_id, export_rows)
    except Exception as exc:  # noqa: BLE001 — the artifact is a convenience; the leads are already built
        logger.warning("run summary not gathered for the UI (%s)", type(exc).__name__)
        return None


def _publish_summary_artifacts(summary: dict[str, Any] | None, logger: Any) -> None:
    """Counts-only markdown and table artifacts on the flow run; a failure is a warning, never a failed night."""
    if summary is None:
        return
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from pipeline.ui_summary import source_count_rows, summary_markdown

    try:
        create_markdown_artifact(markdown=summary_markdown(summary), key=SUMMARY_ARTIFACT_KEY,
                                 description=f"aidleads run {summary['run_id']}: counts only")
        create_table_artifact(table=source_count_rows(summary), key=SOURCES_ARTIFACT_KEY,
                              description=f"aidleads run {summary['run_id']}: rows per source (counts only)")
    except Exception as exc:  # noqa: BLE001
        logger.warning("run summary artifact not published (%s)", type(exc).__name__)
