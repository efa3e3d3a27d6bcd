"""Normalise: turn the raw rows of every active file into person records and typed per-source facts.

A person record is one mention of a person (see schemas/records.py). Facts are the typed fields
scoring needs (injury, amounts, disability level, roll type, dates), keyed by the record that
carries them.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from matchers.idnumber import IdStatus, ids_from_certificates, parse_ids
from matchers.names import one_party_mask, parse_names, split_parties
from pipeline.store import LINEAGE_COLUMNS, create_table_from, query_frame, raw_table, transaction
from pipeline.values import (
    combine_with_scalar,
    map_distinct,
    normalise_addresses,
    normalise_phones,
    parse_amounts,
    parse_dates,
    parse_disability_category,
    parse_disability_level,
    parse_gender,
    parse_injury,
)
from schemas.records import PERSON_RECORD_COLUMNS

__all__ = ["NormalisedData", "normalise_all", "RECORD_CHANGES", "load_active_rows", "case_number", "FACT_TABLES",
           "SOURCE_ORDER"]

_RELATIVE_MARKERS = ("亲属", "家属", "继承", "法定代理", "监护")
_ORG_MARKERS = ("公司", "有限", "集团", "银行", "合作社", "厂", "店", "中心", "医院", "学校", "委员会", "事务所", "工作室", "协会", "政府", "局")

FACT_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "victim_facts": ("被害人案件事实: one row per victims-source row", {
        "record_id": "记录号 (person_records)", "case_no": "案号", "charge": "罪名", "injury": "伤情 (规范)",
        "incident_date": "案发日期", "defendant_name": "被告人姓名", "unit": "承办单位", "role": "victim / relative",
        "relation": "与被害人关系", "compensation_ordered": "判决赔偿金额 (元)", "compensation_received": "已获赔偿金额 (元)",
        "victim_fault": "被害人过错 (原文)",
    }),
    "disability_facts": ("残疾证事实", {
        "record_id": "记录号", "category": "残疾类别", "level": "残疾等级 1–4", "issue_date": "发证日期",
    }),
    "subsistence_facts": ("低保特困事实", {
        "record_id": "记录号", "household_key": "户键", "head_name": "户主姓名", "relation": "与户主关系",
        "aid_type": "救助类型", "monthly_amount": "月保障金额 (元)", "town": "乡镇", "village": "村（社区）",
        "start_date": "纳入日期",
    }),
    "enforcement_facts": ("终本案件事实: one row per enforcement row (record_id null when the applicant is an organisation)", {
        "record_id": "申请执行人记录号", "file_id": "文件号", "row_number": "行号", "enforcement_case_no": "执行案号",
        "applicant_name": "申请执行人", "respondent_name": "被执行人", "amount_ordered": "执行标的 (元)",
        "amount_paid": "已执行 (元)", "amount_unpaid": "未执行 (元)", "termination_date": "终本日期", "court": "执行法院",
        "cause": "案由", "origin_case_no": "执行依据",
    }),
    "key_group_facts": ("重点人群事实", {
        "record_id": "记录号", "group_name": "人员类别", "list_date": "认定日期", "agency": "报送单位",
    }),
}


@dataclass
class NormalisedData:
    """What one normalise run built and stored."""

    records: pl.DataFrame  # the records parsed tonight: every record on a full build, a delta's new ones
    facts: dict[str, pl.DataFrame]  # the fact rows of the records parsed tonight
    changes: pl.DataFrame  # the rows written to record_changes (none on a full build)
    full_build: bool  # every source rebuilt and renumbered densely
    rows_parsed: dict[str, int]  # raw rows parsed per rebuilt source (a delta parses only the rows that are new)


RECORD_CHANGES: tuple[str, dict[str, str]] = (
    "记录变动: the person records the latest normalise added or removed, against the person_records it found "
    "(empty after a full build, when every record was renumbered)",
    {"record_id": "记录号 (removed rows: the id the record had)", "change": "变动: added / removed",
     "record_key": "稳定记录键 (person_records.record_key)", "source": "来源"},
)
_CHANGES_SCHEMA = {"record_id": pl.Int64, "change": pl.String, "record_key": pl.String, "source": pl.String}


def load_active_rows(con: duckdb.DuckDBPyConnection, source: str, *, exclude: Sequence[str] = (),
                     content_key: bool = False) -> pl.DataFrame:
    """Raw rows of the files currently in force for a source (superseded versions excluded), without `exclude` columns.

    With `content_key`, a column `row_key` says what the row holds: 16 hex characters of the MD5 of its
    content cells (see `_content_columns`), a null apart from an empty cell, then `|` and
    the occurrence of that content among the source's rows in (file_id, row_number) order (0 for the first),
    so two identical rows stay apart.
    """
    without = f" EXCLUDE ({', '.join(exclude)})" if exclude else ""
    key = f", {_content_hash_sql(con, source)} AS row_key" if content_key else ""
    rows = query_frame(con,
        f"""SELECT r.*{without}{key} FROM {raw_table(source)} r
            JOIN ingested_files f USING (file_id)
            WHERE f.status = 'loaded'
            ORDER BY r.file_id, r.row_number"""
    )
    if content_key:
        rows = rows.with_columns(_with_occurrence(rows["row_key"]))
    return rows


def _with_occurrence(content: pl.Series) -> pl.Series:
    """`content|occurrence`: 0 for the first row with that content, 1 for the next, … (rows in their order)."""
    occurrence = pl.repeat(0, content.len(), dtype=pl.Int64, eager=True)
    repeated = content.is_duplicated()  # rare: counted among those rows alone
    if repeated.any():
        counted = pl.DataFrame({"c": content.filter(repeated)}).select(pl.int_range(pl.len(), dtype=pl.Int64).over("c"))
        occurrence = _replaced(occurrence, repeated, counted.to_series())
    return pl.select(pl.concat_str(content, pl.lit("|"), occurrence.cast(pl.String))).to_series().alias(content.name)


def _content_hash_sql(con: duckdb.DuckDBPyConnection, source: str) -> str:
    """The SQL of a raw row's content hash (the raw table aliased `r`)."""
    # cells joined by the unit separator, a null as the record separator (neither occurs in a typed cell);
    # MD5, for speed: the key names a row among one source's, it guards nothing
    cells = ", ".join(f'coalesce(r."{c}", chr(30))' for c in _content_columns(con, source))
    return f"left(md5(concat_ws(chr(31), {cells})), 16)"


