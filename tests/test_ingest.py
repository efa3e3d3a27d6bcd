"""Ingest: header synonyms, encodings, workbooks, quarantine, rejected files, idempotence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import config_for, make_id, write_csv, write_xlsx
from pipeline.headers import find_header, map_header
from pipeline.ingest import ingest_sources
from pipeline.store import open_database
from schemas.sources import DISABILITY, SUBSISTENCE, VICTIMS


@pytest.mark.parametrize("header", ["身份证号", "身份证号码", "证件号码", "公民身份号码", " 身份证号（码） ", "身份证号码*"])
def test_id_header_synonyms_map_to_id_number(header):
    mapping = map_header(["姓名", header], DISABILITY, {})
    assert mapping.columns == {"name": 0, "id_number": 1}


def test_config_override_maps_an_unusual_header():
    mapping = map_header(["持证人", "持证人身份号"], DISABILITY, {"持证人": "name", "持证人身份号": "id_number"})
    assert mapping.columns == {"name": 0, "id_number": 1}


def test_subsistence_head_and_member_columns_are_told_apart():
    mapping = map_header(["户主姓名", "户主身份证号", "成员姓名", "成员身份证号码", "与户主关系"], SUBSISTENCE, {})
    assert mapping.columns == {"head_name": 0, "head_id_number": 1, "name": 2, "id_number": 3, "relation": 4}


def test_title_rows_above_the_header_are_skipped():
    rows = [(1, ["大田县残疾人持证名单（2026年10月）", None]), (2, [None, None]), (3, ["姓名", "身份证号码"]),
            (4, ["张三", make_id()])]
    mapping = find_header(rows, DISABILITY, {})
    assert mapping is not None and mapping.header_row == 3


def _db(cfg):
    return open_database(cfg.database_path)


def test_gbk_csv_loads_with_lineage(tmp_path):
    pid = make_id(seq=124)
    write_csv(tmp_path / "inbox/disability/残疾人.csv",
              [["姓名", "公民身份号码", "残疾类别", "残疾等级"], ["郑丽华", pid, "肢体", "二级"]], encoding="gbk")
    cfg = config_for(tmp_path, tmp_path / "inbox")
    con = _db(cfg)
    report = ingest_sources(con, cfg, "R1")
    assert [f.status for f in report.files] == ["loaded"]
    row = con.execute("SELECT name, id_number, row_number, source_file, file_sha256 FROM raw_disability").fetchone()
    assert row[:4] == ("郑丽华", pid, 2, "残疾人.csv") and len(row[4]) == 64
    assert con.execute("SELECT encoding FROM ingested_files").fetchone()[0] == "gb18030"


def test_xlsx_keeps_id_text_and_row_numbers(tmp_path):
    pid = make_id(birth="19750304", seq=35)
    write_xlsx(tmp_path / "inbox/victims/被害人.xlsx", [
        ["2026年被害人信息表"], [],
        ["案号", "被害人姓名", "身份证号码", "伤情", "案发日期"],
        ["大检刑诉〔2025〕12号", "王 芳", pid, "重伤二级", "2025-03-01"],
        [None, None, None, None, None],
        ["大检刑诉〔2025〕13号", "李娜", 3.50425198e17, "轻伤一级", 45000],
    ])
    cfg = config_for(tmp_path, tmp_path / "inbox")
    con = _db(cfg)
    ingest_sources(con, cfg, "R1")
    rows = con.execute("SELECT row_number, name, id_number, incident_date FROM raw_victims ORDER BY row_number").fetchall()
    assert rows[0] == (4, "王 芳", pid, "2025-03-01")
    assert rows[1][0] == 6 and rows[1][2].upper().startswith("3.50425198") and "E+17" in rows[1][2].upper()
    assert con.execute("SELECT header_row, rows_blank FROM ingested_files").fetchone() == (3, 1)


def test_rows_missing_a_required_value_go_to_quarantine_and_the_rest_load(tmp_path):
    write_csv(tmp_path / "inbox/victims/v.csv", [
        ["案号", "姓名", "身份证号", "案发日期", "判决赔偿金额"],
        ["A1", "张伟", make_id(seq=11), "2024-05-06", "12000"],
        ["A2", "", make_id(seq=13), "2024-05-06", ""],
        ["", "王强", make_id(seq=15), "2024-05-06", ""],
        ["A4", "赵敏", "", "2024/5/6", "1.2万"],
    ])
    cfg = config_for(tmp_path, tmp_path / "inbox")
    con = _db(cfg)
    report = ingest_sources(con, cfg, "R1")
    assert report.files[0].rows_loaded == 2 and report.files[0].rows_quarantined == 2
    bad = con.execute("SELECT row_number, field, reason, raw_row FROM quarantine ORDER BY row_number").fetchall()
    assert [(r[0], r[1]) for r in bad] == [(3, "name"), (4, "case_no")]
    assert "被害人姓名" in bad[0][2] and "案号" in bad[1][2]
    assert json.loads(bad[1][3])["姓名"] == "王强"


def test_unreadable_optional_values_keep_the_row_and_are_reported(tmp_path):
    write_csv(tmp_path / "inbox/victims/v.csv", [
        ["案号", "姓名", "案发日期", "判决赔偿金额"],
        ["A3", "李娜", "2024-02-30", "见判决书"],
    ])
    cfg = config_for(tmp_path, tmp_path / "inbox")
    con = _db(cfg)
    report = ingest_sources(con, cfg, "R1")
    assert report.files[0].rows_loaded == 1 and report.files[0].rows_quarantined == 0
    issues = con.execute("SELECT row_number, field, reason, raw_value FROM field_issues ORDER BY field").fetchall()
    assert [(r[0], r[1], r[3]) for r in issues] == [(2, "compensation_ordered", "见判决书"), (2, "incident_date", "2024-02-30")]
    assert "判决赔偿金额" in issues[0][2] and "案发日期" in issues[1][2]


def test_missing_required_column_rejects_only_that_file(tmp_path):
    write_csv(tmp_path / "inbox/disability/no_name.csv", [["身份证号", "残疾类别"], [make_id(), "肢体"]])
    write_csv(tmp_path / "inbox/disability/good.csv", [["姓名", "身份证号"], ["陈静", make_id(seq=40)]])
    cfg = config_for(tmp_path, tmp_path / "inbox")
    con = _db(cfg)
    report = ingest_sources(con, cfg, "R1")
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["good.csv"].status == "loaded" and by_name["good.csv"].rows_loaded == 1
    assert by_name["no_name.csv"].status == "rejected"
    assert "no_name.csv" in by_name["no_name.csv"].error and "姓名" in by_name["no_name.csv"].error


def test_same_file_twice_adds_nothing_and_a_new_version_supersedes(tmp_path):
    path = write_csv(tmp_path / "inbox/key_groups/k.csv", [["姓名", "身份证号", "人员类别"], ["刘洋", make_id(seq=51), "退役军人"]])
    cfg = config_for(tmp_path, tmp_path / "inbox")
    con = _db(cfg)
    ingest_sources(con, cfg, "R1")
    second = ingest_sources(con, cfg, "R2")
    assert [f.status for f in second.files] == ["skipped"]
    assert con.execute("SELECT count(*) FROM raw_key_groups").fetchone()[0] == 1
    write_csv(path, [["姓名", "身份证号", "人员类别"], ["刘洋", make_id(seq=51), "退役军人"], ["孙丽", make_id(seq=52), "妇联移送线索"]])
    ingest_sources(con, cfg, "R3")
    statuses = con.execute("SELECT status FROM ingested_files ORDER BY file_id").fetchall()
    assert statuses == [("superseded",), ("loaded",)]
    active = con.execute("""SELECT count(*) FROM raw_key_groups JOIN ingested_files USING (file_id)
                            WHERE status = 'loaded'""").fetchone()[0]
    assert active == 2


def test_file_named_xlsx_that_is_csv_and_binary_garbage(tmp_path):
    write_csv(tmp_path / "inbox/key_groups/really_csv.xlsx", [["姓名", "身份证号", "人员类别"], ["何静", make_id(seq=60), "困境儿童"]])
    (tmp_path / "inbox/key_groups/garbage.csv").write_bytes(bytes(range(256)) * 10)
    cfg = config_for(tmp_path, tmp_path / "inbox")
    con = _db(cfg)
    report = ingest_sources(con, cfg, "R1")
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["really_csv.xlsx"].rows_loaded == 1
    assert by_name["garbage.csv"].status == "rejected" and "garbage.csv" in by_name["garbage.csv"].error


def test_legacy_xls_with_a_title_row_loads(tmp_path):
    xlwt = pytest.importorskip("xlwt")
    pid = make_id(seq=77)
    path = tmp_path / "inbox/key_groups/roll.xls"
    path.parent.mkdir(parents=True)
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("名单")
    for r, row in enumerate([["退役军人名单"], ["姓名", "公民身份号码", "人员类别"], ["许志强", pid, "退役军人"]]):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.save(str(path))
    cfg = config_for(tmp_path, tmp_path / "inbox")
    con = _db(cfg)
    report = ingest_sources(con, cfg, "R1")
    assert report.files[0].rows_loaded == 1
    assert con.execute("SELECT name, id_number, row_number, sheet FROM raw_key_groups").fetchall() == [("许志强", pid, 3, "名单")]


_KEY_GROUP_HEADER = ["姓名", "身份证号", "人员类别"]


def _active_key_group_rows(con) -> int:
    return con.execute("""SELECT count(*) FROM raw_key_groups JOIN ingested_files USING (file_id)
                          WHERE status = 'loaded'""").fetchall()[0][0]


def test_a_moved_inbox_lets_a_changed_roll_supersede_the_version_loaded_from_the_old_folder(tmp_path):
    """A data officer moves or re-mounts the inbox, and the next roll of the same name must replace the old
    one — not come in beside it, which would put every row of last month's roll in force twice."""
    rows = [_KEY_GROUP_HEADER, ["刘洋", make_id(seq=51), "退役军人"], ["孙丽", make_id(seq=52), "妇联移送线索"]]
    write_csv(tmp_path / "old/key_groups/county_a/k.csv", rows)
    write_csv(tmp_path / "old/key_groups/other.csv", [_KEY_GROUP_HEADER, ["何静", make_id(seq=60), "困境儿童"]])
    con = _db(config_for(tmp_path, tmp_path / "old"))
    ingest_sources(con, config_for(tmp_path, tmp_path / "old"), "R1")
    (tmp_path / "old").rename(tmp_path / "new")
    write_csv(tmp_path / "new/key_groups/county_a/k.csv", rows + [["王芳", make_id(seq=53), "退役军人"]])
    report = ingest_sources(con, config_for(tmp_path, tmp_path / "new"), "R2")
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["k.csv"].status == "loaded" and by_name["k.csv"].superseded == 1
    assert by_name["other.csv"].status == "skipped"  # the same content: loaded once, from wherever
    statuses = con.execute("SELECT path, status FROM ingested_files ORDER BY file_id").fetchall()
    assert [(Path(p).relative_to(tmp_path).as_posix(), s) for p, s in statuses] == [
        ("old/key_groups/county_a/k.csv", "superseded"), ("old/key_groups/other.csv", "loaded"),
        ("new/key_groups/county_a/k.csv", "loaded")]
    assert _active_key_group_rows(con) == 3 + 1


def test_a_same_named_roll_of_another_subfolder_or_still_on_disk_is_another_file(tmp_path):
    """Two counties send k.csv: a change to one never takes the other out of force, even once the other's
    file was cleared from the inbox after loading."""
    write_csv(tmp_path / "inbox/key_groups/county_a/k.csv", [_KEY_GROUP_HEADER, ["刘洋", make_id(seq=51), "退役军人"]])
    b = write_csv(tmp_path / "inbox/key_groups/county_b/k.csv", [_KEY_GROUP_HEADER, ["孙丽", make_id(seq=52), "退役军人"]])
    cfg = config_for(tmp_path, tmp_path / "inbox")
    con = _db(cfg)
    ingest_sources(con, cfg, "R1")
    (tmp_path / "inbox/key_groups/county_a/k.csv").unlink()
    write_csv(b, [_KEY_GROUP_HEADER, ["孙丽", make_id(seq=52), "退役军人"], ["王芳", make_id(seq=53), "退役军人"]])
    report = ingest_sources(con, cfg, "R2")
    assert [f.superseded for f in report.files] == [1]  # county_b's own earlier version only
    assert _active_key_group_rows(con) == 1 + 2
