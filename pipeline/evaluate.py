"""Measure resolution against the generator's ground truth: pairwise precision / recall / F1 per source pair.

A pair of records is predicted matching when both records sit in one resolved person, and truly
matching when the generator made both rows from one person. Namesake false links (same normalised
name, different true people) and direct false links are listed, because those are the errors that
send a prosecutor to the wrong household.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

__all__ = ["truth_frame", "attach_truth", "PairMetrics", "pair_metrics", "false_links", "lead_recall"]


def truth_frame(sample_dir: Path) -> pl.DataFrame:
    """(source_file, row_number) → true person_id, from truth/records.csv (organisations have none)."""
    truth = pl.read_csv(sample_dir / "truth" / "records.csv", infer_schema=False)
    return truth.filter(pl.col("person_id").is_not_null() & (pl.col("person_id") != "")).select(
        pl.col("file").str.split("/").list.last().alias("source_file"),
        pl.col("row_number").cast(pl.Int32),
        pl.col("person_id").alias("true_person"),
    ).unique(["source_file", "row_number"], keep="first")


def attach_truth(records: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Records with their true person (records the generator did not make for a person are dropped)."""
    return records.join(truth, on=["source_file", "row_number"], how="inner")


def _pairs(frame: pl.DataFrame, group: str) -> pl.DataFrame:
    left = frame.select("record_id", "source", group)
    pairs = left.join(left, on=group, suffix="_r").filter(pl.col("record_id") < pl.col("record_id_r"))
    return pairs.select(
        pl.col("record_id").alias("l"), pl.col("record_id_r").alias("r"),
        pl.min_horizontal("source", "source_r").alias("source_a"),
        pl.max_horizontal("source", "source_r").alias("source_b"),
    )


@dataclass
class PairMetrics:
    table: pl.DataFrame
    """one row per source pair: tp, fp, fn, precision, recall, f1"""
    overall: dict[str, float]
    false_pairs: pl.DataFrame
    missed_pairs: pl.DataFrame


def pair_metrics(records: pl.DataFrame, clusters: pl.DataFrame) -> PairMetrics:
    """Pairwise metrics of `clusters` (record_id, person_id) on records that carry `true_person`."""
    frame = records.join(clusters.select("record_id", "person_id"), on="record_id", how="inner")
    predicted = _pairs(frame, "person_id")
    true = _pairs(frame, "true_person")
    keys = ["l", "r"]
    tp = predicted.join(true.select(keys), on=keys, how="semi")
    fp = predicted.join(true.select(keys), on=keys, how="anti")
    fn = true.join(predicted.select(keys), on=keys, how="anti")
    counts = [c.group_by("source_a", "source_b").len().rename({"len": name}) for c, name in ((tp, "tp"), (fp, "fp"), (fn, "fn"))]
    table = counts[0].join(counts[1], on=["source_a", "source_b"], how="full", coalesce=True)
    table = table.join(counts[2], on=["source_a", "source_b"], how="full", coalesce=True).fill_null(0)
    table = table.with_columns(
        (pl.col("tp") / (pl.col("tp") + pl.col("fp"))).fill_nan(1.0).alias("precision"),
        (pl.col("tp") / (pl.col("tp") + pl.col("fn"))).fill_nan(1.0).alias("recall"),
    ).with_columns(
        (2 * pl.col("precision") * pl.col("recall") / (pl.col("precision") + pl.col("recall"))).fill_nan(0.0).alias("f1")
    ).sort("source_a", "source_b")
    n_tp, n_fp, n_fn = tp.height, fp.height, fn.height
    precision = n_tp / (n_tp + n_fp) if n_tp + n_fp else 1.0
    recall = n_tp / (n_tp + n_fn) if n_tp + n_fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    names = frame.select("record_id", "name", "true_person")
    named = fp.join(names.rename({"record_id": "l", "name": "name_l", "true_person": "true_l"}), on="l").join(
        names.rename({"record_id": "r", "name": "name_r", "true_person": "true_r"}), on="r")
    same_name = named.filter(pl.col("name_l") == pl.col("name_r")).height
    overall = {"tp": n_tp, "fp": n_fp, "fn": n_fn, "precision": precision, "recall": recall, "f1": f1,
               "same_name_false_pairs": same_name}
    return PairMetrics(table=table, overall=overall, false_pairs=named, missed_pairs=fn)


