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


def _readable(path: Path) -> str:
    """A file's text as a grep would need it: workbook parts unzipped, Parquet decoded, anything else as bytes."""
    import zipfile

    data = path.read_bytes()
    if data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(path) as zf:
            return "".join(zf.read(n).decode("utf-8", errors="ignore") for n in zf.namelist())
    if data.startswith(b"PAR1"):
        import polars as pl

        return pl.read_parquet(path).write_csv()
    return data.decode("utf-8", errors="ignore")


def test_no_personal_data_outside_unmasked_exports(project):
    """After a run and an `aidleads export --unmask`, every artefact — the terminal output, Prefect's home (its
    database, logs), every export folder, the work folder — holds generated ID numbers only in the unmasked
    export's files, and names only in the lead lists (which say whom to visit), never in logs, Prefect, or the
    data-quality report. The aidleads database itself is left out: holding the records is its job."""
    import csv
    import re

    root = project.parent
    work = root / "work"
    env = {**os.environ, "PREFECT_HOME": str(root / "prefect")}
    done = subprocess.run([EXE, "run", "-c", str(project)], capture_output=True, env=env, timeout=600)
    assert done.returncode == 0
    exported = subprocess.run([EXE, "export", "-c", str(project), "--unmask", "--reason", "隐私测试：核查"],
                              capture_output=True, env=env, timeout=600)
    assert exported.returncode == 0, exported.stderr.decode(errors="ignore")[-500:]
    unmasked = sorted((work / "exports" / "reexports").glob("*_unmasked"))[-1]
    with (SAMPLE / "truth" / "records.csv").open(encoding="utf-8") as fh:
        present = {r["person_id"] for r in csv.DictReader(fh)}
    with (SAMPLE / "truth" / "persons.csv").open(encoding="utf-8") as fh:
        people = [r for r in csv.DictReader(fh) if r["person_id"] in present]
    ids = {p["id18"] for p in people}
    names = {p["name"] for p in people if len(p["name"]) >= 3}
    database = {work / n for n in ("aidleads.duckdb", "aidleads.duckdb.wal", "aidleads.duckdb.building",
                                   "aidleads.duckdb.building.wal")}
    artefacts = {"run output": (done.stdout + done.stderr).decode("utf-8", errors="ignore"),
                 "export output": (exported.stdout + exported.stderr).decode("utf-8", errors="ignore")}
    for folder in (root / "prefect", work):
        artefacts |= {str(p): _readable(p) for p in folder.rglob("*") if p.is_file() and p not in database}
    assert any(str(unmasked) in k for k in artefacts) and any("data_quality" in k for k in artefacts)
    ids_in: dict[str, int] = {}
    names_in: dict[str, int] = {}
    for label, text in artefacts.items():
        if n := len(set(re.findall(r"\d{17}[\dXx]", text)) & ids):
            ids_in[label] = n
        runs = re.findall(r"[\u4e00-\u9fff·]{3,}", text)
        if n := len({name for name in names for run in runs if name in run}):
            names_in[label] = n
    outside = {k: n for k, n in ids_in.items() if not k.startswith(str(unmasked))}
    assert not outside, f"ID numbers outside the unmasked export: {outside}"
    assert any(k.startswith(str(unmasked)) for k in ids_in), "the unmasked export shows no ID number: grep is blind"
    lead_lists = {k for k in names_in if Path(k).name.startswith("leads.") and "/exports/" in k}
    assert lead_lists, "grep finds no name in the lead lists: it is blind"
    assert not set(names_in) - lead_lists, f"names outside the lead lists: {sorted(set(names_in) - lead_lists)}"
