"""Hostile and broken input: a corpus of broken files and property tests over the readers and ingest.

Every input ends as a clear error naming the file, or as loaded and quarantined rows — never an
exception out of ingest, never a good row lost. `pytest -s` shows the corpus summary; so does
`python -m tests.hostile_corpus`.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hostile_corpus import CASES, HEADER, good_rows, run_case, summary_lines
from pipeline.errors import SourceFormatError
from pipeline.ingest import ingest_file
from pipeline.readers import read_table_file
from pipeline.store import open_database
from pipeline.values import is_null_token

_DEEP = int(os.environ.get("AIDLEADS_FUZZ_EXAMPLES", "0"))
"""set to e.g. 2000 for a long, randomised fuzzing run; by default a fixed, fast set of examples"""
_FAST = settings(max_examples=_DEEP or 40, deadline=None, derandomize=not _DEEP,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every corpus input through the real ingest, against one database; (results, connection, root)."""
    root = tmp_path_factory.mktemp("hostile")
    con = open_database(root / "work" / "hostile.duckdb")
    results = [run_case(case, root, con) for case in CASES]
    yield results, con, root
    con.close()


def test_hostile_corpus_has_no_crash_and_loses_no_good_row(corpus):
    results, _, _ = corpus
    lines = summary_lines(results)
    print("\n" + "\n".join(lines))
    crashes = [r.name for r in results if r.crash]
    lost = sum(r.good_lost for r in results)
    assert lines[-1] == f"hostile inputs: {len(results)} tried, crashes 0, good rows lost 0"
    assert not crashes and lost == 0
    assert not [(r.name, r.failures) for r in results if r.failures]
    assert len(results) >= 25


def _case_dir(root: Path, name: str) -> str:
    index = next(i for i, c in enumerate(CASES) if c.name == name)
    return str(root / f"case{index}")


def _rows(con, table: str, root: Path, case: str, columns: str) -> list[tuple]:
    return con.execute(f"""SELECT {columns} FROM {table} r JOIN ingested_files f USING (file_id)
                           WHERE starts_with(f.path, ?) ORDER BY f.path, r.row_number""",
                       [_case_dir(root, case)]).fetchall()


def test_cells_beyond_the_header_and_repeated_headers_are_kept(corpus):
    _, con, root = corpus
    extras = [json.loads(e) for (e,) in _rows(con, "raw_disability", root, "ragged rows", "r.extra_columns") if e]
    assert {"列5": "多余1", "列6": "多余2"} in extras and {"列8": "多余"} in extras
    dup = [json.loads(e) for (e,) in _rows(con, "raw_disability", root, "duplicated headers", "r.extra_columns")]
    assert dup[0] == {"姓名_2": "别名", "备注": "甲", "备注_2": "乙"}


def test_quarantine_names_row_and_field(corpus):
    _, con, root = corpus
    rows = _rows(con, "quarantine", root, "100,000-char cells (CSV)", "r.row_number, r.field, r.reason")
    assert [(r[0], r[1]) for r in rows] == [(3, "name"), (4, "category")]
    assert all("过长" in r[2] for r in rows)
    ragged = _rows(con, "quarantine", root, "ragged rows", "r.row_number, r.field, r.reason")
    assert [(r[0], r[1]) for r in ragged] == [(9, "name")] and "缺少必填字段" in ragged[0][2]


def test_encodings_are_detected_and_damage_is_reported_per_cell(corpus):
    _, con, root = corpus
    big5 = _rows(con, "raw_disability", root, "Big5 CSV (traditional headers)", "r.name, r.category, f.encoding")
    assert big5[0] == ("陳國強", "肢體", "cp950")
    utf16 = _rows(con, "raw_disability", root, "UTF-16LE CSV without BOM", "f.encoding")
    assert utf16[0] == ("utf-16",)
    damaged = _rows(con, "field_issues", root, "GBK CSV with one damaged byte", "r.row_number, r.field, r.reason")
    assert [(r[0], r[1]) for r in damaged] == [(7, "address")] and "编码损坏" in damaged[0][2]
    latin = _rows(con, "quarantine", root, "Latin-1 CSV where UTF-8/GBK expected", "r.row_number, r.field")
    assert latin == [(5, "name")]


def test_sheet_problems_name_the_sheet_and_the_rest_loads(corpus):
    results, _, _ = corpus
    by_name = {r.name: r for r in results}
    assert any("[乱码]" in e and "sheets.xlsx" in e for e in by_name["workbook with a garbage sheet"].errors)
    assert any("[坏表]" in e and "damaged" in e for e in by_name["workbook with a damaged sheet XML"].errors)
    assert by_name["workbook with a garbage sheet"].loaded == 5


# ----------------------------------------------------------------------------------------- properties

@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_props")
    con = open_database(root / "props.duckdb")
    yield con, root, itertools.count()
    con.close()


def _ingest(db, name: str, data: bytes, source: str = "disability"):
    con, root, counter = db
    folder = root / f"ex{next(counter)}"
    folder.mkdir()
    path = folder / name
    path.write_bytes(data)
    outcome = ingest_file(con, source, path, {}, "PROP")  # must never raise
    counts = con.execute("""SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0),
                                   coalesce(sum(rows_quarantined), 0), coalesce(sum(rows_blank), 0)
                            FROM ingested_files WHERE path = ? AND status = 'loaded'""", [str(path)]).fetchall()[0]
    names = [r[0] for r in con.execute(
        "SELECT r.name FROM raw_disability r JOIN ingested_files f USING (file_id) WHERE f.path = ?",
        [str(path)]).fetchall()] if source == "disability" else []
    return outcome, counts, names


