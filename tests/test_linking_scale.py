"""Resolution measured on an independent dirty county: pairwise precision / recall per source pair.

`python tests/test_linking_scale.py 200000 1` prints the full table (≈ 50k records); the test runs a
smaller county and holds the engine to the targets.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matchers.linking import resolve_people  # noqa: E402
from test_linking_population import dirty_county  # noqa: E402
from test_linking_support import frame  # noqa: E402


_EVIDENCE = ("id_any", "birth_date", "phone", "address", "counterpart_name")


def _pairs_within(groups: pl.DataFrame, key: str) -> pl.DataFrame:
    """All record pairs (l < r) sharing `key`, with their sources, and whether the two records share any
    field beyond name and sex (a pair that shares nothing else cannot be told from namesakes)."""
    present = [c for c in _EVIDENCE if c in groups.columns]
    g = groups.select("record_id", "source", "name", key, *[pl.col(c).is_not_null().alias(c) for c in present])
    return (
        g.join(g, on=key, suffix="_r")
        .filter(pl.col("record_id") < pl.col("record_id_r"))
        .select(pl.col("record_id").alias("l"), pl.col("record_id_r").alias("r"),
                pl.min_horizontal("source", "source_r").alias("s1"), pl.max_horizontal("source", "source_r").alias("s2"),
                (pl.col("name") == pl.col("name_r")).alias("same_name"),
                pl.any_horizontal([pl.col(c) & pl.col(f"{c}_r") for c in present] or [pl.lit(True)]).alias("linkable"))
    )


def evaluate(records: pl.DataFrame, clusters: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """Pairwise precision, recall and F1 of the clustering per (unordered) source pair, plus totals."""
    extra = [c for c in ("birth_date", "phone", "address", "counterpart_name") if c in records.columns]
    base = records.select("record_id", "source", "name", "tag", *extra,
                          pl.coalesce("id18", "id_candidate").alias("id_any")).join(clusters, on="record_id")
    truth = _pairs_within(base, "tag")
    found = _pairs_within(base, "person_id")
    tp = truth.join(found.select("l", "r"), on=["l", "r"], how="semi")
    fp = found.join(truth.select("l", "r"), on=["l", "r"], how="anti")
    count = lambda f, name: f.group_by("s1", "s2").len().rename({"len": name})  # noqa: E731
    table = (
        count(truth, "true").join(count(found, "found"), on=["s1", "s2"], how="full", coalesce=True)
        .join(count(tp, "tp"), on=["s1", "s2"], how="left")
        .fill_null(0)
        .with_columns(
            (pl.col("tp") / pl.col("found")).alias("precision"),
            (pl.col("tp") / pl.col("true")).alias("recall"),
        )
        .with_columns((2 * pl.col("precision") * pl.col("recall") / (pl.col("precision") + pl.col("recall"))).alias("f1"))
        .sort("s1", "s2")
    )
    totals = {"true_pairs": truth.height, "linkable_true_pairs": int(truth["linkable"].sum()),
              "linkable_true_positives": int(tp["linkable"].sum()),
              "found_pairs": found.height, "true_positives": tp.height,
              "false_pairs": fp.height, "false_pairs_same_name": int(fp["same_name"].sum() or 0)}
    return table, totals


def run(n_people: int, seed: int) -> tuple[pl.DataFrame, dict[str, float]]:
    records = frame(dirty_county(n_people, seed))
    started = time.perf_counter()
    res = resolve_people(records)
    seconds = time.perf_counter() - started
    table, totals = evaluate(records, res.clusters)
    p = totals["true_positives"] / max(totals["found_pairs"], 1)
    r = totals["true_positives"] / max(totals["true_pairs"], 1)
    summary = {**totals, "records": records.height, "seconds": round(seconds, 1),
               "candidate_pairs_per_record": round(res.stats["candidate_pairs"] / records.height, 2),
               "precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4),
               "recall_linkable": round(totals["linkable_true_positives"] / max(totals["linkable_true_pairs"], 1), 4),
               **{k: v for k, v in res.stats.items() if k.startswith("links")}}
    return table, summary


@pytest.mark.parametrize("seed", [1, 2])
def test_dirty_county(seed):
    table, summary = run(24_000, seed)
    assert summary["precision"] >= 0.995, summary
    assert summary["recall_linkable"] >= 0.93, summary
    assert table.filter(pl.col("found") > 20)["precision"].min() >= 0.98, table


if __name__ == "__main__":
    n, s = (int(a) for a in sys.argv[1:3])
    pl.Config.set_tbl_rows(40)
    pl.Config.set_tbl_width_chars(160)
    t, summ = run(n, s)
    print(t)
    print(summ)
