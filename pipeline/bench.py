"""`aidleads bench`: the nightly run at a chosen population size, stage by stage, against Splink.

Each measurement runs in a fresh child process, so its peak memory is the pipeline's own (not the
generator's, not Splink's, not an earlier repeat's):

    generate (or reuse) bench-data/p{N}-s{S}  →  child: the night's stages in process, timed
    →  child: Splink on the same person records (--vs splink)  →  child: a night with one changed
    file on top of the full run (--incremental)  →  table + JSON

Stage figures come from the same functions the Prefect flow calls (pipeline.run), with resolution
split into block / compare / cluster. Memory is sampled from /proc every 10 ms per stage; the
process peak is the kernel's own maximum (ru_maxrss). Prefect's start-up is measured apart
(--prefect), because the targets exclude orchestration.
"""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["StageFigure", "BenchReport", "run_bench", "measure_run", "STAGES"]

STAGES = ("ingest", "normalise", "block", "compare", "cluster", "score", "export", "publish")
SOURCES = ("victims", "disability", "subsistence", "enforcement", "key_groups")


@dataclass
class StageFigure:
    stage: str
    seconds: float
    rows_in: int | None = None
    rows_out: int | None = None
    pairs: int | None = None
    peak_rss_mb: float = 0.0


@dataclass
class RunFigures:
    """One measured night: stages, totals, and (for a full run) link quality against the truth."""

    stages: list[StageFigure]
    stage_seconds: float
    process_seconds: float
    peak_rss_mb: float
    records: int
    quality: dict[str, float] = field(default_factory=dict)


class _RssSampler:
    """Peak resident memory within a window, sampled every 10 ms from /proc/self/statm."""

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * self._page

    def _loop(self) -> None:
        while not self._stop.wait(0.01):
            self._peak = max(self._peak, self._rss())

    @contextmanager
    def window(self) -> Iterator[list[float]]:
        self._peak = self._rss()
        out: list[float] = []
        yield out
        out.append(max(self._peak, self._rss()) / 2**20)

    def close(self) -> None:
        self._stop.set()


def _bench_config(data_dir: Path, work_dir: Path) -> Any:
    from schemas.config import config_from_dict

    return config_from_dict({"paths": {"work_dir": str(work_dir)},
                             "sources": {s: {"path": str(data_dir / s)} for s in SOURCES}}, base_dir=work_dir)


