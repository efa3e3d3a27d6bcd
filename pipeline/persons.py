"""Store the outcome of resolution: links with evidence, record → person membership, person summaries."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.errors import AidLeadsError
from pipeline.store import query_frame, replace_table

__all__ = ["persons_frame", "with_id_hmac", "id_hmac", "id_key", "store_resolution", "record_evidence", "household_table",
           "previous_person_ids",
           "LINK_COMMENTS", "ID_KEY_FILE"]

ID_KEY_FILE = ".id_key"
"""The HMAC key for `persons.id_hmac`, in the work folder (outside the database), owner-readable only."""

_FIELDS_ZH = {"name": "姓名", "id": "身份证号", "birth_date": "出生日期", "sex": "性别", "region": "地区",
              "phone": "电话", "address": "住址", "counterpart": "对方当事人 (被告人/被执行人)"}

LINK_COMMENTS: dict[str, str] = {
    "record_id_l": "左记录号 (person_records.record_id, the smaller)",
    "record_id_r": "右记录号 (person_records.record_id)",
    "method": "关联方式: id_exact (身份证号一致) / id_typo (号码一位之差且姓名生日一致) / probabilistic (加权比对) / case_context (终本申请执行人与本案当事人同名且被执行人为本案被告人)",
    "match_weight": "匹配权重 (log2 Bayes factor, sum of the field weights and the prior)",
    "match_probability": "匹配概率",
    "evidence_zh": "关联依据 (中文)",
    **{f"{f}_level": f"{zh}比对结果: agree / partial / disagree / missing (name: exact / same_pinyin / one_char / transposed / different / missing)"
       for f, zh in _FIELDS_ZH.items()},
    **{f"{f}_weight": f"{zh}权重 (log2)" for f, zh in _FIELDS_ZH.items()},
}


_PERSON_FIELDS = ("name", "id18", "birth_date", "sex", "phone", "address")


def persons_frame(records: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    """One row per resolved person: the most common value of each identifying field across its records
    (the smallest of those equally common), the number of records and the sources they come from."""
    fields = records.select("record_id", *_PERSON_FIELDS, "source")
    if fields["record_id"].equals(clusters["record_id"]):  # clusters in record order, as resolution gives them
        joined = fields.with_columns(clusters["person_id"])
    else:
        joined = fields.join(clusters.select("record_id", "person_id"), on="record_id", how="inner")
    joined = joined.with_columns(pl.len().over("person_id").alias("n_records"))
    # most people have one record: their values are their record's (a mode over one row is that row)
    single = joined.filter(pl.col("n_records") == 1).select(
        "person_id", *_PERSON_FIELDS, pl.col("n_records").cast(pl.UInt32), pl.col("source").alias("sources"))
    rows = joined.filter(pl.col("n_records") > 1)
    sources = rows["source"].drop_nulls().unique().sort().to_list()
    bit = {source: 1 << i for i, source in enumerate(sources)}  # a person's few sources as bits of one number
    several = rows.group_by("person_id").agg(
        *[pl.col(f).min() for f in _PERSON_FIELDS], *[pl.col(f).max().alias(f"{f}_max") for f in _PERSON_FIELDS],
        pl.len().alias("n_records"),
        pl.col("source").replace_strict(bit, return_dtype=pl.Int64).bitwise_or().fill_null(0).alias("sources"),
    )
    listed = {m: ",".join(s for s in sources if m & bit[s]) for m in several["sources"].unique().to_list()}
    several = several.with_columns(pl.col("sources").replace_strict(listed, return_dtype=pl.String))
    for f in _PERSON_FIELDS:  # where the records disagree (the smallest and largest differ), count the values
        disputed = several.filter(pl.col(f) != pl.col(f"{f}_max"))["person_id"]
        if disputed.len():
            several = several.join(_modes(rows.filter(pl.col("person_id").is_in(disputed.implode())), f),
                                   on="person_id", how="left").with_columns(pl.coalesce(f"{f}_mode", f).alias(f))
    persons = pl.concat([single, several.select(single.columns)], how="vertical_relaxed")
    return persons.sort(_person_order(persons["person_id"]))


def _modes(rows: pl.DataFrame, field: str) -> pl.DataFrame:
    """(person_id, <field>_mode): per person, the most common non-null value of `field`, the smallest on a tie."""
    counted = rows.filter(pl.col(field).is_not_null()).group_by("person_id", field).len()
    return counted.group_by("person_id").agg(
        pl.col(field).sort_by(["len", field], descending=[True, False]).first().alias(f"{field}_mode"))


def _person_order(person_id: pl.Series) -> pl.Series:
    """A key that sorts like person_id: for the usual 'P' + 16 hex digits, their value (a number sorts faster)."""
    if person_id.str.contains("^P[0-9a-f]{16}$").all():
        return person_id.str.slice(1).str.to_integer(base=16, dtype=pl.UInt64)
    return person_id


def id_key(work_dir: Path, *, create: bool = True) -> bytes:
    """The secret behind `id_hmac`: created once (32 random bytes, mode 0600) and kept outside the database.

    Losing it changes every id_hmac on the next run; back it up apart from the database.
    """
    path = Path(work_dir) / ID_KEY_FILE
    if not path.exists():
        if not create:
            raise AidLeadsError(f"no ID hash key at {path}", hint="run `aidleads run` once; the key is made on the first run")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # created with mode 0600 from the start, never readable by others even briefly
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # made meanwhile by another process
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) < 16:
        raise AidLeadsError(f"ID hash key {path} is damaged ({len(key)} bytes)",
                            hint="restore it from backup; deleting it makes a new key and changes every id_hmac")
    return key


def id_hmac(id18: str | None, key: bytes) -> str | None:
    """HMAC-SHA256 of an 18-character ID number (hex): the same person gives the same value, the number is not recoverable."""
    if not id18:
        return None
    return hmac.new(key, id18.strip().upper().encode("ascii"), hashlib.sha256).hexdigest()


def with_id_hmac(persons: pl.DataFrame, key: bytes) -> pl.DataFrame:
    """`persons` with `id_hmac` after `id18`, the keyed hash analysts see instead of the number."""
    numbers = persons["id18"]
    values = _hmacs_in_bulk(numbers, key) if numbers.len() >= 20_000 else \
        pl.Series("id_hmac", _hmacs(numbers.to_list(), key), dtype=pl.String)
    hashed = persons.with_columns(values.alias("id_hmac"))
    columns = list(persons.columns)
    columns.insert(columns.index("id18") + 1, "id_hmac")
    return hashed.select(columns)


def _pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104)."""
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    return bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded)


