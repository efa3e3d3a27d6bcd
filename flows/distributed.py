"""The compare step on a Dask cluster, through Prefect (prefect-dask's DaskTaskRunner).

Candidate pairs are compared independently of each other, so the step splits cleanly: the pairs
are cut into partitions (contiguous runs of the left record, so a block's pairs stay together),
each partition is one Prefect task on a Dask worker, and the results are put back in order —
the same frame the single-process compare returns, row for row.

No personal data crosses Prefect: the prepared records and each partition go to Parquet files in
a scratch folder readable by the owner only (on a real cluster: storage every worker mounts),
tasks receive and return paths and counts, and results are neither cached nor persisted.

    compare = dask_compare(DistributedConfig(enabled=True, workers=2), scratch_dir)
    resolve_people(records, settings, compare=compare)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from matchers.comparison import compare_pairs
from schemas.config import DistributedConfig

__all__ = ["dask_compare", "partition_pairs", "compare_partitions_flow", "scratch_folder"]


def partition_pairs(pairs: pl.DataFrame, partitions: int) -> list[pl.DataFrame]:
    """Cut the pairs into at most `partitions` pieces of about equal size, never splitting one left
    record's pairs (a block's comparisons stay on one worker)."""
    if pairs.height == 0:
        return []
    ids = pairs["record_id_l"]
    target = -(-pairs.height // max(partitions, 1))
    pieces, start = [], 0
    while start < pairs.height:
        end = min(start + target, pairs.height)
        while end < pairs.height and ids[end] == ids[end - 1]:
            end += 1
        pieces.append(pairs.slice(start, end - start))
        start = end
    return pieces


@task(name="compare-partition", cache_policy=NO_CACHE, persist_result=False, retries=1)
def compare_partition(prepared_path: str, pairs_path: str, out_path: str) -> int:
    """Compare one partition on a worker: files in, file out, a row count back."""
    compared = compare_pairs(pl.read_parquet(prepared_path), pl.read_parquet(pairs_path))
    compared.write_parquet(out_path)
    return compared.height


@flow(name="aidleads-compare", persist_result=False, log_prints=False)
def compare_partitions_flow(prepared_path: str, pairs_paths: list[str], out_paths: list[str]) -> list[int]:
    futures = compare_partition.map(prepared_path, pairs_paths, out_paths)
    return [f.result() for f in futures]


def _task_runner(cfg: DistributedConfig) -> Any:
    from prefect_dask import DaskTaskRunner

    if cfg.scheduler:
        return DaskTaskRunner(address=cfg.scheduler)
    return DaskTaskRunner(cluster_kwargs={"n_workers": cfg.workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None})


def dask_compare(cfg: DistributedConfig, scratch_dir: Path) -> Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]:
    """A compare function for resolve_people that fans the pairs out over a Dask cluster."""

    def compare(prepared: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
        pieces = partition_pairs(pairs, cfg.partitions)
        if not pieces:
            return compare_pairs(prepared, pairs)
        scratch_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="compare-", dir=scratch_dir))  # mode 0700
        try:
            prepared_path = folder / "prepared.parquet"
            prepared.write_parquet(prepared_path)
            ins, outs = [], []
            for i, piece in enumerate(pieces):
                ins.append(str(folder / f"pairs-{i:04d}.parquet"))
                outs.append(str(folder / f"compared-{i:04d}.parquet"))
                piece.write_parquet(ins[-1])
            flow_with_cluster = compare_partitions_flow.with_options(task_runner=_task_runner(cfg))
            flow_with_cluster(str(prepared_path), ins, outs)
            return pl.concat([pl.read_parquet(p) for p in outs], how="vertical")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return compare


def scratch_folder(cfg: DistributedConfig, work_dir: Path) -> Path:
    path = Path(cfg.scratch) if cfg.scratch else work_dir / "scratch"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
