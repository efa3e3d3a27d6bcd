"""Scoring reuses the stored leads of case files whose reach did not change (pipeline.score_cache).

The first night scores the county sample in full. Each test then brings one kind of change a night can bring
— a re-sent roll with rows gone and one changed (every row after a gone one moves), a victims file with rows
gone, a new subsistence household member, a lead marked aided, a later date, other settings — resolves it,
and scores it twice on the same database: with the cache, and every case file again. The lists must be equal
to the last column, and the cache must have reused the case files the change did not reach.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import shutil
from importlib import resources
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline import run as stages
from pipeline.lifecycle import set_status
from pipeline.score import load_score_inputs, score_leads
from pipeline.score_cache import CacheOutcome, scored_leads
from pipeline.store import open_database, query_frame
from schemas.config import config_from_dict

SOURCES = ("victims", "disability", "subsistence", "enforcement", "key_groups")
FIRST_DAY = dt.date(2026, 3, 2)


def _config(work: Path, data: Path, **scoring):
    return config_from_dict({"paths": {"work_dir": str(work)}, "scoring": scoring,
                             "sources": {s: {"path": str(data / s)} for s in SOURCES}}, base_dir=work)


@pytest.fixture(scope="module")
def first_night(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("score_cache")
    data, work = base / "data", base / "work"
    shutil.copytree(Path(str(resources.files("data_samples").joinpath("county"))), data,
                    ignore=shutil.ignore_patterns("truth"))
    config = _config(work, data)
    run_id = stages.start_run(config, None)
    stages.ingest_stage(config, run_id)
    stages.normalise_stage(config, run_id)
    stages.resolve_stage(config, run_id)
    stages.score_stage(config, run_id, today=FIRST_DAY)
    stages.finish_run(config, run_id, "succeeded")
    return data, work


@pytest.fixture()
def night(first_night, tmp_path) -> tuple[Path, Path]:
    data, work = first_night
    shutil.copytree(data, tmp_path / "data")
    shutil.copytree(work, tmp_path / "work")
    return tmp_path / "data", tmp_path / "work"


def _tonight(data: Path, work: Path, today: dt.date = FIRST_DAY, **scoring) -> tuple[CacheOutcome, pl.DataFrame]:
    """Resolve tonight's files, then score with the cache and without it (on the same database)."""
    config = _config(work, data, **scoring)
    run_id = stages.start_run(config, None)
    stages.ingest_stage(config, run_id)
    stages.normalise_stage(config, run_id)
    stages.resolve_stage(config, run_id)
    con = open_database(config.database_path)
    try:
        aided, key = stages.aided_before(con), stages._lead_key(config)
        everything = score_leads(*load_score_inputs(con), config.scoring, key, today=today, aided_before=aided)
        everything = everything.with_columns(pl.lit(None, pl.String).alias(c) for c in ("subject_id18", "subject_phone"))
        outcome = scored_leads(con, config.scoring, key, today, aided, run_id)
    finally:
        con.close()
    stages.finish_run(config, run_id, "succeeded")
    return outcome, everything


def _case_files(work: Path) -> int:
    con = open_database(work / "aidleads.duckdb", read_only=True)
    try:
        return con.execute("SELECT count(DISTINCT coalesce(case_no, 'None')) FROM victim_facts").fetchall()[0][0]
    finally:
        con.close()


def _resend(data: Path, source: str, drop_every: int, change: tuple[int, int, str] | None = None) -> None:
    """Re-send a roll under the same name with every `drop_every`-th row gone and perhaps one cell changed
    (row index among the kept rows, header = 0; column index; new text). CSV keeps its encoding."""
    path = next((data / source).iterdir())
    if path.suffix == ".xlsx":
        book = openpyxl.load_workbook(path)
        sheet = book.worksheets[0]
        for row in range(sheet.max_row, 1, -1):  # from the bottom, so the rows still to drop keep their numbers
            if (row - 2) % drop_every == drop_every - 1:
                sheet.delete_rows(row)
        if change is not None:
            sheet.cell(change[0] + 1, change[1] + 1).value = change[2]
        book.save(path)
        return
    raw = path.read_bytes()
    encoding = "utf-8-sig" if raw.startswith(codecs.BOM_UTF8) else "utf-8"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        encoding, text = "gb18030", raw.decode("gb18030")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    kept = rows[:1] + [row for i, row in enumerate(rows[1:]) if i % drop_every != drop_every - 1]
    if change is not None:
        kept[change[0]][change[1]] = change[2]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(kept)
    path.write_bytes(out.getvalue().encode(encoding))


