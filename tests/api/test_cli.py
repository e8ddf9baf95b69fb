"""The server-side commands of ``leptonic``, and the CLI talking to a server (LEPTONIC_URL)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api._support import free_port, start
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
