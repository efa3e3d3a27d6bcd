"""Data-quality report: per-file counts that match the database, masked identities, both formats written."""

from __future__ import annotations

import openpyxl

from conftest import config_for, make_id, write_csv
from pipeline import run as stages
from pipeline.quality import write_quality_report
from pipeline.store import open_database


def test_quality_report_counts_and_masks(tmp_path):
    good, typo = make_id(seq=21), make_id(seq=23)
    typo = typo[:-1] + ("0" if typo[-1] != "0" else "1")
    write_csv(tmp_path / "inbox/key_groups/k.csv", [
        ["姓名", "身份证号", "人员类别", "认定日期", "联系电话"],
        ["许志强", good, "退役军人", "2024-01-01", "13912345678"],
        ["许志强", good, "退役军人", "2024-01-01", "13912345678"],      # the same row twice
        ["", make_id(seq=25), "困境儿童", "2024-01-01", "13812345678"],  # no name: quarantined
        ["林静", typo, "妇联移送线索", "去年", ""],                        # bad check character, unreadable date
        ["陈华", "", "防止返贫监测对象", "", ""],                           # no ID
    ])
    config = config_for(tmp_path, tmp_path / "inbox")
    run_id = stages.start_run(config, None)
    for stage in (stages.ingest_stage, stages.normalise_stage, stages.resolve_stage):
        stage(config, run_id)
    con = open_database(config.database_path)
    paths = write_quality_report(con, tmp_path / "out")
    con.close()
    wb = openpyxl.load_workbook(paths["xlsx"])
    files = list(wb["文件概况"].iter_rows(values_only=True))
    row = dict(zip(files[0], files[1]))
    assert (row["数据行"], row["入库行"], row["隔离行"], row["字段问题"], row["重复行"]) == (5, 4, 1, 1, 1)
    assert (row["身份证有效"], row["身份证错误"], row["身份证缺失"]) == (2, 1, 1)
    quarantined = list(wb["隔离行"].iter_rows(values_only=True))
    assert len(quarantined) == 2 and quarantined[1][2] == 4 and "缺少必填字段" in quarantined[1][4]
    text = paths["html"].read_text(encoding="utf-8") + str(quarantined)
    assert make_id(seq=25) not in text and "13812345678" not in text and "138****5678" in text
    issues = list(wb["字段问题"].iter_rows(values_only=True))
    assert issues[1][2] == 5 and issues[1][3] == "list_date"


def test_a_failing_per_file_query_fails_the_report_and_writes_nothing(tmp_path, monkeypatch):
    import duckdb
    import pytest

    from pipeline import quality

    config = config_for(tmp_path, tmp_path / "inbox")
    stages.start_run(config, None)
    con = open_database(config.database_path)
    monkeypatch.setattr(quality, "_FILES", "SELECT * FROM no_such_table")  # the query run on the second thread
    with pytest.raises(duckdb.Error, match="no_such_table"):
        write_quality_report(con, tmp_path / "out")
    con.close()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