_NOT_CONTENT = (*LINEAGE_COLUMNS, "extra_columns")  # where a row was read from, and cells no field claims


def _content_columns(con: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    """The raw table's columns that hold the row's content (every field column), in table order."""
    columns = con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? "
                          "ORDER BY column_index", [raw_table(source)]).fetchall()
    return [c for (c,) in columns if c not in _NOT_CONTENT]


_UNUSED_COLUMNS = ("sheet", "extra_columns")  # raw columns normalising does not read


def _active_rows(con: duckdb.DuckDBPyConnection, source: str) -> pl.DataFrame:
    return load_active_rows(con, source, exclude=_UNUSED_COLUMNS, content_key=True)


def _col(frame: pl.DataFrame, name: str) -> pl.Series:
    """A raw column (text), or nulls when the table has no such column."""
    if name in frame.columns:
        return frame[name]
    return pl.Series(name, [None] * frame.height, dtype=pl.String)


def _replaced(column: pl.Series, rows: pl.Series, values: pl.Series) -> pl.Series:
    """A copy of column with the rows where `rows` is true replaced by values, in order."""
    return column.clone().scatter(rows.arg_true(), values)


def _own_id_or_heads(rows: pl.DataFrame) -> pl.Series:
    """A subsistence member's ID cell; on the head's own row (与户主关系 户主, the head's name) left blank, the
    household's 户主身份证号: many rolls write the head's number once, in the head's column."""
    from matchers.households import relation_roles

    own, head = _col(rows, "id_number"), _col(rows, "head_id_number")
    is_head = (relation_roles(_col(rows, "relation")) == "head").fill_null(False)

    def bare(column: pl.Series) -> pl.Series:
        return column.str.replace_all(r"\s", "")

    blank = own.is_null() | (bare(own) == "")
    own_head_row = blank & is_head & (bare(_col(rows, "name")) == bare(_col(rows, "head_name"))).fill_null(False)
    return pl.select(pl.when(own_head_row).then(head).otherwise(own)).to_series().alias(own.name)


def _per_distinct_row(frame: pl.DataFrame, fn: Callable[..., Any], dtype: pl.DataType) -> pl.Series:
    """fn(*row) for each row of frame, called once per distinct row."""
    distinct = frame.unique(maintain_order=True)
    mapped = distinct.with_columns(pl.Series("_out", [fn(*row) for row in distinct.iter_rows()], dtype=dtype))
    return frame.join(mapped, on=frame.columns, how="left", nulls_equal=True, maintain_order="left")["_out"]


def _as_list_built(column: pl.Series) -> pl.Series:
    """column with the type a frame built from a Python list gives it: Null when every value is null.

    Fact tables used to be built from lists; keeping that type keeps their DuckDB column types as they were.
    """
    if column.len() and column.null_count() == column.len():
        return pl.Series(column.name, [None] * column.len(), dtype=pl.Null)
    return column


# A mention: one person named in one source row, with its cells as written (household key and case number
# already derived); _records_frame parses them for all sources at once.
_MENTION_CELLS = ("name", "id_number", "cert_no", "birth_date", "gender", "phone", "address", "household_key",
                  "relation", "case_no", "counterpart_name")


def _mentions(rows: pl.DataFrame, source: str, roles: pl.Series, **cells: pl.Series) -> pl.DataFrame:
    """The person mentions of one source's rows: lineage, record key, role and the raw person cells.

    record_key is `source|row content hash (16 hex)|occurrence|role` (see load_active_rows): it stays the same
    for as long as the row's cells do, whichever file or row number the row is in tonight.
    """
    unknown = set(cells) - set(_MENTION_CELLS)
    if unknown:
        raise TypeError(f"_mentions: unknown cells {sorted(unknown)}")
    nothing = pl.Series([None] * rows.height, dtype=pl.String)
    return pl.DataFrame({
        "record_key": pl.select(pl.concat_str(pl.lit(f"{source}|"), rows["row_key"], pl.lit("|"), roles)).to_series(),
        "source": pl.repeat(source, rows.height, dtype=pl.String, eager=True),
        "role": roles.str.replace(r"[0-9]+$", ""),
        "file_id": _col(rows, "file_id"),
        "source_file": _col(rows, "source_file"),
        "row_number": _col(rows, "row_number"),
        **{c: cells[c].cast(pl.String) if c in cells else nothing for c in _MENTION_CELLS},
    })


def _is_relative(role: Any, relation: Any) -> bool:
    text = f"{role or ''}"
    if any(m in text for m in _RELATIVE_MARKERS):
        return True
    return bool(relation) and str(relation).strip() not in ("本人", "被害人", "无", "-")


