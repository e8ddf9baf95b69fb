"""The server-side commands of ``leptonic``, and the CLI talking to a server (LEPTONIC_URL)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api._support import Server, free_port, start
from leptonic.cli.main import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("LEPTONIC_") and not key.startswith("LEPTONIC_TEST_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("LEPTONIC_HOME", str(home))
    monkeypatch.setenv("LEPTONIC_USER", "cli-user")
    monkeypatch.setenv("COLUMNS", "200")
    return home


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_users_and_tokens(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "users", "create", "ana", "--admin")
    assert code == 0 and "ana" in out and "admin" in out
    code, out, err = run(
        capsys, "tokens", "create", "ana", "--name", "ci", "--expires-in-days", "7"
    )
    secret = out.strip()
    assert code == 0 and secret.startswith("lep_") and "not shown again" in err
    code, out, _ = run(capsys, "tokens", "list", "ana")
    assert secret[:12] in out and secret not in out
    code, out, _ = run(capsys, "users", "list")
    assert "ana" in out
    code, _, err = run(capsys, "tokens", "create", "nobody")
    assert code == 1 and "error" in err


def test_workspace_members_from_the_terminal(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "workspace", "create", "credit")
    run(capsys, "users", "create", "dev")
    code, out, _ = run(capsys, "workspace", "member", "set", "credit", "dev", "developer")
    assert code == 0 and "dev is now developer in credit" in out, out
    code, out, _ = run(capsys, "workspace", "member", "list", "credit")
    assert code == 0 and "dev" in out and "developer" in out, out
    code, _, err = run(capsys, "workspace", "member", "set", "credit", "dev", "owner")
    assert code == 1 and "unknown role 'owner'" in err, err
    code, out, _ = run(capsys, "workspace", "member", "remove", "credit", "dev")
    assert code == 0 and "dev is no longer a member of credit" in out, out
    code, _, err = run(capsys, "workspace", "member", "list", "nowhere")
    assert code == 1 and "nowhere" in err, err


@pytest.fixture
def in_process(home: Path, make_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """The CLI with LEPTONIC_URL set, talking to an in-process server as ``root``."""
    from leptonic import Client

    server: Server = make_server()
    server.platform.as_user("setup").create_workspace("credit")
    monkeypatch.setattr(
        Client,
        "from_settings",
        classmethod(lambda cls, s: cls(s.url or "", s.token, transport=server.transport)),
    )
    # the CLI's own home is left empty: everything must go through the server
    monkeypatch.setenv("LEPTONIC_HOME", str(home.parent / "client-home"))
    monkeypatch.setenv("LEPTONIC_URL", "http://leptonic.test")
    monkeypatch.setenv("LEPTONIC_TOKEN", server.tokens["root"])
    yield server
    assert not (home.parent / "client-home").exists()  # no local store was opened


def test_users_tokens_and_members_go_to_the_server_named_by_leptonic_url(
    in_process: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    lp = in_process.platform
    code, out, _ = run(capsys, "users", "create", "ana", "--display-name", "Ana")
    assert code == 0 and "created user ana" in out, out
    assert "ana" in {u.name for u in lp.list_users()}
    code, out, _ = run(capsys, "users", "list")
    assert code == 0 and "ana" in out and "root" in out, out
    code, out, err = run(capsys, "tokens", "create", "ana", "--name", "laptop")
    secret = out.strip()
    assert code == 0 and secret.startswith("lep_") and "not shown again" in err, err
    assert [t.name for t in lp.list_tokens("ana")] == ["laptop"]
    code, out, _ = run(capsys, "tokens", "list", "ana")
    assert code == 0 and "laptop" in out and secret not in out, out
    token_id = lp.list_tokens("ana")[0].id
    code, out, _ = run(capsys, "tokens", "revoke", token_id)
    assert code == 0 and f"revoked token {token_id} of ana" in out, out
    assert lp.list_tokens("ana")[0].revoked_at is not None
    code, out, _ = run(capsys, "workspace", "member", "set", "credit", "ana", "viewer", "--raw-pii")
    assert code == 0 and "ana is now viewer in credit with raw personal data" in out, out
    member = lp.membership("credit", "ana")
    assert member is not None and member.role.value == "viewer" and member.raw_pii
    code, out, _ = run(capsys, "workspace", "member", "list", "credit")
    assert code == 0 and "ana" in out and "viewer" in out, out
    code, out, _ = run(capsys, "workspace", "member", "remove", "credit", "ana")
    assert code == 0 and lp.membership("credit", "ana") is None, out
    code, _, err = run(capsys, "users", "create", "root")
    assert code == 1 and "root" in err, err


@pytest.fixture
def remote(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "leptonic.cli.main", "server", "--port", str(port)]
    proc, _ = start(command, home, port)
    try:
        token = (home / "bootstrap-token").read_text().strip()
        # The CLI gets another, empty home: everything must go through the server.
        monkeypatch.setenv("LEPTONIC_HOME", str(home.parent / "client-home"))
        monkeypatch.setenv("LEPTONIC_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("LEPTONIC_TOKEN", token)
        yield token
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def test_cli_talks_to_the_server(
    remote: str, home: Path, applicants_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "workspace", "create", "credit")
    assert code == 0 and "credit" in out
    code, out, _ = run(capsys, "workspace", "list")
    assert "credit" in out
    code, out, _ = run(
        capsys, "data", "add", str(applicants_csv), "-w", "credit", "--target", "default"
    )
    assert code == 0 and "applicants" in out and "v1" in out
    code, out, _ = run(capsys, "data", "preview", "applicants", "-w", "credit", "--limit", "2")
    assert code == 0 and "email" in out
    code, out, _ = run(
        capsys,
        *("train", "-w", "credit", "-d", "applicants", "--target", "default"),
        *("--candidates", "logistic", "--trials", "2", "--model", "sc"),
    )
    assert code == 0 and "succeeded" in out, out
    # the same summary as a local run: metrics, the choice and the registered version
    assert "Metrics" in out and "auc" in out and "chose logistic" in out, out
    assert "registered sc v1 (candidate)" in out, out
    code, out, err = run(
        capsys,
        *("train", "-w", "credit", "-d", "applicants", "--target", "no_such_column"),
        *("--candidates", "logistic", "--trials", "2"),
    )
    # refused by the server before anything is queued: no run
    assert code == 1 and "no_such_column" in err and "spec.target" in err, (out, err)
    code, out, _ = run(capsys, "runs", "list", "-w", "credit")
    assert "succeeded" in out
    code, out, _ = run(capsys, "models", "list", "-w", "credit")
    assert "sc" in out
    code, out, _ = run(
        capsys, "models", "promote", "sc", "1", "staging", "-w", "credit", "--reason", "ok"
    )
    assert code == 0 and "staging" in out
    code, _, err = run(capsys, "workspace", "create", "credit")
    assert code == 1 and "already" in err
    assert not (home.parent / "client-home").exists()  # no local store was opened
