"""The fast XLSX writer: cells read back exactly as xlsxwriter's own per-cell writing gives them.

Hostile text (formula-like, leading zeros, control characters, literal _xHHHH_ escapes, edge whitespace,
XML markup, cells beyond Excel's 32,767-unit limit), numbers, dates and per-row formats are written both
ways and compared cell by cell with openpyxl (values, types, formats), python-calamine and the raw
shared strings.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook
from xlsxwriter.sharedstrings import SharedStrings

from conftest import make_id
from pipeline import export, xlsx_write
from pipeline.export import HEADERS_ZH, export_leads, inert, inert_text
from pipeline.store import open_database
from pipeline.xlsx_write import SheetRows, _escaped, _si, style_id, workbook_with_rows

HOSTILE = [
    "=HYPERLINK(\"http://x\")", "+1", "-1", "@SUM(A1)", "\tTab", "\rCR", "0012345", "013800000000",
    make_id(seq=8), "a\x01b", "\x00", "\x1f\x0b\x0c", "line\nbreak", "\ufffe\uffff", "_x0041_", "_X0041_",
    "__x00e9__", "_x005F_", "&<>\"'", "]]>", "<r>x</r>", " lead", "trail ", "\u3000全角", "x\u00a0", "\n", "",
    "  ", "王芳", "王芳", "线索编号", "长" * 40_000, "😀" * 17_000, "a" + "😀" * 16_383, "ab" + "😀" * 16_383, None,
]


def _frame() -> pl.DataFrame:
    n = len(HOSTILE)
    return pl.DataFrame({
        "text": HOSTILE,
        "tier": (["A", "B", "C", "D", None] * n)[:n],
        "count": pl.Series([1, -5, 0, 2**31 - 1, None] * n, dtype=pl.Int32)[:n],
        "score": ([0.1 + 0.2, 201.9, 1e20, 1e-7, None, 12345678901234567.0] * n)[:n],
        "day": ([dt.date(1900, 1, 1), dt.date(1900, 2, 28), dt.date(1900, 3, 1), dt.date(2024, 11, 17), None] * n)[:n],
    }).vstack(pl.DataFrame({"text": [None, None], "tier": [None, None], "count": [None, None], "score": [None, None],
                            "day": [None, None]}, schema={"text": pl.String, "tier": pl.String, "count": pl.Int32,
                                                          "score": pl.Float64, "day": pl.Date}))


def _workbook(path: Path, frame: pl.DataFrame, *, fast: bool) -> None:
    """`frame` under a header row, written cell by cell by xlsxwriter or by the fast writer."""
    layout = io.BytesIO()
    wb = xlsxwriter.Workbook(layout, {"in_memory": True})
    head = wb.add_format({"bold": True})
    wrap = wb.add_format({"text_wrap": True})
    date = wb.add_format({"num_format": "yyyy-mm-dd"})
    tiers = {"A": wb.add_format({"bg_color": "#F8CBAD"}), "B": wb.add_format({"bg_color": "#FFE699"}), "C": None}
    ws = wb.add_worksheet("数据")
    for c, name in enumerate(frame.columns):
        ws.write_string(0, c, name if name != "text" else "线索编号", head)
    ws.set_column(1, 1, 12, wrap)
    if not fast:
        for r, row in enumerate(frame.iter_rows(named=True), start=1):
            for c, (name, value) in enumerate(row.items()):
                if value is None:
                    continue
                if name == "tier":
                    ws.write_string(r, c, value, tiers.get(value, wrap))
                elif name == "text":
                    ws.write_string(r, c, value, wrap)
                elif name == "day":
                    ws.write_datetime(r, c, dt.datetime.combine(value, dt.time()), date)
                else:
                    ws.write_number(r, c, value)
        wb.close()
        path.write_bytes(layout.getvalue())
        return
    column_b = style_id(wrap)  # xlsxwriter gives an unformatted cell its column's format
    styles: dict[str, int | pl.Expr] = {
        "text": style_id(wrap), "day": style_id(date),
        "tier": pl.col("tier").replace_strict({t: style_id(f or wrap) for t, f in tiers.items()}, default=column_b,
                                              return_dtype=pl.Int64),
    }
    wb.close()
    styles = {name: style for name, style in styles.items() if name in frame.columns}
    path.write_bytes(workbook_with_rows(layout.getvalue(), {"数据": SheetRows(frame, styles)}))


def _cells(path: Path) -> dict[tuple[str, str], tuple[object, ...]]:
    """Every cell: value, type and resolved format (openpyxl)."""
    out = {}
    for ws in openpyxl.load_workbook(path).worksheets:
        for row in ws.iter_rows():
            for c in row:
                out[(ws.title, c.coordinate)] = (c.value, type(c.value), c.data_type, repr(c.font), repr(c.fill),
                                                 repr(c.alignment), c.number_format)
    return out


def _raw_strings(path: Path) -> dict[str, str]:
    """Each text cell's raw <si> entry, by cell reference (what every reader parses)."""
    with zipfile.ZipFile(path) as package:
        table = re.findall(r"<si>.*?</si>", package.read("xl/sharedStrings.xml").decode(), flags=re.S)
        sheet = package.read("xl/worksheets/sheet1.xml").decode()
    return {ref: table[int(v)] for ref, v in re.findall(r'<c r="([A-Z]+\d+)"[^>]* t="s"><v>(\d+)</v></c>', sheet)}


