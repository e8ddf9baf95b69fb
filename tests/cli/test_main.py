"""The ``leptonic`` command, run in-process against a fresh home."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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
    # settled: older than the settle time; a double click, 15 ms apart, in one whole second
    now = (datetime.now(UTC) - timedelta(minutes=2)).replace(microsecond=100_000)
    later = now + timedelta(milliseconds=15)
    lp = Platform.open(Settings.from_environ())
    try:
        lp.metadata.append_events(
            [
                *(
                    Event("shop", "plays", f"e{k}", f"u{k}", "i3", now, 1.0, "click", now)
                    for k in range(2)
                ),
                Event("shop", "plays", "e2", "u0", "i3", later, 1.0, "click", later),
            ]
        )
    finally:
        lp.close()
    code, out = run(capsys, "endpoint", "retrain", "plays", "-w", "shop", "--min-new-events", "2")
    assert (
        code == 0
        and "on 3 new event(s) (1 merged into rows with the same user, item and time) "
        "(dataset version 2): registered plays v2; now served"
        in out
    ), out
    # events younger than the settle time wait for the next retrain, and it says so
    young = datetime.now(UTC)
    lp = Platform.open(Settings.from_environ())
    try:
        lp.metadata.append_events(
            [
                Event("shop", "plays", f"y{k}", "u1", f"i{k}", young, 1.0, "click", young)
                for k in range(2)
            ]
        )
    finally:
        lp.close()
    code, out = run(capsys, "endpoint", "retrain", "plays", "-w", "shop", "--min-new-events", "1")
    assert code == 0 and (
        "0 new event(s), fewer than 1: not retrained; 2 event(s) younger than 30 s are left "
        "for the next retrain" in out
    ), out
    code, out = run(capsys, "endpoint", "retrain", "plays", "-w", "shop", "--canary-percent", "10")
    assert code != 0 and "leave out --dataset and --canary-percent" in out
    prune = ("endpoint", "prune", "plays", "-w", "shop", "-r", "retention", "--older-than")
    code, out = run(capsys, *prune, "30")
    assert code == 0 and "deleted 0 prediction(s) logged more than 30 days ago" in out, out
    code, out = run(capsys, *prune, "0")
    assert code != 0 and "older_than_days must be a positive number of days" in out, out


def test_user_data_is_shown_as_it_is_not_read_as_markup(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "workspace", "create", "ws")
    notes = home / "notes.csv"
    notes.write_text("id,note\n1,[/b] closing tag\n2,[red]styled[/red] text\n", encoding="utf-8")
    assert run(capsys, "data", "add", str(notes), "-w", "ws")[0] == 0
    code, out = run(capsys, "data", "preview", "notes", "-w", "ws")
    assert code == 0 and "[/b] closing tag" in out and "[red]styled[/red] text" in out, out
    cols = home / "cols.csv"
    cols.write_text("id,[/x]note\n1,a\n2,b\n", encoding="utf-8")
    assert run(capsys, "data", "add", str(cols), "-w", "ws")[0] == 0
    for sub in ("show", "preview", "profile"):
        code, out = run(capsys, "data", sub, "cols", "-w", "ws")
        assert code == 0 and "[/x]note" in out, out


# -- endpoints ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with workspace ``ws``: dataset ``applicants``, model ``sc`` v1 and v2 and
    endpoint ``ep`` serving v1 (copied by ``endpoint_home`` for each test)."""
    from leptonic import Platform, Settings, TrainSpec

    folder = tmp_path_factory.mktemp("trained")
    csv = write_applicants_csv(folder / "applicants.csv", n=600)
    with Platform.open(Settings.for_home(folder / "home", "cli-user")) as lp:
        lp.create_workspace("ws")
        lp.add_data("ws", csv, target="default")
        for seed in (0, 1):
            spec = TrainSpec(target="default", candidates=("logistic",), trials=1, seed=seed)
            lp.train("ws", "applicants", spec, model_name="sc")
        lp.endpoints.create("ws", "ep", "sc", 1, entity_key="applicant_id")
    return folder


@pytest.fixture
def endpoint_home(home: Path, trained_home: Path) -> Path:
    """``home`` holding a copy of ``trained_home`` (LEPTONIC_HOME is ``home / "home"``)."""
    import shutil

    shutil.copytree(trained_home / "home", home / "home")
    shutil.copy(trained_home / "applicants.csv", home / "applicants.csv")
    return home