def measure_run(data_dir: Path, work_dir: Path, *, with_quality: bool = True) -> RunFigures:
    """Run the night's stages once in this process (as the flow does: build copy, stages, publish)."""
    from pipeline import run as stages

    started = time.perf_counter()
    config = _bench_config(data_dir, work_dir)
    sampler = _RssSampler()
    figures: dict[str, StageFigure] = {}

    @contextmanager
    def meter(stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        with sampler.window() as peak:
            yield
        fig = figures.setdefault(stage, StageFigure(stage, 0.0))
        fig.seconds += time.perf_counter() - t0
        fig.peak_rss_mb = max(fig.peak_rss_mb, peak[0])

    stages_started = time.perf_counter()
    with ExitStack() as held:
        with meter("publish"):
            build = stages.prepare_build(config)
            night = stages.with_database(config, build)
            held.enter_context(stages.night_database(night))
            run_id = stages.start_run(night, None)
        with meter("ingest"):
            stages.ingest_stage(night, run_id)
        with meter("normalise"):
            per_source = stages.normalise_stage(night, run_id)
        resolved = stages.resolve_stage(night, run_id, meter)
        with meter("score"):
            scored = stages.score_stage(night, run_id)
        with meter("export"):
            exported = stages.export_stage(night, run_id)
        with meter("publish"):
            stages.finish_run(night, run_id, "succeeded")
            held.close()  # letting go of the night's connection checkpoints the file
    with meter("publish"):
        stages.publish_build(config, build, run_id)
    sampler.close()
    stage_seconds = time.perf_counter() - stages_started  # wall clock: nothing between the stages goes uncounted

    counts = _run_counts(config, run_id)
    records = sum(per_source.values())
    leads = sum(scored.get(t, 0) for t in "ABC")
    rows_read = counts.get("rows_loaded", 0) + counts.get("rows_quarantined", 0)
    shape = {"ingest": (rows_read, counts.get("rows_loaded", 0), None),
             "normalise": (counts.get("rows_loaded", 0), records, None),
             "block": (records, None, resolved.get("candidate_pairs")),
             "compare": (resolved.get("candidate_pairs"), resolved.get("links"), resolved.get("candidate_pairs")),
             "cluster": (resolved.get("links"), resolved.get("persons"), None),
             "score": (resolved.get("persons"), leads, None),
             "export": (leads, exported["rows"], None)}
    for stage, (rows_in, rows_out, pairs) in shape.items():
        fig = figures.setdefault(stage, StageFigure(stage, 0.0))
        fig.rows_in, fig.rows_out, fig.pairs = rows_in, rows_out, pairs
    result = RunFigures(stages=[figures[s] for s in STAGES if s in figures], stage_seconds=stage_seconds,
                        process_seconds=time.perf_counter() - started,
                        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, records=records)
    if with_quality and (data_dir / "truth" / "records.csv").exists():
        result.quality = _our_quality(config, data_dir)
    return result


def _run_counts(config: Any, run_id: str) -> dict[str, int]:
    from pipeline.store import open_database

    con = open_database(config.database_path, read_only=True)
    try:
        return {m: int(v) for m, v in con.execute(
            "SELECT metric, sum(value) FROM run_counts WHERE run_id = ? GROUP BY metric", [run_id]).fetchall()}
    finally:
        con.close()


def _records_and_truth(config: Any, data_dir: Path) -> tuple[Any, Any, Any]:
    from pipeline.evaluate import attach_truth, truth_frame
    from pipeline.store import open_database, query_frame

    con = open_database(config.database_path, read_only=True)
    try:
        records = query_frame(con, "SELECT * FROM person_records ORDER BY record_id")
        clusters = query_frame(con, "SELECT record_id, person_id FROM person_members")
    finally:
        con.close()
    return records, clusters, attach_truth(records, truth_frame(data_dir))


def _overall(metrics: Any) -> dict[str, float]:
    o = metrics.overall
    return {"precision": o["precision"], "recall": o["recall"], "f1": o["f1"], "false_pairs": o["fp"],
            "same_name_false_pairs": o["same_name_false_pairs"]}


def _our_quality(config: Any, data_dir: Path) -> dict[str, float]:
    from pipeline.evaluate import pair_metrics

    _, clusters, with_truth = _records_and_truth(config, data_dir)
    return _overall(pair_metrics(with_truth, clusters))


def measure_splink(data_dir: Path, work_dir: Path, seed: int) -> dict[str, Any]:
    """Splink (DuckDB backend, settings of the resolution issue) on the person records our run made."""
    from matchers.splink_baseline import run_splink
    from pipeline.evaluate import pair_metrics

    config = _bench_config(data_dir, work_dir)
    records, _, with_truth = _records_and_truth(config, data_dir)
    result = run_splink(records, threshold=0.9, seed=seed)
    return {"linking_seconds": result.seconds, **_overall(pair_metrics(with_truth, result.clusters)),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# -- the parent: data, children, medians, table -------------------------------------------------------


@dataclass
class BenchReport:
    persons: int
    seed: int
    records: int
    repeats: int
    stages: list[dict[str, Any]]
    """per stage: median seconds, rows in/out, pairs, max peak RSS across repeats"""
    stage_seconds: float
    stage_seconds_all: list[float]
    process_seconds: float
    peak_rss_mb: float
    pairs_per_record: float
    quality: dict[str, float]
    splink: dict[str, Any] | None = None
    incremental: dict[str, Any] | None = None
    prefect: dict[str, Any] | None = None
    machine: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)


def _child(args: list[str]) -> dict[str, Any]:
    """Run `python -m pipeline.bench <args>` and read the JSON it prints last."""
    proc = subprocess.run([sys.executable, "-m", "pipeline.bench", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"benchmark step {args[0]} failed:\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ensure_data(persons: int, seed: int, data_root: Path) -> Path:
    """The generated area for this size and seed, made once (in a child process) and reused."""
    data_dir = data_root / f"p{persons}-s{seed}"
    if not (data_dir / "truth" / "records.csv").exists():
        shutil.rmtree(data_dir, ignore_errors=True)
        _child(["generate", str(persons), str(seed), str(data_dir)])
    return data_dir


def replace_one_file(inbox: Path, source: str = "key_groups") -> str:
    """Re-send one agency's roll under the same file name with a tenth of its rows gone and a twentieth with a
    new phone number — what a night with one changed file looks like (the new version supersedes the old one)."""
    files = sorted((inbox / source).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no CSV file in {inbox / source} to change")
    text = files[0].read_bytes().decode("utf-8-sig").splitlines(keepends=True)
    header = next(csv.reader(text[:1]))
    phone = next((i for i, h in enumerate(header) if "电话" in h), None)
    kept, changed = text[:1], 0
    for i, line in enumerate(text[1:]):
        if i % 10 == 9:
            continue
        if i % 20 == 4 and phone is not None:
            cells = next(csv.reader([line]))
            if phone < len(cells) and cells[phone][-1:].isdigit():
                cells[phone] = cells[phone][:-1] + str((int(cells[phone][-1]) + 1) % 10)
                out = io.StringIO()
                csv.writer(out, lineterminator=line[len(line.rstrip("\r\n")):] or "\n").writerow(cells)
                line, changed = out.getvalue(), changed + 1
        kept.append(line)
    files[0].write_bytes("".join(kept).encode("utf-8"))
    return f"{source}/{files[0].name} (same name: {len(text) - len(kept)} of {len(text) - 1} rows gone, {changed} phones changed)"


def _inbox(data_dir: Path, target: Path) -> Path:
    """A copy of the generated files the runs read (the incremental night changes one in place)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(data_dir, target, ignore=shutil.ignore_patterns("truth"))
    (target / "truth").symlink_to((data_dir / "truth").resolve(), target_is_directory=True)
    return target


def run_bench(persons: int, seed: int, *, data_root: Path, work_root: Path, repeats: int = 1,
              vs_splink: bool = False, incremental: bool = False, prefect: bool = False) -> BenchReport:
    data_dir = _inbox(ensure_data(persons, seed, data_root), work_root / f"p{persons}-s{seed}-inbox")
    runs: list[dict[str, Any]] = []
    work = work_root / f"p{persons}-s{seed}"
    for i in range(repeats):
        shutil.rmtree(work, ignore_errors=True)
        runs.append(_child(["measure", str(data_dir), str(work), "quality" if i == 0 else "no-quality"]))
    first = runs[0]
    stages = []
    for k, fig in enumerate(first["stages"]):
        stages.append({**fig, "seconds": statistics.median(r["stages"][k]["seconds"] for r in runs),
                       "peak_rss_mb": max(r["stages"][k]["peak_rss_mb"] for r in runs)})
    pairs = next((s["pairs"] for s in stages if s["stage"] == "block"), 0) or 0
    report = BenchReport(
        persons=persons, seed=seed, records=first["records"], repeats=repeats, stages=stages,
        stage_seconds=statistics.median(r["stage_seconds"] for r in runs),
        stage_seconds_all=[round(r["stage_seconds"], 2) for r in runs],
        process_seconds=statistics.median(r["process_seconds"] for r in runs),
        peak_rss_mb=max(r["peak_rss_mb"] for r in runs),
        pairs_per_record=pairs / max(first["records"], 1), quality=first["quality"],
        machine={"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    )
    if vs_splink:
        report.splink = _child(["splink", str(data_dir), str(work), str(seed)])
        ours = sum(s["seconds"] for s in stages if s["stage"] in ("block", "compare", "cluster"))
        report.splink["ours_linking_seconds"] = ours
        report.splink["speedup_vs_linking"] = report.splink["linking_seconds"] / max(ours, 1e-9)
        report.splink["speedup_vs_whole_run"] = report.splink["linking_seconds"] / max(report.stage_seconds, 1e-9)
    if incremental:
        report.incremental = _incremental_nights(data_dir, work, repeats, report.stage_seconds)
        # the same files resolved in full from scratch: what did resolving the change alone cost in accuracy?
        reference = work_root / f"p{persons}-s{seed}-full-after-change"
        shutil.rmtree(reference, ignore_errors=True)
        _child(["measure", str(data_dir), str(reference), "no-quality"])
        report.incremental["vs_full"] = compare_resolutions(work / "aidleads.duckdb", reference / "aidleads.duckdb")
    if prefect:
        report.prefect = _prefect_run(data_dir, work_root / f"p{persons}-s{seed}-prefect", report.process_seconds)
    return report


def _incremental_nights(data_dir: Path, work: Path, repeats: int, full_seconds: float) -> dict[str, Any]:
    """The night after the full run, with one file re-sent, `repeats` times from the same starting state (the
    full run's work folder, restored before each): medians per stage and of the whole, and its share of the
    full run. The work folder is left as the last night made it."""
    changed = replace_one_file(data_dir)
    before = work.with_name(work.name + "-before-change")
    shutil.rmtree(before, ignore_errors=True)
    shutil.copytree(work, before)
    nights = []
    for i in range(repeats):
        if i:
            shutil.rmtree(work)
            shutil.copytree(before, work)
        nights.append(_child(["measure", str(data_dir), str(work), "no-quality"]))
    shutil.rmtree(before)
    seconds = statistics.median(n["stage_seconds"] for n in nights)
    stages = [{**fig, "seconds": statistics.median(n["stages"][k]["seconds"] for n in nights)}
              for k, fig in enumerate(nights[0]["stages"])]
    return {"changed_file": changed, "stage_seconds": seconds, "stage_seconds_all": [round(n["stage_seconds"], 2)
                                                                                   for n in nights],
            "ratio_to_full": seconds / max(full_seconds, 1e-9), "stages": stages}


def compare_resolutions(mine: Path, theirs: Path) -> dict[str, int]:
    """Two resolutions of the same files, compared by record key: records whose person differs, links
    (pair and method) found by one only."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{mine}' AS a (READ_ONLY); ATTACH '{theirs}' AS b (READ_ONLY)")
        # each record with the smallest key of its person: persons compared as groups of records, not by id
        members = """SELECT r.record_key, min(r.record_key) OVER (PARTITION BY m.person_id) AS person_id
                     FROM {db}.person_members m JOIN {db}.person_records r USING (record_id)"""
        links = """SELECT least(x.record_key, y.record_key) AS k1, greatest(x.record_key, y.record_key) AS k2, l.method
                   FROM {db}.links l JOIN {db}.person_records x ON x.record_id = l.record_id_l
                   JOIN {db}.person_records y ON y.record_id = l.record_id_r"""
        row = con.execute(f"""
            SELECT (SELECT count(*) FROM ({members.format(db='a')})),
                   (SELECT count(*) FROM ({members.format(db='a')}) a FULL JOIN ({members.format(db='b')}) b
                      USING (record_key) WHERE a.person_id IS DISTINCT FROM b.person_id),
                   (SELECT count(*) FROM ({links.format(db='a')} EXCEPT {links.format(db='b')})),
                   (SELECT count(*) FROM ({links.format(db='b')} EXCEPT {links.format(db='a')}))""").fetchall()[0]
    finally:
        con.close()
    return {"records": row[0], "records_in_another_person": row[1], "links_only_incremental": row[2],
            "links_only_full": row[3]}


def _prefect_run(data_dir: Path, work: Path, process_seconds: float) -> dict[str, Any]:
    """The same night through the real Prefect flow (`aidleads run`): its wall time minus ours is orchestration."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = work / "bench.toml"
    lines = [f'[paths]\nwork_dir = "{work}"\n'] + [f'[sources.{s}]\npath = "{data_dir / s}"\n' for s in SOURCES]
    config.write_text("\n".join(lines), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from pipeline.cli import entry; entry()", "run", "--config", str(config)],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return {"wall_seconds": wall, "orchestration_seconds": max(wall - process_seconds, 0.0)}


def _main(argv: list[str]) -> None:
    step = argv[0]
    if step == "generate":
        from data_samples.generator import generate

        generate(int(argv[1]), int(argv[2]), Path(argv[3]))
        print(json.dumps({"ok": True}))
    elif step == "measure":
        figures = measure_run(Path(argv[1]), Path(argv[2]), with_quality=argv[3] == "quality")
        print(json.dumps(asdict(figures)))
    elif step == "splink":
        print(json.dumps(measure_splink(Path(argv[1]), Path(argv[2]), int(argv[3]))))
    else:
        raise SystemExit(f"unknown benchmark step {step}")


if __name__ == "__main__":
    _main(sys.argv[1:])
