"""Text endpoints: a text classifier answering in real time, with dynamic micro-batching.

A ``text-classification`` model version (intents, sentiment) is served behind
an endpoint whose policy is a :class:`TextPolicy`: how many classes to list
(``top_k``), a confidence floor below which the answer is ``uncertain``
(hand the conversation to a person), and how requests are batched. Requests
from many concurrent callers are gathered by one
:class:`~leptonic.serving.batching.MicroBatcher` (up to ``max_batch_size``
texts or ``max_wait_ms`` milliseconds) into a single forward pass. A
multi-label model's answers also list ``labels``: every label from the model's
threshold up; its decision is those labels joined by ``|`` (``uncertain_label``
when there is none).

:class:`TextRuntime` is one endpoint revision (model in memory, policy read);
:class:`TextHost` owns the runtime, the batcher, the prediction log writer and
the reload thread of one serving process. Served answers are logged with the
text's salted hash and length, not the text itself, unless the policy's
``log_text`` says otherwise: free text carries names, card numbers and the
like.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from leptonic.core.endpoint import Endpoint, PolicyVersion, Prediction
from leptonic.core.model_version import ModelVersion
from leptonic.errors import InvalidInput, MissingExtra
from leptonic.governance.pii import hash_value
from leptonic.serving.batching import MicroBatcher
from leptonic.serving.host import ReloadingHost, open_prediction_log, settle_memory
from leptonic.serving.prediction_log import PredictionLogWriter
from leptonic.serving.runtime import OneVersionRuntime, new_request_id
from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.storage.metadata.base import MetadataStore

__all__ = [
    "TEXT_CLASSIFICATION",
    "TextHost",
    "TextPolicy",
    "TextRuntime",
    "load_text_version",
    "text_policy",
]

logger = logging.getLogger(__name__)

TEXT_CLASSIFICATION = "text-classification"
RUNTIMES = ("torch", "onnx")
PRECISIONS = ("fp32", "bf16", "auto")
_REQUEST_FIELDS = frozenset({"text", "texts", "top_k", "probabilities"})
_EXAMPLE = '{"text": "my card has not arrived", "top_k": 3}'


def _bad(name: str, what: str) -> InvalidInput:
    return InvalidInput(f"policy field {name!r} {what}", field=f"policy.{name}")


def _whole(spec: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(name, f"must be a whole number from {low} to {high}, got {value!r}")
    return value


@dataclass(frozen=True)
class TextPolicy:
    """How a text endpoint answers, batches and logs.

    Parameters
    ----------
    top_k
        Classes listed per answer when the request names no ``top_k``.
    max_top_k
        The largest ``top_k`` a request may ask for.
    min_confidence
        With a value, an answer whose best probability is below it gets the
        decision ``uncertain_label`` instead of the class (route it to a person);
        for a multi-label model, instead of its labels (still listed in ``labels``).
    uncertain_label
        The decision of such an answer.
    max_texts
        Most texts in one request (``{"texts": [...]}``); at most ``max_queue``.
    max_batch_size, max_wait_ms, max_queue
        The micro-batcher: most texts per forward pass, longest wait of the
        first text for others, most texts waiting before requests get 503. A
        new policy changes the first two at once, ``max_queue`` on a restart.
    runtime, precision
        ``torch`` or ``onnx`` (exported at load, checked against torch);
        ``fp32``, ``bf16`` (torch autocast: faster on CPUs with bf16 units and
        on GPUs, about 1e-2 off fp32 in probability) or ``auto`` (``bf16`` where
        the serving machine runs it natively, else ``fp32``; ``fp32`` for onnx).
        The default stays ``fp32``: the same answers on every machine.
    log
        Write served answers to the prediction log.
    log_text
        Log the text itself; by default only its salted hash and length.
    """

    top_k: int = 3
    max_top_k: int = 20
    min_confidence: float | None = None
    uncertain_label: str = "uncertain"
    max_texts: int = 64
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 1024
    runtime: str = "torch"
    precision: str = "fp32"
    log: bool = True
    log_text: bool = False

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> TextPolicy:
        """Read (and check) a policy spec; None gives the defaults."""
        if spec is None:
            return cls()
        if not isinstance(spec, Mapping):
            raise InvalidInput(
                "a text policy must be a JSON object like "
                '{"kind": "text-classification", "top_k": 3}',
                field="policy",
            )
        spec = dict(spec)
        kind = spec.pop("kind", TEXT_CLASSIFICATION)
        if kind != TEXT_CLASSIFICATION:
            raise _bad(
                "kind", f"is {kind!r}; a text endpoint's policy kind is 'text-classification'"
            )
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(spec) - known)
        if unknown:
            raise _bad(unknown[0], f"is not a text policy field; use {sorted(known)}")
        max_top_k = _whole(spec, "max_top_k", 20, 1, 1000)
        top_k = _whole(spec, "top_k", min(3, max_top_k), 1, max_top_k)
        floor = spec.get("min_confidence")
        if floor is not None and (
            isinstance(floor, bool)
            or not isinstance(floor, int | float)
            or not 0.0 <= floor <= 1.0  # no float(): an int beyond floats overflows
        ):
            raise _bad(
                "min_confidence", f"must be a probability from 0 to 1 or null, got {floor!r}"
            )
        uncertain = spec.get("uncertain_label", "uncertain")
        if not isinstance(uncertain, str) or not uncertain.strip() or len(uncertain) > 100:
            raise _bad("uncertain_label", f"must be a short non-empty name, got {uncertain!r}")
        wait = spec.get("max_wait_ms", 5.0)
        if (
            isinstance(wait, bool)
            or not isinstance(wait, int | float)
            or not 0 <= wait <= 1000  # also refuses NaN and infinities
        ):
            raise _bad(
                "max_wait_ms", f"must be a number of milliseconds from 0 to 1000, got {wait!r}"
            )
        runtime = spec.get("runtime", "torch")
        if runtime not in RUNTIMES:
            raise _bad("runtime", f"is {runtime!r}; use one of {', '.join(RUNTIMES)}")
        precision = spec.get("precision", "fp32")
        if precision not in PRECISIONS:
            raise _bad("precision", f"is {precision!r}; use one of {', '.join(PRECISIONS)}")
        if runtime == "onnx" and precision == "bf16":
            raise _bad("precision", "must be 'fp32' or 'auto' with the onnx runtime")
        flags = {}
        for name in ("log", "log_text"):
            value = spec.get(name, getattr(cls, name))
            if not isinstance(value, bool):
                raise _bad(name, f"must be true or false, got {value!r}")
            flags[name] = value
        max_texts = _whole(spec, "max_texts", 64, 1, 10_000)
        max_queue = _whole(spec, "max_queue", 1024, 1, 1_000_000)
        if max_texts > max_queue:
            raise _bad(
                "max_texts",
                f"is {max_texts}, more than max_queue ({max_queue}): a request of that many "
                "texts could never be queued; lower max_texts or raise max_queue",
            )
        return cls(
            top_k=top_k,
            max_top_k=max_top_k,
            min_confidence=None if floor is None else float(floor),
            uncertain_label=uncertain.strip(),
            max_texts=max_texts,
            max_batch_size=_whole(spec, "max_batch_size", 32, 1, 1024),
            max_wait_ms=float(wait),
            max_queue=max_queue,
            runtime=runtime,
            precision=precision,
            **flags,
        )

    def to_spec(self) -> dict[str, Any]:
        """The JSON form stored as the endpoint's policy version."""
        return {"kind": TEXT_CLASSIFICATION, **asdict(self)}


