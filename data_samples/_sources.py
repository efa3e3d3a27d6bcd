"""The five agency exports as dirty tables, each row tagged (in hidden columns) with the true person."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from data_samples import _dirt
from data_samples import _tables as T
from data_samples._dirt import DATE_CELL, DirtRates
from data_samples._events import World
from data_samples._population import RELATIONS, Population
from schemas.sources import SOURCES, FieldType, SourceSpec, header_key

HIDDEN = "__"
"""prefix of the columns that never reach a file: __pid, __role, __block, __num:<field>, __date:<field>"""
ANNOTATIONS = {"head_name": ("(户主)", "（户主）"), "defendant_name": ("（另案处理）", "(在逃)"),
               "applicant_name": ("(代)", "（代理）"), "respondent_name": ("（失信）", "(限高)")}


@dataclass
class Style:
    """How one agency's system writes its export."""

    xlsx: bool
    lower_x: bool = False
    date_main: int = 0
    amount_main: int = 0
    gender: int = 0
    short_address: float = 0.0
    ascii_parens: float = 0.0
    """share of case numbers written (2024)… rather than （2024）…"""
    variant: int = 0
    """picks between spellings of codes (relations, levels, categories)"""

    @classmethod
    def draw(cls, rng: np.random.Generator, xlsx: bool, lower_x: bool) -> Style:
        date_main = DATE_CELL if xlsx and rng.random() < 0.5 else int(rng.choice(5, p=[0.4, 0.2, 0.15, 0.15, 0.1]))
        return cls(xlsx=xlsx, lower_x=lower_x, date_main=date_main, amount_main=int(rng.integers(0, 3)),
                   gender=int(rng.choice(3, p=[0.75, 0.15, 0.1])), short_address=float(rng.choice([0.0, 0.3, 0.9])),
                   ascii_parens=float(rng.choice([0.0, 0.3, 1.0])), variant=int(rng.integers(0, 8)))

    def case_numbers(self, numbers: list[str | None], rng: np.random.Generator) -> list[str | None]:
        ascii_ = rng.random(len(numbers)) < self.ascii_parens
        return [c.replace("（", "(").replace("）", ")") if c and a else c for c, a in zip(numbers, ascii_.tolist())]


@dataclass
class Draft:
    """Clean values of a source, one entry per row, before dirt."""

    n: int
    person: np.ndarray
    role: list[str]
    block: np.ndarray
    text: dict[str, list] = field(default_factory=dict)
    ids: dict[str, list] = field(default_factory=dict)
    names: dict[str, list] = field(default_factory=dict)
    dates: dict[str, np.ndarray] = field(default_factory=dict)
    amounts: dict[str, np.ndarray] = field(default_factory=dict)
    phones: dict[str, np.ndarray] = field(default_factory=dict)
    sex: np.ndarray | None = None
    relative_rows: np.ndarray | None = None
    """rows of victims' relatives, whose IDs are left blank more often"""
    deceased: np.ndarray | None = None


def _choice(options: tuple[str, ...], variant: int) -> str:
    return options[variant % len(options)]


def _person_columns(pop: Population, persons: np.ndarray, style: Style, rng: np.random.Generator):
    names = pop.name.gather(persons).to_list()
    ids = pop.id18.gather(persons).to_list()
    addr = pop.hh_address.gather(pop.household[persons])
    short = pl.Series(rng.random(len(persons)) < style.short_address)
    provinces = "|".join(pop.geo.province_names)
    addr = pl.select(pl.when(short).then(addr.str.replace(f"^(?:{provinces})三明市", "")).otherwise(addr)).to_series()
    return names, ids, addr.to_list()


