"""Incremental nights: unchanged files are not re-read, a night with no new file reuses the
normalised records and the links, and a night with one replaced file compares only the pairs it
touches — and still ends with the links (their weights aside), persons and leads of a full run on the same
files. A re-sent roll keeps the record key and id of every row it did not change."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import openpyxl
import polars as pl

from pipeline import normalise
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


def _by_key(con, table: str) -> pl.DataFrame:
    """A table with its record ids replaced by the records' keys and its file ids by the files' SHA-256 (ids differ
    between a delta and a full build, and a replaced roll's file id is new), in an order both share: by record key,
    then by every column (an organisation's enforcement fact row has no record)."""
    keys = "SELECT record_id, record_key FROM person_records"
    files = "SELECT file_id, sha256 AS file_sha256 FROM ingested_files"
    if table == "links":
        return query_frame(con, f"""SELECT least(kl.record_key, kr.record_key) AS key_a,
                                           greatest(kl.record_key, kr.record_key) AS key_b,
                                           l.* EXCLUDE (record_id_l, record_id_r)
                                    FROM links l JOIN ({keys}) kl ON kl.record_id = l.record_id_l
                                    JOIN ({keys}) kr ON kr.record_id = l.record_id_r
                                    ORDER BY key_a, key_b, method, evidence_zh""")
    if table == "person_records":
        return query_frame(con, f"""SELECT t.* EXCLUDE (record_id, file_id), f.file_sha256 FROM person_records t
                                    LEFT JOIN ({files}) f USING (file_id) ORDER BY t.record_key""")
    lineage = table == "enforcement_facts"  # its rows name their raw row
    return query_frame(con, f"""SELECT k.record_key, t.* EXCLUDE (record_id{", file_id" if lineage else ""})
                                       {", f.file_sha256" if lineage else ""}
                                FROM {table} t LEFT JOIN ({keys}) k USING (record_id)
                                {f"LEFT JOIN ({files}) f USING (file_id)" if lineage else ""} ORDER BY ALL""")


def _state(config) -> dict[str, pl.DataFrame]:
    con = open_database(config.database_path, read_only=True)
    try:
        return {
            "links": _by_key(con, "links"),
            # who is with whom: each record with the smallest key of its person (a person keeps the id it had on
            # earlier nights, which a first night on the same files cannot know)
            "members": query_frame(con, "SELECT r.record_key, min(r.record_key) OVER (PARTITION BY m.person_id) AS "
                                        "person FROM person_members m JOIN person_records r USING (record_id) "
                                        "ORDER BY r.record_key"),
            "records": _by_key(con, "person_records"),
            **{t: _by_key(con, t) for t in FACT_TABLES},
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
    # by record key, the records and facts are exactly those a full build makes, lineage included (record and
    # file ids aside: the kept rows keep their ids, and the replaced roll got a new file id)
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
    assert persons == reference["members"]["person"].n_unique()
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
    assert counts[("rows_parsed", "disability")] == 0, "no row is new: none is parsed"
    assert counts[("records_kept", "disability")] == len(after) > 500
    assert counts[("records_kept", "victims")] == others.filter(pl.col("source") == "victims").height
    assert ("full_build", "all") not in counts

    full = _config(tmp_path / "full", data)  # a first night on the same files
    _normalise_night(full)
    for table in ("person_records", *FACT_TABLES):
        incremental, reference = (_by_key_of(c, table) for c in (config, full))
        assert incremental.equals(reference), table


def _by_key_of(config, table: str) -> pl.DataFrame:
    con = open_database(config.database_path, read_only=True)
    try:
        return _by_key(con, table)
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


# A delta night parses only the rows that are new; every other row keeps its stored record and fact rows,
# with tonight's lineage.

def test_a_changed_cell_is_the_only_row_parsed_and_a_full_build_parses_every_row(tmp_path, monkeypatch):
    data = _sample(tmp_path)
    path, lines = _disability_rows(data)
    lines = list(dict.fromkeys(lines))
    path.write_bytes(b"".join(lines))
    config = _config(tmp_path / "nightly", data)
    first = _counts(config, _normalise_night(config))
    raw = _read(config, "SELECT source, count(*) AS n FROM (SELECT 'disability' AS source FROM raw_disability "
                        "UNION ALL SELECT 'key_groups' FROM raw_key_groups) GROUP BY source")
    assert {first[("rows_parsed", s)] for s in ("disability", "key_groups")} == set(raw["n"]), "a full build parses all"

    parsed: list[int] = []
    real_parse_names = normalise.parse_names
    monkeypatch.setattr(normalise, "parse_names", lambda names: parsed.append(names.len()) or real_parse_names(names))
    new_lines = [*lines[:7], _with_phone(lines[7], b"13900000000"), *lines[8:]]
    path.write_bytes(b"".join(new_lines))
    counts = _counts(config, _normalise_night(config))
    assert counts[("rows_parsed", "disability")] == 1 and parsed == [1], "the changed row alone is parsed"
    assert ("rows_parsed", "victims") not in counts, "a kept source is not read"
    assert counts[("records_added", "disability")] == counts[("records_removed", "disability")] == 1


def _enforcement_book(path: Path, rows: list[tuple]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "终本案件"
    for row in rows:
        sheet.append(list(row))
    book.save(path)


def test_a_resent_enforcement_book_keeps_its_kept_rows_organisations_included_with_tonights_lineage(tmp_path):
    data = _sample(tmp_path)
    path = next((data / "enforcement").iterdir())
    header, *body = list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))
    is_org = [any(m in str(r[1]) for m in ("公司", "银行", "合作社")) for r in body]
    assert sum(is_org) >= 3
    # one row names a person and an organisation: two fact rows, one of them with a record
    body[0] = (body[0][0], f"{body[0][1]}、福建大田建材有限公司", f"{body[0][2]}、", *body[0][3:])
    _enforcement_book(path, [header, *body])
    config = _config(tmp_path / "nightly", data)
    _normalise_night(config)
    facts_before = _read(config, "SELECT count(*) AS n FROM enforcement_facts")["n"][0]
    assert facts_before == len(body) + 1

    orgs = [i for i, org in enumerate(is_org) if org]
    dropped = {orgs[0], 5, 11}  # an organisation's row among them
    changed = orgs[1]  # an organisation's row with another amount: gone, and new
    resent = [(*r[:5], 12345, *r[6:]) if i == changed else r for i, r in enumerate(body) if i not in dropped]
    added = (f"{body[1][0]}之一", *body[1][1:])  # a new row
    resent = [*resent[::-1], added]  # reordered: every kept row has another row number
    _enforcement_book(path, [header, *resent])
    run_id = _normalise_night(config)

    counts = _counts(config, run_id)
    assert counts[("rows_parsed", "enforcement")] == 2, "the changed row and the new one"
    facts = _read(config, """SELECT f.file_id, f.row_number, f.enforcement_case_no, f.applicant_name, i.status,
                                    r.enforcement_case_no AS raw_case_no, r.applicant_name AS raw_applicant
                             FROM enforcement_facts f JOIN ingested_files i USING (file_id)
                             LEFT JOIN raw_enforcement r USING (file_id, row_number)""")
    assert facts.height == len(resent) + 1
    assert set(facts["status"]) == {"loaded"}, "every fact row names tonight's file"
    assert (facts["raw_case_no"] == facts["enforcement_case_no"]).all(), "and the row it was read from tonight"
    assert all(a in r for a, r in facts.select("applicant_name", "raw_applicant").iter_rows())
    records = _read(config, """SELECT p.name_raw, r.applicant_name FROM person_records p JOIN raw_enforcement r
                               USING (file_id, row_number) WHERE p.source = 'enforcement'""")
    stored = _read(config, "SELECT count(*) AS n FROM person_records WHERE source = 'enforcement'")["n"][0]
    assert records.height == stored
    assert all(n in a for n, a in records.iter_rows())

    full = _config(tmp_path / "full", data)  # a first night on the same files
    _normalise_night(full)
    for table in ("person_records", *FACT_TABLES):
        incremental, reference = (_by_key_of(c, table) for c in (config, full))
        assert incremental.equals(reference), table


def _csv_rows(data: Path, source: str) -> tuple[Path, list[list[str]]]:
    path = next((data / source).iterdir())
    text = path.read_text(encoding="utf-8-sig")
    return path, [line.split(",") for line in text.splitlines()]


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    path.write_text("".join(",".join(row) + "\n" for row in rows), encoding="utf-8")


def test_households_keyed_by_their_file_are_parsed_again_when_their_file_is_resent(tmp_path):
    """A household without a household id nor a valid head ID is keyed by its head's name and its file: the
    re-sent roll gives those rows new keys (parsed again), the others keep theirs."""
    data = _sample(tmp_path)
    path, (header, *body) = _csv_rows(data, "subsistence")
    household_id, head_id = header.index("低保证号"), header.index("户主身份证号")
    for row in body[:30]:
        row[household_id] = row[head_id] = ""
    _write_csv(path, [header, *body])
    config = _config(tmp_path / "nightly", data)
    _normalise_night(config)

    resent = [row for i, row in enumerate(body) if i % 10 != 3][::-1]
    _write_csv(path, [header, *resent])
    counts = _counts(config, _normalise_night(config))
    by_file = sum(1 for row in resent if row[household_id] == "")
    assert counts[("rows_parsed", "subsistence")] == by_file == 27
    assert counts[("records_added", "subsistence")] == by_file

    full = _config(tmp_path / "full", data)
    _normalise_night(full)
    # the file-keyed households' keys name the file by its id, which differs between the two work folders:
    # those rows are compared without their keys, the others as they are
    rows = [i + 2 for i, row in enumerate(resent) if row[household_id] == ""]
    keyed_by_file = pl.col("household_key").is_in(_read(
        config, "SELECT household_key FROM person_records WHERE source = 'subsistence' AND row_number IN "
                "(SELECT unnest(?::INTEGER[]))", [rows])["household_key"].implode())
    for table in ("person_records", "subsistence_facts"):
        incremental, reference = (_by_key_of(c, table) for c in (config, full))
        assert incremental.filter(~keyed_by_file.fill_null(False)).equals(
            reference.filter(reference["record_key"].is_in(incremental["record_key"].implode()))), table
        assert incremental.drop("record_key", "household_key").sort(pl.all()).equals(
            reference.drop("record_key", "household_key").sort(pl.all())), table


def test_a_fact_column_empty_until_tonight_takes_the_type_a_full_build_gives_it(tmp_path):
    data = _sample(tmp_path)
    path, (header, *body) = _csv_rows(data, "key_groups")
    agency = header.index("报送单位")
    for row in body:
        row[agency] = ""
    _write_csv(path, [header, *body])
    config = _config(tmp_path / "nightly", data)
    _normalise_night(config)
    body[4] = [*body[4][:agency], "大田县民政局", *body[4][agency + 1:]]
    _write_csv(path, [header, *body])
    counts = _counts(config, _normalise_night(config))
    assert counts[("rows_parsed", "key_groups")] == 1

    full = _config(tmp_path / "full", data)
    _normalise_night(full)
    incremental, reference = (_by_key_of(c, "key_group_facts") for c in (config, full))
    assert incremental.equals(reference) and reference.schema["agency"] == pl.String
