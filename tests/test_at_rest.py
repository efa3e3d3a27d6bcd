"""At-rest protection: why the database is not DuckDB-encrypted (README "Data protection"), and the keyed
hash (`persons.id_hmac`) that analysts see instead of ID numbers."""

from __future__ import annotations

import hashlib
import hmac
import stat

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from conftest import make_id
from pipeline.cli import app
from pipeline.errors import AidLeadsError
from pipeline.persons import ID_KEY_FILE, id_hmac, id_key, with_id_hmac
from pipeline.store import open_database
from schemas.config import load_config


def test_duckdb_cannot_write_an_encrypted_database_offline(tmp_path):
    """The README's finding: DuckDB's built-in crypto is read-only; writing needs the httpfs extension
    (OpenSSL), which is not installable offline. If this starts to pass, revisit README "At rest"."""
    con = duckdb.connect()
    try:
        with pytest.raises(duckdb.Error, match="httpfs"):
            con.execute(f"ATTACH '{(tmp_path / 'enc.duckdb').as_posix()}' AS enc (ENCRYPTION_KEY 'not-a-real-key')")
            con.execute("CREATE TABLE enc.t AS SELECT 1 AS x")
    finally:
        con.close()


def test_id_key_is_made_once_readable_by_its_owner_only(tmp_path):
    key = id_key(tmp_path)
    path = tmp_path / ID_KEY_FILE
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert id_key(tmp_path) == key


def test_a_missing_or_damaged_id_key_is_a_clear_error(tmp_path):
    with pytest.raises(AidLeadsError, match="aidleads run"):
        id_key(tmp_path, create=False)
    (tmp_path / ID_KEY_FILE).write_bytes(b"x")
    with pytest.raises(AidLeadsError, match="damaged"):
        id_key(tmp_path)


def test_id_hmac_is_hmac_sha256_of_the_number_with_the_key():
    number = make_id(seq=457)
    assert id_hmac(number, b"k" * 32) == hmac.new(b"k" * 32, number.encode(), hashlib.sha256).hexdigest()
    assert id_hmac(number.lower(), b"k" * 32) == id_hmac(number.upper(), b"k" * 32)
    assert id_hmac(number, b"j" * 32) != id_hmac(number, b"k" * 32)
    assert id_hmac(None, b"k" * 32) is None


@pytest.mark.parametrize("key", [b"k" * 32, b"long key " * 10])
def test_a_province_of_persons_gets_the_same_keyed_hashes_in_bulk(key):
    """Many persons are hashed by DuckDB's SHA-256 over the padded key: exactly hmac's values."""
    numbers = [make_id(seq=s) for s in range(1, 500)] * 50 + [None, "", make_id(seq=3).lower()]
    persons = pl.DataFrame({"person_id": [f"P{i}" for i in range(len(numbers))], "id18": numbers})
    hashed = with_id_hmac(persons, key)
    assert hashed.columns == ["person_id", "id18", "id_hmac"]
    assert hashed["id_hmac"].to_list() == [id_hmac(n, key) for n in numbers]
    assert hashed["id_hmac"].null_count() == 2


def test_persons_carry_the_keyed_hash_of_their_id(bundled_demo):
    config = load_config(bundled_demo)
    key = (config.work_dir / ID_KEY_FILE).read_bytes()
    con = open_database(config.database_path, read_only=True)
    try:
        rows = con.execute("SELECT id18, id_hmac FROM persons").fetchall()
    finally:
        con.close()
    assert sum(1 for id18, _ in rows if id18) > 1000
    assert all(h == id_hmac(id18, key) for id18, h in rows)


def test_id_hash_command_prints_the_hash_and_never_the_number(bundled_demo):
    config = load_config(bundled_demo)
    con = open_database(config.database_path, read_only=True)
    try:
        number, expected = con.execute("SELECT id18, id_hmac FROM persons WHERE id18 IS NOT NULL LIMIT 1").fetchall()[0]
    finally:
        con.close()
    result = CliRunner().invoke(app, ["id-hash", "-c", str(bundled_demo)], input=f"{number}\nnot an id\n")
    assert result.exit_code == 0, result.output
    assert result.output.split()[:1] == [expected] and "not a valid ID number" in result.output
    assert number not in result.output