def victims_draft(pop: Population, world: World, style: Style, rng: np.random.Generator) -> Draft:
    v = world.victims
    rows: list[tuple[int, int, str]] = []  # (victim index, person, relation kind or "")
    for i in range(len(v.person)):
        rows.append((i, int(v.person[i]), ""))
        rows.extend((i, m, kind) for m, kind in zip(v.relatives[i], v.relative_kind[i]))
    vi = np.array([r[0] for r in rows], dtype=np.int64)
    persons = np.array([r[1] for r in rows], dtype=np.int64)
    kinds = [r[2] for r in rows]
    is_rel = np.array([k != "" for k in kinds])
    n = len(rows)
    names, ids, addr = _person_columns(pop, persons, style, rng)
    case_no = style.case_numbers([v.case_no[i] for i in vi], rng)
    charges = [T.CHARGES[c][0] for c in v.charge[vi]]
    charges = [c[:-1] if r < 0.05 else c for c, r in zip(charges, rng.random(n))]
    injuries = [T.INJURIES[j] for j in v.injury[vi]]
    alt = {"重伤二级": "二级重伤", "重伤一级": "重伤（一级）", "轻伤二级": "轻伤2级", "死亡": "因伤死亡", "轻伤一级": "轻伤一级"}
    injuries = [None if rel or not inj else (alt.get(inj, inj) if r < 0.08 else inj)
                for inj, rel, r in zip(injuries, is_rel, rng.random(n))]
    sex = pop.sex[persons]
    rel_zh = {"spouse": ("妻子", "丈夫"), "child": ("女儿", "儿子"), "parent": ("母亲", "父亲"),
              "sibling": ("姐妹", "兄弟"), "grandchild": ("孙女", "孙子"), "grandparent": ("祖母", "祖父")}
    relation = [None if not k else (("配偶", "子女", "父母")[("spouse", "child", "parent").index(k)]
                                   if k in ("spouse", "child", "parent") and r < 0.3 else rel_zh[k][s])
                for k, s, r in zip(kinds, sex.tolist(), rng.random(n))]
    fault_words = ("无", "有") if style.variant % 2 == 0 else ("否", "是")
    d = Draft(n=n, person=persons, role=["relative" if r else "victim" for r in is_rel], block=vi, sex=sex,
              relative_rows=is_rel, deceased=np.array([not r for r in is_rel]) & v.died[vi])
    d.text = {"case_no": case_no, "charge": charges, "address": addr, "injury": injuries,
              "unit": [pop.geo.units[u][0] for u in v.unit[vi]],
              "person_role": ["近亲属" if r else "被害人" for r in is_rel], "relation": relation,
              "victim_fault": [None if rel else fault_words[int(f)] for rel, f in zip(is_rel, v.fault[vi])]}
    d.names = {"name": names, "defendant_name": pop.name.gather(v.defendant[vi]).to_list()}
    d.ids = {"id_number": ids}
    d.dates = {"birth_date": pop.birth[persons], "incident_date": v.incident[vi]}
    d.amounts = {"compensation_ordered": np.where(is_rel, np.nan, v.ordered[vi]),
                 "compensation_received": np.where(is_rel, np.nan, v.received[vi])}
    d.phones = {"phone": pop.phone[persons]}
    return d


def disability_draft(pop: Population, world: World, style: Style, rng: np.random.Generator) -> Draft:
    persons = world.dis_person
    n = len(persons)
    names, ids, addr = _person_columns(pop, persons, style, rng)
    lower = rng.random(n) < 0.5
    cert = [f"{i}{c + 1}{lv + 1}" for i, c, lv in zip(ids, world.dis_cat.tolist(), world.dis_level.tolist())]
    cert = [c.replace("X", "x") if lw and style.lower_x else c for c, lw in zip(cert, lower)]
    cats = [T.DISABILITY_CATS[c] + ("残疾" if style.variant % 3 == 0 else "") for c in world.dis_cat.tolist()]
    level_forms = (T.LEVEL_ZH, [f"{lv}级" for lv in range(1, 5)], [str(lv) for lv in range(1, 5)])
    lf = np.where(rng.random(n) < 0.85, style.variant % 2, rng.integers(0, 3, n))
    levels = [level_forms[f][lv] for f, lv in zip(lf.tolist(), world.dis_level.tolist())]
    d = Draft(n=n, person=persons, role=["disability_holder"] * n, block=np.arange(n), sex=pop.sex[persons])
    d.text = {"cert_no": cert, "category": cats, "level": levels, "address": addr}
    d.names, d.ids = {"name": names}, {"id_number": ids}
    d.dates = {"issue_date": world.dis_issue}
    d.phones = {"phone": pop.phone[persons]}
    return d