def _organisation_mask(names: pl.Series) -> pl.Series:
    """True for names of organisations (long, or with a marker such as 公司), as opposed to people."""
    markers = list(_ORG_MARKERS)
    return (names.is_not_null() & ((names.str.len_chars() > 12) | names.str.contains_any(markers))).fill_null(False)


SOURCE_ORDER: tuple[str, ...] = ("victims", "disability", "subsistence", "enforcement", "key_groups")
"""The order of the sources in a full build of person_records (its record ids are dense in this order)."""
_FACT_SOURCE = {"victim_facts": "victims", "disability_facts": "disability", "subsistence_facts": "subsistence",
                "enforcement_facts": "enforcement", "key_group_facts": "key_groups"}


def normalise_all(con: duckdb.DuckDBPyConnection, keep: Collection[str] = (),
                  before_commit: Callable[[NormalisedData], None] | None = None) -> NormalisedData:
    """Build person_records and the fact tables from all active raw rows, and store them.

    With nothing in `keep`, a full build: every record is rebuilt and numbered densely in SOURCE_ORDER.
    Otherwise a delta: the sources in `keep` (the caller knows their files and the code have not changed
    since they were built) are not read nor written. Of the other sources, only the rows whose row key the
    stored records do not have are parsed: they get ids above every id in use. A row whose key is stored
    keeps its record and fact rows as they are (they depend on the row's cells and the code alone) with
    tonight's lineage (file and row number); stored records whose keys are gone are deleted with their fact
    rows — the table record_changes lists those added and removed. So the records and facts equal those of
    a full build on the same files, record ids and the fact tables' row order aside.

    `before_commit` runs inside the transaction that writes the tables, after them (the caller's own
    bookkeeping, so that it is written with the tables or not at all).
    """
    rebuilt = [source for source in SOURCE_ORDER if source not in keep]
    stored: dict[str, _StoredSource] = {}
    if keep:
        found = _stored_sources(con, rebuilt)
        if found is None:
            return normalise_all(con, before_commit=before_commit)
        stored = found
    kept: dict[str, pl.DataFrame] = {}  # per rebuilt source: the rows kept as stored (row_key and tonight's lineage)
    parsed: dict[str, int] = {}

    def new_rows(source: str, rows: pl.DataFrame) -> pl.DataFrame:
        """The rows to parse tonight: all on a full build, those whose key is not stored on a delta."""
        known = stored[source].row_keys if source in stored else None
        if known is None or not rows.height:
            parsed[source] = rows.height
            return rows
        is_kept = rows["row_key"].is_in(known.implode())
        kept[source] = rows.filter(is_kept).select("row_key", *(c for c in _KEPT_LINEAGE if c in rows.columns))
        parsed[source] = rows.height - kept[source].height
        return rows.filter(~is_kept)

    mentions: list[pl.DataFrame] = []
    facts_raw: dict[str, dict[str, pl.Series]] = {}

    v = new_rows("victims", _active_rows(con, "victims")) if "victims" not in keep else pl.DataFrame()
    if v.height:
        roles = _per_distinct_row(pl.DataFrame([_col(v, "person_role"), _col(v, "relation")]),
                                  lambda r, rel: "relative" if _is_relative(r, rel) else "victim", pl.String)
        case_numbers = map_distinct(_col(v, "case_no"), case_number, pl.String)  # a missing one reads 'None'
        mentions.append(_mentions(
            v, "victims", roles, name=_col(v, "name"), id_number=_col(v, "id_number"),
            birth_date=_col(v, "birth_date"), gender=_col(v, "gender"), phone=_col(v, "phone"),
            address=_col(v, "address"), relation=_col(v, "relation"),
            case_no=pl.select(pl.when(_col(v, "case_no").is_not_null()).then(case_numbers)).to_series(),
            counterpart_name=_col(v, "defendant_name")))
        facts_raw["victim_facts"] = {
            "case_no": case_numbers, "charge": _col(v, "charge"),
            "injury": map_distinct(_col(v, "injury"), lambda x: str(parse_injury(x)), pl.String),
            "incident_date": parse_dates(_col(v, "incident_date")), "defendant_name": _col(v, "defendant_name"),
            "unit": _col(v, "unit"), "role": roles, "relation": _col(v, "relation"),
            "compensation_ordered": parse_amounts(_col(v, "compensation_ordered")),
            "compensation_received": parse_amounts(_col(v, "compensation_received")),
            "victim_fault": _col(v, "victim_fault"),
        }

    d = new_rows("disability", _active_rows(con, "disability")) if "disability" not in keep else pl.DataFrame()
    if d.height:
        cert = _col(d, "cert_no")
        mentions.append(_mentions(
            d, "disability", pl.Series(["disability_holder"] * d.height), name=_col(d, "name"),
            id_number=_col(d, "id_number"), cert_no=cert, gender=_col(d, "gender"), phone=_col(d, "phone"),
            address=_col(d, "address")))
        category = map_distinct(_col(d, "category"), parse_disability_category, pl.String)
        level = map_distinct(_col(d, "level"), parse_disability_level, pl.Int64)
        facts_raw["disability_facts"] = {  # the certificate's digits where the column says nothing usable
            "category": combine_with_scalar(cert, category.is_not_null(), category,
                                            lambda n: _cert_digit(n, 18, "category")),
            "level": combine_with_scalar(cert, level.is_not_null(), level, lambda n: _cert_digit(n, 19, "level")),
            "issue_date": parse_dates(_col(d, "issue_date")),
        }

    s = _active_rows(con, "subsistence") if "subsistence" not in keep else pl.DataFrame()
    if s.height:
        # a row key covers the household key where that depends on the file: worked out before the split on
        # a delta (for the rows without a household id, the only ones whose key can), for the rest after it
        s = _with_household_keys(s, _without_household_id(s) if keep else None)
        s = new_rows("subsistence", s)
        s = _with_household_keys(s, s["_household_key"].is_null())
    if s.height:
        keys = s["_household_key"]
        mentions.append(_mentions(
            s, "subsistence", pl.Series(["subsistence_member"] * s.height), name=_col(s, "name"),
            id_number=_own_id_or_heads(s), gender=_col(s, "gender"), phone=_col(s, "phone"),
            address=_col(s, "address"), household_key=keys, relation=_col(s, "relation")))
        facts_raw["subsistence_facts"] = {
            "household_key": keys, "head_name": _col(s, "head_name"), "relation": _col(s, "relation"),
            "aid_type": _col(s, "aid_type"), "monthly_amount": parse_amounts(_col(s, "monthly_amount")),
            "town": _col(s, "town"), "village": _col(s, "village"), "start_date": parse_dates(_col(s, "start_date")),
        }

    e = (_one_row_per_applicant(new_rows("enforcement", _active_rows(con, "enforcement")))
         if "enforcement" not in keep else pl.DataFrame())
    enforcement_frame: dict[str, pl.Series] | None = None
    if e.height:
        person_mask = ~_organisation_mask(_col(e, "applicant_name"))
        ep = e.filter(person_mask)
        if ep.height:
            k = _col(ep, "party_index")
            roles = pl.select(pl.when(k == 0).then(pl.lit("applicant"))
                              .otherwise(pl.lit("applicant") + (k + 1).cast(pl.String))).to_series()
            mentions.append(_mentions(
                ep, "enforcement", roles, name=_col(ep, "applicant_name"),
                id_number=_col(ep, "applicant_id_number"), counterpart_name=_col(ep, "respondent_name")))
        ordered, paid, unpaid = (parse_amounts(_col(e, c)) for c in ("amount_ordered", "amount_paid", "amount_unpaid"))
        unpaid = pl.select(pl.coalesce(unpaid, ordered - paid.fill_null(0.0))).to_series()
        enforcement_frame = {
            "is_person": person_mask, "file_id": _col(e, "file_id").cast(pl.Int64),
            "row_number": _col(e, "row_number").cast(pl.Int64),
            "enforcement_case_no": _col(e, "enforcement_case_no"), "applicant_name": _col(e, "applicant_name"),
            "respondent_name": _col(e, "respondent_name"), "amount_ordered": ordered, "amount_paid": paid,
            "amount_unpaid": unpaid, "termination_date": parse_dates(_col(e, "termination_date")),
            "court": _col(e, "court"), "cause": _col(e, "cause"), "origin_case_no": _col(e, "origin_case_no"),
        }

    k = new_rows("key_groups", _active_rows(con, "key_groups")) if "key_groups" not in keep else pl.DataFrame()
    if k.height:
        mentions.append(_mentions(
            k, "key_groups", pl.Series(["key_group"] * k.height), name=_col(k, "name"),
            id_number=_col(k, "id_number"), gender=_col(k, "gender"), phone=_col(k, "phone"),
            address=_col(k, "address")))
        facts_raw["key_group_facts"] = {
            "group_name": _col(k, "group"), "list_date": parse_dates(_col(k, "list_date")), "agency": _col(k, "agency"),
        }

    records = _records_frame(mentions)
    delta: _Delta | None = None
    changes = pl.DataFrame(schema=_CHANGES_SCHEMA)
    if keep:
        records, changes, delta = _delta_records(con, records, stored, kept)
    built = NormalisedData(records=records, facts=_facts_frames(records, facts_raw, enforcement_frame),
                           changes=changes, full_build=not keep, rows_parsed=parsed)
    _store(con, built, None if not keep else rebuilt, delta, before_commit)
    return built


