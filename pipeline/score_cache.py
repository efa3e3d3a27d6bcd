"""Scoring reuses the leads of case files whose inputs did not change since they were scored.

A case file — every victim and relative row under one case number (no number counts as 'None', the text
the lead id is made of) — is scored from its reach: the people named in it, everyone sharing a subsistence
household with them, every record, fact row and evidence line of those people, and which of them were
aided before. Its leads depend on nothing else but the date, the scoring settings, the lead key and the
code (`score_leads` works case by case; only the final ranking is global, and ranking is a sort).

So the stage keeps per case file a digest of its reach (`score_units`), the leads it gave
(`score_unit_leads`), and the first date on which an age in its reach or its recent-incident window can
move (`valid_until`). A night recomputes every digest in one query and scores only the case files that
are new, whose digest changed, or whose date ran out; the rest keep their stored leads. A re-sent roll
touches the case files of the people on it — their rows' lineage (file, row number) is cited in the
evidence — and nothing else. Everything is scored on a first night, with other settings, another lead key
or other code, and on a night whose normalise rebuilt every record (ids and fact order start afresh).

`tests/test_score_cache.py` checks the outcome against scoring everything, after changes of each kind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import NamedTuple

import duckdb
import polars as pl

from pipeline import reuse
from pipeline.score import LEAD_COLUMNS, ScoreInputs, load_score_inputs, score_leads, work_out_reach
from pipeline.store import query_frame, registered, transaction
from schemas.config import ScoringConfig

__all__ = ["scored_leads", "CacheOutcome"]

_FOREVER = dt.date(9999, 12, 31)
_STATE = "score_cache"
_UNMASKED = ("subject_id18", "subject_phone")
"""lead columns with the subject's ID number and phone in full: neither stored here nor handed on (scoring masks
them into id_masked and phone; the export reads them from persons when a prosecutor's copy must show them)"""
_STORED = [c for c in LEAD_COLUMNS if c not in _UNMASKED]
_STORED_AS_LEADS = ", ".join(c if c in _STORED else f"NULL::VARCHAR AS {c}" for c in LEAD_COLUMNS)

_DIGEST_SQL = """
WITH reach_records AS (
    SELECT m.record_id, m.person_id FROM person_members m
    WHERE m.person_id IN (SELECT person_id FROM score_reach)
), evidence AS (            -- a record's evidence lines, in table order (the last one is cited)
    SELECT record_id, hash(list(evidence_zh ORDER BY rowid)) AS h FROM record_evidence
    WHERE record_id IN (SELECT record_id FROM reach_records) GROUP BY record_id
), person_digest AS (       -- a person: which records, of what content, read from which file and row
    SELECT r.person_id,
           sum(hash(p.record_id, p.record_key, p.file_id, p.source_file, p.row_number, e.h)) AS d
    FROM reach_records r JOIN person_records p USING (record_id) LEFT JOIN evidence e USING (record_id)
    GROUP BY r.person_id
), row_order AS (           -- the order of the case file's rows decides which victim is which case
    SELECT coalesce(case_no, 'None') AS case_file, hash(list(record_id ORDER BY rowid)) AS d
    FROM victim_facts GROUP BY ALL
)
SELECT u.case_file, hash(sum(hash(u.person_id, p.d, a.aided_case)), any_value(o.d)) AS digest
FROM score_reach u JOIN person_digest p USING (person_id) JOIN row_order o USING (case_file)
LEFT JOIN _score_aided a USING (person_id)
GROUP BY u.case_file
"""
"""Per case file, a 64-bit digest of its reach: its people, each with their records' ids, content keys and
lineage, and their evidence lines; who of them was aided before; and the order of the file's victim rows.

A record's content key (`person_records.record_key`) is a hash of the raw row it was read from, and its
record and fact rows depend on that row and the code alone (`normalise_all`), so the key stands for them
here: the code is in the settings key. The fact tables' order among rows that stay is kept from night to
night; rows added or gone change their people's digests. Sums make a set's digest independent of order."""


