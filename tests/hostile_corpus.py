"""A corpus of hostile and broken input files, built at test time, and a runner that pushes each through the
real ingest (DuckDB, config, readers) and counts crashes and good rows lost.

    /work/venv/bin/python -m tests.hostile_corpus      # prints one line per input and the total

Every input must end as a clear file-level error naming the file, or as loaded and quarantined rows;
never an exception out of ingest, and never a good row (one with every required value, readable)
missing from the raw table. Names in the corpus are generated markers, not real people.
"""

from __future__ import annotations

import csv
import io
import random
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Case", "CaseResult", "CASES", "run_case", "run_corpus", "summary_lines", "main", "make_id"]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
HEADER = ["姓名", "身份证号码", "残疾类别", "残疾等级"]


def make_id(seq: int, region: str = "350425", birth: str = "19800101") -> str:
    """A synthetic, checksum-valid 18-digit ID number."""
    first17 = f"{region}{birth}{seq % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS))
    return first17 + "10X98765432"[total % 11]


_SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英霞平刚桂华"


def good_names(case: str, n: int) -> list[str]:
    """n distinct marker names for a case (three characters, so they are easy to find)."""
    rng = random.Random(case)
    names: list[str] = []
    while len(names) < n:
        name = rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(_GIVEN)
        if name not in names:
            names.append(name)
    return names


def good_rows(case: str, n: int) -> list[list[str]]:
    return [[name, make_id(i + 1), "肢体", "二级"] for i, name in enumerate(good_names(case, n))]


@dataclass
class Case:
    """One hostile input: a builder writing files into a source folder, and what must come of it."""

    name: str
    build: Callable[[Path], list[str]]
    """writes the input into the folder; returns the names of the good rows in it"""
    source: str = "disability"
    rejected: bool = False
    """at least one file (or sheet) must be reported with a clear error"""
    quarantined: int | None = None
    """how many rows must be quarantined, when known"""


@dataclass
class CaseResult:
    name: str
    files: int = 0
    loaded: int = 0
    quarantined: int = 0
    blank: int = 0
    good_in: int = 0
    good_lost: int = 0
    errors: list[str] = field(default_factory=list)
    crash: str | None = None
    failures: list[str] = field(default_factory=list)
    """expectations not met (other than a crash or lost rows)"""


# ---------------------------------------------------------------------------------------------- builders

def _csv_text(rows: list[list[object]], line_end: str = "\r\n") -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=line_end).writerows([["" if v is None else v for v in r] for r in rows])
    return buf.getvalue()


def _xlsx(path: Path, sheets: dict[str, list[list[object]]], merge: dict[str, list[str]] | None = None) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
        for cells in (merge or {}).get(title, []):
            ws.merge_cells(cells)
    wb.save(path)