def _open_local() -> Any:
    from leptonic import Platform, Settings

    return Platform.open(Settings.from_environ())


def _record(home: Path) -> str:
    """The first applicant of ``applicants.csv`` as a decision request."""
    import json

    import pandas as pd

    with _open_local() as lp:
        names = lp.load_model("ws", "sc", 1).input_names
    row = pd.read_csv(home / "applicants.csv").iloc[0]
    fields = {k: (None if pd.isna(row[k]) else row[k]) for k in [*names, "applicant_id"]}
    return json.dumps(fields, default=lambda v: v.item())


def test_endpoint_batch_adds_a_file_as_a_dataset_of_its_own(
    endpoint_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incoming = endpoint_home / "incoming"
    csv = write_applicants_csv(incoming / "applicants.csv", n=300, seed=9)
    code, out = run(capsys, "endpoint", "batch", "ep", "-w", "ws", str(csv))
    assert code == 0, out
    assert "as dataset ep-batch-input v1 (300 rows)" in out
    assert "wrote dataset ep-batch-input-decisions v1: 300 rows" in out
    with _open_local() as lp:  # the training data has no new version
        assert [v.version for v in lp.dataset_versions("ws", "applicants")] == [1]
    code, out = run(
        capsys, "endpoint", "batch", "ep", "-w", "ws", "applicants", "--input-name", "x"
    )
    assert code == 1 and "--input-name is for a file" in out


def test_a_canary_percent_out_of_range_is_refused_before_training(
    endpoint_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        capsys, "endpoint", "retrain", "ep", "-w", "ws", "--canary-percent", "150", "-r", "x"
    )
    assert code == 1 and "[canary_percent]" in out
    assert "a canary takes from 0.01 to 99.99 percent" in out
    with _open_local() as lp:
        assert [v.version for v in lp.model_versions("ws", "sc")] == [1, 2]
        assert len(lp.list_runs("ws")) == 2


def test_a_policy_file_must_hold_an_object(
    endpoint_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = endpoint_home / "list.json"
    policy.write_text('[{"k": 5}]', encoding="utf-8")
    code, out = run(capsys, "endpoint", "policy", "ep", "-w", "ws", "--set", str(policy), "-r", "x")
    assert code == 1 and "holds a JSON list" in out and "Traceback" not in out
    code, out = run(
        capsys,
        "endpoint",
        "create",
        "ep2",
        "-w",
        "ws",
        "--model",
        "sc",
        "--version",
        "1",
        "--policy",
        str(policy),
    )
    assert code == 1 and "holds a JSON list" in out


def test_endpoint_decide_scores_the_shadow_too(
    endpoint_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    code, out = run(
        capsys,
        "endpoint",
        "shadow",
        "ep",
        "-w",
        "ws",
        "-r",
        "compare",
        "--model",
        "sc",
        "--version",
        "2",
    )
    assert code == 0, out
    code, out = run(capsys, "endpoint", "decide", "ep", "-w", "ws", _record(endpoint_home))
    assert code == 0, out
    answer = json.loads(out)
    with _open_local() as lp:
        live = lp.endpoints.predictions("ws", "ep", route="live")
        shadow = lp.endpoints.predictions("ws", "ep", route="shadow")
    assert [p.request_id for p in live] == [answer["request_id"]]
    assert [(p.request_id, p.version) for p in shadow] == [(answer["request_id"], 2)]


def test_the_prediction_log_shows_whole_request_ids(
    endpoint_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    record = _record(endpoint_home)
    ids = []
    for _ in range(3):
        code, out = run(capsys, "endpoint", "decide", "ep", "-w", "ws", record)
        assert code == 0, out
        ids.append(json.loads(out)["request_id"])
    # ids made in one instant share a long prefix: only the whole id names a prediction
    code, out = run(capsys, "endpoint", "predictions", "ep", "-w", "ws")
    assert code == 0 and all(request_id in out for request_id in ids), out
    monkeypatch.setenv("COLUMNS", "80")  # a narrow terminal wraps other columns, not ids
    code, out = run(capsys, "endpoint", "predictions", "ep", "-w", "ws")
    assert code == 0 and all(request_id in out for request_id in ids), out


def test_a_runs_report_into_a_folder_is_written_inside_it(
    endpoint_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _open_local() as lp:
        run_id = lp.list_runs("ws")[0].id
    folder = endpoint_home / "reports"
    folder.mkdir()
    code, out = run(capsys, "runs", "report", run_id, "-w", "ws", "-o", str(folder))
    assert code == 0, out
    assert [p.name for p in folder.iterdir()] == [f"report-{run_id[:12]}.html"]
    assert not list(endpoint_home.glob(".*.tmp"))


def test_endpoint_commands_talk_to_the_server_named_by_leptonic_url(
    endpoint_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from leptonic import Client, Platform, Settings
    from leptonic.api import create_app
    from leptonic.api.testing import serve_in_process

    record = _record(endpoint_home)
    lp = Platform.open(Settings.for_home(endpoint_home / "home", "setup"))
    lp.create_user("root", admin=True)
    _, secret = lp.create_token("root")
    app = create_app(lp.settings, platform=lp, workers=1, poll_interval=0.05)
    with serve_in_process(app) as transport:
        monkeypatch.setattr(
            Client,
            "from_settings",
            classmethod(lambda cls, s: cls(s.url or "", s.token, transport=transport)),
        )
        # the CLI's own home is empty: whatever it finds, it finds on the server
        monkeypatch.setenv("LEPTONIC_HOME", str(endpoint_home / "client-home"))
        monkeypatch.setenv("LEPTONIC_URL", "http://leptonic.test")
        monkeypatch.setenv("LEPTONIC_TOKEN", secret)
        code, out = run(capsys, "endpoint", "list", "-w", "ws")
        assert code == 0 and "ep" in out and "sc v1 100%" in out, out
        code, out = run(capsys, "endpoint", "show", "ep", "-w", "ws")
        assert code == 0 and "revision 1" in out and "bands" in out, out
        code, out = run(capsys, "endpoint", "decide", "ep", "-w", "ws", record)
        assert code == 0 and json.loads(out)["decision"] in {"approve", "review", "reject"}, out
        csv = write_applicants_csv(endpoint_home / "incoming" / "applicants.csv", n=200, seed=3)
        code, out = run(capsys, "endpoint", "batch", "ep", "-w", "ws", str(csv))
        assert code == 0 and "as dataset ep-batch-input v1 (200 rows)" in out, out
        assert "wrote dataset ep-batch-input-decisions v1: 200 rows" in out
        code, out = run(
            capsys, "endpoint", "retrain", "ep", "-w", "ws", "--canary-percent", "150", "-r", "x"
        )
        assert code == 1 and "a canary takes from 0.01" in out
        code, out = run(capsys, "endpoint", "serve", "ep", "-w", "ws")
        assert code == 1 and "works on local stores only" in out and "unset LEPTONIC_URL" in out
    try:
        assert {d.name for d in lp.list_datasets("ws")} >= {"ep-batch-input", "applicants"}
        assert [j.kind for j in lp.metadata.list_jobs("ws")] == ["decide"]  # no retrain queued
        assert [v.version for v in lp.model_versions("ws", "sc")] == [1, 2]
    finally:
        lp.close()
    assert not (endpoint_home / "client-home").exists()  # no local store was opened


def test_the_demo_writes_only_under_its_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from rich.console import Console

    import leptonic.demo as demo
    from leptonic import TrainSpec

    class Stop(Exception):
        pass

    written: list[Path] = []

    def support_messages(path: Path, **kwargs: Any) -> Path:
        written.append(Path(path))
        raise Stop  # the text model is not the point here

    def fast(**kwargs: Any) -> TrainSpec:
        return TrainSpec(target="default", candidates=("logistic",), trials=1, seed=0)

    monkeypatch.setattr(demo, "TrainSpec", fast)
    monkeypatch.setattr(demo, "write_support_messages_csv", support_messages)
    (tmp_path / "report.html").write_text("MY OWN REPORT", encoding="utf-8")
    home = tmp_path / "stores"
    with open(os.devnull, "w") as devnull, pytest.raises(Stop):
        demo.run_demo(home, rows=1000, console=Console(file=devnull))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "stores"]
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == "MY OWN REPORT"
    assert (home / "report.html").is_file() and (home / "monitoring.html").is_file()
    assert (home / "data" / "applicants.csv").is_file()
    assert written == [home.resolve() / "data" / "support_messages.csv"]
