"""The aidleads command: version, leads, sql, and one-line errors with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import built_area, config_for
from pipeline import run as stages
from pipeline.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A database built by the plain stage functions on a small generated county; returns the config file."""
    return built_area(tmp_path_factory.mktemp("cli"), 2500, 3)


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("aidleads ")


def test_leads_shows_ranked_masked_leads(built):
    result = runner.invoke(app, ["leads", "-c", str(built), "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "线索" in result.output and "****" in result.output


def test_sql_prints_a_table_and_writes_files(built, tmp_path):
    result = runner.invoke(app, ["sql", "-c", str(built), "SELECT tier, count(*) AS n FROM leads GROUP BY tier ORDER BY tier"])
    assert result.exit_code == 0 and "tier" in result.output
    out = tmp_path / "q.parquet"
    result = runner.invoke(app, ["sql", "-c", str(built), "SELECT * FROM quarantine", "--out", str(out)])
    assert result.exit_code == 0 and out.exists()


def test_sql_is_read_only_and_errors_are_one_line(built):
    result = runner.invoke(app, ["sql", "-c", str(built), "DELETE FROM leads"])
    assert result.exit_code == 2 and "error" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["sql", "-c", str(built), "SELECT nope FROM leads"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) <= 3


def test_console_command_reports_a_missing_config_in_one_line(tmp_path):
    exe = Path(sys.executable).with_name("aidleads")
    proc = subprocess.run([str(exe), "run", "-c", str(tmp_path / "missing.toml")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "missing.toml" in proc.stderr and "Traceback" not in proc.stderr


def test_status_shows_runs_files_and_leads(built):
    result = runner.invoke(app, ["status", "-c", str(built)])
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "victims" in result.output and "open" in result.output


def test_demo_refuses_to_replace_a_folder_that_is_not_a_demo(tmp_path):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["demo", "--work", str(keep)])
    assert result.exit_code == 2 and "refusing" in result.output
    assert (keep / "notes.txt").read_text() == "keep me"
