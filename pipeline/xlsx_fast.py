"""Read an XLSX workbook through calamine, giving exactly the tables openpyxl gives, or defer to openpyxl.

openpyxl (read-only, cached formula values) defines what a workbook holds; it needs almost 30 s for a
60,000-row sheet. calamine (python-calamine, Rust) parses that sheet in under two seconds, without
holding the GIL, and gives each cell's value with its type, which `_cell_text` turns into the same
text. (fastexcel, on the same Rust library, hands over Arrow columns but turns the numbers, dates and
booleans of a mixed column into its own text, which loses what openpyxl shows.) The two readers
differ in a few places, and each is either reproduced here or detected, in which case the whole file
is left to openpyxl:

- which sheets there are, their names and their declared size (openpyxl reads only the rows and
  columns the sheet's <dimension> declares, and yields a row for every <row> element, even an empty
  one): openpyxl's own workbook reader is run for everything but the cells;
- which cells are dates: the workbook's cell styles are tried on calamine (a probe workbook with one
  cell per style) and must agree with openpyxl's classification; durations ([h]:mm) are not read here;
- error cells (#N/A), ISO date cells, text with _xHHHH_ escapes, rich text whose runs lose their edge
  spaces in calamine, rows without a number or out of order: detected in the sheet XML;
- times of day, dates before 1900-03-01, timestamps with sub-second parts (rounded differently):
  detected in the values;
- numbers of 16 digits and more (openpyxl keeps an integer literal exact, calamine reads a float) and
  out-of-range numbers in date cells (openpyxl shows #VALUE!): resolved from the cell's XML.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from pipeline.readers import SheetRows, _cell_text, _clean_texts

__all__ = ["read_xlsx_fast"]

log = logging.getLogger(__name__)

_SUFFIXES = (".xlsx", ".xlsm")
_FIRST_SAFE_DATE = dt.date(1900, 3, 1)
"""serial 61: before it the 1900 leap-year bug and negative serials make the two readers disagree"""
_LAST_SERIAL = 2958465
"""9999-12-31; openpyxl shows #VALUE! for a larger number in a date cell, calamine the number"""
_LONG_NUMBER = 1e15
"""from here on `_cell_text` shows a float in scientific notation, but an integer literal in full"""
_ROW = re.compile(rb'<row(?: r="(\d+)")?[\s/>]')
_ERROR_OR_ISO_CELL = re.compile(rb"""t=["'][ed]["']""")
_EDGE_SPACE = (b"<t> ", b"<t>\t", b"<t>\n", b"<t>\r", b" </t>", b"\t</t>", b"\n</t>", b"\r</t>")
_MAIN_NS = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PROBE_VALUE = 45000.25
_KINDS = frozenset({str, float, bool, dt.date, dt.datetime})
"""the value types calamine gives that are read here; a time of day, a duration or an int is left to openpyxl"""


class _Deferred(Exception):
    """The workbook holds something only openpyxl is sure to read right; the message says what."""


def read_xlsx_fast(path: Path) -> list[SheetRows] | None:
    """The tables openpyxl would read from the workbook (see `pipeline.readers`), or None to let openpyxl read it."""
    if Path(path).suffix.lower() not in _SUFFIXES:
        return None
    try:
        return read_xlsx_exact(Path(path))
    except _Deferred as why:
        log.debug("XLSX read by openpyxl: %s", why)
    except BaseException as exc:  # noqa: BLE001 — a damaged file is openpyxl's to report, with its own message;
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):  # a Rust panic (pyo3) is a BaseException too
            raise
        log.debug("XLSX read by openpyxl after %s", type(exc).__name__)
    return None


def read_xlsx_exact(path: Path) -> list[SheetRows]:
    """The workbook's non-empty sheets as openpyxl reads them; raises _Deferred when that cannot be promised."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aidleads-xlsx") as pool:
        # calamine parses the sheets (without holding the GIL) while openpyxl reads the workbook's structure
        parsed = pool.submit(_calamine_values, path)
        from openpyxl.reader.excel import ExcelReader
        from openpyxl.styles.stylesheet import apply_stylesheet
        from openpyxl.utils.datetime import WINDOWS_EPOCH
        from openpyxl.xml.constants import SHARED_STRINGS

        reader = ExcelReader(str(path), read_only=True, data_only=True)
        try:
            # openpyxl's own load_workbook steps, all but reading the shared strings
            reader.read_manifest()
            reader.read_workbook()
            reader.read_properties()
            reader.read_custom()
            reader.read_theme()
            apply_stylesheet(reader.archive, reader.wb)
            _require_dimensions(reader)
            reader.read_worksheets()
            reader.parser.assign_names()
            wb = reader.wb
            if wb.epoch != WINDOWS_EPOCH:
                raise _Deferred("1904 date system")
            date_styles = _date_styles(reader.archive, wb)
            strings = reader.package.find(SHARED_STRINGS)
            if strings is not None:
                _check_text_xml(reader.archive.read(strings.PartName[1:]))
            elif any("sharedstrings" in name.lower() for name in reader.valid_files):
                raise _Deferred("a shared-string table the workbook does not declare")
            sheets = [(ws, *_checked_xml(reader.archive, ws._worksheet_path)) for ws in wb.worksheets]
        finally:
            reader.archive.close()
        values = parsed.result()
    tables: list[SheetRows] = []
    for ws, raw, last_row in sheets:
        frame = _sheet_frame(values[ws.title], raw, last_row, ws.max_row, ws.max_column, date_styles)
        table = SheetRows(sheet=ws.title, encoding=None, frame=frame)
        if table.has_cells():
            tables.append(table)
    return tables


def _calamine_values(path: Path) -> dict[str, list[list]]:
    """Every worksheet's cells as calamine reads them, from A1 (sheet name → rows)."""
    from python_calamine import CalamineWorkbook, SheetTypeEnum

    with CalamineWorkbook.from_path(str(path)) as book:
        return {meta.name: book.get_sheet_by_name(meta.name).to_python(skip_empty_area=False)
                for meta in book.sheets_metadata if meta.typ == SheetTypeEnum.WorkSheet}