class CacheOutcome(NamedTuple):
    """Tonight's leads (as `score_leads` ranks them, the unmasked ID and phone left empty) and how many case files
    were scored or reused."""

    leads: pl.DataFrame
    units_scored: int
    units_reused: int
    reason: str
    """why case files were scored: 'changed' (only those whose inputs changed or whose date ran out), or why all
    were: 'first' (nothing stored), 'settings' (settings, lead key or code differ), 'rebuilt' (tonight's normalise
    rebuilt every record)"""


def settings_key(cfg: ScoringConfig, lead_key: bytes) -> str:
    """What stored leads were scored with: the scoring settings, the lead key (by its hash) and the code."""
    return reuse.settings_key(_STATE, {"scoring": cfg.model_dump(mode="json"), "duckdb": duckdb.__version__,
                                       "lead_key": hashlib.sha256(lead_key).hexdigest()},
                              also_code=("score.py", "score_cache.py"))


def scored_leads(con: duckdb.DuckDBPyConnection, cfg: ScoringConfig, lead_key: bytes, today: dt.date,
                 aided_before: dict[str, str], run_id: str) -> CacheOutcome:
    """Tonight's leads, scoring only the case files whose inputs changed, and the store brought up to date."""
    key = settings_key(cfg, lead_key)
    aided = pl.DataFrame({"person_id": list(aided_before), "aided_case": list(aided_before.values())},
                         schema={"person_id": pl.String, "aided_case": pl.String})
    try:
        with registered(con, _score_aided=aided):
            work_out_reach(con)
            digests = query_frame(con, _DIGEST_SQL)
        reason, fresh = _fresh_units(con, key, digests, today, run_id)
        stale = digests.join(fresh, on="case_file", how="anti")  # every case file, when none is fresh
        inputs = load_score_inputs(con, units=stale["case_file"])
        leads = score_leads(*inputs, cfg, lead_key, today=today, aided_before=aided_before)
        valid = _valid_until(con, inputs, stale["case_file"], today, cfg)
        kept = _stored_leads(con, fresh["case_file"]) if fresh.height else leads.clear()
        _remember(con, key, stale.join(valid, on="case_file", how="left"), leads, digests["case_file"], today, run_id,
                  replace_all=reason != "changed")
    finally:
        con.execute("DROP TABLE IF EXISTS score_reach")
    # score_leads types an empty list as all text: the stored leads' types stand when none were scored tonight
    parts = [kept.cast(dict(leads.schema)) if leads.height else kept, leads] if kept.height else [leads]
    ranked = pl.concat([p for p in parts if p.height] or [leads]).sort(["score", "lead_id"], descending=[True, False])
    ranked = ranked.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in _UNMASKED)
    return CacheOutcome(ranked, stale.height, fresh.height, reason)


def _fresh_units(con: duckdb.DuckDBPyConnection, key: str, digests: pl.DataFrame,
                 today: dt.date, run_id: str) -> tuple[str, pl.DataFrame]:
    """The case files whose stored leads hold tonight (same digest, scored on or before today and still valid),
    and why the others are scored ('first', 'settings' and 'rebuilt': none is fresh)."""
    have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
    if not {"score_units", "score_unit_leads"} <= have:
        return "first", digests.select("case_file").clear()
    stored = con.execute("SELECT inputs_key FROM stage_state WHERE stage = ?", [_STATE]).fetchall()
    if not stored or stored[0][0] != key:
        return "settings", digests.select("case_file").clear()
    if con.execute("SELECT count(*) FROM stage_state WHERE stage = 'record_changes' AND inputs_key = 'full build' "
                   "AND run_id = ?", [run_id]).fetchall()[0][0]:
        return "rebuilt", digests.select("case_file").clear()  # records renumbered and fact rows reordered
    units = query_frame(con, "SELECT case_file, digest, scored_on, valid_until FROM score_units")
    fresh = (digests.join(units, on=["case_file", "digest"])
             .filter((pl.col("scored_on") <= today) & (pl.lit(today) < pl.col("valid_until")))
             .select("case_file"))
    return "changed", fresh


