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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import SourceFormatError

__all__ = ["SheetRows", "read_table_file", "SUPPORTED_SUFFIXES", "MAX_CELL_CHARS", "DAMAGED_CHAR"]

SUPPORTED_SUFFIXES = frozenset({".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls"})
MAX_CELL_CHARS = 100_000
"""cells longer than this are cut (and the row quarantined by validation)"""
DAMAGED_CHAR = "\ufffd"
"""stands for bytes of a text file that no encoding could read; validation flags the cells holding it"""

_ENCODINGS = ("utf-8-sig", "gb18030")
_MAX_DAMAGED_SHARE = 0.01
"""a text file with more unreadable characters than this is rejected as being in an unknown encoding"""
_MAX_CONTROL_SHARE = 0.05
"""a text file with more control characters (other than tab, line ends and NUL) than this is binary"""
_MAX_NUL_SHARE = 0.10
"""a file (not UTF-16) with more NUL bytes than this is binary; a few stray NULs in a text export are dropped"""
csv.field_size_limit(16 * 1024 * 1024)


@dataclass
class SheetRows:
    """One table of an input file: its cells as text, with spreadsheet row numbers."""

    sheet: str | None
    encoding: str | None
    rows: list[tuple[int, list[str | None]]]
    """(row number as the spreadsheet shows it, cells)"""
    problem: str | None = None
    """why this sheet could not be read (the workbook's other sheets still are)"""


