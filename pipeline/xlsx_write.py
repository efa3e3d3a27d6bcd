"""Write the data rows of large sheets fast: XML built by polars, spliced into a workbook xlsxwriter laid out.

xlsxwriter spends ~25 µs of Python on every cell, and a province's lead list has 700,000. Here xlsxwriter
still writes the workbook — styles, column widths, frozen header, filters, validation and each sheet's
header row — and the data rows are rendered column by column with polars string expressions, then
inserted into that package. Cells come out as xlsxwriter writes them: text through the shared-strings
table with its escapes (control characters as `_xHHHH_`, a literal `_xHHHH_` as `_x005F_xHHHH_`, edge
whitespace kept), text beyond Excel's 32,767 UTF-16 units cut where xlsxwriter cuts it, numbers as
`%.16G`, dates as Excel serial numbers, null cells left out.

The package is compressed part by part on worker threads while the next part is rendered (zlib and polars
let go of the GIL, and a province's lead list is ~50 MB of XML); each part is compressed on its own exactly
as zipfile compresses it, so the bytes do not depend on timing.
"""

from __future__ import annotations

import datetime as dt
import io
import queue
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

import polars as pl
from xlsxwriter.utility import xl_cell_to_rowcol, xl_col_to_name, xl_rowcol_to_cell

__all__ = ["SheetRows", "style_id", "workbook_with_rows"]

COMPRESS_LEVEL = 1
"""zlib level of the rewritten package: xlsxwriter's 6 takes 4-5x as long for a file ~20% smaller (3: 1.6x, 8%)."""

_EXCEL_MAX_TEXT = 32767  # UTF-16 code units in one cell
_EXCEL_EPOCH = dt.date(1899, 12, 31)
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELATIONSHIP_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_RELATIONSHIP = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_SHARED_STRINGS = "xl/sharedStrings.xml"
_WORKERS = 2
"""Threads compressing parts while the main thread renders the next (the machines have two cores)."""
_ZIP64_FROM = zipfile.ZIP64_LIMIT
"""Past this size zipfile adds ZIP64 records; such a package is left to zipfile itself."""
_ROW = "\0row"  # working columns (these, "<name>\0style") hold a NUL, which no frame column name has
_FILLED = "\0filled"

# characters XML cannot hold become _xHHHH_ (after a literal _xHHHH_ became _x005F_xHHHH_), then XML escapes
_CONTROL = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), 0xFFFE, 0xFFFF)]
_ESCAPE_FROM = [*_CONTROL, "&", "<", ">"]
_ESCAPE_TO = [*(f"_x{ord(c):04X}_" for c in _CONTROL), "&amp;", "&lt;", "&gt;"]
_NEEDS_ESCAPE = r"[\x00-\x08\x0B-\x1F&<>\x{FFFE}\x{FFFF}]|_x[0-9a-fA-F]{4}_"  # what `_escaped` changes


@dataclass(frozen=True)
class SheetRows:
    """A sheet's data rows: `frame`'s columns in order from column A, its rows from the sheet's second row.

    `styles` gives a column's cell format as a cellXfs index (see `style_id`), or as an expression on
    `frame` giving one per row; columns not named are unformatted. Cells take exactly that format, where
    xlsxwriter gives a cell written without one its row's or column's: name that format here instead.
    Columns are text, numbers or dates (or all null); null cells are left empty.
    """

    frame: pl.DataFrame
    styles: Mapping[str, int | pl.Expr] = field(default_factory=dict)


def style_id(cell_format: Any) -> int:
    """The cellXfs index of an xlsxwriter Format (0 for none), registered as writing a cell with it would."""
    return 0 if cell_format is None else int(cell_format._get_xf_index())


