"""Synthetic county: the five agency exports with realistic dirt, plus ground truth.

    from data_samples.generator import generate
    counts = generate(20_000, seed=1, out_dir=Path("sample-data"))

writes ``out_dir/<source>/<file>`` for victims, disability, subsistence, enforcement and key_groups
(Chinese headers from `schemas.sources`, varied per file; UTF-8, GBK and UTF-8-with-BOM CSV, XLSX)
and ``out_dir/truth/``, never inside a source file:

- ``records.csv``: source, file (relative to out_dir), row_number (header = 1), role (victim, relative,
  disability_holder, subsistence_member, applicant, key_group), person_id (empty for a company applicant),
  quarantine_expected (a blank required name or an unparseable date/amount was planted), dirt (what was done
  to the row: ``id_number:legacy15;name:homophone;duplicate`` …)
- ``persons.csv``: person_id, name, id18, sex, birth_date, household_id, region (county lived in), birth_region
- ``households.csv``: household_id, person_id, relation_to_head
- ``victims.csv``: one row per victim with the case, injury, compensation, fault, relatives and defendant

Same (persons, seed), same bytes. Everything is synthetic: no real person is described.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import polars as pl

from data_samples._dirt import DirtRates
from data_samples._events import World, simulate
from data_samples._population import RELATIONS, Population, make_population
from data_samples._sources import DRAFTS, HIDDEN, Style, choose_headers, field_types, render, visible_columns
from data_samples._writers import write_csv, write_xlsx
from schemas.sources import SOURCES

__all__ = ["generate", "DirtRates", "FILES"]

FILES: dict[str, tuple[str, str, bool]] = {
    # source: (file stem, format, writes a lowercase x)
    "victims": ("victims", "xlsx", False),
    "disability": ("disability", "gbk", True),
    "subsistence": ("subsistence", "utf-8-sig", False),
    "enforcement": ("enforcement", "xlsx", False),
    "key_groups": ("key_groups", "utf-8", True),
}
_SHEETS = {"victims": "被害人信息", "enforcement": "终本案件"}
_ROW_NUMBER_COLUMN = {"victims": "序号", "subsistence": "序号"}


def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent generator per part, so changing one file's dirt leaves the others as they were."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def _ids(prefix: str, index: np.ndarray | pl.Series, width: int) -> pl.Series:
    s = pl.Series(index, dtype=pl.Int64)
    text = pl.lit(prefix) + s.cast(pl.Utf8).str.zfill(width)
    return pl.select(pl.when(s >= 0).then(text).otherwise(pl.lit(""))).to_series()


def generate(persons: int, seed: int, out_dir: Path, *, xlsx_max_rows: int = 200_000,
             rates: DirtRates | None = None, provinces: int | None = None) -> dict[str, int]:
    """Write a synthetic county of `persons` people to `out_dir`; returns data rows per file written.

    Above ten million persons one province's region codes run out of ID sequence numbers, so the county is
    repeated in further provinces (~5 million persons each); `provinces` sets their number explicitly.
    """
    rates = rates or DirtRates()
    out_dir = Path(out_dir)
    width = max(7, len(str(persons)))
    pop = make_population(persons, _rng(seed, "population"), provinces)
    world = simulate(pop, _rng(seed, "events"))
    counts: dict[str, int] = {}
    records: list[pl.DataFrame] = []
    for source, (stem, fmt, lower_x) in FILES.items():
        rng = _rng(seed, source)
        style = Style.draw(rng, xlsx=fmt == "xlsx", lower_x=lower_x)
        frame = render(source, DRAFTS[source](pop, world, style, rng), style, rng, rates)
        visible = visible_columns(frame)
        headers = choose_headers(SOURCES[source], visible, rng)
        header_row = [headers[c] for c in visible]
        out = frame.select(visible)
        if source in _ROW_NUMBER_COLUMN:
            out = out.insert_column(0, pl.Series("__no", [str(i) for i in range(1, frame.height + 1)], dtype=pl.Utf8))
            header_row = [_ROW_NUMBER_COLUMN[source], *header_row]
        as_xlsx = fmt == "xlsx" and frame.height <= xlsx_max_rows
        rel = f"{source}/{stem}.{'xlsx' if as_xlsx else 'csv'}"
        path = out_dir / rel
        if as_xlsx:
            numeric = {c.split(":", 1)[1]: frame[c] for c in frame.columns if c.startswith(f"{HIDDEN}num:")}
            dates = {c.split(":", 1)[1]: frame[c] for c in frame.columns if c.startswith(f"{HIDDEN}date:")}
            write_xlsx(out, header_row, path, types=field_types(source), numeric=numeric, dates=dates,
                       sheet=_SHEETS.get(source, "Sheet1"))
        else:
            write_csv(out, header_row, path, "utf-8" if fmt == "xlsx" else fmt)
        counts[rel] = frame.height
        records.append(pl.DataFrame({
            "source": [source] * frame.height, "file": [rel] * frame.height,
            "row_number": np.arange(2, frame.height + 2), "role": frame[f"{HIDDEN}role"],
            "person_id": _ids("P", frame[f"{HIDDEN}pid"], width),
            "quarantine_expected": frame[f"{HIDDEN}bad"], "dirt": frame[f"{HIDDEN}dirt"]}))
    counts.update(_write_truth(out_dir / "truth", pop, world, pl.concat(records), width))
    return counts


def _write_truth(folder: Path, pop: Population, world: World, records: pl.DataFrame, width: int,
                 chunk: int = 1_000_000) -> dict[str, int]:
    from data_samples import _tables as T

    folder.mkdir(parents=True, exist_ok=True)
    residence = pl.Series(pop.geo.county_codes)
    birth_regions = pl.Series(pop.geo.region_codes)
    with open(folder / "persons.csv", "wb") as persons, open(folder / "households.csv", "wb") as households:
        for lo in range(0, pop.n, chunk):  # in chunks, so memory stays flat for millions of persons
            hi = min(pop.n, lo + chunk)
            pid = _ids("P", np.arange(lo, hi), width)
            hid = _ids("H", pop.household[lo:hi], width)
            pl.DataFrame({
                "person_id": pid, "name": pop.name[lo:hi], "id18": pop.id18[lo:hi],
                "sex": pl.Series(["F", "M"])[pop.sex[lo:hi]],
                "birth_date": pl.Series(pop.birth[lo:hi].astype(np.int64), dtype=pl.Int32).cast(pl.Date),
                "household_id": hid, "region": residence[pop.hh_county[pop.household[lo:hi]]],
                "birth_region": birth_regions[pop.birth_region[lo:hi]],
            }).write_csv(persons, include_header=lo == 0)
            pl.DataFrame({"household_id": hid, "person_id": pid,
                          "relation_to_head": pl.Series(RELATIONS)[pop.relation[lo:hi]]}).write_csv(
                households, include_header=lo == 0)
    v = world.victims

    def pid_of(index: np.ndarray) -> pl.Series:
        return _ids("P", index, width)

    rel_ids = pid_of(np.array([m for r in v.relatives for m in r], dtype=np.int64)).to_list()
    ends = np.cumsum([len(r) for r in v.relatives])
    victims = pl.DataFrame({
        "case_no": v.case_no, "court_case_no": v.court_case_no, "person_id": pid_of(v.person),
        "died": v.died, "injury": [T.INJURIES[i] for i in v.injury], "charge": [T.CHARGES[c][0] for c in v.charge],
        "incident_date": pl.Series(v.incident.astype(np.int64), dtype=pl.Int32).cast(pl.Date),
        "compensation_ordered": pl.Series(v.ordered, nan_to_null=True),
        "compensation_received": pl.Series(v.received, nan_to_null=True),
        "compensated": np.nan_to_num(v.received) >= np.where(np.isnan(v.ordered), np.inf, v.ordered),
        "fault": v.fault, "relative_person_ids": [";".join(rel_ids[e - len(r):e]) for r, e in zip(v.relatives, ends)],
        "defendant_person_id": pid_of(v.defendant)})
    records.write_csv(folder / "records.csv")
    victims.write_csv(folder / "victims.csv")
    return {"truth/records.csv": records.height, "truth/persons.csv": pop.n, "truth/households.csv": pop.n,
            "truth/victims.csv": victims.height}
