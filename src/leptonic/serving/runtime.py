"""An endpoint loaded for serving: its versions in memory, its policy compiled.

:class:`EndpointRuntime` is what a request meets. It is built once per
endpoint revision (models come from the registry's in-memory cache) and is
immutable afterwards; a reload builds a new one and swaps it in, so a
request always sees one consistent revision.

The hot path, :meth:`EndpointRuntime.decide_json`: parse the body (orjson)
→ check it against the signature → pick the route → ``predict_one`` →
policy → reason codes (for adverse decisions) → queue the log record →
serialise the answer. No DataFrame, no I/O, no model loading.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from leptonic.core.endpoint import Endpoint, PolicyVersion, Prediction, Route
from leptonic.core.model_version import ModelVersion
from leptonic.errors import InvalidInput, NotFound
from leptonic.governance.pii import hash_value
from leptonic.registry.service import ModelRegistry
from leptonic.serving.policy import DecisionPolicy
from leptonic.serving.prediction_log import PredictionLogWriter
from leptonic.serving.reasons import Explainer
from leptonic.serving.requests import RequestSchema, entity_text, parse_json
from leptonic.serving.traffic import TrafficSplit
from leptonic.storage.metadata.base import MetadataStore
from leptonic.tasks.predictor import Predictor, TabularPredictor

__all__ = [
    "ONE_VERSION_KINDS",
    "EndpointRuntime",
    "OneVersionRuntime",
    "ServedVersion",
    "dataset_pii",
    "endpoint_pii",
    "load_runtime",
    "new_request_id",
]

logger = logging.getLogger(__name__)


_ID_PREFIX = os.urandom(7).hex()
_id_counter = itertools.count()


def new_request_id() -> str:
    """32 hex digits: the time in milliseconds, 56 random bits drawn once per
    process, and a counter.

    Time-ordered ids land at the end of the log's indexes (cheap inserts,
    close pages) and sort like the decisions; the per-process random part
    keeps them unique across processes, the counter within one (and no
    system call is made per request).
    """
    return f"{time.time_ns() // 1_000_000:012x}{_ID_PREFIX}{next(_id_counter) & 0xFFFFFF:06x}"


#: Policy kinds of endpoints that serve one version (no canary, no shadow).
ONE_VERSION_KINDS = frozenset({"recommendation", "text-classification"})


class OneVersionRuntime:
    """What the runtimes of recommendation and text endpoints share: one revision
    serving the primary route's version, with its policy version and log.

    Subclasses read ``policy.spec`` into their own ``policy``.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        policy: PolicyVersion,
        model_version: ModelVersion,
        predictor: Any,
        *,
        log: PredictionLogWriter | None,
        logging_on: bool,
    ) -> None:
        self.endpoint = endpoint
        self.workspace = endpoint.workspace
        self.name = endpoint.name
        self.revision = endpoint.revision
        self.policy_version = policy.version
        self.model_version = model_version
        self.model = model_version.model
        self.version = model_version.version
        self.predictor = predictor
        self.log = log if logging_on else None


@dataclass(frozen=True)
class ServedVersion:
    """One model version held in memory with its explainer.

    ``direct`` is the model itself when a record can be encoded once for both
    the score and the reason codes (a single model without projection).
    """

    model: str
    version: int
    predictor: Predictor
    explainer: Explainer
    direct: TabularPredictor | None = None