def workbook_with_rows(workbook: bytes, sheets: Mapping[str, SheetRows]) -> bytes:
    """The xlsxwriter package `workbook` with each named sheet's data rows added below its header row.

    The named sheets must hold their header row only, and the workbook a shared-strings table (xlsxwriter
    writes one as soon as it writes any text cell).
    """
    with zipfile.ZipFile(io.BytesIO(workbook)) as package:
        infos = package.infolist()
        parts = {info.filename: package.read(info) for info in infos}
    part_of = _sheet_parts(parts)
    missing = [name for name in sheets if name not in part_of]
    if missing or _SHARED_STRINGS not in parts:
        raise ValueError(f"workbook lacks sheets {missing} or its shared-strings table")

    # the big parts stay UTF-8 bytes from polars to the zip (a Python str would cost two conversions)
    texts = {name: _texts(rows.frame) for name, rows in sheets.items()}
    with ThreadPoolExecutor(_WORKERS, thread_name_prefix="xlsx-part") as pool:
        try:
            compressed: dict[str, Future[_Deflated]] = {}
            compressed[_SHARED_STRINGS], string_ids = _shared_strings(parts[_SHARED_STRINGS].decode(), texts, pool)
            for name, rows in sheets.items():
                with _DeflatingPart(pool) as part:
                    _write_with_rows(part, parts[part_of[name]].decode(), rows, string_ids[name])
                compressed[part_of[name]] = part.result
            done = {name: compressed[name].result() if name in compressed else _deflated([data])
                    for name, data in parts.items()}
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a failed part fails the workbook; work not yet begun is dropped
            raise
    return _zipped([(info, done[info.filename]) for info in infos])


def _sheet_parts(parts: dict[str, bytes]) -> dict[str, str]:
    """Sheet name -> the sheet's part in the package, from the workbook and its relationships."""
    rels = ElementTree.fromstring(parts["xl/_rels/workbook.xml.rels"])
    target = {rel.get("Id"): rel.get("Target", "") for rel in rels.iter(_RELATIONSHIP)}
    book = ElementTree.fromstring(parts["xl/workbook.xml"])
    return {sheet.get("name", ""): "xl/" + target.get(sheet.get(_RELATIONSHIP_ID), "").removeprefix("/xl/")
            for sheet in book.iter(f"{_MAIN}sheet")}


def _utf16_truncated(text: str | None) -> str | None:
    """`text` cut to Excel's cell limit, counted in UTF-16 units, never inside a character beyond U+FFFF."""
    if text is None or len(text) <= _EXCEL_MAX_TEXT // 2:
        return text
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > _EXCEL_MAX_TEXT:
            return text[:index]
    return text


def _texts(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame's text columns as their cells will hold them (cut to Excel's limit)."""
    texts = frame.select(pl.col(pl.String))
    long = [name for name in texts.columns if (texts[name].str.len_chars().max() or 0) > _EXCEL_MAX_TEXT // 2]
    return texts.with_columns(pl.col(long).map_elements(_utf16_truncated, return_dtype=pl.String))


def _escaped(text: pl.Expr) -> pl.Expr:
    """Text as xlsxwriter puts it in XML: control characters as _xHHHH_ escapes, then & < > escaped."""
    return text.str.replace_all(r"(_x[0-9a-fA-F]{4}_)", "_x005F$1").str.replace_many(_ESCAPE_FROM, _ESCAPE_TO)


def _si(escaped: pl.Expr) -> pl.Expr:
    """An escaped text's shared-strings entry, <si>, marked to keep its edge whitespace as xlsxwriter marks it."""
    # xlsxwriter tests Python's \s, which is Unicode White_Space (strip_chars) once control characters are escaped
    edged = escaped.str.strip_chars() != escaped
    preserve = pl.when(edged).then(pl.lit(' xml:space="preserve"')).otherwise(pl.lit(""))
    return pl.concat_str(pl.lit("<si><t"), preserve, pl.lit(">"), escaped, pl.lit("</t></si>"))


