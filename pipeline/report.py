"""Quarterly figures (每季度通报): leads found, verified, aided and amounts, by source combination,
priority group and unit — as XLSX, a PNG chart and an HTML page that embeds it.

Definitions (the same SQL an analyst would write, in `quarter_leads`):
- found: leads first listed by a run that started in the quarter;
- verified: leads given an outcome (aided / not eligible / referred) in the quarter;
- aided: leads marked aided in the quarter; amount: the aid amounts recorded with those outcomes.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipeline.errors import AidLeadsError
from pipeline.store import query_frame
from pipeline.workbook import write_tables_xlsx

__all__ = ["Quarter", "parse_quarter", "quarter_leads", "quarterly_tables", "write_quarterly_report"]

_SOURCE_ZH = {"victims": "被害人", "disability": "残疾", "subsistence": "低保特困", "enforcement": "终本", "key_groups": "重点人群"}


@dataclass(frozen=True)
class Quarter:
    year: int
    q: int

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 3 * self.q - 2, 1)

    @property
    def end(self) -> dt.date:
        """First day after the quarter."""
        return dt.date(self.year + (self.q == 4), 1 if self.q == 4 else 3 * self.q + 1, 1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.q}"


def parse_quarter(text: str) -> Quarter:
    match = re.fullmatch(r"\s*(\d{4})\s*[-_ ]?[Qq]([1-4])\s*", text)
    if not match:
        raise AidLeadsError(f"quarter '{text}' not understood", hint="write it like 2026Q3")
    return Quarter(int(match.group(1)), int(match.group(2)))


_QUARTER_LEADS = """
WITH latest AS (
    SELECT h.lead_id, arg_max(h.sources_hit, h.run_id) AS sources_hit,
           arg_max(h.priority_groups, h.run_id) AS priority_groups, arg_max(h.unit, h.run_id) AS unit
    FROM lead_history h GROUP BY h.lead_id
),
found AS (
    SELECT l.lead_id FROM leads l JOIN runs r ON r.run_id = l.first_run_id
    WHERE r.started_at >= $start AND r.started_at < $end
),
outcomes AS (
    SELECT lead_id,
           bool_or(status IN ('aided', 'not_eligible', 'referred')) AS verified,
           bool_or(status = 'aided') AS aided,
           sum(CASE WHEN status = 'aided' THEN amount END) AS amount
    FROM lead_events WHERE event_at >= $start AND event_at < $end GROUP BY lead_id
)
SELECT l.lead_id,
       l.lead_id IN (SELECT lead_id FROM found) AS found,
       coalesce(o.verified, false) AS verified,
       coalesce(o.aided, false) AS aided,
       coalesce(o.amount, 0) AS amount,
       coalesce(lt.sources_hit, '') AS sources_hit,
       coalesce(nullif(lt.priority_groups, ''), '（无）') AS priority_groups,
       coalesce(lt.unit, '（未填）') AS unit
