"""The decision runtime: extreme inputs answered and logged, entity keys checked and
normalised, a shadow's failure never reaching the live answer."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import orjson
import pyarrow as pa
import pytest

from leptonic.core.endpoint import Endpoint, PolicyVersion, Route
from leptonic.errors import InvalidInput
from leptonic.serving.prediction_log import PredictionLogWriter
from leptonic.serving.reasons import Explainer
from leptonic.serving.runtime import EndpointRuntime, ServedVersion, _finite
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.storage.metadata.memory import MemoryMetadataStore
from leptonic.synthetic import applicants
from leptonic.tasks._data import load_training_data
from leptonic.tasks.spec import TrainSpec
from leptonic.tasks.tabular import train_tabular
from support import make_version, with_endpoint

#: Every decision but the first band's is adverse: nearly all get reason codes.
POLICY = {"bands": [{"decision": "approve", "max": 1e-9}, {"decision": "reject"}], "reasons": 20}


@pytest.fixture(scope="module")
def served() -> ServedVersion:
    table = applicants(1500, seed=3)
    artifacts = MemoryArtifactStore()
    version = make_version(pa.Table.from_pylist(table.to_pylist()), artifacts, "applicants")
    spec = TrainSpec(target="default", candidates=("logistic",), trials=1, timeout_s=None)
    predictor = train_tabular(load_training_data(version, artifacts, spec), spec).predictor
    explainer = Explainer(predictor)
    return ServedVersion("m", 1, predictor, explainer, explainer.direct)


@pytest.fixture(scope="module")
def record(served: ServedVersion) -> dict[str, Any]:
    row = applicants(5, seed=4).to_pylist()[0]
    return {name: row[name] for name in served.predictor.input_names}  # type: ignore[attr-defined]


def _runtime(
    served: ServedVersion,
    log: PredictionLogWriter | None = None,
    *,
    routes: tuple[Route, ...] = (Route("m", 1, 100.0),),
    live: list[ServedVersion] | None = None,
    shadow: ServedVersion | None = None,
) -> EndpointRuntime:
    endpoint = Endpoint("ws", "ep", routes, entity_key="applicant_id")
    policy = PolicyVersion("ws", "ep", 1, POLICY)
    return EndpointRuntime(endpoint, policy, live or [served], shadow, log=log)


def _logged(store: MemoryMetadataStore, request_id: str) -> Any:
    return store.get_prediction("ws", "ep", request_id)


@pytest.mark.parametrize(
    "extreme",
    [
        {"utilization_m6": 1e200},  # the reviewer's case: the std of the six overflows
        {"utilization_m6": -1e200},
        {f"utilization_m{m}": -1e308 for m in range(1, 7)} | {"annual_income": -1e308},
    ],
)
def test_an_extreme_input_is_answered_and_logged(
    served: ServedVersion, record: dict[str, Any], extreme: dict[str, float]
) -> None:
    store = with_endpoint(MemoryMetadataStore())
    log = PredictionLogWriter(store, interval=10.0)
    runtime = _runtime(served, log)
    body, _ = runtime.decide_json(orjson.dumps({**record, **extreme, "applicant_id": "A-1"}))
    answer = orjson.loads(body)
    log.close()
    assert log.spilled == 0 and log.dropped == 0
    logged = _logged(store, answer["request_id"])  # stored, not refused
    assert logged.decision == answer["decision"] and math.isfinite(logged.score)
    json.dumps([logged.inputs, logged.reasons], allow_nan=False)
    assert logged.reasons == answer["reasons"]
    for reason in answer["reasons"]:
        assert "inf" not in reason["text"].split(" raises")[0].split(" is in bin")[0].split()
    if "utilization_m6" in extreme and len(extreme) == 1:
        std = {r["feature"]: r for r in answer["reasons"]}.get("utilization_m__std")
        assert std is not None and std["value"] is None and "too large to show" in std["text"]


def test_a_score_that_is_not_a_number_is_refused(
    served: ServedVersion, record: dict[str, Any]
) -> None:
    runtime = _runtime(
        served, live=[ServedVersion("m", 1, _Scores(served, math.nan), served.explainer)]
    )
    with pytest.raises(InvalidInput, match="no finite score") as info:
        runtime.decide({**record, "applicant_id": "A-1"})
    assert info.value.field == "body"


def test_reasons_from_elsewhere_are_made_finite_for_the_log() -> None:
    clean = [{"feature": "x", "value": 1.5, "contribution": 0.2, "text": "x"}]
    assert _finite(clean) is clean
    dirty = [{"feature": "x", "value": math.inf, "contribution": math.nan, "text": "x"}]
    assert _finite(dirty) == [{"feature": "x", "value": None, "contribution": None, "text": "x"}]


@pytest.mark.parametrize(
    ("entity", "words"),
    [
        ("a\x00b", "'\\x00' at position 1"),
        ("line\nbreak", "'\\n' at position 4"),
        ("tab\there", "control characters"),
        ("c1\x85", "control characters"),
        ({"x": 1}, "got an object"),
        ([1, 2], "got an array"),
        (True, "got a boolean"),
        (42.5, "got the number 42.5"),
    ],
)
def test_a_bad_entity_key_is_a_422_naming_the_field(
    served: ServedVersion, record: dict[str, Any], entity: Any, words: str
) -> None:
    store = with_endpoint(MemoryMetadataStore())
    log = PredictionLogWriter(store, interval=10.0)
    runtime = _runtime(served, log)
    with pytest.raises(InvalidInput, match="entity key") as info:
        runtime.decide_json(orjson.dumps({**record, "applicant_id": entity}))
    assert info.value.field == "applicant_id"
    assert words in str(info.value)
    log.close()
    assert log.written == 0 and log.spilled == 0  # nothing was answered, nothing logged


def test_entity_keys_are_normalised_routed_and_logged_alike(
    served: ServedVersion, record: dict[str, Any]
) -> None:
    store = with_endpoint(MemoryMetadataStore())
    log = PredictionLogWriter(store, interval=10.0)
    runtime = _runtime(served, log)
    ids = {}
    for entity in (42, 42.0, "42", None, "C-1"):
        body, _ = runtime.decide_json(orjson.dumps({**record, "applicant_id": entity}))
        ids[repr(entity)] = orjson.loads(body)["request_id"]
    log.close()
    entities = {k: _logged(store, rid).entity for k, rid in ids.items()}
    assert entities == {"42": "42", "42.0": "42", "'42'": "42", "None": None, "'C-1'": "C-1"}
    # a canary split sends an entity to one route, whichever way its key is written
    canary = ServedVersion("m", 2, served.predictor, served.explainer, served.direct)
    split = _runtime(
        served, routes=(Route("m", 1, 50.0), Route("m", 2, 50.0)), live=[served, canary]
    )
    for i in range(40):
        versions = {
            split.decide({**record, "applicant_id": key})["version"]
            for key in (i, float(i), str(i))
        }
        assert len(versions) == 1


def test_a_failing_shadow_is_logged_counted_and_never_raised(
    served: ServedVersion, record: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    store = with_endpoint(MemoryMetadataStore())
    log = PredictionLogWriter(store, interval=10.0)
    broken = ServedVersion(
        "m", 2, _Scores(served, RuntimeError("shadow model broke")), served.explainer
    )
    runtime = _runtime(served, log, shadow=broken)
    body, parsed = runtime.decide_json(orjson.dumps({**record, "applicant_id": "A-1"}))
    request_id = orjson.loads(body)["request_id"]
    with caplog.at_level(logging.ERROR, logger="leptonic.serving.runtime"):
        assert runtime.score_shadow(parsed, request_id) is False
    assert runtime.shadow_failures == 1
    assert request_id in caplog.text and "shadow model broke" in caplog.text
    not_a_number = ServedVersion("m", 2, _Scores(served, math.nan), served.explainer)
    runtime.shadow = not_a_number
    assert runtime.score_shadow(parsed, request_id) is False
    assert runtime.shadow_failures == 2
    log.close()
    assert _logged(store, request_id).route == "live"
    assert store.list_predictions("ws", "ep", route="shadow", limit=None) == []


class _Scores:
    """A predictor with the signature of ``served`` that returns ``outcome`` (or raises it)."""

    def __init__(self, served: ServedVersion, outcome: float | Exception) -> None:
        self.inputs = served.predictor.inputs
        self.task = "binary"
        self.outcome = outcome

    def predict_one(self, record: Any) -> float:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome
