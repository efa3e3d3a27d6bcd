"""Helpers for the linking tests: valid IDs, record rows as normalise builds them, a background population.

Resolution estimates its weights from the data, so the concrete pairs of a test are embedded in a
background of a few thousand ordinary people (seeded), as they would be in a county's export.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import polars as pl

from matchers.idnumber import parse_id
from matchers.names import parse_name

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何",
            "林", "罗", "高", "郑", "梁", "谢", "宋", "唐", "许", "邓", "冯", "韩", "曹", "曾", "彭", "萧", "蔡")
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国文志红梅海燕鹏辉斌飞玲丹萍雪琴云峰宇浩凤荣春"
REGIONS = ("350425", "350426", "350427", "350402", "350403")
VILLAGES = ("均溪镇玉田村", "均溪镇许思坑村", "上京镇三阳村", "石牌镇大洋村", "广平镇铭溪村", "建设镇建忠村",
            "桃源镇东坂村", "太华镇小华村", "奇韬镇奇韬村", "文江镇朱坂村")


def make_id(region: str = "350425", birth: str = "19800101", seq: int = 123) -> str:
    """A checksum-valid 18-character ID (odd seq = male)."""
    first17 = f"{region}{birth}{seq:03d}"
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS))
    return first17 + "10X98765432"[total % 11]


def mistype(id18: str, pos: int, digit: str | None = None) -> str:
    """id18 with the character at pos replaced (by the next digit unless given)."""
    new = digit if digit is not None else str((int(id18[pos]) + 1) % 10) if id18[pos].isdigit() else "0"
    return id18[:pos] + new + id18[pos + 1:]


def swap(id18: str, pos: int) -> str:
    """id18 with characters pos and pos+1 swapped."""
    return id18[:pos] + id18[pos + 1] + id18[pos] + id18[pos + 2:]


def rec(name: str | None, id_raw: str | None = None, *, source: str = "victims", role: str | None = None,
        birth: dt.date | str | None = None, sex: str | None = None, phone: str | None = None,
        address: str | None = None, household_key: str | None = None, relation: str | None = None,
        case_no: str | None = None, counterpart_name: str | None = None, tag: str | None = None) -> dict[str, Any]:
    """One person_records row as normalise would build it (birth date and sex from a valid ID win)."""
    pn = parse_name(name)
    pid = parse_id(id_raw)
    if isinstance(birth, str):
        birth = dt.date.fromisoformat(birth)
    roles = {"victims": "victim", "disability": "disability_holder", "subsistence": "subsistence_member",
             "enforcement": "applicant", "key_groups": "key_group"}
    return {
        "source": source, "role": role or roles[source], "name_raw": name, "name": pn.name,
        "surname": pn.surname, "name_pinyin": pn.pinyin, "id_raw": id_raw, "id18": pid.id18,
        "id_candidate": pid.candidate, "id_status": str(pid.status),
        "birth_date": pid.birth_date if pid.id18 else birth, "sex": pid.sex if pid.id18 else sex,
        "region": pid.region, "phone": phone, "address": address, "household_key": household_key,
        "relation": relation, "case_no": case_no, "counterpart_name": counterpart_name, "tag": tag,
    }


_SCHEMA = {"record_id": pl.Int64, "record_key": pl.String, "source": pl.String, "role": pl.String,
           "name_raw": pl.String, "name": pl.String, "surname": pl.String, "name_pinyin": pl.String,
           "id_raw": pl.String, "id18": pl.String, "id_candidate": pl.String, "id_status": pl.String,
           "birth_date": pl.Date, "sex": pl.String, "region": pl.String, "phone": pl.String, "address": pl.String,
           "household_key": pl.String, "relation": pl.String, "case_no": pl.String, "counterpart_name": pl.String,
           "tag": pl.String}


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The records frame: record_id dense from 0, record_key from source and position."""
    out = []
    for i, r in enumerate(rows):
        out.append({"record_id": i, "record_key": f"{r['source']}|test|{i:07d}|{r['role']}", **r})
    return pl.DataFrame(out, schema=_SCHEMA)


def background(n_people: int = 3000, seed: int = 7) -> list[dict[str, Any]]:
    """Ordinary people in 1–3 sources each, mostly clean: the weights are learned from them."""
    rng = random.Random(seed)
    rows = []
    sources = ("victims", "disability", "subsistence", "enforcement", "key_groups")
    for p in range(n_people):
        surname = rng.choice(SURNAMES[:10]) if rng.random() < 0.6 else rng.choice(SURNAMES)
        given = "".join(rng.choice(GIVEN) for _ in range(1 if rng.random() < 0.35 else 2))
        born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 27000))
        region = rng.choice(REGIONS)
        seq = rng.randrange(0, 1000)
        id18 = make_id(region, born.strftime("%Y%m%d"), seq)
        sex = "M" if seq % 2 else "F"
        phone = f"1{rng.choice('35789')}{rng.randrange(10**8, 10**9)}"
        address = f"大田县{rng.choice(VILLAGES)}{rng.randrange(1, 12)}组{rng.randrange(1, 80)}号"
        defendant = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(2))
        for source in rng.sample(sources, rng.choice((1, 1, 2, 2, 3))):
            rows.append(rec(
                surname + given, id18 if rng.random() < 0.75 else None, source=source,
                birth=born if rng.random() < 0.9 else None, sex=sex if rng.random() < 0.9 else None,
                phone=phone if rng.random() < 0.6 else None, address=address if rng.random() < 0.7 else None,
                counterpart_name=defendant if source in ("victims", "enforcement") else None, tag=f"bg{p}",
            ))
    return rows


def linked(resolution: Any, records: pl.DataFrame, tag_a: str, tag_b: str) -> bool:
    """True if the records tagged tag_a and tag_b ended in one person."""
    people = records.select("record_id", "tag").join(resolution.clusters, on="record_id")
    a = people.filter(pl.col("tag") == tag_a)["person_id"].to_list()
    b = people.filter(pl.col("tag") == tag_b)["person_id"].to_list()
    assert a and b, f"no record tagged {tag_a} / {tag_b}"
    return a[0] == b[0]


def link_row(resolution: Any, records: pl.DataFrame, tag_a: str, tag_b: str) -> dict[str, Any] | None:
    """The links row between the records tagged tag_a and tag_b, or None."""
    ids = dict(zip(records["tag"].to_list(), records["record_id"].to_list()))
    lo, hi = sorted((ids[tag_a], ids[tag_b]))
    rows = resolution.links.filter((pl.col("record_id_l") == lo) & (pl.col("record_id_r") == hi)).to_dicts()
    return rows[0] if rows else None
