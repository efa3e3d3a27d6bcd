"""The Splink baseline (matchers/splink_baseline.py) on a small synthetic frame.

Splink is a benchmark-only extra for the product, but the test extra installs it, so this module runs
in CI; `importorskip` only guards a developer install without it.
"""

from __future__ import annotations

import datetime as dt
import random
import sys

import pytest

pytest.importorskip("splink")

import polars as pl  # noqa: E402

from matchers.splink_baseline import SplinkResult, run_splink  # noqa: E402

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_SURNAMES = {"王": "wang", "李": "li", "张": "zhang", "刘": "liu", "陈": "chen", "杨": "yang", "黄": "huang",
             "赵": "zhao", "吴": "wu", "周": "zhou", "徐": "xu", "孙": "sun"}
_GIVEN = {"伟": "wei", "芳": "fang", "娜": "na", "敏": "min", "静": "jing", "强": "qiang", "磊": "lei", "军": "jun",
          "洋": "yang", "勇": "yong", "艳": "yan", "杰": "jie", "涛": "tao", "明": "ming", "超": "chao", "秀": "xiu",
          "英": "ying", "华": "hua", "玉": "yu", "兰": "lan"}
_REGIONS = ("350425", "350426", "350402")
_TOWNS = ("均溪镇", "上京镇", "桃源镇", "太华镇", "建设镇")
_SOURCES = ("victims", "disability", "subsistence", "enforcement", "key_groups")


def gb11643_id(region: str, born: dt.date, seq: int) -> str:
    """A valid 18-digit ID: GB 11643 check character over region + birth date + sequence."""
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS))
    return first17 + "10X98765432"[total % 11]


def _mistyped(id18: str, rng: random.Random) -> str:
    """One sequence digit changed so that the check character no longer holds."""
    while True:
        pos = rng.randrange(14, 17)
        typo = id18[:pos] + str((int(id18[pos]) + rng.randrange(1, 10)) % 10) + id18[pos + 1:]
        if gb11643_id(typo[:6], dt.date(int(typo[6:10]), int(typo[10:12]), int(typo[12:14])), int(typo[14:17])) != typo:
            return typo


def synthetic_records(people: int = 120, seed: int = 7) -> pl.DataFrame:
    """~300 person records of `people` synthetic people, with ID-less records, mistyped IDs and namesakes."""
    rng = random.Random(seed)
    persons = []
    for p in range(people):
        surname = rng.choice(list(_SURNAMES))
        given = "".join(rng.choice(list(_GIVEN)) for _ in range(rng.choice((1, 2))))
        if p % 12 == 11:  # a namesake of an earlier person: same name, different person
            surname, given = persons[p - 5]["surname"], persons[p - 5]["given"]
        born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 80 * 365))
        region = rng.choice(_REGIONS)
        seq = rng.randrange(0, 1000)
        persons.append({
            "surname": surname, "given": given, "born": born, "region": region,
            "sex": "M" if seq % 2 else "F", "id18": gb11643_id(region, born, seq),
            "phone": f"1{rng.randrange(3, 9)}{rng.randrange(0, 10**9):09d}",
            "address": f"大田县{rng.choice(_TOWNS)}{rng.choice('东西南北')}坑村{rng.randrange(1, 120)}号",
        })
    rows = []
    for p in persons:
        for _ in range(rng.choice((1, 2, 2, 3, 3, 4))):
            kind = rng.random()
            id18 = p["id18"] if kind < 0.85 else None
            candidate = _mistyped(p["id18"], rng) if 0.85 <= kind < 0.9 else None
            rows.append({
                "record_id": len(rows), "source": rng.choice(_SOURCES),
                "name": p["surname"] + p["given"], "surname": p["surname"],
                "name_pinyin": _SURNAMES[p["surname"]] + "".join(_GIVEN[c] for c in p["given"]),
                "id18": id18, "id_candidate": candidate,
                "birth_date": p["born"] if id18 or rng.random() < 0.7 else None,
                "sex": p["sex"], "region": p["region"] if id18 else None,
                "phone": p["phone"] if rng.random() < 0.7 else None,
                "address": ("福建省三明市" if rng.random() < 0.5 else "") + p["address"],
            })
    return pl.DataFrame(rows, schema={
        "record_id": pl.Int64, "source": pl.Utf8, "name": pl.Utf8, "surname": pl.Utf8, "name_pinyin": pl.Utf8,
        "id18": pl.Utf8, "id_candidate": pl.Utf8, "birth_date": pl.Date, "sex": pl.Utf8, "region": pl.Utf8,
        "phone": pl.Utf8, "address": pl.Utf8})


@pytest.fixture(scope="module")
def records() -> pl.DataFrame:
    return synthetic_records()


@pytest.fixture(scope="module")
def two_runs(records) -> tuple[SplinkResult, SplinkResult]:
    return run_splink(records, threshold=0.9, seed=1), run_splink(records, threshold=0.9, seed=1)


def test_the_synthetic_frame_has_the_shape_the_tests_rely_on(records):
    assert 250 <= records.height <= 350
    assert records["id18"].null_count() > 0 and records["id_candidate"].drop_nulls().len() > 0
    namesakes = records.group_by("name").agg(pl.col("id18").drop_nulls().n_unique().alias("ids"))
    assert namesakes.filter(pl.col("ids") > 1).height > 0


def test_every_record_appears_exactly_once_in_the_clusters(records, two_runs):
    clusters = two_runs[0].clusters
    assert clusters.columns == ["record_id", "person_id"]
    assert clusters.schema["person_id"] == pl.Utf8
    assert clusters.height == records.height
    assert sorted(clusters["record_id"].to_list()) == sorted(records["record_id"].to_list())


def test_records_sharing_a_valid_id_end_in_the_same_cluster(records, two_runs):
    joined = records.join(two_runs[0].clusters, on="record_id").filter(pl.col("id18").is_not_null())
    split = joined.group_by("id18").agg(pl.col("person_id").n_unique().alias("clusters")).filter(pl.col("clusters") > 1)
    assert split.height == 0


def test_links_are_ordered_pairs_at_or_above_the_threshold(two_runs):
    links = two_runs[0].links
    assert links.columns == ["record_id_l", "record_id_r", "match_probability"]
    assert links.height > 0
    assert (links["record_id_l"] < links["record_id_r"]).all()
    assert (links["match_probability"] >= 0.9).all()
    assert two_runs[0].stats["links"] == links.height and two_runs[0].seconds > 0


def test_the_result_is_deterministic_across_runs(two_runs):
    first, second = two_runs
    assert first.clusters.equals(second.clusters)
    assert first.links.equals(second.links)
    assert first.stats == second.stats


def test_a_missing_splink_says_how_to_install_it(records, monkeypatch):
    monkeypatch.setitem(sys.modules, "splink", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[bench\]'"):
        run_splink(records)
