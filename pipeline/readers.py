"""Read an agency export (CSV in any common Chinese encoding, XLSX, legacy XLS) into a table of text.

Every cell comes back as text (or None) exactly as a person would read it, so that nothing is
guessed here: ID numbers keep their leading zeros, a number Excel mangled into scientific notation
stays visibly mangled, and each row keeps the row number the spreadsheet shows (header = row 1).

Two readers define what a file holds: the csv module for text files and openpyxl for workbooks. Fast
paths give the same table much sooner — polars for well-formed CSV, calamine for XLSX
(`pipeline.xlsx_fast`) — and hand a file back to the defining reader whenever they cannot be sure
of reading it exactly as that reader would (an unclosed quote, a ragged row, an error cell …).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import polars as pl

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
_CSV_FIELD_LIMIT = 16 * 1024 * 1024
csv.field_size_limit(_CSV_FIELD_LIMIT)
_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""the characters str.strip() removes (str.isspace), so that columns are cleaned exactly as single cells"""
_MAX_FAST_COLUMNS = 2000
"""a text file that seems wider than this is read by the csv module (a fast read would make as many columns)"""
_CSV_SEPARATOR = {",": ",", ";": ";", "|": r"\|", "\t": r"\t"}
"""each delimiter `_sniff_delimiter` can choose, as a regex atom"""


@dataclass(eq=False)
class SheetRows:
    """One table of an input file: its cells as text, with spreadsheet row numbers.

    `frame` holds a column "row" (the row number as the spreadsheet shows it) and one text column per
    spreadsheet column, "c0", "c1", …; a row shorter than the widest one is padded with None.
    """

    sheet: str | None
    encoding: str | None
    frame: pl.DataFrame
    problem: str | None = None
    """why this sheet could not be read (the workbook's other sheets still are)"""

    @classmethod
    def from_rows(cls, sheet: str | None, encoding: str | None, rows: list[tuple[int, list[str | None]]],
                  problem: str | None = None) -> SheetRows:
        """A table from (row number, cells) pairs, as the reference readers produce them."""
        width = max((len(cells) for _, cells in rows), default=0)
        columns: dict[str, list] = {"row": [number for number, _ in rows]}
        for i in range(width):
            columns[f"c{i}"] = [cells[i] if i < len(cells) else None for _, cells in rows]
        return cls(sheet, encoding, pl.DataFrame(columns, schema=_schema(width)), problem)

    @property
    def width(self) -> int:
        return self.frame.width - 1

    @property
    def columns(self) -> list[str]:
        """The names of the cell columns, in spreadsheet order."""
        return self.frame.columns[1:]

    @cached_property
    def rows(self) -> list[tuple[int, list[str | None]]]:
        """Every row as (row number, cells)."""
        return list(self.iter_rows())

    def iter_rows(self, chunk: int = 256) -> Iterator[tuple[int, list[str | None]]]:
        """(row number, cells) in order, made a few at a time (header detection reads only the first ones)."""
        for offset in range(0, self.frame.height, chunk):
            for number, *cells in self.frame.slice(offset, chunk).iter_rows():
                yield number, cells

    def has_cells(self) -> bool:
        """Whether any cell holds a value."""
        if not self.width:
            return False
        return bool(self.frame.select(pl.any_horizontal(pl.col(self.columns).is_not_null().any())).item())


def _schema(width: int) -> dict[str, pl.DataType]:
    return {"row": pl.Int64, **{f"c{i}": pl.String for i in range(width)}}


def _clean_texts(column: pl.Expr) -> pl.Expr:
    """`_clean_text` over a text column without NULs (the fast readers never hold one): outer whitespace
    stripped, empty → None, cut to size."""
    return column.str.strip_chars(_WHITESPACE).replace("", None).str.slice(0, MAX_CELL_CHARS + 1)


