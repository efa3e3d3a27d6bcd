"""The fast readers (calamine for XLSX, polars for CSV) and the column checks give exactly what the
reference readers (openpyxl, the csv module) and the row rules give, on tricky files — and the fast
path is really taken where it should be, so that these comparisons are not vacuous."""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import random
import unicodedata
import zipfile
from pathlib import Path

import polars as pl
import pytest

from conftest import make_id
from pipeline import ingest, readers, xlsx_fast
from pipeline.ingest import ingest_file
from pipeline.readers import read_table_file
from pipeline.store import open_database
from pipeline.validate import _json_object
from pipeline.values import NULL_TOKENS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:openpyxl")  # crafted workbooks lack a default style

HEADER = ["姓名", "身份证号码", "残疾类别", "残疾等级", "发证日期", "备注"]
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


# ------------------------------------------------------------------------------------------ fixtures

def _openpyxl_book(path: Path, sheets: dict[str, list[list[object]]], merge: dict[str, str] | None = None) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    ws.cell(row=r, column=c, value=value)
        if merge and title in merge:
            ws.merge_cells(merge[title])
    wb.save(path)
    return path


def _crafted_book(path: Path, sheet_xml: str, styles: str | None = None, shared: str | None = None) -> Path:
    """A minimal workbook around raw sheet XML (for cells no writer library produces on request)."""
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    doc = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    rel = "http://schemas.openxmlformats.org/package/2006/relationships"
    parts = {"xl/worksheets/sheet1.xml": ("worksheet", f'<worksheet xmlns="{NS}">{sheet_xml}</worksheet>')}
    if styles is not None:
        parts["xl/styles.xml"] = ("styles", f'<styleSheet xmlns="{NS}">{styles}</styleSheet>')
    if shared is not None:
        parts["xl/sharedStrings.xml"] = ("sharedStrings", f'<sst xmlns="{NS}">{shared}</sst>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
            + "".join(f'<Override PartName="/{name}" ContentType="{ct}.{kind}+xml"/>' for name, (kind, _) in parts.items())
            + "</Types>"))
        z.writestr("_rels/.rels", f'<Relationships xmlns="{rel}"><Relationship Id="rId1" Type="{doc}/officeDocument" '
                                  'Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<workbook xmlns="{NS}" xmlns:r="{doc}"><sheets>'
                                      '<sheet name="名单" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{rel}">' + "".join(
            f'<Relationship Id="rId{i}" Type="{doc}/{kind}" Target="{name[3:]}"/>'
            for i, (name, (kind, _)) in enumerate(parts.items(), start=1)) + "</Relationships>")
        for name, (_, xml) in parts.items():
            z.writestr(name, xml)
    return path


_STYLES = ('<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
           '<numFmt numFmtId="165" formatCode="yyyy&quot;年&quot;m&quot;月&quot;d&quot;日&quot; hh:mm:ss"/></numFmts>'
           '<fonts count="1"><font/></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
           '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
           '<cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="4"/></cellXfs>')


def _people(n: int, seed: int = 1) -> list[list[object]]:
    rng = random.Random(seed)
    return [[rng.choice("赵钱孙李周吴郑王") + rng.choice("伟芳娜敏静丽强"), make_id(seq=i + 100), "肢体", "二级",
             None, None] for i in range(n)]