_KEPT_LINEAGE = ("file_id", "source_file", "row_number")  # what a kept record takes from tonight's row


@dataclass
class _StoredSource:
    """What a delta night finds stored of one rebuilt source."""

    records: pl.DataFrame  # record_id, record_key, source, row_key and lineage of its records
    row_keys: pl.Series | None  # the row keys whose records and fact rows can be kept; None: none, parse every row
    fact_rows: pl.DataFrame | None = None  # enforcement: file_id, row_number, row_key of its fact rows' raw rows


@dataclass
class _Delta:
    """How a delta night changes the stored tables besides inserting the records it parsed."""

    dropped: pl.DataFrame  # record_id of the stored records not kept (removed, or parsed again)
    moved: pl.DataFrame  # record_id and tonight's lineage of the kept records whose lineage changed
    enforcement_gone: pl.DataFrame | None  # file_id, row_number of the stored enforcement fact rows not kept
    enforcement_moved: pl.DataFrame | None  # old_file_id, old_row_number → file_id, row_number of the kept ones
    enforcement_replaced: bool  # enforcement rebuilt and its fact rows not keyed: every stored one goes


def _stored_sources(con: duckdb.DuckDBPyConnection, rebuilt: Sequence[str]) -> dict[str, _StoredSource] | None:
    """The rebuilt sources' stored records and the row keys they were built from; None when the stored records
    do not have one key each (not a table this code made: the caller builds in full)."""
    records = query_frame(con, """SELECT record_id, record_key, source, file_id, source_file, row_number,
                                         split_part(record_key, '|', 2) || '|' || split_part(record_key, '|', 3)
                                         AS row_key
                                  FROM person_records WHERE list_contains(?, source)""", [list(rebuilt)])
    if records["record_key"].n_unique() != records.height:
        return None
    stored: dict[str, _StoredSource] = {}
    for source in rebuilt:
        own = records.filter(pl.col("source") == source)
        stored[source] = _StoredSource(own, own["row_key"].unique())
    if "enforcement" in stored:
        stored["enforcement"] = _stored_enforcement(con, stored["enforcement"].records)
    return stored