def read_table_file(path: Path, encoding: str | None = None) -> list[SheetRows]:
    """All tables in a file: one for a CSV, one per non-empty sheet for a workbook.

    `encoding` forces a text file's encoding (e.g. "cp950" for Big5); by default it is detected.
    """
    path = Path(path)
    try:
        head = path.read_bytes()[:8]
    except OSError as exc:
        raise SourceFormatError(path, f"cannot be read ({exc.strerror})") from None
    if head.startswith(b"PK\x03\x04"):
        return _read_xlsx(path)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return _read_xls(path)
    # anything else is read as text, whatever its name: a file named .xlsx that is really CSV loads
    return [_read_csv(path, encoding)]


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text saved without a byte-order mark: NUL bytes on one side of most ASCII characters."""
    sample = data[:65536]
    if len(sample) < 4 or sample.count(0) < len(sample) // 8:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    codec = "utf-16-le" if odd > 4 * max(even, 1) else "utf-16-be" if even > 4 * max(odd, 1) else None
    if codec is None:
        return None
    try:
        return data[: len(data) - len(data) % 2].decode(codec)
    except UnicodeDecodeError:
        return None


def _control_share(text: str) -> float:
    sample = text[:65536]
    controls = sum(1 for ch in sample if (ch < " " and ch not in "\t\r\n\x00") or ch == "\x7f")
    return controls / max(len(sample), 1)


def _decode(data: bytes, path: Path, forced: str | None = None) -> tuple[str, str]:
    """The file's text and the encoding it was read in.

    UTF-8 (with or without BOM), GB18030/GBK and UTF-16 (with or without BOM) are recognised. A file
    with a few undecodable bytes is read with those characters marked (DAMAGED_CHAR), so the rows
    they hit can be flagged and the others still load; mostly undecodable or binary content is refused.
    """
    binary = SourceFormatError(path, "is a binary file, not a CSV or Excel workbook",
                               hint="export the table again as CSV or XLSX")
    if forced:
        text, encoding = data.decode(forced, errors="replace"), forced
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text, encoding = data.decode("utf-16", errors="replace"), "utf-16"
    elif (utf16 := _utf16_without_bom(data)) is not None:
        if _control_share(utf16) > _MAX_CONTROL_SHARE:
            raise binary
        text, encoding = utf16, "utf-16"
    elif data[:65536].count(0) > _MAX_NUL_SHARE * len(data[:65536]):
        raise binary
    else:
        for enc in _ENCODINGS:
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                continue
            encoding = "utf-8" if enc == "utf-8-sig" and not data.startswith(b"\xef\xbb\xbf") else enc
            break
        else:
            # a few damaged bytes must not cost a whole file: read leniently, keep the less damaged reading
            readings = [(data.decode(enc, errors="replace"), enc) for enc in _ENCODINGS]
            text, encoding = min(readings, key=lambda r: r[0].count(DAMAGED_CHAR))
            encoding = "utf-8" if encoding == "utf-8-sig" else encoding
            if _control_share(text) > _MAX_CONTROL_SHARE:
                raise binary
            if text.count(DAMAGED_CHAR) > _MAX_DAMAGED_SHARE * max(len(text), 1):
                raise SourceFormatError(path, "text encoding not recognised (tried UTF-8, GB18030/GBK, UTF-16)",
                                        hint="save the file as UTF-8 or GBK CSV")
    return text, encoding


def _sniff_delimiter(text: str) -> str:
    first = text[:4096].splitlines()[:5]
    best, best_count = ",", 0
    for d in (",", "\t", ";", "|"):
        count = min((line.count(d) for line in first if line.strip()), default=0)
        if count > best_count:
            best, best_count = d, count
    return best


def _read_csv(path: Path, forced_encoding: str | None = None) -> SheetRows:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceFormatError(path, f"cannot be read ({exc.strerror})") from None
    text, encoding = _decode(data, path, forced_encoding)
    text = text.replace("\x00", "")
    delimiter = _sniff_delimiter(text)
    lines = io.StringIO(text, newline="").readlines()
    records: list[tuple[int, list[str]]] = []  # (first physical line, cells)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        start = 0
        for record in reader:
            records.append((start, record))
            start = reader.line_num
    except csv.Error as exc:
        raise SourceFormatError(path, f"CSV structure broken near line {reader.line_num + 1} ({exc})") from None
    if records and reader.line_num - records[-1][0] > 1 and _unclosed_quote(lines[records[-1][0]:], delimiter):
        # a quote opened and never closed swallowed every line after it into one cell: read those
        # lines one by one instead, so the rows after the broken one are not lost
        first = records.pop()[0]
        for line in lines[first:]:
            records.extend((first, cells) for cells in csv.reader([line], delimiter=delimiter))
    rows = [(number, [_clean_text(c) for c in cells]) for number, (_, cells) in enumerate(records, start=1)]
    return SheetRows(sheet=None, encoding=encoding, rows=rows)


def _unclosed_quote(lines: list[str], delimiter: str) -> bool:
    """Whether the first record of `lines` opens a quoted cell that the end of the file leaves open."""
    strict = csv.reader(lines, delimiter=delimiter, strict=True)
    try:
        next(strict, None)
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _read_xlsx(path: Path) -> list[SheetRows]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 — any library failure on a damaged file becomes one clear error
        raise SourceFormatError(path, f"is not a readable XLSX workbook ({type(exc).__name__})",
                                hint="open it in Excel/WPS and save it again as .xlsx") from None
    tables: list[SheetRows] = []
    try:
        for ws in wb.worksheets:
            try:
                rows = [
                    (number, [_cell_text(v) for v in values])
                    for number, values in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1)
                ]
            except Exception as exc:  # noqa: BLE001 — one damaged sheet must not cost the others
                tables.append(SheetRows(sheet=ws.title, encoding=None, rows=[],
                                        problem=f"sheet is damaged and cannot be read ({type(exc).__name__})"))
                continue
            if any(any(c is not None for c in cells) for _, cells in rows):
                tables.append(SheetRows(sheet=ws.title, encoding=None, rows=rows))
    except Exception as exc:  # noqa: BLE001
        raise SourceFormatError(path, f"XLSX workbook is damaged ({type(exc).__name__})",
                                hint="open it in Excel/WPS and save it again as .xlsx") from None
    finally:
        try:
            wb.close()
        except Exception:  # noqa: BLE001 — closing a damaged archive may fail too; nothing is lost
            pass
    return tables


def _read_xls(path: Path) -> list[SheetRows]:
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
        sheets = book.sheets()
    except Exception as exc:  # noqa: BLE001 — xlrd raises many types on damaged files; one clear error
        raise SourceFormatError(path, f"is not a readable XLS workbook ({type(exc).__name__})",
                                hint="open it in Excel/WPS and save it again as .xlsx") from None
    tables: list[SheetRows] = []
    for sheet in sheets:
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
