"""`aidleads export` / `aidleads exports`: re-export a run masked or (with a reason) unmasked, password-protect
leads.xlsx, and list the audit."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from pathlib import Path

import msoffcrypto
import openpyxl
import pytest
from typer.testing import CliRunner

from conftest import built_area, copy_of_demo, config_for
from pipeline import run as stages
from pipeline.cli import app
from pipeline.errors import ConfigError
from pipeline.export import xlsx_password
from pipeline.store import open_database

runner = CliRunner()
_ID18 = re.compile(r"\d{17}[\dX]")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A database with one succeeded run, built by the plain stage functions; returns the config file."""
    return built_area(tmp_path_factory.mktemp("export_cli"), 1500, 5)


def _audit(toml: Path) -> list[tuple]:
    con = open_database(toml.parent / "work" / "aidleads.duckdb", read_only=True)
    try:
        return con.execute("SELECT path, kind, rows, masked, reason, encrypted, os_user FROM exports "
                           "ORDER BY exported_at, path").fetchall()
    finally:
        con.close()


def _nightly(toml: Path) -> dict[str, str]:
    folders = [p for p in (toml.parent / "work" / "exports").iterdir() if p.name.startswith("R") and p.is_dir()]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for f in folders for p in f.iterdir()}


def _csv_ids(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    return {r["身份证号"] for r in rows if _ID18.fullmatch(r["身份证号"] or "")}


def test_export_is_masked_by_default_in_a_new_folder_and_audited(built):
    nightly = _nightly(built)
    before = len(_audit(built))
    result = runner.invoke(app, ["export", "-c", str(built)])
    assert result.exit_code == 0, result.output
    assert "masked" in result.output
    new = _audit(built)[before:]
    assert sorted(r[1] for r in new) == ["leads_csv", "leads_parquet", "leads_xlsx"]
    assert all(r[3] is True and r[4] is None and r[5] is False and r[6] for r in new)
    folder = Path(new[0][0]).parent
    assert folder.parent.name == "reexports" and not folder.name.endswith("_unmasked")
    assert not _csv_ids(folder / "leads.csv"), "a masked export holds a full ID number"
    assert all((folder / n).stat().st_mode & 0o077 == 0 for n in ("leads.xlsx", "leads.csv", "leads.parquet"))
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]
    assert _nightly(built) == nightly, "the nightly folder changed"


@pytest.mark.parametrize("args", [["--unmask"], ["--unmask", "--reason", "   "], ["--reason", "核查"]])
def test_unmask_without_a_reason_is_refused(built, args):
    before = _audit(built)
    result = runner.invoke(app, ["export", "-c", str(built), *args])
    assert result.exit_code == 2 and "--reason" in result.output and "Traceback" not in result.output
    assert _audit(built) == before


