"""Analysts never block the night, and a failed run leaves the last good database and exports in place."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_id, write_csv


def _project(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    pid = make_id(birth="19700101", seq=11)
    write_csv(inbox / "victims/v.csv", [["案号", "被害人姓名", "身份证号", "伤情", "被告人"], ["C2", "郑丽", pid, "重伤二级", "赵五"]])
    write_csv(inbox / "enforcement/e.csv", [["执行案号", "申请执行人", "申请执行人身份证号", "被执行人", "未执行金额"],
                                             ["(2025)闽0425执2号", "郑丽", pid, "赵五", "190000"]])
    toml = tmp_path / "aidleads.toml"
    toml.write_text('[paths]\nwork_dir = "work"\n' + "".join(
        f'[sources.{s}]\npath = "inbox/{s}"\n' for s in ("victims", "disability", "subsistence", "enforcement", "key_groups")),
        encoding="utf-8")
    return toml


def _runs(db: Path) -> list[tuple[str, str]]:
    out = subprocess.run([sys.executable, "-c", (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True);"
        "print(';'.join(f'{r}={s}' for r, s in c.execute('SELECT run_id, status FROM runs ORDER BY run_id').fetchall()))"),
        str(db)], capture_output=True, text=True, check=True).stdout.strip()
    return [tuple(x.split("=")) for x in out.split(";") if x]


def test_run_succeeds_while_an_analyst_holds_the_database_open(tmp_path, prefect_harness):
    from flows.nightly import nightly_flow

    toml = _project(tmp_path)
    nightly_flow(config_file=str(toml))
    db = tmp_path / "work" / "aidleads.duckdb"
    reader = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True);"
        "n = c.execute('SELECT count(*) FROM runs').fetchall()[0][0]; print(n, flush=True); time.sleep(120)"),
        str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "1"  # the analyst's connection is open
        result = nightly_flow(config_file=str(toml))
        assert [s for _, s in _runs(db)] == ["succeeded", "succeeded"]
        assert (tmp_path / "work" / "exports" / "latest").resolve().name == result["run_id"]
    finally:
        reader.kill()
        reader.wait()
    assert not (tmp_path / "work" / "aidleads.duckdb.building").exists()


def test_failed_run_keeps_the_last_good_database_and_exports(tmp_path, prefect_harness):
    from flows.nightly import nightly_flow

    toml = _project(tmp_path)
    first = nightly_flow(config_file=str(toml))
    db = tmp_path / "work" / "aidleads.duckdb"
    # the next night cannot write its export folder: the export stage fails after everything else ran
    write_csv(tmp_path / "inbox/victims/v2.csv", [["案号", "被害人姓名"], ["C9", "王强"]])
    blocker = tmp_path / "work" / "exports"
    (tmp_path / "work" / "exports_saved").mkdir()
    blocker.rename(tmp_path / "work" / "exports_saved" / "exports")
    blocker.write_text("not a folder")
    with pytest.raises(Exception):
        nightly_flow(config_file=str(toml))
    runs = _runs(db)
    assert runs[0] == (first["run_id"], "succeeded") and runs[-1][1] == "failed" and len(runs) == 2
    assert not (tmp_path / "work" / "aidleads.duckdb.building").exists()
    rows = subprocess.run([sys.executable, "-c", (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True);"
        "print(c.execute('SELECT count(*) FROM raw_victims').fetchall()[0][0])"), str(db)],
        capture_output=True, text=True, check=True).stdout.strip()
    assert rows == "1"  # the failed night's new rows did not land in the live database