def _stored_leads(con: duckdb.DuckDBPyConnection, units: pl.Series) -> pl.DataFrame:
    with registered(con, _units=pl.DataFrame({"case_file": units})):
        return query_frame(con, f"SELECT {_STORED_AS_LEADS} FROM score_unit_leads "
                                "WHERE case_file IN (SELECT case_file FROM _units)")


def _valid_until(con: duckdb.DuckDBPyConnection, inputs: ScoreInputs, units: pl.Series, today: dt.date,
                 cfg: ScoringConfig) -> pl.DataFrame:
    """Per case file scored tonight, the first day its leads could read otherwise with the same data: the next
    birthday of anyone in its reach (ages decide minors, elders, adults and dependents), or the day an incident
    leaves the recent window. Feb 29 birthdays count from Feb 28, which is never late."""
    with registered(con, _units=pl.DataFrame({"case_file": units})):
        reach = query_frame(con, "SELECT case_file, person_id FROM score_reach "
                                 "WHERE case_file IN (SELECT case_file FROM _units)")
    births = (reach.join(inputs.records.select("person_id", "birth_date"), on="person_id")
              .drop_nulls("birth_date").select("case_file", "birth_date"))
    month, day = pl.col("birth_date").dt.month().cast(pl.Int32), pl.col("birth_date").dt.day().cast(pl.Int32)  # Int8 would overflow below
    leap_day = (month == 2) & (day == 29)
    this_year = (month * 100 + day) > today.month * 100 + today.day
    birthdays = births.select("case_file", until=pl.date(pl.when(this_year).then(today.year).otherwise(today.year + 1),
                                                     month, pl.when(leap_day).then(28).otherwise(day)))
    window = int(365 * cfg.recent_incident_years) + 1  # the first whole day count the rule no longer calls recent
    victims = inputs.facts["victim_facts"]
    incidents = (victims.select(case_file=pl.col("case_no").fill_null("None"),
                                until=pl.col("incident_date").cast(pl.Date) + pl.duration(days=window))
                 .filter(pl.col("until") > today))
    limits = pl.concat([birthdays, incidents])
    return (pl.DataFrame({"case_file": units}).join(limits.group_by("case_file").agg(pl.col("until").min()), on="case_file",
                                               how="left")
            .select("case_file", valid_until=pl.col("until").fill_null(_FOREVER)))


def _remember(con: duckdb.DuckDBPyConnection, key: str, scored: pl.DataFrame, leads: pl.DataFrame,
              tonight: pl.Series, today: dt.date, run_id: str, *, replace_all: bool) -> None:
    """Store the digests, dates and leads of the case files scored tonight; forget case files that are gone."""
    units = scored.select("case_file", "digest", scored_on=pl.lit(today), valid_until="valid_until")
    unit_leads = leads.select(case_file=pl.col("case_no").fill_null("None"), *_STORED)
    with registered(con, _scored_units=units, _scored_leads=unit_leads, _tonight=pl.DataFrame({"case_file": tonight})), \
            transaction(con):
        if replace_all:
            con.execute("CREATE OR REPLACE TABLE score_units AS SELECT * FROM _scored_units")
            con.execute("CREATE OR REPLACE TABLE score_unit_leads AS SELECT * FROM _scored_leads")
        else:
            for table in ("score_units", "score_unit_leads"):
                con.execute(f"DELETE FROM {table} WHERE case_file IN (SELECT case_file FROM _scored_units) "
                            "OR case_file NOT IN (SELECT case_file FROM _tonight)")
            con.execute("INSERT INTO score_units SELECT * FROM _scored_units")
            con.execute("INSERT INTO score_unit_leads SELECT * FROM _scored_leads")
        reuse.remember(con, _STATE, key, run_id)
