"""The `aidleads` command."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from importlib import metadata, resources
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from pipeline.errors import AidLeadsError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a traceback with locals would print victims' data to the terminal
    help="司法救助线索发现 — judicial-aid lead discovery.",
)
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

DEFAULT_CONFIG = Path("aidleads.toml")


def _prefect_defaults(work_dir: Path | None = None) -> None:
    """Quiet, offline-friendly Prefect settings unless the user set their own."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")
    if work_dir is not None and "PREFECT_HOME" not in os.environ and "PREFECT_API_URL" not in os.environ:
        home = (work_dir / "prefect").resolve()
        home.mkdir(parents=True, exist_ok=True)  # prefect cannot start its database in a missing folder
        os.environ["PREFECT_HOME"] = str(home)


@contextmanager
def _opened(config_file: Path, *, write: bool = False) -> Iterator[tuple[Any, Any]]:
    """(config, connection) for a command; a writing command also holds the run lock, because a
    nightly run in progress would overwrite its change when that run publishes."""
    from pipeline.lock import run_lock
    from pipeline.store import open_database
    from schemas.config import load_config

    cfg = load_config(config_file)
    with run_lock(cfg.work_dir) if write else nullcontext():
        con = open_database(cfg.database_path, read_only=not write)
        try:
            yield cfg, con
        finally:
            con.close()


def _fail(exc: BaseException) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _version(value: bool) -> None:
    if value:
        out.print(f"aidleads {metadata.version('aidleads')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Show the version and exit.")] = None,
) -> None:
    """司法救助线索发现: cross-compare victim records with other agencies' rolls and rank aid leads."""


def _run_flow(config_file: Path) -> dict[str, Any]:
    from schemas.config import load_config

    config = load_config(config_file)
    _prefect_defaults(config.work_dir)
    from flows.nightly import nightly_flow

    err.print("[dim]starting the Prefect flow (the local orchestration server takes a few seconds)…[/]")
    return nightly_flow(config_file=str(config_file.resolve()))


def _print_result(config_file: Path, result: dict[str, Any]) -> None:
    from pipeline.run import run_summary
    from pipeline.store import open_database
    from schemas.config import load_config

    config = load_config(config_file)
    summary = run_summary(config, result["run_id"])
    table = Table(title=f"运行汇总 run {result['run_id']}")
    for col in ("来源", "入库行", "隔离行", "人员记录", "与被害人关联"):
        table.add_column(col, justify="right" if col != "来源" else "left")
    for source, c in summary["sources"].items():
        table.add_row(source, str(c["rows"]), str(c["quarantined"]), str(c["records"]), str(c["linked_to_victims"]))
    out.print(table)
    links = ", ".join(f"{k} {v}" for k, v in sorted(summary["links"].items())) or "0"
    out.print(f"关联 links: {links};  人员 persons: {summary.get('persons', 0)}")
    tiers = "  ".join(f"{t}级 {summary['leads'].get(t, 0)}" for t in "ABC")
    changes = "  ".join(f"{k} {v}" for k, v in sorted(summary["changes"].items()) if v)
    out.print(f"线索 leads: {tiers}   ({changes})")
    con = open_database(config.database_path, read_only=True)
    try:
        rejected = con.execute("SELECT error FROM ingested_files WHERE run_id = ? AND error IS NOT NULL",
                               [result["run_id"]]).fetchall()
    finally:
        con.close()
    for (message,) in rejected:
        err.print(f"[yellow]file problem:[/] {message}", highlight=False, soft_wrap=True)
    folder = Path(result["exports"])
    out.print(f"\n导出 exports: {folder}")
    for name in ("leads.xlsx", "leads.csv", "leads.parquet", "data_quality.xlsx", "data_quality.html"):
        out.print(f"  {folder / name}")
    out.print(f"数据库 database: {config.database_path}")


@app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = DEFAULT_CONFIG,
) -> None:
    """Run the nightly job on the configured sources."""
    try:
        result = _run_flow(config)
        _print_result(config, result)
    except AidLeadsError as exc:
        _fail(exc)


