"""`aidleads bench` on a small generated area: the figures a reader of the README relies on are all there."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app

STAGES = ["ingest", "normalise", "block", "compare", "cluster", "score", "export", "publish"]


def test_bench_prints_and_writes_the_stage_table_and_the_incremental_night(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--persons", "20000", "--seed", "3", "--repeat", "2", "--incremental",
                                      "--data", str(tmp_path / "data"), "--work", str(tmp_path / "work"),
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))

    assert [s["stage"] for s in report["stages"]] == STAGES
    assert all(s["seconds"] > 0 for s in report["stages"])
    assert report["records"] > 1000 and report["pairs_per_record"] > 0
    assert len(report["stage_seconds_all"]) == 2
    assert report["quality"]["f1"] > 0.95  # against the generator's truth

    night = report["incremental"]
    assert night["changed_file"].startswith("key_groups/")
    assert len(night["stage_seconds_all"]) == 2  # as many nights as full runs, each from the same state
    assert 0 < night["ratio_to_full"] < 1
    assert [s["stage"] for s in night["stages"]] == STAGES
    assert night["vs_full"]["records"] > 0
    assert night["vs_full"]["records_in_another_person"] <= night["vs_full"]["records"] // 100

    for figure in ("whole run", "candidate pairs per record", "incremental night", "against a full run"):
        assert figure in result.output
