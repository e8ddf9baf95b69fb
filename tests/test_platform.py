"""The whole credit lifecycle through the Python API, on every metadata backend
(and on PostgreSQL with S3 artifacts, the production pair)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from leptonic import (
    Conflict,
    DataError,
    InvalidInput,
    InvalidName,
    NotFound,
    ObjectRef,
    Platform,
    SchemaError,
    Settings,
    Stage,
    TrainSpec,
)
from leptonic.storage.artifacts.local import LocalArtifactStore
from leptonic.storage.registry import open_metadata_store
from leptonic.synthetic import write_applicants_csv

FAST = TrainSpec(target="default", candidates=("logistic", "lightgbm"), trials=4, timeout_s=20.0)


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("postgresql+s3", marks=pytest.mark.postgres),
    ]
)
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Platform]:
    env = {"LEPTONIC_HOME": str(tmp_path), "LEPTONIC_USER": "ana"}
    if request.param == "postgresql+s3":
        env["LEPTONIC_DB"] = request.getfixturevalue("postgres_db")
        env["LEPTONIC_ARTIFACTS"] = request.getfixturevalue("s3_uri")
        lp = Platform.open(Settings.from_environ(env))  # as a server reads its environment
        assert lp.artifacts.uri.startswith("s3://")
        yield lp
        lp.close()
        return
    if request.param == "memory":
        uri = "memory://"
    elif request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'leptonic.db'}"
    else:
        uri = request.getfixturevalue("postgres_db")
    lp = Platform(
        Settings.from_environ(env),
        metadata=open_metadata_store(uri),
        artifacts=LocalArtifactStore(tmp_path / "artifacts"),
    )
    yield lp
    lp.close()


@pytest.fixture(scope="module")
def applicants_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_applicants_csv(tmp_path_factory.mktemp("data") / "applicants.csv", n=2500)


def test_lifecycle(platform: Platform, applicants_csv: Path, tmp_path: Path) -> None:
    lp = platform
    lp.create_workspace("credit-risk", "retail credit")
    version, created = lp.add_data("credit-risk", applicants_csv, target="default")
    assert created and version.dataset == "applicants" and version.num_rows == 2500
    again, created_again = lp.add_data("credit-risk", applicants_csv, target="default")
    assert not created_again and again.version == version.version

    assert {"email", "phone", "full_name", "national_id"} <= set(version.pii)
    preview = lp.preview("credit-risk", "applicants", limit=5).to_pylist()
    raw = lp.preview("credit-risk", "applicants", limit=5, raw=True).to_pylist()
    assert preview[0]["email"] != raw[0]["email"] and "@" in raw[0]["email"]

    outcome = lp.train("credit-risk", "applicants", FAST, model_name="scorecard")
    run = lp.get_run("credit-risk", outcome.run.id[:10])
    assert run.status.value == "succeeded"
    assert run.metrics["test"]["auc"] > 0.7
    assert {"report.html", "log.txt", "scorecard.json", "leaderboard.json"} <= set(run.artifacts)
    for col in ("email", "phone", "full_name", "national_id"):
        assert col not in {i["name"] for i in outcome.model_version.signature["inputs"]}

    report = lp.write_report("credit-risk", run.id, tmp_path / "out" / "report.html")
    html = report.read_text()
    assert html.count("data:image/png;base64") >= 4 and "https://" not in html

    mv = outcome.model_version
    assert mv is not None and mv.stage == Stage.CANDIDATE
    lp.promote("credit-risk", "scorecard", mv.version, "staging", reason="validated")
    lp.promote("credit-risk", "scorecard", mv.version, "production", reason="go live")
    with pytest.raises(Conflict, match="cannot move"):
        lp.promote("credit-risk", "scorecard", mv.version, "candidate", reason="oops")
    history = lp.stage_history("credit-risk", "scorecard", mv.version)
    assert [(t.to_stage.value, t.actor) for t in history] == [
        ("candidate", "ana"),
        ("staging", "ana"),
        ("production", "ana"),
    ]
    assert history[-1].reason == "go live"

    predictor = lp.load_model("credit-risk", "scorecard", mv.version)
    assert lp.load_model("credit-risk", "scorecard", mv.version) is predictor  # loaded once
    p = predictor.predict_one(raw[0])
    assert isinstance(p, float) and 0 < p < 1

    # lineage both ways: dataset version → run → model version
    dv_ref = ObjectRef("credit-risk", "dataset", "applicants", version.version)
    down = [ref for _, ref in lp.lineage(dv_ref)]
    assert ObjectRef("credit-risk", "run", run.id) in down
    assert ObjectRef("credit-risk", "model", "scorecard", mv.version) in down
    up = [ref for _, ref in lp.lineage(str(down[-1]), "upstream")]
    assert dv_ref in up


def test_workspaces_are_isolated(platform: Platform, applicants_csv: Path) -> None:
    lp = platform
    lp.create_workspace("credit-risk")
    lp.create_workspace("fraud")
    lp.add_data("credit-risk", applicants_csv)
    with pytest.raises(NotFound):
        lp.dataset_version("fraud", "applicants")
    assert lp.list_datasets("fraud") == []


def test_bad_names_and_inputs(platform: Platform, tmp_path: Path) -> None:
    lp = platform
    with pytest.raises(InvalidName):
        lp.create_workspace("../../etc")
    lp.create_workspace("ws")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        lp.add_data("ws", empty, name="empty")
    with pytest.raises(InvalidName):
        lp.add_data("ws", empty, name="../escape")
    with pytest.raises(NotFound):
        lp.dataset_version("ws", "empty")
    with pytest.raises(NotFound, match="workspace"):
        lp.add_data("nope", empty)


def test_failed_training_is_recorded(platform: Platform, applicants_csv: Path) -> None:
    lp = platform
    lp.create_workspace("ws")
    lp.add_data("ws", applicants_csv)
    with pytest.raises(Exception, match="not binary"):
        lp.train("ws", "applicants", TrainSpec(target="late_payments_12m", trials=3))
    (run,) = lp.list_runs("ws")
    assert run.status.value == "failed" and "not binary" in (run.error or "")
    assert "not binary" in lp.run_artifact("ws", run.id, "log.txt").decode()


def test_run_id_prefixes(tmp_path: Path) -> None:
    from leptonic.core.run import Run, RunStatus
    from leptonic.storage.artifacts.memory import MemoryArtifactStore

    settings = Settings.from_environ({"LEPTONIC_HOME": str(tmp_path), "LEPTONIC_USER": "ana"})
    lp = Platform(
        settings, metadata=open_metadata_store("memory://"), artifacts=MemoryArtifactStore()
    )
    lp.create_workspace("ws")
    for run_id in ("ab" * 16, "ac" * 16):
        lp.metadata.create_run(Run(run_id, "ws", RunStatus.SUCCEEDED, {}, 0))
    assert lp.get_run("ws", "abab").id == "ab" * 16
    assert lp.get_run("ws", "ac" * 16).id == "ac" * 16
    with pytest.raises(InvalidInput, match="ambiguous"):
        lp.get_run("ws", "a")
    with pytest.raises(NotFound):
        lp.get_run("ws", "ff")
    # an empty id is no prefix of every run, even when only one run would match
    lp.create_workspace("solo")
    lp.metadata.create_run(Run("ef" * 16, "solo", RunStatus.SUCCEEDED, {}, 0))
    with pytest.raises(NotFound):
        lp.get_run("solo", "")


def test_batch_scoring(platform: Platform, applicants_csv: Path) -> None:
    lp = platform
    lp.create_workspace("ws")
    version, _ = lp.add_data("ws", applicants_csv, target="default")
    outcome = lp.train("ws", "applicants", FAST, model_name="scorecard")
    mv = outcome.model_version
    assert mv is not None
    predictor = lp.load_model("ws", "scorecard", mv.version)

    scored, created = lp.score("ws", "scorecard", mv.version, "applicants")
    assert created and scored.dataset == "applicants-scores"
    assert scored.num_rows == version.num_rows
    names = [c.name for c in scored.columns]
    assert names == ["applicant_id", "score", "decision"]  # ids and scores, no PII
    table = lp.preview("ws", "applicants-scores", limit=scored.num_rows, raw=True)
    raw = lp.preview("ws", "applicants", limit=version.num_rows, raw=True)
    import numpy as np

    np.testing.assert_allclose(table.column("score").to_numpy(), predictor.predict_batch(raw))
    assert table.column("applicant_id").to_pylist() == raw.column("applicant_id").to_pylist()
    threshold = predictor.threshold
    assert threshold is not None
    decisions = (table.column("score").to_numpy() >= threshold).astype(int)
    assert table.column("decision").to_pylist() == decisions.tolist()

    # lineage from both the input and the model; the source says what made it
    out = ObjectRef("ws", "dataset", "applicants-scores", scored.version)
    up = {ref for _, ref in lp.lineage(out, "upstream")}
    assert ObjectRef("ws", "dataset", "applicants", version.version) in up
    assert ObjectRef("ws", "model", "scorecard", mv.version) in up
    assert scored.source["path"].startswith("scored:leptonic://ws/model/scorecard/")
    assert [e.action for e in lp.audit_log(workspace="ws", limit=1)] == ["model.score"]

    # the same scores again are the same version
    again, created_again = lp.score("ws", "scorecard", mv.version, "applicants")
    assert not created_again and again.version == scored.version


def test_scoring_needs_the_model_inputs(
    platform: Platform, applicants_csv: Path, tmp_path: Path
) -> None:
    lp = platform
    lp.create_workspace("ws")
    lp.add_data("ws", applicants_csv, target="default")
    mv = lp.train("ws", "applicants", FAST, model_name="m").model_version
    assert mv is not None
    other = tmp_path / "other.csv"
    other.write_text("applicant_id,age\n1,40\n2,50\n", encoding="utf-8")
    lp.add_data("ws", other)
    with pytest.raises(SchemaError, match="lacks column"):
        lp.score("ws", "m", mv.version, "other")
    with pytest.raises(InvalidName):
        lp.score("ws", "m", mv.version, "applicants", output="../x")


def test_scoring_refuses_ids_named_like_scores(platform: Platform, tmp_path: Path) -> None:
    lp = platform
    lp.create_workspace("ws")
    csv = tmp_path / "d.csv"
    rows = "\n".join(f"{i},{i % 7},{(i * 3) % 5},{i % 2}" for i in range(200))
    csv.write_text("prediction,x1,x2,y\n" + rows + "\n", encoding="utf-8")
    contract = tmp_path / "c.toml"
    contract.write_text('target = "y"\n[roles]\nprediction = "id"\n', encoding="utf-8")
    lp.add_data("ws", csv, contract=contract)
    spec = TrainSpec(target="y", candidates=("logistic",), trials=1)
    mv = lp.train("ws", "d", spec, model_name="m").model_version
    assert mv is not None
    with pytest.raises(SchemaError, match="named like the score columns"):
        lp.score("ws", "m", mv.version, "d")