def _stored_enforcement(con: duckdb.DuckDBPyConnection, records: pl.DataFrame) -> _StoredSource:
    """The stored enforcement rows, keyed by the raw rows behind its fact rows (an organisation's has no record).

    Every row in force when they were built has a fact row, so their files are those in force then: their raw
    rows, in the order load_active_rows read them, give the row keys they had. Without one raw row per fact row
    lineage (a workbook's sheets share row numbers), no row can be kept: every row is parsed again."""
    parse_all = _StoredSource(records, None)
    lineage = con.execute("SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = "
                          "'enforcement_facts' AND column_name IN ('file_id', 'row_number')").fetchall()[0][0]
    if lineage != 2:
        return parse_all
    rows = query_frame(con, f"""SELECT r.file_id, r.row_number::BIGINT AS row_number,
                                       {_content_hash_sql(con, 'enforcement')} AS row_key
                                FROM {raw_table('enforcement')} r
                                WHERE r.file_id IN (SELECT DISTINCT file_id FROM enforcement_facts)
                                ORDER BY r.file_id, r.row_number""")
    rows = rows.with_columns(_with_occurrence(rows["row_key"]))
    unmatched = con.execute(f"""SELECT count(*) FROM enforcement_facts f WHERE NOT EXISTS (
                                    SELECT 1 FROM {raw_table('enforcement')} r
                                    WHERE r.file_id = f.file_id AND r.row_number = f.row_number)""").fetchall()[0][0]
    ambiguous = rows.select("file_id", "row_number").is_duplicated().any()
    if unmatched or ambiguous or not records["row_key"].is_in(rows["row_key"].implode()).all():
        return parse_all
    return _StoredSource(records, rows["row_key"], fact_rows=rows)


def _delta_records(con: duckdb.DuckDBPyConnection, built: pl.DataFrame, stored: dict[str, _StoredSource],
                   kept: dict[str, pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame, _Delta]:
    """The parsed records with their ids (a key already stored keeps its id; new keys are numbered above every id
    in use, in build order), the added and removed records (record_changes), and what else changes."""
    previous = pl.concat([s.records for s in stored.values()])
    tonight_kept = pl.concat([rows.select("row_key", *_KEPT_LINEAGE).with_columns(pl.lit(source).alias("source"))
                              for source, rows in kept.items()]) if kept else None
    if tonight_kept is None:
        kept_records = previous.head(0).select("record_id", *_KEPT_LINEAGE)
    else:
        kept_records = previous.select("record_id", "source", "row_key").join(tonight_kept, on=["source", "row_key"], how="inner").select(
            "record_id", *(pl.col(c).cast(previous.schema[c]) for c in _KEPT_LINEAGE))
    stored_ids = built.select("record_key").join(previous.select("record_key", pl.col("record_id").alias("stored_id")),
                                                 on="record_key", how="left", maintain_order="left")["stored_id"]
    new = stored_ids.is_null()
    first = _highest_record_id(con) + 1
    ids = _replaced(stored_ids, new, pl.int_range(first, first + int(new.sum()), dtype=pl.Int64, eager=True))
    records = built.with_columns(ids.alias("record_id"))
    dropped = previous.join(kept_records, on="record_id", how="anti")
    removed = dropped.join(built.select("record_key"), on="record_key", how="anti")
    changes = pl.concat([
        removed.select("record_id", pl.lit("removed").alias("change"), "record_key", "source"),
        records.filter(new).select("record_id", pl.lit("added").alias("change"), "record_key", "source"),
    ]).cast(_CHANGES_SCHEMA).sort("record_id")
    was = previous.select("record_id", *(pl.col(c).alias(f"was_{c}") for c in _KEPT_LINEAGE))
    moved = kept_records.join(was, on="record_id").filter(
        pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"was_{c}")) for c in _KEPT_LINEAGE)).select(
        "record_id", *_KEPT_LINEAGE)
    gone = moved_facts = None
    enforcement = stored.get("enforcement")
    if enforcement is not None and enforcement.fact_rows is not None:
        tonight = kept.get("enforcement", pl.DataFrame(schema={"row_key": pl.String, "file_id": pl.Int64,
                                                               "row_number": pl.Int64}))
        tonight = tonight.select("row_key", pl.col("file_id").cast(pl.Int64), pl.col("row_number").cast(pl.Int64))
        before = enforcement.fact_rows.rename({"file_id": "old_file_id", "row_number": "old_row_number"})
        gone = before.join(tonight, on="row_key", how="anti").select(
            pl.col("old_file_id").alias("file_id"), pl.col("old_row_number").alias("row_number"))
        moved_facts = before.join(tonight, on="row_key", how="inner").filter(
            (pl.col("old_file_id") != pl.col("file_id")) | (pl.col("old_row_number") != pl.col("row_number"))).select(
            "old_file_id", "old_row_number", "file_id", "row_number")
    delta = _Delta(dropped=dropped.select("record_id"), moved=moved, enforcement_gone=gone,
                   enforcement_moved=moved_facts,
                   enforcement_replaced=enforcement is not None and enforcement.fact_rows is None)
    return records, changes, delta