def _xlsx_fixtures(folder: Path) -> dict[str, Path]:
    """Workbooks the fast reader must read exactly as openpyxl does (name → path)."""
    import xlsxwriter

    people = _people(8)
    typed = [
        [people[0][0], people[0][1], "肢体", "二级", dt.datetime(2021, 3, 4), 1.0],
        [people[1][0], 3.50425198e17, "视力", 2, dt.datetime(2021, 3, 4, 12, 30, 5), 1.5],
        [people[2][0], "  " + people[2][1] + " ", True, 0.1, dt.date(2024, 2, 29), 1e-5],
        [people[3][0], people[3][1], False, 123456789012345.0, "2021-03-04 00:00:00", -0.0],
        [people[4][0], "035042519800101001X", "=1+1", "true", "无", "长" * 1200],
    ]
    out = {
        "typed values, data from row 3": _openpyxl_book(folder / "typed.xlsx", {"名单": [[], [], HEADER, *typed]}),
        "blank rows, column C onwards, title row": _openpyxl_book(
            folder / "offset.xlsx", {"名单": [[None, None, "2026年名单"], [], [None, None, *HEADER], [],
                                              *([None, None, *p] for p in people[:4]), [], [None, None, *people[4]]]}),
        "merged title, several sheets": _openpyxl_book(
            folder / "sheets.xlsx",
            {"说明": [["本表为测试"]], "空表": [], "名单": [["大田县残疾人名单"], HEADER, *people[:5]],
             "续表": [HEADER, *people[5:]]}, merge={"名单": "A1:F1"}),
    }
    path = folder / "inline.xlsx"  # inline strings (constant memory), date formats, formulas with cached values
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    ws = wb.add_worksheet("名单")
    date, chinese = wb.add_format({"num_format": "yyyy-mm-dd"}), wb.add_format({"num_format": 'yyyy"年"m"月"d"日"'})
    for c, h in enumerate(HEADER):
        ws.write_string(0, c, h)
    for r, p in enumerate(people, start=1):
        ws.write_string(r, 0, p[0])
        ws.write_string(r, 1, p[1])
        ws.write_number(r, 2, r)
        ws.write_formula(r, 3, f"=C{r + 1}*2", None, r * 2)
        ws.write_datetime(r, 4, dt.datetime(2020, 1, r, 8 * (r % 2)), date if r % 3 else chinese)
        ws.write_formula(r, 5, '="备注"&C2', None, "备注1")
    wb.close()
    out["inline strings, formulas, date formats"] = path
    rows = "".join(
        f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>{p[0]}</t></is></c><c r="B{r}"><v>{n}</v></c>'
        f'<c r="C{r}" s="1"><v>{d}</v></c><c r="D{r}" s="2"><v>{45000.5 + r}</v></c><c r="E{r}" s="3"><v>{r}.25</v></c></row>'
        for r, p, n, d in [(2, people[0], "350425198611011493", "45000"), (3, people[1], "3.50425198611011E+17", "3000000"),
                           (4, people[2], "-350425198611011493", "44000"), (5, people[3], "12", "45001")])
    header = "".join(f'<c r="{col}1" t="inlineStr"><is><t>{h}</t></is></c>' for col, h in zip("ABCDE", HEADER))
    out["integer literals, a number in a date cell, trailing empty rows"] = _crafted_book(
        folder / "literals.xlsx",
        f'<dimension ref="A1:E9"/><sheetData><row r="1">{header}</row>{rows}<row r="8"/><row r="9"><c r="A9" s="1"/></row>'
        "</sheetData>", styles=_STYLES)
    return out


def _xlsx_deferred(folder: Path) -> dict[str, Path]:
    """Workbooks the fast reader must leave to openpyxl (they still have to read the same)."""
    people = _people(3, seed=2)
    rows = [f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>{p[0]}</t></is></c>'
            f'<c r="B{r}" t="inlineStr"><is><t>{p[1]}</t></is></c></row>' for r, p in enumerate(people, start=2)]
    body = "".join(rows)
    head = '<row r="1"><c r="A1" t="inlineStr"><is><t>姓名</t></is></c><c r="B1" t="inlineStr"><is><t>身份证号码</t></is></c>'
    return {
        "an error cell": _crafted_book(folder / "error.xlsx", f'<dimension ref="A1:C4"/><sheetData>{head}'
                                       '<c r="C1" t="e"><v>#N/A</v></c></row>' + body + "</sheetData>"),
        "an escaped character": _crafted_book(folder / "escape.xlsx", f'<dimension ref="A1:C4"/><sheetData>{head}'
                                              '<c r="C1" t="inlineStr"><is><t>a_x000D_b</t></is></c></row>' + body + "</sheetData>"),
        "rows out of order": _crafted_book(folder / "order.xlsx", f'<dimension ref="A1:B4"/><sheetData>{head}</row>'
                                           + "".join(reversed(rows)) + "</sheetData>"),
        "a time of day and a negative date": _openpyxl_book(
            folder / "times.xlsx", {"名单": [HEADER[:5], [*people[0][:4], dt.time(13, 45)], [*people[1][:4], dt.datetime(1899, 12, 25)]]}),
        "a timestamp with milliseconds": _openpyxl_book(
            folder / "millis.xlsx", {"名单": [HEADER[:5], [*people[0][:4], dt.datetime(2021, 5, 6, 7, 8, 9, 123000)]]}),
    }


