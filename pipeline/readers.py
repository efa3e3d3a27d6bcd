"""Read an agency export (CSV in any common Chinese encoding, XLSX, legacy XLS) into rows of text.

Every cell comes back as text (or None) exactly as a person would read it, so that nothing is
guessed here: ID numbers keep their leading zeros, a number Excel mangled into scientific notation
stays visibly mangled, and each row keeps the row number the spreadsheet shows (header = row 1).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import SourceFormatError

__all__ = ["SheetRows", "read_table_file", "SUPPORTED_SUFFIXES", "MAX_CELL_CHARS"]

SUPPORTED_SUFFIXES = frozenset({".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls"})
MAX_CELL_CHARS = 100_000
"""cells longer than this are cut (and the row quarantined by validation)"""

_ENCODINGS = ("utf-8-sig", "gb18030")
csv.field_size_limit(16 * 1024 * 1024)


@dataclass
class SheetRows:
    """One table of an input file: its cells as text, with spreadsheet row numbers."""

    sheet: str | None
    encoding: str | None
    rows: list[tuple[int, list[str | None]]]
    """(row number as the spreadsheet shows it, cells)"""


def read_table_file(path: Path) -> list[SheetRows]:
    """All tables in a file: one for a CSV, one per non-empty sheet for a workbook."""
    path = Path(path)
    try:
        head = path.read_bytes()[:8]
    except OSError as exc:
        raise SourceFormatError(path, f"cannot be read ({exc.strerror})") from None
    if head.startswith(b"PK\x03\x04"):
        return _read_xlsx(path)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return _read_xls(path)
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm", ".xls"}:
        # a file named .xlsx that is really text: read it as the CSV it is
        return [_read_csv(path)]
    return [_read_csv(path)]


def _decode(data: bytes, path: Path) -> tuple[str, str]:
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceFormatError(path, "is a binary file, not a CSV or Excel workbook",
                                hint="export the table again as CSV or XLSX")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    for enc in _ENCODINGS:
        try:
            return data.decode(enc), ("utf-8" if enc == "utf-8-sig" and not data.startswith(b"\xef\xbb\xbf") else enc)
        except UnicodeDecodeError:
            continue
    raise SourceFormatError(path, "text encoding not recognised (tried UTF-8 and GB18030/GBK)",
                            hint="save the file as UTF-8 or GBK CSV")


def _sniff_delimiter(text: str) -> str:
    first = text[:4096].splitlines()[:5]
    best, best_count = ",", 0
    for d in (",", "\t", ";", "|"):
        count = min((line.count(d) for line in first if line.strip()), default=0)
        if count > best_count:
            best, best_count = d, count
    return best


def _read_csv(path: Path) -> SheetRows:
    data = path.read_bytes()
    text, encoding = _decode(data, path)
    text = text.replace("\x00", "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    rows: list[tuple[int, list[str | None]]] = []
    try:
        for number, record in enumerate(reader, start=1):
            rows.append((number, [_clean_text(c) for c in record]))
    except csv.Error as exc:
        raise SourceFormatError(path, f"CSV structure broken near row {reader.line_num} ({exc})") from None
    return SheetRows(sheet=None, encoding=encoding, rows=rows)


def _read_xlsx(path: Path) -> list[SheetRows]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise SourceFormatError(path, f"is not a readable XLSX workbook ({type(exc).__name__})",
                                hint="open it in Excel/WPS and save it again as .xlsx") from None
    tables: list[SheetRows] = []
    try:
        for ws in wb.worksheets:
            rows = [
                (number, [_cell_text(v) for v in values])
                for number, values in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1)
            ]
            if any(any(c is not None for c in cells) for _, cells in rows):
                tables.append(SheetRows(sheet=ws.title, encoding=None, rows=rows))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise SourceFormatError(path, f"XLSX workbook is damaged ({type(exc).__name__})",
                                hint="open it in Excel/WPS and save it again as .xlsx") from None
    finally:
        wb.close()
    return tables


def _read_xls(path: Path) -> list[SheetRows]:
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
    except (xlrd.XLRDError, OSError, AssertionError, IndexError, ValueError) as exc:
        raise SourceFormatError(path, f"is not a readable XLS workbook ({type(exc).__name__})",
                                hint="open it in Excel/WPS and save it again as .xlsx") from None
    tables: list[SheetRows] = []
    for sheet in book.sheets():
        rows: list[tuple[int, list[str | None]]] = []
        for r in range(sheet.nrows):
            cells: list[str | None] = []
            for c in range(sheet.ncols):
                cell = sheet.cell(r, c)
                value = cell.value
                if cell.ctype == xlrd.XL_CELL_DATE:
                    try:
                        value = xlrd.xldate.xldate_as_datetime(value, book.datemode)
                    except (ValueError, OverflowError):
                        pass
                elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                    value = None
                cells.append(_cell_text(value))
            rows.append((r + 1, cells))
        if rows:
            tables.append(SheetRows(sheet=sheet.name, encoding=None, rows=rows))
    return tables


def _clean_text(value: str) -> str | None:
    value = value.replace("\x00", "").strip()
    if not value:
        return None
    return value[:MAX_CELL_CHARS + 1]


def _cell_text(value: object) -> str | None:
    """A workbook cell as the text a person sees; numbers that lost digits stay visibly lost."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if abs(value) >= 1e15:
            return f"{value:.8E}"  # Excel already lost the digits; never pretend otherwise
        return repr(value)
    if isinstance(value, int):
        return str(value)  # an integer literal in the file kept all its digits
    return _clean_text(str(value))


def iter_nonempty(rows: list[tuple[int, list[str | None]]]) -> Iterator[tuple[int, list[str | None]]]:
    """Rows that have at least one non-empty cell."""
    for number, cells in rows:
        if any(c is not None for c in cells):
            yield number, cells