def subsistence_draft(pop: Population, world: World, style: Style, rng: np.random.Generator) -> Draft:
    hh = world.sub_hh
    sizes = pop.hh_size[hh]
    row_hh = np.repeat(np.arange(len(hh)), sizes)
    persons = pop.hh_start[hh][row_hh] + (np.arange(len(row_hh)) - np.repeat(np.cumsum(sizes) - sizes, sizes))
    heads = pop.hh_start[hh][row_hh]
    n = len(persons)
    names, ids, addr = _person_columns(pop, persons, style, rng)
    rel = []
    for r, s in zip(pop.relation[persons].tolist(), pop.sex[persons].tolist()):
        word = _choice(T.RELATION_ZH[RELATIONS[r]], style.variant)
        rel.append(word.split("|")[1 - s] if "|" in word else word)
    county = np.array(pop.geo.county_codes)[pop.geo.village_county[pop.hh_village[hh]]]
    hh_no = [f"{c}{pop.geo.village_town[v]:03d}{i:05d}" for i, (c, v) in enumerate(zip(county, pop.hh_village[hh]))]
    types = ("城市低保", "农村低保", "特困供养")
    d = Draft(n=n, person=persons, role=["subsistence_member"] * n, block=row_hh, sex=pop.sex[persons])
    d.text = {"household_id": [hh_no[i] for i in row_hh], "relation": rel,
              "aid_type": [types[world.sub_type[i]] for i in row_hh],
              "town": [pop.geo.town_names[pop.geo.village_town[pop.hh_village[hh[i]]]] for i in row_hh],
              "village": [pop.geo.village_names[pop.hh_village[hh[i]]] for i in row_hh], "address": addr}
    d.names = {"head_name": pop.name.gather(heads).to_list(), "name": names}
    d.ids = {"head_id_number": pop.id18.gather(heads).to_list(), "id_number": ids}
    d.amounts = {"monthly_amount": world.sub_amount[row_hh]}
    d.dates = {"start_date": world.sub_start[row_hh]}
    d.phones = {"phone": pop.phone[persons]}
    return d


def enforcement_draft(pop: Population, world: World, style: Style, rng: np.random.Generator) -> Draft:
    e = world.enf
    n = len(e["case_no"])
    app = np.array(e["applicant"], dtype=np.int64)
    resp = np.array(e["respondent"], dtype=np.int64)
    app_names = pop.name.gather(np.maximum(app, 0)).to_list()
    resp_names = pop.name.gather(np.maximum(resp, 0)).to_list()
    app_ids = pop.id18.gather(np.maximum(app, 0)).to_list()
    resp_ids = pop.id18.gather(np.maximum(resp, 0)).to_list()
    ordered = np.array(e["ordered"], dtype=np.float64)
    paid = np.array(e["paid"], dtype=np.float64)
    d = Draft(n=n, person=app, role=["applicant"] * n, block=np.arange(n))
    d.names = {"applicant_name": [c or a for c, a in zip(e["applicant_company"], app_names)],
               "respondent_name": [c or r for c, r in zip(e["respondent_company"], resp_names)]}
    d.ids = {"applicant_id_number": [None if a < 0 else i for a, i in zip(app.tolist(), app_ids)],
             "respondent_id_number": [None if r < 0 else i for r, i in zip(resp.tolist(), resp_ids)]}
    d.text = {"enforcement_case_no": style.case_numbers(e["case_no"], rng),
              "court": [pop.geo.units[c][2] for c in e["court"]], "cause": e["cause"],
              "origin_case_no": style.case_numbers([o or None for o in e["origin"]], rng)}
    d.amounts = {"amount_ordered": ordered, "amount_paid": paid, "amount_unpaid": ordered - paid}
    d.dates = {"termination_date": np.array(e["termination"], dtype="datetime64[D]")}
    return d