def _csv_fixtures(folder: Path) -> dict[str, Path]:
    """Text files the fast reader must read exactly as the csv module does (name → path)."""
    people = _people(6, seed=3)
    lines = [",".join(HEADER)] + [f"{p[0]},{p[1]},肢体,二级,2020-01-0{i + 1},备注{i}" for i, p in enumerate(people)]
    texts = {
        "quotes, doubled quotes, delimiters inside": (
            lines[:2] + [f'"{people[1][0]}",{people[1][1]},"肢体,听力","二""级","2020-02-30","a ""quoted"" note"',
                         f',{people[2][1]},肢体,二级,见附件,"no name: quarantined"'] + lines[3:], "utf-8"),
        "a cell spanning lines (CRLF)": (
            lines[:2] + [f'{people[1][0]},{people[1][1]},肢体,二级,,"第一行\r\n第二行"', f'{people[2][0]},{people[2][1]},"a\nb",二级,,'],
            "utf-8"),
        "blank lines, leading, inside and trailing": ([""] + lines[:3] + ["", " "] + lines[3:] + ["", ""], "utf-8"),
        "ragged rows (shorter and longer)": (lines[:2] + [f"{people[1][0]},{people[1][1]}", lines[3] + ",多余,更多"], "utf-8"),
        "a title line with fewer cells": (["2026年大田县残疾人名单"] + lines, "gbk"),
        "GBK": (lines, "gbk"),
        "UTF-8 with BOM": (lines, "utf-8-sig"),
        "UTF-16": (lines, "utf-16"),
        "tab separated": ([line.replace(",", "\t") for line in lines], "utf-8"),
        "edge whitespace and full-width spaces": ([lines[0], f"\u3000{people[0][0]} ,\t{people[0][1]}\t,\x1c肢体\x1f,二级 ,,"], "utf-8"),
    }
    out = {}
    for i, (name, (rows, encoding)) in enumerate(texts.items()):
        end = "\r\n" if encoding == "gbk" or "CRLF" in name else "\n"
        path = folder / f"text{i}.csv"
        path.write_bytes(end.join(rows).encode(encoding) + (end.encode(encoding) if i % 2 else b""))
        out[name] = path
    return out


def _csv_deferred(folder: Path) -> dict[str, Path]:
    people = _people(3, seed=4)
    lines = [",".join(HEADER[:4])] + [f"{p[0]},{p[1]},肢体,二级" for p in people]
    out = {}
    for i, (name, text) in enumerate({
        "an unclosed quote": "\r\n".join(lines[:2] + [f'{people[1][0]},{people[1][1]},"肢体,二级'] + lines[3:]) + "\r\n",
        "a quote inside an unquoted cell": "\n".join(lines[:2] + [f'{people[1][0]},{people[1][1]},肢"体,二级'] + lines[3:]),
        "a lone CR between lines": "\r".join(lines[:2]) + "\n" + "\n".join(lines[2:]),
        "text after a closing quote": "\n".join(lines[:2] + [f'{people[1][0]},"{people[1][1]}"x,肢体,二级'] + lines[3:]),
    }.items()):
        path = folder / f"deferred{i}.csv"
        path.write_text(text, encoding="utf-8")
        out[name] = path
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("fastpath")
    return {"xlsx": _xlsx_fixtures(folder), "xlsx_deferred": _xlsx_deferred(folder),
            "csv": _csv_fixtures(folder), "csv_deferred": _csv_deferred(folder)}


def _tables(path: Path, fast: bool) -> list[tuple]:
    """A file's tables, trailing empty cells dropped (the fast readers pad rows to the table's width)."""
    out = []
    for t in read_table_file(path, fast=fast):
        rows = []
        for number, cells in t.rows:
            while cells and cells[-1] is None:
                cells = cells[:-1]
            rows.append((number, cells))
        out.append((t.sheet, t.encoding, t.problem, rows))
    return out


def _csv_is_fast(path: Path) -> bool:
    text, _ = readers._decode(path.read_bytes(), path)
    text = text.replace("\x00", "")
    return readers._csv_frame(text, readers._sniff_delimiter(text)) is not None


# -------------------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("kind", ["xlsx", "xlsx_deferred", "csv", "csv_deferred"])
def test_fast_readers_give_the_reference_tables(files, kind):
    for name, path in files[kind].items():
        assert _tables(path, fast=True) == _tables(path, fast=False), name


def test_the_fast_path_is_taken_where_it_should_be(files):
    for name, path in files["xlsx"].items():
        assert xlsx_fast.read_xlsx_exact(path), name  # raises _Deferred if it would leave the file to openpyxl
    for name, path in files["xlsx_deferred"].items():
        with pytest.raises(xlsx_fast._Deferred):
            xlsx_fast.read_xlsx_exact(path)
    assert all(_csv_is_fast(path) for path in files["csv"].values())
    assert not any(_csv_is_fast(path) for path in files["csv_deferred"].values())


