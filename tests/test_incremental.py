"""Incremental nights: unchanged files are not re-read, a night with no new file reuses the
normalised records and the links, and a night with one replaced file compares only the pairs it
touches — and still ends with the links (their weights aside), persons and leads of a full run on the same
files. A re-sent roll keeps the record key and id of every row it did not change."""

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


def _config(base: Path, data: Path, incremental_resolution: bool = False):
    toml = base / "aidleads.toml"
    base.mkdir(parents=True, exist_ok=True)
    lines = [f'[paths]\nwork_dir = "{(base / "work").as_posix()}"\n']
    # most nights here check the compare cache of a full resolution; one the incremental resolution
    lines += [f"[linking]\nincremental = {str(incremental_resolution).lower()}\n"]
    lines += [f'[sources.{s}]\npath = "{(data / s).as_posix()}"\n' for s in SOURCES]
    toml.write_text("\n".join(lines), encoding="utf-8")
    return load_config(toml)


def _night(config) -> tuple[str, dict]:
    run_id = stages.start_run(config, None)
    out = {"ingest": stages.ingest_stage(config, run_id), "normalise": stages.normalise_stage(config, run_id),
           "resolve": stages.resolve_stage(config, run_id), "score": stages.score_stage(config, run_id)}
    stages.finish_run(config, run_id, "succeeded")
    return run_id, out


def _by_key(con, table: str, order: str) -> pl.DataFrame:
    """A table with its record ids replaced by the records' keys (ids differ between a delta and a full build)."""
    keys = "SELECT record_id, record_key FROM person_records"
    if table == "links":
        return query_frame(con, f"""SELECT least(kl.record_key, kr.record_key) AS key_a,
                                           greatest(kl.record_key, kr.record_key) AS key_b,
                                           l.* EXCLUDE (record_id_l, record_id_r)
                                    FROM links l JOIN ({keys}) kl ON kl.record_id = l.record_id_l
                                    JOIN ({keys}) kr ON kr.record_id = l.record_id_r
                                    ORDER BY key_a, key_b, method, evidence_zh""")
    if table == "person_records":  # a replaced roll's file id is new
        return query_frame(con, f"SELECT * EXCLUDE (record_id, file_id) FROM person_records ORDER BY {order}")
    lineage = ", file_id" if table == "enforcement_facts" else ""
    return query_frame(con, f"""SELECT k.record_key, t.* EXCLUDE (record_id{lineage})
                                FROM {table} t LEFT JOIN ({keys}) k USING (record_id) ORDER BY {order}""")