@app.command()
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = DEFAULT_CONFIG,
) -> None:
    """Schedule the nightly job on a running Prefect server ([schedule] cron and timezone) and run it until stopped."""
    _prefect_defaults()  # no work-folder PREFECT_HOME: serve talks to the server named by PREFECT_API_URL
    from flows.serve import serve_nightly

    try:
        serve_nightly(config)
    except AidLeadsError as exc:
        _fail(exc)


def _write_demo_config(work: Path, sample: Path) -> Path:
    text = resources.files("data_samples").joinpath("demo.toml").read_text(encoding="utf-8")
    config_file = work / "aidleads.toml"
    config_file.write_text(text.replace("@SAMPLE@", sample.as_posix()), encoding="utf-8")
    return config_file


@app.command()
def demo(
    work: Annotated[Path, typer.Option("--work", "-w", help="Work folder to create (replaced if it exists).")] = Path("aidleads-demo"),
) -> None:
    """Run the whole job on the bundled sample data in a fresh work folder."""
    sample = Path(str(resources.files("data_samples").joinpath("county")))
    if not (sample / "victims").is_dir():
        _fail(AidLeadsError(f"bundled sample data not found at {sample}", hint="reinstall aidleads from the repository"))
    try:
        if work.exists() and any(work.iterdir()):
            if not (work / "aidleads.toml").exists():
                raise AidLeadsError(f"{work} exists and is not an aidleads demo folder; refusing to replace it",
                                    hint="pass --work with a new or previous demo folder")
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        config_file = _write_demo_config(work.resolve(), sample)
        result = _run_flow(config_file)
        _print_result(config_file, result)
        out.print(f"\n配置 config: {config_file}   (rerun: aidleads run -c {config_file})")
    except AidLeadsError as exc:
        _fail(exc)


@app.command()
def sample(
    persons: Annotated[int, typer.Option("--persons", "-n", min=100, help="Population size to generate.")] = 20000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Random seed (same seed, same files).")] = 1,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write to.")] = Path("sample-data"),
) -> None:
    """Generate a synthetic county: the five sources with realistic dirt, plus ground truth in truth/."""
    from data_samples.generator import generate

    with err.status(f"generating {persons:,} persons…"):
        counts = generate(persons, seed, out_dir)
    table = Table(title=f"sample written to {out_dir}")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(str(name), str(n))
    out.print(table)


