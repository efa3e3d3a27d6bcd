"""Every dirt pattern of real exports, end to end (files → ingest → normalise → resolve).

For each pattern there is a concrete pair that must link (a clean victim row and its dirty twin in
another export) and a concrete namesake written with the same dirt that must not link to it.
"""

from __future__ import annotations

import pytest

from conftest import config_for, make_id, write_csv
from pipeline import run as stages
from pipeline.store import open_database

FULL = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def _id_ending_in_x(birth: str) -> str:
    return next(i for i in (make_id("350425", birth, s) for s in range(1, 999)) if i.endswith("X"))


def _typo(pid: str) -> str:
    return pid[:15] + str((int(pid[15]) + 3) % 10) + pid[16:]


def _swap(pid: str) -> str:
    i = next(k for k in range(10, 16) if pid[k] != pid[k + 1])
    return pid[:i] + pid[i + 1] + pid[i] + pid[i + 2:]


def _to15(pid: str) -> str:
    return pid[:6] + pid[8:17]


# label: (clean name, clean ID, dirty name, dirty ID → raw text, dirty file column)
ID_PATTERNS = {
    "full_width": lambda p: p.translate(FULL),
    "inner_spaces": lambda p: f"{p[:6]} {p[6:14]} {p[14:]}",
    "apostrophe": lambda p: "'" + p,
    "legacy_15": _to15,
    "one_digit_typo": _typo,
    "adjacent_swap": _swap,
}
NAME_PATTERNS = {
    "annotation": ("陈秀兰", "陈秀兰（户主）"),
    "inner_spaces": ("黄志强", "黄 志 强"),
    "traditional": ("郑丽华", "鄭麗華"),
    "middle_dot": ("阿依古丽·买买提", "阿依古丽•买买提"),
    "homophone": ("张伟", "张玮"),
    "surname_reading": ("曾建国", "增建国"),
    "compatibility_char": ("金秀英", "⾦秀英"),
}


def _birth(pid: str) -> str:
    return f"{pid[6:10]}-{pid[10:12]}-{pid[12:14]}"


@pytest.fixture(scope="module")
def resolved(tmp_path_factory):
    base = tmp_path_factory.mktemp("dirt")
    clean = [["案号", "被害人姓名", "身份证号", "出生日期", "联系电话", "住址"]]
    dirty = [["案号", "被害人姓名", "身份证号", "出生日期", "联系电话", "住址"]]
    disability = [["姓名", "残疾证号", "残疾类别", "残疾等级"]]
    expect: list[tuple[str, int, int, int]] = []  # label, clean row, twin row, namesake row
    seq = 100

    def person(seq_: int, year: int) -> str:
        return make_id("350425", f"{year}0{seq_ % 9 + 1}1{seq_ % 9}", seq_)

    for label, dirt in ID_PATTERNS.items():
        seq += 2
        pid, other = person(seq, 1961), person(seq + 1, 1962)
        name = f"林{'一二三四五六七八九十'[seq % 10]}{'春夏秋冬'[seq % 4]}"
        clean.append([f"C{seq}", name, pid, _birth(pid), f"1390000{seq:04d}", f"大田县均溪镇{seq}号"])
        dirty.append([f"D{seq}", name, dirt(pid), _birth(pid), "", ""])
        dirty.append([f"E{seq}", name, dirt(other), _birth(other), "", ""])
        expect.append((f"id:{label}", len(clean), len(dirty) - 1, len(dirty)))
    # lowercase x on an ID ending in X
    pid, other = _id_ending_in_x("19700505"), _id_ending_in_x("19710606")
    clean.append(["CX", "罗永福", pid, _birth(pid), "13900001111", "大田县石牌镇1号"])
    dirty.append(["DX", "罗永福", pid.lower(), _birth(pid), "", ""])
    dirty.append(["EX", "罗永福", other.lower(), _birth(other), "", ""])
    expect.append(("id:lowercase_x", len(clean), len(dirty) - 1, len(dirty)))
    # Excel scientific notation: the ID is missing evidence; name + birth date + phone still link
    pid, other = person(301, 1955), person(302, 1956)
    clean.append(["CS", "吴秀英", pid, _birth(pid), "13511112222", "大田县上京镇2号"])
    dirty.append(["DS", "吴秀英", f"{int(pid[:17]) / 100:.8E}".replace("E+", "E+")[:10] + "E+17", _birth(pid), "13511112222", ""])
    dirty.append(["ES", "吴秀英", f"{float(other[:17]):.8E}", _birth(other), "13633334444", ""])
    expect.append(("id:scientific_notation", len(clean), len(dirty) - 1, len(dirty)))
    # disability certificate number carries the ID (plus category and level digits)
    pid, other = person(401, 1975), person(402, 1976)
    clean.append(["CC", "杨桂兰", pid, _birth(pid), "", ""])
    disability.append(["杨桂兰", pid + "42", "肢体", "二级"])
    disability.append(["杨桂兰", other + "13", "视力", "三级"])
    expect.append(("id:certificate_number", len(clean), -(len(disability) - 1), -len(disability)))
    # name dirt without any ID: name variant + birth date + phone must link; namesake must not
    for k, (label, (name, dirty_name)) in enumerate(NAME_PATTERNS.items()):
        pid = person(500 + k, 1980)
        phone = f"1378888{k:04d}"
        clean.append([f"CN{k}", name, pid, _birth(pid), phone, f"大田县广平镇{k}号"])
        dirty.append([f"DN{k}", dirty_name, "", _birth(pid), phone, f"大田县广平镇{k}号"])
        dirty.append([f"EN{k}", dirty_name, "", f"19{60 + k}-02-0{k + 1}", f"1595555{k:04d}", f"大田县太华镇{k}号"])
        expect.append((f"name:{label}", len(clean), len(dirty) - 1, len(dirty)))

    inbox = base / "inbox"
    write_csv(inbox / "victims" / "clean.csv", clean)
    write_csv(inbox / "victims" / "dirty.csv", dirty, encoding="gbk" if False else "utf-8")
    write_csv(inbox / "disability" / "certs.csv", disability, encoding="gb18030")
    config = config_for(base, inbox)
    run_id = stages.start_run(config, None)
    for stage in (stages.ingest_stage, stages.normalise_stage, stages.resolve_stage):
        stage(config, run_id)
    con = open_database(config.database_path)
    person_of = {(f, r): p for f, r, p in con.execute(
        """SELECT r.source_file, r.row_number, m.person_id FROM person_records r JOIN person_members m USING (record_id)""").fetchall()}
    con.close()
    return person_of, expect


