"""Write named tables as sheets of one XLSX workbook: bold header, frozen and filtered, cells inert."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from pipeline.export import inert

__all__ = ["write_tables_xlsx"]


def write_tables_xlsx(path: Path, tables: dict[str, pl.DataFrame], width: Callable[[int, str], int]) -> Path:
    """One sheet per table; `width(column index, column name)` sets each column's width."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False})
    head = wb.add_format({"bold": True, "bg_color": "#1F4E78", "font_color": "#FFFFFF", "text_wrap": True})
    for title, table in tables.items():
        ws = wb.add_worksheet(title)
        for c, name in enumerate(table.columns):
            ws.write_string(0, c, name, head)
            ws.set_column(c, c, width(c, name))
        for r, row in enumerate(table.iter_rows(), start=1):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, (int, float)):
                    ws.write_number(r, c, value)
                else:
                    ws.write_string(r, c, str(inert(str(value))))
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(table.height, 1), max(len(table.columns) - 1, 0))
    wb.close()
    return path
