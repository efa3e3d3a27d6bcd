"""Lead lifecycle across runs: stable lead ids, new / changed / unchanged flags, closed leads kept quiet."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

__all__ = ["apply_lifecycle", "CLOSED_STATUSES", "STATUSES"]

STATUSES = ("new", "assigned", "verifying", "aided", "not_eligible", "referred", "closed")
CLOSED_STATUSES = frozenset({"aided", "not_eligible", "referred", "closed"})

_HISTORY_COLUMNS = ["subject_name", "id_masked", "phone", "address", "victim_name", "charge", "injury",
                    "incident_date", "unit", "reasons", "evidence", "source_rows", "referrals", "aid_estimate"]


def apply_lifecycle(con: duckdb.DuckDBPyConnection, leads: pl.DataFrame, run_id: str) -> dict[str, int]:
    """Merge this run's scored leads into `leads` and write this run's ranked list to `lead_history`.

    A closed lead whose evidence did not change is not listed again; one with new evidence is
    listed as 'reopened'. Returns counts by tier and by change.
    """
    known = {row[0]: row[1:] for row in con.execute("SELECT lead_id, fingerprint, status FROM leads").fetchall()}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    listed: list[dict] = []
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM lead_history WHERE run_id = ?", [run_id])
        for lead in leads.iter_rows(named=True):
            previous = known.get(lead["lead_id"])
            if previous is None:
                change = "new"
                con.execute(
                    """INSERT INTO leads (lead_id, case_no, subject_person_id, victim_person_id, subject_role,
                           first_run_id, last_run_id, score, tier, fingerprint, change, status, status_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'new', 'new', ?)""",
                    [lead["lead_id"], lead["case_no"], lead["subject_person_id"], lead["victim_person_id"],
                     lead["subject_role"], run_id, run_id, lead["score"], lead["tier"], lead["fingerprint"], now])
            else:
                fingerprint, status = previous
                if fingerprint == lead["fingerprint"]:
                    if status in CLOSED_STATUSES:
                        continue  # handled, and nothing new: do not raise it again
                    change = "unchanged"
                else:
                    change = "reopened" if status in CLOSED_STATUSES else "changed"
                con.execute(
                    """UPDATE leads SET last_run_id = ?, score = ?, tier = ?, fingerprint = ?, change = ?,
                           subject_person_id = ?, victim_person_id = ?, subject_role = ?
                       WHERE lead_id = ?""",
                    [run_id, lead["score"], lead["tier"], lead["fingerprint"], change, lead["subject_person_id"],
                     lead["victim_person_id"], lead["subject_role"], lead["lead_id"]])
            listed.append({**lead, "change": change})
            counts[lead["tier"]] = counts.get(lead["tier"], 0) + 1
            counts[change] = counts.get(change, 0) + 1
        for rank, lead in enumerate(listed, start=1):
            con.execute(
                f"""INSERT INTO lead_history (run_id, lead_id, rank, score, tier, change, {", ".join(_HISTORY_COLUMNS)})
                    VALUES (?, ?, ?, ?, ?, ?, {", ".join("?" for _ in _HISTORY_COLUMNS)})""",
                [run_id, lead["lead_id"], rank, lead["score"], lead["tier"], lead["change"],
                 *[lead[c] for c in _HISTORY_COLUMNS]])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return counts