def read_table_file(path: Path, encoding: str | None = None, *, fast: bool = True) -> list[SheetRows]:
    """All tables in a file: one for a CSV, one per non-empty sheet for a workbook.

    `encoding` forces a text file's encoding (e.g. "cp950" for Big5); by default it is detected.
    `fast=False` reads with the reference readers only (the fast paths give the same tables).
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise SourceFormatError(path, f"cannot be read ({exc.strerror})") from None
    if head.startswith(b"PK\x03\x04"):
        if fast:
            from pipeline.xlsx_fast import read_xlsx_fast

            tables = read_xlsx_fast(path)
            if tables is not None:
                return tables
        return _read_xlsx(path)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return _read_xls(path)
    # anything else is read as text, whatever its name: a file named .xlsx that is really CSV loads
    return [_read_csv(path, encoding, fast)]


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


def _read_csv(path: Path, forced_encoding: str | None = None, fast: bool = True) -> SheetRows:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceFormatError(path, f"cannot be read ({exc.strerror})") from None
    text, encoding = _decode(data, path, forced_encoding)
    if "\x00" in text:
        text = text.replace("\x00", "")
    delimiter = _sniff_delimiter(text)
    if fast and (frame := _csv_frame_or_none(text, delimiter)) is not None:
        return SheetRows(sheet=None, encoding=encoding, frame=frame)
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
    return SheetRows.from_rows(sheet=None, encoding=encoding, rows=rows)


def _csv_frame_or_none(text: str, delimiter: str) -> pl.DataFrame | None:
    """`_csv_frame`, or None should polars fail in any way (the csv module then reads the file)."""
    try:
        return _csv_frame(text, delimiter)
    except BaseException as exc:  # noqa: BLE001 — a Rust panic (pyo3) is a BaseException too
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return None


def _csv_frame(text: str, delimiter: str) -> pl.DataFrame | None:
    """The records of CSV text read by polars, or None unless they are certainly what the csv module reads.

    That is certain for text whose lines end in LF or CRLF and whose every record with a quote is
    well formed (each quoted cell starts at a delimiter, ends at one, doubles its inner quotes): the
    records are then unambiguous, and polars reads them as the csv module does, a blank line
    included (as an empty row). Anything else — an unclosed quote, a quote inside an unquoted cell,
    a lone CR, a cell beyond the csv module's size limit — is left to the csv module.
    """
    if not text or text.isspace() or text.startswith("\ufeff") or text.count("\r") != text.count("\r\n"):
        return None  # (polars would drop a second byte-order mark; the csv module keeps it in the first cell)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    lines: pl.Series | None = None
    if '"' in text or len(text) >= _CSV_FIELD_LIMIT:
        lines = _csv_lines(data)
        if lines.str.len_bytes().max() >= _CSV_FIELD_LIMIT:
            return None
        quotes = lines.str.count_matches('"', literal=True).fill_null(0)
        starts = (quotes.cum_sum() - quotes) % 2 == 0  # the line begins outside any quoted cell: a new record
        records = int(starts.sum())
        if not _quoted_records_well_formed(lines, quotes, starts, delimiter):
            return None
    else:
        records = text.count("\n") + (0 if text.endswith("\n") else 1)
    frame = _polars_csv(data, delimiter)
    if frame is None:  # a record wider than the first: read as wide as the widest line could be
        lines = _csv_lines(data) if lines is None else lines
        width = int(lines.str.count_matches(delimiter, literal=True).max() or 0) + 1
        frame = _polars_csv(data, delimiter, width) if width <= _MAX_FAST_COLUMNS else None
    if frame is None or frame.height != records:
        return None
    columns = [f"c{i}" for i in range(frame.width)]
    return frame.select(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("row"),
                        *(_clean_texts(pl.col(old)).alias(new) for old, new in zip(frame.columns, columns)))


def _csv_lines(data: bytes) -> pl.Series:
    """The physical lines of UTF-8 text (without their line ends; an empty line is null)."""
    return pl.read_csv(data, has_header=False, separator="\x00", quote_char=None, schema={"line": pl.String},
                       raise_if_empty=False)["line"]


def _quoted_records_well_formed(lines: pl.Series, quotes: pl.Series, starts: pl.Series, delimiter: str) -> bool:
    """Whether every record holding a quote matches the CSV grammar (a record may span lines)."""
    if not quotes.sum():
        return True
    plain = delimiter if delimiter != "\t" else r"\t"
    cell = f'(?:"(?:[^"]|"")*"|[^"{plain}\\r\\n]*)'
    record = f"^{cell}(?:{_CSV_SEPARATOR[delimiter]}{cell})*$"
    if starts.all():  # no record spans lines
        return bool(lines.filter(quotes > 0).str.contains(record).all())
    by_record = pl.DataFrame({"line": lines.fill_null(""), "quotes": quotes, "record": starts.cum_sum()})
    quoted = (by_record.filter(pl.col("quotes").sum().over("record") > 0)
              .group_by("record", maintain_order=True).agg(pl.col("line").str.join("\n")))
    return bool(quoted["line"].str.contains(record).all())


def _polars_csv(data: bytes, delimiter: str, width: int | None = None) -> pl.DataFrame | None:
    """All cells as text, `width` columns (default: as many as the first record has); None on any irregularity."""
    options = {"infer_schema": False} if width is None else {
        "schema": {f"column_{i + 1}": pl.String for i in range(width)}, "missing_columns": "insert"}
    try:
        return pl.read_csv(data, has_header=False, separator=delimiter, quote_char='"', raise_if_empty=False,
                           truncate_ragged_lines=False, **options)
    except pl.exceptions.PolarsError:
        return None


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
                problem = f"sheet is damaged and cannot be read ({type(exc).__name__})"
                tables.append(SheetRows.from_rows(ws.title, None, [], problem=problem))
                continue
            if any(any(c is not None for c in cells) for _, cells in rows):
                tables.append(SheetRows.from_rows(ws.title, None, rows))
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
            tables.append(SheetRows.from_rows(sheet.name, None, rows))
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
