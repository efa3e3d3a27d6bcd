"""Lead lifecycle across runs: stable lead ids, new / changed / unchanged flags, outcomes, deadlines.

A lead's status moves new → assigned → verifying → aided / not eligible / referred → closed, set with
`aidleads lead set` or by importing a returned leads.xlsx whose 处理结果 column was filled in. Every
change is kept in `lead_events`. A closed lead is not listed again unless its evidence changes; then
it is listed again as changed, with what changed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipeline.errors import AidLeadsError, SourceFormatError
from pipeline.store import query_frame, registered, transaction
from pipeline.values import ValueParseError, parse_amount

__all__ = [
    "apply_lifecycle", "set_status", "import_outcomes", "overdue_leads", "working_days_between",
    "CLOSED_STATUSES", "STATUSES", "STATUS_ZH", "LeadNotFoundError", "ImportReport",
]

STATUSES = ("new", "assigned", "verifying", "aided", "not_eligible", "referred", "closed")
CLOSED_STATUSES = frozenset({"aided", "not_eligible", "referred", "closed"})
STATUS_ZH = {"new": "待分派", "assigned": "已分派", "verifying": "核查中", "aided": "已救助",
             "not_eligible": "不符合条件", "referred": "已移送", "closed": "已办结"}
_FROM_ZH = {v: k for k, v in STATUS_ZH.items()} | {"已核实": "verifying", "移送": "referred", "办结": "closed",
                                                    "救助": "aided", "不符合": "not_eligible"}

_HISTORY_COLUMNS = ["subject_name", "id_masked", "phone", "address", "victim_name", "charge", "injury",
                    "incident_date", "unit", "reasons", "evidence", "source_rows", "referrals", "aid_estimate",
                    "sources_hit", "priority_groups"]


class LeadNotFoundError(AidLeadsError):
    """No lead has this id."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _change_detail(old: str | None, new: str) -> str:
    before = set((old or "").split("；")) - {""}
    after = set(new.split("；")) - {""}
    added = [r for r in new.split("；") if r and r not in before]
    gone = [r for r in (old or "").split("；") if r and r not in after]
    parts = ([f"新增：{'；'.join(added)}"] if added else []) + ([f"不再出现：{'；'.join(gone)}"] if gone else [])
    return " | ".join(parts)


_RESCORED = ["score", "tier", "fingerprint", "reasons", "subject_person_id", "victim_person_id", "subject_role"]
"""the columns of `leads` a run takes from its scored leads, besides last_run_id and change"""


def _differs(column: str) -> pl.Expr:
    """True where this run's value of a `leads` column is not the stored one (`_old_<column>`), as storage sees it.

    Scores are compared by their text: IEEE equality calls 0.0 and -0.0 equal, the stored bits do not.
    """
    new, old = pl.col(column), pl.col(f"_old_{column}")
    if column == "score":
        new, old = new.cast(pl.String), old.cast(pl.String)
    return new.ne_missing(old)


def _run_over(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame, rows: pl.Expr, columns: list[str],
              statement: str, params: dict[str, object] | None = None) -> None:
    """Run one statement over the `rows` of `frame`, registered as `name` with only `columns`; a statement with no
    rows to read is not run at all."""
    part = frame.lazy().filter(rows).select(columns).collect()
    if part.height == 0:
        return
    with registered(con, **{name: part}):
        con.execute(statement, params or {})


