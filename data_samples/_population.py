"""The synthetic county population: households, names, resident ID numbers, phones, addresses.

Everything is vectorised with numpy/polars: persons are contiguous by household, so a household is
the slice ``hh_start[h] : hh_start[h] + hh_size[h]`` and its head is the first member.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from data_samples import _tables as T

REF_DATE = np.datetime64("2026-11-01", "D")
"""'today' of the synthetic county: every date is on or before it."""

HEAD, SPOUSE, CHILD, PARENT, CHILD_IN_LAW, GRANDCHILD = range(6)
RELATIONS = ("head", "spouse", "child", "parent", "child_in_law", "grandchild")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

H, S, C, P, L, G = HEAD, SPOUSE, CHILD, PARENT, CHILD_IN_LAW, GRANDCHILD
# (members, share of households, head age range)
_TEMPLATES = (
    ((H,), 0.14, 20, 92), ((H, S), 0.17, 22, 88), ((H, C), 0.04, 26, 80), ((H, P), 0.02, 22, 60),
    ((H, S, C), 0.20, 24, 75), ((H, C, C), 0.03, 28, 75), ((H, S, P), 0.03, 24, 60),
    ((H, S, C, C), 0.12, 28, 70), ((H, S, C, P), 0.08, 26, 60), ((H, S, C, C, P), 0.05, 30, 60),
    ((H, S, C, P, P), 0.04, 28, 58), ((H, S, C, C, C), 0.02, 32, 70), ((H, S, C, L, G), 0.03, 50, 80),
    ((H, S, C, C, P, P), 0.02, 30, 58), ((H, S, C, L, G, G), 0.02, 52, 80),
)


def check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    return CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS)) % 11]


def es_keys(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Efraimidis-Spirakis keys: the k largest keys are a weighted sample without replacement."""
    u = rng.random(len(weights))
    with np.errstate(divide="ignore"):
        return np.where(weights > 0, np.log(u) / np.where(weights > 0, weights, 1.0), -np.inf)


