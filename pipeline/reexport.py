"""Export a past run's lead list again, on demand: masked by default, unmasked only with a stated reason.

Each export goes to a new folder under `<exports>/reexports/` (the night's own folder is never
touched) and is recorded in the `exports` audit table like the nightly one.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipeline.errors import AidLeadsError
from pipeline.export import LEADS_OF_RUN, ExportedFiles, export_leads
from pipeline.store import query_frame
from schemas.config import AidLeadsConfig

__all__ = ["ReExport", "export_past_run", "export_audit", "REEXPORTS_FOLDER"]

REEXPORTS_FOLDER = "reexports"



@dataclass
class ReExport:
    run_id: str
    folder: Path
    files: ExportedFiles
    masked: bool


def _run_to_export(con: duckdb.DuckDBPyConnection, run_id: str | None) -> str:
    if run_id is None:
        latest = con.execute("SELECT max(run_id) FROM runs WHERE status = 'succeeded'").fetchall()[0][0]
        if latest is None:
            raise AidLeadsError("no succeeded run to export", hint="run `aidleads run` first")
        return str(latest)
    known = con.execute("SELECT count(*) FROM runs WHERE run_id = ? AND status = 'succeeded'", [run_id]).fetchall()[0][0]
    if not known:
        raise AidLeadsError(f"run {run_id} not found among succeeded runs",
                            hint="`aidleads status` lists recent runs; omit --run for the latest")
    return run_id


def _new_folder(exports_dir: Path, run_id: str, masked: bool) -> Path:
    """A fresh owner-only folder; never an existing one (so nothing earlier is overwritten)."""
    base = exports_dir / REEXPORTS_FOLDER
    base.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    name = f"{run_id}_{stamp}{'' if masked else '_unmasked'}"
    for n in range(1000):
        folder = base / (name if n == 0 else f"{name}_{n}")
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(folder, 0o700)
        return folder
    raise AidLeadsError(f"cannot create a new export folder under {base}")


def export_past_run(
    con: duckdb.DuckDBPyConnection,
    config: AidLeadsConfig,
    run_id: str | None = None,
    *,
    unmask_reason: str | None = None,
    password: str | None = None,
) -> ReExport:
    """Write a run's lead list (default: the latest succeeded run) to a new folder and audit it."""
    if unmask_reason is not None and not unmask_reason.strip():
        raise AidLeadsError("unmasking needs a reason", hint='give --reason "…" (it is kept in the exports audit)')
    from pipeline.run import run_summary

    run_id = _run_to_export(con, run_id)
    leads = query_frame(con, LEADS_OF_RUN, [run_id])
    if leads.height == 0:
        raise AidLeadsError(f"run {run_id} listed no leads; nothing to export")
    masked = unmask_reason is None
    summary = run_summary(config, run_id)
    folder = _new_folder(config.exports_dir, run_id, masked)
    files = export_leads(con, leads, folder, run_id, summary, unmask_reason=unmask_reason, password=password)
    return ReExport(run_id, folder, files, masked)


def export_audit(con: duckdb.DuckDBPyConnection, limit: int = 20) -> pl.DataFrame:
    """The most recent rows of the `exports` audit table, newest first."""
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'exports' AND schema_name = 'main'").fetchall()}
    if not have:
        return pl.DataFrame()
    encrypted = "encrypted" if "encrypted" in have else "NULL::BOOLEAN AS encrypted"
    return query_frame(con, f"""
        SELECT exported_at, os_user, run_id, kind, rows, masked, {encrypted}, reason, path
        FROM exports ORDER BY exported_at DESC, path LIMIT ?""", [limit])