def apply_lifecycle(con: duckdb.DuckDBPyConnection, leads: pl.DataFrame, run_id: str) -> dict[str, int]:
    """Merge this run's scored leads into `leads` and write this run's ranked list to `lead_history`.

    A closed lead whose evidence did not change is not listed again; one with new evidence is
    listed as 'changed' with what changed, and its status goes back to new (the reopening is kept in
    lead_events). Returns counts by tier and by change. Set-based: a province's leads merge in one
    statement per kind of change, not one per lead.

    Most of a province's leads are listed again unchanged. Every listed lead gets this run's id in
    last_run_id, but its other columns are written only to the rows where they differ from what is
    stored: DuckDB rewrites every column an UPDATE names for every row it touches, and one UPDATE of
    nine columns over all ~19,000 listed leads took about twice as long as these narrow ones together.
    The ranked list goes into lead_history in the frame's order, which is already rank order: an
    ORDER BY there sorted ~19,000 wide rows again, about a tenth of the merge.
    """
    known = query_frame(
        con, "SELECT lead_id, status AS _old_status, change AS _old_change, "
             + ", ".join(f"{c} AS _old_{c}" for c in _RESCORED) + " FROM leads")
    closed = pl.col("_old_status").is_in(list(CLOSED_STATUSES))
    frame = (
        leads.join(known, on="lead_id", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("_old_fingerprint").is_null()).then(pl.lit("new"))
            .when(pl.col("_old_fingerprint") == pl.col("fingerprint")).then(pl.lit("unchanged"))
            .otherwise(pl.lit("changed")).alias("change"))
        .filter(~((pl.col("change") == "unchanged") & closed))  # handled, and nothing new: not raised again
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("rank"))
    )
    changed = frame.lazy().filter(pl.col("change") == "changed").select("rank", "_old_reasons", "reasons").collect()
    details = [_change_detail(old, new) for old, new in zip(changed["_old_reasons"].to_list(),
                                                             changed["reasons"].to_list(), strict=True)]
    listed_before = pl.col("change") != "new"
    frame = frame.with_columns(
        pl.repeat("", frame.height, dtype=pl.String, eager=True).scatter(changed["rank"] - 1, details)
        .alias("change_detail"),
        (pl.col("change") == "changed").and_(closed).fill_null(False).alias("_reopen"),
        (listed_before & _differs("change")).alias("_moved"),
        (listed_before & pl.any_horizontal(_differs(c) for c in _RESCORED)).alias("_rescored"),
    )
    now = _now()
    with transaction(con):
        con.execute("DELETE FROM lead_history WHERE run_id = ?", [run_id])
        _run_over(con, "_new_leads", frame, pl.col("change") == "new",
                  ["lead_id", "case_no", "subject_person_id", "victim_person_id", "subject_role", "score", "tier",
                   "fingerprint", "reasons"],
                  """INSERT INTO leads (lead_id, case_no, subject_person_id, victim_person_id, subject_role,
                         first_run_id, last_run_id, score, tier, fingerprint, change, status, status_at, reasons)
                     SELECT lead_id, case_no, subject_person_id, victim_person_id, subject_role, $run, $run, score,
                            tier, fingerprint, 'new', 'new', $now, reasons
                     FROM _new_leads""", {"run": run_id, "now": now})
        # new evidence on a handled lead: raise it again, and say why in its events
        _run_over(con, "_reopened", frame, pl.col("_reopen"), ["lead_id", "change_detail"],
                  """INSERT INTO lead_events (lead_id, event_at, status, by_whom, note, origin, amount)
                     SELECT lead_id, $now, 'new', NULL, '新证据重新提示（' || left(change_detail, 200) || '）', 'run',
                            NULL
                     FROM _reopened""", {"now": now})
        _run_over(con, "_reopened", frame, pl.col("_reopen"), ["lead_id"],
                  """UPDATE leads SET status = 'new', status_at = $now, status_by = NULL
                     FROM _reopened r WHERE leads.lead_id = r.lead_id""", {"now": now})
        _run_over(con, "_listed", frame, listed_before, ["lead_id"],
                  "UPDATE leads SET last_run_id = $run FROM _listed r WHERE leads.lead_id = r.lead_id", {"run": run_id})
        _run_over(con, "_moved", frame, pl.col("_moved"), ["lead_id", "change"],
                  "UPDATE leads SET change = r.change FROM _moved r WHERE leads.lead_id = r.lead_id")
        _run_over(con, "_rescored", frame, pl.col("_rescored"), ["lead_id", *_RESCORED],
                  f"""UPDATE leads SET {", ".join(f"{c} = r.{c}" for c in _RESCORED)}
                      FROM _rescored r WHERE leads.lead_id = r.lead_id""")
        _run_over(con, "_run_leads", frame, pl.lit(True),
                  ["lead_id", "rank", "score", "tier", "change", "change_detail", *_HISTORY_COLUMNS],
                  f"""INSERT INTO lead_history (run_id, lead_id, rank, score, tier, change, change_detail,
                          {", ".join(_HISTORY_COLUMNS)})
                      SELECT $run, lead_id, rank, score, tier, change, change_detail, {", ".join(_HISTORY_COLUMNS)}
                      FROM _run_leads""", {"run": run_id})
    counts: dict[str, int] = {}
    for column in ("tier", "change"):
        for value, n in frame.group_by(column).len().iter_rows():
            counts[value] = n
    return counts


