"""Score: per victim and case, how likely the case left the family in hardship, with readable reasons.

The national judicial-aid rules open aid for serious harm (death, serious injury, disability) where no
compensation is obtainable (终本, offender insolvent) and the household is in hardship; they exclude
victims who were reasonably compensated or bear major fault. Each rule becomes a signal with points
from `ScoringConfig`; each signal carries a Chinese reason with its figure.

When the victim died or lost the ability to work, the lead's subject is the relative who carries the
burden (spouse first, then an adult child, then a parent), and the lead names the victim and the case.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from matchers.idnumber import mask_id, mask_phone
from schemas.config import ScoringConfig

__all__ = ["Signal", "score_leads", "LEAD_COLUMNS"]

_SPOUSE = ("配偶", "妻", "夫", "丈夫", "妻子", "老伴")
_CHILD = ("子", "女", "儿")
_PARENT = ("父", "母")
_DISABLING_INJURIES = ("死亡", "重伤一级")

LEAD_COLUMNS = [
    "lead_id", "case_no", "subject_person_id", "victim_person_id", "subject_role", "score", "tier",
    "subject_name", "id_masked", "phone", "address", "victim_name", "charge", "injury", "incident_date", "unit",
    "reasons", "evidence", "source_rows", "referrals", "aid_estimate", "fingerprint", "sources_hit",
    "subject_id18", "subject_phone", "priority_groups",
]


@dataclass
class Signal:
    """One reason a lead is raised, with its points and the records behind it."""

    code: str
    points: float
    reason_zh: str
    record_ids: list[int] = field(default_factory=list)


def _wan(amount: float) -> str:
    return f"{amount / 10000:.1f} 万元" if amount >= 10000 else f"{amount:,.0f} 元"


def _age(birth: dt.date | None, on: dt.date) -> int | None:
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _rel_kind(relation: str | None) -> str:
    """spouse / child / parent / other, from a relation written in Chinese."""
    text = relation or ""
    if any(s in text for s in _SPOUSE) and not text.endswith(("姐夫", "妹夫")):
        return "spouse"
    if text.startswith(_PARENT):
        return "parent"
    if any(s in text for s in _CHILD) or "孙" in text:
        return "child"
    if any(s in text for s in _PARENT):
        return "parent"
    return "other"


class _Index:
    """Per-person lookups over records and facts."""

    def __init__(self, records: pl.DataFrame, facts: dict[str, pl.DataFrame]) -> None:
        self.rec = {r["record_id"]: r for r in records.iter_rows(named=True)}
        self.records_of: dict[str, list[int]] = defaultdict(list)
        for rid, r in self.rec.items():
            self.records_of[r["person_id"]].append(rid)
        self.facts_by_record: dict[str, dict[int, list[dict[str, Any]]]] = {}
        for table, frame in facts.items():
            by: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for row in frame.iter_rows(named=True):
                if row.get("record_id") is not None:
                    by[row["record_id"]].append(row)
            self.facts_by_record[table] = by
        self.household_members: dict[str, set[str]] = defaultdict(set)
        self.households_of: dict[str, set[str]] = defaultdict(set)
        for row in facts.get("subsistence_facts", pl.DataFrame()).iter_rows(named=True):
            pid = self.rec[row["record_id"]]["person_id"]
            self.household_members[row["household_key"]].add(pid)
            self.households_of[pid].add(row["household_key"])

    def person_facts(self, person_id: str, table: str) -> list[tuple[int, dict[str, Any]]]:
        by = self.facts_by_record.get(table, {})
        return [(rid, f) for rid in self.records_of.get(person_id, []) for f in by.get(rid, [])]

    def best(self, person_id: str, column: str) -> Any:
        """The most common non-null value of a column across the person's records."""
        counts: dict[Any, int] = defaultdict(int)
        for rid in self.records_of.get(person_id, []):
            v = self.rec[rid][column]
            if v is not None:
                counts[v] += 1
        return max(counts, key=lambda k: (counts[k], str(k))) if counts else None


