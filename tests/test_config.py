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


def test_without_user_variables_the_os_user_is_the_actor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import getpass

    # root in a container: no USER, but the OS knows the login name
    monkeypatch.setattr(getpass, "getuser", lambda: "root")
    assert Settings.from_environ({"LEPTONIC_HOME": str(tmp_path)}).user == "root"

    def unknown() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", unknown)
    assert Settings.from_environ({"LEPTONIC_HOME": str(tmp_path)}).user == "local"


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


def test_a_home_with_uri_characters_keeps_its_database_inside(tmp_path: Path) -> None:
    from leptonic import Platform

    home = tmp_path / "a?b" / "p%41x #1"
    with Platform.open(Settings.for_home(home)) as lp:
        lp.create_workspace("credit")
    assert (home / "leptonic.db").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a?b"]


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"LEPTONIC_HOME": "~nosuchuser-leptonic/x"}, "LEPTONIC_HOME"),
        ({"LEPTONIC_URL": "localhost:8000"}, "LEPTONIC_URL"),
        ({"LEPTONIC_URL": "http://[::1"}, "LEPTONIC_URL"),
        ({"LEPTONIC_URL": "ftp://host/x"}, "LEPTONIC_URL"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Settings.from_environ(env)


def test_a_home_that_is_a_file_is_refused_clearly(tmp_path: Path) -> None:
    from leptonic import Platform

    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(ConfigError, match="writable folder"):
        Platform.open(Settings.for_home(tmp_path / "taken"))
    with pytest.raises(ConfigError, match="three slashes"):
        Platform.open(
            Settings.from_environ(
                {"LEPTONIC_HOME": str(tmp_path), "LEPTONIC_DB": "sqlite://localhost/x.db"}
            )
        )


def test_a_failed_open_closes_the_metadata_store(tmp_path: Path) -> None:
    from leptonic import Platform
    from leptonic.storage.metadata.sql import SQLMetadataStore

    closed: list[object] = []
    real = SQLMetadataStore.close

    def close(self: SQLMetadataStore) -> None:
        closed.append(self)
        real(self)

    env = {"LEPTONIC_HOME": str(tmp_path), "LEPTONIC_ARTIFACTS": "file://elsewhere/x"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SQLMetadataStore, "close", close)
        with pytest.raises(ConfigError, match="invalid artifact URI"):
            Platform.open(Settings.from_environ(env))
    assert len(closed) == 1


def test_webhook_hosts_are_read_as_lower_case_patterns() -> None:
    s = Settings.from_environ(
        {"LEPTONIC_WEBHOOK_HOSTS": " Hooks.Example.com., *.alerts.example.com,[::1],10.0.0.7"}
    )
    assert s.webhook_hosts == ("hooks.example.com", "*.alerts.example.com", "::1", "10.0.0.7")
    assert Settings.from_environ({}).webhook_hosts is None
    assert Settings.from_environ({"LEPTONIC_WEBHOOK_HOSTS": " "}).webhook_hosts is None


@pytest.mark.parametrize(
    "value", ["https://hooks.example.com", "hooks.example.com:8443", "a/b", "*", "x,,y", "*.a*.b"]
)
def test_a_webhook_host_entry_that_is_no_host_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="LEPTONIC_WEBHOOK_HOSTS entry"):
        Settings.from_environ({"LEPTONIC_WEBHOOK_HOSTS": value})


@pytest.mark.parametrize(
    ("value", "token"), [("lep_abc\n", "lep_abc"), (" lep_abc\r\n", "lep_abc"), (" \n", None)]
)
def test_the_token_loses_surrounding_whitespace(value: str, token: str | None) -> None:
    assert Settings.from_environ({"LEPTONIC_TOKEN": value}).token == token


@pytest.mark.parametrize("value", ["lep_a bc", "lep_\u00e9", "lep_a\tb"])
def test_a_token_with_whitespace_or_non_ascii_inside_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="LEPTONIC_TOKEN") as info:
        Settings.from_environ({"LEPTONIC_TOKEN": value})
    assert value not in str(info.value)  # the secret is not echoed
