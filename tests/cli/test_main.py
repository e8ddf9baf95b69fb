"""The ``leptonic`` command, run in-process against a fresh home."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leptonic.cli.main import main
from leptonic.synthetic import write_applicants_csv


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(__import__("os").environ):
        if key.startswith("LEPTONIC_") and not key.startswith("LEPTONIC_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LEPTONIC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LEPTONIC_USER", "cli-user")
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_lifecycle_from_the_terminal(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_applicants_csv(home / "applicants.csv", n=1500)
    code, out = run(capsys, "workspace", "create", "credit-risk")
    assert code == 0 and "created workspace" in out
    code, out = run(capsys, "workspace", "list")
    assert "credit-risk" in out

    code, out = run(capsys, "data", "add", str(csv), "-w", "credit-risk", "--target", "default")
    assert code == 0 and "applicants" in out and "v1" in out
    code, out = run(capsys, "data", "add", str(csv), "-w", "credit-risk", "--target", "default")
    assert "unchanged" in out
    for sub in ("list", "show", "profile", "preview"):
        args = (
            ["data", sub, "-w", "credit-risk"]
            if sub == "list"
            else ["data", sub, "applicants", "-w", "credit-risk"]
        )
        code, out = run(capsys, *args)
        assert code == 0, out
    code, out = run(capsys, "data", "show", "applicants", "-w", "credit-risk")
    assert "email" in out and "pii" in out

    code, out = run(
        capsys,
        "train",
        "-w",
        "credit-risk",
        "-d",
        "applicants",
        "--target",
        "default",
        "--candidates",
        "logistic",
        "--trials",
        "2",
        "--model",
        "scorecard",
    )
    assert code == 0, out
    assert "registered" in out and "scorecard" in out

    code, out = run(capsys, "runs", "list", "-w", "credit-risk")
    assert "succeeded" in out
    match = re.search(r"\b([0-9a-f]{12})\b", out)
    assert match, out
    run_id = match.group(1)
    code, out = run(capsys, "runs", "show", run_id, "-w", "credit-risk")
    assert code == 0 and "auc" in out
    report = home / "r.html"
    code, out = run(capsys, "runs", "report", run_id, "-w", "credit-risk", "-o", str(report))
    assert code == 0 and report.read_text().startswith("<!DOCTYPE html>")

    code, out = run(capsys, "models", "list", "-w", "credit-risk")
    assert "scorecard" in out
    code, out = run(
        capsys,
        "models",
        "promote",
        "scorecard",
        "1",
        "staging",
        "-w",
        "credit-risk",
        "--reason",
        "reviewed by risk committee",
    )
    assert code == 0 and "staging" in out
    code, out = run(
        capsys, "models", "score", "scorecard", "1", "-w", "credit-risk", "-d", "applicants"
    )
    assert code == 0 and "applicants-scores" in out, out
    code, out = run(capsys, "models", "show", "scorecard", "-w", "credit-risk", "--card")
    assert "reviewed by risk committee" in out and "cli-user" in out and "Model card" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["workspace", "create", "../x"], "invalid workspace name"),
        (["data", "list", "-w", "nowhere"], "workspace 'nowhere' not found"),
        (["models", "promote", "m", "1", "staging", "-w", "nowhere", "--reason", "x"], "not found"),
        (["endpoint", "batch", "ep", "-w", "ws", "/no/such/file.csv"], "no such file"),
    ],
)
def test_errors_are_one_clear_line(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out = run(capsys, *args)
    assert code == 1
    assert message in out and "Traceback" not in out


def test_bad_file(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "workspace", "create", "ws")
    bad = home / "bad.csv"
    bad.write_bytes("name,amount\nJosé,1\n".encode("latin-1"))
    code, out = run(capsys, "data", "add", str(bad), "-w", "ws")
    assert code == 1 and "encoding" in out and "Traceback" not in out
    assert "[encoding]" in out or "error [" in out


def test_file_system_errors_are_one_clear_line(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, "workspace", "create", "ws")
    folder = home / "a-folder"
    folder.mkdir()
    code, out = run(capsys, "endpoint", "feedback", "ep", "-w", "ws", str(folder))
    assert code == 1 and "cannot read feedback file" in out and "Traceback" not in out
    csv = write_applicants_csv(home / "few.csv", n=50)
    code, out = run(capsys, "data", "add", str(csv), "-w", "ws", "--contract", str(folder))
    assert code == 1 and "is a folder" in out and "Traceback" not in out
    monkeypatch.setenv("LEPTONIC_HOME", "/etc/passwd")  # a file, not a folder
    code, out = run(capsys, "workspace", "list")
    assert code == 1 and "/etc/passwd" in out and "Traceback" not in out


def test_usage_error_exit_code(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "train", "-w", "ws")
    assert code == 2 and "Missing option" in out


def test_a_recommendation_endpoint_retrains_from_the_terminal(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from leptonic import Platform, Settings
    from leptonic.core.event import Event

    rows = [
        (f"u{u}", f"i{(u % 4) + 4 * ((u + j) % 10)}", 1_700_000_000 + 60 * j + u)
        for u in range(80)
        for j in range(10)
    ]
    path = home / "plays.csv"
    pd.DataFrame(rows, columns=["user", "item", "ts"]).to_csv(path, index=False)
    assert run(capsys, "workspace", "create", "shop")[0] == 0
    assert run(capsys, "data", "add", str(path), "-w", "shop")[0] == 0
    code, out = run(
        capsys,
        *("train", "-w", "shop", "-d", "plays", "--task", "recommendation", "--timestamp", "ts"),
        *("--candidates", "als", "--trials", "1", "--model", "plays"),
    )
    assert code == 0, out
    code, out = run(
        capsys, "endpoint", "create", "plays", "-w", "shop", "--model", "plays", "--version", "1"
    )
    assert code == 0, out
    code, out = run(capsys, "endpoint", "retrain", "plays", "-w", "shop", "--min-new-events", "2")
    assert code == 0 and "0 new event(s), fewer than 2: not retrained" in out
    now = datetime.now(UTC) - timedelta(minutes=2)  # settled: older than --settle default
    lp = Platform.open(Settings.from_environ())
    try:
        lp.metadata.append_events(
            [
                Event("shop", "plays", f"e{k}", f"u{k}", "i3", now, 1.0, "click", now)
                for k in range(2)
            ]
        )
    finally:
        lp.close()
    code, out = run(capsys, "endpoint", "retrain", "plays", "-w", "shop", "--min-new-events", "2")
    assert (
        code == 0
        and "on 2 new event(s) (dataset version 2): registered plays v2; now served" in out
    ), out
    code, out = run(capsys, "endpoint", "retrain", "plays", "-w", "shop", "--canary-percent", "10")
    assert code != 0 and "leave out --dataset and --canary-percent" in out
    prune = ("endpoint", "prune", "plays", "-w", "shop", "-r", "retention", "--older-than")
    code, out = run(capsys, *prune, "30")
    assert code == 0 and "deleted 0 prediction(s) logged more than 30 days ago" in out, out
    code, out = run(capsys, *prune, "0")
    assert code != 0 and "older_than_days must be a positive number of days" in out, out
