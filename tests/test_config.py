"""Config errors name the key and what is wrong."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from schemas.config import load_config


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    cfg = tmp_path / "a.toml"
    cfg.write_text('[sources.victims]\npath = "x"\n[scoring]\ntier_aa = 3\n', encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    assert "scoring.tier_aa" in str(exc.value) and "tier_a" in str(exc.value)


def test_unknown_source_and_bad_column_target(tmp_path):
    cfg = tmp_path / "a.toml"
    cfg.write_text('[sources.victim]\npath = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="did you mean 'victims'"):
        load_config(cfg)
    cfg.write_text('[sources.victims]\npath = "x"\n[sources.victims.columns]\n"受害人" = "nam"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown field 'nam'.*did you mean 'name'"):
        load_config(cfg)


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    cfg = tmp_path / "a.toml"
    cfg.write_text('[sources.victims]\npath = "x"\n[linking]\nmatch_probability = "high"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="linking.match_probability"):
        load_config(cfg)


def test_example_config_is_valid():
    from pathlib import Path

    config = load_config(Path(__file__).parent.parent / "config.example.toml")
    assert set(config.sources) == {"victims", "disability", "subsistence", "enforcement", "key_groups"}