@app.command()
def leads(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = DEFAULT_CONFIG,
    top: Annotated[int, typer.Option("--top", "-n", help="How many leads to show.")] = 20,
    run_id: Annotated[Optional[str], typer.Option("--run", help="A run id (default: the latest succeeded run).")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only assigned leads past the working-day deadline.")] = False,
) -> None:
    """Show the top leads of a run in the terminal (masked IDs), or the overdue ones."""
    from pipeline.run import leads_frame
    from schemas.config import load_config

    if overdue:
        _print_overdue(config)
        return
    try:
        frame = leads_frame(load_config(config), run_id)
    except AidLeadsError as exc:
        _fail(exc)
    if frame.height == 0:
        out.print("no leads yet — run `aidleads run` first")
        return
    table = Table(title=f"线索 top {min(top, frame.height)} of {frame.height}", show_lines=True)
    for col, label in (("rank", "#"), ("tier", "级"), ("score", "分"), ("change", "变化"), ("lead_id", "线索编号"),
                       ("subject_name", "对象"), ("id_masked", "身份证号"), ("case_no", "案号"), ("reasons", "理由")):
        table.add_column(label, overflow="fold", max_width=60 if col == "reasons" else None)
    for row in frame.head(top).iter_rows(named=True):
        table.add_row(*[str(row[c]) for c in ("rank", "tier", "score", "change", "lead_id", "subject_name",
                                             "id_masked", "case_no", "reasons")])
    out.print(table)


def _print_overdue(config_file: Path) -> None:
    from pipeline.lifecycle import overdue_leads

    try:
        with _opened(config_file) as (cfg, con):
            rows = overdue_leads(con, cfg.lifecycle.deadline_working_days)
    except AidLeadsError as exc:
        _fail(exc)
    if not rows:
        out.print(f"no lead is past the {cfg.lifecycle.deadline_working_days}-working-day deadline")
        return
    table = Table(title=f"超期线索 (> {cfg.lifecycle.deadline_working_days} 个工作日)")
    for label in ("线索编号", "级", "状态", "承办人", "分派日期", "已用工作日", "对象", "案号"):
        table.add_column(label)
    for r in rows:
        table.add_row(r["lead_id"], r["tier"], r["status"], r["by"] or "", str(r["assigned"]), str(r["working_days"]),
                      r["subject_name"] or "", r["case_no"])
    out.print(table)


@app.command()
def status(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = DEFAULT_CONFIG,
    runs: Annotated[int, typer.Option("--runs", "-n", help="How many recent runs to show.")] = 5,
) -> None:
    """Recent runs, files in force, quarantine, and open / overdue leads (counts only)."""
    from pipeline.lifecycle import overdue_leads

    try:
        with _opened(config) as (cfg, con):
            recent = con.execute(
                """SELECT r.run_id, r.started_at, r.finished_at, r.status, coalesce(r.message, ''),
                          (SELECT coalesce(sum(value), 0) FROM run_counts c WHERE c.run_id = r.run_id AND c.metric = 'rows_loaded'),
                          (SELECT coalesce(sum(value), 0) FROM run_counts c WHERE c.run_id = r.run_id AND c.metric = 'leads')
                   FROM runs r ORDER BY r.run_id DESC LIMIT ?""", [runs]).fetchall()
            files = con.execute(
                """SELECT source, status, count(*), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0)
                   FROM ingested_files GROUP BY ALL ORDER BY 1, 2""").fetchall()
            leads_by_status = con.execute("SELECT status, count(*) FROM leads GROUP BY 1 ORDER BY 1").fetchall()
            late = overdue_leads(con, cfg.lifecycle.deadline_working_days)
    except AidLeadsError as exc:
        _fail(exc)
    table = Table(title="最近运行 recent runs")
    for col in ("run", "started (UTC)", "finished (UTC)", "outcome", "rows loaded", "leads", "message"):
        table.add_column(col)
    for run_id, started, finished, outcome, message, rows, n_leads in recent:
        table.add_row(run_id, str(started)[:19], str(finished or "")[:19], outcome, str(rows), str(n_leads), message)
    out.print(table)
    table = Table(title="文件 files")
    for col in ("source", "status", "files", "rows loaded", "rows quarantined"):
        table.add_column(col)
    for row in files:
        table.add_row(*[str(v) for v in row])
    out.print(table)
    open_count = sum(n for s, n in leads_by_status if s not in ("aided", "not_eligible", "referred", "closed"))
    out.print("线索 leads: " + "  ".join(f"{s} {n}" for s, n in leads_by_status)
              + f"   open {open_count}, overdue {len(late)} (> {cfg.lifecycle.deadline_working_days} working days)")


@app.command("export")
def export_run(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = DEFAULT_CONFIG,
    run_id: Annotated[Optional[str], typer.Option("--run", help="A run id (default: the latest succeeded run).")] = None,
    unmask: Annotated[bool, typer.Option("--unmask", help="Write full ID numbers and phones (needs --reason).")] = False,
    reason: Annotated[Optional[str], typer.Option("--reason", help="Why unmasking is needed (kept in the audit).")] = None,
    password_env: Annotated[Optional[str], typer.Option(
        "--password-env", help="Name of an environment variable holding a password for leads.xlsx.")] = None,
) -> None:
    """Export a run's lead list again into a new folder (masked unless --unmask --reason), audited."""
    from pipeline.export import xlsx_password
    from pipeline.reexport import export_past_run

    try:
        if unmask and not (reason and reason.strip()):
            raise AidLeadsError("--unmask needs a non-empty --reason",
                                hint='e.g. --unmask --reason "核查需要，承办人张检察官"; the reason is kept in the exports audit')
        if reason and not unmask:
            raise AidLeadsError("--reason is only used with --unmask", hint="add --unmask, or drop --reason for a masked export")
        with _opened(config, write=True) as (cfg, con):
            password = xlsx_password(cfg, password_env)
            done = export_past_run(con, cfg, run_id, unmask_reason=reason if unmask else None, password=password)
    except AidLeadsError as exc:
        _fail(exc)
    kind = "unmasked (full ID numbers and phones)" if not done.masked else "masked"
    out.print(f"run {done.run_id}: {done.files.rows} leads exported, {kind}"
              + (", leads.xlsx password-protected" if done.files.encrypted else ""))
    for path in (done.files.xlsx, done.files.csv, done.files.parquet):
        out.print(f"  {path}")


@app.command("exports")
def exports_audit(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = DEFAULT_CONFIG,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many audit rows to show.")] = 20,
) -> None:
    """The export audit: who exported which file when, masked or not, and why (most recent first)."""
    from pipeline.reexport import export_audit

    try:
        with _opened(config) as (_, con):
            frame = export_audit(con, limit)
    except AidLeadsError as exc:
        _fail(exc)
    if frame.height == 0:
        out.print("no exports recorded yet")
        return
    table = Table(title=f"导出记录 exports (latest {frame.height})")
    for label in ("time (UTC)", "OS user", "run", "kind", "rows", "masked", "encrypted", "reason", "file"):
        table.add_column(label, overflow="fold")
    yes_no = {True: "yes", False: "no", None: ""}
    for r in frame.iter_rows(named=True):
        table.add_row(str(r["exported_at"])[:19], r["os_user"] or "", r["run_id"], r["kind"], str(r["rows"]),
                      yes_no[r["masked"]], yes_no[r["encrypted"]], r["reason"] or "", r["path"])
    out.print(table)


lead_app = typer.Typer(help="Record what happened to a lead (status, outcome import).", no_args_is_help=True)
app.add_typer(lead_app, name="lead")


@lead_app.command("set")
def lead_set(
    lead_id: Annotated[str, typer.Argument(help="The lead id (线索编号).")],
    status: Annotated[str, typer.Option("--status", "-s", help="assigned / verifying / aided / not_eligible / referred / closed (or the Chinese label).")],
    by: Annotated[Optional[str], typer.Option("--by", help="Who (承办人).")] = None,
    note: Annotated[Optional[str], typer.Option("--note", help="A note (处理备注).")] = None,
    amount: Annotated[Optional[float], typer.Option("--amount", help="Aid paid (元), with --status aided.")] = None,
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = DEFAULT_CONFIG,
) -> None:
    """Set a lead's status."""
    from pipeline.lifecycle import STATUS_ZH, set_status

    try:
        with _opened(config, write=True) as (_, con):
            set_status(con, lead_id, status, by=by, note=note, amount=amount)
            now = con.execute("SELECT status FROM leads WHERE lead_id = ?", [lead_id]).fetchall()[0][0]
    except AidLeadsError as exc:
        _fail(exc)
    out.print(f"{lead_id}: {STATUS_ZH[now]} ({now})")


@lead_app.command("sheet")
def lead_sheet(
    lead_id: Annotated[str, typer.Argument(help="The lead id (线索编号).")],
    output: Annotated[Optional[Path], typer.Option("--out", "-o", help="File to write (default: <exports>/sheets/<id>.xlsx).")] = None,
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = DEFAULT_CONFIG,
) -> None:
    """Write a printable one-page verification sheet (线索核查单) for a lead."""
    from pipeline.verification_sheet import write_verification_sheet

    try:
        with _opened(config) as (cfg, con):
            path = write_verification_sheet(con, lead_id, output or cfg.exports_dir / "sheets" / f"{lead_id}.xlsx")
    except AidLeadsError as exc:
        _fail(exc)
    out.print(str(path))


@lead_app.command("import")
def lead_import(
    workbook: Annotated[Path, typer.Argument(help="A returned leads.xlsx with the 处理结果 column filled in.")],
    by: Annotated[Optional[str], typer.Option("--by", help="Who returned it.")] = None,
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = DEFAULT_CONFIG,
) -> None:
    """Apply the outcomes prosecutors wrote into a returned leads.xlsx."""
    from pipeline.lifecycle import import_outcomes

    try:
        with _opened(config, write=True) as (_, con):
            report = import_outcomes(con, workbook, by=by)
    except AidLeadsError as exc:
        _fail(exc)
    out.print(f"updated {report.updated} leads, {report.unchanged} already had that status")
    for problem in report.problems:
        err.print(f"[yellow]skipped:[/] {problem}", highlight=False)


@app.command()
def report(
    quarter: Annotated[str, typer.Option("--quarter", "-q", help="The quarter, e.g. 2026Q3.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = DEFAULT_CONFIG,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder (default: <exports>/reports).")] = None,
) -> None:
    """Quarterly figures (每季度通报): found, verified, aided, amounts — XLSX, PNG chart and HTML."""
    from pipeline.report import parse_quarter, write_quarterly_report

    try:
        q = parse_quarter(quarter)
        with _opened(config) as (cfg, con):
            paths = write_quarterly_report(con, q, out_dir or cfg.exports_dir / "reports")
    except AidLeadsError as exc:
        _fail(exc)
    for path in paths.values():
        out.print(str(path))


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = DEFAULT_CONFIG,
    limit: Annotated[int, typer.Option("--limit", help="Rows to print at most.")] = 50,
    output: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write all rows to .csv or .parquet instead.")] = None,
) -> None:
    """Run a read-only query against the database and print a table (or write CSV/Parquet)."""
    import duckdb

    from pipeline.store import open_database, query_frame
    from schemas.config import load_config

    try:
        con = open_database(load_config(config).database_path, read_only=True)
    except AidLeadsError as exc:
        _fail(exc)
    try:
        frame = query_frame(con, query)
    except duckdb.Error as exc:
        _fail(AidLeadsError(f"query failed: {str(exc).splitlines()[0]}"))
    finally:
        con.close()
    if output is not None:
        if output.suffix.lower() == ".parquet":
            frame.write_parquet(output)
        else:
            frame.write_csv(output, include_bom=True)
        out.print(f"{frame.height} rows written to {output}")
        return
    table = Table(show_lines=False)
    for col in frame.columns:
        table.add_column(col, overflow="fold")
    for row in frame.head(limit).iter_rows():
        table.add_row(*["" if v is None else str(v) for v in row])
    out.print(table)
    if frame.height > limit:
        out.print(f"({frame.height} rows, {limit} shown; --limit or --out for more)")