def _highest_record_id(con: duckdb.DuckDBPyConnection) -> int:
    """The highest record id in use: in person_records, or of a record the previous night removed (so that
    the next stage never sees a removed id come back as a new record the night after)."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
                                        "AND list_contains(['person_records', 'record_changes'], table_name)").fetchall()}
    highest = [con.execute(f"SELECT max(record_id) FROM {t}").fetchall()[0][0] for t in sorted(tables)]
    return max((h for h in highest if h is not None), default=-1)


def _applicants(names_cell: Any, ids_cell: Any) -> tuple[list[Any], list[Any]]:
    """The applicants named in one 终本 cell and their IDs, paired by position (IDs dropped when the counts differ)."""
    names = split_parties(names_cell) or [names_cell]
    ids = split_parties(ids_cell)
    if len(names) == 1 or len(ids) != len(names):
        ids = [ids_cell] + [None] * (len(names) - 1) if len(names) == 1 else [None] * len(names)
    return names, ids


def _one_row_per_applicant(frame: pl.DataFrame) -> pl.DataFrame:
    """A 终本 row naming several applicants becomes one row per applicant (IDs paired by position)."""
    if frame.height == 0:
        return frame.with_columns(pl.lit(0).alias("party_index"))
    frame = frame.with_row_index("_row")
    single = one_party_mask(frame["applicant_name"])  # most rows: kept as they are
    rows = []
    for row in frame.filter(~single).iter_rows(named=True):
        names, ids = _applicants(row["applicant_name"], row["applicant_id_number"])
        for k, (name, pid) in enumerate(zip(names, ids)):
            rows.append({**row, "applicant_name": name, "applicant_id_number": pid, "party_index": k})
    schema = {**frame.schema, "party_index": pl.Int64}
    split = pl.DataFrame(rows, schema=schema)
    kept = frame.filter(single).with_columns(pl.lit(0, pl.Int64).alias("party_index"))
    return pl.concat([kept, split]).sort("_row", "party_index").drop("_row")


def case_number(raw: Any) -> str:
    """A case number as one spelling: NFKC (full-width brackets and digits → ASCII), no whitespace."""
    return "".join(unicodedata.normalize("NFKC", str(raw)).split())


def _cert_digit(cert: Any, pos: int, what: str) -> Any:
    """Category / level digit of a 20-character disability certificate number."""
    if not cert:
        return None
    text = "".join(ch for ch in str(cert) if ch.isalnum())
    if len(text) < 20 or not text[pos].isdigit():
        return None
    digit = int(text[pos])
    if what == "category":
        return parse_disability_category(str(digit)) if 1 <= digit <= 7 else None
    return digit if 1 <= digit <= 4 else None


def _row_keys_with_household(row_keys: pl.Series, household_keys: pl.Series, by_file: pl.Series) -> pl.Series:
    """Subsistence row keys whose content hash also covers the household key where that key depends on the
    file (`by_file`: head name and place within one file), so a record keeps its key only while its
    household_key, which linking compares, stays the same too. The occurrence part is kept."""
    if not by_file.any():
        return row_keys
    parts = row_keys.filter(by_file).str.split_exact("|", 1).struct.unnest()
    basis = pl.select(pl.concat_str(parts["field_0"], pl.lit("|"), household_keys.filter(by_file))).to_series()
    hashed = map_distinct(basis, lambda b: hashlib.sha256(b.encode("utf-8")).hexdigest()[:16], pl.String)
    mixed = pl.select(pl.concat_str(hashed, pl.lit("|"), parts["field_1"])).to_series()
    return _replaced(row_keys, by_file, mixed).alias("row_key")


def _without_household_id(rows: pl.DataFrame) -> pl.Series:
    """Subsistence rows without a household id: the only ones whose household key can depend on the file."""
    return (_col(rows, "household_id") == "").fill_null(True)


def _with_household_keys(rows: pl.DataFrame, where: pl.Series | None) -> pl.DataFrame:
    """Subsistence rows with the household key of the rows `where` says (every row when None) in
    `_household_key`, and those rows' keys covering it where it depends on the file (`_row_keys_with_household`)."""
    if "_household_key" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, pl.String).alias("_household_key"))
    if where is None:
        keys, by_file = _household_keys(rows)
        return rows.with_columns(_row_keys_with_household(rows["row_key"], keys, by_file), keys.alias("_household_key"))
    if not where.any():
        return rows
    part = rows.filter(where)
    keys, by_file = _household_keys(part)
    row_keys = _row_keys_with_household(part["row_key"], keys, by_file)
    return rows.with_columns(_replaced(rows["row_key"], where, row_keys),
                             _replaced(rows["_household_key"], where, keys))


