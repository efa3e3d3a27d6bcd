"""An incremental night's resolution (pipeline.resolve_delta) against a full resolution of the same records.

The first night resolves the county sample in full. Then the same change is made to two copies of its
database — rows of three rolls dropped, others re-sent with a new phone (removed and added again under a
new key) — and one copy resolves the change alone, the other everything again. Everyone must end up the
same person with the same links, evidence and household relations either way, but for the people of a
probabilistic link made just above the threshold by one model and not the other (at most two).
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl
import pytest

from matchers.blocking import folded_keys, hashed_keys
from matchers.comparison import prepare_records
from pipeline import run as stages
from pipeline.resolve_delta import _sharing_a_key
from pipeline.store import open_database, query_frame
from schemas.config import config_from_dict
from test_linking_support import frame, make_id, mistype, rec

SOURCES = ("victims", "disability", "subsistence", "enforcement", "key_groups")


def _config(work: Path, data: Path, **linking):
    return config_from_dict({"paths": {"work_dir": str(work)}, "linking": linking,
                             "sources": {s: {"path": str(data / s)} for s in SOURCES}}, base_dir=work)


ROLLS = ("disability", "key_groups", "subsistence")


def _change_records(config, every: int, sources: tuple[str, ...] = ROLLS) -> tuple[int, int]:
    """Drop some records of three rolls and re-add half of them with a new phone, as normalise would on a
    night whose files changed so (record_changes lists them)."""
    con = open_database(config.database_path)
    try:
        records = query_frame(con, "SELECT * FROM person_records ORDER BY record_id")
        gone = records.filter((pl.col("record_id") % every == 3 % every)
                              & pl.col("source").is_in(list(sources)))
        back = gone.filter(pl.col("record_id") % (2 * every) == 3).with_columns(
            (pl.int_range(pl.len()) + records["record_id"].max() + 1).alias("record_id"),
            (pl.col("record_key") + "|new").alias("record_key"),
            pl.when(pl.col("phone").is_not_null()).then(pl.col("phone").str.slice(0, 10) + "7").alias("phone"))
        con.register("_gone", gone.select("record_id", "record_key", "source").to_arrow())
        con.register("_back", back.to_arrow())
        con.execute("DELETE FROM person_records WHERE record_id IN (SELECT record_id FROM _gone)")
        con.execute("INSERT INTO person_records BY NAME SELECT * FROM _back")
        con.execute("""CREATE OR REPLACE TABLE record_changes AS
                       SELECT record_id, record_key, source, 'removed' AS change FROM _gone
                       UNION ALL SELECT record_id, record_key, source, 'added' FROM _back""")
        # normalise built tonight's records from the ones the stored resolution was made of
        con.execute("INSERT OR REPLACE INTO stage_state VALUES ('normalise', 'tonight', 'Rtonight')")
        con.execute("DELETE FROM stage_state WHERE stage = 'resolve'")  # the files are the same: do not reuse
        con.execute("""INSERT OR REPLACE INTO stage_state SELECT 'record_changes', inputs_key, 'Rtonight'
                       FROM stage_state WHERE stage = 'resolve/records'""")
        return gone.height, back.height
    finally:
        con.close()


def _outcome(config) -> dict[str, pl.DataFrame]:
    con = open_database(config.database_path, read_only=True)
    try:
        key_of = "JOIN person_records r USING (record_id)"
        return {
            "members": query_frame(con, f"SELECT r.record_key, m.person_id FROM person_members m {key_of} ORDER BY 1"),
            "links": query_frame(con, """
                SELECT least(a.record_key, b.record_key) AS k1, greatest(a.record_key, b.record_key) AS k2, l.method,
                       l.evidence_zh FROM links l JOIN person_records a ON a.record_id = l.record_id_l
                       JOIN person_records b ON b.record_id = l.record_id_r ORDER BY 1, 2, 3"""),
            "probability": query_frame(con, """
                SELECT least(a.record_key, b.record_key) AS k1, greatest(a.record_key, b.record_key) AS k2,
                       l.match_probability FROM links l JOIN person_records a ON a.record_id = l.record_id_l
                       JOIN person_records b ON b.record_id = l.record_id_r WHERE l.method = 'probabilistic'"""),
            "persons": query_frame(con, "SELECT * FROM persons ORDER BY person_id"),
            "evidence": query_frame(con, f"SELECT r.record_key, e.evidence_zh FROM record_evidence e {key_of} ORDER BY 1"),
            "households": query_frame(con, "SELECT * FROM households ORDER BY ALL"),
        }
    finally:
        con.close()


def _resolve(config) -> tuple[dict, list[tuple]]:
    run_id = stages.start_run(config, None)
    stats = stages.resolve_stage(config, run_id)
    con = open_database(config.database_path, read_only=True)
    try:
        full = con.execute("SELECT subject FROM run_counts WHERE run_id = ? AND stage = 'resolve' AND metric = 'full'",
                           [run_id]).fetchall()
    finally:
        con.close()
    return stats, full


@pytest.fixture(scope="module")
def first_night(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("delta")
    data = Path(str(resources.files("data_samples").joinpath("county")))
    config = _config(base / "night1", data)
    run_id = stages.start_run(config, None)
    for stage in (stages.ingest_stage, stages.normalise_stage, stages.resolve_stage):
        stage(config, run_id)
    stages.finish_run(config, run_id, "succeeded")
    return base, data


@pytest.mark.parametrize(("every", "sources"), [(15, ROLLS), (12, ROLLS), (7, ("victims", "enforcement"))])
def test_an_incremental_resolution_ends_as_a_full_one(first_night, every, sources):
    """Rows of the rolls, or of the case files (their case-context links and household relations change)."""
    _compare_incremental_with_full(*first_night, every, sources)


def test_blocks_too_large_to_expand_are_skipped_on_an_incremental_night_too(tmp_path):
    """With blocks of at most 10 records, many of the county's are skipped: an incremental night must read
    all of such a block (not only the records that could pair with a new one) to skip it as a full run does."""
    data = Path(str(resources.files("data_samples").joinpath("county")))
    config = _config(tmp_path / "night1", data, max_block_size=10)
    run_id = stages.start_run(config, None)
    for stage in (stages.ingest_stage, stages.normalise_stage, stages.resolve_stage):
        stage(config, run_id)
    stages.finish_run(config, run_id, "succeeded")
    _compare_incremental_with_full(tmp_path, data, 15, ROLLS, max_block_size=10)


def test_only_records_that_can_pair_with_a_new_one_are_read_unless_their_block_is_skipped():
    """Twelve people of one region, year and sequence number (one ID-typo block), one of them with a mistyped ID,
    and tonight a new record in that block with a valid ID: of the block only the suspect can pair with it,
    unless the block is larger than max_block_size, when all of it is read so that it is skipped as in a full run."""
    given = "一二三四五六七八九十百千万"
    ids = [make_id("350425", f"1980{m:02d}{d:02d}", 123) for m, d in zip(range(1, 13), range(10, 22))]
    rows = [rec(f"{s}{g}", i) for s, g, i in zip("赵钱孙李周吴郑王冯陈褚卫", given, ids)]
    rows[0] = rec("赵一", mistype(ids[0], 11))  # a slip in the day: fails its check, a suspect
    rows.append(rec("蒋新", make_id("350425", "19801231", 123)))  # tonight's record, same region, year and sequence
    prepared = prepare_records(frame(rows))
    keys = folded_keys(prepared["record_id"], hashed_keys(prepared))
    con = duckdb.connect()
    con.register("_k", keys.head(12).to_arrow())
    con.execute("CREATE TABLE block_keys AS SELECT * FROM _k; CREATE TABLE person_records AS SELECT record_id FROM _k")
    assert sorted(_sharing_a_key(con, keys.tail(1), 100).to_list()) == [0]
    assert sorted(_sharing_a_key(con, keys.tail(1), 10).to_list()) == list(range(12))


def _compare_incremental_with_full(base: Path, data: Path, every: int, sources: tuple[str, ...], **linking) -> None:
    tonight, reference = base / f"incremental{every}", base / f"full{every}"
    shutil.copytree(base / "night1", tonight)
    shutil.copytree(base / "night1", reference)
    incremental = _config(tonight, data, incremental_max_change=0.5, **linking)
    full = _config(reference, data, incremental=False, **linking)
    gone, back = _change_records(incremental, every, sources)
    assert (gone, back) == _change_records(full, every, sources)
    assert gone > 10 and back > 5

    stats, why_full = _resolve(incremental)
    assert why_full == [] and stats["incremental"] == 1, why_full
    assert stats["records_added"] == back and stats["records_removed"] == gone
    _, why_full = _resolve(full)
    assert why_full == [("incremental resolution is off",)]

    mine, theirs = _outcome(incremental), _outcome(full)
    assert theirs["members"].height > 1500 and theirs["links"].height > 300
    affected = _near_the_threshold(mine, theirs)
    for table in ("members", "links", "persons", "evidence", "households"):
        assert _without(mine, table, affected).equals(_without(theirs, table, affected)), table


NEAR_THRESHOLD = 0.995
"""The incremental night decides with the stored model, the full run with one estimated again (resolve_delta's
docstring): a probabilistic pair this close above the 0.99 threshold may fall on either side of it."""


def _near_the_threshold(mine: dict[str, pl.DataFrame], theirs: dict[str, pl.DataFrame]) -> dict[str, set[str]]:
    """The records and people of the few links one side made and the other did not, each of them a probabilistic
    link made just above the threshold; everything else must be the same."""
    def made(outcome):
        return set(outcome["links"].select("k1", "k2", "method").iter_rows())

    differing = made(mine) ^ made(theirs)
    assert len(differing) <= 2, differing
    keys: set[str] = set()
    for k1, k2, method in differing:
        side = mine if (k1, k2, method) in made(mine) else theirs
        p = side["probability"].filter((pl.col("k1") == k1) & (pl.col("k2") == k2))["match_probability"][0]
        assert method == "probabilistic" and p < NEAR_THRESHOLD, (method, p)
        for outcome in (mine, theirs):
            members = outcome["members"]
            people = members.filter(pl.col("record_key").is_in([k1, k2]))["person_id"]
            keys |= set(members.filter(pl.col("person_id").is_in(people.implode()))["record_key"].to_list())
    people = set()
    for outcome in (mine, theirs):
        people |= set(outcome["members"].filter(pl.col("record_key").is_in(list(keys)))["person_id"].to_list())
    return {"keys": keys, "people": people}


def _without(outcome: dict[str, pl.DataFrame], table: str, affected: dict[str, set[str]]) -> pl.DataFrame:
    frame, keys, people = outcome[table], list(affected["keys"]), list(affected["people"])
    if table in ("members", "evidence"):
        return frame.filter(~pl.col("record_key").is_in(keys))
    if table == "links":
        return frame.filter(~pl.col("k1").is_in(keys) & ~pl.col("k2").is_in(keys))
    if table == "persons":
        return frame.filter(~pl.col("person_id").is_in(people))
    return frame.filter(~pl.col("person_id").is_in(people) & ~pl.col("household_person_id").is_in(people))


def test_a_large_change_resolves_in_full(first_night):
    base, data = first_night
    shutil.copytree(base / "night1", base / "large")
    config = _config(base / "large", data)  # at most a tenth of the records may change
    _change_records(config, 3)
    stats, why_full = _resolve(config)
    assert why_full == [("too many records changed",)] and "incremental" not in stats


def test_the_full_resolution_comes_back_after_the_set_number_of_nights(first_night):
    base, data = first_night
    shutil.copytree(base / "night1", base / "nights")
    config = _config(base / "nights", data, full_resolve_every=1)
    _change_records(config, 40)
    stats, why_full = _resolve(config)
    assert stats["incremental"] == 1 and why_full == []
    _change_records(config, 41)
    stats, why_full = _resolve(config)
    assert why_full == [("a full resolution is due (every 1 incremental nights)",)]