def test_fast_rows_read_back_as_xlsxwriter_writes_them(tmp_path):
    frame = _frame().filter(pl.col("text").ne_missing("<r>x</r>"))  # xlsxwriter would inject that text as XML markup
    _workbook(tmp_path / "slow.xlsx", frame, fast=False)
    _workbook(tmp_path / "fast.xlsx", frame, fast=True)
    slow, fast = _cells(tmp_path / "slow.xlsx"), _cells(tmp_path / "fast.xlsx")
    assert fast == slow
    assert _raw_strings(tmp_path / "fast.xlsx") == _raw_strings(tmp_path / "slow.xlsx")
    read = [CalamineWorkbook.from_path(str(tmp_path / n)).get_sheet_by_index(0).to_python() for n in ("slow.xlsx", "fast.xlsx")]
    assert read[0] == read[1]
    ws = openpyxl.load_workbook(tmp_path / "fast.xlsx")["数据"]
    assert ws.max_row == frame.height - 1  # the two empty rows at the end are no rows at all
    assert ws.calculate_dimension() == f"A1:E{frame.height - 1}"


def test_text_reads_back_exactly_and_long_cells_are_cut_where_excel_stops(tmp_path):
    frame = _frame().select("text")
    _workbook(tmp_path / "fast.xlsx", frame, fast=True)
    [header, *cells] = CalamineWorkbook.from_path(str(tmp_path / "fast.xlsx")).get_sheet_by_index(0).to_python()
    by_text = {t: row[0] for t, row in zip(frame["text"].to_list(), cells)}
    for text in HOSTILE[:31]:
        if text != "\ufffe\uffff":  # written as _xFFFE__xFFFF_, as xlsxwriter writes them; calamine keeps that
            assert by_text[text] == text  # control characters, escapes, markup and edge whitespace come back
    assert by_text["长" * 40_000] == "长" * 32_767
    assert by_text["😀" * 17_000] == "😀" * 16_383  # 32,766 UTF-16 units: the next emoji would not fit
    assert by_text["a" + "😀" * 16_383] == "a" + "😀" * 16_383
    assert by_text["ab" + "😀" * 16_383] == "ab" + "😀" * 16_382
    ws = openpyxl.load_workbook(tmp_path / "fast.xlsx").active
    values = {c.value for c in ws["A"]}
    assert {"0012345", "013800000000", "_x0041_", "<r>x</r>", " lead"} <= values  # text, never numbers


def test_shared_string_entries_match_xlsxwriter_for_every_character():
    characters = [chr(c) for c in (*range(0xD800), *range(0xE000, 0x10000), *range(0x10000, 0x110000, 4099))]
    texts = [f"a{c}" for c in characters] + [f"{c}a" for c in characters] + ["_x00FF_" + c for c in characters[:300]]

    def xlsxwriter_si(text: str) -> str:
        entry = SharedStrings()
        out = io.StringIO()
        entry._set_filehandle(out)
        entry._write_si(text)
        return out.getvalue()

    ours = pl.DataFrame({"text": texts}).select(_escaped(pl.col("text")).alias("e")).select(_si(pl.col("e")))
    expected = [xlsxwriter_si(t) for t in texts]
    assert ours.to_series().to_list() == expected
    plain = ["plain", "全角　", *texts[:5000:7]]  # escaping only what needs it gives the same entries
    assert xlsx_write._entries(pl.Series(texts + plain)).to_list() == expected + [xlsxwriter_si(t) for t in plain]


def test_inert_text_matches_inert():
    values = [v for v in HOSTILE if v is None or len(v) < 100]
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    assert frame.select(inert_text(pl.col("v")))["v"].to_list() == [inert(v) for v in values]