def false_links(links: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Direct links whose two records belong to different true people, with where they came from."""
    side = records.select("record_id", "source_file", "row_number", "true_person")
    joined = links.join(side.rename({c: f"{c}_l" for c in side.columns}), left_on="record_id_l", right_on="record_id_l")
    joined = joined.join(side.rename({c: f"{c}_r" for c in side.columns}), left_on="record_id_r", right_on="record_id_r")
    return joined.filter(pl.col("true_person_l") != pl.col("true_person_r")).select(
        "method", "match_probability", "evidence_zh",
        pl.format("{}#{}", "source_file_l", "row_number_l").alias("left_row"),
        pl.format("{}#{}", "source_file_r", "row_number_r").alias("right_row"),
    )


def lead_recall(sample_dir: Path, lead_cases: set[str]) -> tuple[int, int]:
    """(found, expected): uncompensated, fault-free truth victims with a record in another agency's data."""
    from pipeline.normalise import case_number

    victims = pl.read_csv(sample_dir / "truth" / "victims.csv", infer_schema=False)
    truth = pl.read_csv(sample_dir / "truth" / "records.csv", infer_schema=False)
    elsewhere = set(truth.filter(pl.col("source") != "victims")["person_id"].drop_nulls().to_list())
    expected = 0
    found = 0
    for v in victims.iter_rows(named=True):
        people = {v["person_id"], *[p for p in (v.get("relative_person_ids") or "").split(";") if p]}
        if str(v.get("compensated", "")).lower() == "true" or str(v.get("fault", "")).lower() == "true":
            continue
        if not people & elsewhere:
            continue
        expected += 1
        found += case_number(v["case_no"]) in lead_cases
    return found, expected


@dataclass
class EvalReport:
    persons: int
    seed: int
    records: int
    seconds: dict[str, float]
    ours: PairMetrics
    false_direct: pl.DataFrame
    id_conflicts: int
    """links joining two different valid IDs without the typo rule (must be 0)"""
    leads_found: int
    leads_expected: int
    splink: PairMetrics | None = None
    splink_seconds: float | None = None
    splink_error: str | None = None
    splink_tuned: PairMetrics | None = None
    splink_tuned_seconds: float | None = None


def run_evaluation(persons: int, seed: int, data_dir: Path, work_dir: Path, *, splink: bool = True,
                   splink_tuned: bool = False) -> EvalReport:
    """Generate (or reuse) a county with ground truth, resolve it, and measure us (and Splink) against it."""
    import shutil
    import time

    from pipeline import run as stages
    from pipeline.store import open_database, query_frame
    from schemas.config import config_from_dict

    if not (data_dir / "truth" / "records.csv").exists():
        from data_samples.generator import generate

        generate(persons, seed, data_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    config = config_from_dict({
        "paths": {"work_dir": str(work_dir)},
        "sources": {s: {"path": str(data_dir / s)} for s in ("victims", "disability", "subsistence", "enforcement", "key_groups")},
    }, base_dir=work_dir)
    run_id = stages.start_run(config, None)
    seconds: dict[str, float] = {}
    for name, stage in (("ingest", stages.ingest_stage), ("normalise", stages.normalise_stage),
                        ("resolve", stages.resolve_stage), ("score", stages.score_stage)):
        started = time.perf_counter()
        stage(config, run_id)
        seconds[name] = time.perf_counter() - started
    stages.finish_run(config, run_id, "succeeded")

    con = open_database(config.database_path, read_only=True)
    try:
        records = query_frame(con, "SELECT * FROM person_records ORDER BY record_id")
        clusters = query_frame(con, "SELECT record_id, person_id FROM person_members")
        links = query_frame(con, "SELECT * FROM links")
        lead_cases = {r[0] for r in con.execute(
            "SELECT l.case_no FROM lead_history h JOIN leads l USING (lead_id) WHERE h.run_id = ?", [run_id]).fetchall()}
    finally:
        con.close()
    truth = truth_frame(data_dir)
    with_truth = attach_truth(records, truth)
    ours = pair_metrics(with_truth, clusters)
    ids = records.select("record_id", "id18")
    conflicts = links.filter(pl.col("method") != "id_typo").join(
        ids.rename({"record_id": "record_id_l", "id18": "id_l"}), on="record_id_l").join(
        ids.rename({"record_id": "record_id_r", "id18": "id_r"}), on="record_id_r").filter(
        pl.col("id_l").is_not_null() & pl.col("id_r").is_not_null() & (pl.col("id_l") != pl.col("id_r"))).height
    found, expected = lead_recall(data_dir, lead_cases)
    report = EvalReport(persons=persons, seed=seed, records=records.height, seconds=seconds, ours=ours,
                        false_direct=false_links(links, with_truth), id_conflicts=conflicts,
                        leads_found=found, leads_expected=expected)
    if splink:
        try:
            from matchers.splink_baseline import run_splink

            result = run_splink(records, threshold=0.9, seed=seed)
            report.splink = pair_metrics(with_truth, result.clusters)
            report.splink_seconds = result.seconds
            if splink_tuned:
                tuned = run_splink(records, threshold=0.9, seed=seed, tuned=True)
                report.splink_tuned = pair_metrics(with_truth, tuned.clusters)
                report.splink_tuned_seconds = tuned.seconds
        except ImportError as exc:
            report.splink_error = str(exc)
    return report