def weighted_sample(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """k distinct indices drawn with probability proportional to weights (fewer if too few are positive)."""
    keys = es_keys(rng, np.asarray(weights, dtype=np.float64))
    k = int(min(k, np.count_nonzero(np.isfinite(keys))))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.argpartition(-keys, k - 1)[:k]
    return idx[np.argsort(-keys[idx], kind="stable")].astype(np.int64)


def _zipf(k: int, s: float = 0.9) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** s
    return w / w.sum()


def years_between(start: np.ndarray, end: np.datetime64 | np.ndarray) -> np.ndarray:
    return (np.asarray(end, dtype="datetime64[D]") - start).astype(np.int64) / 365.2425


ONE_PROVINCE_MAX = 10_000_000
"""the most persons one province's region codes hold: sequence numbers allow 480 persons per (region, birth
date, sex), and most residents share the one county; populations up to here keep exactly one province"""
PROVINCE_PERSONS = 5_000_000
"""persons per province when a population needs more than one"""


def provinces_for(n: int) -> int:
    """How many provinces a population of n persons lives in: one, or enough for ~5 million each."""
    return 1 if n <= ONE_PROVINCE_MAX else -(-n // PROVINCE_PERSONS)


@dataclass
class Geography:
    village_prefix: list[str]
    """full address up to the village/community, per village"""
    village_town: np.ndarray
    village_county: np.ndarray
    village_urban: np.ndarray
    village_weight: np.ndarray
    town_names: list[str]
    village_names: list[str]
    region_codes: tuple[str, ...]
    """all 6-digit region codes (ID numbers, birth regions): T.REGION_CODES, then further provinces' copies"""
    county_codes: list[str]
    """residence code per county: T.RESIDENCE's, then the same counties in each further province"""
    county_region: np.ndarray
    """index into region_codes per county"""
    county_province: np.ndarray
    county_unit: np.ndarray
    """index into units of the unit handling the county's cases"""
    units: tuple[tuple[str, str, str, str, float], ...]
    """T.UNITS, then each further province's (same names, its own case-number prefixes)"""
    elsewhere_region: np.ndarray
    """[province, i]: index into region_codes of T.BIRTH_ELSEWHERE's i-th code as seen from that province"""
    province_names: list[str]

    @property
    def provinces(self) -> int:
        return len(self.province_names)


def _in_province(code: str, prefix: str) -> str:
    """A home-province code moved to another province; codes of other provinces stay as they are."""
    return prefix + code[2:] if code.startswith(T.HOME_PREFIX) else code


def build_geography(provinces: int = 1) -> Geography:
    """Towns and villages of the residence counties; fixed, whatever the seed.

    Further provinces repeat the first one's counties, towns and villages (names repeat across provinces, as
    they do in China) under their own region codes, so every person's ID still has a free sequence number.
    """
    if not 1 <= provinces <= len(T.PROVINCES):
        raise ValueError(f"provinces must be between 1 and {len(T.PROVINCES)}, got {provinces}")
    rs = np.random.default_rng(20261101)
    prefix, v_town, v_county, v_urban, v_weight, towns, vnames = [], [], [], [], [], [], []
    for ci, (code, cweight, town_list) in enumerate(T.RESIDENCE):
        prov, city, county = T.REGIONS[code]
        names_in_county: list[tuple[int, str, bool]] = []
        for tname, urban in town_list:
            ti = len(towns)
            towns.append(tname)
            seen: set[str] = set()
            if tname == "均溪镇":
                seen.add("许思坑村")
                names_in_county.append((ti, "许思坑村", False))
            if urban:
                for c in rs.choice(T.COMMUNITIES, size=int(rs.integers(4, 8)), replace=False):
                    seen.add(c + "社区")
                    names_in_county.append((ti, c + "社区", True))
            for _ in range(int(rs.integers(6, 16))):
                a, b = T.VILLAGE_A[int(rs.integers(len(T.VILLAGE_A)))], T.VILLAGE_B[int(rs.integers(len(T.VILLAGE_B)))]
                vn = a + b + "村"
                if vn not in seen:
                    seen.add(vn)
                    names_in_county.append((ti, vn, False))
        sizes = rs.lognormal(0.0, 0.5, size=len(names_in_county))
        sizes = sizes / sizes.sum() * cweight
        for (ti, vn, urban), w in zip(names_in_county, sizes):
            prefix.append(f"{prov}{city}{county}{towns[ti]}{vn}")
            v_town.append(ti)
            v_county.append(ci)
            v_urban.append(urban)
            v_weight.append(w * (3.0 if urban else 1.0))
            vnames.append(vn)
    weight = np.array(v_weight)
    weight = weight / weight.sum()
    home_name = T.PROVINCES[0][1]
    region_codes = list(T.REGION_CODES)
    county_codes = [c for c, _, _ in T.RESIDENCE]
    units = list(T.UNITS)
    n_villages, n_counties = len(prefix), len(county_codes)
    for p in range(1, provinces):
        code_prefix, name, abbr = T.PROVINCES[p]
        region_codes.extend(_in_province(c, code_prefix) for c in T.REGION_CODES if c.startswith(T.HOME_PREFIX))
        county_codes.extend(_in_province(c, code_prefix) for c, _, _ in T.RESIDENCE)
        units.extend((u, abbr + pros, court, abbr + code[1:], w) for u, pros, court, code, w in T.UNITS)
        prefix.extend(name + v.removeprefix(home_name) for v in prefix[:n_villages])
    region_idx = {c: i for i, c in enumerate(region_codes)}
    county_province = np.repeat(np.arange(provinces, dtype=np.int64), n_counties)
    home_unit = np.array([T.COUNTY_UNIT[c] for c, _, _ in T.RESIDENCE], dtype=np.int64)
    return Geography(
        village_prefix=prefix, village_town=np.tile(np.array(v_town), provinces),
        village_county=(np.arange(provinces)[:, None] * n_counties + np.array(v_county)[None, :]).ravel(),
        village_urban=np.tile(np.array(v_urban, dtype=bool), provinces),
        village_weight=np.tile(weight, provinces) / provinces if provinces > 1 else weight,
        town_names=towns, village_names=vnames * provinces, region_codes=tuple(region_codes),
        county_codes=county_codes, county_region=np.array([region_idx[c] for c in county_codes]),
        county_province=county_province, county_unit=np.tile(home_unit, provinces) + county_province * len(T.UNITS),
        units=tuple(units),
        elsewhere_region=np.array([[region_idx[_in_province(c, T.PROVINCES[p][0])] for c in T.BIRTH_ELSEWHERE]
                                   for p in range(provinces)]),
        province_names=[T.PROVINCES[p][1] for p in range(provinces)])


def _given_table() -> tuple[list[str], dict[tuple[int, int], tuple[int, int, int, int]]]:
    """All given names (singles, then first x second combinations) per (sex, era) bucket."""
    table: list[str] = []
    buckets: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    for sex, eras in T.GIVEN_CHARS.items():
        for era, (first, second, single) in eras.items():
            buckets[(sex, era)] = (len(table), len(single), len(first), len(second))
            table.extend(single)
            table.extend(a + b for a in first for b in second)
    return table, buckets


@dataclass
class Population:
    n: int
    household: np.ndarray
    relation: np.ndarray
    sex: np.ndarray
    """1 male, 0 female"""
    birth: np.ndarray
    """datetime64[D]"""
    birth_region: np.ndarray
    """index into T.REGION_CODES (the ID number's region)"""
    phone: np.ndarray
    """int64 mobile number, 0 when none"""
    name: pl.Series
    id18: pl.Series
    hh_start: np.ndarray
    hh_size: np.ndarray
    hh_village: np.ndarray
    hh_address: pl.Series
    geo: Geography

    @property
    def n_households(self) -> int:
        return len(self.hh_start)

    @property
    def age(self) -> np.ndarray:
        return years_between(self.birth, REF_DATE)

    @property
    def hh_county(self) -> np.ndarray:
        return self.geo.village_county[self.hh_village]

    @property
    def hh_urban(self) -> np.ndarray:
        return self.geo.village_urban[self.hh_village]

    def residence_code(self, persons: np.ndarray) -> np.ndarray:
        return np.array(self.geo.county_codes)[self.hh_county[self.household[persons]]]


def days_from_civil(y: np.ndarray, m: np.ndarray | int, d: np.ndarray | int) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (integer arithmetic, fast on large arrays)."""
    y = np.asarray(y, dtype=np.int64) - (np.asarray(m) <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (np.asarray(m, dtype=np.int64) + np.where(np.asarray(m) > 2, -3, 9)) + 2) // 5 + np.asarray(d) - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) of days since 1970-01-01 (datetime64[D] or int)."""
    z = np.asarray(days).astype(np.int64) + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + np.where(mp < 10, 3, -9)
    return yoe + era * 400 + (m <= 2), m, d


def _birth_days(rng: np.random.Generator, years: np.ndarray) -> np.ndarray:
    start = days_from_civil(years, 1, 1)
    span = np.minimum(365, REF_DATE.astype(np.int64) - start)
    return (start + (rng.random(len(years)) * span).astype(np.int64)).view("datetime64[D]")


def _households(n: int, rng: np.random.Generator):
    members = [t[0] for t in _TEMPLATES]
    shares = np.array([t[1] for t in _TEMPLATES])
    t_len = np.array([len(m) for m in members])
    t_off = np.concatenate([[0], np.cumsum(t_len)[:-1]])
    t_roles = np.concatenate([np.array(m) for m in members]).astype(np.int8)
    tmpl = rng.choice(len(_TEMPLATES), size=n // 2 + 10, p=shares / shares.sum())
    sizes = t_len[tmpl]
    n_hh = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    tmpl, sizes = tmpl[:n_hh], sizes[:n_hh].copy()
    sizes[-1] -= int(sizes.sum()) - n
    hh_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    household = np.repeat(np.arange(n_hh, dtype=np.int32), sizes)
    relation = t_roles[t_off[tmpl][household] + (np.arange(n) - hh_start[household])]
    return tmpl, sizes, hh_start, household, relation


def _births(rng, tmpl, household, relation) -> np.ndarray:
    """Heads first, the others' birth years relative to the head's."""
    n, n_hh = len(household), len(tmpl)
    lo = np.array([t[2] for t in _TEMPLATES])[tmpl]
    hi = np.array([t[3] for t in _TEMPLATES])[tmpl]
    head_age = lo + (rng.random(n_hh) ** 1.3 * (hi - lo + 1)).astype(np.int64)
    hy, ha = (2026 - head_age)[household], head_age[household]
    u = rng.random(n)
    year = np.where(relation == SPOUSE, hy + np.rint(rng.normal(1.5, 3.0, n)).astype(np.int64), hy)
    child_year = hy + 20 + (u * (np.minimum(40, ha) - 19)).astype(np.int64)
    year = np.where((relation == CHILD) | (relation == CHILD_IN_LAW), child_year, year)
    year = np.where(relation == PARENT, hy - 20 - (u * 16).astype(np.int64), year)
    year = np.where(relation == GRANDCHILD, hy + 44 + (u * (np.minimum(66, ha) - 43)).astype(np.int64), year)
    return _birth_days(rng, np.minimum(year, 2026))


def _sexes(rng, hh_start, household, relation) -> np.ndarray:
    n = len(household)
    sex = (rng.random(n) < 0.5).astype(np.int8)
    head_male = rng.random(len(hh_start)) < 0.82
    sex[hh_start] = head_male
    sex = np.where(relation == SPOUSE, 1 - head_male[household], sex).astype(np.int8)
    # two parents of the head: father first, then mother
    second = np.zeros(n, dtype=bool)
    second[1:] = (relation[1:] == PARENT) & (relation[:-1] == PARENT) & (household[1:] == household[:-1])
    first = np.zeros(n, dtype=bool)
    first[:-1] = second[1:]
    return np.where(first, 1, np.where(second, 0, sex)).astype(np.int8)


def _addresses(rng, geo: Geography, n_hh: int) -> tuple[np.ndarray, pl.Series]:
    hh_village = rng.choice(len(geo.village_prefix), size=n_hh, p=geo.village_weight)
    frame = pl.DataFrame({
        "p": pl.Series(geo.village_prefix)[hh_village],
        "s": pl.Series(T.STREETS)[rng.integers(0, len(T.STREETS), n_hh)],
        "no": rng.integers(1, 120, n_hh), "g": np.where(rng.random(n_hh) < 0.4, rng.integers(1, 13, n_hh), 0),
        "u": geo.village_urban[hh_village],
    })
    return hh_village, frame.select(pl.concat_str([
        pl.col("p"),
        pl.when(pl.col("u")).then(pl.col("s"))
        .when(pl.col("g") > 0).then(pl.col("g").cast(pl.Utf8) + "组").otherwise(pl.lit("")),
        pl.col("no").cast(pl.Utf8), pl.lit("号"),
    ])).to_series()


def _surnames(rng, sex, hh_start, household, relation) -> np.ndarray:
    """Children and grandchildren take the father's surname; the head's father shares the head's."""
    n, n_hh = len(sex), len(hh_start)
    s_w = np.array([w * T.LOCAL_BOOST.get(s, 1.0) for s, w in T.SURNAMES])
    surname = rng.choice(len(T.SURNAMES), size=n, p=s_w / s_w.sum()).astype(np.int16)
    head_sn = surname[hh_start]
    head_male = sex[hh_start] == 1
    sp = np.flatnonzero(relation == SPOUSE)
    has_spouse = np.zeros(n_hh, dtype=bool)
    has_spouse[household[sp]] = True
    spouse_sn = head_sn.copy()
    spouse_sn[household[sp]] = surname[sp]
    father_sn = np.where(head_male | ~has_spouse, head_sn, spouse_sn)[household]
    surname = np.where((relation == CHILD) | (relation == GRANDCHILD), father_sn, surname)
    return np.where((relation == PARENT) & (sex == 1), head_sn[household], surname).astype(np.int16)


def _given_names(rng, sex, year) -> np.ndarray:
    table, buckets = _given_table()
    era = np.where(year < 1975, 0, np.where(year < 2000, 1, 2))
    given = np.zeros(len(sex), dtype=np.int32)
    for (sx, er), (off, n1, nf, ns) in buckets.items():
        idx = np.flatnonzero((sex == sx) & (era == er))
        m = len(idx)
        single = rng.random(m) < T.SINGLE_SHARE[er]
        g1 = rng.choice(n1, size=m, p=_zipf(n1, 0.6))
        gf = rng.choice(nf, size=m, p=_zipf(nf, 0.8))
        gs = rng.choice(ns, size=m, p=_zipf(ns, 0.8))
        given[idx] = off + np.where(single, g1, n1 + gf * ns + gs)
    return given


def _id_numbers(rng, birth_region, birth, sex, region_codes: tuple[str, ...]) -> pl.Series:
    """Unique 18-digit IDs: sequence numbers counted per (region, birth date, sex), odd for men."""
    n = len(sex)
    key = ((birth_region.astype(np.int64) * 100_000) + birth.astype(np.int64) + 40_000) * 2 + sex
    order = np.argsort(key, kind="stable")
    sk = key[order]
    del key
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(sk[1:], sk[:-1], out=new_group[1:])
    del sk
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    gsize = np.diff(np.concatenate([starts, [n]]))
    if gsize.max() > 480:
        raise ValueError("too many persons for the sequence numbers of one region and birth date")
    goff = np.minimum(rng.integers(1, 60, len(starts)), 499 - gsize)
    seq = np.empty(n, dtype=np.int64)
    seq[order] = (np.arange(n) - starts[group] + goff[group]) * 2 + sex[order]
    del order, group
    y, mon, day = civil_from_days(birth)
    w = ID_WEIGHTS
    region_sum = np.array([sum(int(d) * w[i] for i, d in enumerate(c)) for c in region_codes])
    total = (region_sum[birth_region] + (y // 1000) * w[6] + (y // 100 % 10) * w[7] + (y // 10 % 10) * w[8]
             + (y % 10) * w[9] + (mon // 10) * w[10] + (mon % 10) * w[11] + (day // 10) * w[12] + (day % 10) * w[13]
             + (seq // 100) * w[14] + (seq // 10 % 10) * w[15] + (seq % 10) * w[16])
    # region (6) + yyyymmdd (8) + sequence (3) as one 17-digit number, then the check character
    first17 = (np.array([int(c) for c in region_codes], dtype=np.int64)[birth_region] * 100_000_000
               + y * 10_000 + mon * 100 + day) * 1000 + seq
    return pl.select(pl.concat_str([pl.Series(first17).cast(pl.Utf8),
                                    pl.Series(list(CHECK_CHARS))[total % 11]])).to_series()


def _phones(rng, hh_start, household, age) -> np.ndarray:
    """Heads mostly have a mobile; others their own, the household's, or none."""
    n = len(household)
    second = np.array([3, 5, 8, 9, 7, 6, 4])[np.searchsorted(np.cumsum([0.34, 0.2, 0.3, 0.05, 0.05, 0.03, 0.03]),
                                                            rng.random(n) * 0.9999, side="right")]
    own = 10_000_000_000 + second * 1_000_000_000 + rng.integers(0, 1_000_000_000, n)
    hh_phone = own[hh_start][household]
    r = rng.random(n)
    phone = np.where(age < 16, np.where(r < 0.25, hh_phone, 0), np.where(r < 0.6, own, np.where(r < 0.85, hh_phone, 0)))
    phone[hh_start] = np.where(r[hh_start] < 0.92, own[hh_start], 0)
    return phone


def make_population(n: int, rng: np.random.Generator, provinces: int | None = None) -> Population:
    """n persons in households; `provinces` (default: as many as n needs) spreads them over that many provinces."""
    if n < 10:
        raise ValueError("persons must be at least 10")
    tmpl, sizes, hh_start, household, relation = _households(n, rng)
    birth = _births(rng, tmpl, household, relation)
    sex = _sexes(rng, hh_start, household, relation)
    geo = build_geography(provinces or provinces_for(n))
    hh_village, hh_address = _addresses(rng, geo, len(hh_start))
    surname = _surnames(rng, sex, hh_start, household, relation)
    year = civil_from_days(birth)[0]
    given = _given_names(rng, sex, year)

    # namesakes: same surname, sex and birth year; some also share the birth date
    order = np.argsort((surname.astype(np.int64) * 2 + sex) * 1000 + (year - 1800), kind="stable")
    a, b = order[:-1], order[1:]
    del order
    pick = (surname[a] == surname[b]) & (sex[a] == sex[b]) & (year[a] == year[b]) & (rng.random(n - 1) < 0.004)
    a, b = a[pick], b[pick]
    given[b] = given[a]
    same_day = (rng.random(len(a)) < 0.25) & (relation[b] != CHILD) & (relation[b] != GRANDCHILD)
    birth[b[same_day]] = birth[a[same_day]]
    del year

    table, _ = _given_table()
    surnames = pl.Series([s for s, _ in T.SURNAMES])
    names = pl.select(pl.concat_str([surnames[surname], pl.Series(table)[given]])).to_series()
    del surname, given

    # where people were born; a few minority heads and spouses came from Xinjiang
    hh_county = geo.village_county[hh_village]
    res_code = geo.county_region[hh_county][household]
    p_here = np.select([relation == SPOUSE, relation == PARENT, relation == CHILD_IN_LAW], [0.7, 0.85, 0.75], 0.92)
    else_w = np.cumsum(list(T.BIRTH_ELSEWHERE.values()))
    pick = np.searchsorted(else_w, rng.random(n) * else_w[-1], side="right")
    if geo.provinces == 1:
        elsewhere = geo.elsewhere_region[0][pick]
    else:  # born elsewhere in the province they live in, or in the same few other provinces
        elsewhere = geo.elsewhere_region[geo.county_province[hh_county].astype(np.int8)[household], pick]
    del hh_county, pick
    birth_region = np.where(rng.random(n) < p_here, res_code, elsewhere).astype(np.int16)
    del res_code, p_here, elsewhere
    adults = np.flatnonzero(((relation == HEAD) | (relation == SPOUSE)) & (birth < np.datetime64("2000-01-01")))
    mino = adults[rng.choice(len(adults), size=min(max(1, round(n * 0.0015)), len(adults)), replace=False)]
    msex = np.array(T.MINORITY_SEX)
    pools = [np.flatnonzero(msex == 0), np.flatnonzero(msex == 1)]
    mname = np.where(sex[mino] == 1, pools[1][rng.integers(0, len(pools[1]), len(mino))],
                     pools[0][rng.integers(0, len(pools[0]), len(mino))])
    birth_region[mino] = geo.region_codes.index(T.MINORITY_REGION)
    if len(mino):
        names = names.scatter(mino, pl.Series(T.MINORITY_NAMES)[mname])

    id18 = _id_numbers(rng, birth_region, birth, sex, geo.region_codes)
    phone = _phones(rng, hh_start, household, years_between(birth, REF_DATE))
    return Population(n=n, household=household, relation=relation, sex=sex, birth=birth, birth_region=birth_region,
                      phone=phone.astype(np.int64), name=names, id18=id18, hh_start=hh_start, hh_size=sizes,
                      hh_village=hh_village, hh_address=hh_address, geo=geo)