def text_policy(spec: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A checked text policy spec, defaults filled in."""
    return TextPolicy.from_spec(spec).to_spec()


def load_text_version(
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    workspace: str,
    model: str,
    version: int,
    *,
    runtime: str = "torch",
    precision: str = "fp32",
) -> tuple[ModelVersion, Any, tempfile.TemporaryDirectory[str] | None]:
    """A model version, its verified predictor for ``runtime`` and ``precision``,
    and the folder holding an ONNX export (None for torch; remove it when done).

    Raises
    ------
    InvalidInput
        Not a text model, or an ONNX export that is impossible (TF-IDF) or
        does not match torch.
    MissingExtra
        The ``text`` extra is not installed.
    """
    mv = metadata.get_model_version(workspace, model, version)
    if mv.task != TEXT_CLASSIFICATION:
        raise InvalidInput(
            f"{model} v{version} is a {mv.task} model; text endpoints serve "
            f"{TEXT_CLASSIFICATION} models",
            field="model",
        )
    try:
        from leptonic.tasks.textcls import load_text_predictor
        from leptonic.tasks.textcls.onnx import export_onnx
    except ImportError as exc:
        raise MissingExtra(exc.name or "torch", "text", "serving text models") from None
    predictor = load_text_predictor(artifacts, mv.artifact_key, mv.artifact_digest)
    if runtime == "onnx":
        folder = tempfile.TemporaryDirectory(prefix="leptonic-onnx-")
        try:
            exported = export_onnx(predictor, Path(folder.name) / "model.onnx")
        except BaseException:
            folder.cleanup()
            raise
        return mv, exported, folder
    if predictor.net is not None:
        if precision == "auto":
            from leptonic.tasks.textcls._runtime import pick_precision

            precision = pick_precision("auto", predictor._device)
        predictor.precision = precision
    return mv, predictor, None


class TextRuntime(OneVersionRuntime):
    """One revision of a text endpoint, ready to answer.

    Parameters
    ----------
    endpoint, policy
        The endpoint record (its primary route is served) and its active policy.
    model_version, predictor
        The served version and its loaded predictor.
    log
        Where answers are queued (None: not logged).
    salt
        The workspace's PII salt (for the logged text hash).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        policy: PolicyVersion,
        model_version: ModelVersion,
        predictor: Any,
        *,
        log: PredictionLogWriter | None = None,
        salt: str = "",
    ) -> None:
        self.policy = TextPolicy.from_spec(policy.spec)
        super().__init__(
            endpoint, policy, model_version, predictor, log=log, logging_on=self.policy.log
        )
        self.classes: list[str] = list(predictor.classes)
        self.multi_label = bool(getattr(predictor, "multi_label", False))
        self.salt = salt

    @property
    def loaded_as(self) -> tuple[str, int, str, str]:
        """What the predictor was loaded as: model, version, runtime, precision."""
        return (self.model, self.version, self.policy.runtime, self.policy.precision)

    def parse(self, record: Any) -> tuple[list[str], int, bool, bool]:
        """A request body → (texts, top_k, one text?, probabilities wanted?).

        Raises
        ------
        InvalidInput
            Naming the field: not an object, unknown fields, ``text`` and
            ``texts`` both or neither, an empty or too long text, too many
            texts, a bad ``top_k``.
        """
        from leptonic.tasks.textcls._data import check_texts

        if not isinstance(record, dict):
            raise InvalidInput(f"send a JSON object like {_EXAMPLE}", field="body")
        unknown = sorted(set(record) - _REQUEST_FIELDS)
        if unknown:
            raise InvalidInput(
                f"unknown field {unknown[0]!r}; a request has {sorted(_REQUEST_FIELDS)}",
                field=unknown[0],
            )
        if ("text" in record) == ("texts" in record):
            raise InvalidInput(
                f"give either 'text' (one) or 'texts' (a list), e.g. {_EXAMPLE}", field="text"
            )
        max_chars = int(getattr(self.predictor, "max_chars", 20_000))
        if "text" in record:
            if not isinstance(record["text"], str):
                raise InvalidInput(
                    f"text must be a string, got {_kind(record['text'])}", field="text"
                )
            texts = check_texts([record["text"]], max_chars=max_chars, field="text")
            single = True
        else:
            value = record["texts"]
            if not isinstance(value, list) or not value:
                raise InvalidInput("texts must be a non-empty list of strings", field="texts")
            if len(value) > self.policy.max_texts:
                raise InvalidInput(
                    f"{len(value)} texts in one request, more than the {self.policy.max_texts} "
                    "allowed; split them over several requests",
                    field="texts",
                )
            texts = check_texts(value, max_chars=max_chars, field="texts")
            single = False
        cap = min(self.policy.max_top_k, len(self.classes))
        # the policy's top_k, at most this model's classes (a 2-class model under the
        # default 3); one asked for is checked
        top_k = record["top_k"] if "top_k" in record else min(self.policy.top_k, cap)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= cap:
            raise InvalidInput(
                f"top_k must be a whole number from 1 to {cap}, got {top_k!r}", field="top_k"
            )
        wanted = record.get("probabilities", False)
        if not isinstance(wanted, bool):
            raise InvalidInput(
                f"probabilities must be true or false, got {_kind(wanted)}", field="probabilities"
            )
        return texts, top_k, single, wanted

    def predict(self, texts: Sequence[str]) -> list[tuple[TextRuntime, np.ndarray]]:
        """Probabilities of each text, paired with this runtime (the batcher's call)."""
        rows = self.predictor.predict_batch(list(texts))
        return [(self, row) for row in rows]

    def answer(
        self, text: str, p: np.ndarray, top_k: int, probabilities: bool, started: float
    ) -> dict[str, Any]:
        """The JSON answer for one text's probabilities; logs it."""
        order = np.argsort(-p, kind="stable")[:top_k]
        best = int(order[0])
        label = self.classes[best]
        confidence = float(p[best])
        floor = self.policy.min_confidence
        decision = (
            self.policy.uncertain_label if floor is not None and confidence < floor else label
        )
        request_id = new_request_id()
        ranked = [{"label": self.classes[i], "probability": float(p[i])} for i in order]
        out: dict[str, Any] = {
            "request_id": request_id,
            "label": label,
            "probability": confidence,
            "decision": decision,
            "top_k": ranked,
            "model": self.model,
            "version": self.version,
            "policy_version": self.policy_version,
        }
        if self.multi_label:  # every label from the model's threshold up, most probable first
            given = self.predictor.given_labels(p)
            out["labels"] = given
            # the decision: those labels joined, or uncertain when none reaches the
            # threshold or the best is below the policy's floor
            sure = bool(given) and (floor is None or confidence >= floor)
            decision = "|".join(given) if sure else self.policy.uncertain_label
            out["decision"] = decision
        if probabilities:
            out["probabilities"] = {c: float(v) for c, v in zip(self.classes, p, strict=True)}
        log = self.log
        if log is not None:
            inputs: dict[str, Any] = {"chars": len(text)}
            if self.multi_label:  # watched by monitoring (leptonic.monitoring.text)
                inputs["n_labels"] = len(out["labels"])
            if self.policy.log_text:
                inputs["text"] = text
            else:
                inputs["text_hash"] = hash_value(text, self.salt)
            log.append(
                Prediction(
                    workspace=self.workspace,
                    endpoint=self.name,
                    request_id=request_id,
                    model=self.model,
                    version=self.version,
                    score=confidence,
                    decision=decision,
                    at=datetime.now(UTC),
                    route="live",
                    policy_version=self.policy_version,
                    inputs=inputs,
                    reasons=ranked,
                    latency_ms=(time.perf_counter() - started) * 1000.0,
                )
            )
        return out