def _household_keys(rows: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """The household key of each subsistence row: its household id, else its head's valid ID, else head name and
    place within its file; and which rows took the last (a key that depends on the file the row is in)."""
    household_id, head_id = _col(rows, "household_id"), _col(rows, "head_id_number")
    without_id = (household_id == "").fill_null(True)  # only these rows need the head's ID
    head_id18 = _replaced(pl.Series([None] * rows.height, dtype=pl.String), without_id,
                          parse_ids(head_id.filter(without_id))["id18"])
    as_text = [pl.coalesce(c.cast(pl.String), pl.lit("None")) for c in
               (_col(rows, "file_id"), _col(rows, "head_name"), _col(rows, "town"), _col(rows, "village"))]
    basis = pl.select(
        pl.when(household_id != "").then(pl.lit("hid|") + household_id)
        .when((head_id != "") & head_id18.is_not_null()).then(pl.lit("head|") + head_id18)
        .otherwise(pl.concat_str(pl.lit("headname"), *as_text, separator="|"))
    ).to_series()
    keys = map_distinct(basis, lambda b: "hh_" + hashlib.sha256(b.encode("utf-8")).hexdigest()[:16], pl.String)
    return keys, basis.str.starts_with("headname")


_RECORD_SCHEMA: dict[str, Any] = {
    "record_key": pl.String, "source": pl.String, "role": pl.String, "file_id": pl.Int64, "source_file": pl.String,
    "row_number": pl.Int32, "name_raw": pl.String, "name": pl.String, "name_annotation": pl.String,
    "surname": pl.String, "name_pinyin": pl.String, "id_raw": pl.String, "id18": pl.String,
    "id_candidate": pl.String, "id_status": pl.String, "birth_date": pl.Date, "sex": pl.String, "region": pl.String,
    "phone": pl.String, "address": pl.String, "household_key": pl.String, "relation": pl.String,
    "case_no": pl.String, "counterpart_name": pl.String,
}


_CHOSEN_ID = ("id18", "candidate", "status", "birth_date", "sex", "region")


def _person_ids(ids: pl.Series, certificates: pl.Series) -> pl.DataFrame:
    """parse_id of the ID cell; where it gives no valid ID (or is missing), parse_id of the ID inside the certificate number.

    Only rows with a certificate and without a valid ID can change (without a certificate the second parse is
    MISSING with every field null).
    """
    parsed = parse_ids(ids)
    candidates = certificates.is_not_null() & parsed["id18"].is_null()  # MISSING has no id18 either
    alt = parse_ids(ids_from_certificates(certificates.filter(candidates)))
    own = parsed.filter(candidates)
    use_alt = alt["id18"].is_not_null() | (own["status"] == str(IdStatus.MISSING))
    chosen = alt.select(pl.when(use_alt).then(alt[c]).otherwise(own[c]).alias(c) for c in _CHOSEN_ID)
    return parsed.with_columns(_replaced(parsed[c], candidates, chosen[c]) for c in _CHOSEN_ID)


def _records_frame(mentions: list[pl.DataFrame]) -> pl.DataFrame:
    """person_records from all sources' mentions: every cell parsed in one pass over all sources."""
    if not mentions:
        records = pl.DataFrame(schema=_RECORD_SCHEMA)
    else:
        m = pl.concat(mentions)
        names = parse_names(m["name"])
        ids = _person_ids(m["id_number"], m["cert_no"])
        no_id = ids["id18"].is_null()  # birth date and sex come from the ID when it is valid
        columns = {
            "name_raw": m["name"], "name": names["name"], "name_annotation": names["annotation"],
            "surname": names["surname"], "name_pinyin": names["pinyin"],
            "id_raw": pl.coalesce(m["id_number"], m["cert_no"]),  # the certificate only where there is no ID cell
            "id18": ids["id18"], "id_candidate": ids["candidate"], "id_status": ids["status"],
            "birth_date": _replaced(ids["birth_date"], no_id, parse_dates(m["birth_date"].filter(no_id))),
            "sex": _replaced(ids["sex"], no_id, map_distinct(m["gender"].filter(no_id), parse_gender, pl.String)),
            "region": ids["region"],
            "phone": normalise_phones(m["phone"]),
            "address": normalise_addresses(m["address"]),
        }
        records = m.with_columns(
            (c if isinstance(c, pl.Expr) else pl.lit(c)).alias(name) for name, c in columns.items()
        ).select(pl.col(name).cast(dtype) for name, dtype in _RECORD_SCHEMA.items())
    records = records.with_row_index("record_id").with_columns(pl.col("record_id").cast(pl.Int64))
    return records.select(["record_id", *[c for c in _RECORD_SCHEMA]])


def _facts_frames(records: pl.DataFrame, raw: dict[str, dict[str, pl.Series]],
                  enforcement: dict[str, pl.Series] | None) -> dict[str, pl.DataFrame]:
    source_of = {"victim_facts": "victims", "disability_facts": "disability",
                 "subsistence_facts": "subsistence", "key_group_facts": "key_groups"}
    facts: dict[str, pl.DataFrame] = {}
    for table, columns in raw.items():
        ids = records.filter(pl.col("source") == source_of[table])["record_id"]
        facts[table] = pl.DataFrame([ids, *(_as_list_built(c).alias(name) for name, c in columns.items())])
    if enforcement is not None:
        is_person = enforcement.pop("is_person")
        ids = records.filter(pl.col("source") == "enforcement")["record_id"]
        record_ids = _replaced(pl.Series("record_id", [None] * is_person.len(), dtype=pl.Int64), is_person, ids)
        facts["enforcement_facts"] = pl.DataFrame(
            [record_ids, *(_as_list_built(c).alias(name) for name, c in enforcement.items())])
    return facts


def _store(con: duckdb.DuckDBPyConnection, built: NormalisedData, rebuilt: Sequence[str] | None,
           delta: _Delta | None, before_commit: Callable[[NormalisedData], None] | None) -> None:
    """Write tonight's records, facts and changes in one transaction (a killed run leaves last night's tables).

    `rebuilt` None: a full build, every table replaced. Otherwise `delta` says which of the rebuilt sources'
    stored records and fact rows go and which kept ones take tonight's lineage; the records and fact rows
    parsed tonight are inserted."""
    comments = {name: comment for name, (_, comment) in PERSON_RECORD_COLUMNS.items()}
    registered: list[str] = []

    def source_of(frame: pl.DataFrame) -> str:
        name = f"_normalised_{len(registered)}"
        con.register(name, frame.to_arrow(compat_level=pl.CompatLevel.newest()))
        registered.append(name)
        return name

    try:
        with transaction(con):
            if delta is None:  # a full build
                _replace(con, "person_records", source_of(built.records), "人员记录: one row per mention of a person in a "
                         "source row", comments, uncompressed=_RANDOM_LOOKING)
            else:
                _update_records(con, delta, source_of)
                con.execute(f"INSERT INTO person_records BY NAME SELECT * FROM {source_of(built.records)}")
            for table, (comment, column_comments) in FACT_TABLES.items():
                if rebuilt is not None and _FACT_SOURCE[table] not in rebuilt:
                    continue
                frame = built.facts.get(table)
                if delta is not None:
                    _update_facts(con, table, delta, source_of)
                    if _has_rows(con, table):  # kept rows: tonight's new ones are added to them
                        if frame is not None:
                            _append(con, table, source_of(frame), comment, column_comments)
                        continue
                if frame is None:
                    frame = pl.DataFrame(schema={c: (pl.Int64 if c in ("record_id", "file_id", "row_number")
                                                     else pl.String) for c in column_comments})
                _replace(con, table, source_of(frame), comment, column_comments)
            _replace(con, "record_changes", source_of(built.changes), *RECORD_CHANGES)
            if before_commit is not None:
                before_commit(built)
    finally:
        for name in registered:
            con.unregister(name)


def _update_records(con: duckdb.DuckDBPyConnection, delta: _Delta, source_of: Callable[[pl.DataFrame], str]) -> None:
    """Delete the stored records a delta does not keep; the kept ones whose row moved take tonight's lineage."""
    if delta.dropped.height:
        con.execute(f"DELETE FROM person_records WHERE record_id IN (SELECT record_id FROM {source_of(delta.dropped)})")
    if delta.moved.height:
        con.execute(f"""UPDATE person_records p SET file_id = m.file_id, source_file = m.source_file,
                               row_number = m.row_number
                        FROM {source_of(delta.moved)} m WHERE p.record_id = m.record_id""")


def _update_facts(con: duckdb.DuckDBPyConnection, table: str, delta: _Delta,
                  source_of: Callable[[pl.DataFrame], str]) -> None:
    """Delete a rebuilt source's fact rows a delta does not keep; kept enforcement rows take tonight's lineage."""
    if table != "enforcement_facts":
        if delta.dropped.height:
            con.execute(f"DELETE FROM {table} WHERE record_id IN (SELECT record_id FROM {source_of(delta.dropped)})")
        return
    if delta.enforcement_replaced:
        con.execute(f"DELETE FROM {table}")
        return
    # keyed by their raw rows (an organisation's fact row has no record): the gone ones by last night's lineage
    if delta.enforcement_gone is not None and delta.enforcement_gone.height:
        con.execute(f"""DELETE FROM {table} f USING {source_of(delta.enforcement_gone)} g
                        WHERE f.file_id = g.file_id AND f.row_number = g.row_number""")
    if delta.enforcement_moved is not None and delta.enforcement_moved.height:
        con.execute(f"""UPDATE {table} f SET file_id = m.file_id, row_number = m.row_number
                        FROM {source_of(delta.enforcement_moved)} m
                        WHERE f.file_id = m.old_file_id AND f.row_number = m.old_row_number""")


def _has_rows(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?",
                         [table]).fetchall()[0][0]
    return bool(exists) and con.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchall()[0][0]


def _append(con: duckdb.DuckDBPyConnection, table: str, source: str, comment: str,
            column_comments: dict[str, str]) -> None:
    """Add the rows of the registered frame `source` to `table`; where a column of the table had only nulls
    so far and gets its first values, the table is made again with the type a full build would give it."""
    stored = {r[0]: r[1] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    adding = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    if set(adding) == set(stored) and all(t in (stored[c], '"NULL"') for c, t in adding.items()):
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {source}")
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE _normalised_kept AS SELECT * FROM {table}")
    _replace(con, table, f"(SELECT * FROM _normalised_kept UNION ALL BY NAME SELECT * FROM {source})", comment,
             column_comments)
    con.execute("DROP TABLE _normalised_kept")


_RANDOM_LOOKING = ("record_key", "id_raw", "id18", "id_candidate", "phone", "household_key")
"""person_records columns stored uncompressed (see pipeline.store.create_table_from): 1.5 -> 1.0 s at a province."""


def _replace(con: duckdb.DuckDBPyConnection, table: str, source: str, comment: str,
             column_comments: dict[str, str], uncompressed: Sequence[str] = ()) -> None:
    """CREATE OR REPLACE `table` from the registered frame `source`, with its comments (inside the caller's transaction)."""
    create_table_from(con, table, source, uncompressed)
    con.execute(f"COMMENT ON TABLE {table} IS {_literal(comment)}")
    columns = [r[0] for r in con.execute(f"SELECT * FROM {table} LIMIT 0").description]
    for column in columns:
        if column_comments.get(column):
            con.execute(f'COMMENT ON COLUMN {table}."{column}" IS {_literal(column_comments[column])}')


def _literal(text: str) -> str:
    # COMMENT ON takes a literal, not a parameter; the comments are this module's constants
    return "'" + text.replace("'", "''") + "'"