FROM leads l LEFT JOIN outcomes o USING (lead_id) LEFT JOIN latest lt USING (lead_id)
WHERE l.lead_id IN (SELECT lead_id FROM found) OR o.lead_id IS NOT NULL
"""


def quarter_leads(con: duckdb.DuckDBPyConnection, quarter: Quarter) -> pl.DataFrame:
    """One row per lead found or given an outcome in the quarter, with its flags and groupings."""
    start = dt.datetime.combine(quarter.start, dt.time())
    end = dt.datetime.combine(quarter.end, dt.time())
    frame = query_frame(con, _QUARTER_LEADS, {"start": start, "end": end})
    return frame.with_columns(
        pl.col("sources_hit").map_elements(
            lambda s: "+".join(_SOURCE_ZH.get(x, x) for x in s.split(",") if x and x != "victims") or "仅被害人",
            return_dtype=pl.String).alias("source_combination"))


def _summarise(frame: pl.DataFrame, by: str | None) -> pl.DataFrame:
    aggs = [pl.col("found").sum().alias("发现线索"), pl.col("verified").sum().alias("核查办结"),
            pl.col("aided").sum().alias("救助"), pl.col("amount").sum().alias("救助金额（元）")]
    out = frame.group_by(by).agg(aggs).sort(["发现线索", by], descending=[True, False]) if by else frame.select(aggs)
    return out.with_columns(
        (pl.col("救助") / pl.col("发现线索")).fill_nan(None).round(3).alias("转化率（救助/发现）"))


def quarterly_tables(con: duckdb.DuckDBPyConnection, quarter: Quarter) -> dict[str, pl.DataFrame]:
    frame = quarter_leads(con, quarter)
    groups = frame.with_columns(pl.col("priority_groups").str.split("、")).explode("priority_groups")
    return {
        "总体": _summarise(frame, None),
        "按来源组合": _summarise(frame, "source_combination").rename({"source_combination": "来源组合"}),
        "按重点群体": _summarise(groups, "priority_groups").rename({"priority_groups": "重点群体"}),
        "按承办单位": _summarise(frame, "unit").rename({"unit": "承办单位"}),
    }


def _chart(tables: dict[str, pl.DataFrame], quarter: Quarter, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    font = _cjk_font()
    if font:
        font_manager.fontManager.addfont(font)
        plt.rcParams["font.family"] = font_manager.FontProperties(fname=font).get_name()
    by_source = tables["按来源组合"].head(10)
    labels = by_source["来源组合"].to_list() or ["（无）"]
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=110)
    width = 0.27
    xs = range(len(labels))
    for i, (col, colour) in enumerate((("发现线索", "#4472C4"), ("核查办结", "#ED7D31"), ("救助", "#70AD47"))):
        values = by_source[col].to_list() or [0]
        ax.bar([x + (i - 1) * width for x in xs], values, width, label=col, color=colour)
    ax.set_xticks(list(xs), labels, rotation=20, ha="right")
    ax.set_ylabel("线索数")
    ax.set_title(f"{quarter} 司法救助线索：按来源组合")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _cjk_font() -> str | None:
    """A font file with Chinese glyphs: the one mplfonts ships, else one the system has."""
    try:
        import mplfonts

        candidate = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    from matplotlib import font_manager

    for f in font_manager.findSystemFonts():
        if any(k in f for k in ("CJK", "WenQuanYi", "wqy", "SimHei", "SourceHan", "Noto Sans SC")):
            return f
    return None


def _html(tables: dict[str, pl.DataFrame], quarter: Quarter, png: Path) -> str:
    image = base64.b64encode(png.read_bytes()).decode("ascii")
    parts = [f"<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'><title>{quarter} 司法救助线索季度通报</title>",
             "<style>body{font-family:'Microsoft YaHei','PingFang SC','Noto Sans CJK SC','Source Han Sans SC',SimHei,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #999;padding:4px 10px;text-align:right}th{background:#1F4E78;color:#fff}"
             "td:first-child{text-align:left}</style></head><body>",
             f"<h1>{quarter} 司法救助线索季度通报</h1>",
             f"<p>统计区间：{quarter.start.isoformat()} 至 {(quarter.end - dt.timedelta(days=1)).isoformat()}</p>",
             f"<img alt='按来源组合' src='data:image/png;base64,{image}' style='max-width:100%'>"]
    for title, table in tables.items():
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>")
        parts += [f"<th>{html.escape(c)}</th>" for c in table.columns]
        parts.append("</tr>")
        for row in table.iter_rows():
            parts.append("<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def write_quarterly_report(con: duckdb.DuckDBPyConnection, quarter: Quarter, out_dir: Path) -> dict[str, Path]:
    """Write report_<quarter>.xlsx, .png and .html; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = quarterly_tables(con, quarter)
    paths = {ext: out_dir / f"report_{quarter}.{ext}" for ext in ("xlsx", "png", "html")}
    write_tables_xlsx(paths["xlsx"], tables, lambda c, _: 16 if c else 24)
    _chart(tables, quarter, paths["png"])
    paths["html"].write_text(_html(tables, quarter, paths["png"]), encoding="utf-8")
    return paths
