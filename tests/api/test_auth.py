"""Authentication: tokens that do not work, and the bootstrap admin token."""

from __future__ import annotations

import io
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from api._support import Server
from leptonic import Platform, Settings
from leptonic.api.auth import BOOTSTRAP_TOKEN_FILE, bootstrap_admin
from leptonic.core._time import utcnow
from leptonic.core.access import ApiToken
from leptonic.platform import hash_token
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.storage.metadata.memory import MemoryMetadataStore


def assert_401(response: Any, *words: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    for word in words:
        assert word in error["message"]


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({}, ("missing",)),
        ({"Authorization": "Bearer"}, ("missing",)),
        ({"Authorization": "Basic dXNlcjpwdw=="}, ("missing",)),
        ({"Authorization": "Bearer not-a-leptonic-token"}, ("malformed",)),
        ({"Authorization": "Bearer lep_" + "x" * 43}, ("unknown",)),
    ],
)
def test_missing_or_unknown_token(
    server: Server, headers: dict[str, str], words: tuple[str, ...]
) -> None:
    with server.client() as c:
        for path in ("/me", "/workspaces", "/workspaces/any/runs", "/audit"):
            assert_401(c.get(path, headers=headers), *words)


def test_expired_and_revoked_tokens(server: Server) -> None:
    lp = server.platform
    lp.create_user("eve")
    secret = "lep_expired-secret-for-the-test-000000000000"
    past = utcnow() - timedelta(days=1)
    lp.metadata.create_token(
        ApiToken("t-expired", "eve", "old", hash_token(secret), secret[:12], past, past)
    )
    with server.client(token=secret) as c:
        assert_401(c.get("/me"), "expired")
    _, live = lp.create_token("eve", "live")
    with server.client(token=live) as c:
        assert c.get("/me").status_code == 200
        token_id = lp.list_tokens("eve")[-1].id
        assert c.delete(f"/tokens/{token_id}").status_code == 200
        assert_401(c.get("/me"), "revoked")


def test_token_secrets_are_not_stored(server: Server) -> None:
    token, secret = server.platform.create_token("root", "ci")
    assert token.token_hash == hash_token(secret) and secret not in repr(token)
    assert token.prefix == secret[:12] and secret.startswith("lep_") and len(secret) >= 40


def test_non_admin_cannot_manage_users(server: Server) -> None:
    server.add_user("joe")
    with server.client("joe") as c:
        assert c.post("/users", json={"name": "x"}).status_code == 403
        assert c.get("/users").status_code == 403
        assert c.post("/users/joe/tokens", json={}).status_code == 403
        assert c.get("/users/root/tokens").status_code == 403
        assert c.get("/users/joe/tokens").status_code == 200
        root_token = server.platform.list_tokens("root")[0].id
        assert c.delete(f"/tokens/{root_token}").status_code == 404


def test_bootstrap_token_shown_once(tmp_path: Path, make_server: Any) -> None:
    lp = Platform(
        Settings.for_home(tmp_path / "home"),
        metadata=MemoryMetadataStore(),
        artifacts=MemoryArtifactStore(),
    )
    out = io.StringIO()
    secret = bootstrap_admin(lp, tmp_path / "home", stream=out)
    assert secret is not None and secret in out.getvalue()
    path = tmp_path / "home" / BOOTSTRAP_TOKEN_FILE
    assert path.read_text().strip() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [u.name for u in lp.list_users()] == ["admin"] and lp.get_user("admin").is_admin

    again = io.StringIO()
    assert bootstrap_admin(lp, tmp_path / "home", stream=again) is None
    assert again.getvalue() == ""

    server = make_server(platform=lp)
    with server.client(token=secret) as c:
        assert c.get("/me").json()["user"]["is_admin"] is True


def test_bootstrap_keeps_an_existing_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / BOOTSTRAP_TOKEN_FILE).write_text("old\n")
    lp = Platform(
        Settings.for_home(home), metadata=MemoryMetadataStore(), artifacts=MemoryArtifactStore()
    )
    out = io.StringIO()
    secret = bootstrap_admin(lp, home, stream=out)
    assert secret is not None and secret in out.getvalue() and "written" not in out.getvalue()
    assert (home / BOOTSTRAP_TOKEN_FILE).read_text() == "old\n"


def test_server_start_bootstraps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from leptonic.api import create_app
    from leptonic.api.testing import serve_in_process

    lp = Platform(
        Settings.for_home(tmp_path / "h"),
        metadata=MemoryMetadataStore(),
        artifacts=MemoryArtifactStore(),
    )
    with serve_in_process(create_app(lp.settings, platform=lp, workers=0)):
        pass
    secret = (tmp_path / "h" / BOOTSTRAP_TOKEN_FILE).read_text().strip()
    assert secret in capsys.readouterr().err
    with serve_in_process(create_app(lp.settings, platform=lp, workers=0)):
        pass
    assert secret not in capsys.readouterr().err
