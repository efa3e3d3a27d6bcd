"""Write rendered tables as agencies do: CSV in UTF-8 / UTF-8 with BOM / GBK, or XLSX."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from schemas.sources import FieldType

_FIXED_TIME = dt.datetime(2026, 11, 1, 8, 0, 0)


def write_csv(frame: pl.DataFrame, headers: list[str], path: Path, encoding: str) -> None:
    """Text cells as they are; GBK files get CRLF line ends and '?' for characters GBK lacks."""
    out = frame.rename(dict(zip(frame.columns, headers)))
    text = out.write_csv(null_value="", line_terminator="\r\n" if encoding == "gbk" else "\n")
    data = text.encode("gbk", errors="replace") if encoding == "gbk" else text.encode(encoding)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_xlsx(frame: pl.DataFrame, headers: list[str], path: Path, *, types: dict[str, FieldType],
               numeric: dict[str, pl.Series], dates: dict[str, pl.Series], sheet: str) -> None:
    """One sheet; IDs as text except Excel-mangled ones (numbers), amounts as numbers, some dates as date cells."""
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                         "strings_to_formulas": False, "strings_to_urls": False})
    wb.set_properties({"created": _FIXED_TIME, "author": "", "title": sheet})
    ws = wb.add_worksheet(sheet)
    bold = wb.add_format({"bold": True})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    for c, name in enumerate(frame.columns):
        kind = types.get(name)
        ws.set_column(c, c, 20 if kind == FieldType.ID_NUMBER else 12 if kind == FieldType.DATE else 14)
    for c, h in enumerate(headers):
        ws.write_string(0, c, h, bold)
    columns = [frame[c].to_list() for c in frame.columns]
    nums = [numeric[c].to_list() if c in numeric else None for c in frame.columns]
    cells = [dates[c].to_list() if c in dates else None for c in frame.columns]
    amounts = [frame[c].cast(pl.Float64, strict=False).to_list() if types.get(c) == FieldType.AMOUNT else None
               for c in frame.columns]
    serial = [types.get(c) == FieldType.DATE for c in frame.columns]
    for r in range(frame.height):
        row = r + 1
        for c, col in enumerate(columns):
            v = col[r]
            if v is None:
                continue
            if nums[c] is not None and nums[c][r] is not None:
                ws.write_number(row, c, nums[c][r])
            elif cells[c] is not None and cells[c][r] is not None:
                ws.write_datetime(row, c, dt.datetime.combine(cells[c][r], dt.time()), date_fmt)
            elif amounts[c] is not None and amounts[c][r] is not None:
                ws.write_number(row, c, amounts[c][r])
            elif serial[c] and len(v) == 5 and v.isdigit():
                ws.write_number(row, c, int(v))
            else:
                ws.write_string(row, c, v)
    wb.close()
