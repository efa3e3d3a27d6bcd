"""The real nightly flow (Prefect, DuckDB, Excel) on a small generated county, checked against ground truth."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from conftest import config_for
from pipeline.normalise import case_number
from pipeline.store import open_database

PERSONS = 4000
SEED = 7


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> Path:
    from data_samples.generator import generate

    out = tmp_path_factory.mktemp("county")
    generate(PERSONS, SEED, out)
    return out


@pytest.fixture(scope="module")
def truth(county) -> dict[tuple[str, int], str]:
    """(file name, spreadsheet row) → true person id."""
    rows: dict[tuple[str, int], str] = {}
    with (county / "truth" / "records.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["person_id"]:
                rows[(Path(r["file"]).name, int(r["row_number"]))] = r["person_id"]
    return rows


@pytest.fixture(scope="module")
def ran(county, tmp_path_factory, prefect_harness):
    from flows.nightly import nightly_flow

    base = tmp_path_factory.mktemp("work")
    config = config_for(base, county)
    toml = base / "aidleads.toml"
    lines = [f'[paths]\nwork_dir = "{(base / "work").as_posix()}"\n']
    for s in ("victims", "disability", "subsistence", "enforcement", "key_groups"):
        lines.append(f'[sources.{s}]\npath = "{(county / s).as_posix()}"\n')
    toml.write_text("\n".join(lines), encoding="utf-8")
    first = nightly_flow(config_file=str(toml))
    second = nightly_flow(config_file=str(toml))
    return config, first, second


def _db(config):
    return open_database(config.database_path, read_only=True)


def test_leads_xlsx_opens_and_is_ranked_with_chinese_headers(ran):
    config, first, _ = ran
    xlsx = Path(first["exports"]) / "leads.xlsx"
    wb = openpyxl.load_workbook(xlsx, read_only=True)
    rows = list(wb["线索清单"].iter_rows(values_only=True))
    header = rows[0]
    assert {"排名", "优先级", "评分", "救助对象", "身份证号", "线索理由", "同一人依据", "来源行"} <= set(header)
    scores = [r[header.index("评分")] for r in rows[1:]]
    assert len(scores) >= 10 and scores == sorted(scores, reverse=True)
    masked = [r[header.index("身份证号")] for r in rows[1:] if r[header.index("身份证号")]]
    assert masked and all("*" in m for m in masked)
    assert (Path(first["exports"]) / "leads.csv").exists() and (Path(first["exports"]) / "leads.parquet").exists()


def test_some_lead_cites_two_other_sources(ran):
    config, first, _ = ran
    con = _db(config)
    reasons = [r[0] for r in con.execute(
        "SELECT reasons FROM lead_history WHERE run_id = ?", [first["run_id"]]).fetchall()]
    con.close()
    cites = [sum(k in r for k in ("终本未执行", "残疾证", "低保", "特困", "防止返贫", "退役军人", "妇联", "困境儿童"))
             for r in reasons]
    assert max(cites) >= 2


def test_every_lead_source_row_exists_and_the_victims_rows_are_one_true_person(ran, truth):
    config, first, _ = ran
    con = _db(config)
    source_rows = con.execute("SELECT source_rows FROM lead_history WHERE run_id = ?", [first["run_id"]]).fetchall()
    for (text,) in source_rows:
        for item in text.split("；"):
            name, _, row = item.rpartition("#")
            assert (name, int(row)) in truth, f"lead cites {name} row {row}, which is no person's row"
    victim_rows = con.execute(
        """SELECT l.lead_id, r.source_file, r.row_number FROM leads l
           JOIN person_members m ON m.person_id = l.victim_person_id JOIN person_records r USING (record_id)""").fetchall()
    con.close()
    people: dict[str, set[str]] = defaultdict(set)
    for lead_id, name, row in victim_rows:
        people[lead_id].add(truth.get((name, row), f"not-a-person:{name}#{row}"))
    wrong = {k: v for k, v in people.items() if len(v) != 1}
    assert not wrong, f"{len(wrong)} leads join records of different true people"


def test_known_cross_source_hits_become_leads(ran, county, truth):
    """Victims whom the generator gave an unpaid 终本 case and a disability certificate are found."""
    config, first, _ = ran
    by_person: dict[str, set[str]] = defaultdict(set)
    with (county / "truth" / "records.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["person_id"]:
                by_person[r["person_id"]].add(r["source"])
    victims = pl.read_csv(county / "truth" / "victims.csv", infer_schema=False)
    expected = [v for v in victims.iter_rows(named=True)
                if {"victims", "disability", "enforcement"} <= by_person[v["person_id"]]]
    assert expected, "the generator planted no victim with both a certificate and a 终本 case"
    con = _db(config)
    found = {c for (c,) in con.execute(
        "SELECT l.case_no FROM lead_history h JOIN leads l USING (lead_id) WHERE h.run_id = ?", [first["run_id"]]).fetchall()}
    con.close()
    hit = [v["case_no"] for v in expected if case_number(v["case_no"]) in found]
    assert len(hit) >= 0.9 * len(expected), f"only {len(hit)} of {len(expected)} planted hits became leads"


def test_second_run_gives_the_same_leads_and_duplicates_nothing(ran):
    config, first, second = ran
    con = _db(config)
    a = con.execute("SELECT lead_id, score FROM lead_history WHERE run_id = ? ORDER BY lead_id", [first["run_id"]]).fetchall()
    b = con.execute("SELECT lead_id, score FROM lead_history WHERE run_id = ? ORDER BY lead_id", [second["run_id"]]).fetchall()
    assert a == b and a
    changes = con.execute("SELECT DISTINCT change FROM lead_history WHERE run_id = ?", [second["run_id"]]).fetchall()
    assert changes == [("unchanged",)]
    for table in ("raw_victims", "raw_disability", "raw_subsistence", "raw_enforcement", "raw_key_groups", "quarantine"):
        total, distinct = con.execute(f"SELECT count(*), count(DISTINCT (file_id, row_number)) FROM {table}").fetchone()
        assert total == distinct
    assert con.execute("SELECT count(*), count(DISTINCT sha256 || coalesce(sheet, '')) FROM ingested_files").fetchone()[0] == \
        con.execute("SELECT count(DISTINCT sha256 || coalesce(sheet, '')) FROM ingested_files").fetchone()[0]
    assert con.execute("SELECT count(*) FROM leads").fetchone()[0] == len(a)
    runs = con.execute("SELECT status FROM runs ORDER BY run_id").fetchall()
    con.close()
    assert runs == [("succeeded",), ("succeeded",)]


def test_quarantine_names_file_row_and_reason(ran):
    config, _, _ = ran
    con = _db(config)
    rows = con.execute("SELECT source_file, row_number, field, reason FROM quarantine").fetchall()
    con.close()
    assert rows, "the generator plants bad rows; none reached quarantine"
    assert all(r[0] and r[1] >= 2 and r[3] for r in rows)
