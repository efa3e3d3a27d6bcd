"""An independent dirty county for measuring resolution: families, namesakes, twins, and export dirt.

Deliberately not the project generator (data_samples): resolution must hold on dirt it was not
tuned on. Each record carries `tag` = the true person number. Records go through the project's own
name and ID parsers (tests.test_linking_support.rec), as normalise would do.

Dirt modelled (rates per record, varying by source): ID blank, one digit mistyped, two digits
swapped, 15-digit legacy, Excel scientific notation, lowercase x / full-width / apostrophe, a family
member's ID; names in traditional characters, homophone slips, one wrong character, swapped given
name, annotations and inner spaces; birth dates missing, mistyped, day/month swapped, year-month only,
1 January for the old; sex missing or wrong; phones changed, mistyped, shared by the household;
addresses with or without province prefix, village only, moved; rows duplicated within a source.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from test_linking_support import make_id, rec

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许邓冯韩曹曾彭萧蔡潘田董袁于余叶蒋杜苏魏程吕丁沈任"
            "姚卢傅钟姜崔谭廖范汪陆金石戴贾韦夏邱方侯邹熊孟秦白江阎薛尹段雷黎史龙陶贺顾毛郝龚邵万钱严赖覃洪武莫孔")
MALE = "伟强磊军勇杰涛明超刚平辉鹏华飞斌波宇浩凯健俊帆帅旭宁龙林欢阳建国文志海峰德福贵荣生成永祥春金水清"
FEMALE = "芳娜敏静丽艳娟霞秀英华玉兰红梅燕玲丹萍雪琴云凤莉洁琳婷慧美淑珍桂香月春兰惠素秋爱琼群凤彩"
# homophones an input method offers for the same pinyin (a slip picks the neighbour)
HOMOPHONES = {"伟": "玮", "玮": "伟", "芳": "方", "娜": "纳", "敏": "民", "静": "晶", "丽": "莉", "莉": "丽", "强": "墙",
              "军": "君", "杰": "洁", "明": "鸣", "华": "桦", "红": "宏", "梅": "玫", "燕": "艳", "玲": "铃", "平": "萍",
              "萍": "平", "英": "瑛", "秀": "绣", "兰": "岚", "建": "健", "国": "帼", "志": "智", "海": "亥", "峰": "锋",
              "春": "椿", "金": "今", "林": "琳", "琳": "林", "张": "章", "王": "汪", "李": "理", "陈": "晨", "刘": "留"}
TRADITIONAL = {"陈": "陳", "刘": "劉", "张": "張", "黄": "黃", "赵": "趙", "吴": "吳", "华": "華", "国": "國", "伟": "偉",
               "丽": "麗", "红": "紅", "兰": "蘭", "凤": "鳳", "军": "軍", "强": "強", "杰": "傑", "贵": "貴", "荣": "榮"}
TOWNS = ("均溪镇", "上京镇", "桃源镇", "太华镇", "建设镇", "奇韬镇", "华兴镇", "吴山镇", "石牌镇", "广平镇", "济阳乡",
         "武陵乡", "谢洋乡", "文江镇", "屏山乡", "前坪乡", "湖美乡", "梅山镇")
VILLAGE_WORDS = "玉田许思坑三阳大洋铭溪建忠东坂小华朱坂新村东风红星前进和平光明团结胜利岭头坑口溪边"
REGIONS = ("350425", "350425", "350425", "350426", "350402")
SOURCES = ("victims", "disability", "subsistence", "enforcement", "key_groups")


class _Person:
    __slots__ = ("pid", "surname", "given", "sex", "born", "id18", "phones", "village", "house", "household",
                 "relation", "vulnerable")


def _zipf_choice(rng: random.Random, items: str, s: float = 1.0) -> str:
    weights = [1.0 / (i + 1) ** s for i in range(len(items))]
    return rng.choices(items, weights=weights)[0]


def _given(rng: random.Random, sex: str, generation: str | None = None) -> str:
    pool = MALE if sex == "M" else FEMALE
    if generation:
        return generation + _zipf_choice(rng, pool, 0.6)
    if rng.random() < 0.3:
        return _zipf_choice(rng, pool, 0.8)
    return _zipf_choice(rng, pool, 0.6) + _zipf_choice(rng, pool, 0.6)


def _population(n_people: int, rng: random.Random) -> list[_Person]:
    people: list[_Person] = []
    seqs: dict[str, int] = {}
    villages = [(t, "".join(rng.sample(VILLAGE_WORDS, 2)) + "村") for t in TOWNS for _ in range(12)]

    def person(surname: str, given: str, sex: str, born: dt.date, hh: int, relation: str, village, house,
               phone: str | None) -> _Person:
        p = _Person()
        p.pid, p.surname, p.given, p.sex, p.born = len(people), surname, given, sex, born
        region = rng.choice(REGIONS)
        key = region + born.strftime("%Y%m%d")
        seq = seqs.get(key, rng.randrange(0, 40) * 2) + rng.choice((1, 3, 5))
        seq += (seq % 2 == 1) != (sex == "M")  # odd = male
        seqs[key] = seq
        p.id18 = make_id(region, born.strftime("%Y%m%d"), seq % 1000)
        own = f"1{rng.choice('35789')}{rng.randrange(10**8, 10**9)}"
        p.phones = [own, f"1{rng.choice('35789')}{rng.randrange(10**8, 10**9)}"] if rng.random() < 0.3 else [own]
        if phone and rng.random() < 0.5:
            p.phones[0] = phone  # the household's phone
        p.village, p.house, p.household, p.relation = village, house, hh, relation
        p.vulnerable = False
        people.append(p)
        return p

    def birth(year_from: int, year_to: int) -> dt.date:
        born = dt.date(year_from, 1, 1) + dt.timedelta(days=rng.randrange(0, (year_to - year_from) * 365))
        return dt.date(born.year, 1, 1) if born.year < 1955 and rng.random() < 0.15 else born

    hh = 0
    while len(people) < n_people:
        hh += 1
        village, house = rng.choice(villages), f"{rng.randrange(1, 15)}组{rng.randrange(1, 99)}号"
        surname = _zipf_choice(rng, SURNAMES, 0.9)
        head_sex = "M" if rng.random() < 0.8 else "F"
        head_born = birth(1935, 2000)
        head = person(surname, _given(rng, head_sex), head_sex, head_born, hh, "户主", village, house, None)
        phone = head.phones[0]
        vulnerable = rng.random() < 0.12
        members = [head]
        if rng.random() < 0.7:
            sex = "F" if head_sex == "M" else "M"
            sb = head_born + dt.timedelta(days=rng.randrange(-2000, 2000))
            members.append(person(_zipf_choice(rng, SURNAMES, 0.9), _given(rng, sex), sex, sb, hh, "配偶",
                                  village, house, phone))
        if head_born.year < 1995 and rng.random() < 0.75:
            generation = _zipf_choice(rng, MALE + FEMALE, 0.7) if rng.random() < 0.4 else None
            start = max(head_born.year + 20, 1955)
            for _ in range(rng.choice((1, 1, 2, 2, 3))):
                sex = rng.choice("MF")
                cb = birth(start, min(start + 15, 2022))
                members.append(person(surname, _given(rng, sex, generation), sex, cb, hh,
                                      "子" if sex == "M" else "女", village, house, phone))
                if rng.random() < 0.02:  # twins: same birth date, sibling names
                    members.append(person(surname, _given(rng, sex, generation), sex, cb, hh,
                                          "子" if sex == "M" else "女", village, house, phone))
        if head_born.year > 1965 and rng.random() < 0.25:
            for sex in rng.sample("MF", rng.choice((1, 2))):
                pb = birth(max(1925, head_born.year - 35), head_born.year - 18)
                members.append(person(surname if sex == "M" else _zipf_choice(rng, SURNAMES), _given(rng, sex), sex,
                                      pb, hh, "父亲" if sex == "M" else "母亲", village, house, phone))
        for m in members:
            m.vulnerable = vulnerable
    return people[:n_people]


def _dirty_id(p: _Person, rng: random.Random, present: float, family: list[_Person]) -> str | None:
    if rng.random() > present:
        return None
    i = p.id18
    r = rng.random()
    if r < 0.025:
        pos = rng.randrange(0, 18)
        i = i[:pos] + rng.choice([d for d in "0123456789" if d != i[pos]]) + i[pos + 1:]
    elif r < 0.035:
        pos = rng.randrange(0, 17)
        if i[pos] != i[pos + 1]:
            i = i[:pos] + i[pos + 1] + i[pos] + i[pos + 2:]
    elif r < 0.06 and p.born.year < 1990:
        i = i[:6] + i[8:17]  # legacy 15-digit
    elif r < 0.075:
        i = f"{int(i[:17]) * 10 / 1e17:.8f}E+17"  # Excel scientific notation
    elif r < 0.08 and len(family) > 1:
        i = rng.choice([f for f in family if f is not p]).id18  # a family member's ID in the wrong row
    r = rng.random()
    if r < 0.03:
        i = "'" + i
    elif r < 0.05:
        i = i.lower()
    elif r < 0.06:
        i = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in i)
    return i


def _dirty_name(p: _Person, rng: random.Random) -> str:
    name = p.surname + p.given
    r = rng.random()
    if r < 0.02:
        name = "".join(TRADITIONAL.get(c, c) for c in name)
    elif r < 0.05:
        slips = [k for k, c in enumerate(name) if c in HOMOPHONES]
        if slips:
            k = rng.choice(slips)
            name = name[:k] + HOMOPHONES[name[k]] + name[k + 1:]
    elif r < 0.06 and len(name) >= 2:
        k = rng.randrange(1, len(name))
        name = name[:k] + rng.choice(MALE + FEMALE) + name[k + 1:]
    elif r < 0.065 and len(p.given) == 2:
        name = p.surname + p.given[::-1]
    r = rng.random()
    if r < 0.02:
        name = name + rng.choice(("(户主)", "（已故）", "(本人)"))
    elif r < 0.04:
        name = " ".join(name)
    return name


def _dirty_birth(p: _Person, rng: random.Random, present: float) -> dt.date | None:
    if rng.random() > present:
        return None
    b, r = p.born, rng.random()
    try:
        if r < 0.02:
            s = list(b.strftime("%Y%m%d"))
            k = rng.choice((3, 5, 7))
            s[k] = rng.choice([d for d in "0123456789" if d != s[k]])
            return dt.datetime.strptime("".join(s), "%Y%m%d").date()
        if r < 0.03 and b.day <= 12:
            return dt.date(b.year, b.day, b.month)
        if r < 0.05:
            return dt.date(b.year, b.month, 1)
    except ValueError:
        return b
    return b


def _address(p: _Person, rng: random.Random, present: float) -> str | None:
    if rng.random() > present:
        return None
    town, village = p.village
    if rng.random() < 0.08:  # moved, or an old address
        town, village = rng.choice(TOWNS), "".join(rng.sample(VILLAGE_WORDS, 2)) + "村"
    r = rng.random()
    if r < 0.2:
        return f"福建省三明市大田县{town}{village}{p.house}"
    if r < 0.3:
        return f"{town}{village}"
    return f"大田县{town}{village}{p.house}"


_PROFILE = {  # source: (id present, birth present, phone present, address present)
    "victims": (0.85, 0.9, 0.8, 0.8),
    "disability": (0.95, 0.5, 0.5, 0.8),
    "subsistence": (0.9, 0.3, 0.4, 0.6),
    "enforcement": (0.7, 0.0, 0.0, 0.0),
    "key_groups": (0.8, 0.6, 0.6, 0.5),
}


def _record(p: _Person, source: str, rng: random.Random, family: list[_Person], **extra: Any) -> dict[str, Any]:
    id_p, birth_p, phone_p, addr_p = _PROFILE[source]
    phone = None
    if rng.random() < phone_p:
        phone = rng.choice(p.phones)
        if rng.random() < 0.02:
            k = rng.randrange(3, 11)
            phone = phone[:k] + rng.choice([d for d in "0123456789" if d != phone[k]]) + phone[k + 1:]
    sex = p.sex if rng.random() < 0.9 else None
    if sex and rng.random() < 0.01:
        sex = "F" if sex == "M" else "M"
    return rec(_dirty_name(p, rng), _dirty_id(p, rng, id_p, family), source=source,
               birth=_dirty_birth(p, rng, birth_p), sex=sex, phone=phone, address=_address(p, rng, addr_p),
               tag=str(p.pid), **extra)


def dirty_county(n_people: int, seed: int = 1) -> list[dict[str, Any]]:
    """Records of a county of n_people: about one record per four people, many people in several sources."""
    rng = random.Random(seed)
    people = _population(n_people, rng)
    households: dict[int, list[_Person]] = {}
    for p in people:
        households.setdefault(p.household, []).append(p)
    rows: list[dict[str, Any]] = []
    case = 0
    for p in people:
        fam = households[p.household]
        rate = 0.22 if p.vulnerable else 0.015
        if rng.random() < rate * 0.6:
            case += 1
            case_no = f"大检刑诉〔2024〕{case}号"
            defendant = _zipf_choice(rng, SURNAMES, 0.9) + _given(rng, "M")
            rows.append(_record(p, "victims", rng, fam, case_no=case_no, counterpart_name=defendant))
            relatives = [f for f in fam if f is not p]
            for f in rng.sample(relatives, min(len(relatives), rng.choice((0, 0, 1, 2)))):
                rows.append(_record(f, "victims", rng, fam, role="relative", relation=f.relation, case_no=case_no,
                                    counterpart_name=defendant))
            if rng.random() < 0.35:  # the court names the same respondent, sometimes with a co-defendant
                respondent = defendant if rng.random() < 0.8 else defendant + "、" + _zipf_choice(rng, SURNAMES) + _given(rng, "M")
                rows.append(_record(p, "enforcement", rng, fam, counterpart_name=respondent))
        for source in ("disability", "key_groups", "enforcement"):
            if rng.random() < rate:
                extra = {"counterpart_name": _zipf_choice(rng, SURNAMES) + _given(rng, "M")} if source == "enforcement" else {}
                rows.append(_record(p, source, rng, fam, **extra))
    for members in households.values():
        if members[0].vulnerable and rng.random() < 0.5:
            for m in members:
                rows.append(_record(m, "subsistence", rng, members, household_key=f"hh_{m.household}",
                                    relation=m.relation))
    for k in range(len(rows)):  # the same row twice
        if rng.random() < 0.02:
            rows.append(dict(rows[k]))
    return rows
