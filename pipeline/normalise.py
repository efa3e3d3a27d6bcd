"""Normalise: turn the raw rows of every active file into person records and typed per-source facts.

A person record is one mention of a person (see schemas/records.py). Facts are the typed fields
scoring needs (injury, amounts, disability level, roll type, dates), keyed by the record that
carries them.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from matchers.idnumber import IdStatus, id_from_certificate, parse_id
from matchers.names import parse_name, split_parties
from pipeline.store import query_frame, raw_table, replace_table
from pipeline.values import (
    ValueParseError,
    normalise_address,
    normalise_phone,
    parse_amount,
    parse_date,
    parse_disability_category,
    parse_disability_level,
    parse_gender,
    parse_injury,
)
from schemas.records import PERSON_RECORD_COLUMNS

__all__ = ["NormalisedData", "normalise_all", "load_active_rows", "case_number", "FACT_TABLES"]

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
    records: pl.DataFrame
    facts: dict[str, pl.DataFrame]


def _mapper(fn: Callable[[Any], Any]) -> Callable[[list[Any]], list[Any]]:
    """Apply fn once per distinct value (values repeat a lot in rolls)."""
    def apply(values: list[Any]) -> list[Any]:
        cache: dict[Any, Any] = {}
        out = []
        for v in values:
            if v not in cache:
                cache[v] = fn(v)
            out.append(cache[v])
        return out
    return apply


def _lenient(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def call(v: Any) -> Any:
        try:
            return fn(v)
        except ValueParseError:
            return None  # rows with unparseable typed fields were quarantined at ingest
    return call


_date = _mapper(_lenient(parse_date))
_amount = _mapper(_lenient(parse_amount))
_phone = _mapper(normalise_phone)
_address = _mapper(normalise_address)
_gender = _mapper(parse_gender)
_name = _mapper(parse_name)


def load_active_rows(con: duckdb.DuckDBPyConnection, source: str) -> pl.DataFrame:
    """Raw rows of the files currently in force for a source (superseded versions excluded)."""
    return query_frame(con, 
        f"""SELECT r.* FROM {raw_table(source)} r
            JOIN ingested_files f USING (file_id)
            WHERE f.status = 'loaded'
            ORDER BY r.file_id, r.row_number"""
    )


def _col(frame: pl.DataFrame, name: str) -> list[Any]:
    return frame[name].to_list() if name in frame.columns else [None] * frame.height


def _person_rows(frame: pl.DataFrame, source: str, roles: list[str], names: list[Any], ids: list[Any],
                 extra_ids: list[Any] | None = None, birth: list[Any] | None = None,
                 gender: list[Any] | None = None, phone: list[Any] | None = None,
                 address: list[Any] | None = None, household: list[Any] | None = None,
                 relation: list[Any] | None = None, case_no: list[Any] | None = None,
                 counterpart: list[Any] | None = None) -> dict[str, list[Any]]:
    n = frame.height
    parsed_names = _name(names)
    parsed_ids = _mapper(parse_id)(ids)
    if extra_ids is not None:  # e.g. the ID inside a disability certificate number
        alt = _mapper(lambda c: parse_id(id_from_certificate(c)))(extra_ids)
        parsed_ids = [a if (p.id18 is None and a.id18 is not None) or p.status is IdStatus.MISSING else p
                      for p, a in zip(parsed_ids, alt)]
    births = _date(birth) if birth is not None else [None] * n
    genders = _gender(gender) if gender is not None else [None] * n
    sha = _col(frame, "file_sha256")
    rows = _col(frame, "row_number")
    out: dict[str, list[Any]] = {c: [] for c in PERSON_RECORD_COLUMNS if c != "record_id"}
    out["case_no"] = [case_number(c) if c is not None else None for c in case_no] if case_no else [None] * n
    out["counterpart_name"] = counterpart if counterpart is not None else [None] * n
    for i in range(n):
        pid, pn = parsed_ids[i], parsed_names[i]
        out["record_key"].append(f"{source}|{sha[i][:12]}|{rows[i]}|{roles[i]}")
        out["source"].append(source)
        out["role"].append(roles[i].rstrip("0123456789"))
        out["name_raw"].append(names[i])
        out["name"].append(pn.name)
        out["name_annotation"].append(pn.annotation)
        out["surname"].append(pn.surname)
        out["name_pinyin"].append(pn.pinyin)
        out["id_raw"].append(ids[i] if ids[i] is not None or extra_ids is None else extra_ids[i])
        out["id18"].append(pid.id18)
        out["id_candidate"].append(pid.candidate)
        out["id_status"].append(str(pid.status))
        out["birth_date"].append(pid.birth_date if pid.id18 else births[i])
        out["sex"].append(pid.sex if pid.id18 else genders[i])
        out["region"].append(pid.region)
        out["household_key"].append(household[i] if household else None)
        out["relation"].append(relation[i] if relation else None)
    out["file_id"] = _col(frame, "file_id")
    out["source_file"] = _col(frame, "source_file")
    out["row_number"] = rows
    out["phone"] = _phone(phone) if phone is not None else [None] * n
    out["address"] = _address(address) if address is not None else [None] * n
    return out


def _is_relative(role: Any, relation: Any) -> bool:
    text = f"{role or ''}"
    if any(m in text for m in _RELATIVE_MARKERS):
        return True
    return bool(relation) and str(relation).strip() not in ("本人", "被害人", "无", "-")


def _is_organisation(name: Any) -> bool:
    return name is not None and (len(str(name)) > 12 or any(m in str(name) for m in _ORG_MARKERS))


def normalise_all(con: duckdb.DuckDBPyConnection) -> NormalisedData:
    """Build person_records and the fact tables from all active raw rows, and store them."""
    parts: list[dict[str, list[Any]]] = []
    facts_raw: dict[str, dict[str, list[Any]]] = {}

    v = load_active_rows(con, "victims")
    if v.height:
        roles = ["relative" if _is_relative(r, rel) else "victim"
                 for r, rel in zip(_col(v, "person_role"), _col(v, "relation"))]
        parts.append(_person_rows(v, "victims", roles, _col(v, "name"), _col(v, "id_number"),
                                  birth=_col(v, "birth_date"), gender=_col(v, "gender"), phone=_col(v, "phone"),
                                  address=_col(v, "address"), relation=_col(v, "relation"),
                                  case_no=_col(v, "case_no"), counterpart=_col(v, "defendant_name")))
        facts_raw["victim_facts"] = {
            "case_no": [case_number(c) for c in _col(v, "case_no")], "charge": _col(v, "charge"),
            "injury": [str(parse_injury(x)) for x in _col(v, "injury")],
            "incident_date": _date(_col(v, "incident_date")), "defendant_name": _col(v, "defendant_name"),
            "unit": _col(v, "unit"), "role": roles, "relation": _col(v, "relation"),
            "compensation_ordered": _amount(_col(v, "compensation_ordered")),
            "compensation_received": _amount(_col(v, "compensation_received")),
            "victim_fault": _col(v, "victim_fault"),
        }

    d = load_active_rows(con, "disability")
    if d.height:
        parts.append(_person_rows(d, "disability", ["disability_holder"] * d.height, _col(d, "name"),
                                  _col(d, "id_number"), extra_ids=_col(d, "cert_no"), gender=_col(d, "gender"),
                                  phone=_col(d, "phone"), address=_col(d, "address")))
        cert = _col(d, "cert_no")
        facts_raw["disability_facts"] = {
            "category": [parse_disability_category(c) or _cert_digit(n, 18, "category") for c, n in zip(_col(d, "category"), cert)],
            "level": [parse_disability_level(lv) or _cert_digit(n, 19, "level") for lv, n in zip(_col(d, "level"), cert)],
            "issue_date": _date(_col(d, "issue_date")),
        }

    s = load_active_rows(con, "subsistence")
    if s.height:
        keys = [_household_key(f, h, hid, hn, t, vl) for f, h, hid, hn, t, vl in zip(
            _col(s, "file_id"), _col(s, "household_id"), _col(s, "head_id_number"), _col(s, "head_name"),
            _col(s, "town"), _col(s, "village"))]
        parts.append(_person_rows(s, "subsistence", ["subsistence_member"] * s.height, _col(s, "name"),
                                  _col(s, "id_number"), gender=_col(s, "gender"), phone=_col(s, "phone"),
                                  address=_col(s, "address"), household=keys, relation=_col(s, "relation")))
        facts_raw["subsistence_facts"] = {
            "household_key": keys, "head_name": _col(s, "head_name"), "relation": _col(s, "relation"),
            "aid_type": _col(s, "aid_type"), "monthly_amount": _amount(_col(s, "monthly_amount")),
            "town": _col(s, "town"), "village": _col(s, "village"), "start_date": _date(_col(s, "start_date")),
        }

    e = _one_row_per_applicant(load_active_rows(con, "enforcement"))
    enforcement_frame: dict[str, list[Any]] | None = None
    if e.height:
        person_mask = [not _is_organisation(n) for n in _col(e, "applicant_name")]
        ep = e.filter(pl.Series(person_mask))
        if ep.height:
            roles = ["applicant" if k == 0 else f"applicant{k + 1}" for k in _col(ep, "party_index")]
            parts.append(_person_rows(ep, "enforcement", roles, _col(ep, "applicant_name"),
                                      _col(ep, "applicant_id_number"), counterpart=_col(ep, "respondent_name")))
        ordered, paid, unpaid = (_amount(_col(e, c)) for c in ("amount_ordered", "amount_paid", "amount_unpaid"))
        unpaid = [u if u is not None else (o - (p or 0.0) if o is not None else None) for o, p, u in zip(ordered, paid, unpaid)]
        enforcement_frame = {
            "is_person": person_mask, "file_id": _col(e, "file_id"), "row_number": _col(e, "row_number"),
            "enforcement_case_no": _col(e, "enforcement_case_no"), "applicant_name": _col(e, "applicant_name"),
            "respondent_name": _col(e, "respondent_name"), "amount_ordered": ordered, "amount_paid": paid,
            "amount_unpaid": unpaid, "termination_date": _date(_col(e, "termination_date")),
            "court": _col(e, "court"), "cause": _col(e, "cause"), "origin_case_no": _col(e, "origin_case_no"),
        }

    k = load_active_rows(con, "key_groups")
    if k.height:
        parts.append(_person_rows(k, "key_groups", ["key_group"] * k.height, _col(k, "name"), _col(k, "id_number"),
                                  gender=_col(k, "gender"), phone=_col(k, "phone"), address=_col(k, "address")))
        facts_raw["key_group_facts"] = {
            "group_name": _col(k, "group"), "list_date": _date(_col(k, "list_date")), "agency": _col(k, "agency"),
        }

    records = _records_frame(parts)
    facts = _facts_frames(records, facts_raw, enforcement_frame)
    _store(con, records, facts)
    return NormalisedData(records=records, facts=facts)


def _one_row_per_applicant(frame: pl.DataFrame) -> pl.DataFrame:
    """A 终本 row naming several applicants becomes one row per applicant (IDs paired by position)."""
    if frame.height == 0:
        return frame.with_columns(pl.lit(0).alias("party_index"))
    rows = []
    for row in frame.iter_rows(named=True):
        names = split_parties(row["applicant_name"]) or [row["applicant_name"]]
        ids = split_parties(row["applicant_id_number"])
        if len(names) == 1 or len(ids) != len(names):
            ids = [row["applicant_id_number"]] + [None] * (len(names) - 1) if len(names) == 1 else [None] * len(names)
        for k, (name, pid) in enumerate(zip(names, ids)):
            rows.append({**row, "applicant_name": name, "applicant_id_number": pid, "party_index": k})
    return pl.DataFrame(rows, schema={**frame.schema, "party_index": pl.Int64})


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


def _household_key(file_id: Any, household_id: Any, head_id: Any, head_name: Any, town: Any, village: Any) -> str:
    if household_id:
        basis = f"hid|{household_id}"
    elif head_id and parse_id(head_id).id18:
        basis = f"head|{parse_id(head_id).id18}"
    else:
        basis = f"headname|{file_id}|{head_name}|{town}|{village}"
    return "hh_" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]


_RECORD_SCHEMA: dict[str, Any] = {
    "record_key": pl.String, "source": pl.String, "role": pl.String, "file_id": pl.Int64, "source_file": pl.String,
    "row_number": pl.Int32, "name_raw": pl.String, "name": pl.String, "name_annotation": pl.String,
    "surname": pl.String, "name_pinyin": pl.String, "id_raw": pl.String, "id18": pl.String,
    "id_candidate": pl.String, "id_status": pl.String, "birth_date": pl.Date, "sex": pl.String, "region": pl.String,
    "phone": pl.String, "address": pl.String, "household_key": pl.String, "relation": pl.String,
    "case_no": pl.String, "counterpart_name": pl.String,
}


def _records_frame(parts: list[dict[str, list[Any]]]) -> pl.DataFrame:
    frames = [pl.DataFrame(p, schema=_RECORD_SCHEMA) for p in parts]
    records = pl.concat(frames) if frames else pl.DataFrame(schema=_RECORD_SCHEMA)
    records = records.with_row_index("record_id").with_columns(pl.col("record_id").cast(pl.Int64))
    return records.select(["record_id", *[c for c in _RECORD_SCHEMA]])


def _facts_frames(records: pl.DataFrame, raw: dict[str, dict[str, list[Any]]],
                  enforcement: dict[str, list[Any]] | None) -> dict[str, pl.DataFrame]:
    source_of = {"victim_facts": "victims", "disability_facts": "disability",
                 "subsistence_facts": "subsistence", "key_group_facts": "key_groups"}
    facts: dict[str, pl.DataFrame] = {}
    for table, columns in raw.items():
        ids = records.filter(pl.col("source") == source_of[table])["record_id"]
        facts[table] = pl.DataFrame({"record_id": ids, **columns}, strict=False)
    if enforcement is not None:
        ids = records.filter(pl.col("source") == "enforcement")["record_id"].to_list()
        it = iter(ids)
        record_ids = [next(it) if is_person else None for is_person in enforcement.pop("is_person")]
        facts["enforcement_facts"] = pl.DataFrame({"record_id": record_ids, **enforcement}, strict=False,
                                                  schema_overrides={"record_id": pl.Int64})
    return facts


def _store(con: duckdb.DuckDBPyConnection, records: pl.DataFrame, facts: dict[str, pl.DataFrame]) -> None:
    comments = {name: comment for name, (_, comment) in PERSON_RECORD_COLUMNS.items()}
    replace_table(con, "person_records", records, table_comment="人员记录: one row per mention of a person in a source row",
                  column_comments=comments)
    for table, (comment, column_comments) in FACT_TABLES.items():
        frame = facts.get(table)
        if frame is None:
            frame = pl.DataFrame(schema={c: (pl.Int64 if c in ("record_id", "file_id", "row_number") else pl.String)
                                         for c in column_comments})
        replace_table(con, table, frame, table_comment=comment, column_comments=column_comments)
