"""A run killed (SIGKILL) at any stage leaves the last good database and exports readable; the next run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).parent.parent / "data_samples" / "county"
EXE = str(Path(sys.executable).with_name("aidleads"))


def _count_runs(db: Path) -> list[str]:
    out = subprocess.run([sys.executable, "-c", (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True);"
        "print(','.join(s for (s,) in c.execute('SELECT status FROM runs ORDER BY run_id').fetchall()))"), str(db)],
        capture_output=True, text=True, check=True)
    return [s for s in out.stdout.strip().split(",") if s]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kill")
    toml = root / "aidleads.toml"
    toml.write_text(f'[paths]\nwork_dir = "{(root / "work").as_posix()}"\n' + "".join(
        f'[sources.{s}]\npath = "{(SAMPLE / s).as_posix()}"\n'
        for s in ("victims", "disability", "subsistence", "enforcement", "key_groups")), encoding="utf-8")
    env = {**os.environ, "PREFECT_HOME": str(root / "prefect")}
    subprocess.run([EXE, "run", "-c", str(toml)], check=True, capture_output=True, env=env, timeout=600)
    return toml


@pytest.mark.parametrize("stage", [1, 2, 3, 4, 5])
def test_kill_at_each_stage_keeps_the_last_good_state(project, stage):
    work = project.parent / "work"
    db = work / "aidleads.duckdb"
    before = _count_runs(db)
    latest = (work / "exports" / "latest").resolve()
    env = {**os.environ, "PREFECT_HOME": str(project.parent / "prefect")}
    proc = subprocess.Popen([EXE, "run", "-c", str(project)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=env, start_new_session=True)
    try:
        for line in proc.stderr:
            if line.startswith(f"[{stage}/5]"):
                os.killpg(proc.pid, signal.SIGKILL)
                break
        else:
            pytest.fail(f"the run ended before stage {stage} started")
    finally:
        proc.wait(timeout=60)
    assert _count_runs(db) == before, "a killed run changed the live database"
    assert (work / "exports" / "latest").resolve() == latest and (latest / "leads.xlsx").exists()


def test_next_run_after_the_kills_completes(project):
    work = project.parent / "work"
    before = _count_runs(work / "aidleads.duckdb")
    env = {**os.environ, "PREFECT_HOME": str(project.parent / "prefect")}
    done = subprocess.run([EXE, "run", "-c", str(project)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-500:]
    assert _count_runs(work / "aidleads.duckdb") == [*before, "succeeded"]
    assert not (work / "aidleads.duckdb.building").exists() and not (work / ".aidleads.lock").exists()


def test_no_personal_data_reaches_prefect_or_the_run_output(project):
    """Prefect's home (its database, logs) and the run's terminal output hold counts, never identities."""
    import csv
    import re

    root = project.parent
    env = {**os.environ, "PREFECT_HOME": str(root / "prefect")}
    done = subprocess.run([EXE, "run", "-c", str(project)], capture_output=True, env=env, timeout=600)
    assert done.returncode == 0
    with (SAMPLE / "truth" / "records.csv").open(encoding="utf-8") as fh:
        present = {r["person_id"] for r in csv.DictReader(fh)}
    with (SAMPLE / "truth" / "persons.csv").open(encoding="utf-8") as fh:
        people = [r for r in csv.DictReader(fh) if r["person_id"] in present]
    ids = {p["id18"] for p in people}
    names = {p["name"] for p in people if len(p["name"]) >= 3}
    blobs = [done.stdout, done.stderr] + [p.read_bytes() for p in (root / "prefect").rglob("*") if p.is_file()]
    found_ids: set[str] = set()
    found_names: set[str] = set()
    for blob in blobs:
        text = blob.decode("utf-8", errors="ignore")
        found_ids |= set(re.findall(r"\d{17}[\dXx]", text)) & ids
        for run in re.findall(r"[\u4e00-\u9fff·]{3,}", text):
            found_names |= {n for n in names if n in run}
    assert not found_ids, f"{len(found_ids)} ID numbers found in Prefect's files or the run output"
    assert not found_names, f"{len(found_names)} names found in Prefect's files or the run output"