def _around_victims(records: pl.DataFrame, facts: dict[str, pl.DataFrame]
                    ) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Only the records a lead can draw on: the people of the victims' cases (victims and relatives)
    and everyone sharing a subsistence household with them. A province's rolls are mostly people
    no case touches; looking them up one by one would cost minutes."""
    person_of = records.select("record_id", "person_id")
    case_people = facts["victim_facts"].select("record_id").join(person_of, on="record_id").select("person_id")
    subsistence = facts.get("subsistence_facts")
    people = case_people
    if subsistence is not None and subsistence.height:
        household_of = subsistence.select("record_id", "household_key").join(person_of, on="record_id")
        households = household_of.join(case_people.unique(), on="person_id", how="semi").select("household_key")
        people = pl.concat([case_people, household_of.join(households.unique(), on="household_key", how="semi")
                            .select("person_id")])
    kept = records.join(people.unique(), on="person_id", how="semi")
    ids = kept.select("record_id")
    return kept, {table: (frame.join(ids, on="record_id", how="semi") if "record_id" in frame.columns else frame)
                  for table, frame in facts.items()}


def _lead_id(key: bytes, case_no: str, identity: str) -> str:
    digest = hmac.new(key, f"{case_no}|{identity}".encode("utf-8"), hashlib.sha256).hexdigest()
    return "XS" + digest[:12].upper()


def score_leads(
    records: pl.DataFrame,
    facts: dict[str, pl.DataFrame],
    evidence_by_record: dict[int, str],
    cfg: ScoringConfig,
    lead_key: bytes,
    today: dt.date | None = None,
    aided_before: dict[str, str] | None = None,
) -> pl.DataFrame:
    """One row per (case, subject) worth a prosecutor's look, ranked; columns LEAD_COLUMNS.

    aided_before maps a person id to the case in which that person already received judicial aid.
    """
    today = today or dt.date.today()
    victims = facts.get("victim_facts")
    if victims is None or victims.height == 0:
        return pl.DataFrame(schema={c: pl.String for c in LEAD_COLUMNS})
    records, facts = _around_victims(records, facts)
    idx = _Index(records, facts)

    cases: dict[tuple[str, str], dict[str, Any]] = {}
    relatives: dict[str, list[tuple[str, str | None, int]]] = defaultdict(list)
    for row in victims.iter_rows(named=True):
        person = idx.rec[row["record_id"]]["person_id"]
        if row["role"] == "relative":
            relatives[row["case_no"]].append((person, row["relation"], row["record_id"]))
            continue
        key = (row["case_no"], person)
        if key not in cases:
            cases[key] = {**row, "record_ids": [row["record_id"]]}
        else:
            cases[key]["record_ids"].append(row["record_id"])

    enforcement_by_person: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for row in facts.get("enforcement_facts", pl.DataFrame()).iter_rows(named=True):
        if row.get("record_id") is not None:
            enforcement_by_person[idx.rec[row["record_id"]]["person_id"]].append((row["record_id"], row))

    leads = []
    for (case_no, victim), case in cases.items():
        lead = _score_case(case_no, victim, case, relatives.get(case_no, []), idx, enforcement_by_person,
                           evidence_by_record, cfg, today, aided_before or {})
        if lead is None:
            continue
        identity = idx.best(lead["subject_person_id"], "id18") or (
            f"{idx.best(lead['subject_person_id'], 'name')}|{idx.best(lead['subject_person_id'], 'birth_date')}")
        lead["lead_id"] = _lead_id(lead_key, case_no, str(identity))
        leads.append(lead)
    if not leads:
        return pl.DataFrame(schema={c: pl.String for c in LEAD_COLUMNS})
    frame = pl.DataFrame(leads).select(LEAD_COLUMNS)
    return frame.unique("lead_id", keep="first").sort(["score", "lead_id"], descending=[True, False])


def _score_case(case_no, victim, case, case_relatives, idx: _Index, enforcement_by_person, evidence_by_record,
                cfg: ScoringConfig, today: dt.date, aided_before: dict[str, str]) -> dict[str, Any] | None:
    incident: dt.date | None = case["incident_date"]
    injury: str = case["injury"]
    signals: list[Signal] = []
    victim_records = list(case["record_ids"])

    # -- who carries the burden ------------------------------------------------------------
    disabled_levels = [f["level"] for _, f in idx.person_facts(victim, "disability_facts") if f["level"]]
    lost_capacity = injury in _DISABLING_INJURIES or any(lv <= 2 for lv in disabled_levels)
    family: dict[str, tuple[str, str | None]] = {}  # person → (kind, relation text)
    for person, relation, _ in case_relatives:
        if person != victim:
            family[person] = (_rel_kind(relation), relation)
    for anchor in [victim, *family]:
        for hh in idx.households_of.get(anchor, ()):
            for member in idx.household_members[hh]:
                if member != victim and member not in family:
                    family[member] = ("household", None)
    subject, subject_role = victim, "被害人"
    if lost_capacity and family:
        order = {"spouse": 0, "child": 1, "parent": 2, "household": 3, "other": 4}
        adults = [p for p in family if (_age(idx.best(p, "birth_date"), today) or 30) >= 18]
        pool = adults or list(family)
        subject = min(pool, key=lambda p: (order[family[p][0]], str(p)))
        subject_role = f"近亲属（{family[subject][1] or '家庭成员'}）"
    people = {victim: "被害人", **{p: (family[p][1] or "家庭成员") for p in family}}

    def who(person: str) -> str:
        return "" if person == subject else f"{people.get(person, '')}"

    # -- harm ---------------------------------------------------------------------------------
    pts = cfg.injury.get(injury, 0)
    if pts:
        signals.append(Signal("injury", pts, f"被害人{injury}", victim_records))

    # -- no compensation obtainable: 终本 ------------------------------------------------------
    compensated = False
    ordered, received = case["compensation_ordered"], case["compensation_received"]
    if ordered and received is not None and ordered > 0 and received >= cfg.compensated_ratio * ordered:
        compensated = True
        signals.append(Signal("compensated", -cfg.compensated_penalty,
                              f"已获赔偿 {_wan(received)}（判赔 {_wan(ordered)} 的 {received / ordered:.0%}），可能不符合救助条件",
                              victim_records))
    seen_enf: set[str] = set()
    for person in [victim, *family]:
        for rid, enf in enforcement_by_person.get(person, []):
            unpaid = enf["amount_unpaid"] or 0.0
            if unpaid <= 0 or enf["enforcement_case_no"] in seen_enf:
                continue
            seen_enf.add(enf["enforcement_case_no"])
            points = cfg.unpaid_base + min(cfg.unpaid_cap, cfg.unpaid_per_10k * unpaid / 10000)
            text = f"{who(person)}终本未执行 {_wan(unpaid)}（{enf['enforcement_case_no']}）"
            if enf["amount_ordered"] and unpaid >= 0.8 * enf["amount_ordered"]:
                points += cfg.unpaid_ratio_bonus
                text += f"，执行到位不足 {1 - unpaid / enf['amount_ordered']:.0%}" if unpaid < enf["amount_ordered"] else "，分文未执行"
            signals.append(Signal("unpaid", points, text, [rid]))

    # -- hardship: rolls ------------------------------------------------------------------------
    def after(date: dt.date | None) -> str:
        if date is None or incident is None:
            return ""
        return "（案发后纳入）" if date >= incident else "（案发前已纳入）"

    for person in [victim, *family]:
        for rid, f in idx.person_facts(person, "disability_facts"):
            level = f["level"]
            pts = cfg.disability_level.get(str(level), 6) if person in (victim, subject) else 4
            issued = f["issue_date"]
            note = ""
            if incident and issued:
                note = "（案发后办证）" if issued >= incident else "（案发前已持证）"
                if issued >= incident and person == victim:
                    pts += cfg.enrolled_after_incident_bonus
            level_zh = "一二三四"[level - 1] + "级" if level else "等级不详"
            signals.append(Signal("disability", pts, f"{who(person)}残疾证 {f['category'] or ''}{level_zh}{note}", [rid]))
        for rid, f in idx.person_facts(person, "key_group_facts"):
            group = f["group_name"] or "重点人群"
            pts = cfg.key_groups.get(group, cfg.key_group_default)
            signals.append(Signal("key_group", pts, f"{who(person)}{group}{after(f['list_date'])}", [rid]))
    seen_hh: set[str] = set()
    for person in [victim, *family]:
        for rid, f in idx.person_facts(person, "subsistence_facts"):
            if f["household_key"] in seen_hh:
                continue
            seen_hh.add(f["household_key"])
            aid = f["aid_type"] or "低保"
            pts = next((v for k, v in cfg.subsistence.items() if k in aid), 12)
            if f["start_date"] and incident and f["start_date"] >= incident:
                pts += cfg.enrolled_after_incident_bonus
            amount = f" 月 {f['monthly_amount']:,.0f} 元" if f["monthly_amount"] else ""
            signals.append(Signal("subsistence", pts, f"家庭享受{aid}{amount}{after(f['start_date'])}", [rid]))

    cross_source = [s for s in signals if s.code in ("unpaid", "disability", "key_group", "subsistence")]
    if not cross_source:
        return None  # nothing beyond the case itself: not a cross-comparison lead

    # -- dependents and priority groups -------------------------------------------------------
    minors = [p for p in family if (a := _age(idx.best(p, "birth_date"), today)) is not None and a < 18]
    elders = [p for p in family if (a := _age(idx.best(p, "birth_date"), today)) is not None and a >= 60]
    disabled = [p for p in family if p not in minors and p not in elders and idx.person_facts(p, "disability_facts")]
    dependents = len(minors) + len(elders) + len(disabled)
    if dependents:
        parts = (([f"未成年子女/家庭成员 {len(minors)} 人"] if minors else [])
                 + ([f"60岁以上老人 {len(elders)} 人"] if elders else [])
                 + ([f"残疾家庭成员 {len(disabled)} 人"] if disabled else []))
        signals.append(Signal("dependents", min(cfg.dependents_cap, cfg.dependents_per_person * dependents),
                              "家中" + "、".join(parts)))
    victim_sex = idx.best(victim, "sex")
    victim_age = _age(idx.best(victim, "birth_date"), incident or today)
    charge = case["charge"] or ""
    priority: list[str] = []
    if victim_sex == "F" and any(o in charge for o in cfg.priority_offences):
        priority.append("妇女（遭受侵害）")
        signals.append(Signal("priority", cfg.priority_woman_offence, f"重点群体：女性被害人（{charge}）"))
    if subject != victim and idx.best(subject, "sex") == "F" and minors and lost_capacity:
        priority.append("妇女（家庭主要劳动力因案死亡/伤残，抚养未成年子女）")
        signals.append(Signal("priority", cfg.priority_woman_offence, "重点群体：因案失去家庭主要劳动力、抚养未成年子女的妇女"))
    if idx.person_facts(victim, "disability_facts") or idx.person_facts(subject, "disability_facts"):
        priority.append("残疾人")
    if any(s.code == "key_group" and "退役军人" in s.reason_zh for s in signals):
        priority.append("退役军人")
    for marker, group in (("交通肇事", "交通事故"), ("重大责任事故", "工伤事故"), ("医疗事故", "医疗纠纷")):
        if marker in charge:
            priority.append(group)
    if victim_age is not None and victim_age < 18:
        priority.append("未成年人")
        signals.append(Signal("minor", cfg.minor_victim, f"未成年被害人（案发时 {victim_age} 岁）"))
    elif victim_age is not None and victim_age >= cfg.elderly_age:
        signals.append(Signal("elderly", cfg.elderly_victim, f"高龄被害人（案发时 {victim_age} 岁）"))
    if incident and (today - incident).days <= 365 * cfg.recent_incident_years:
        signals.append(Signal("recent", cfg.recent_incident, f"案发于 {incident.isoformat()}（{cfg.recent_incident_years} 年内）"))
    earlier = next((aided_before[p] for p in (subject, victim) if p in aided_before and aided_before[p] != case_no), None)
    if earlier:
        signals.append(Signal("already_aided", -cfg.already_aided_penalty, f"已于案件 {earlier} 获司法救助（核实是否重复救助）"))
    if case["victim_fault"] and str(case["victim_fault"]).strip() not in ("无", "否", "没有", "0"):
        signals.append(Signal("fault", -cfg.fault_penalty, f"被害人过错：{case['victim_fault']}（需核实是否属重大过错）"))

    score = round(sum(s.points for s in signals), 1)
    if score < cfg.tier_c:
        return None
    tier = "A" if score >= cfg.tier_a else "B" if score >= cfg.tier_b else "C"

    relative_rows = {rid for _, _, rid in case_relatives}
    used = sorted({rid for s in signals for rid in s.record_ids} | set(victim_records) | relative_rows)
    reasons = "；".join(s.reason_zh for s in sorted(signals, key=lambda s: -s.points))
    def whose(rid: int) -> str:
        person = idx.rec[rid]["person_id"]
        label = "被害人" if person == victim else people.get(person, "家庭成员")
        return f"{label} {idx.best(person, 'name') or ''}".strip()

    evidence = "；".join(
        f"{_SOURCE_ZH[idx.rec[r]['source']]} {idx.rec[r]['source_file']} 第{idx.rec[r]['row_number']}行（{whose(r)}）："
        f"{evidence_by_record[r]}"
        for r in used if r in evidence_by_record)
    source_rows = "；".join(f"{idx.rec[r]['source_file']}#{idx.rec[r]['row_number']}" for r in used)
    unpaid_total = sum((e["amount_unpaid"] or 0) for p in [victim, *family] for _, e in enforcement_by_person.get(p, []))
    cap = 36 * cfg.average_monthly_wage
    gap = unpaid_total or ((ordered or 0) - (received or 0))
    estimate = min(cap, gap) if gap and gap > 0 else cap
    aid = f"上限参考 {_wan(estimate)}（36个月平均工资 {_wan(cap)}" + (f"，未获赔偿 {_wan(gap)}）" if gap and gap > 0 else "）")
    subject_rid = idx.records_of[subject][0]
    phone = idx.best(subject, "phone")
    return {
        "case_no": case_no, "subject_person_id": subject, "victim_person_id": victim, "subject_role": subject_role,
        "score": score, "tier": tier, "subject_name": idx.best(subject, "name") or idx.rec[subject_rid]["name_raw"],
        "id_masked": mask_id(idx.best(subject, "id18")), "phone": mask_phone(phone) if phone else "",
        "address": idx.best(subject, "address") or idx.best(victim, "address") or "",
        "victim_name": idx.best(victim, "name"), "charge": case["charge"], "injury": injury,
        "incident_date": incident, "unit": case["unit"], "reasons": reasons, "evidence": evidence,
        "source_rows": source_rows,
        "referrals": "；".join(_referrals(signals, minors, family, idx, subject, priority, lost_capacity, today)),
        "aid_estimate": aid,
        "fingerprint": hashlib.sha256(reasons.encode("utf-8")).hexdigest()[:16],
        "sources_hit": ",".join(sorted({idx.rec[r]["source"] for r in used})),
        "subject_id18": idx.best(subject, "id18"), "subject_phone": phone,
        "priority_groups": "、".join(priority),
    }


_SOURCE_ZH = {"victims": "被害人", "disability": "残疾人持证", "subsistence": "低保特困", "enforcement": "终本案件",
              "key_groups": "重点人群"}


def _referrals(signals: list[Signal], minors: list[str], family: dict, idx: _Index, subject: str,
               priority: list[str], lost_capacity: bool, today: dt.date) -> list[str]:
    codes = {s.code for s in signals}
    out = []
    if "subsistence" not in codes:
        out.append("民政：家庭未在低保/特困名单，可评估低保或临时救助")
    else:
        out.append("民政：已享受低保/特困，可申请临时救助")
    if "disability" in codes:
        out.append("残联：持证残疾人，可申请残疾人两项补贴及康复救助")
    elif any(s.code == "injury" and "重伤" in s.reason_zh for s in signals):
        out.append("残联：重伤未见残疾证，可协助残疾评定办证")
    school = [p for p in minors if (a := _age(idx.best(p, "birth_date"), today)) is not None and 6 <= a < 18]
    if school:
        out.append(f"教育：在学年龄子女 {len(school)} 人，可落实学费减免与助学金")
    if priority and any("妇女" in p for p in priority):
        out.append("妇联：符合“5+2”重点妇女群体，可协同关爱帮扶")
    age = _age(idx.best(subject, "birth_date"), today)
    if age is not None and 18 <= age < 60 and not lost_capacity:
        out.append("人社：劳动年龄人口，可提供就业援助与技能培训")
    return out