class EndpointRuntime:
    """One revision of an endpoint, ready to answer.

    Parameters
    ----------
    endpoint
        The endpoint record (its routes, shadow and entity key).
    policy
        The active policy version.
    live
        The served versions, in the order of ``endpoint.routes``.
    shadow
        The shadow version, if any.
    log
        Where decisions are queued for the prediction log (None: not logged).
    pii
        Input fields holding personal data → kind; they are hashed before logging.
    salt
        The workspace's PII salt.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        policy: PolicyVersion,
        live: list[ServedVersion],
        shadow: ServedVersion | None = None,
        *,
        log: PredictionLogWriter | None = None,
        pii: Mapping[str, str] | None = None,
        salt: str = "",
    ) -> None:
        if len(live) != len(endpoint.routes):
            raise InvalidInput("one served version per route is needed", field="routes")
        self.endpoint = endpoint
        self.workspace = endpoint.workspace
        self.name = endpoint.name
        self.revision = endpoint.revision
        self.policy_version = policy.version
        self.policy = DecisionPolicy.from_spec(policy.spec)
        self.live = live
        self.shadow = shadow
        self.split: TrafficSplit[ServedVersion] = TrafficSplit(
            live, [r.percent for r in endpoint.routes]
        )
        self.entity_key = endpoint.entity_key
        inputs: dict[str, dict[str, str]] = {}
        for served in [*live, *([shadow] if shadow else [])]:
            for spec in served.predictor.inputs:
                inputs.setdefault(spec["name"], dict(spec))
        extra = (
            [endpoint.entity_key]
            if endpoint.entity_key and endpoint.entity_key not in inputs
            else []
        )
        self.schema = RequestSchema(inputs.values(), extra=extra, entity=endpoint.entity_key)
        self.log = log
        self.pii = dict(pii or {})
        self.salt = salt
        self.top_k = self.policy.reasons
        #: Shadow scorings that failed (logged, never seen by the caller).
        self.shadow_failures = 0

    # -- helpers -------------------------------------------------------------
    def _masked(self, record: dict[str, Any]) -> dict[str, Any]:
        if not self.pii:
            return record
        out = dict(record)
        for name in self.pii:
            value = out.get(name)
            if value is not None:
                out[name] = hash_value(str(value), self.salt)
        return out

    def _masked_reasons(
        self, reasons: list[dict[str, Any]], explainer: Explainer
    ) -> list[dict[str, Any]]:
        """Reason codes for the log and batch output: the value of a PII feature (one a
        run was allowed to train on) becomes its salted hash, and its sentence is made
        again around the hash (bins named by position, not by the values they hold)."""
        if not self.pii or not reasons:
            return reasons
        out = []
        for reason in reasons:
            value = reason.get("value")
            name = reason.get("feature")
            if name in self.pii and value is not None and not reason.get("rule"):
                hashed = hash_value(str(value), self.salt)
                text = explainer.reason_text(str(name), value, hashed)
                reason = {**reason, "value": hashed, "text": text}
            out.append(reason)
        return out

    def _entity(self, record: Mapping[str, Any]) -> str | None:
        """The entity key's text as routed and logged (``42`` and ``42.0`` → ``"42"``),
        hashed when it is personal data; None without a key or a value."""
        key = self.entity_key
        if key is None:
            return None
        text = entity_text(record.get(key), key)
        if text is None:
            return None
        return hash_value(text, self.salt) if key in self.pii else text

    # -- the hot path ------------------------------------------------------------
    def decide(self, record: Any, *, started: float | None = None) -> dict[str, Any]:
        """Decide one request record (already parsed); returns the answer as a dict."""
        t0 = time.perf_counter() if started is None else started
        record = self.schema.check(record)
        entity = self._entity(record)
        served = self.split.pick(entity)
        direct = served.direct
        if direct is not None:  # encode once, for the score and for the reasons
            augmented = direct.with_aggregates(record)
            x = direct.encode_one(augmented, aggregated=True)
            score = float(direct.predict_vector(x))  # type: ignore[arg-type]
        else:
            score = float(served.predictor.predict_one(record))  # type: ignore[arg-type]
        if score - score != 0.0:  # NaN or infinite: no decision can rest on it
            raise _no_score(served)
        outcome = self.policy.decide(record, score)
        decision = outcome.decision
        reasons: list[dict[str, Any]]
        if outcome.rule is not None:
            reasons = [{"feature": outcome.rule_field, "text": outcome.rule, "rule": True}]
        elif outcome.adverse and self.top_k:
            reasons = served.explainer.reasons(
                record, self.top_k, encoded=(augmented, x) if direct is not None else None
            )
        else:
            reasons = []
        request_id = new_request_id()
        answer: dict[str, Any] = {
            "request_id": request_id,
            "decision": decision,
            "score": score,
            "model": served.model,
            "version": served.version,
            "policy_version": self.policy_version,
            "reasons": reasons,
        }
        if outcome.points is not None:
            answer["points"] = outcome.points
        log = self.log
        if log is not None:
            log.append(
                Prediction(
                    workspace=self.workspace,
                    endpoint=self.name,
                    request_id=request_id,
                    model=served.model,
                    version=served.version,
                    score=score,
                    decision=decision,
                    at=datetime.now(UTC),
                    route="live",
                    policy_version=self.policy_version,
                    entity=entity,
                    inputs=self._masked(record),
                    reasons=_finite(self._masked_reasons(reasons, served.explainer)),
                    latency_ms=(time.perf_counter() - t0) * 1000.0,
                )
            )
        return answer

    def decide_json(self, body: bytes) -> tuple[bytes, dict[str, Any]]:
        """Parse, decide and serialise; returns the response body and the record
        (for :meth:`score_shadow`)."""
        t0 = time.perf_counter()
        record = parse_json(body)
        answer = self.decide(record, started=t0)
        return orjson.dumps(answer), record

    def decide_table(self, table: Any, scores: Any) -> dict[str, Any]:
        """Policy decisions and reason codes for a batch already scored by the
        primary version (batch scoring): ``decision``, ``reasons`` (JSON text)
        and ``policy_version`` columns."""
        import pyarrow as pa

        served = self.live[0]
        decisions: list[str] = []
        reasons: list[str] = []
        for record, score in zip(table.to_pylist(), scores, strict=True):
            outcome = self.policy.decide(record, float(score))
            if outcome.rule is not None:
                why: list[dict[str, Any]] = [
                    {"feature": outcome.rule_field, "text": outcome.rule, "rule": True}
                ]
            elif outcome.adverse and self.top_k:
                why = served.explainer.reasons(record, self.top_k)
            else:
                why = []
            decisions.append(outcome.decision)
            reasons.append(orjson.dumps(self._masked_reasons(why, served.explainer)).decode())
        return {
            "decision": pa.array(decisions, pa.string()),
            "reasons": pa.array(reasons, pa.string()),
            "policy_version": pa.array([self.policy_version] * len(decisions), pa.int32()),
        }

    def score_shadow(self, record: dict[str, Any], request_id: str) -> bool:
        """Score the shadow version for a request already answered, and log it.

        A shadow never changes what live traffic gets: its failure (an error of
        the shadow model, a score that is not a number) is logged with the
        request id and counted in :attr:`shadow_failures`, not raised. Returns
        whether the shadow was scored and logged.
        """
        shadow = self.shadow
        if shadow is None or self.log is None:
            return False
        try:
            t0 = time.perf_counter()
            score = float(shadow.predictor.predict_one(record))  # type: ignore[arg-type]
            if score - score != 0.0:
                raise _no_score(shadow)
            outcome = self.policy.decide(record, score)
            prediction = Prediction(
                workspace=self.workspace,
                endpoint=self.name,
                request_id=request_id,
                model=shadow.model,
                version=shadow.version,
                score=score,
                decision=outcome.decision,
                at=datetime.now(UTC),
                route="shadow",
                policy_version=self.policy_version,
                entity=self._entity(record),
                inputs=self._masked(record),
                reasons=[],
                latency_ms=(time.perf_counter() - t0) * 1000.0,
            )
        except Exception:
            self.shadow_failures += 1
            logger.exception(
                "endpoint %s: the shadow %s v%d failed on request %s (the live answer stands)",
                self.name,
                shadow.model,
                shadow.version,
                request_id,
            )
            return False
        self.log.append(prediction)
        return True


def _no_score(served: ServedVersion) -> InvalidInput:
    return InvalidInput(
        f"{served.model} v{served.version} gave no finite score for this record (an "
        "input far outside the training range can do that); check the inputs' values",
        field="body",
    )


def _finite(reasons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reason codes as the log can store them: a non-finite float (an overflowing
    aggregate of extreme inputs) becomes None. The explainer already does this; a
    reason from elsewhere is checked here, and a clean list is returned as it is."""
    for reason in reasons:
        for value in reason.values():
            if isinstance(value, float) and value - value != 0.0:
                return [
                    {
                        k: None if isinstance(v, float) and not math.isfinite(v) else v
                        for k, v in r.items()
                    }
                    for r in reasons
                ]
    return reasons