def _checked_xml(archive: zipfile.ZipFile, member: str) -> tuple[bytes, int]:
    """A sheet's XML, after checking it for what calamine reads differently, and its last row number."""
    raw = archive.read(member)
    return raw, _sheet_rows(raw)


def _require_dimensions(reader) -> None:  # noqa: ANN001 — openpyxl's ExcelReader
    """Every worksheet declares its size before its data (else openpyxl reads the whole sheet to find none)."""
    for _, rel in reader.parser.find_sheets():
        if rel.target not in reader.valid_files or "chartsheet" in rel.Type:
            continue
        with reader.archive.open(rel.target) as fh:
            head = fh.read(1 << 16)
        if b"<dimension" not in head.split(b"<sheetData", 1)[0] or _MAIN_NS not in head:
            raise _Deferred("a sheet without a <dimension> (or in an unusual XML form)")


def _date_styles(archive: zipfile.ZipFile, wb) -> set[int]:  # noqa: ANN001 — openpyxl's Workbook
    """The cell styles openpyxl reads as dates, after checking that calamine reads exactly the same ones."""
    from python_calamine import CalamineWorkbook

    date_styles = set(wb._date_formats)
    if wb._timedelta_formats:
        raise _Deferred("duration number formats")
    count = len(wb._cell_styles)
    if "xl/styles.xml" not in archive.namelist() or count == 0:
        return date_styles
    # one number cell per cell style, and one without a style (which openpyxl reads as style 0)
    cells = "".join(f'<c r="{_column_letter(i)}1" s="{i}"><v>{_PROBE_VALUE}</v></c>' for i in range(count))
    cells += f'<c r="{_column_letter(count)}1"><v>{_PROBE_VALUE}</v></c>'
    sheet = f'<worksheet xmlns="{_MAIN_NS.decode()}"><sheetData><row r="1">{cells}</row></sheetData></worksheet>'
    probe = CalamineWorkbook.from_filelike(io.BytesIO(_probe_workbook(sheet.encode(), archive.read("xl/styles.xml"))))
    for style, value in enumerate(probe.get_sheet_by_index(0).to_python(skip_empty_area=False)[0]):
        is_date = type(value) in (dt.date, dt.datetime)
        if not is_date and type(value) is not float:
            raise _Deferred(f"calamine reads cell style {style} as {type(value).__name__}")
        if is_date != ((style if style < count else 0) in date_styles):
            raise _Deferred(f"cell style {style} is a date for one reader only")
    return date_styles


def _probe_workbook(sheet: bytes, styles: bytes) -> bytes:
    """A workbook (uncompressed, in memory) of one sheet with the given styles."""
    rel_ns = "http://schemas.openxmlformats.org/package/2006/relationships"
    doc_rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    ct_main = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("[Content_Types].xml", (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct_main}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{ct_main}.worksheet+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{ct_main}.styles+xml"/></Types>'))
        z.writestr("_rels/.rels", f'<Relationships xmlns="{rel_ns}"><Relationship Id="rId1" '
                                  f'Type="{doc_rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<workbook xmlns="{_MAIN_NS.decode()}" xmlns:r="{doc_rel}"><sheets>'
                                      '<sheet name="probe" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", (
            f'<Relationships xmlns="{rel_ns}">'
            f'<Relationship Id="rId1" Type="{doc_rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{doc_rel}/styles" Target="styles.xml"/></Relationships>'))
        z.writestr("xl/worksheets/sheet1.xml", sheet)
        z.writestr("xl/styles.xml", styles)
    return out.getvalue()


def _column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _check_text_xml(raw: bytes) -> None:
    """Text that calamine would read differently from openpyxl (see the module docstring)."""
    if b"_x" in raw:
        raise _Deferred("_xHHHH_ escapes in text")
    if b"<r>" in raw and any(edge in raw for edge in _EDGE_SPACE):
        raise _Deferred("rich text with unpreserved edge spaces")


