"""What happens to the population: disability, poverty, crimes and their aftermath, court cases, key groups.

The result (`World`) holds clean facts per record; `_sources` turns them into dirty agency files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_samples import _tables as T
from data_samples._population import (CHILD, CHILD_IN_LAW, GRANDCHILD, HEAD, PARENT, REF_DATE, SPOUSE, Population,
                                      weighted_sample, years_between)

D = np.timedelta64(1, "D")
LAST_DAY = REF_DATE - D
# relation of a household member to a victim, from (victim's relation to head, member's relation to head)
_KIN = {
    (HEAD, SPOUSE): "spouse", (HEAD, CHILD): "child", (HEAD, PARENT): "parent", (HEAD, GRANDCHILD): "grandchild",
    (SPOUSE, HEAD): "spouse", (SPOUSE, CHILD): "child", (SPOUSE, GRANDCHILD): "grandchild",
    (CHILD, HEAD): "parent", (CHILD, SPOUSE): "parent", (CHILD, CHILD): "sibling", (CHILD, PARENT): "grandparent",
    (CHILD, CHILD_IN_LAW): "spouse", (CHILD, GRANDCHILD): "child",
    (PARENT, HEAD): "child", (PARENT, PARENT): "spouse", (PARENT, CHILD): "grandchild",
    (CHILD_IN_LAW, CHILD): "spouse", (CHILD_IN_LAW, GRANDCHILD): "child",
    (GRANDCHILD, CHILD): "parent", (GRANDCHILD, CHILD_IN_LAW): "parent", (GRANDCHILD, HEAD): "grandparent",
    (GRANDCHILD, SPOUSE): "grandparent", (GRANDCHILD, GRANDCHILD): "sibling",
}
_KIN_ORDER = ("spouse", "child", "parent", "sibling", "grandchild", "grandparent")


def _days(rng: np.random.Generator, start: str | np.ndarray, span: int | np.ndarray, size: int) -> np.ndarray:
    offset = (rng.random(size) * span).astype(np.int64).astype("timedelta64[D]")
    return np.asarray(start, dtype="datetime64[D]") + offset


def _pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category per row of a probability matrix (rows need not be normalised)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


@dataclass
class Victims:
    person: np.ndarray
    charge: np.ndarray
    injury: np.ndarray
    incident: np.ndarray
    unit: np.ndarray
    case_no: list[str]
    """as the victims file shows it: the prosecutor's number, or the criminal judgment's"""
    court_case_no: list[str]
    defendant: np.ndarray
    ordered: np.ndarray
    """judgment compensation in yuan, NaN when there was no civil order"""
    received: np.ndarray
    fault: np.ndarray
    relatives: list[list[int]]
    relative_kind: list[list[str]]

    @property
    def died(self) -> np.ndarray:
        return self.injury == 0


@dataclass
class World:
    victims: Victims
    dis_person: np.ndarray
    dis_cat: np.ndarray
    dis_level: np.ndarray
    dis_issue: np.ndarray
    sub_hh: np.ndarray
    sub_type: np.ndarray
    """0 城市低保, 1 农村低保, 2 特困供养"""
    sub_amount: np.ndarray
    sub_start: np.ndarray
    enf: dict
    kg_person: np.ndarray
    kg_group: np.ndarray
    kg_date: np.ndarray


def _case_numbers(rng, vic_unit, incident, charge, units):
    """Prosecutor (大检刑诉〔2024〕12号) and court (（2024）闽0425刑初45号) numbers, increasing per unit and year."""
    order = np.argsort(incident, kind="stable")
    years = incident.astype("datetime64[Y]").astype(np.int64) + 1970
    lag = rng.random(len(incident)) < 0.35
    gaps = rng.integers(1, 5, size=(len(incident), 2))
    counters: dict[tuple, int] = {}
    pros, court = [""] * len(incident), [""] * len(incident)
    for i in order:
        u = int(vic_unit[i])
        unit = units[u]
        y = int(years[i]) + int(lag[i])
        kp, kc = (u, y, "p"), (u, y, "c")
        counters[kp] = counters.get(kp, int(rng.integers(0, 20))) + int(gaps[i, 0])
        counters[kc] = counters.get(kc, int(rng.integers(0, 20))) + int(gaps[i, 1])
        pros[i] = f"{unit[1]}刑诉〔{y}〕{counters[kp]}号"
        court[i] = f"（{y}）{unit[3]}刑初{counters[kc]}号"
    return pros, court


def _victims(pop: Population, rng: np.random.Generator, is_dis: np.ndarray, is_poor_hh: np.ndarray) -> Victims:
    age, hh = pop.age, pop.household
    vw = np.select([age < 6, age < 12, age < 18, age < 66], [0.0, 0.3, 0.8, 1.0], 0.6)
    vw = vw * (1 + 2.5 * is_poor_hh[hh]) * (1 + 1.5 * is_dis)
    vp = weighted_sample(rng, vw, max(5, round(0.01 * pop.n)))
    k = len(vp)
    incident = _days(rng, "2019-01-01", (np.datetime64("2026-09-30") - np.datetime64("2019-01-01")).astype(int), k)
    incident = np.maximum(incident, pop.birth[vp] + np.timedelta64(4 * 366, "D"))
    age_inc = years_between(pop.birth[vp], incident)
    child = age_inc < 14
    female = pop.sex[vp] == 0
    base = np.array([c[1] for c in T.CHARGES])
    who = [c[3] for c in T.CHARGES]
    columns = {"female": (female & (age_inc >= 12)).astype(float), "child": child.astype(float),
               "any": np.where(child, 0.3, 1.0)}
    elig = np.stack([columns[w] for w in who], axis=1)
    charge = _pick(rng, base[None, :] * elig)
    injury = _pick(rng, np.array([c[2] for c in T.CHARGES])[charge])
    # handling unit: the county of residence, the city for killings
    unit = pop.geo.county_unit[pop.hh_county[hh[vp]]]
    murder = np.array([T.CHARGES[c][0] for c in charge]) == "故意杀人罪"
    city = (rng.random(k) < 0.03) | (murder & (rng.random(k) < 0.7))
    unit = np.where(city, unit - unit % len(T.UNITS) + T.CITY_UNIT, unit)
    pros, court = _case_numbers(rng, unit, incident, charge, pop.geo.units)
    shown = [c if r < 0.25 else p for p, c, r in zip(pros, court, rng.random(k))]
    # defendants: other adults, mostly men; abusers live with the victim
    dw = ((age >= 18) & (age <= 70)) * np.where(pop.sex == 1, 7.0, 1.0)
    defendant = rng.choice(pop.n, size=k, p=dw / dw.sum())
    same = hh[defendant] == hh[vp]
    while np.any(same):
        defendant[same] = rng.choice(pop.n, size=int(same.sum()), p=dw / dw.sum())
        same = hh[defendant] == hh[vp]
    # compensation: some cases have no civil order; of those that do, some are paid in full
    has_order = rng.random(k) < np.array([c[4] for c in T.CHARGES])[charge]
    lo = np.array([20e4, 15e4, 6e4, 1e4, 0.5e4, 0.1e4, 0.3e4])[injury]
    hi = np.array([90e4, 60e4, 35e4, 8e4, 4e4, 0.8e4, 20e4])[injury]
    ordered = np.round(lo * (hi / lo) ** rng.random(k), -2)
    ordered = np.where(has_order, ordered, np.nan)
    status = rng.random(k)
    partly = np.round(ordered * rng.uniform(0.05, 0.7, k), -2)
    received = np.where(status < 0.25, ordered, np.where(status < 0.70, partly, 0.0))
    received = np.where(has_order, received, np.nan)
    fault = rng.random(k) < 0.07
    relatives: list[list[int]] = [[] for _ in range(k)]
    kinds: list[list[str]] = [[] for _ in range(k)]
    two = rng.random(k) < 0.5
    for i in np.flatnonzero(injury == 0):
        p = int(vp[i])
        h = int(hh[p])
        start, size = int(pop.hh_start[h]), int(pop.hh_size[h])
        cands = []
        for m in range(start, start + size):
            kind = _KIN.get((int(pop.relation[p]), int(pop.relation[m])))
            if m != p and kind is not None:
                cands.append((age[m] < 16, _KIN_ORDER.index(kind), m, kind))
        cands.sort()
        for _, _, m, kind in cands[: 1 + int(two[i])]:
            relatives[i].append(m)
            kinds[i].append(kind)
    # abuse happens at home: the abuser is the spouse when there is one
    for i in np.flatnonzero(np.array([T.CHARGES[c][0] for c in charge]) == "虐待罪"):
        p = int(vp[i])
        h = int(hh[p])
        for m in range(int(pop.hh_start[h]), int(pop.hh_start[h] + pop.hh_size[h])):
            if _KIN.get((int(pop.relation[p]), int(pop.relation[m]))) == "spouse":
                defendant[i] = m
    return Victims(vp, charge, injury, incident, unit, shown, court, defendant, ordered, received, fault,
                   relatives, kinds)


def simulate(pop: Population, rng: np.random.Generator) -> World:
    n, age, hh, nh = pop.n, pop.age, pop.household, pop.n_households
    # ---- disability certificates held before anything else happens
    dis_pre = weighted_sample(rng, np.select([age < 18, age < 45, age < 65], [0.3, 0.8, 1.6], 3.2), round(0.036 * n))
    is_dis = np.zeros(n, dtype=bool)
    is_dis[dis_pre] = True
    # ---- poor households (on the rolls already)
    hh_dis = np.bincount(hh[dis_pre], minlength=nh) > 0
    head_age = age[pop.hh_start]
    hw = (1 + 3 * hh_dis + 2 * (head_age > 65)) * np.where(pop.hh_urban, 0.6, 1.2)
    hw = hw * np.where((pop.hh_size == 1) & (head_age > 60), 2.5, 1.0)
    order = weighted_sample(rng, hw, nh)
    cut = int(np.searchsorted(np.cumsum(pop.hh_size[order]), 0.027 * n)) + 1
    poor_pre = np.sort(order[:cut])
    is_poor_hh = np.zeros(nh, dtype=bool)
    is_poor_hh[poor_pre] = True

    v = _victims(pop, rng, is_dis, is_poor_hh)
    k = len(v.person)
    serious = (v.injury == 1) | (v.injury == 2)

    # ---- disability: certificates before the case, and after it (caused by it)
    lo = np.minimum(np.maximum(pop.birth[dis_pre] + np.timedelta64(365, "D"), np.datetime64("2008-01-01")), LAST_DAY)
    pre_issue = lo + (rng.random(len(dis_pre)) * (LAST_DAY - lo).astype(np.int64)).astype("timedelta64[D]")
    victim_of = np.full(n, -1, dtype=np.int64)
    victim_of[v.person] = np.arange(k)
    vi = victim_of[dis_pre]
    was_victim = vi >= 0
    before = v.incident[vi[was_victim]] - rng.integers(200, 3650, was_victim.sum()).astype("timedelta64[D]")
    pre_issue[was_victim] = np.maximum(before, pop.birth[dis_pre[was_victim]] + np.timedelta64(200, "D"))
    pre_cat = rng.choice(7, size=len(dis_pre), p=T.DISABILITY_CAT_P)
    pre_level = rng.choice(4, size=len(dis_pre), p=T.DISABILITY_LEVEL_P)
    p_after = np.where(serious, 0.5, np.where(v.injury == 3, 0.08, 0.0)) * ~is_dis[v.person]
    after = np.flatnonzero(rng.random(k) < p_after)
    post_issue = v.incident[after] + rng.integers(90, 540, len(after)).astype("timedelta64[D]")
    keep = post_issue <= LAST_DAY
    after, post_issue = after[keep], post_issue[keep]
    post_cat = rng.choice(np.array([3, 5, 0, 6, 1]), size=len(after), p=[0.65, 0.1, 0.1, 0.1, 0.05])
    sev = v.injury[after]
    post_level = np.where(sev == 1, rng.integers(0, 2, len(after)), np.where(sev == 2, rng.integers(1, 3, len(after)),
                                                                             rng.integers(2, 4, len(after))))
    dis_person = np.concatenate([dis_pre, v.person[after]])
    dis_cat = np.concatenate([pre_cat, post_cat])
    dis_level = np.concatenate([pre_level, post_level])
    dis_issue = np.concatenate([pre_issue, post_issue])
    is_dis[v.person[after]] = True

    # ---- subsistence: the rolls before, and households pushed into poverty by a case
    since = np.datetime64("2012-01-01")
    pre_start = np.maximum(_days(rng, since, (LAST_DAY - since).astype(int), len(poor_pre)),
                           pop.birth[pop.hh_start[poor_pre]] + np.timedelta64(18 * 366, "D"))
    pre_start = np.minimum(pre_start, LAST_DAY)
    vhh = hh[v.person]
    p_poor = np.where(v.died, 0.3, np.where(serious, 0.25, 0.0)) * ~is_poor_hh[vhh]
    hit = np.flatnonzero(rng.random(k) < p_poor)
    post_start = v.incident[hit] + rng.integers(60, 400, len(hit)).astype("timedelta64[D]")
    hit, post_start = hit[post_start <= LAST_DAY], post_start[post_start <= LAST_DAY]
    post_hh, first = np.unique(vhh[hit], return_index=True)
    post_start = post_start[first]
    sub_hh = np.concatenate([poor_pre, post_hh])
    sub_start = np.concatenate([pre_start, post_start])
    size = pop.hh_size[sub_hh]
    lvl = np.full(n, 9)
    lvl[dis_person] = dis_level
    hh_min_level = np.full(nh, 9)
    np.minimum.at(hh_min_level, hh[dis_person], dis_level)
    alone = (size == 1) & ((age[pop.hh_start[sub_hh]] >= 60) | (hh_min_level[sub_hh] <= 1))
    tekun = alone & (rng.random(len(sub_hh)) < 0.7)
    sub_type = np.where(tekun, 2, np.where(pop.hh_urban[sub_hh], 0, 1))
    sub_amount = np.where(tekun, np.round(rng.uniform(1100, 1500, len(sub_hh)), -1),
                          np.round(size * rng.uniform(330, 760, len(sub_hh))))

    enf = _enforcement(pop, rng, v)
    kg_person, kg_group, kg_date = _key_groups(pop, rng, v, is_dis, lvl, np.isin(np.arange(nh), sub_hh))
    return World(v, dis_person, dis_cat, dis_level, dis_issue, sub_hh, sub_type, sub_amount, sub_start, enf,
                 kg_person, kg_group, kg_date)


def _company(rng: np.random.Generator) -> str:
    a = T.COMPANY_A[int(rng.integers(len(T.COMPANY_A)))]
    return f"大田县{a}{T.COMPANY_B[int(rng.integers(len(T.COMPANY_B)))]}有限公司"


def _enforcement(pop: Population, rng: np.random.Generator, v: Victims) -> dict:
    """Court 终本 cases: victims' unpaid compensation, plus unrelated civil debts."""
    k = len(v.person)
    unpaid = np.nan_to_num(v.ordered) > np.nan_to_num(v.received)
    has_applicant = ~v.died | np.array([len(r) > 0 for r in v.relatives])
    term = v.incident + rng.integers(240, 900, k).astype("timedelta64[D]")
    late = term > LAST_DAY
    term = np.where(late, LAST_DAY - rng.integers(1, 90, k).astype("timedelta64[D]"), term)
    ok = unpaid & has_applicant & (rng.random(k) < 0.4) & (term > v.incident + np.timedelta64(150, "D"))
    rows = np.flatnonzero(ok)
    died = v.died
    cases = {key: [] for key in ("victim", "applicant", "applicant_company", "respondent", "respondent_company",
                                 "ordered", "paid", "termination", "court", "cause", "origin", "case_no")}
    for i in rows:
        cases["victim"].append(int(i))
        cases["applicant"].append(int(v.person[i]) if not died[i] else v.relatives[i][0])
        cases["applicant_company"].append("")
        cases["respondent"].append(int(v.defendant[i]))
        cases["respondent_company"].append("")
        extra = 1.0 + (rng.random() < 0.2) * rng.random() * 0.05
        cases["ordered"].append(round(float(v.ordered[i]) * extra))
        cases["paid"].append(float(v.received[i]))
        cases["termination"].append(term[i])
        cases["court"].append(int(v.unit[i]))
        cases["cause"].append(T.CHARGES[v.charge[i]][0] if rng.random() < 0.6 else "刑事附带民事赔偿")
        cases["origin"].append(v.court_case_no[i] if rng.random() < 0.7 else "")
    # unrelated civil cases between non-victims
    m = max(1, round(0.002 * pop.n))
    age = pop.age
    adults = np.flatnonzero((age >= 20) & (age <= 80))
    for _ in range(m):
        company_app = rng.random() < 0.3
        company_resp = rng.random() < 0.15
        a = int(adults[rng.integers(len(adults))])
        r = int(adults[rng.integers(len(adults))])
        cases["victim"].append(-1)
        cases["applicant"].append(-1 if company_app else a)
        cases["applicant_company"].append(_company(rng) if company_app else "")
        cases["respondent"].append(-1 if company_resp else r)
        cases["respondent_company"].append(_company(rng) if company_resp else "")
        amount = round(float(3000 * (500 ** rng.random())), -2)
        cases["ordered"].append(amount)
        cases["paid"].append(round(amount * float(rng.random()) * 0.5, -2) if rng.random() < 0.5 else 0.0)
        cases["termination"].append(np.datetime64("2016-01-01") + np.timedelta64(int(rng.integers(0, 3900)), "D"))
        # the applicant's own province's courts (a company applicant stands where the drawn adult lives)
        base = len(T.UNITS) * int(pop.geo.county_province[pop.geo.village_county[pop.hh_village[pop.household[a]]]])
        cases["court"].append(base + (0 if rng.random() < 0.9 else int(rng.integers(1, len(T.UNITS)))))
        cases["cause"].append(T.CIVIL_CAUSES[int(rng.integers(len(T.CIVIL_CAUSES)))])
        y = int(str(cases["termination"][-1])[:4])
        cases["origin"].append(f"（{y - 1}）{pop.geo.units[cases['court'][-1]][3]}民初{int(rng.integers(100, 3000))}号"
                               if rng.random() < 0.6 else "")
    # case numbers increase with the termination date per court and year
    order = np.argsort(np.array(cases["termination"], dtype="datetime64[D]"), kind="stable")
    counters: dict[tuple[int, int], int] = {}
    cases["case_no"] = [""] * len(cases["victim"])
    for j in order:
        year = int(str(cases["termination"][j])[:4]) - int(rng.random() < 0.4)
        key = (cases["court"][j], year)
        counters[key] = counters.get(key, int(rng.integers(10, 200))) + int(rng.integers(1, 6))
        cases["case_no"][j] = f"（{year}）{pop.geo.units[key[0]][3]}执{counters[key]}号"
    return cases