def test_the_cache_keeps_no_id_number_or_phone_in_full(night):
    """README "At rest": raw ID numbers stay where the matching needs them; the stored leads hold masked ones."""
    con = open_database(night[1] / "aidleads.duckdb", read_only=True)
    try:
        columns = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() "
                                              "WHERE table_name = 'score_unit_leads'").fetchall()}
        ids = con.execute("SELECT id18 FROM persons WHERE id18 IS NOT NULL").fetchall()
        stored = " ".join(str(v) for row in con.execute("SELECT * FROM score_unit_leads").fetchall() for v in row)
    finally:
        con.close()
    assert "id_masked" in columns and not {"subject_id18", "subject_phone"} & columns
    assert ids and not any(i in stored for (i,) in ids)


def test_a_night_with_nothing_new_reuses_every_case_file(night):
    outcome, everything = _tonight(*night)
    assert_frame_equal(outcome.leads, everything)
    assert outcome.reason == "changed"
    assert outcome.units_scored == 0
    assert outcome.units_reused == _case_files(night[1])


@pytest.mark.parametrize(("source", "drop_every"), [("disability", 10), ("key_groups", 7), ("subsistence", 9),
                                                    ("enforcement", 8)])
def test_a_resent_roll_rescores_the_case_files_it_reaches_and_lists_what_scoring_all_would(night, source, drop_every):
    data, work = night
    _resend(data, source, drop_every, change=(3, 1, "张改名"))
    outcome, everything = _tonight(data, work)
    assert_frame_equal(outcome.leads, everything)
    assert outcome.reason == "changed"
    assert outcome.units_scored > 0 and outcome.units_reused > 0
    assert outcome.units_scored + outcome.units_reused == _case_files(work)


def test_victims_rows_gone_rescore_their_case_files(night):
    data, work = night
    _resend(data, "victims", 6)
    outcome, everything = _tonight(data, work)
    assert_frame_equal(outcome.leads, everything)
    assert outcome.units_scored > 0 and outcome.units_reused > 0


def test_a_lead_marked_aided_rescores_its_people_case_files(night):
    data, work = night
    con = open_database(work / "aidleads.duckdb")
    try:
        lead_id = con.execute("SELECT lead_id FROM leads ORDER BY score DESC, lead_id LIMIT 1").fetchall()[0][0]
        set_status(con, lead_id, "aided", by="test", amount=30000.0)
    finally:
        con.close()
    outcome, everything = _tonight(data, work)
    assert_frame_equal(outcome.leads, everything)
    assert 0 < outcome.units_scored < _case_files(work)


@pytest.mark.parametrize("days", [1, 45, 400, 1200])
def test_a_later_date_rescores_the_case_files_whose_ages_or_recent_window_moved(night, days):
    today = FIRST_DAY + dt.timedelta(days=days)
    con = open_database(night[1] / "aidleads.duckdb", read_only=True)
    try:
        expired = con.execute("SELECT count(*) FROM score_units WHERE valid_until <= ?", [today]).fetchall()[0][0]
    finally:
        con.close()
    outcome, everything = _tonight(*night, today=today)
    assert_frame_equal(outcome.leads, everything)
    assert outcome.units_scored == expired  # nothing else changed
    if days >= 45:
        assert expired > 0  # someone in the sample has a birthday within 45 days


def test_other_settings_score_every_case_file(night):
    outcome, everything = _tonight(*night, tier_a=65.0)
    assert_frame_equal(outcome.leads, everything)
    assert outcome.reason == "settings"
    assert outcome.units_reused == 0


def test_nights_in_a_row_keep_agreeing_with_scoring_all(night):
    """The cache written by a night with reuse is the one the next night reads."""
    data, work = night
    for i, (source, every) in enumerate([("disability", 5), ("key_groups", 4), ("victims", 9)]):
        _resend(data, source, every)
        outcome, everything = _tonight(data, work, today=FIRST_DAY + dt.timedelta(days=30 * i))
        assert_frame_equal(outcome.leads, everything)
        assert outcome.reason == "changed"


def test_the_stage_counts_the_case_files_it_scored_and_reused(night):
    data, work = night
    _resend(data, "disability", 10)
    config = _config(work, data)
    run_id = stages.start_run(config, None)
    for stage in (stages.ingest_stage, stages.normalise_stage, stages.resolve_stage):
        stage(config, run_id)
    stages.score_stage(config, run_id, today=FIRST_DAY)
    stages.finish_run(config, run_id, "succeeded")
    con = open_database(config.database_path, read_only=True)
    try:
        counts = query_frame(con, "SELECT metric, subject, value FROM run_counts WHERE run_id = ? AND stage = 'score' "
                                  "AND starts_with(metric, 'case_files')", [run_id])
    finally:
        con.close()
    got = {(m, s): v for m, s, v in counts.iter_rows()}
    assert got[("case_files_scored", "changed")] == 1
    assert got[("case_files", "scored")] > 0 and got[("case_files", "reused")] > 0
    assert got[("case_files", "scored")] + got[("case_files", "reused")] == _case_files(work)