def _sheet_rows(raw: bytes) -> int:
    """The number of the sheet's last <row> element, after checking every row is numbered and in order."""
    if _ERROR_OR_ISO_CELL.search(raw):
        raise _Deferred("error or ISO-date cells")
    _check_text_xml(raw)
    if b"<sheetData" not in raw:
        raise _Deferred("an unusual sheet XML form")
    numbers = _ROW.findall(raw)
    if not numbers:
        return 0
    if b"" in numbers:
        raise _Deferred("rows without a row number")
    rows = list(map(int, numbers))
    if any(a >= b for a, b in zip(rows, rows[1:])):
        raise _Deferred("rows out of order")
    return rows[-1]


def _sheet_frame(values: list[list], raw: bytes, last_row: int, max_row: int | None, max_col: int | None,
                 date_styles: set[int]) -> pl.DataFrame:
    """The sheet's rows 1 … as openpyxl yields them: up to its last <row> but within its dimension."""
    if not max_row or not max_col:
        raise _Deferred("an open-ended dimension")
    height = min(last_row, max_row)
    values = values[:height]
    columns = list(zip(*values))[:max_col] if values else []
    long_numbers: list[tuple[int, int]] = []
    series = [_column_texts(column, c, long_numbers) for c, column in enumerate(columns)]
    if long_numbers:
        _resolve_long_numbers(raw, long_numbers, series, date_styles)
    pad = height - len(values)
    frame = pl.DataFrame([pl.Series("row", range(1, height + 1), dtype=pl.Int64),
                          *(s.alias(f"c{c}").extend_constant(None, pad) for c, s in enumerate(series))])
    return frame.with_columns(_clean_texts(pl.col(c)).alias(c) for c in frame.columns[1:])


def _column_texts(values: tuple, column: int, long_numbers: list[tuple[int, int]]) -> pl.Series:
    """A column's cells as openpyxl's `_cell_text` gives them (the strings still to be cleaned)."""
    kinds = set(map(type, values))
    if kinds == {str}:
        return pl.Series(values, dtype=pl.String)
    if not kinds <= _KINDS:
        odd = next(k for k in kinds if k not in _KINDS)
        raise _Deferred(f"a {odd.__name__} value openpyxl may read differently")
    texts = list(values)
    others = [i for i, v in enumerate(values) if type(v) is not str]
    numbers = [i for i in others if type(values[i]) is float]
    if numbers:
        floats = pl.Series([values[i] for i in numbers], dtype=pl.Float64)
        whole = (floats.abs() < _LONG_NUMBER) & (floats == floats.floor())
        shown = pl.select(pl.when(whole).then(floats.cast(pl.Int64).cast(pl.String))).to_series().to_list()
        for i, text, value in zip(numbers, shown, floats.to_list()):
            texts[i] = text if text is not None else _cell_text(value)
        large = (floats > _LAST_SERIAL) | (floats.abs() >= _LONG_NUMBER)
        long_numbers.extend((numbers[k], column) for k in large.arg_true().to_list())
    for i in others:
        value = values[i]
        kind = type(value)
        if kind is float:
            continue
        if kind is dt.date and value < _FIRST_SAFE_DATE:
            raise _Deferred("a date before 1900-03-01")
        if kind is dt.datetime and (value.date() < _FIRST_SAFE_DATE or value.microsecond):
            raise _Deferred("a timestamp before 1900-03-01 or with a fraction of a second")
        texts[i] = _cell_text(value)  # a bool, a date, a timestamp
    return pl.Series(texts, dtype=pl.String)


def _resolve_long_numbers(raw: bytes, cells: list[tuple[int, int]], series: list[pl.Series],
                          date_styles: set[int]) -> None:
    """Large numbers as openpyxl reads them: an integer literal in full, a number in a date cell as #VALUE!."""
    start = 0
    for row, column in sorted(cells):  # rows are in document order (checked), so one pass finds them all
        start = raw.find(b'<row r="%d"' % (row + 1), start)
        ref = b'<c r="%s%d"' % (_column_letter(column).encode(), row + 1)
        at = raw.find(ref, start)
        end = raw.find(b"</c>", at)
        if start < 0 or at < 0 or end < 0:
            raise _Deferred("a large number whose cell cannot be found")
        element = raw[at:end]
        tag = element[: element.find(b">")]
        style = re.search(rb'\ss="(\d+)"', tag)
        literal = re.search(rb"<v>\s*([^<]*?)\s*</v>", element)
        if literal is None or b"<f" in element:
            raise _Deferred("a large number without a plain value")
        if (int(style[1]) if style else 0) in date_styles:
            if float(literal[1]) <= _LAST_SERIAL:
                raise _Deferred("a number in a date cell calamine did not read as a date")
            text = "#VALUE!"
        elif not re.search(rb"[.eE]", literal[1]):
            text = str(int(literal[1]))
        else:
            continue
        series[column] = series[column].scatter(row, text)