def _check_outcome(outcome, counts, path_name: str) -> None:
    assert outcome.status in ("loaded", "rejected", "skipped")
    if outcome.status == "rejected":
        assert outcome.error and path_name in outcome.error and "Traceback" not in outcome.error
    read, loaded, quarantined, blank = counts
    assert read == loaded + quarantined + blank


_TRICKY = st.sampled_from(["", " ", "\x00", "NULL", "无", "姓名", "=1+1", "@x", "\"", "\"\"", ",", "\r", "\n", "\r\n",
                           "长" * 1001, "\ufffd", "\t", "—", "\u3000", "𠀀", "a\x00b"])
_CELL = st.one_of(st.text(max_size=20), _TRICKY)


def _clean(cell: str) -> str:
    return cell.replace("\x00", "").strip()


def _is_good(row: list[str]) -> bool:
    """A row ingest must load: a readable name, no mapped cell too long, not the header again."""
    cells = [_clean(c) for c in row]
    if cells == HEADER:
        return False
    name = cells[0]
    return bool(name) and not is_null_token(name) and "\ufffd" not in name and all(len(c) <= 1000 for c in cells)


@_FAST
@given(rows=st.lists(st.lists(_CELL, min_size=4, max_size=4), min_size=1, max_size=12),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]))
def test_arbitrary_text_cells_are_loaded_or_quarantined(db, rows, encoding):
    buf = io.StringIO()
    csv.writer(buf).writerows([HEADER, *rows])
    try:
        data = buf.getvalue().encode(encoding)
    except UnicodeEncodeError:
        assume(False)
    outcome, counts, names = _ingest(db, "cells.csv", data)
    _check_outcome(outcome, counts, "cells.csv")
    assume(outcome.status != "skipped")
    assert outcome.status == "loaded", outcome.error
    assert counts[0] == len(rows), "a row was lost or invented while reading"
    good = [_clean(r[0]) for r in rows if _is_good(r)]
    assert sorted(names) == sorted(good)


_MAGIC = st.sampled_from([b"", b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\xff\xfe", b"\xfe\xff",
                          b"\xef\xbb\xbf", "姓名,身份证号码\r\n".encode()])


@_FAST
@given(magic=_MAGIC, body=st.binary(max_size=3000), suffix=st.sampled_from([".csv", ".xlsx", ".xls", ".txt"]))
def test_arbitrary_bytes_never_escape_as_an_exception(db, magic, body, suffix):
    name = "bytes" + suffix
    outcome, counts, _ = _ingest(db, name, magic + body)
    _check_outcome(outcome, counts, name)


def _valid_xlsx() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for r in [HEADER, *good_rows("fuzz", 6)]:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


_XLSX = _valid_xlsx()


@_FAST
@given(cut=st.integers(min_value=0, max_value=len(_XLSX)),
       flips=st.lists(st.tuples(st.integers(min_value=0, max_value=len(_XLSX) - 1), st.integers(0, 255)), max_size=6))
def test_damaged_workbooks_are_rejected_or_loaded(db, cut, flips):
    data = bytearray(_XLSX[: max(cut, 8)] if cut < len(_XLSX) - 1 else _XLSX)
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    outcome, counts, names = _ingest(db, "fuzz.xlsx", bytes(data))
    _check_outcome(outcome, counts, "fuzz.xlsx")


_EXTRA = ["住址", "备注", "发证日期", "联系电话"]


@_FAST
@given(order=st.permutations(list(range(len(HEADER) + len(_EXTRA)))),
       titles=st.integers(min_value=0, max_value=3), fmt=st.sampled_from(["csv", "xlsx"]),
       seed=st.integers(min_value=0, max_value=10_000))
def test_header_permutations_map_every_value_to_its_field(db, order, titles, fmt, seed):
    header = [(HEADER + _EXTRA)[i] for i in order]
    rng = random.Random(seed)
    people = good_rows(f"perm{seed}", 5)
    extra_values = {"住址": "大田县均溪镇", "备注": "无", "发证日期": "2020-01-01", "联系电话": "13800000000"}
    records = [dict(zip(HEADER, p)) | extra_values for p in people]
    table = [[f"标题{t}" if rng.random() < 0.7 else None] for t in range(titles)]
    table += [header, *[[rec[h] for h in header] for rec in records]]
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf).writerows([["" if v is None else v for v in r] for r in table])
        data = buf.getvalue().encode("gb18030")
    else:
        import openpyxl

        wb = openpyxl.Workbook()
        for r in table:
            wb.active.append(r)
        out = io.BytesIO()
        wb.save(out)
        data = out.getvalue()
    name = f"perm.{fmt}"
    outcome, counts, _ = _ingest(db, name, data)
    _check_outcome(outcome, counts, name)
    assume(outcome.status != "skipped")
    assert outcome.status == "loaded" and outcome.rows_loaded == 5, outcome.error
    con, root, _ = db
    got = con.execute("""SELECT r.name, r.id_number, r.category, r.level, r.address, r.phone
                         FROM raw_disability r JOIN ingested_files f USING (file_id)
                         WHERE f.file_id = (SELECT max(file_id) FROM ingested_files) ORDER BY r.row_number""").fetchall()
    assert got == [(p[0], p[1], p[2], p[3], "大田县均溪镇", "13800000000") for p in people]


@settings(max_examples=_DEEP or 60, deadline=None, derandomize=not _DEEP)
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".csv", ".xlsx", ".xls"]))
def test_readers_raise_only_source_format_errors(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("reader") / ("f" + suffix)
    path.write_bytes(data)
    try:
        tables = read_table_file(path)
    except SourceFormatError as exc:
        assert path.name in str(exc)
        return
    for table in tables:
        assert all(isinstance(n, int) and all(c is None or isinstance(c, str) for c in cells) for n, cells in table.rows)