def _where(row: int) -> tuple[str, int]:
    return ("certs.csv", -row) if row < 0 else ("dirty.csv", row)


def _cases():
    return [*(f"id:{k}" for k in ID_PATTERNS), "id:lowercase_x", "id:scientific_notation", "id:certificate_number",
            *(f"name:{k}" for k in NAME_PATTERNS)]


@pytest.mark.parametrize("label", _cases())
def test_dirty_twin_links_and_namesake_does_not(resolved, label):
    person_of, expect = resolved
    _, clean_row, twin_row, namesake_row = next(e for e in expect if e[0] == label)
    victim = person_of[("clean.csv", clean_row)]
    assert person_of[_where(twin_row)] == victim, f"{label}: the dirty twin was not linked"
    assert person_of[_where(namesake_row)] != victim, f"{label}: a namesake was linked"


def test_a_court_row_naming_two_applicants_links_both_to_the_case(tmp_path):
    father, mother = make_id(birth="19550505", seq=31), make_id(birth="19570707", seq=42)
    victim = make_id(birth="19850101", seq=53)
    write_csv(tmp_path / "inbox/victims/v.csv", [
        ["案号", "被害人姓名", "身份证号", "伤情", "人员类型", "与被害人关系", "被告人"],
        ["K1", "许志明", victim, "死亡", "被害人", "", "周强、吴刚"],
        ["K1", "许国栋", father, "", "近亲属", "父亲", "周强、吴刚"],
        ["K1", "陈玉兰", mother, "", "近亲属", "母亲", "周强、吴刚"]])
    write_csv(tmp_path / "inbox/enforcement/e.csv", [
        ["执行案号", "申请执行人", "被执行人", "未执行金额"],
        ["(2025)闽0425执7号", "许国栋、陈玉兰", "吴刚", "300000"]])
    config = config_for(tmp_path, tmp_path / "inbox")
    run_id = stages.start_run(config, None)
    for stage in (stages.ingest_stage, stages.normalise_stage, stages.resolve_stage):
        stage(config, run_id)
    con = open_database(config.database_path)
    people = dict(con.execute("""SELECT r.name || '|' || r.source, m.person_id FROM person_records r
                                 JOIN person_members m USING (record_id)""").fetchall())
    con.close()
    assert people["许国栋|enforcement"] == people["许国栋|victims"]
    assert people["陈玉兰|enforcement"] == people["陈玉兰|victims"]


def test_a_head_whose_number_is_only_in_the_head_column_is_known_by_it(tmp_path):
    """Many subsistence rolls write the head's ID once, in 户主身份证号, and leave the head's own member row blank.
    That row is the head: it links to his victim record by the number. A son of the same name is not given it."""
    head = make_id(birth="19620818", seq=23)
    write_csv(tmp_path / "inbox/victims/v.csv", [["案号", "被害人姓名", "身份证号"], ["K1", "陆德明", head]])
    write_csv(tmp_path / "inbox/subsistence/s.csv", [
        ["低保证号", "户主姓名", "户主身份证号", "成员姓名", "证件号", "与户主关系", "地址"],
        ["D1", "陆德明", head, "陆德明", "", "户主", "大田县华兴镇太水口村101号"],
        ["D1", "陆德明", head, "陆德明", "", "子女", "大田县华兴镇太水口村101号"],
        ["D1", "陆德明", head, "王淑英", "", "配偶", "大田县华兴镇太水口村101号"]])
    config = config_for(tmp_path, tmp_path / "inbox")
    run_id = stages.start_run(config, None)
    for stage in (stages.ingest_stage, stages.normalise_stage, stages.resolve_stage):
        stage(config, run_id)
    con = open_database(config.database_path)
    rows = {(source, row): (id18, person) for source, row, id18, person in con.execute(
        """SELECT r.source, r.row_number, r.id18, m.person_id FROM person_records r JOIN person_members m USING (record_id)""")
        .fetchall()}
    con.close()
    victim = rows[("victims", 2)][1]
    assert rows[("subsistence", 2)] == (head, victim)  # the head's own row
    assert rows[("subsistence", 3)][0] is None and rows[("subsistence", 3)][1] != victim  # his son
    assert rows[("subsistence", 4)][1] != victim
