"""The rules a row of an agency table must meet to load, decided over whole columns at once.

A row is quarantined only when a required value is missing (empty or a null token such as 无, 不详,
#N/A), holds a damaged character (bytes the file's encoding could not give), or a mapped cell is longer
than MAX_TEXT_CHARS. An optional date or amount that cannot be read ("见判决书", "2020-00-00") does not
cost the row — a victim must not lose their lead over it: the row loads with the value as written, and
the issue is listed for the data-quality report; a damaged optional value loads empty, with its issue.
The first field (in the source's order) with a problem names it.

The checks use the column parsers of `pipeline.values`, which give exactly what the scalar parsers
give; a rejected value's reason comes from the scalar parser itself. Pure functions of the table:
safe to run in a worker thread while another file is being written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from pipeline.headers import HeaderMapping
from pipeline.readers import DAMAGED_CHAR, SheetRows
from pipeline.values import (
    NULL_TOKENS,
    ValueParseError,
    null_token_mask,
    parse_amount,
    parse_amounts,
    parse_date,
    parse_dates,
)
from schemas.sources import FieldSpec, FieldType, SourceSpec

__all__ = ["CheckedTable", "check_table", "MAX_TEXT_CHARS"]

MAX_TEXT_CHARS = 1000
"""a cell longer than this is not a value an agency meant to send; the row is quarantined"""

_PARSERS: dict[FieldType, tuple[Callable[[pl.Series], pl.Series], Callable[[object], object]]] = {
    FieldType.DATE: (parse_dates, parse_date),
    FieldType.AMOUNT: (parse_amounts, parse_amount),
}
"""the fields whose values must be readable: (column parser, the scalar parser that says why a value is not)"""

_LONGEST_NULL_TOKEN = max(map(len, NULL_TOKENS))
_JSON_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
                 **{chr(c): f"\\u{c:04x}" for c in range(0x20) if chr(c) not in "\n\r\t\b\f"}}
"""what json.dumps(ensure_ascii=False) writes for the characters it escapes"""


@dataclass
class CheckedTable:
    """A mapped table, checked: what loads, what is quarantined, which values have issues."""

    table: SheetRows
    mapping: HeaderMapping
    rows_read: int
    """rows below the header"""
    rows_blank: int
    """of which blank, or the header again"""
    loaded: pl.DataFrame
    """row_number, every field of the source (text as read; null when absent or damaged), extra_columns (JSON)"""
    quarantined: pl.DataFrame
    """row_number, field, reason, raw_row (JSON of the row's cells by column name)"""
    issues: pl.DataFrame
    """row_number, field, reason, raw_value: unreadable values of loaded rows"""


def check_table(spec: SourceSpec, table: SheetRows, mapping: HeaderMapping) -> CheckedTable:
    """Every row below the header of `table`, checked against the rules of `spec`."""
    header = mapping.header
    names = dict(zip(table.columns, _column_names(header, table.width)))
    columns = {name: f"c{idx}" for name, idx in mapping.columns.items()}
    below = table.frame.filter(pl.col("row") > mapping.header_row)
    # a blank line, or the header again (two exports pasted together): not data
    blank = ~pl.any_horizontal(pl.col(table.columns).is_not_null())
    repeated = pl.all_horizontal((pl.col(c) == header[idx]).fill_null(False) for idx, c in
                                 ((i, f"c{i}") for i in mapping.columns.values()))
    rows = below.filter(~(blank | repeated)).with_columns(pl.col("row").cast(pl.Int32).alias("row_number"))
    checks = _field_checks(spec, rows, columns)
    bad = checks["problem"].is_not_null()

    bad_rows = rows.filter(bad)
    raw_rows = [json.dumps({names[c]: v[:MAX_TEXT_CHARS] for c, v in zip(table.columns, cells) if v is not None},
                           ensure_ascii=False) for cells in bad_rows.select(table.columns).iter_rows()]
    quarantined = pl.DataFrame({
        "row_number": bad_rows["row_number"], "field": checks["problem_field"].filter(bad),
        "reason": checks["problem"].filter(bad), "raw_row": pl.Series(raw_rows, dtype=pl.String),
    })

    good, checks = rows.filter(~bad), checks.filter(~bad)
    issues = pl.concat([
        good.select("row_number", pl.lit(name, pl.String).alias("field"), checks[f"issue:{name}"].alias("reason"),
                    pl.col(c).str.slice(0, MAX_TEXT_CHARS).alias("raw_value")).filter(pl.col("reason").is_not_null())
        for name, c in columns.items()
    ])
    extras = {c: names[c] for c in table.columns if c not in columns.values()}
    loaded = good.select(
        "row_number",
        # a damaged optional value is left empty, like an unreadable date is kept as written
        *(pl.when(checks[f"damaged:{name}"]).then(None).otherwise(pl.col(columns[name])).alias(name)
          if name in columns else pl.lit(None, pl.String).alias(name) for name in spec.field_names),
        # every cell not mapped to a field is kept: unknown columns, and cells beyond the header (ragged rows)
        _json_object(extras).alias("extra_columns"),
    )
    return CheckedTable(table, mapping, below.height, below.height - rows.height, loaded, quarantined, issues)


def _field_checks(spec: SourceSpec, rows: pl.DataFrame, columns: dict[str, str]) -> pl.DataFrame:
    """Per row: why it cannot load (`problem`, `problem_field`), else null; per mapped field the issue of a
    loadable row (`issue:<field>`, else null) and whether its value loads empty (`damaged:<field>`)."""
    fields = [f for f in spec.fields if f.name in columns]  # an unmapped field is empty: never a problem
    seen = rows.select(
        *(pl.col(columns[f.name]).str.len_chars().gt(MAX_TEXT_CHARS).fill_null(False).alias(f"long:{f.name}")
          for f in fields),
        *(pl.col(columns[f.name]).str.contains(DAMAGED_CHAR, literal=True).fill_null(False).alias(f"bad:{f.name}")
          for f in fields),
    )
    derived: list[pl.Series] = []
    for f in fields:
        raw = rows[columns[f.name]]
        parser = _PARSERS.get(f.type)
        unreadable = parser[0](raw).is_null() & raw.is_not_null() if parser else pl.repeat(False, raw.len(), eager=True)
        # whether a value is a null token changes the outcome only where it is required, damaged or unreadable
        suspect = None if f.required else seen[f"bad:{f.name}"] | unreadable
        derived += [_null_tokens(raw, suspect).alias(f"blank:{f.name}"), unreadable.alias(f"unreadable:{f.name}"),
                    _reasons(raw, unreadable, parser[1] if parser else None).alias(f"why:{f.name}")]
    checks = pl.concat([seen, pl.DataFrame(derived)], how="horizontal")
    return checks.select(*(v for f in fields for v in _verdicts(f))).with_columns(
        problem=pl.coalesce([pl.col(f"problem:{f.name}") for f in fields]),
        problem_field=pl.coalesce([pl.when(pl.col(f"problem:{f.name}").is_not_null()).then(pl.lit(f.name))
                                   for f in fields]),
    )


def _verdicts(f: FieldSpec) -> list[pl.Expr]:
    """problem:<field>, issue:<field>, damaged:<field> from the field's long/bad/blank/unreadable/why columns."""
    long, blank, why = pl.col(f"long:{f.name}"), pl.col(f"blank:{f.name}"), pl.col(f"why:{f.name}")
    damaged = pl.col(f"bad:{f.name}") & ~blank
    unreadable = pl.col(f"unreadable:{f.name}") & ~blank & ~damaged
    too_long = pl.when(long).then(pl.lit(f"{f.label_zh}内容过长（超过{MAX_TEXT_CHARS}字）"))
    unreadable_issue = pl.lit(f"{f.label_zh}：") + why
    if f.required:
        return [too_long.when(blank).then(pl.lit(f"缺少必填字段：{f.label_zh}"))
                .when(damaged).then(pl.lit(f"{f.label_zh}含无法识别的字符（文件编码损坏）"))
                .alias(f"problem:{f.name}"),
                pl.when(unreadable).then(unreadable_issue).alias(f"issue:{f.name}"),
                pl.lit(False).alias(f"damaged:{f.name}")]
    return [too_long.alias(f"problem:{f.name}"),
            pl.when(damaged).then(pl.lit(f"{f.label_zh}：含无法识别的字符（文件编码损坏）"))
            .when(unreadable).then(unreadable_issue).alias(f"issue:{f.name}"),
            damaged.alias(f"damaged:{f.name}")]


def _null_tokens(raw: pl.Series, where: pl.Series | None) -> pl.Series:
    """is_null_token of the values (only where `where` holds, if given; false elsewhere).

    A cell (stripped, as the readers give it) longer than the longest null token is never one: NFKC never
    turns a character that is not whitespace into whitespace alone, composes no null-token character,
    and casefolding shortens nothing (tests/test_ingest_fastpath.py checks this over all of Unicode).
    """
    out = pl.repeat(False, raw.len(), eager=True)
    if where is not None and not where.any():
        return out
    short = raw.is_null() | (raw.str.len_chars() <= _LONGEST_NULL_TOKEN)
    at = (short if where is None else short & where).arg_true()
    return out.scatter(at, null_token_mask(raw.gather(at))) if at.len() else out


def _reasons(raw: pl.Series, where: pl.Series, parse: Callable[[object], object] | None) -> pl.Series:
    """Where `where` holds, why the scalar parser rejects the value (asked once per distinct value); else null."""
    out = pl.repeat(None, raw.len(), dtype=pl.String, eager=True)
    if parse is None or not where.any():
        return out

    def reason(value: object) -> str | None:
        try:
            parse(value)
        except ValueParseError as exc:
            return exc.reason_zh
        return None  # the column parsers agree with the scalar ones; were they ever not to, no issue is made up

    at = where.arg_true()
    values = raw.gather(at)
    distinct = values.unique(maintain_order=True)
    return out.scatter(at, values.replace_strict(distinct, pl.Series([reason(v) for v in distinct.to_list()],
                                                                     dtype=pl.String)))


def _json_object(keys: dict[str, str]) -> pl.Expr:
    """Per row, json.dumps({key: cell …}, ensure_ascii=False) of the non-null cells of `keys` (column → key),
    in column order; null when all are null."""
    if not keys:
        return pl.lit(None, pl.String)
    members = [pl.when(pl.col(c).is_not_null()).then(pl.lit(json.dumps(key, ensure_ascii=False) + ': "')
                                                      + _json_escaped(pl.col(c)) + pl.lit('"'))
               for c, key in keys.items()]
    body = pl.concat_str(members, separator=", ", ignore_nulls=True)
    return pl.when(body.str.len_bytes() > 0).then(pl.lit("{") + body + pl.lit("}"))


def _json_escaped(text: pl.Expr) -> pl.Expr:
    return text.str.replace_many(list(_JSON_ESCAPES), list(_JSON_ESCAPES.values()))


def _column_names(header: list[str | None], width: int) -> list[str]:
    """A distinct name per column, for the JSON of unmapped and quarantined cells: the header text,
    suffixed when it repeats; 列N for a column without a header (or beyond it, in a ragged row)."""
    names: list[str] = []
    seen: set[str] = set()
    for i in range(max(width, len(header))):
        base = str(header[i]) if i < len(header) and header[i] else f"列{i + 1}"
        name, n = base, 2
        while name in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        names.append(name)
    return names