def _hmacs_in_bulk(numbers: pl.Series, key: bytes) -> pl.Series:
    """id_hmac of each number, by `keyed_hashes` (the same values as hmac gives, see tests/test_at_rest.py; a
    Python loop over a province's 400,000 numbers takes two seconds). Blank numbers have none."""
    trimmed = numbers.cast(pl.String).str.strip_chars(" ")  # as DuckDB's trim, which this used before
    normalised = pl.select(pl.when(trimmed != "").then(trimmed.str.to_uppercase())).to_series()
    return keyed_hashes(normalised, key).alias("id_hmac")


def keyed_hashes(messages: pl.Series, key: bytes) -> pl.Series:
    """HMAC-SHA256 (hex) of each text as UTF-8, by DuckDB's SHA-256 over the padded keys; nulls stay null.
    The same values as `hmac.new(key, text.encode(), sha256).hexdigest()` (tests/test_score_fast.py)."""
    inner, outer = _pads(key)
    con = duckdb.connect()
    try:
        con.register("_messages", messages.cast(pl.String).alias("m").to_frame().to_arrow())
        hashed = con.sql("SELECT sha256($outer || unhex(sha256($inner || encode(m)))) AS h FROM _messages",
                         params={"inner": inner, "outer": outer}).to_arrow_table()
    finally:
        con.close()
    return pl.Series(messages.name, hashed.column("h"), dtype=pl.String)