def _shared_strings(table: str, texts: Mapping[str, pl.DataFrame],
                    pool: ThreadPoolExecutor) -> tuple[Future[_Deflated], dict[str, pl.DataFrame]]:
    """The shared-strings table with each distinct text of `texts` added once (compressed on `pool`, as the
    sheets need only the indices); and per sheet, its text columns as the cells' indices into that table (as
    text, ready for <v>)."""
    head, _, rest = table.partition("<si>")
    entries = "<si>" + rest.removesuffix("</sst>")
    existing = pl.DataFrame({"si": re.findall(r"<si>.*?</si>", entries, flags=re.S)}).with_row_index("id")
    stacked = [(name, column) for name, frame in texts.items() for column in frame.columns]
    cells = pl.concat([texts[name].select(pl.col(column).alias("text")) for name, column in stacked]
                      or [pl.DataFrame(schema={"text": pl.String})])
    distinct = cells.select(pl.col("text").drop_nulls().unique(maintain_order=True)).with_row_index("k")
    # a text whose entry is already there keeps that entry's index; only candidates are escaped to find them
    reused = (distinct.filter(_may_be_one_of(existing["si"]))
              .with_columns(_si(_escaped(pl.col("text"))).alias("si"))
              .join(existing, on="si", how="inner").select("k", "id"))
    distinct = (distinct.join(reused, on="k", how="left", maintain_order="left")
                .with_columns(pl.col("id").is_null().alias("added"))
                .with_columns(pl.coalesce("id", existing.height + pl.col("added").cum_sum() - 1)))
    added = distinct.filter("added")["text"]
    count = int(re.search(r'\bcount="(\d+)"', head).group(1)) + cells["text"].count()  # type: ignore[union-attr]
    head = re.sub(r'\bcount="\d+"', f'count="{count}"', head)
    head = re.sub(r'\buniqueCount="\d+"', f'uniqueCount="{existing.height + added.len()}"', head)
    compressed = pool.submit(_added_strings, (head + entries).encode(), added)

    ids = cells.join(distinct.select("text", "id"), on="text", how="left", maintain_order="left")["id"].cast(pl.String)
    # `cells` stacked the text columns one after another: each column's indices are the next slice
    by_sheet: dict[str, list[pl.Series]] = {name: [] for name in texts}
    start = 0
    for name, column in stacked:
        by_sheet[name].append(ids.slice(start, texts[name].height).alias(column))
        start += texts[name].height
    return compressed, {name: pl.DataFrame(columns) for name, columns in by_sheet.items()}


def _may_be_one_of(entries: pl.Series) -> pl.Expr:
    """True for every text (column "text") whose <si> could be one of `entries`, and few others.

    An entry holding neither & nor _x is a text that escaping leaves alone (escaping always brings in one
    of them), so only that very text can have it. Any other entry is at least 16 characters longer than a
    text having it (escaping never shortens, <si><t></t></si> adds 16), so shorter texts are candidates.
    """
    inner = entries.str.extract(r"^<si><t(?: xml:space=\"preserve\")?>([^&<]*)</t></si>$")
    verbatim = inner.is_not_null() & ~inner.str.contains("_x", literal=True)
    escaped_longest = entries.filter(~verbatim).str.len_chars().max()
    text = pl.col("text")
    candidates = text.is_in(inner.filter(verbatim).implode())
    return candidates if escaped_longest is None else candidates | (text.str.len_chars() < escaped_longest)


def _added_strings(table: bytes, added: pl.Series) -> _Deflated:
    """The shared-strings part, compressed: the table as it was (without </sst>) and the `added` texts' entries."""
    return _deflated([table, _utf8(_entries(added)), b"</sst>"])


def _entries(texts: pl.Series) -> pl.Series:
    """The texts' <si> entries, `_si(_escaped(text))`: only texts holding something to escape are escaped
    (a few at most; escaping all costs three times as much as finding them)."""
    escape = texts.str.contains(_NEEDS_ESCAPE).arg_true()
    if escape.len():
        escaped = pl.DataFrame({"text": texts.gather(escape)}).select(_escaped(pl.col("text"))).to_series()
        texts = texts.scatter(escape, escaped)
    return pl.DataFrame({"text": texts}).select(_si(pl.col("text"))).to_series()


def _utf8(texts: pl.Series) -> bytes:
    """The texts joined, as UTF-8."""
    return texts.str.join("").cast(pl.Binary).item() if len(texts) else b""


def _number_text(value: float) -> str:
    return f"{value:.16G}"


def _cell_value(name: str, dtype: pl.DataType) -> pl.Expr:
    """The <v> text of a number or date column's cells."""
    column = pl.col(name)
    if dtype == pl.Null:
        return column.cast(pl.String)
    if dtype.is_numeric():
        return column.map_elements(_number_text, return_dtype=pl.String)
    if dtype == pl.Date:
        # xlsxwriter's serial number: days since 1899-12-31, one more after Excel's phantom 1900-02-29, and
        # 1900-01-01 written as a datetime is day 0 (its time-of-day rule)
        days = (column - pl.lit(_EXCEL_EPOCH)).dt.total_days()
        serial = days + (days > 59).cast(pl.Int64) - (days == 1).cast(pl.Int64)
        return serial.cast(pl.String)
    raise TypeError(f"column {name}: cannot write {dtype} cells")