@app.command("id-hash")
def id_hash(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = DEFAULT_CONFIG,
) -> None:
    """Print the id_hmac of ID numbers read from standard input (one a line; typed hidden at a terminal),
    to find a person in the analyst views. Needs the work folder's .id_key: for the data officer, not analysts."""
    from matchers.idnumber import parse_id
    from pipeline.persons import id_hmac, id_key
    from schemas.config import load_config

    try:
        key = id_key(load_config(config).work_dir, create=False)
    except AidLeadsError as exc:
        _fail(exc)
    # read, never taken as an argument: an ID number on the command line would stay in the shell history
    lines = [typer.prompt("身份证号", hide_input=True)] if sys.stdin.isatty() else sys.stdin.read().splitlines()
    for line in lines:
        if line.strip():
            out.print(id_hmac(parse_id(line.strip()).id18, key) or "(not a valid ID number)", highlight=False)


@app.command()
def bench(
    persons: Annotated[int, typer.Option("--persons", "-n", min=500, help="Population of the generated area "
                                         "(county 300000, province 5000000).")] = 300_000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Generator seed.")] = 1,
    vs: Annotated[Optional[str], typer.Option("--vs", help="Also run a baseline on the same data: 'splink'.")] = None,
    repeat: Annotated[int, typer.Option("--repeat", "-r", min=1, help="Full runs to take the median of.")] = 3,
    incremental: Annotated[bool, typer.Option("--incremental", help="Then a night with one changed file.")] = False,
    prefect: Annotated[bool, typer.Option("--prefect", help="Also time the real Prefect flow (orchestration).")] = False,
    data_root: Annotated[Path, typer.Option("--data", help="Where generated data is kept, by size and seed.")] = Path("bench-data"),
    work_root: Annotated[Path, typer.Option("--work", help="Scratch folder for the runs (replaced).")] = Path("bench-work"),
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the figures as JSON here.")] = None,
) -> None:
    """Benchmark the nightly run on generated data: seconds, rows, pairs and peak memory per stage."""
    from pipeline.bench import run_bench

    if vs not in (None, "splink"):
        _fail(AidLeadsError(f"unknown baseline '{vs}'", hint="the baseline available is --vs splink"))
    with err.status(f"benchmarking {persons:,} persons (seed {seed}, {repeat} run(s)) …"):
        report = run_bench(persons, seed, data_root=data_root, work_root=work_root, repeats=repeat,
                           vs_splink=vs == "splink", incremental=incremental, prefect=prefect)
    _print_bench(report)
    path = json_out or work_root / f"bench-p{persons}-s{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.to_json(), encoding="utf-8")
    out.print(f"figures written to {path}")