def test_unmask_with_a_reason_writes_full_ids_and_records_the_reason(built):
    before = len(_audit(built))
    result = runner.invoke(app, ["export", "-c", str(built), "--unmask", "--reason", "核查需要（测试）"])
    assert result.exit_code == 0, result.output
    new = _audit(built)[before:]
    assert {(r[3], r[4]) for r in new} == {(False, "核查需要（测试）")}
    folder = Path(new[0][0]).parent
    assert folder.name.endswith("_unmasked")
    assert _csv_ids(folder / "leads.csv"), "the unmasked export shows no full ID number"
    ws = openpyxl.load_workbook(folder / "leads.xlsx", read_only=True)["线索清单"]
    header = [c.value for c in next(ws.iter_rows(max_row=1))]
    ids = [row[header.index("身份证号")] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert any(_ID18.fullmatch(i or "") for i in ids)


def test_password_env_encrypts_leads_xlsx(built, monkeypatch):
    monkeypatch.setenv("AIDLEADS_TEST_PW", "s3cret-密码")
    before = len(_audit(built))
    result = runner.invoke(app, ["export", "-c", str(built), "--password-env", "AIDLEADS_TEST_PW"])
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    new = _audit(built)[before:]
    assert {r[1]: r[5] for r in new} == {"leads_xlsx": True, "leads_csv": False, "leads_parquet": False}
    xlsx = next(Path(r[0]) for r in new if r[1] == "leads_xlsx")
    raw = xlsx.read_bytes()
    assert raw.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") and not raw.startswith(b"PK")
    assert xlsx.stat().st_mode & 0o077 == 0
    plain = io.BytesIO()
    with xlsx.open("rb") as fh:
        office = msoffcrypto.OfficeFile(fh)
        office.load_key(password="s3cret-密码")
        office.decrypt(plain)
    ws = openpyxl.load_workbook(plain, read_only=True)["线索清单"]
    assert sum(1 for _ in ws.iter_rows(min_row=2)) == new[0][2] > 0  # every lead, no more
    with xlsx.open("rb") as fh, pytest.raises(msoffcrypto.exceptions.DecryptionError):
        office = msoffcrypto.OfficeFile(fh)
        office.load_key(password="wrong")
        office.decrypt(io.BytesIO())
    assert not [p for p in xlsx.parent.iterdir() if p.name.startswith(".tmp-")]


def test_missing_password_variable_is_a_clear_error(built, monkeypatch):
    monkeypatch.delenv("AIDLEADS_NO_SUCH_PW", raising=False)
    before = _audit(built)
    result = runner.invoke(app, ["export", "-c", str(built), "--password-env", "AIDLEADS_NO_SUCH_PW"])
    assert result.exit_code == 2 and "AIDLEADS_NO_SUCH_PW" in result.output and "Traceback" not in result.output
    assert _audit(built) == before


def test_config_password_sources(tmp_path, monkeypatch):
    def cfg(**export):
        return config_for(tmp_path, tmp_path / "inbox", export=export)

    assert xlsx_password(cfg()) is None
    monkeypatch.setenv("PW_VAR", "abc")
    assert xlsx_password(cfg(password_env="PW_VAR")) == "abc"
    monkeypatch.setenv("PW_VAR", "")
    with pytest.raises(ConfigError, match="PW_VAR") as exc:
        xlsx_password(cfg(password_env="PW_VAR"))
    assert "abc" not in str(exc.value)
    (tmp_path / "pw.txt").write_text("from-file\n", encoding="utf-8")
    assert xlsx_password(cfg(password_env="PW_VAR", password_file="pw.txt")) == "from-file"
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty.txt.*empty"):
        xlsx_password(cfg(password_file="empty.txt"))
    with pytest.raises(ConfigError, match="nope.txt"):
        xlsx_password(cfg(password_file="nope.txt"))
    with pytest.raises(ConfigError, match="export.password_envv"):
        cfg(password_envv="X")


def test_exports_lists_the_audit_newest_first(built):
    runner.invoke(app, ["export", "-c", str(built)])
    result = runner.invoke(app, ["exports", "-c", str(built), "--limit", "3"], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "leads_" in result.output and "masked" in result.output
    assert result.output.count("leads_") == 3
    from pipeline.reexport import export_audit

    con = open_database(built.parent / "work" / "aidleads.duckdb", read_only=True)
    try:
        listed = export_audit(con, 3)
    finally:
        con.close()
    assert set(listed["path"].to_list()) == {r[0] for r in _audit(built)[-3:]}  # the newest export's three files
    assert listed["exported_at"].is_sorted(descending=True)


def test_unknown_run_is_refused(built):
    result = runner.invoke(app, ["export", "-c", str(built), "--run", "R19990101T000000000"])
    assert result.exit_code == 2 and "R19990101T000000000" in result.output


def test_an_old_exports_table_gains_the_encrypted_column(tmp_path):
    import duckdb

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("""CREATE TABLE exports (run_id VARCHAR NOT NULL, exported_at TIMESTAMP NOT NULL, os_user VARCHAR,
                   path VARCHAR NOT NULL, kind VARCHAR NOT NULL, rows BIGINT NOT NULL, masked BOOLEAN NOT NULL,
                   reason VARCHAR)""")
    con.execute("INSERT INTO exports VALUES ('R1', now()::TIMESTAMP, 'u', '/x', 'leads_csv', 1, true, NULL)")
    con.close()
    con = open_database(path)
    try:
        assert con.execute("SELECT encrypted FROM exports").fetchall() == [(None,)]
        comment = con.execute("""SELECT comment FROM duckdb_columns()
                                 WHERE table_name = 'exports' AND column_name = 'encrypted'""").fetchall()[0][0]
        assert comment and "加密" in comment
    finally:
        con.close()


def test_the_nightly_export_encrypts_leads_xlsx_when_a_password_is_configured(bundled_demo, tmp_path, monkeypatch):
    """[export] password_env applies to the night's own leads.xlsx, not only to re-exports."""
    import io

    import msoffcrypto
    import openpyxl

    from pipeline import run as stages
    from schemas.config import load_config

    toml = copy_of_demo(bundled_demo, tmp_path, '\n[export]\npassword_env = "AIDLEADS_TEST_PW"\n')
    config = load_config(toml)
    monkeypatch.setenv("AIDLEADS_TEST_PW", "夜间-secret-1")
    run_id = stages.start_run(config, str(toml))
    for stage in (stages.ingest_stage, stages.normalise_stage, stages.resolve_stage, stages.score_stage):
        stage(config, run_id)
    exported = stages.export_stage(config, run_id)

    raw = Path(exported["xlsx"]).read_bytes()
    assert raw[:8] == bytes.fromhex("D0CF11E0A1B11AE1"), "an encrypted workbook is an OLE container, not a zip"
    office = msoffcrypto.OfficeFile(io.BytesIO(raw))
    office.load_key(password="夜间-secret-1")
    plain = io.BytesIO()
    office.decrypt(plain)
    sheets = openpyxl.load_workbook(plain, read_only=True).sheetnames
    assert len(sheets) >= 2

    monkeypatch.delenv("AIDLEADS_TEST_PW")
    from pipeline.errors import AidLeadsError
    with pytest.raises(AidLeadsError, match="AIDLEADS_TEST_PW"):
        stages.export_stage(config, run_id)