def _hmacs(numbers: list[str | None], key: bytes) -> list[str | None]:
    """id_hmac of each number: HMAC-SHA256 (RFC 2104) from two hashes of the padded key, copied per number."""
    inner_pad, outer_pad = _pads(key)
    inner, outer = hashlib.sha256(inner_pad), hashlib.sha256(outer_pad)
    out: list[str | None] = []
    for number in numbers:
        if not number:
            out.append(None)
            continue
        h = inner.copy()
        h.update(number.strip().upper().encode("ascii"))
        o = outer.copy()
        o.update(h.digest())
        out.append(o.hexdigest())
    return out


_EVIDENCE_RANK = {"id_exact": 0, "id_typo": 1, "probabilistic": 2, "case_context": 3}


def record_evidence(links: pl.DataFrame) -> pl.DataFrame:
    """Per record, the explanation of its strongest link (why it belongs to its person): a shared ID number
    first, then an ID one slip apart, then the weighed links by weight, then the case. Ranking by kind before
    weight keeps the plainest reason, and keeps it when the weights move a little from one model to the next."""
    if links.height == 0:
        return pl.DataFrame(schema={"record_id": pl.Int64, "evidence_zh": pl.String, "match_weight": pl.Float64})
    both = pl.concat([
        links.select(pl.col("record_id_l").alias("record_id"), "method", "evidence_zh", "match_weight"),
        links.select(pl.col("record_id_r").alias("record_id"), "method", "evidence_zh", "match_weight"),
    ]).with_columns(pl.col("method").replace_strict(_EVIDENCE_RANK, default=9, return_dtype=pl.Int8).alias("rank"))
    return (both.sort(["record_id", "rank", "match_weight"], descending=[False, False, True], nulls_last=True)
            .unique("record_id", keep="first").sort("record_id").select("record_id", "evidence_zh", "match_weight"))


def previous_person_ids(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """(record_key, person_id) as the last resolution left them (empty on a first night, or a database whose
    person_members predates the record_key column)."""
    columns = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' "
                                         "AND table_name = 'person_members'").fetchall()}
    if "record_key" not in columns:
        return pl.DataFrame(schema={"record_key": pl.String, "person_id": pl.String})
    return query_frame(con, "SELECT record_key, person_id FROM person_members")


def store_resolution(con: duckdb.DuckDBPyConnection, resolution: Any, persons: pl.DataFrame) -> None:
    replace_table(con, "links", resolution.links, table_comment="关联: pairs of records judged the same person, with per-field evidence",
                  column_comments=LINK_COMMENTS)
    replace_table(con, "person_members", resolution.clusters.select("record_id", "person_id", "record_key"),
                  table_comment="人员归属: which person each record belongs to",
                  uncompressed=("person_id", "record_key"),
                  column_comments={"record_id": "记录号", "person_id": "人员号 (stable: kept from night to night while "
                                   "most of the person's records stay)", "record_key": "稳定记录键 (person_records.record_key)"})
    replace_table(con, "persons", persons, table_comment="人员: one row per resolved person",
                  uncompressed=("person_id", "id18", "id_hmac", "phone"), column_comments={
        "person_id": "人员号", "name": "姓名 (most common)", "id18": "身份证号 (most common valid)",
        "id_hmac": "身份证号密钥散列 (HMAC-SHA256, key in the work folder's .id_key, not in the database): analysts see this, never id18",
        "birth_date": "出生日期", "sex": "性别", "phone": "电话", "address": "住址",
        "n_records": "记录数", "sources": "出现的来源"})
    replace_table(con, "record_evidence", record_evidence(resolution.links),
                  table_comment="记录依据: the strongest link of each record, explained",
                  column_comments={"record_id": "记录号", "evidence_zh": "关联依据", "match_weight": "匹配权重"})
    households = getattr(resolution, "households", None)
    if households is not None:
        household_table(con, households)


def household_table(con: duckdb.DuckDBPyConnection, households: pl.DataFrame) -> None:
    replace_table(con, "households", households, table_comment="家庭关系: household members known from the rolls and case files",
                  uncompressed=("person_id", "household_person_id"),
                  column_comments={"person_id": "人员号", "household_person_id": "家庭成员人员号", "relation": "关系",
                                   "basis": "依据: the roll or case file the relation comes from"})
