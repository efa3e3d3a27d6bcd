"""Nights whose inputs did not change reuse a stage's tables instead of rebuilding them.

A stage's inputs key is a SHA-256 over the files in force (source, file id, content hash), the
code that builds the stage (so an upgrade rebuilds) and its settings. normalise and resolve store
the key of what they built in `stage_state`; a night with no new or replaced file finds equal keys
and skips straight to scoring — and says so.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from typing import Any

import duckdb

__all__ = ["inputs_key", "settings_key", "source_keys", "kept_sources", "is_current", "remember", "code_fingerprint"]

_CODE = {"matchers": None, "pipeline": ("normalise.py", "values.py", "persons.py", "run.py"), "schemas": ("sources.py",)}


@lru_cache(maxsize=8)
def code_fingerprint(*also: str) -> str:
    """SHA-256 of the code that builds normalised records and links (an upgrade rebuilds them), and of the
    modules of `pipeline` named in `also` (a stage built on more of the code than that)."""
    digest = hashlib.sha256()
    for package, names in {**_CODE, "pipeline": (*_CODE["pipeline"], *also)}.items():
        folder = resources.files(package)
        files = sorted(p.name for p in folder.iterdir() if p.name.endswith(".py")) if names is None else names
        for name in files:
            digest.update(name.encode())
            digest.update(folder.joinpath(name).read_bytes())
    return digest.hexdigest()


def inputs_key(con: duckdb.DuckDBPyConnection, stage: str, settings: Any = None) -> str:
    """The key of what `stage` would be built from tonight."""
    files = con.execute(
        "SELECT source, file_id, sha256 FROM ingested_files WHERE status = 'loaded' ORDER BY source, file_id").fetchall()
    payload = json.dumps({"stage": stage, "files": files, "code": code_fingerprint(), "settings": settings},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def settings_key(what: str, settings: Any = None, also_code: tuple[str, ...] = ()) -> str:
    """A key of the code (with the modules of `pipeline` in `also_code`) and settings alone (not the files):
    what stored state was made with."""
    payload = json.dumps({"what": what, "code": code_fingerprint(*also_code), "settings": settings}, sort_keys=True,
                         default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def source_keys(con: duckdb.DuckDBPyConnection, stage: str, sources: tuple[str, ...]) -> dict[str, str]:
    """Per source, the key of what `stage` would build of that source tonight (its files in force and the code)."""
    files = con.execute(
        "SELECT source, file_id, sha256 FROM ingested_files WHERE status = 'loaded' ORDER BY source, file_id").fetchall()
    keys = {}
    for source in sources:
        payload = json.dumps({"stage": stage, "source": source, "files": [f for f in files if f[0] == source],
                              "code": code_fingerprint()}, sort_keys=True, default=str)
        keys[source] = hashlib.sha256(payload.encode("utf-8")).hexdigest()
    return keys


def kept_sources(con: duckdb.DuckDBPyConnection, stage: str, keys: dict[str, str], tables: tuple[str, ...]) -> set[str]:
    """The sources whose part of `stage`'s tables was built from exactly tonight's inputs (keys as of
    `source_keys`, remembered as '<stage>/<source>'), when the tables are all still there."""
    have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
    if not all(t in have for t in tables):
        return set()
    stored = dict(con.execute("SELECT stage, inputs_key FROM stage_state WHERE starts_with(stage, ?)",
                              [f"{stage}/"]).fetchall())
    return {source for source, key in keys.items() if stored.get(f"{stage}/{source}") == key}


def is_current(con: duckdb.DuckDBPyConnection, stage: str, key: str, tables: tuple[str, ...]) -> str | None:
    """The run that built `stage` from exactly these inputs, when its tables are all still there."""
    row = con.execute("SELECT inputs_key, run_id FROM stage_state WHERE stage = ?", [stage]).fetchall()
    if not row or row[0][0] != key:
        return None
    have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
    return row[0][1] if all(t in have for t in tables) else None


def remember(con: duckdb.DuckDBPyConnection, stage: str, key: str, run_id: str) -> None:
    con.execute("INSERT OR REPLACE INTO stage_state VALUES (?, ?, ?)", [stage, key, run_id])