def _state(config) -> dict[str, pl.DataFrame]:
    con = open_database(config.database_path, read_only=True)
    try:
        return {
            "links": _by_key(con, "links", ""),
            "members": query_frame(con, "SELECT r.record_key, m.person_id FROM person_members m "
                                        "JOIN person_records r USING (record_id) ORDER BY r.record_key"),
            "records": _by_key(con, "person_records", "record_key"),
            # a fact table's rows in the order they were built, which both builds share
            **{t: _by_key(con, t, "t.rowid") for t in FACT_TABLES},
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
    """The disability roll re-sent (same file name) with every tenth row gone and one holder's phone changed."""
    path = next((data / "disability").iterdir())
    lines = path.read_bytes().splitlines(keepends=True)
    kept = lines[:1] + [line for i, line in enumerate(lines[1:]) if i % 10 != 3]
    kept[5] = _with_phone(kept[5], b"13900000000")
    path.write_bytes(b"".join(kept))
    return path


_PHONE = 7  # the disability sample's phone column


def _with_phone(line: bytes, phone: bytes) -> bytes:
    cells = line.split(b",")
    cells[_PHONE] = phone
    return b",".join(cells)


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
    # by record key, the records and facts are exactly those a full build makes (record and file ids aside:
    # the kept rows keep their ids, and the replaced roll got a new file id)
    assert incremental["records"].equals(reference["records"])
    for table in FACT_TABLES:
        assert incremental[table].equals(reference[table]), table
    # the same links with the same weights: the model's random pairs are drawn in record-key order, so the ids
    # the kept rows kept do not change the sample
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


def test_an_incremental_night_resolves_the_change_alone_and_ends_as_a_full_run(tmp_path):
    """The nightly default: the re-sent roll's dropped and changed rows are resolved against the stored
    people; everyone else keeps their person. Same links, people and lead list as a full run."""
    sample = Path(str(resources.files("data_samples").joinpath("county")))
    data = tmp_path / "data"
    shutil.copytree(sample, data)
    nightly = _config(tmp_path / "nightly", data, incremental_resolution=True)
    _night(nightly)
    _replace_one_file(data)
    changed_id, changed = _night(nightly)
    assert changed["resolve"].get("incremental") == 1
    assert changed["resolve"]["records_removed"] > 10 and changed["resolve"]["records_added"] == 1
    assert changed["resolve"]["people_rebuilt"] < changed["resolve"]["records"] / 10

    full = _config(tmp_path / "full", data, incremental_resolution=True)  # a first night resolves in full
    _night(full)
    incremental, reference = _state(nightly), _state(full)
    # the weights are the last full resolution's model's, a little off tonight's: the decisions are the same
    decided = [c for c in reference["links"].columns if not c.endswith(("_weight", "match_probability"))]
    assert incremental["links"].height > 300
    assert incremental["links"].select(decided).equals(reference["links"].select(decided))
    assert incremental["members"].equals(reference["members"])
    assert incremental["leads"].height > 50
    assert incremental["leads"].equals(reference["leads"])


# Record keys name a row's content: a re-sent roll keeps the keys and record ids of the rows it did not change.

def _normalise_night(config) -> str:
    run_id = stages.start_run(config, None)
    stages.ingest_stage(config, run_id)
    stages.normalise_stage(config, run_id)
    stages.finish_run(config, run_id, "succeeded")
    return run_id


def _read(config, sql: str, params: list | None = None) -> pl.DataFrame:
    con = open_database(config.database_path, read_only=True)
    try:
        return query_frame(con, sql, params)
    finally:
        con.close()


def _disability_rows(data: Path) -> tuple[Path, list[bytes]]:
    path = next((data / "disability").iterdir())
    lines = path.read_bytes().splitlines(keepends=True)
    return path, [line if line.endswith(b"\n") else line + b"\r\n" for line in lines]  # rows can move


def _records_by_line(config, lines: list[bytes]) -> dict[bytes, tuple[str, int]]:
    """(record_key, record_id) of each disability row, by the row's text (row r of the file is lines[r - 1])."""
    rows = _read(config, "SELECT row_number, record_key, record_id FROM person_records WHERE source = 'disability'")
    return {lines[r - 1]: (key, rid) for r, key, rid in rows.iter_rows()}


def _changes(config) -> pl.DataFrame:
    return _read(config, "SELECT * FROM record_changes ORDER BY record_id")


def _counts(config, run_id: str) -> dict[tuple[str, str], int]:
    rows = _read(config, "SELECT metric, subject, value FROM run_counts WHERE run_id = ? AND stage = 'normalise'", [run_id])
    return {(m, s): v for m, s, v in rows.iter_rows()}


def _sample(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(Path(str(resources.files("data_samples").joinpath("county"))), data)
    return data


def test_a_resent_roll_reordered_with_rows_dropped_keeps_the_keys_and_ids_of_the_rows_it_kept(tmp_path):
    data = _sample(tmp_path)
    path, lines = _disability_rows(data)
    lines = list(dict.fromkeys(lines))  # distinct rows (identical ones have their own test), so a row names its record
    path.write_bytes(b"".join(lines))
    config = _config(tmp_path / "nightly", data)
    first_run = _normalise_night(config)
    assert _counts(config, first_run)[("full_build", "all")] == 1
    assert _changes(config).height == 0, "a full build lists no changes"
    before = _records_by_line(config, lines)
    others = _read(config, "SELECT * FROM person_records WHERE source <> 'disability' ORDER BY record_id")

    body = lines[1:]
    dropped = [line for i, line in enumerate(body) if i % 10 == 3]
    kept = [line for i, line in enumerate(body) if i % 10 != 3][::-1]  # the rest, in reverse order
    path.write_bytes(b"".join([lines[0], *kept]))
    run_id = _normalise_night(config)

    # found by tonight's row numbers: the kept rows carry tonight's lineage, and their stored keys and ids
    after = _records_by_line(config, [lines[0], *kept])
    assert after == {line: before[line] for line in kept if line in before}, "kept rows keep their keys and ids"
    rows = _read(config, "SELECT file_id FROM person_records WHERE source = 'disability'")
    assert rows["file_id"].n_unique() == 1 and rows["file_id"][0] == _read(
        config, "SELECT max(file_id) AS f FROM ingested_files")["f"][0]
    changes = _changes(config)
    assert set(changes["change"]) == {"removed"}, "nothing was added"
    assert sorted(changes.select("record_key", "record_id").iter_rows()) == sorted(
        before[line] for line in dropped if line in before)
    assert set(changes["source"]) == {"disability"}
    gone = _read(config, "SELECT count(*) AS n FROM person_records WHERE list_contains(?, record_key)",
                 [[before[line][0] for line in dropped if line in before]])
    assert gone["n"][0] == 0
    assert _read(config, "SELECT * FROM person_records WHERE source <> 'disability' ORDER BY record_id").equals(others)
    counts = _counts(config, run_id)
    assert counts[("records_removed", "disability")] == changes.height > 50
    assert counts[("records_added", "disability")] == 0
    assert counts[("records_kept", "disability")] == len(after) > 500
    assert counts[("records_kept", "victims")] == others.filter(pl.col("source") == "victims").height
    assert ("full_build", "all") not in counts

    full = _config(tmp_path / "full", data)  # a first night on the same files
    _normalise_night(full)
    for table in ("person_records", *FACT_TABLES):
        order = "record_key" if table == "person_records" else "t.rowid"
        incremental, reference = (_by_key_of(c, table, order) for c in (config, full))
        assert incremental.equals(reference), table


def _by_key_of(config, table: str, order: str) -> pl.DataFrame:
    con = open_database(config.database_path, read_only=True)
    try:
        return _by_key(con, table, order)
    finally:
        con.close()


def test_a_changed_cell_gives_its_row_a_new_key_and_the_others_keep_theirs(tmp_path):
    data = _sample(tmp_path)
    path, lines = _disability_rows(data)
    lines = list(dict.fromkeys(lines))
    path.write_bytes(b"".join(lines))
    config = _config(tmp_path / "nightly", data)
    _normalise_night(config)
    before = _records_by_line(config, lines)
    top = _read(config, "SELECT max(record_id) AS m FROM person_records")["m"][0]

    changed = _with_phone(lines[7], b"13900000000")
    new_lines = [*lines[:7], changed, *lines[8:]]
    path.write_bytes(b"".join(new_lines))
    _normalise_night(config)

    after = _records_by_line(config, new_lines)
    assert {line: key_id for line, key_id in after.items() if line != changed} == \
        {line: key_id for line, key_id in before.items() if line != lines[7]}
    new_key, new_id = after[changed]
    assert new_key != before[lines[7]][0] and new_id == top + 1, "a new key gets an id above every id in use"
    changes = _changes(config)
    assert changes.select("record_id", "change", "record_key").rows() == [
        (before[lines[7]][1], "removed", before[lines[7]][0]), (new_id, "added", new_key)]


def test_two_identical_rows_stay_two_records_with_their_own_keys(tmp_path):
    data = _sample(tmp_path)
    path, lines = _disability_rows(data)
    path.write_bytes(b"".join([*lines, lines[4]]))  # the fourth holder twice
    config = _config(tmp_path / "nightly", data)
    _normalise_night(config)
    rows = _read(config, f"SELECT record_key, record_id FROM person_records WHERE source = 'disability' "
                         f"AND row_number IN (5, {len(lines) + 1}) ORDER BY row_number")
    assert rows.height == 2 and rows["record_key"].n_unique() == 2
    first, second = (k.split("|") for k in rows["record_key"])
    assert first[1] == second[1] and (first[2], second[2]) == ("0", "1"), "same content, next occurrence"
    keys = _read(config, "SELECT record_key FROM person_records")["record_key"]
    assert keys.n_unique() == keys.len()

    # the first copy dropped: the second becomes the first occurrence and keeps the key and id the first had
    path.write_bytes(b"".join([*lines[:4], *lines[5:], lines[4]]))
    _normalise_night(config)
    now = _read(config, f"SELECT record_key, record_id FROM person_records WHERE source = 'disability' "
                        f"AND row_number = {len(lines)}")
    assert now.rows() == [tuple(rows.row(0))]
    assert _changes(config).select("record_id", "change").rows() == [(rows["record_id"][1], "removed")]
