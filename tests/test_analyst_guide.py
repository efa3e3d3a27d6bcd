"""The analyst views and docs/analyst_guide.md: every query in the guide runs on the bundled sample and
returns rows, every view column is documented in Chinese, and no view shows an ID number or a full phone."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pipeline import run as stages
from pipeline.cli import app
from pipeline.lifecycle import set_status
from pipeline.store import ensure_views, open_database
from schemas.config import load_config

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "analyst_guide.md"
VIEWS = {"leads_explained", "links_explained", "persons_with_records", "quarterly_figures", "run_history", "file_quality"}
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_DIGIT_RUN = re.compile(r"\d{11,17}[\dXx]?")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _guide_queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)


@pytest.fixture(scope="module")
def worked(bundled_demo, tmp_path_factory) -> Path:
    """A copy of the demo database after some prosecutors' work: two leads assigned 15 days ago (overdue),
    two aided with amounts, one found not eligible."""
    db = tmp_path_factory.mktemp("guide") / "aidleads.duckdb"
    shutil.copyfile(load_config(bundled_demo).database_path, db)
    con = open_database(db)
    try:
        top = [r[0] for r in con.execute("SELECT lead_id FROM leads ORDER BY score DESC, lead_id").fetchall()]
        past = dt.datetime.now() - dt.timedelta(days=15)
        set_status(con, top[0], "assigned", by="张检察官", at=past)
        set_status(con, top[1], "verifying", by="李检察官", at=past)
        set_status(con, top[2], "aided", by="王检察官", amount=30000, note="已发放")
        set_status(con, top[3], "aided", by="王检察官", amount=45000)
        set_status(con, top[4], "not_eligible", by="张检察官", note="已获足额赔偿")
    finally:
        con.close()
    return db


@pytest.fixture(scope="module")
def personal_numbers(worked) -> set[str]:
    """Every ID number (raw, valid or not) and full phone number the database holds."""
    con = duckdb.connect(str(worked), read_only=True)
    try:
        values: set[str] = set()
        for column in ("id18", "id_candidate", "id_raw", "phone"):
            values |= {str(v).strip().upper() for (v,) in con.execute(
                f"SELECT DISTINCT {column} FROM person_records WHERE {column} IS NOT NULL").fetchall()}
        values |= {v.upper() for (v,) in con.execute("SELECT DISTINCT id18 FROM persons WHERE id18 IS NOT NULL").fetchall()}
    finally:
        con.close()
    return {v for v in values if len(v) >= 11}


def _leaks(rows: list[tuple], personal_numbers: set[str]) -> list[str]:
    found = []
    for row in rows:
        for value in row:
            text = "" if value is None else str(value)
            if _ID_NUMBER.search(text) or any(run.upper() in personal_numbers for run in _DIGIT_RUN.findall(text)):
                found.append(text[:40])
    return found


def test_the_guide_has_at_least_ten_queries():
    assert len(_guide_queries()) >= 10


def test_every_guide_query_returns_rows_without_an_id_number(worked, personal_numbers):
    con = duckdb.connect(str(worked), read_only=True)
    try:
        for number, query in enumerate(_guide_queries(), start=1):
            rows = con.sql(query).fetchall()
            assert rows, f"guide query {number} returned no rows:\n{query}"
            assert not _leaks(rows, personal_numbers), f"guide query {number} shows an ID or phone number"
    finally:
        con.close()


def test_no_view_shows_an_id_number_or_full_phone(worked, personal_numbers):
    con = duckdb.connect(str(worked), read_only=True)
    try:
        for view in VIEWS:
            rows = con.sql(f"SELECT * FROM analyst.{view}").fetchall()
            assert rows, view
            assert not _leaks(rows, personal_numbers), f"analyst.{view} shows an ID or phone number"
    finally:
        con.close()


def test_every_view_and_view_column_has_a_chinese_comment(worked):
    con = duckdb.connect(str(worked), read_only=True)
    try:
        views = dict(con.execute("SELECT view_name, comment FROM duckdb_views() WHERE schema_name = 'analyst'").fetchall())
        assert set(views) == VIEWS
        assert all(comment and _CJK.search(comment) for comment in views.values())
        columns = con.execute(
            "SELECT table_name, column_name, comment FROM duckdb_columns() WHERE schema_name = 'analyst'").fetchall()
        undocumented = [f"{t}.{c}" for t, c, comment in columns if not (comment and _CJK.search(comment))]
        assert not undocumented
        assert len(columns) > 100
    finally:
        con.close()


def test_views_keep_working_after_a_run_rebuilds_their_tables(bundled_demo, worked, tmp_path):
    db = tmp_path / "again.duckdb"
    shutil.copyfile(worked, db)
    config = stages.with_database(load_config(bundled_demo), db)
    run_id = stages.start_run(config, None)
    for stage in (stages.normalise_stage, stages.resolve_stage):  # CREATE OR REPLACE TABLE person_records, persons, links …
        stage(config, run_id)
    con = duckdb.connect(str(db), read_only=True)
    try:
        for view in VIEWS:
            assert con.sql(f"SELECT count(*) FROM analyst.{view}").fetchall()[0][0] > 0, view
    finally:
        con.close()


def test_views_over_tables_no_run_has_made_yet_wait_for_them(tmp_path):
    con = open_database(tmp_path / "fresh.duckdb")
    try:
        assert set(ensure_views(con)) == {"analyst.quarterly_figures", "analyst.run_history"}
    finally:
        con.close()


def test_aidleads_sql_reads_the_views(bundled_demo, tmp_path):
    out = tmp_path / "runs.csv"
    result = CliRunner().invoke(app, ["sql", "-c", str(bundled_demo), "SELECT * FROM analyst.run_history", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "succeeded" in out.read_text(encoding="utf-8-sig")


def test_a_current_schema_only_tries_the_views_still_missing(tmp_path):
    """Every stage opens the database: views already there are left alone, the missing ones are retried."""
    con = open_database(tmp_path / "fresh.duckdb")
    try:
        assert ensure_views(con, only_missing=True) == []  # the two that can exist were made at opening
        con.execute("DROP VIEW analyst.run_history")
        assert ensure_views(con, only_missing=True) == ["analyst.run_history"]
    finally:
        con.close()