def _served(
    registry: ModelRegistry, workspace: str, route: Route, tree_reasons: str = "shap"
) -> ServedVersion:
    predictor = registry.load(workspace, route.model, route.version)
    if predictor.task != "binary":
        raise InvalidInput(
            f"{route.model} v{route.version} is a {predictor.task} model; decision endpoints "
            "serve binary models (a probability of the bad outcome)",
            field="routes",
        )
    explainer = Explainer(predictor, tree_method=tree_reasons)
    return ServedVersion(route.model, route.version, predictor, explainer, explainer.direct)


def load_runtime(
    metadata: MetadataStore,
    registry: ModelRegistry,
    workspace: str,
    name: str,
    *,
    log: PredictionLogWriter | None = None,
) -> EndpointRuntime:
    """Build the runtime of an endpoint's current revision (models from the registry cache)."""
    endpoint = metadata.get_endpoint(workspace, name)
    policy = metadata.get_policy_version(workspace, name, endpoint.policy_version)
    kind = policy.spec.get("kind")
    if kind in ONE_VERSION_KINDS:
        raise InvalidInput(
            f"endpoint {name!r} is a {kind} endpoint, not a decision endpoint; serve it with "
            f"`leptonic endpoint serve {name}`",
            field="endpoint",
        )
    method = str(policy.spec.get("tree_reasons", "shap"))
    live = [_served(registry, workspace, r, method) for r in endpoint.routes]
    shadow = _served(registry, workspace, endpoint.shadow, method) if endpoint.shadow else None
    pii = endpoint_pii(metadata, endpoint)
    salt = metadata.get_workspace(workspace).pii_salt
    return EndpointRuntime(endpoint, policy, live, shadow, log=log, pii=pii, salt=salt)


def endpoint_pii(metadata: MetadataStore, endpoint: Endpoint) -> dict[str, str]:
    """The inputs (name → kind) the runtime hashes before logging them: the PII
    columns of the datasets of every version the endpoint serves (routes, shadow)."""
    pii: dict[str, str] = {}
    for route in [*endpoint.routes, *([endpoint.shadow] if endpoint.shadow else [])]:
        mv = metadata.get_model_version(endpoint.workspace, route.model, route.version)
        pii.update(dataset_pii(metadata, mv.dataset))
    return pii


def dataset_pii(metadata: MetadataStore, dataset_ref: str) -> dict[str, str]:
    """The PII columns (name → kind) of a dataset version, which the runtime hashes
    in the logged inputs; empty when the version is gone."""
    from leptonic.core.uri import ObjectRef

    ref = ObjectRef.parse(dataset_ref)
    try:
        dv = metadata.get_dataset_version(ref.workspace, ref.name, ref.version)
    except NotFound:
        return {}
    return dv.pii
