from __future__ import annotations

from pathlib import Path

import pytest

from leptonic.config import ENVIRONMENT_VARIABLES, Settings
from leptonic.errors import ConfigError


def test_defaults_under_home(tmp_path: Path) -> None:
    s = Settings.from_environ({"LEPTONIC_HOME": str(tmp_path), "USER": "ana"})
    assert s.db_uri == f"sqlite:///{tmp_path / 'leptonic.db'}"
    assert s.artifacts_uri == (tmp_path / "artifacts").as_uri()
    assert s.compute_uri == "local://"
    assert s.user == "ana"


def test_explicit_values_win(tmp_path: Path) -> None:
    s = Settings.from_environ(
        {"LEPTONIC_HOME": str(tmp_path), "LEPTONIC_DB": "postgresql://db/x", "LEPTONIC_USER": "bo"}
    )
    assert s.db_uri == "postgresql://db/x"
    assert s.user == "bo"


def test_unknown_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="LEPTONIC_DATABASE"):
        Settings.from_environ({"LEPTONIC_DATABASE": "x"})


def test_every_variable_is_documented() -> None:
    assert all(desc for desc in ENVIRONMENT_VARIABLES.values())
    assert "LEPTONIC_HOME" in ENVIRONMENT_VARIABLES


def test_relative_home_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.from_environ({"LEPTONIC_HOME": "rel/home"})
    assert s.home == tmp_path / "rel" / "home"
    assert s.artifacts_uri == (tmp_path / "rel" / "home" / "artifacts").as_uri()