def _print_bench(report: Any) -> None:
    def n(v: Any) -> str:
        return "–" if v is None else f"{v:,}"

    table = Table(title=f"aidleads bench — {report.persons:,} persons, {report.records:,} person records, "
                        f"median of {report.repeats} run(s)")
    for col in ("stage", "seconds", "rows in", "rows out", "pairs", "peak RSS MB"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for s in report.stages:
        table.add_row(s["stage"], f"{s['seconds']:.2f}", n(s["rows_in"]), n(s["rows_out"]), n(s["pairs"]),
                      f"{s['peak_rss_mb']:,.0f}")
    table.add_row("[bold]whole run", f"{report.stage_seconds:.2f}", "", "", "", f"{report.peak_rss_mb:,.0f}")
    out.print(table)
    out.print(f"runs: {', '.join(f'{s:.2f}' for s in report.stage_seconds_all)} s (stages only); process incl. "
              f"Python start-up and imports {report.process_seconds:.2f} s; peak memory {report.peak_rss_mb / 1024:.2f} GiB")
    out.print(f"candidate pairs per record: {report.pairs_per_record:.2f}")
    q = report.quality
    if q:
        out.print(f"ours: P {q['precision']:.4f}  R {q['recall']:.4f}  F1 {q['f1']:.4f}  false pairs {q['false_pairs']}"
                  f"  same-name false pairs {q['same_name_false_pairs']}")
    if report.splink:
        s = report.splink
        out.print(f"splink: P {s['precision']:.4f}  R {s['recall']:.4f}  F1 {s['f1']:.4f}  false pairs {s['false_pairs']}"
                  f"  same-name false pairs {s['same_name_false_pairs']}  linking {s['linking_seconds']:.1f} s, "
                  f"peak {s['peak_rss_mb']:,.0f} MB")
        out.print(f"speed: splink linking / our linking (block+compare+cluster) = {s['speedup_vs_linking']:.1f}×; "
                  f"splink linking / our whole run = {s['speedup_vs_whole_run']:.1f}×")
    if report.incremental:
        i = report.incremental
        runs = ", ".join(f"{x:.2f}" for x in i.get("stage_seconds_all", []))
        out.print(f"incremental night ({i['changed_file']}): {i['stage_seconds']:.2f} s = "
                  f"{100 * i['ratio_to_full']:.1f}% of the full run (median; nights {runs} s)")
        out.print("  per stage: " + ", ".join(f"{st['stage']} {st['seconds']:.2f} s" for st in i["stages"]))
        if "vs_full" in i:
            v = i["vs_full"]
            out.print(f"  against a full run on the same files: {v['records_in_another_person']:,} of {v['records']:,} "
                      f"records in another person; links found by one only: {v['links_only_incremental']:,} "
                      f"(incremental) / {v['links_only_full']:,} (full)")
    if report.prefect:
        p = report.prefect
        if "error" in p:
            out.print(f"prefect run failed: {p['error']}")
        else:
            out.print(f"through the Prefect flow: {p['wall_seconds']:.1f} s wall; orchestration and start-up "
                      f"{p['orchestration_seconds']:.1f} s")


@app.command("eval")
def evaluate(
    persons: Annotated[int, typer.Option("--persons", "-n", min=500, help="Population of the generated county.")] = 300_000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Generator seed.")] = 1,
    data: Annotated[Optional[Path], typer.Option("--data", help="Generated data folder (reused when it exists).")] = None,
    work: Annotated[Path, typer.Option("--work", help="Scratch work folder (replaced).")] = Path("eval-work"),
    splink: Annotated[bool, typer.Option("--splink/--no-splink", help="Also run Splink on the same records.")] = True,
    splink_tuned: Annotated[bool, typer.Option("--splink-tuned", help="Also run Splink tuned for Chinese IDs.")] = False,
    show: Annotated[int, typer.Option("--show", help="False links to list at most.")] = 50,
) -> None:
    """Measure person resolution against generated ground truth (precision, recall, F1 per source pair)."""
    from pipeline.evaluate import run_evaluation

    data_dir = data or Path("eval-data") / f"p{persons}-s{seed}"
    with err.status(f"evaluating on {persons:,} persons (seed {seed}) …"):
        report = run_evaluation(persons, seed, data_dir, work, splink=splink, splink_tuned=splink_tuned)
    _print_eval(report, show)


def _print_eval(report: Any, show: int) -> None:
    table = Table(title=f"link quality — {report.persons:,} persons, seed {report.seed}, {report.records:,} person records")
    for col in ("source pair", "true pairs", "ours P", "ours R", "ours F1", "ours FP", "splink P", "splink R", "splink F1", "splink FP"):
        table.add_column(col, justify="left" if col == "source pair" else "right")
    theirs = {}
    if report.splink is not None:
        theirs = {(r["source_a"], r["source_b"]): r for r in report.splink.table.iter_rows(named=True)}
    for r in report.ours.table.iter_rows(named=True):
        s = theirs.get((r["source_a"], r["source_b"]))
        table.add_row(f"{r['source_a']} × {r['source_b']}", str(r["tp"] + r["fn"]), f"{r['precision']:.4f}",
                      f"{r['recall']:.4f}", f"{r['f1']:.4f}", str(r["fp"]),
                      *([f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1']:.4f}", str(s["fp"])] if s else ["–"] * 4))
    o = report.ours.overall
    s = report.splink.overall if report.splink is not None else None
    table.add_row("[bold]all pairs", str(o["tp"] + o["fn"]), f"{o['precision']:.4f}", f"{o['recall']:.4f}", f"{o['f1']:.4f}",
                  str(o["fp"]), *([f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1']:.4f}", str(s["fp"])] if s else ["–"] * 4))
    out.print(table)
    if report.splink_tuned is not None:
        t = report.splink_tuned.overall
        out.print(f"splink tuned (valid-ID-aware ID levels, + name×phone and name×address blocking): "
                  f"P {t['precision']:.4f}  R {t['recall']:.4f}  F1 {t['f1']:.4f}  FP {t['fp']}  "
                  f"same-name FP {t['same_name_false_pairs']}  {report.splink_tuned_seconds:.1f} s")
    out.print(f"same-name false pairs: ours {o['same_name_false_pairs']}"
              + (f", splink {s['same_name_false_pairs']}" if s else ""))
    out.print(f"links joining two different valid IDs without the typo rule: {report.id_conflicts}")
    out.print(f"lead recall: {report.leads_found} of {report.leads_expected} uncompensated victims with a hit elsewhere")
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    out.print(f"our stages: {timing}" + (f"; splink linking {report.splink_seconds:.1f} s" if report.splink_seconds else ""))
    if report.splink_error:
        out.print(f"splink not run: {report.splink_error}")
    false_direct = report.false_direct
    out.print(f"direct false links: {false_direct.height}")
    for r in false_direct.head(show).iter_rows(named=True):
        out.print(f"  {r['left_row']} ↔ {r['right_row']}  {r['method']} p={r['match_probability']:.4f}  {r['evidence_zh']}")


def entry() -> None:
    """Console entry point: every failure is one line and a non-zero exit (AIDLEADS_DEBUG=1 for a traceback)."""
    try:
        app()
    except AidLeadsError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("AIDLEADS_DEBUG"):
            raise
        # only the exception type and its first line: library messages may quote data values
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        err.print(f"[bold red]error:[/] unexpected {type(exc).__name__}: {first} "
                  "(set AIDLEADS_DEBUG=1 for details)", highlight=False, soft_wrap=True)
        sys.exit(1)