def set_status(con: duckdb.DuckDBPyConnection, lead_id: str, status: str, by: str | None = None,
               note: str | None = None, origin: str = "cli", at: dt.datetime | None = None,
               amount: float | None = None) -> None:
    """Move a lead to a status (English code or its Chinese label), recording who and when."""
    code = status if status in STATUSES else _FROM_ZH.get(status.strip())
    if code is None:
        raise AidLeadsError(f"unknown status '{status}'",
                            hint="use one of " + ", ".join(f"{c} ({STATUS_ZH[c]})" for c in STATUSES))
    if not con.execute("SELECT count(*) FROM leads WHERE lead_id = ?", [lead_id]).fetchall()[0][0]:
        raise LeadNotFoundError(f"no lead with id {lead_id}", hint="see `aidleads leads` for lead ids")
    at = at or _now()
    con.execute(
        """UPDATE leads SET status = ?, status_by = ?, status_at = ?, note = coalesce(?, note),
               aid_amount = coalesce(?, aid_amount),
               assigned_at = CASE WHEN ? IN ('assigned', 'verifying') THEN coalesce(assigned_at, ?) ELSE assigned_at END
           WHERE lead_id = ?""",
        [code, by, at, note, amount, code, at, lead_id])
    con.execute("INSERT INTO lead_events VALUES (?, ?, ?, ?, ?, ?, ?)", [lead_id, at, code, by, note, origin, amount])


@dataclass
class ImportReport:
    updated: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)


def import_outcomes(con: duckdb.DuckDBPyConnection, path: Path, by: str | None = None) -> ImportReport:
    """Apply the 处理结果 column of a returned leads.xlsx; each unusable row is reported, none aborts the rest."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise SourceFormatError(path, f"is not a readable XLSX workbook ({type(exc).__name__})") from None
    if "线索清单" not in wb.sheetnames:
        raise SourceFormatError(path, "has no sheet 线索清单", hint="import the leads.xlsx that aidleads exported")
    rows = list(wb["线索清单"].iter_rows(values_only=True))
    wb.close()
    header = [str(h).strip() if h is not None else "" for h in rows[0]] if rows else []
    if "线索编号" not in header or "处理结果" not in header:
        raise SourceFormatError(path, "sheet 线索清单 lacks the columns 线索编号 and 处理结果")
    id_col, outcome_col = header.index("线索编号"), header.index("处理结果")
    note_col = header.index("处理备注") if "处理备注" in header else None
    amount_col = next((header.index(h) for h in ("救助金额（元）", "救助金额") if h in header), None)
    current = dict(con.execute("SELECT lead_id, status FROM leads").fetchall())
    report = ImportReport()
    for number, row in enumerate(rows[1:], start=2):
        outcome = row[outcome_col] if outcome_col < len(row) else None
        if outcome is None or not str(outcome).strip():
            continue
        lead_id = str(row[id_col] or "").strip().lstrip("'")
        code = _FROM_ZH.get(str(outcome).strip(), str(outcome).strip())
        if lead_id not in current:
            report.problems.append(f"{path.name} 第{number}行：线索编号 {lead_id or '（空）'} 不存在")
            continue
        if code not in STATUSES:
            report.problems.append(f"{path.name} 第{number}行：处理结果“{outcome}”无法识别")
            continue
        if current[lead_id] == code:
            report.unchanged += 1
            continue
        note = str(row[note_col]).strip() if note_col is not None and row[note_col] else None
        amount = None
        if amount_col is not None and row[amount_col] not in (None, ""):
            try:
                amount = parse_amount(row[amount_col])
            except ValueParseError as exc:
                report.problems.append(f"{path.name} 第{number}行：救助金额{exc.reason_zh}")
                continue
        set_status(con, lead_id, code, by=by, note=note, origin="import", amount=amount)
        report.updated += 1
    return report


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Working days after `start` up to and including `end` (Saturdays and Sundays skipped)."""
    if end <= start:
        return 0
    days = 0
    day = start
    while day < end:
        day += dt.timedelta(days=1)
        days += day.weekday() < 5
    return days


def overdue_leads(con: duckdb.DuckDBPyConnection, limit_days: int, today: dt.date | None = None) -> list[dict]:
    """Open leads assigned more than `limit_days` working days ago (days past the limit included)."""
    today = today or dt.date.today()
    rows = con.execute(
        """SELECT l.lead_id, l.case_no, l.tier, l.status, l.status_by, l.assigned_at,
                  (SELECT h.subject_name FROM lead_history h WHERE h.lead_id = l.lead_id ORDER BY h.run_id DESC LIMIT 1)
           FROM leads l WHERE l.status IN ('assigned', 'verifying') AND l.assigned_at IS NOT NULL""").fetchall()
    out = []
    for lead_id, case_no, tier, status, by, assigned_at, name in rows:
        used = working_days_between(assigned_at.date(), today)
        if used > limit_days:
            out.append({"lead_id": lead_id, "case_no": case_no, "tier": tier, "status": status, "by": by,
                        "assigned": assigned_at.date(), "working_days": used, "subject_name": name})
    return sorted(out, key=lambda r: -r["working_days"])