def test_nan_is_refused_as_xlsxwriter_refuses_it(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        _workbook(tmp_path / "nan.xlsx", pl.DataFrame({"score": [1.0, float("nan")]}), fast=True)


def _hostile_leads() -> pl.DataFrame:
    n = 3
    return pl.DataFrame({
        "rank": [1, 2, 3], "tier": ["A", "B", "C"], "score": [88.5, 26.0, 0.1 + 0.2], "change": ["new", "changed", "unchanged"],
        "change_detail": ["", "评分 20→26", ""], "status": ["new", "assigned", "closed"],
        "lead_id": ["XS0001", "XS0002", "XS0003"], "subject_name": ["=HYPERLINK(\"x\")", "李\x01娜", None],
        "subject_role": ["被害人"] * n, "id_masked": ["0012345", "350425********1234", ""],
        "phone": ["013800000000", "138****0000", None], "address": ["+大田县", "@均溪镇", " 尾随空格 "],
        "victim_name": ["王芳", "张伟", "_x0041_"], "case_no": ["-1", "C2", "(2024)闽0425刑初1号"],
        "charge": ["故意伤害罪"] * n, "injury": ["重伤二级", "死亡", None],
        "incident_date": [dt.date(2025, 3, 1), None, dt.date(1999, 12, 31)], "unit": ["大田县人民检察院", None, "x"],
        "reasons": ["长" * 40_000, "被害人死亡", "a&b<c>"], "aid_estimate": ["上限参考 22.3 万元", "", ""],
        "referrals": ["民政", "", ""],
        "evidence": ["终本案件e.xlsx第3行：身份证号一致；=v.xlsx#2：姓名一致", "", "无冒号的依据"],
        "source_rows": ["v.xlsx#2；e.xlsx#3", "v.xlsx#5", "k.csv#9"], "subject_id18": [make_id(seq=246), None, None],
        "subject_phone": ["13800000000", None, None],
    })


def test_leads_xlsx_keeps_text_numbers_dates_and_formats(tmp_path):
    con = open_database(tmp_path / "db.duckdb")
    files = export_leads(con, _hostile_leads(), tmp_path / "out", "R1", {"run_id": "R1", "sources": {}})
    wb = openpyxl.load_workbook(files.xlsx)
    ws = wb["线索清单"]
    header = [c.value for c in ws[1]]
    assert header == list(HEADERS_ZH.values())
    row = {h: c for h, c in zip(header, ws[2])}
    assert row["救助对象"].value == "'=HYPERLINK(\"x\")" and row["救助对象"].data_type == "s"
    assert row["身份证号"].value == "0012345" and row["联系电话"].value == "013800000000"
    assert row["案号"].value == "'-1" and row["住址"].value == "'+大田县"
    assert row["排名"].value == 1 and row["评分"].value == 88.5 and row["线索理由"].value == "长" * 32_767
    assert row["案发日期"].value == dt.datetime(2025, 3, 1) and row["案发日期"].number_format == "yyyy-mm-dd"
    assert row["优先级"].fill.fgColor.rgb == "FFF8CBAD" and row["优先级"].font.b
    assert row["线索理由"].alignment.wrap_text and row["处理结果"].value == ""
    third = {h: c.value for h, c in zip(header, ws[4])}  # numbers are written %.16G, as xlsxwriter writes them
    assert third["评分"] == 0.3 and third["被害人"] == "_x0041_" and third["住址"] == " 尾随空格 "
    assert third["救助对象"] is None and third["线索理由"] == "a&b<c>"
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:Z4" and ws.dimensions == "A1:Z4"
    assert str(ws.data_validations.dataValidation[0].sqref) == "X2:X4"
    evidence = [[c.value for c in r] for r in wb["同一人依据"].iter_rows()]
    assert evidence == [["线索编号", "救助对象", "来源及行号", "依据"],
                        ["XS0001", "'=HYPERLINK(\"x\")", "终本案件e.xlsx第3行", "身份证号一致"],
                        ["XS0001", "'=HYPERLINK(\"x\")", "'=v.xlsx#2", "姓名一致"],
                        ["XS0003", "", "无冒号的依据", ""]]
    read = CalamineWorkbook.from_path(str(files.xlsx)).get_sheet_by_name("线索清单").to_python()
    assert read[2][header.index("救助对象")] == "李\x01娜"


def test_password_protected_leads_xlsx_holds_the_same_cells(tmp_path):
    from msoffcrypto.format.ooxml import OOXMLFile

    con = open_database(tmp_path / "db.duckdb")
    plain = export_leads(con, _hostile_leads(), tmp_path / "plain", "R1", {"run_id": "R1"})
    sealed = export_leads(con, _hostile_leads(), tmp_path / "sealed", "R1", {"run_id": "R1"}, password="密码-pw")
    opened = io.BytesIO()
    with sealed.xlsx.open("rb") as fh:
        office = OOXMLFile(fh)
        office.load_key(password="密码-pw")
        office.decrypt(opened)
    (tmp_path / "opened.xlsx").write_bytes(opened.getvalue())
    assert _cells(tmp_path / "opened.xlsx") == _cells(plain.xlsx)


def _repacked_by_zipfile(package: bytes) -> bytes:
    """The same parts written again, serially, by zipfile as the writer did before compressing on threads."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, info.date_time)
            entry.external_attr = info.external_attr
            target.writestr(entry, source.read(info), zipfile.ZIP_DEFLATED, xlsx_write.COMPRESS_LEVEL)
    return out.getvalue()


def test_rows_rendered_in_pieces_and_compressed_on_threads_give_the_package_zipfile_writes(tmp_path, monkeypatch):
    frame = pl.concat([_frame().filter(pl.col("text").ne_missing("<r>x</r>"))] * 40)
    _workbook(tmp_path / "whole.xlsx", frame, fast=True)
    monkeypatch.setattr(xlsx_write, "_ROWS_PER_PIECE", 7)  # many pieces, some holding only empty rows
    _workbook(tmp_path / "pieces.xlsx", frame, fast=True)
    pieces = (tmp_path / "pieces.xlsx").read_bytes()
    with zipfile.ZipFile(tmp_path / "whole.xlsx") as whole, zipfile.ZipFile(io.BytesIO(pieces)) as cut:
        assert {i.filename: whole.read(i) for i in whole.infolist() if i.filename != "docProps/core.xml"} == \
               {i.filename: cut.read(i) for i in cut.infolist() if i.filename != "docProps/core.xml"}
    assert pieces == _repacked_by_zipfile(pieces)
    monkeypatch.setattr(xlsx_write, "_ZIP64_FROM", 1000)  # a package zipfile would give ZIP64 records: zipfile writes it
    _workbook(tmp_path / "large.xlsx", frame, fast=True)
    assert (tmp_path / "large.xlsx").read_bytes() == _repacked_by_zipfile((tmp_path / "large.xlsx").read_bytes())
    slow = tmp_path / "slow.xlsx"
    _workbook(slow, frame, fast=False)
    assert _cells(tmp_path / "pieces.xlsx") == _cells(slow)


def test_text_equal_to_a_header_even_one_with_escapes_reuses_its_shared_string():
    headers = ["a&b", "_x0041_", " edge", "plain", "\x01ctl"]
    layout = io.BytesIO()
    wb = xlsxwriter.Workbook(layout, {"in_memory": True})
    ws = wb.add_worksheet("数据")
    for c, name in enumerate(headers):
        ws.write_string(0, c, name)
    wb.close()
    frame = pl.DataFrame({name: [name, f"{name}!", None] for name in headers})
    package = workbook_with_rows(layout.getvalue(), {"数据": SheetRows(frame)})
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        table = zf.read("xl/sharedStrings.xml").decode()
    entries = re.findall(r"<si>.*?</si>", table, flags=re.S)
    assert len(entries) == len(set(entries)) == 2 * len(headers)
    assert 'count="15"' in table and 'uniqueCount="10"' in table


def test_a_failure_on_a_worker_thread_fails_the_export_and_leaves_no_file(tmp_path, monkeypatch):
    con = open_database(tmp_path / "db.duckdb")
    real = xlsx_write._deflated

    def failing(pieces):
        data = list(pieces)
        if any(b"<sheetData><row" in piece for piece in data):
            raise OSError("disk full")
        return real(data)

    monkeypatch.setattr(xlsx_write, "_deflated", failing)
    with pytest.raises(OSError, match="disk full"):
        export_leads(con, _hostile_leads(), tmp_path / "out", "R1", {"run_id": "R1", "sources": {}})
    assert list((tmp_path / "out").iterdir()) == []
    monkeypatch.undo()

    def no_parquet(*args):
        raise OSError("parquet refused")

    monkeypatch.setattr(export, "_write_flat", no_parquet)
    with pytest.raises(OSError, match="parquet refused"):
        export_leads(con, _hostile_leads(), tmp_path / "out", "R1", {"run_id": "R1", "sources": {}})
    assert list((tmp_path / "out").iterdir()) == []
    assert con.execute("SELECT count(*) FROM exports").fetchall() == [(0,)]


def test_parts_compressed_apart_are_packed_byte_for_byte_as_zipfile_packs_them():
    parts = [("[Content_Types].xml", b"<Types/>", 0o644 << 16), ("xl/表.xml", "数据".encode() * 5000, 0),
             ("docProps/app.xml", b"", 0)]
    infos = []
    for name, _, mode in parts:
        info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
        info.external_attr = mode
        infos.append(info)
    ours = xlsx_write._zipped([(info, xlsx_write._deflated([data[:7], data[7:]])) for info, (_, data, _) in zip(infos, parts)])
    theirs = io.BytesIO()
    with zipfile.ZipFile(theirs, "w") as package:
        for info, (_, data, _) in zip(infos, parts):
            package.writestr(info, data, zipfile.ZIP_DEFLATED, xlsx_write.COMPRESS_LEVEL)
    assert ours == theirs.getvalue()