def test_xlsx_fast_path_keeps_spreadsheet_row_numbers_and_odd_numbers(files):
    typed = {n: cells for n, cells in read_table_file(files["xlsx"]["typed values, data from row 3"])[0].rows}
    assert typed[3][0] == "姓名" and typed[5][1] == "3.50425198E+17" and typed[5][4] == "2021-03-04 12:30:05"
    assert typed[6][2] == "是" and typed[7][3] == "123456789012345" and typed[7][5] == "0"
    literals = read_table_file(files["xlsx"]["integer literals, a number in a date cell, trailing empty rows"])[0]
    by_row = {n: cells for n, cells in literals.rows}
    assert by_row[2][1] == "350425198611011493" and by_row[3][1] == "3.50425199E+17" and by_row[3][2] == "#VALUE!"
    assert max(by_row) == 9  # the empty rows at the end are rows too (they count as blank, as with openpyxl)


def test_ingest_writes_the_same_rows_with_and_without_the_fast_path(files, tmp_path, monkeypatch):
    paths = [p for group in files.values() for p in group.values()]
    dumps = []
    for fast in (True, False):
        monkeypatch.setattr(ingest, "read_table_file", functools.partial(read_table_file, fast=fast))
        con = open_database(tmp_path / f"fast{fast}.duckdb")
        for path in paths:
            ingest_file(con, "disability", path, {}, "R1")
        dump = {}
        for table in ("raw_disability", "quarantine", "field_issues", "ingested_files"):
            columns = [c for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [table]).fetchall()
                if c not in ("run_id", "ingested_at")]
            cols = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in columns)
            dump[table] = con.execute(f"SELECT {cols} FROM {table} ORDER BY ALL").fetchall()
        con.close()
        dumps.append(dump)
    assert dumps[0]["raw_disability"] and dumps[0]["quarantine"] and dumps[0]["field_issues"]
    for table in dumps[0]:
        assert dumps[0][table] == dumps[1][table], table


def test_calamine_timestamps_agree_with_openpyxl_to_the_second(tmp_path):
    """A timestamp without a fraction of a second is the same through both readers (sub-second ones defer)."""
    rng = random.Random(7)
    serials = [rng.randint(61, 80000) + rng.randint(0, 86399) / 86400 for _ in range(3000)]
    rows = "".join(f'<row r="{i + 1}"><c r="A{i + 1}" s="{1 + i % 2}"><v>{v!r}</v></c></row>' for i, v in enumerate(serials))
    path = _crafted_book(tmp_path / "stamps.xlsx", f'<dimension ref="A1:A{len(serials)}"/><sheetData>{rows}</sheetData>',
                         styles=_STYLES)
    assert xlsx_fast.read_xlsx_exact(path)
    assert _tables(path, fast=True) == _tables(path, fast=False)


def test_text_cleaning_and_json_match_their_scalar_definitions():
    texts = ["", " ", "\u3000a\u3000", "\x1cb\x1f", "\u200bc", "d\u2028", "长" * 100_005, "e\u00a0", "\ufeff"]
    cleaned = pl.select(readers._clean_texts(pl.lit(pl.Series(texts)))).to_series().to_list()
    assert cleaned == [readers._clean_text(t) for t in texts]
    assert readers._WHITESPACE == "".join(c for c in map(chr, range(0x3001)) if c.isspace())
    values = ['a"b', "c\\d", "e\nf\r\tg\x08\x0c", "\x01\x1f\x7f", "中文", "\u2028"]
    frame = pl.DataFrame({"x": values, "y": [None, "1", None, "2", None, "3"]})
    got = frame.select(_json_object({"x": "备注", "y": 'k"ey'})).to_series().to_list()
    assert got == [json.dumps({"备注": x} | ({'k"ey': y} if y else {}), ensure_ascii=False) for x, y in zip(values, frame["y"])]


def test_a_long_cell_is_never_a_null_token():
    """validate._null_tokens skips cells longer than the longest null token. That is exact because NFKC
    turns no non-whitespace character into whitespace alone, no null-token character is a canonical
    composite (composition cannot make one), and casefolding never removes a character."""
    tokens = set("".join(NULL_TOKENS))
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        ch = chr(code)
        assert ch.isspace() or unicodedata.normalize("NFKC", ch).strip(), hex(code)
        assert ch.casefold(), hex(code)
        decomposition = unicodedata.decomposition(ch)
        if decomposition and not decomposition.startswith("<"):
            assert not set(ch.casefold()) <= tokens, hex(code)
