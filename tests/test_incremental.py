"""Incremental nights: unchanged files are not re-read, a night with no new file reuses the
normalised records and the links, and a night with one replaced file compares only the pairs it
touches — and still ends with exactly the links, persons and leads of a full run on the same files."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import polars as pl

from pipeline import run as stages
from pipeline.normalise import FACT_TABLES
from pipeline.store import open_database, query_frame
from schemas.config import load_config

SOURCES = ("victims", "disability", "subsistence", "enforcement", "key_groups")


def _config(base: Path, data: Path):
    toml = base / "aidleads.toml"
    base.mkdir(parents=True, exist_ok=True)
    lines = [f'[paths]\nwork_dir = "{(base / "work").as_posix()}"\n']
    lines += [f'[sources.{s}]\npath = "{(data / s).as_posix()}"\n' for s in SOURCES]
    toml.write_text("\n".join(lines), encoding="utf-8")
    return load_config(toml)


def _night(config) -> tuple[str, dict]:
    run_id = stages.start_run(config, None)
    out = {"ingest": stages.ingest_stage(config, run_id), "normalise": stages.normalise_stage(config, run_id),
           "resolve": stages.resolve_stage(config, run_id), "score": stages.score_stage(config, run_id)}
    stages.finish_run(config, run_id, "succeeded")
    return run_id, out


def _state(config) -> dict[str, pl.DataFrame]:
    con = open_database(config.database_path, read_only=True)
    try:
        return {
            "links": query_frame(con, "SELECT * FROM links ORDER BY record_id_l, record_id_r"),
            "members": query_frame(con, "SELECT r.record_key, m.person_id FROM person_members m "
                                        "JOIN person_records r USING (record_id) ORDER BY r.record_key"),
            "records": query_frame(con, "SELECT * EXCLUDE (file_id) FROM person_records ORDER BY record_id"),
            **{t: query_frame(con, f"SELECT * EXCLUDE (file_id) FROM {t} ORDER BY rowid")
               if t == "enforcement_facts" else query_frame(con, f"SELECT * FROM {t} ORDER BY rowid") for t in FACT_TABLES},
            # the latest night's list (lead ids are keyed per work folder, so compare what identifies a lead)
            "leads": query_frame(con, """SELECT l.case_no, l.subject_role, h.subject_name, h.score, h.tier, h.reasons
                                         FROM lead_history h JOIN leads l USING (lead_id)
                                         WHERE h.run_id = (SELECT max(run_id) FROM runs WHERE status = 'succeeded')
                                         ORDER BY l.case_no, h.subject_name"""),
        }
    finally:
        con.close()


def _kept_sources(config, run_id: str) -> set[str]:
    con = open_database(config.database_path, read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT subject FROM run_counts WHERE run_id = ? AND stage = 'normalise' "
                                          "AND metric = 'source_kept'", [run_id]).fetchall()}
    finally:
        con.close()


def _replace_one_file(data: Path) -> Path:
    """The disability roll re-sent with every tenth row gone and one new holder (same file name)."""
    path = next((data / "disability").iterdir())
    lines = path.read_bytes().splitlines(keepends=True)
    kept = lines[:1] + [line for i, line in enumerate(lines[1:]) if i % 10 != 3]
    path.write_bytes(b"".join(kept))
    return path


def test_one_replaced_file_compares_only_what_it_touches_and_links_as_a_full_run(tmp_path):
    sample = Path(str(resources.files("data_samples").joinpath("county")))
    data = tmp_path / "data"
    shutil.copytree(sample, data)
    nightly = _config(tmp_path / "nightly", data)
    _, first = _night(nightly)
    assert first["resolve"]["pairs_reused"] == 0

    quiet_id, quiet = _night(nightly)
    assert all(c["loaded"] == 0 for c in quiet["ingest"]["files"].values()), "unchanged files are not re-read"
    assert stages.stage_reused(nightly, quiet_id, "normalise") and stages.stage_reused(nightly, quiet_id, "resolve")
    assert quiet["resolve"].get("reused") == 1

    _replace_one_file(data)
    changed_id, changed = _night(nightly)
    assert changed["ingest"]["files"]["disability"]["loaded"] == 1
    assert stages.stage_reused(nightly, changed_id, "resolve") is None
    assert _kept_sources(nightly, changed_id) == set(SOURCES) - {"disability"}, "only the replaced roll is rebuilt"
    reused, compared = changed["resolve"]["pairs_reused"], changed["resolve"]["pairs_compared"]
    assert reused > 0 and compared > 0 and compared < reused, (reused, compared)

    full = _config(tmp_path / "full", data)  # a first night on the same files, nothing to reuse
    _, fresh = _night(full)
    assert fresh["resolve"]["pairs_reused"] == 0
    assert fresh["resolve"]["candidate_pairs"] == reused + compared
    incremental, reference = _state(nightly), _state(full)
    # the kept sources' records, renumbered, are exactly those a full build makes (file ids aside: the
    # replaced roll got a new one)
    assert incremental["records"].equals(reference["records"])
    for table in FACT_TABLES:
        assert incremental[table].equals(reference[table]), table
    assert incremental["links"].equals(reference["links"])
    assert incremental["members"].equals(reference["members"])
    # no person is duplicated by the replaced file: its old rows are gone, its new rows joined their people
    con = open_database(nightly.database_path, read_only=True)
    try:
        superseded = con.execute("SELECT count(*) FROM ingested_files WHERE status = 'superseded'").fetchall()[0][0]
        persons = con.execute("SELECT count(*) FROM persons").fetchall()[0][0]
    finally:
        con.close()
    assert superseded == 1
    assert persons == reference["members"]["person_id"].n_unique()
    assert incremental["leads"].height > 50
    assert incremental["leads"].equals(reference["leads"])
