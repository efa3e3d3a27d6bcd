"""The synthetic county generator: determinism, valid IDs, truth that points at the right rows, realistic overlap."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from data_samples._dirt import DirtRates
from data_samples._population import check_char
from data_samples._tables import HOMOPHONES
from data_samples.generator import generate
from schemas.sources import SOURCES, header_key

SEED = 20261123
PERSONS = 4000


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("county")
    return out, generate(PERSONS, SEED, out)


def _read(path: Path) -> list[list[object]]:
    """All rows of a generated file, header first, cells as the file holds them."""
    if path.suffix == ".xlsx":
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True)
        try:
            return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
        finally:
            wb.close()
    data = path.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    return list(csv.reader(io.StringIO(text, newline="")))


def _truth(out: Path, name: str) -> list[dict[str, str]]:
    with (out / "truth" / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _source_files(out: Path) -> dict[str, Path]:
    files = {}
    for source in SOURCES:
        found = sorted((out / source).iterdir())
        assert len(found) == 1, source
        files[source] = found[0]
    return files


def _field_of(spec, header: str) -> str | None:
    key = header_key(header)
    for f in spec.fields:
        if key in {header_key(s) for s in (f.name, f.label_zh, *f.synonyms)}:
            return f.name
    return None


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate(1500, 7, tmp_path / "a")
    b = generate(1500, 7, tmp_path / "b")
    c = generate(1500, 8, tmp_path / "c")
    assert a == b
    for rel in a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    differing = [rel for rel in a
                 if rel in c and (tmp_path / "a" / rel).read_bytes() != (tmp_path / "c" / rel).read_bytes()]
    assert len(differing) == len(a)


def test_layout_encodings_and_counts(county):
    out, counts = county
    files = _source_files(out)
    assert {p.suffix for p in files.values()} == {".xlsx", ".csv"}
    assert files["victims"].suffix == ".xlsx" and files["enforcement"].suffix == ".xlsx"
    gbk = files["disability"].read_bytes()
    with pytest.raises(UnicodeDecodeError):
        gbk.decode("utf-8")
    gbk.decode("gbk")
    assert files["subsistence"].read_bytes().startswith(b"\xef\xbb\xbf")
    plain = files["key_groups"].read_bytes()
    assert not plain.startswith(b"\xef\xbb\xbf") and plain.decode("utf-8")
    for source, path in files.items():
        assert counts[path.relative_to(out).as_posix()] == len(_read(path)) - 1
    assert counts["truth/persons.csv"] == PERSONS


def test_headers_are_chinese_synonyms_that_map_back(county):
    out, _ = county
    for source, path in _source_files(out).items():
        spec = SOURCES[source]
        header = [str(h) for h in _read(path)[0]]
        mapped = [_field_of(spec, h) for h in header]
        assert all(not h.isascii() for h in header), header
        assert len([m for m in mapped if m]) == len({m for m in mapped if m}), header
        required = {f.name for f in spec.fields if f.required}
        assert required <= set(mapped), (source, header)


def test_truth_ids_are_valid_unique_and_agree_with_person(county):
    out, _ = county
    persons = _truth(out, "persons.csv")
    assert len(persons) == PERSONS
    ids = [p["id18"] for p in persons]
    assert len(set(ids)) == len(ids)
    for p in persons:
        pid = p["id18"]
        assert re.fullmatch(r"\d{17}[\dX]", pid) and check_char(pid[:17]) == pid[17], p["person_id"]
        assert pid[6:14] == p["birth_date"].replace("-", ""), p["person_id"]
        assert int(pid[16]) % 2 == (1 if p["sex"] == "M" else 0), p["person_id"]


def test_many_people_share_a_name_some_also_a_birth_year(county):
    out, _ = county
    persons = _truth(out, "persons.csv")
    names = Counter(p["name"] for p in persons)
    shared = sum(n for n in names.values() if n > 1)
    assert shared > PERSONS * 0.15, shared
    assert max(names.values()) >= 4
    name_year = Counter((p["name"], p["birth_date"][:4]) for p in persons)
    assert any(n > 1 for n in name_year.values())
    assert any("·" in p["name"] for p in persons)


@cache
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def _plain(name: str) -> str:
    text = re.sub(r"[(（][^)）]*[)）]", "", name)
    text = re.sub(r"[\s\u3000]", "", text)
    text = re.sub(r"[•.．・]", "·", text)
    return _t2s().convert(text)


def _same_person_name(dirty: str, true: str) -> bool:
    from pypinyin import lazy_pinyin

    plain = _plain(dirty)
    if plain == true or plain == true.replace("·", "") or plain.replace("·", "") == true.replace("·", ""):
        return True
    if len(plain) == len(true) and all(a == b or a == "?" for a, b in zip(plain, true)):
        return True  # a character GBK could not hold
    return len(plain) == len(true) and lazy_pinyin(plain) == lazy_pinyin(true)


def test_truth_rows_point_at_the_right_people(county):
    out, _ = county
    persons = {p["person_id"]: p for p in _truth(out, "persons.csv")}
    records = _truth(out, "records.csv")
    name_field = {"victims": "name", "disability": "name", "subsistence": "name", "enforcement": "applicant_name",
                  "key_groups": "name"}
    checked = 0
    for source, path in _source_files(out).items():
        rows = _read(path)
        mapped = [_field_of(SOURCES[source], str(h)) for h in rows[0]]
        col = mapped.index(name_field[source])
        mine = [r for r in records if r["source"] == source]
        assert {r["file"] for r in mine} == {path.relative_to(out).as_posix()}
        assert sorted(int(r["row_number"]) for r in mine) == list(range(2, len(rows) + 1))
        for r in mine:
            cell = rows[int(r["row_number"]) - 1][col]
            if not r["person_id"]:
                assert source == "enforcement" and "公司" in str(cell)
                continue
            if cell in (None, ""):
                continue  # a blank name: quarantine material
            true = persons[r["person_id"]]["name"]
            assert _same_person_name(str(cell), true), (source, r["row_number"])
            checked += 1
    assert checked > PERSONS * 0.08


def test_victims_have_relatives_and_cross_source_hits(county):
    out, _ = county
    victims = _truth(out, "victims.csv")
    records = _truth(out, "records.csv")
    assert abs(len(victims) - PERSONS * 0.01) <= 5
    died = [v for v in victims if v["died"] == "true"]
    assert died and any(v["relative_person_ids"] for v in died)
    roles = Counter(r["role"] for r in records)
    assert {"victim", "relative", "disability_holder", "subsistence_member", "applicant", "key_group"} <= set(roles)
    victim_ids = {v["person_id"] for v in victims}
    for source in ("disability", "subsistence", "enforcement", "key_groups"):
        hits = {r["person_id"] for r in records if r["source"] == source} & victim_ids
        assert hits, source
    companies = [r for r in records if r["source"] == "enforcement" and not r["person_id"]]
    assert companies


def test_dirt_shows_up(county):
    out, _ = county
    files = _source_files(out)
    cells = []
    for path in files.values():
        cells += [str(c) for row in _read(path)[1:] for c in row if c is not None]
    text = "\n".join(cells)
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", text) and re.search(r"\d{4}/\d{1,2}/\d{1,2}", text)
    assert re.search(r"^\d{15}$", text, re.M)  # legacy 15-digit IDs
    assert re.search(r"^'\d{17}", text, re.M) or re.search(r"^\d{6} \d{8}", text, re.M)
    assert re.search(r"^\d{17}x$", text, re.M)  # lowercase x
    assert re.search(r"^\+86", text, re.M) or re.search(r"^1\d{2}-\d{4}-\d{4}$", text, re.M)
    assert re.search(r"[(（](户主|代|本人|待核|代领|已故)[)）]", text)
    assert "近亲属" in text


def test_dirt_tags_in_truth_describe_the_cells(county):
    out, _ = county
    records = _truth(out, "records.csv")
    seen: Counter[str] = Counter()
    for source, path in _source_files(out).items():
        rows = _read(path)
        mapped = [_field_of(SOURCES[source], str(h)) for h in rows[0]]
        for r in (r for r in records if r["source"] == source):
            cells = rows[int(r["row_number"]) - 1]
            tags = [t for t in r["dirt"].split(";") if t]
            seen.update(t.split(":", 1)[-1] for t in tags)
            for t in tags:
                field, _, kind = t.partition(":")
                cell = cells[mapped.index(field)] if field in mapped else None
                if kind == "blank":
                    assert cell in (None, ""), (source, r["row_number"], t)
                elif kind == "legacy15":
                    assert re.fullmatch(r"\d{15}", str(cell)), (source, r["row_number"], t)
                elif kind == "unreadable":
                    assert r["quarantine_expected"] == "true"
            if r["quarantine_expected"] == "true":
                assert any(t.endswith((":unreadable", "name:blank")) for t in tags)
    for source in SOURCES:
        assert any(r["quarantine_expected"] == "true" for r in records if r["source"] == source), source
    assert {"blank", "mistyped", "legacy15", "spaces", "homophone", "duplicate", "unreadable"} <= set(seen), seen


def test_excel_mangled_ids_and_csv_fallback_for_big_files(tmp_path):
    counts = generate(2500, 3, tmp_path, xlsx_max_rows=5, rates=DirtRates(id_scientific=0.3))
    assert "victims/victims.csv" in counts and "enforcement/enforcement.csv" in counts
    text = (tmp_path / "victims/victims.csv").read_text(encoding="utf-8")
    assert re.search(r"\d\.\d{5}E\+1[47]", text)
    generate(2500, 3, tmp_path / "x", rates=DirtRates(id_scientific=0.3))
    rows = _read(tmp_path / "x/victims/victims.xlsx")
    assert any(isinstance(c, float) and c > 1e16 for row in rows[1:] for c in row)


def test_homophone_table_has_same_pinyin():
    from pypinyin import lazy_pinyin

    for char, options in HOMOPHONES.items():
        for alt in options:
            assert lazy_pinyin(char) == lazy_pinyin(alt), (char, alt)


def test_more_provinces_keep_region_consistent(tmp_path):
    """Past one province's sequence numbers the county repeats under other province codes, consistently."""
    import numpy as np

    from data_samples import _tables as T
    from data_samples._events import simulate
    from data_samples._population import make_population, provinces_for

    assert provinces_for(300_000) == provinces_for(10_000_000) == 1 and provinces_for(50_000_000) == 10
    pop = make_population(6000, np.random.default_rng(5), provinces=3)
    prefixes = [p for p, _, _ in T.PROVINCES[:3]]
    residence = pop.residence_code(np.arange(pop.n))
    assert {c[:2] for c in residence} == set(prefixes)
    for h in range(0, pop.n_households, 7):  # the address names the province of the county code
        code = pop.geo.county_codes[pop.hh_county[h]]
        assert pop.hh_address[h].startswith(T.PROVINCES[prefixes.index(code[:2])][1]), (code, pop.hh_address[h])
    ids = pop.id18.to_list()
    born = np.array(pop.geo.region_codes)[pop.birth_region]
    assert len(set(ids)) == len(ids) and all(i[:6] == b for i, b in zip(ids, born))
    assert all(check_char(i[:17]) == i[17] for i in ids)
    native = born == residence
    assert native.mean() > 0.8 and {c[:2] for c in born[native]} == set(prefixes)
    assert all(b[:2] in (r[:2], "36", "43", "51", "52", "41", "65") for b, r in zip(born, residence))
    world = simulate(pop, np.random.default_rng(6))
    v = world.victims
    abbr = {p: a for p, _, a in T.PROVINCES}
    for i in range(len(v.person)):  # cases are handled, and numbered, in the victim's own province
        home = residence[v.person[i]][:2]
        assert v.court_case_no[i].startswith(f"（{v.court_case_no[i][1:5]}）{abbr[home]}"), v.court_case_no[i]
    counts = generate(3000, 2, tmp_path, provinces=2)
    persons = _truth(tmp_path, "persons.csv")
    assert len(persons) == counts["truth/persons.csv"] == 3000
    assert {p["region"][:2] for p in persons} == {"35", "33"}
    assert all(p["id18"][:6] == p["birth_region"] for p in persons)