def _random_bytes(seed: str, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def b_random_csv(d: Path) -> list[str]:
    (d / "random.csv").write_bytes(_random_bytes("csv", 5000))
    return []


def b_random_xlsx(d: Path) -> list[str]:
    (d / "random.xlsx").write_bytes(_random_bytes("xlsx", 5000))
    return []


def b_fake_zip_xlsx(d: Path) -> list[str]:
    (d / "fake_zip.xlsx").write_bytes(b"PK\x03\x04" + _random_bytes("zip", 3000))
    return []


def b_garbage_xls(d: Path) -> list[str]:
    (d / "garbage.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + _random_bytes("xls", 3000))
    return []


def b_png_as_csv(d: Path) -> list[str]:
    (d / "picture.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _random_bytes("png", 2000))
    return []


def b_truncated_xlsx(d: Path) -> list[str]:
    full = d / "full.tmp"
    _xlsx(full, {"名单": [HEADER, *good_rows("truncated", 40)]})
    data = full.read_bytes()
    full.unlink()
    (d / "truncated.xlsx").write_bytes(data[: len(data) * 6 // 10])
    return []  # a cut-off archive cannot be read at all: the file is reported, nothing in it is "good"


def _text_file(name: str, encoding: str, rows: list[list[object]], line_end: str = "\r\n") -> Callable[[Path], None]:
    def write(d: Path) -> None:
        (d / name).write_bytes(_csv_text(rows, line_end).encode(encoding))
    return write


def b_utf16le_no_bom(d: Path) -> list[str]:
    rows = good_rows("utf16le", 5)
    _text_file("utf16le.csv", "utf-16-le", [HEADER, *rows])(d)
    return [r[0] for r in rows]


def b_utf16be_no_bom(d: Path) -> list[str]:
    rows = good_rows("utf16be", 5)
    _text_file("utf16be.csv", "utf-16-be", [HEADER, *rows])(d)
    return [r[0] for r in rows]


def b_big5(d: Path) -> list[str]:
    names = ["陳國強", "黃麗華", "劉誌遠", "張曉東"]
    rows = [[n, make_id(i + 1), "肢體", "二級"] for i, n in enumerate(names)]
    _text_file("big5.csv", "cp950", [["姓名", "身份證號碼", "殘疾類別", "殘疾等級"], *rows])(d)
    return names


def b_latin1_mislabeled(d: Path) -> list[str]:
    """A Latin-1 file (a foreign system's export) where UTF-8 or GBK was expected: ASCII rows are fine."""
    good = ["Zhang Wei", "Li Na", "Wang Fang"]
    rows = [["xm", "sfzh", "cjlb"], *[[n, make_id(i + 1), "zhiti"] for i, n in enumerate(good)],
            ["José Müller", make_id(9), "zhiti"]]
    _text_file("latin1.csv", "latin-1", rows)(d)
    return good


def b_gbk_one_damaged_byte(d: Path) -> list[str]:
    rows = good_rows("gbkdamaged", 6)
    data = _csv_text([HEADER + ["住址"], *[r + ["福建省大田县均溪镇"] for r in rows]]).encode("gbk")
    # cut one two-byte character in half in the last row's address: that cell is damaged, nothing else
    cut = data.rindex("镇".encode("gbk"))
    (d / "gbk_damaged.csv").write_bytes(data[:cut] + data[cut + 1:])
    return [r[0] for r in rows]


def b_header_only(d: Path) -> list[str]:
    _text_file("header_only.csv", "utf-8", [HEADER])(d)
    return []


def b_long_cells_csv(d: Path) -> list[str]:
    rows = good_rows("longcsv", 4)
    long = "长" * 100_000
    bad = [[long, make_id(50), "肢体", "二级"], [good_names("longcsv-b", 1)[0], make_id(51), long, "二级"]]
    kept = [rows[0] + [long]]  # a 100,000-char cell in an unrecognised column does not cost the row
    _text_file("long_cells.csv", "utf-8", [HEADER + ["备注"], *kept, *bad, *rows[1:]])(d)
    return [r[0] for r in rows]


def b_long_cells_xlsx(d: Path) -> list[str]:
    rows = good_rows("longxlsx", 3)
    _xlsx(d / "long_cells.xlsx", {"名单": [HEADER, rows[0], ["长" * 100_000, make_id(60), "肢体", "一级"], *rows[1:]]})
    return [r[0] for r in rows]


def b_nul_bytes(d: Path) -> list[str]:
    rows = good_rows("nul", 5)
    text = _csv_text([HEADER, *rows])
    # NULs inside cells (a common artefact of fixed-width exports) and at a line end
    text = text.replace(rows[1][0], rows[1][0][:1] + "\x00" + rows[1][0][1:]).replace("二级\r\n", "二级\x00\r\n", 1)
    (d / "nul.csv").write_bytes(text.encode("utf-8") + b"\x00\x00")
    return [r[0] for r in rows]


def b_duplicated_headers(d: Path) -> list[str]:
    rows = good_rows("dup", 4)
    header = ["姓名", "身份证号码", "姓名", "备注", "备注", "残疾类别"]
    body = [[r[0], r[1], "别名", "甲", "乙", r[2]] for r in rows]
    _text_file("dup_headers.csv", "utf-8", [header, *body])(d)
    return [r[0] for r in rows]


def b_merged_title(d: Path) -> list[str]:
    rows = good_rows("merged", 5)
    _xlsx(d / "merged_title.xlsx",
          {"名单": [["大田县残疾人持证名单"], ["（2026年10月，共5人）"], [], HEADER, *rows]},
          merge={"名单": ["A1:D1", "A2:D2"]})
    return [r[0] for r in rows]


def b_csv_named_xlsx(d: Path) -> list[str]:
    rows = good_rows("renamed", 4)
    _text_file("really_csv.xlsx", "gbk", [HEADER, *rows])(d)
    return [r[0] for r in rows]


def b_empty_folder(d: Path) -> list[str]:
    (d / "nothing_here").mkdir()
    return []


def b_empty_csv(d: Path) -> list[str]:
    (d / "empty.csv").write_bytes(b"")
    return []


def b_empty_xlsx(d: Path) -> list[str]:
    (d / "empty.xlsx").write_bytes(b"")
    return []


def b_blank_rows_only(d: Path) -> list[str]:
    _text_file("blank_rows.csv", "utf-8", [HEADER, ["", "", "", ""], [" ", "", "\t", ""]])(d)
    return []


def b_sheets_one_garbage(d: Path) -> list[str]:
    rows = good_rows("sheets", 5)
    rng = random.Random("sheets")
    garbage = [["".join(rng.choice("#@!?%&*xyz") for _ in range(12)) for _ in range(4)] for _ in range(10)]
    _xlsx(d / "sheets.xlsx", {"名单": [HEADER, *rows[:3]], "乱码": garbage, "空表": [], "续表": [HEADER, *rows[3:]]})
    return [r[0] for r in rows]


def b_sheet_damaged_xml(d: Path) -> list[str]:
    rows = good_rows("damagedxml", 4)
    tmp = d / "sheets.tmp"
    _xlsx(tmp, {"名单": [HEADER, *rows], "坏表": [HEADER, ["某人", make_id(70), "肢体", "二级"]]})
    with zipfile.ZipFile(tmp) as src, zipfile.ZipFile(d / "damaged_sheet.xlsx", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet2.xml":
                data = data[: len(data) // 2] + b"<<garbage\x01\x02"
            dst.writestr(item, data)
    tmp.unlink()
    return [r[0] for r in rows]


def b_ragged_rows(d: Path) -> list[str]:
    rows = good_rows("ragged", 5)
    body = [rows[0] + ["多余1", "多余2"],            # more cells than headers: kept as extra columns
            rows[1][:2],                              # fewer cells: the missing optional values are empty
            rows[2],
            [rows[3][0]],                             # only the name
            rows[4] + ["", "", "", "多余"],
            []]                                        # an empty line
    text = _csv_text([HEADER, *body]) + ",,,\r\n" + f",{make_id(80)}\r\n"  # a blank row; a row without a name
    (d / "ragged.csv").write_text(text, encoding="utf-8")
    return [r[0] for r in rows]


def b_line_endings(d: Path) -> list[str]:
    names: list[str] = []
    for label, end in (("crlf", "\r\n"), ("cr", "\r"), ("lf", "\n")):
        rows = good_rows(f"eol-{label}", 4)
        _text_file(f"eol_{label}.csv", "utf-8", [HEADER, *rows], line_end=end)(d)
        names += [r[0] for r in rows]
    rows = good_rows("eol-mixed", 4)
    text = "\r\n".join(",".join(r) for r in [HEADER, rows[0]]) + "\r" + "\n".join(",".join(r) for r in rows[1:]) + "\n"
    (d / "eol_mixed.csv").write_text(text, encoding="utf-8")
    return names + [r[0] for r in rows]


def b_formulas(d: Path) -> list[str]:
    rows = good_rows("formulas", 4)
    sheet = [HEADER + ["备注"],
             rows[0] + ["=1+2"],                                  # formula in an unrecognised column
             [rows[1][0], rows[1][1], "=A2&\"x\"", "二级", "@SUM(1)"],
             ["=HYPERLINK(\"http://x\",\"点我\")", make_id(90), "肢体", "二级"],  # formula where the name goes
             rows[2], rows[3]]
    _xlsx(d / "formulas.xlsx", {"名单": sheet})
    text_rows = good_rows("formulas-csv", 2)
    _text_file("formulas.csv", "utf-8", [HEADER, ["=cmd|' /C calc'!A0", make_id(91), "+肢体", "-1"], *text_rows])(d)
    return [r[0] for r in rows] + [r[0] for r in text_rows] + ["=cmd|' /C calc'!A0"]


def b_unclosed_quote(d: Path) -> list[str]:
    rows = good_rows("quote", 6)
    lines = [",".join(HEADER), ",".join(rows[0]), ",".join(rows[1]),
             f'{rows[2][0]},{rows[2][1]},"肢体,二级',         # a quote opened and never closed
             *[",".join(r) for r in rows[3:]]]
    (d / "unclosed_quote.csv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return [r[0] for r in rows]


def b_header_repeated(d: Path) -> list[str]:
    """Two months' exports pasted into one file: the header appears again halfway down."""
    rows = good_rows("repeated", 8)
    _text_file("pasted.csv", "utf-8", [HEADER, *rows[:4], HEADER, *rows[4:]])(d)
    return [r[0] for r in rows]


def b_victims_required_mix(d: Path) -> list[str]:
    """A victims file where some rows lack a case number: those are quarantined, the rest load."""
    good = good_names("victims", 4)
    rows = [["案号", "被害人姓名", "身份证号", "案发日期", "判决赔偿金额"],
            ["大检刑诉〔2025〕1号", good[0], make_id(1), "2025-02-30", "见判决书"],
            ["", good_names("victims-bad", 1)[0], make_id(2), "2025-01-01", "1000"],
            ["大检刑诉〔2025〕3号", good[1], "3.50425198E+17", "二〇二五年一月", "1.2万"],
            ["大检刑诉〔2025〕4号", good[2], make_id(4), "", ""],
            ["NULL", "无", "", "", ""],
            ["大检刑诉〔2025〕5号", good[3], make_id(5), "2025/1/1", "-5"]]
    _text_file("victims.csv", "gb18030", rows)(d)
    return good


CASES: list[Case] = [
    Case("random bytes .csv", b_random_csv, rejected=True),
    Case("random bytes .xlsx", b_random_xlsx, rejected=True),
    Case("zip header + random .xlsx", b_fake_zip_xlsx, rejected=True),
    Case("OLE header + random .xls", b_garbage_xls, rejected=True),
    Case("PNG named .csv", b_png_as_csv, rejected=True),
    Case("truncated .xlsx", b_truncated_xlsx, rejected=True),
    Case("UTF-16LE CSV without BOM", b_utf16le_no_bom, quarantined=0),
    Case("UTF-16BE CSV without BOM", b_utf16be_no_bom, quarantined=0),
    Case("Big5 CSV (traditional headers)", b_big5, quarantined=0),
    Case("Latin-1 CSV where UTF-8/GBK expected", b_latin1_mislabeled, quarantined=1),
    Case("GBK CSV with one damaged byte", b_gbk_one_damaged_byte, quarantined=0),
    Case("header-only CSV", b_header_only, quarantined=0),
    Case("100,000-char cells (CSV)", b_long_cells_csv, quarantined=2),
    Case("100,000-char cell (XLSX)", b_long_cells_xlsx, quarantined=1),
    Case("embedded NUL bytes", b_nul_bytes, quarantined=0),
    Case("duplicated headers", b_duplicated_headers, quarantined=0),
    Case("merged title rows above the header", b_merged_title, quarantined=0),
    Case("CSV renamed .xlsx", b_csv_named_xlsx, quarantined=0),
    Case("empty folder", b_empty_folder, quarantined=0),
    Case("empty .csv file", b_empty_csv, rejected=True),
    Case("empty .xlsx file", b_empty_xlsx, rejected=True),
    Case("header and blank rows only", b_blank_rows_only, quarantined=0),
    Case("workbook with a garbage sheet", b_sheets_one_garbage, rejected=True, quarantined=0),
    Case("workbook with a damaged sheet XML", b_sheet_damaged_xml, rejected=True, quarantined=0),
    Case("ragged rows", b_ragged_rows, quarantined=1),
    Case("CRLF / CR / LF / mixed line endings", b_line_endings, quarantined=0),
    Case("formula cells (XLSX and CSV)", b_formulas, quarantined=1),
    Case("unclosed quote", b_unclosed_quote, quarantined=0),
    Case("header repeated halfway down", b_header_repeated, quarantined=0),
    Case("victims: missing required values", b_victims_required_mix, source="victims", quarantined=2),
]


# ------------------------------------------------------------------------------------------------ runner

def run_case(case: Case, root: Path, con) -> CaseResult:  # noqa: ANN001 — a DuckDB connection
    """Build one input under `root`, ingest it with the real code, and compare with what must happen."""
    from pipeline.ingest import ingest_sources
    from pipeline.store import raw_table
    from schemas.config import config_from_dict

    result = CaseResult(case.name)
    folder = root / f"case{CASES.index(case) if case in CASES else abs(hash(case.name))}" / case.source
    folder.mkdir(parents=True)
    good = case.build(folder)
    result.good_in = len(good)
    config = config_from_dict({"paths": {"work_dir": str(root / "work")},
                               "sources": {case.source: {"path": str(folder)}}}, base_dir=root)
    try:
        report = ingest_sources(con, config, "HOSTILE")
    except Exception as exc:  # noqa: BLE001 — the point is to catch anything ingest lets through
        result.crash = f"{type(exc).__name__}: {str(exc)[:200]}"
        return result
    result.files = len(report.files)
    for outcome in report.files:
        result.loaded += outcome.rows_loaded
        result.quarantined += outcome.rows_quarantined
        if outcome.error:
            result.errors.append(outcome.error)
            if Path(outcome.path).name not in outcome.error:
                result.failures.append(f"error does not name the file: {outcome.error[:120]}")
            if "Traceback" in outcome.error:
                result.failures.append("error carries a traceback")
    loaded_names = {r[0] for r in con.execute(
        f"""SELECT r.name FROM {raw_table(case.source)} r JOIN ingested_files f USING (file_id)
            WHERE starts_with(f.path, ?)""", [str(folder)]).fetchall()}
    result.good_lost = sum(1 for name in good if name not in loaded_names)
    accounts = con.execute(
        """SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded + rows_quarantined + rows_blank), 0),
                  coalesce(sum(rows_blank), 0)
           FROM ingested_files WHERE starts_with(path, ?) AND status = 'loaded'""", [str(folder)]).fetchall()[0]
    result.blank = int(accounts[2])
    if accounts[0] != accounts[1]:
        result.failures.append(f"rows read {accounts[0]} != loaded + quarantined + blank {accounts[1]}")
    if case.rejected and not result.errors:
        result.failures.append("expected a file error, got none")
    if not case.rejected and result.errors:
        result.failures.append(f"unexpected file error: {result.errors[0][:160]}")
    if case.quarantined is not None and result.quarantined != case.quarantined:
        result.failures.append(f"quarantined {result.quarantined}, expected {case.quarantined}")
    return result


def run_corpus(root: Path, cases: list[Case] | None = None) -> list[CaseResult]:
    """Every case through ingest, against one fresh database under `root`."""
    from pipeline.store import open_database

    con = open_database(root / "work" / "hostile.duckdb")
    try:
        return [run_case(case, root, con) for case in (cases or CASES)]
    finally:
        con.close()


def _outcome(r: CaseResult) -> str:
    if r.crash:
        return f"CRASH {r.crash}"
    text = f"loaded {r.loaded}, quarantined {r.quarantined}"
    if r.errors:
        first = r.errors[0]
        first = first.split(": ", 1)[1] if ": " in first else first
        text += f"; reported: {first[:90]}"
    return text


def summary_lines(results: list[CaseResult]) -> list[str]:
    """One line per input, then the total."""
    width = max(len(r.name) for r in results)
    lines = [f"{r.name:<{width}}  good {r.good_in:>2} lost {r.good_lost}  {_outcome(r)}"
             + ("  !! " + "; ".join(r.failures) if r.failures else "") for r in results]
    crashes = sum(1 for r in results if r.crash)
    lost = sum(r.good_lost for r in results)
    lines.append(f"hostile inputs: {len(results)} tried, crashes {crashes}, good rows lost {lost}")
    return lines


def main() -> int:
    """Build the corpus in a temporary folder, run it, print the summary; exit 1 on a crash or a lost row."""
    with tempfile.TemporaryDirectory(prefix="aidleads-hostile-") as tmp:
        results = run_corpus(Path(tmp))
    for line in summary_lines(results):
        print(line)
    bad = any(r.crash or r.good_lost or r.failures for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
