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
    with run_lock(config.work_dir):
        return _run_stages(config, config_path, run_id, logger)


def _run_stages(config: Any, config_path: str, run_id: str | None, logger: Any) -> dict[str, Any]:
    """All stages write to a copy of the database; it replaces the live one only when every stage succeeded."""
    build = stages.prepare_build(config)
    db = str(build)
    run_id = stages.start_run(stages.with_database(config, build), config_path, run_id)
    try:
        started = time.monotonic()
        _progress(1, "ingest: reading new and changed files …")
        ingested = ingest_task(config_path, db, run_id)
        logger.info("ingest: %s", {s: c for s, c in ingested["files"].items()})
        _progress(2, "normalise: ID numbers, names, dates, amounts …")
        records = normalise_task(config_path, db, run_id)
        logger.info("normalise: person records per source %s", records)
        _progress(3, f"resolve people: {sum(records.values()):,} person records …")
        resolved = resolve_task(config_path, db, run_id)
        logger.info("resolve: %d links, %d persons", resolved.get("links", 0), resolved.get("persons", 0))
        _progress(4, f"score: {resolved.get('persons', 0):,} persons, {resolved.get('links', 0):,} links …")
        scored = score_task(config_path, db, run_id)
        logger.info("score: leads by tier %s", {t: scored.get(t, 0) for t in "ABC"})
        _progress(5, f"export: {sum(scored.get(t, 0) for t in 'ABC'):,} leads …")
        exported = export_task(config_path, db, run_id)
        logger.info("export: %d leads written", exported["rows"])
        stages.finish_run(stages.with_database(config, build), run_id, "succeeded")
        stages.publish_build(config, build, run_id)
        print(f"done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    except BaseException as exc:
        build.unlink(missing_ok=True)
        stages.record_failure(config, run_id, type(exc).__name__)
        raise
    return {"run_id": run_id, "ingest_errors": len(ingested["errors"]), "exports": exported["folder"]}
