"""Shared fixtures: tiny synthetic export files and a config pointing at them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def make_id(region: str = "350425", birth: str = "19800101", seq: int = 123) -> str:
    """A synthetic, checksum-valid 18-digit ID (odd seq = male, even = female)."""
    first17 = f"{region}{birth}{seq:03d}"
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS))
    return first17 + "10X98765432"[total % 11]


@pytest.fixture
def make_id_fn():
    return make_id


def write_csv(path: Path, rows: list[list[object]], encoding: str = "utf-8") -> Path:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows([["" if v is None else v for v in r] for r in rows])
    return path


def write_xlsx(path: Path, rows: list[list[object]], sheet: str = "Sheet1") -> Path:
    import openpyxl

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def config_for(tmp_path: Path, inbox: Path, **extra: object):
    from schemas.config import config_from_dict

    data = {
        "paths": {"work_dir": str(tmp_path / "work")},
        "sources": {s: {"path": str(inbox / s)} for s in ("victims", "disability", "subsistence", "enforcement", "key_groups")},
        **extra,
    }
    return config_from_dict(data, base_dir=tmp_path)


_SOURCES = ("victims", "disability", "subsistence", "enforcement", "key_groups")


def write_config(base: Path, inbox: Path, extra: str = "") -> Path:
    """base/aidleads.toml: work folder base/work, every source read from inbox/<source>, plus `extra` TOML."""
    toml = base / "aidleads.toml"
    lines = [f'[paths]\nwork_dir = "{(base / "work").as_posix()}"\n']
    lines += [f'[sources.{s}]\npath = "{(inbox / s).as_posix()}"\n' for s in _SOURCES]
    toml.write_text("\n".join(lines) + extra, encoding="utf-8")
    return toml


def built_area(base: Path, persons: int, seed: int) -> Path:
    """A generated area of `persons` people in base/inbox, run once by the plain stage functions; the config file."""
    from data_samples.generator import generate
    from pipeline import run as stages

    generate(persons, seed, base / "inbox")
    toml = write_config(base, base / "inbox")
    config = config_for(base, base / "inbox")
    run_id = stages.start_run(config, None)
    for stage in (stages.ingest_stage, stages.normalise_stage, stages.resolve_stage, stages.score_stage, stages.export_stage):
        stage(config, run_id)
    stages.finish_run(config, run_id, "succeeded")
    return toml


def copy_of_demo(bundled_demo: Path, target: Path, extra: str = "") -> Path:
    """The bundled demo's work folder copied to target/work (without exports), with its config plus `extra` TOML."""
    import shutil

    from schemas.config import load_config

    source = load_config(bundled_demo)
    shutil.copytree(source.work_dir, target / "work", ignore=shutil.ignore_patterns("exports", "prefect"))
    toml = target / "aidleads.toml"
    toml.write_text(bundled_demo.read_text(encoding="utf-8").replace(source.work_dir.as_posix(), (target / "work").as_posix())
                    + extra, encoding="utf-8")
    return toml


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the whole test session (starting one takes ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def bundled_demo(tmp_path_factory) -> Path:
    """The bundled sample county run once by the plain stage functions (as `aidleads demo` does, without
    Prefect); returns the config file. Tests that change the database must copy it first."""
    from importlib import resources

    from pipeline import run as stages
    from schemas.config import load_config

    sample = Path(str(resources.files("data_samples").joinpath("county")))
    base = tmp_path_factory.mktemp("bundled_demo")
    toml = write_config(base, sample)
    config = load_config(toml)
    run_id = stages.start_run(config, str(toml))
    for stage in (stages.ingest_stage, stages.normalise_stage, stages.resolve_stage, stages.score_stage, stages.export_stage):
        stage(config, run_id)
    stages.finish_run(config, run_id, "succeeded")
    return toml