_ROWS_PER_PIECE = 4096
"""Rows rendered at a time, so that compressing a sheet's first rows overlaps rendering its next ones."""


def _rows_xml(rows: SheetRows, string_ids: pl.DataFrame) -> tuple[Iterator[bytes], tuple[int, int] | None]:
    """The <row> elements of the frame's rows, from sheet row 2, piece by piece as they are rendered; and
    the last (row, column) holding a cell."""
    frame = rows.frame
    if unknown := set(rows.styles) - set(frame.columns):
        raise ValueError(f"styles name columns the frame lacks: {sorted(unknown)}")
    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    if floats and frame.select(pl.any_horizontal(~pl.col(floats).is_finite()).any()).item():
        raise ValueError("NaN or infinity cannot be written to a spreadsheet cell")  # as xlsxwriter refuses them
    per_row = {name: style for name, style in rows.styles.items() if isinstance(style, pl.Expr)}
    # styles are evaluated on the whole frame (an expression may look beyond its row) before rendering in pieces
    values = frame.with_columns(
        *(_cell_value(name, dtype) for name, dtype in frame.schema.items() if dtype != pl.String),
        *(style.cast(pl.Int64).fill_null(0).alias(f"{name}\0style") for name, style in per_row.items()),
        (pl.int_range(pl.len(), dtype=pl.Int64) + 2).cast(pl.String).alias(_ROW),
        pl.any_horizontal(pl.col(frame.columns).is_not_null()).alias(_FILLED),
    ).with_columns(string_ids)
    filled = values[_FILLED].arg_true()
    if filled.len() == 0:
        return iter(()), None
    last_col = max(c for c, name in enumerate(frame.columns) if values[name].count())
    last = (int(filled[-1]) + 1, last_col)

    cells = []
    for c, name in enumerate(frame.columns):
        if name in per_row:
            style = pl.col(f"{name}\0style")
            s = pl.when(style == 0).then(pl.lit("")).otherwise(pl.format(' s="{}"', style))
        else:
            s = pl.lit(f' s="{rows.styles[name]}"' if rows.styles.get(name) else "")
        kind = ' t="s"' if frame.schema[name] == pl.String else ""
        # null where the value is null, and then left out of its row
        cells.append(pl.concat_str(pl.lit(f'<c r="{xl_col_to_name(c)}'), pl.col(_ROW), pl.lit('"'), s,
                                   pl.lit(f"{kind}><v>"), pl.col(name), pl.lit("</v></c>")))
    # a row without any cell is left out, as xlsxwriter leaves it out
    row = pl.concat_str(pl.lit('<row r="'), pl.col(_ROW), pl.lit('">'), *cells, pl.lit("</row>"), ignore_nulls=True)
    pieces = (_utf8(piece.filter(_FILLED).select(row).to_series())
              for piece in values.iter_slices(_ROWS_PER_PIECE))
    return pieces, last


def _write_with_rows(part: _DeflatingPart, sheet: str, rows: SheetRows, string_ids: pl.DataFrame) -> None:
    """Write to `part` the sheet's XML with the data rows after its header row, and its dimension grown to
    cover them."""
    dimension = re.search(r'<dimension ref="([A-Z]+\d+)(?::([A-Z]+\d+))?"/>', sheet)
    if dimension is None:
        raise ValueError("sheet has no dimension")
    last_row, last_col = xl_cell_to_rowcol(dimension.group(2) or dimension.group(1))
    if last_row != 0:
        raise ValueError("sheet already has rows below its header")
    body, last = _rows_xml(rows, string_ids)
    if last is not None:
        last_row, last_col = last[0], max(last_col, last[1])
    first, last_cell = dimension.group(1), xl_rowcol_to_cell(last_row, last_col)
    span = first if last_cell == first else f"{first}:{last_cell}"
    sheet = sheet[:dimension.start()] + f'<dimension ref="{span}"/>' + sheet[dimension.end():]
    before, end, after = sheet.partition("</sheetData>")
    if not end:
        before, _, after = sheet.partition("<sheetData/>")
        before += "<sheetData>"
    part.write(before.encode())
    for piece in body:
        part.write(piece)
    part.write(b"</sheetData>")
    part.write(after.encode())


