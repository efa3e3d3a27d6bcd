"""Project configuration: a TOML file validated once at start-up by these pydantic models."""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.cron import cron_problem, timezone_problem
from schemas.sources import SOURCES

__all__ = ["AidLeadsConfig", "SourceConfig", "ScoringConfig", "LinkingConfig", "ExportConfig", "ScheduleConfig",
           "load_config", "config_from_dict"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    """Where one source's files are, and header overrides (header text → canonical field)."""

    path: str = Field(description="folder (all .csv/.xlsx/.xls inside) or a glob, relative to the config file")
    columns: dict[str, str] = Field(default_factory=dict, description="header as written → canonical field name")
    enabled: bool = True


class PathsConfig(_Strict):
    work_dir: str = "work"
    database: str = "aidleads.duckdb"
    exports: str = "exports"


class DistributedConfig(_Strict):
    """Run the compare step on a Dask cluster through Prefect (prefect-dask); off by default."""

    enabled: bool = False
    scheduler: str | None = Field(None, description="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786; "
                                                    "unset: a local cluster of `workers` processes")
    workers: int = Field(2, ge=1, description="worker processes of the local cluster")
    partitions: int = Field(8, ge=1, description="pieces the candidate pairs are cut into, one task each")
    scratch: str | None = Field(None, description="folder every worker can read and write (shared storage on a "
                                                  "real cluster); default: the work folder")


class LinkingConfig(_Strict):
    match_probability: float = Field(0.99, gt=0.5, lt=1.0, description="probabilistic links below this are not made")
    max_block_size: int = Field(5000, ge=10, description="blocks larger than this are skipped and reported")
    incremental: bool = Field(True, description="a night that changed few records resolves only those "
                                                "(pipeline.resolve_delta); false: every night in full")
    incremental_max_change: float = Field(0.1, ge=0.0, le=1.0, description="share of the records added or removed "
                                          "above which a night resolves in full")
    full_resolve_every: int = Field(7, ge=1, description="a full resolution (the model estimated again) after this "
                                    "many incremental nights")
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)


class ScoringConfig(_Strict):
    """Points per signal. Policy lives here, not in code; see README 'Scoring'."""

    injury: dict[str, float] = Field(
        default_factory=lambda: {
            "死亡": 40, "重伤一级": 36, "重伤二级": 30, "轻伤一级": 14, "轻伤二级": 10, "轻微伤": 3,
        }
    )
    unpaid_base: float = 18
    unpaid_per_10k: float = 1.0
    unpaid_cap: float = 20
    unpaid_ratio_bonus: float = 5
    """added when at least 80 % of the amount ordered is unpaid"""
    disability_level: dict[str, float] = Field(default_factory=lambda: {"1": 26, "2": 22, "3": 12, "4": 8})
    subsistence: dict[str, float] = Field(default_factory=lambda: {"特困供养": 22, "城市低保": 16, "农村低保": 16, "低保": 16})
    enrolled_after_incident_bonus: float = 10
    key_groups: dict[str, float] = Field(
        default_factory=lambda: {
            "防止返贫监测对象": 16, "事实无人抚养儿童": 16, "困境儿童": 12, "重度残疾人": 12,
            "妇联移送线索": 12, "退役军人": 6,
        }
    )
    key_group_default: float = 6
    priority_woman_offence: float = 10
    priority_offences: list[str] = Field(
        default_factory=lambda: ["强奸", "强制猥亵", "拐卖", "虐待", "家庭暴力", "故意伤害"]
    )
    minor_victim: float = 10
    elderly_victim: float = 6
    elderly_age: int = 70
    dependents_per_person: float = 4
    dependents_cap: float = 12
    recent_incident_years: int = 3
    recent_incident: float = 5
    compensated_penalty: float = 45
    compensated_ratio: float = 0.8
    """a victim who received at least this share of the compensation ordered counts as reasonably compensated"""
    fault_penalty: float = 30
    already_aided_penalty: float = 15
    """the subject (or victim) already received judicial aid in another case"""
    tier_a: float = 70
    tier_b: float = 45
    tier_c: float = 25
    average_monthly_wage: float = 8500.0
    """the area's average monthly wage (元) used for the aid estimate (36 months at most)"""


class LifecycleConfig(_Strict):
    deadline_working_days: int = Field(7, ge=1, description="working days from assignment to a verified outcome (Datian: 7)")


class ExportConfig(_Strict):
    """Optional password for leads.xlsx. The config names where the password is, never the password itself."""

    password_env: str | None = Field(None, description="environment variable holding the leads.xlsx password")
    password_file: str | None = Field(None, description="file whose first line is the password (relative to the config file)")


class ScheduleConfig(_Strict):
    """When `aidleads serve` runs the nightly job: a cron line read in a timezone, and the deployment's name."""

    cron: str = Field("0 2 * * *", description="minute hour day-of-month month day-of-week (default: 02:00 daily)")
    timezone: str = Field("Asia/Shanghai", description="IANA timezone the cron line is read in")
    deployment_name: str = Field("nightly", description="Prefect deployment name: letters, digits, '.', '_' or '-'")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        problem = cron_problem(value)
        if problem:
            raise ValueError(problem)
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        problem = timezone_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("deployment_name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
            raise ValueError(f"'{value}' is not a usable deployment name (letters, digits, '.', '_' or '-'; "
                             "at most 64, e.g. 'nightly')")
        return value


class AidLeadsConfig(_Strict):
    paths: PathsConfig = Field(default_factory=PathsConfig)
    sources: dict[str, SourceConfig]
    linking: LinkingConfig = Field(default_factory=LinkingConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    mask_exports: bool = True
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        for name, src in value.items():
            if name not in SOURCES:
                raise ValueError(f"unknown source '{name}'{_suggest(name, SOURCES)}")
            spec = SOURCES[name]
            for header, target in src.columns.items():
                if target not in spec.field_names:
                    raise ValueError(
                        f"columns['{header}'] of source '{name}' maps to unknown field '{target}'"
                        f"{_suggest(target, spec.field_names)}"
                    )
        return value

    def resolve(self, relative: str) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def work_dir(self) -> Path:
        return self.resolve(self.paths.work_dir)

    @property
    def database_path(self) -> Path:
        db = Path(self.paths.database)
        return db if db.is_absolute() else self.work_dir / db

    @property
    def exports_dir(self) -> Path:
        ex = Path(self.paths.exports)
        return ex if ex.is_absolute() else self.work_dir / ex


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def config_from_dict(data: dict[str, Any], *, base_dir: Path, origin: str = "<config>") -> AidLeadsConfig:
    """Validate a config mapping; errors name the key and the problem."""
    from pipeline.errors import ConfigError

    try:
        return AidLeadsConfig.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                parent_fields = _fields_at(err["loc"][:-1])
                msg = f"unknown key{_suggest(str(err['loc'][-1]), parent_fields)}"
            problems.append(f"{key}: {msg}")
        raise ConfigError(f"{origin}: " + "; ".join(problems), hint="see config.example.toml") from None


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model: Any = AidLeadsConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            return []
        field = model.model_fields.get(str(part))
        if field is None:
            model = SourceConfig if model is AidLeadsConfig and loc[0] == "sources" else None
            continue
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return list(model.model_fields) if model else []


def load_config(path: Path) -> AidLeadsConfig:
    """Read and validate a TOML config file."""
    from pipeline.errors import ConfigError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", hint="copy config.example.toml and edit the paths")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return config_from_dict(data, base_dir=path.resolve().parent, origin=str(path))