def key_groups_draft(pop: Population, world: World, style: Style, rng: np.random.Generator) -> Draft:
    persons = world.kg_person
    n = len(persons)
    names, ids, addr = _person_columns(pop, persons, style, rng)
    agency_pick = rng.integers(0, 2, n)
    d = Draft(n=n, person=persons, role=["key_group"] * n, block=np.arange(n), sex=pop.sex[persons])
    d.text = {"group": [T.KEY_GROUPS[g][0] for g in world.kg_group.tolist()],
              "agency": [_choice(T.KEY_GROUPS[g][2], a) for g, a in zip(world.kg_group.tolist(), agency_pick.tolist())],
              "address": addr}
    d.names, d.ids = {"name": names}, {"id_number": ids}
    d.dates = {"list_date": world.kg_date}
    d.phones = {"phone": pop.phone[persons]}
    return d


DRAFTS = {"victims": victims_draft, "disability": disability_draft, "subsistence": subsistence_draft,
          "enforcement": enforcement_draft, "key_groups": key_groups_draft}


def choose_headers(spec: SourceSpec, fields: list[str], rng: np.random.Generator) -> dict[str, str]:
    """A Chinese header per field, varied per file among the synonyms that map back to that field."""
    table: dict[str, str] = {}
    for f in spec.fields:
        table.setdefault(header_key(f.name), f.name)
        for syn in (f.label_zh, *f.synonyms):
            table.setdefault(header_key(syn), f.name)
    headers = {}
    for name in fields:
        f = spec.field(name)
        options = [s for s in dict.fromkeys((f.label_zh, *f.synonyms))
                   if not s.isascii() and table[header_key(s)] == name]
        headers[name] = f.label_zh if rng.random() < 0.4 else options[int(rng.integers(len(options)))]
    return headers


