"""`[schedule]` validation, serve's refusal without a server, and the counts-only run summary for the UI
(fast: no Prefect server; tests/test_serve.py runs the real one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import AidLeadsError, ConfigError
from schemas.config import config_from_dict

SOURCES = {"victims": {"path": "inbox/victims"}}


def _schedule(**values: str):
    return config_from_dict({"sources": SOURCES, "schedule": values}, base_dir=Path("."), origin="aidleads.toml")


def test_default_schedule_is_two_oclock_shanghai():
    schedule = config_from_dict({"sources": SOURCES}, base_dir=Path(".")).schedule
    assert (schedule.cron, schedule.timezone, schedule.deployment_name) == ("0 2 * * *", "Asia/Shanghai", "nightly")


@pytest.mark.parametrize("cron", ["30 1 * * *", "0 2 * * mon-fri", "0,30 */2 1-15/2 JAN-Jun 0-7", "@daily"])
def test_valid_cron_lines(cron):
    assert _schedule(cron=cron).schedule.cron == cron


@pytest.mark.parametrize(("cron", "message"), [
    ("0 2 * *", "has 4 field(s); a cron line has 5"),
    ("61 2 * * *", "minute field '61'"),
    ("0 24 * * *", "hour field '24'"),
    ("0 2 * * 5-1", "runs backwards"),
    ("*/0 * * * *", "a step must be at least 1"),
    ("0 2 L * *", "day of month field 'L'"),
    ("@nightly", "unknown alias"),
])
def test_bad_cron_lines_are_named_with_the_field(cron, message):
    with pytest.raises(ConfigError) as exc:
        _schedule(cron=cron)
    assert str(exc.value).startswith("aidleads.toml: schedule.cron:") and message in str(exc.value)


def test_bad_timezone_name_and_key_suggest_the_fix():
    with pytest.raises(ConfigError, match=r"schedule.timezone: unknown timezone 'Asia/Shangai' \(did you mean 'Asia/Shanghai'\?\)"):
        _schedule(timezone="Asia/Shangai")
    with pytest.raises(ConfigError, match="schedule.deployment_name: 'a/b' is not a usable deployment name"):
        _schedule(deployment_name="a/b")
    with pytest.raises(ConfigError, match=r"schedule.crn: unknown key \(did you mean 'cron'\?\)"):
        _schedule(crn="0 2 * * *")


def test_prefect_schedule_carries_cron_and_timezone():
    from flows.serve import nightly_schedule

    schedule = nightly_schedule(_schedule(cron="15 3 * * *", timezone="UTC"))
    assert (schedule.cron, schedule.timezone) == ("15 3 * * *", "UTC")


def test_serve_needs_a_reachable_server():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.serve import require_server

    with temporary_settings(updates={PREFECT_API_URL: None}):
        with pytest.raises(AidLeadsError, match="PREFECT_API_URL is not set.*prefect server start"):
            require_server()
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        with pytest.raises(AidLeadsError, match="no Prefect server answers at PREFECT_API_URL=http://127.0.0.1:9/api"):
            require_server(timeout=2)


def test_serve_command_without_a_server_is_one_line_and_starts_nothing(tmp_path):
    config = tmp_path / "aidleads.toml"
    config.write_text(f'[paths]\nwork_dir = "{(tmp_path / "work").as_posix()}"\n[sources.victims]\npath = "inbox"\n',
                      encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    done = subprocess.run([str(Path(sys.executable).with_name("aidleads")), "serve", "-c", str(config)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "prefect server start" in done.stderr
    assert not (tmp_path / "work").exists() and not (tmp_path / "prefect-home" / "prefect.db").exists()


SUMMARY = {
    "run_id": "R20261123T020000001", "generated_at": "2026-11-23 18:00 UTC",
    "sources": {"刑事被害人": {"rows": 248, "quarantined": 1, "records": 248, "linked_to_victims": 0},
                "终本案件": {"rows": 75, "quarantined": 0, "records": 61, "linked_to_victims": 34}},
    "links": {"id_exact": 346, "case_context": 38}, "persons": 1727, "leads": {"A": 26, "B": 26, "C": 24},
    "changes": {"new": 70, "changed": 4, "unchanged": 2}, "export_rows": 76,
    "this_run": {"刑事被害人": {"files_loaded": 1, "rows_loaded": 248}},
    "statuses": {"new": 70, "assigned": 1, "verifying": 0, "aided": 3, "not_eligible": 1, "referred": 0, "closed": 1},
}


def test_summary_markdown_lays_out_every_count():
    from pipeline.ui_summary import source_count_rows, summary_markdown

    text = summary_markdown(SUMMARY)
    for line in ("# 运行汇总 run R20261123T020000001", "| 刑事被害人 | 1 | 248 | 248 | 1 | 248 | 0 |", "| 终本案件 | 0 | 0 | 75 | 0 | 61 | 34 |", "| id_exact | 346 |",
                 "| 人员 persons | 1727 |", "| A级 tier A leads | 26 |", "| 有变化 changed | 4 |",
                 "| 已办结 closed (aided, not eligible, referred, closed; all runs) | 5 |",
                 "| 导出行 exported rows (leads.xlsx) | 76 |", "| aided | 3 |"):
        assert line in text.splitlines(), line
    assert source_count_rows(SUMMARY)[1]["关联被害人 linked"] == 34


class _Logger:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str, *args: object) -> None:
        self.warnings.append(message % args)


def test_artifact_failure_is_a_warning_not_a_failed_night(monkeypatch):
    import prefect.artifacts

    from flows.nightly import _publish_summary_artifacts

    def refuse(**_: object) -> None:
        raise ConnectionError("server gone")

    monkeypatch.setattr(prefect.artifacts, "create_markdown_artifact", refuse)
    logger = _Logger()
    _publish_summary_artifacts(SUMMARY, logger)  # no exception
    assert logger.warnings == ["run summary artifact not published (ConnectionError)"]
