"""The compare step on a local Dask cluster of two worker processes, through Prefect, gives the same
links, persons and evidence as the single-process run."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from conftest import copy_of_demo
from flows.distributed import partition_pairs
from pipeline import run as stages
from pipeline.store import open_database, query_frame
from schemas.config import load_config


def test_partitions_cover_every_pair_once_and_keep_a_records_pairs_together():
    pairs = pl.DataFrame({"record_id_l": [1, 1, 1, 2, 3, 3, 4, 5, 5, 5, 5],
                          "record_id_r": [2, 3, 4, 9, 4, 8, 5, 6, 7, 8, 9]})
    pieces = partition_pairs(pairs, 4)
    assert pl.concat(pieces).equals(pairs)
    assert len(pieces) <= 4
    lefts = [set(p["record_id_l"].to_list()) for p in pieces]
    assert all(not (a & b) for i, a in enumerate(lefts) for b in lefts[i + 1:])
    assert partition_pairs(pairs.head(0), 4) == []


def _tables(database: Path) -> dict[str, pl.DataFrame]:
    con = open_database(database, read_only=True)
    try:
        return {
            "links": query_frame(con, "SELECT * FROM links ORDER BY record_id_l, record_id_r"),
            "members": query_frame(con, "SELECT record_id, person_id FROM person_members ORDER BY record_id"),
            "evidence": query_frame(con, "SELECT * FROM record_evidence ORDER BY record_id"),
        }
    finally:
        con.close()


def test_dask_compare_gives_the_single_process_links(bundled_demo, prefect_harness, tmp_path):
    single = load_config(bundled_demo)
    work = tmp_path / "work"
    toml = copy_of_demo(bundled_demo, tmp_path, "\n[linking.distributed]\nenabled = true\nworkers = 2\npartitions = 4\n")
    distributed = load_config(toml)
    assert distributed.linking.distributed.enabled and distributed.work_dir == work
    con = open_database(distributed.database_path)
    try:  # forget what the single-process run kept, so every pair is compared on the cluster
        con.execute("DELETE FROM stage_state")
        con.execute("DROP TABLE IF EXISTS compared_pairs")
    finally:
        con.close()

    run_id = stages.start_run(distributed, str(toml))
    stats = stages.resolve_stage(distributed, run_id)

    assert stats["candidate_pairs"] > 300 and stats["links"] > 200
    ours, theirs = _tables(distributed.database_path), _tables(single.database_path)
    for name in ("links", "members", "evidence"):
        assert ours[name].equals(theirs[name]), f"{name} differ between the Dask and the single-process run"
    assert not any((work / "scratch").iterdir()), "partition files are removed after the step"


def test_a_wrong_scheduler_address_fails_the_step_clearly(bundled_demo, prefect_harness, tmp_path):
    from flows.distributed import dask_compare
    from schemas.config import DistributedConfig

    compare = dask_compare(DistributedConfig(enabled=True, scheduler="tcp://127.0.0.1:9"), tmp_path)
    pairs = pl.DataFrame({"record_id_l": [1], "record_id_r": [2]})
    prepared = pl.DataFrame({"record_id": [1, 2]})
    with pytest.raises(Exception) as info:
        compare(prepared, pairs)
    assert "127.0.0.1:9" in str(info.value) or "connect" in str(info.value).lower() or "timed out" in str(info.value).lower()
    assert not list(tmp_path.glob("compare-*")), "scratch files are removed after a failure too"