class _DeflatingPart:
    """A part compressed on a worker thread while it is being written: `result` once closed (on leaving the
    `with` block, also when it is left by an exception, so that the worker never waits for more)."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pieces: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.result: Future[_Deflated] = pool.submit(_deflated, iter(self._pieces.get, None))

    def write(self, piece: bytes) -> None:
        self._pieces.put(piece)

    def __enter__(self) -> _DeflatingPart:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pieces.put(None)


@dataclass(frozen=True)
class _Deflated:
    """A package part as zipfile stores it at COMPRESS_LEVEL: raw deflate data, CRC-32 and size of the original."""

    data: bytes
    crc: int
    size: int


def _deflated(pieces: Iterable[bytes]) -> _Deflated:
    """The pieces, one after another, compressed as zipfile compresses a part.

    zlib's output does not depend on how its input is split, so this is the stream of the joined pieces.
    """
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
    out, crc, size = [], 0, 0
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
        size += len(piece)
        out.append(compressor.compress(piece))
    out.append(compressor.flush())
    return _Deflated(b"".join(out), crc, size)


def _zipped(parts: Sequence[tuple[zipfile.ZipInfo, _Deflated]]) -> bytes:
    """The package of compressed parts, in order, byte for byte as zipfile writes it to a seekable file with
    ZIP_DEFLATED at COMPRESS_LEVEL (each part with its entry's name, time and permissions)."""
    # (each entry adds its name and 30 bytes before its data; names are far below 64 KiB)
    if sum(len(part.data) + 65_536 for _, part in parts) > _ZIP64_FROM or any(
            part.size * 1.05 > _ZIP64_FROM for _, part in parts):
        return _zipped_by_zipfile(parts)
    out = io.BytesIO()
    entries = []
    for source, part in parts:
        entry = zipfile.ZipInfo(source.filename, source.date_time)
        entry.external_attr = source.external_attr or 0o600 << 16  # zipfile's default when none is given
        entry.compress_type = zipfile.ZIP_DEFLATED
        entry.CRC, entry.compress_size, entry.file_size = part.crc, len(part.data), part.size
        entry.header_offset = out.tell()
        out.write(entry.FileHeader(False))
        out.write(part.data)
        entries.append(entry)
    start = out.tell()
    for entry in entries:
        name, flags = _encoded_name(entry)
        y, m, d, hh, mm, ss = entry.date_time
        out.write(struct.pack(
            zipfile.structCentralDir, zipfile.stringCentralDir, entry.create_version, entry.create_system,
            entry.extract_version, entry.reserved, flags, entry.compress_type, hh << 11 | mm << 5 | ss // 2,
            (y - 1980) << 9 | m << 5 | d, entry.CRC, entry.compress_size, entry.file_size, len(name),
            len(entry.extra), len(entry.comment), 0, entry.internal_attr, entry.external_attr, entry.header_offset))
        out.write(name + entry.extra + entry.comment)
    end = out.tell()
    out.write(struct.pack(zipfile.structEndArchive, zipfile.stringEndArchive, 0, 0, len(entries), len(entries),
                          end - start, start, 0))
    return out.getvalue()


def _encoded_name(entry: zipfile.ZipInfo) -> tuple[bytes, int]:
    """The entry's name as zipfile stores it: ASCII, else UTF-8 with the UTF-8 flag set."""
    try:
        return entry.filename.encode("ascii"), entry.flag_bits
    except UnicodeEncodeError:
        return entry.filename.encode("utf-8"), entry.flag_bits | 0x800


def _zipped_by_zipfile(parts: Sequence[tuple[zipfile.ZipInfo, _Deflated]]) -> bytes:
    """The package written by zipfile itself, for parts so large that it would add ZIP64 records."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        for source, part in parts:
            entry = zipfile.ZipInfo(source.filename, source.date_time)
            entry.external_attr = source.external_attr
            package.writestr(entry, zlib.decompress(part.data, -15), zipfile.ZIP_DEFLATED, COMPRESS_LEVEL)
    return out.getvalue()