def _key_groups(pop: Population, rng: np.random.Generator, v: Victims, is_dis: np.ndarray, level: np.ndarray,
                poor_hh: np.ndarray):
    """Other agencies' rolls: returning-to-poverty monitoring, veterans, children, women's federation referrals."""
    n, age, hh, sex = pop.n, pop.age, pop.household, pop.sex
    poor = poor_hh[hh]
    rural = ~pop.hh_urban[hh]
    orphaned = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(v.died):
        h = hh[v.person[i]]
        orphaned[pop.hh_start[h]: pop.hh_start[h] + pop.hh_size[h]] = True
    female_victim = np.zeros(n, dtype=bool)
    names = np.array([c[0] for c in T.CHARGES])[v.charge]
    female_victim[v.person[np.isin(names, ["虐待罪", "强奸罪", "拐卖妇女罪", "故意伤害罪"]) & (sex[v.person] == 0)]] = True
    kid = age < 18
    weights = {
        "防止返贫监测对象": (1 + 4 * poor + 2 * is_dis) * np.where(rural, 1.0, 0.2),
        "退役军人": ((sex == 1) & (age >= 30) & (age <= 80)).astype(float),
        "重度残疾人": (level <= 1).astype(float),
        "困境儿童": kid * (1 + 3 * (poor | is_dis)),
        "事实无人抚养儿童": kid * (0.2 + 50 * orphaned + 3 * poor),
        "妇联移送线索": ((sex == 0) & (age >= 18)) * (1 + 60 * female_victim),
    }
    total = round(0.02 * n)
    persons, groups, dates = [], [], []
    for g, (name, share, _agencies) in enumerate(T.KEY_GROUPS):
        chosen = weighted_sample(rng, weights[name], max(1, round(total * share)))
        persons.append(chosen)
        groups.append(np.full(len(chosen), g))
        lo = np.maximum(np.datetime64("2018-01-01"), pop.birth[chosen] + np.timedelta64(1, "D"))
        dates.append(lo + (rng.random(len(chosen)) * (LAST_DAY - lo).astype(np.int64)).astype("timedelta64[D]"))
    return np.concatenate(persons), np.concatenate(groups), np.concatenate(dates)