def render(source: str, draft: Draft, style: Style, rng: np.random.Generator, rates: DirtRates) -> pl.DataFrame:
    """Dirty text columns in the source's field order, plus hidden columns; duplicates added, rows shuffled."""
    spec = SOURCES[source]
    n = draft.n
    cols: dict[str, object] = {}
    dirt: list[list[str]] = [[] for _ in range(n)]
    bad = np.zeros(n, dtype=bool)

    def tag(rows, label: str) -> None:
        for i, t in (rows.items() if isinstance(rows, dict) else ((i, "") for i in rows)):
            dirt[i].append(f"{label}:{t}" if t else label)

    for f in spec.fields:
        name = f.name
        if name in draft.ids:
            blank = rates.id_blank
            if name == "id_number" and draft.relative_rows is not None:
                blank = np.where(draft.relative_rows, rates.id_blank_relative, rates.id_blank)
            cells, numeric, tags = _dirt.dirty_ids(draft.ids[name], rng, rates, blank_p=blank, lower_x=style.lower_x)
            cols[name] = cells
            cols[f"{HIDDEN}num:{name}"] = pl.Series(numeric, dtype=pl.Float64)
            tag(tags, name)
        elif name in draft.names:
            cells, tags = _dirt.dirty_names(draft.names[name], rng, rates,
                                            annotations=ANNOTATIONS.get(name, T.NAME_ANNOTATIONS),
                                            deceased=draft.deceased if name == "name" else None)
            tag(tags, name)
            if name == "name":
                blanked = _dirt.at_least_one(rng, n, rates.name_blank)
                for i in blanked:
                    cells[i] = None
                tag(blanked, "name:blank")
                bad[blanked] = True
            cols[name] = cells
        elif name in draft.dates:
            main = style.date_main if style.xlsx or style.date_main != DATE_CELL else 0
            text, cell, unreadable = _dirt.format_dates(draft.dates[name], rng, rates, main=main)
            cols[name] = text
            cols[f"{HIDDEN}date:{name}"] = cell
            tag(unreadable, f"{name}:unreadable")
            bad[unreadable] = True
        elif name in draft.amounts:
            cols[name], unreadable = _dirt.format_amounts(draft.amounts[name], rng, rates, main=style.amount_main)
            tag(unreadable, f"{name}:unreadable")
            bad[unreadable] = True
        elif name in draft.phones:
            cols[name] = _dirt.format_phones(draft.phones[name], rng, rates)
        elif name == "gender" and draft.sex is not None:
            cols[name] = _dirt.gender_cells(draft.sex, rng, style.gender)
        elif name in draft.text:
            cols[name] = draft.text[name]
    frame = pl.DataFrame({k: (v if isinstance(v, pl.Series) else pl.Series(v, dtype=pl.Utf8)) for k, v in cols.items()})
    frame = frame.with_columns(pl.Series(f"{HIDDEN}pid", draft.person, dtype=pl.Int64),
                               pl.Series(f"{HIDDEN}role", draft.role, dtype=pl.Utf8),
                               pl.Series(f"{HIDDEN}dirt", [";".join(d) for d in dirt], dtype=pl.Utf8),
                               pl.Series(f"{HIDDEN}bad", bad),
                               pl.Series(f"{HIDDEN}block", draft.block, dtype=pl.Int64),
                               pl.Series(f"{HIDDEN}sub", np.arange(n) * 2, dtype=pl.Int64))
    # exact duplicates right after their original; the same person again under another spelling, elsewhere
    dup = np.flatnonzero(rng.random(n) < rates.duplicate_row)
    copies = frame[dup].with_columns(pl.col(f"{HIDDEN}sub") + 1, _add_tag("duplicate"))
    resp = np.flatnonzero(rng.random(n) < rates.respelled_duplicate)
    again = frame[resp]
    name_col = "name" if "name" in frame.columns else "applicant_name"
    if len(resp):
        respelled = []
        for text in again[name_col].to_list():
            alt = text
            if text and "公司" not in text:
                alt = _dirt.homophone(text, rng)
                if alt == text:
                    alt = _dirt.traditional(text) if rng.random() < 0.5 else _dirt.spaced(text, rng)
            respelled.append(alt)
        id_col = "id_number" if "id_number" in frame.columns else "applicant_id_number"
        drop_id = pl.Series(rng.random(len(resp)) < 0.7)
        again = again.with_columns(
            pl.Series(name_col, respelled, dtype=pl.Utf8),
            pl.Series(f"{HIDDEN}block", -1 - np.arange(len(resp)), dtype=pl.Int64), _add_tag("respelled"),
            pl.when(drop_id).then(None).otherwise(pl.col(id_col)).alias(id_col),
            pl.when(drop_id).then(None).otherwise(pl.col(f"{HIDDEN}num:{id_col}")).alias(f"{HIDDEN}num:{id_col}"),
        )
    frame = pl.concat([frame, copies, again])
    blocks = frame[f"{HIDDEN}block"].to_numpy()
    uniq, inverse = np.unique(blocks, return_inverse=True)
    rank = rng.permutation(len(uniq))[inverse]
    order = np.lexsort((frame[f"{HIDDEN}sub"].to_numpy(), rank))
    return frame[order]


def _add_tag(label: str) -> pl.Expr:
    col = pl.col(f"{HIDDEN}dirt")
    return pl.when(col == "").then(pl.lit(label)).otherwise(col + ";" + label).alias(f"{HIDDEN}dirt")


def visible_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if not c.startswith(HIDDEN)]


def field_types(source: str) -> dict[str, FieldType]:
    return {f.name: f.type for f in SOURCES[source].fields}