def _kind(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


Loader = Callable[[str, int, str, str], tuple[ModelVersion, Any, Any]]


class TextHost(ReloadingHost):
    """One text endpoint served by this process.

    Parameters
    ----------
    metadata, artifacts
        Where the endpoint, its model versions and its log live.
    workspace, name
        The endpoint.
    reload_interval
        Seconds between checks for a newer revision (0: never check).
    spill_dir
        Where log records the store refuses are kept (JSON lines).
    separate_writer
        Write the prediction log from a child process (SQL stores only).
    loader
        ``(model, version, runtime, precision) → (version record, predictor,
        folder to clean up or None)``; by default :func:`load_text_version`.

    The batcher starts on the serving event loop (:meth:`start`, done by the
    app's lifespan or by the first request) and stops in :meth:`stop`.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        workspace: str,
        name: str,
        *,
        reload_interval: float = 2.0,
        spill_dir: str | Path | None = None,
        separate_writer: bool = False,
        loader: Loader | None = None,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.workspace = workspace
        self.name = name
        self.reload_interval = reload_interval
        self._loader: Loader = loader or (
            lambda model, version, runtime, precision: load_text_version(
                metadata, artifacts, workspace, model, version, runtime=runtime, precision=precision
            )
        )
        self.log, self._shipper = open_prediction_log(
            metadata, spill_dir=spill_dir, separate_writer=separate_writer
        )
        self._salt = metadata.get_workspace(workspace).pii_salt
        # the ONNX export behind each loaded predictor, removed when it is replaced
        self._folders: dict[int, Any] = {}
        self._folders_lock = threading.Lock()
        try:
            self.runtime = self._build(metadata.get_endpoint(workspace, name), None)
        except BaseException:
            self._close_writers()
            raise
        policy = self.runtime.policy
        self.batcher: MicroBatcher[str, tuple[TextRuntime, np.ndarray]] = MicroBatcher(
            self._predict,
            max_batch_size=policy.max_batch_size,
            max_wait_ms=policy.max_wait_ms,
            max_queue=policy.max_queue,
        )
        self._lock = threading.Lock()
        settle_memory()
        self._start_watching(f"leptonic-text-{name}")

    # -- requests ----------------------------------------------------------------------
    def _predict(self, texts: list[str]) -> list[tuple[TextRuntime, np.ndarray]]:
        return self.runtime.predict(texts)

    async def start(self) -> None:
        """Start the batcher on the running event loop (idempotent)."""
        if not self.batcher.running:
            await self.batcher.start()

    async def predict(self, record: Any) -> dict[str, Any]:
        """Answer one ``POST /predict`` body (parsed JSON) through the batcher."""
        started = time.perf_counter()
        texts, top_k, single, wanted = self.runtime.parse(record)
        await self.start()
        if single:
            runtime, p = await self.batcher.submit(texts[0])
            return runtime.answer(texts[0], p, top_k, wanted, started)
        pairs = await self.batcher.submit_many(texts)  # all queued, or none
        answers = [
            rt.answer(text, p, top_k, wanted, started)
            for text, (rt, p) in zip(texts, pairs, strict=True)
        ]
        return {"predictions": answers}

    # -- loading -----------------------------------------------------------------------
    def _build(self, endpoint: Endpoint, current: TextRuntime | None) -> TextRuntime:
        policy = self.metadata.get_policy_version(
            self.workspace, self.name, endpoint.policy_version
        )
        if policy.spec.get("kind") != TEXT_CLASSIFICATION:
            raise InvalidInput(
                f"endpoint {self.name!r} is not a text endpoint (its policy is of kind "
                f"{policy.spec.get('kind')!r}); serve it with the decision app",
                field="endpoint",
            )
        read = TextPolicy.from_spec(policy.spec)
        route = endpoint.routes[0]
        if len(endpoint.routes) > 1:
            logger.warning(
                "endpoint %s: text endpoints serve their primary route only (%s v%d)",
                self.name,
                route.model,
                route.version,
            )
        wanted = (route.model, route.version, read.runtime, read.precision)
        if current is not None and current.loaded_as == wanted:
            mv, predictor = current.model_version, current.predictor
        else:
            mv, predictor, folder = self._loader(*wanted)
            if folder is not None:
                with self._folders_lock:
                    self._folders[id(predictor)] = folder
        return TextRuntime(endpoint, policy, mv, predictor, log=self.log, salt=self._salt)

    def reload(self, *, force: bool = False) -> bool:
        """Serve the stored revision if it is newer (or ``force``); True if swapped.

        Requests keep being answered by the current runtime meanwhile; batches
        already taken finish on it.
        """
        endpoint = self.metadata.get_endpoint(self.workspace, self.name)
        if not force and endpoint.revision == self.runtime.revision:
            return False
        runtime = self._build(endpoint, None if force else self.runtime)
        policy = runtime.policy
        with self._lock:
            old, self.runtime = self.runtime, runtime
            # read by the batcher's worker on its next batch; the queue's capacity
            # (max_queue) is fixed when the batcher starts: a new one needs a restart
            self.batcher.max_batch_size = policy.max_batch_size
            self.batcher.max_wait_ms = policy.max_wait_ms
            if old.predictor is not runtime.predictor:
                self._drop_folder(old.predictor)
        settle_memory()
        logger.info("endpoint %s: now serving revision %d", self.name, runtime.revision)
        return True

    # -- status and shutdown ----------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        r = self.runtime
        s = self.batcher.stats
        failed = self.batcher.failed
        return {
            # a dead batcher is restarted by the next request
            "status": "degraded" if failed else "ok",
            **({"problem": failed} if failed else {}),
            "endpoint": r.name,
            "workspace": r.workspace,
            "revision": r.revision,
            "model": r.model,
            "version": r.version,
            # a TF-IDF model runs in scikit-learn whatever the policy's runtime says
            "runtime": "scikit-learn"
            if getattr(r.predictor, "flavor", None) == "tfidf"
            else r.policy.runtime,
            "precision": getattr(r.predictor, "precision", "fp32"),
            "batcher": {
                "running": self.batcher.running,
                "queued": self.batcher.queued,
                "items": s.items,
                "batches": s.batches,
                "mean_batch_size": s.mean_batch_size,
                "largest_batch": s.largest_batch,
                "failed_batches": s.failed_batches,
                "busy_s": s.busy_s,
            },
            **self.log_health(),
        }

    def info(self) -> dict[str, Any]:
        r = self.runtime
        return {
            "endpoint": r.name,
            "workspace": r.workspace,
            "revision": r.revision,
            "task": TEXT_CLASSIFICATION,
            "model": r.model,
            "version": r.version,
            "policy_version": r.policy_version,
            "policy": r.policy.to_spec(),
            "classes": r.classes,
            "routes": ["POST /predict", "GET /health"],
        }

    async def stop(self, timeout: float = 30.0) -> None:
        """Answer every queued text, then stop the batcher."""
        await self.batcher.close(timeout)

    def close(self) -> None:
        """Stop watching, write every queued log record, remove ONNX exports."""
        self._stop_watching()
        self._close_writers()
        with self._folders_lock:
            folders, self._folders = list(self._folders.values()), {}
        for folder in folders:
            folder.cleanup()

    def _drop_folder(self, predictor: Any) -> None:
        with self._folders_lock:
            folder = self._folders.pop(id(predictor), None)
        if folder is not None:
            folder.cleanup()

    def _close_writers(self) -> None:
        self.log.close()
        if self._shipper is not None:
            self._shipper.close()
