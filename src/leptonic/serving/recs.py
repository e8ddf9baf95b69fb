"""Recommendation endpoints: the runtime behind :mod:`leptonic.serving.recs_app`.

A recommendation endpoint serves one registered recommender
(:class:`~leptonic.tasks.recsys.RecommenderPredictor`, task
``recommendation``) from memory and keeps it current with the events posted
to it:

- :class:`RecsPolicy`: the endpoint's settings, stored as its policy spec
  ``{"kind": "recommendation", "k": 10, "max_k": 100, ...}``.
- :class:`RecsRuntime`: one revision, ready to answer. ``recommend`` and
  ``similar`` read the predictor; ``post_events`` checks a batch of events
  completely (unknown users and items, kinds, weights, times, repeats) and
  only then applies it to the predictor (``add_events``: the user's vector is
  folded in again) and queues it for the store, so the next request reflects
  it and a bad batch changes nothing.
- :class:`EventLogWriter`: events go to the metadata store's ``events`` table
  in the background (batched, retried, spilled if refused, written out on
  close), like the prediction log.
- :class:`RecsHost`: loads the runtime, replays the endpoint's stored events
  into the predictor (all of them, or those received after the model
  version's ``events_until``), watches for a new revision and owns the
  writers. Closing it writes every queued event and recommendation, so a
  graceful restart loses no event and no effect of one.

Served recommendations are written to the prediction log (decision
``recommend`` or ``cold_start``, the items as ``reasons``), which with the
events gives click-through, conversion and coverage
(:func:`leptonic.monitoring.recs.recommendation_monitoring`).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leptonic.core.endpoint import Endpoint, PolicyVersion, Prediction
from leptonic.core.event import Event
from leptonic.core.model_version import ModelVersion
from leptonic.errors import AlreadyExists, InvalidInput, MissingExtra, NotFound
from leptonic.serving.host import ReloadingHost, open_prediction_log, settle_memory
from leptonic.serving.prediction_log import BatchWriter, PredictionLogWriter
from leptonic.serving.runtime import OneVersionRuntime, new_request_id
from leptonic.storage.metadata.base import MetadataStore
from leptonic.storage.metadata.event_base import MAX_EVENT_ID_LENGTH, EventStore

if TYPE_CHECKING:
    from leptonic.storage.artifacts.base import ArtifactStore
    from leptonic.tasks.recsys.predictor import RecommenderPredictor

__all__ = [
    "DEFAULT_EVENT_KINDS",
    "MAX_EVENTS_PER_REQUEST",
    "RECOMMENDATION",
    "SHORTLIST_SIZE",
    "EventLogWriter",
    "RecsHost",
    "RecsPolicy",
    "RecsRuntime",
    "events_for_retrain",
    "events_until",
    "load_recommender_version",
    "recommendation_policy",
]

logger = logging.getLogger(__name__)

#: The task, and the policy kind, of recommendation endpoints.
RECOMMENDATION = "recommendation"

#: Event kinds an endpoint accepts unless its policy lists others.
DEFAULT_EVENT_KINDS = ("view", "click", "cart", "purchase", "rating", "interaction")

#: The most events one ``POST /events`` may carry.
MAX_EVENTS_PER_REQUEST = 10_000

#: The largest weight an event may carry.
MAX_WEIGHT = 1e6

#: Events timed further in the future than this are refused (clock skew allowance).
MAX_FUTURE = timedelta(days=1)
#: Items listed per stored user at load (answers with a larger ``k``, or a filter
#: that leaves fewer, score the whole catalogue).
SHORTLIST_SIZE = 100

_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")
_RECOMMEND_FIELDS = frozenset({"user", "k", "filter", "exclude_seen", "user_attributes"})
_SIMILAR_FIELDS = frozenset({"item", "k", "filter"})
_EVENT_FIELDS = frozenset({"user", "item", "weight", "kind", "at"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- the policy -------------------------------------------------------------------------
@dataclass(frozen=True)
class RecsPolicy:
    """How a recommendation endpoint answers and which events it takes.

    Parameters
    ----------
    k
        Recommendations per request when the request gives no ``k``.
    max_k
        The largest ``k`` a request may ask for (the model's own limit and the
        catalogue size cap it further).
    new_users
        Accept events of users the model does not know (they are registered
        on their first event); otherwise such an event is refused (422).
    new_items
        Accept events on items outside the catalogue (they are added to it);
        otherwise refused (422).
    kinds
        The event kinds accepted.
    default_kind
        The kind of an event that names none.
    weights
        Default weight per kind (an event without a weight gets its kind's,
        or 1).
    log
        Write served recommendations to the prediction log (needed for
        click-through and coverage).
    """

    k: int = 10
    max_k: int = 100
    new_users: bool = False
    new_items: bool = False
    kinds: tuple[str, ...] = DEFAULT_EVENT_KINDS
    default_kind: str = "interaction"
    weights: Mapping[str, float] = field(default_factory=dict)
    log: bool = True

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> RecsPolicy:
        """Read (and check) a policy spec; None gives the defaults."""
        if spec is None:
            return cls()
        if not isinstance(spec, Mapping):
            raise _bad("policy", "must be a JSON object like {'kind': 'recommendation', 'k': 10}")
        spec = dict(spec)
        kind = spec.pop("kind", RECOMMENDATION)
        if kind != RECOMMENDATION:
            raise _bad(
                "kind",
                f"is {kind!r}; a recommendation endpoint's policy kind is {RECOMMENDATION!r}",
            )
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise _bad(unknown[0], f"is not a recommendation policy field; use {sorted(known)}")
        max_k = _whole(spec.get("max_k", 100), "max_k", 1, 10_000)
        k = _whole(spec.get("k", min(10, max_k)), "k", 1, max_k)
        flags = {}
        for name in ("new_users", "new_items", "log"):
            value = spec.get(name, getattr(cls, name))
            if not isinstance(value, bool):
                raise _bad(name, f"must be true or false, got {value!r}")
            flags[name] = value
        kinds = spec.get("kinds", DEFAULT_EVENT_KINDS)
        if isinstance(kinds, str) or not isinstance(kinds, Sequence) or not kinds:
            raise _bad("kinds", "must be a non-empty list of event kind names")
        for name in kinds:
            if not isinstance(name, str) or not _KIND.match(name):
                raise _bad("kinds", f"holds {name!r}; a kind is a lowercase name like 'click'")
        default_kind = str(
            spec.get("default_kind", "interaction" if "interaction" in kinds else kinds[0])
        )
        if default_kind not in kinds:
            raise _bad("default_kind", f"is {default_kind!r}, which is not one of the kinds")
        weights = spec.get("weights", {})
        if not isinstance(weights, Mapping):
            raise _bad("weights", "must map event kind → default weight")
        for name, w in weights.items():
            if name not in kinds:
                raise _bad("weights", f"names the kind {name!r}, which is not one of the kinds")
            if not _finite_weight(w):
                raise _bad("weights", f"of {name!r} is {w!r}; a weight is a number from 0 to 1e6")
        return cls(
            k=k,
            max_k=max_k,
            kinds=tuple(kinds),
            default_kind=default_kind,
            weights={str(n): float(w) for n, w in weights.items()},
            **flags,
        )

    def to_spec(self) -> dict[str, Any]:
        """The JSON form stored as the endpoint's policy version."""
        out = asdict(self)
        out["kinds"] = list(self.kinds)
        out["weights"] = dict(self.weights)
        return {"kind": RECOMMENDATION, **out}


def recommendation_policy(spec: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A checked recommendation policy spec, defaults filled in."""
    return RecsPolicy.from_spec(spec).to_spec()


def _bad(name: str, what: str) -> InvalidInput:
    return InvalidInput(f"recommendation policy: {name} {what}", field=name)


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(name, f"must be a whole number from {low} to {high}, got {value!r}")
    return value


def _finite_weight(w: Any) -> bool:
    return (
        not isinstance(w, bool)
        and isinstance(w, int | float)
        and math.isfinite(w)
        and 0 <= w <= MAX_WEIGHT
    )


# -- loading ----------------------------------------------------------------------------
def load_recommender_version(
    metadata: MetadataStore, artifacts: ArtifactStore, workspace: str, model: str, version: int
) -> tuple[ModelVersion, RecommenderPredictor]:
    """A model version and a fresh copy of its recommender.

    Always a new object (not the registry's shared cache): an endpoint
    changes its predictor with every event. The one place that turns a
    registered version into a predictor for serving.
    """
    mv = metadata.get_model_version(workspace, model, version)
    if mv.task != RECOMMENDATION:
        raise InvalidInput(
            f"{model} v{version} is a {mv.task} model; recommendation endpoints serve "
            f"{RECOMMENDATION} models",
            field="model",
        )
    try:
        from leptonic.tasks.recsys.artifact import load_recommender
    except ImportError as exc:  # scipy
        raise MissingExtra(exc.name or "scipy", "recsys", "serving recommendations") from None
    return mv, load_recommender(artifacts, mv.artifact_key, mv.artifact_digest)


def events_until(mv: ModelVersion, endpoint: str | None = None) -> datetime | None:
    """The arrival time of the newest event of ``endpoint`` (``workspace/name``) the
    version was trained on.

    A retrain from endpoint events records it as ``signature["events_until"]``
    (ISO 8601) with the endpoint as ``signature["events_of"]``; events received
    after it are replayed into the served predictor. None (no record, or the
    events of another endpoint): every stored event of the endpoint is replayed.
    """
    signature = mv.signature if isinstance(mv.signature, dict) else {}
    value = signature.get("events_until")
    if not isinstance(value, str):
        return None
    of = signature.get("events_of")
    if endpoint is not None and of is not None and of != endpoint:
        return None
    try:
        return _as_utc(datetime.fromisoformat(value))
    except ValueError:
        logger.warning("%s v%d: events_until %r is not a time", mv.model, mv.version, value)
        return None


def events_for_retrain(
    metadata: MetadataStore, workspace: str, endpoint: str, *, until: datetime | None = None
) -> tuple[Any, datetime | None]:
    """The endpoint's events received before ``until`` (default: all), for a retrain.

    Returns a pandas DataFrame with the columns ``user``, ``item``,
    ``weight``, ``kind`` and ``ts`` (event time, epoch seconds), oldest first,
    and the arrival time of the newest event in it: record that as the new
    model version's ``signature["events_until"]`` (ISO 8601) so that an
    endpoint serving the version replays only the events that came later.
    """
    import pandas as pd

    events = metadata.list_events(workspace, endpoint, until=until, limit=None)
    frame = pd.DataFrame(
        {
            "user": [e.user for e in events],
            "item": [e.item for e in events],
            "weight": [e.weight for e in events],
            "kind": [e.kind for e in events],
            "ts": [e.at.timestamp() for e in events],
        }
    )
    return frame, (events[-1].received_at if events else None)


# -- the event log ------------------------------------------------------------------------
class EventLogWriter(BatchWriter[Event]):
    """Buffer events in memory and write them to the store in the background.

    The guarantees of :class:`~leptonic.serving.prediction_log.PredictionLogWriter`:
    batched, retried with back-off while the store fails, a record the store
    refuses spilled (``event-log.spill.jsonl``), everything written on close.
    """

    label = "event log"
    spill_file = "event-log.spill.jsonl"
    default_batch_size = 1000
    default_interval = 0.1
    store: EventStore

    def _store_batch(self, batch: Sequence[Event]) -> None:
        self.store.append_events(batch)

    def _describe(self, record: Event) -> str:
        return f"event {record.id} (user {record.user!r}, item {record.item!r})"

    def _spill_entry(self, record: Event) -> dict[str, Any]:
        return {"event": asdict(record)}


# -- parsing requests ----------------------------------------------------------------
def _id_value(value: Any, name: str) -> str | int:
    """A user or item id from JSON: a non-empty string or an integer."""
    if isinstance(value, str):
        if value and len(value) <= MAX_EVENT_ID_LENGTH:
            return value
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidInput(
        f"{name} must be an id: a non-empty string (at most {MAX_EVENT_ID_LENGTH} characters) "
        f"or a whole number, got {_shown(value)}",
        field=name,
    )


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:60] + ("…" if len(value) > 60 else ""))
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return "a list" if isinstance(value, list) else "an object"


def _check_fields(record: Any, allowed: frozenset[str], required: str, example: str) -> None:
    if type(record) is not dict:
        raise InvalidInput(
            f"the request body must be a JSON object, got {_shown(record)}; send {example}",
            field="body",
        )
    if required not in record:
        raise InvalidInput(f"missing field {required!r}; send {example}", field=required)
    if not record.keys() <= allowed:
        unknown = sorted(set(record) - allowed)
        raise InvalidInput(
            f"unknown field(s) {', '.join(map(repr, unknown))}; this takes: "
            f"{', '.join(sorted(allowed))}",
            field=unknown[0],
        )


def parse_time(value: Any, name: str, now: datetime) -> datetime:
    """An event time: ISO 8601 text (UTC when it has no offset) or epoch seconds."""
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                f"{name} is {_shown(value)}, which is not an ISO 8601 time; send e.g. "
                "'2024-05-01T12:00:00Z' (or epoch seconds)",
                field=name,
            ) from None
        try:
            at = _as_utc(at)
        except (OverflowError, ValueError):
            raise InvalidInput(f"{name} is {_shown(value)}, out of range", field=name) from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0 or value > 1e11:
            raise InvalidInput(
                f"{name} is {value!r}; epoch seconds must lie between 0 and 1e11", field=name
            )
        at = datetime.fromtimestamp(value, UTC)
    else:
        raise InvalidInput(
            f"{name} must be an ISO 8601 time or epoch seconds, got {_shown(value)}", field=name
        )
    if at < _EPOCH:
        raise InvalidInput(f"{name} is before 1970: {at.isoformat()}", field=name)
    if at > now + MAX_FUTURE:
        raise InvalidInput(
            f"{name} is {at.isoformat()}, more than a day in the future; check the clock or "
            "the time zone",
            field=name,
        )
    return at


def _as_utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _check_k(value: Any, default: int, cap: int) -> int:
    k = default if value is None else value
    if isinstance(k, bool) or not isinstance(k, int):
        raise InvalidInput(f"k must be a whole number from 1 to {cap}, got {_shown(k)}", field="k")
    if not 1 <= k <= cap:
        raise InvalidInput(f"k is {k}; it must lie between 1 and {cap}", field="k")
    return k


def _mapping(value: Any, name: str, example: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if type(value) is not dict:
        raise InvalidInput(f"{name} must be a JSON object like {example}", field=name)
    return value


@dataclass(frozen=True)
class _Parsed:
    """One event of a request, checked on its own (not yet against the model)."""

    where: str  # "" or "events[3]." — prefixes field names in errors
    user: str | int
    item: str | int
    weight: float
    kind: str
    at: datetime


# -- the runtime ---------------------------------------------------------------------------
class RecsRuntime(OneVersionRuntime):
    """One revision of a recommendation endpoint, ready to answer.

    Parameters
    ----------
    endpoint
        The endpoint record (its primary route is served).
    policy
        The active policy version (a :class:`RecsPolicy` spec).
    model_version, predictor
        The served version and its recommender (owned by this runtime: events
        change it).
    log
        Where served recommendations are queued (None: not logged).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        policy: PolicyVersion,
        model_version: ModelVersion,
        predictor: RecommenderPredictor,
        *,
        log: PredictionLogWriter | None = None,
    ) -> None:
        self.policy = RecsPolicy.from_spec(policy.spec)
        super().__init__(
            endpoint, policy, model_version, predictor, log=log, logging_on=self.policy.log
        )
        self.predictor: RecommenderPredictor = predictor
        self.replayed = 0
        self.replay_skipped = 0

    @property
    def cap(self) -> int:
        """The largest ``k`` answered now."""
        p = self.predictor
        return max(1, min(self.policy.max_k, p.max_k, p.n_items))

    # -- reading ---------------------------------------------------------------------
    def recommend(self, record: Any) -> dict[str, Any]:
        """Answer one ``POST /recommend`` body (parsed JSON)."""
        t0 = time.perf_counter()
        _check_fields(record, _RECOMMEND_FIELDS, "user", '{"user": "u1", "k": 10}')
        user = _id_value(record["user"], "user")
        k = _check_k(record.get("k"), self.policy.k, self.cap)
        exclude = record.get("exclude_seen", True)
        if not isinstance(exclude, bool):
            raise InvalidInput(
                f"exclude_seen must be true or false, got {_shown(exclude)}", field="exclude_seen"
            )
        filt = _mapping(record.get("filter"), "filter", '{"genre": "Comedy"}')
        attrs = _mapping(record.get("user_attributes"), "user_attributes", '{"gender": "F"}')
        p = self.predictor
        recs = p.recommend(user, k, exclude_seen=exclude, filter=filt, user_attributes=attrs)
        # cold: no events. A warm user's items name the seen item behind them
        # (except with the popularity model), so the seen set is rarely listed.
        cold = p.user_code(user) is None or (
            all(b is None for _, _, b in recs) and not p.seen(user)
        )
        items = [{"item": i, "score": s, "because": b} for i, s, b in recs]
        request_id = new_request_id()
        answer = {
            "request_id": request_id,
            "user": user,
            "items": items,
            "cold_start": cold,
            "model": self.model,
            "version": self.version,
            "policy_version": self.policy_version,
        }
        log = self.log
        if log is not None:
            inputs: dict[str, Any] = {"user": user, "k": k, "exclude_seen": exclude}
            if filt:
                inputs["filter"] = filt
            log.append(
                Prediction(
                    workspace=self.workspace,
                    endpoint=self.name,
                    request_id=request_id,
                    model=self.model,
                    version=self.version,
                    score=items[0]["score"] if items else 0.0,
                    decision="cold_start" if cold else "recommend",
                    at=datetime.now(UTC),
                    route="live",
                    policy_version=self.policy_version,
                    entity=str(user),
                    inputs=inputs,
                    reasons=items,
                    latency_ms=(time.perf_counter() - t0) * 1000.0,
                )
            )
        return answer

    def similar(self, record: Any) -> dict[str, Any]:
        """Answer one ``/similar`` request: ``{"item", "k"?, "filter"?}``."""
        _check_fields(record, _SIMILAR_FIELDS, "item", '{"item": "i1", "k": 10}')
        item = _id_value(record["item"], "item")
        k = _check_k(record.get("k"), self.policy.k, self.cap)
        filt = _mapping(record.get("filter"), "filter", '{"genre": "Comedy"}')
        if self.predictor.item_code(item) is None:
            raise NotFound(
                f"item {item!r} is not in the catalogue of {self.model} v{self.version}",
                field="item",
            )
        found = self.predictor.similar_items(item, k, filter=filt)
        return {
            "item": item,
            "items": [{"item": i, "score": s} for i, s in found],
            "model": self.model,
            "version": self.version,
        }

    # -- events ------------------------------------------------------------------------------
    def parse_events(self, value: Any, now: datetime) -> list[_Parsed]:
        """Check the events of a ``POST /events`` body on their own: one event
        object, a list of them, or ``{"events": [...]}``."""
        if type(value) is dict and set(value) == {"events"}:
            value = value["events"]
            many = True
        else:
            many = type(value) is list
        rows = value if many else [value]
        if not rows:
            raise InvalidInput("send at least one event", field="events")
        if len(rows) > MAX_EVENTS_PER_REQUEST:
            raise InvalidInput(
                f"{len(rows)} events in one request; send at most {MAX_EVENTS_PER_REQUEST}",
                field="events",
            )
        policy = self.policy
        out = []
        for i, row in enumerate(rows):
            where = f"events[{i}]." if many else ""
            example = '{"user": "u1", "item": "i1", "kind": "click"}'
            if type(row) is not dict:
                name = f"events[{i}]" if many else "body"
                raise InvalidInput(
                    f"{name} must be an event object like {example}, got {_shown(row)}", field=name
                )
            for required in ("user", "item"):
                if required not in row:
                    raise InvalidInput(
                        f"missing field {required!r} of an event; send {example}",
                        field=where + required,
                    )
            if not row.keys() <= _EVENT_FIELDS:
                unknown = sorted(set(row) - _EVENT_FIELDS)
                raise InvalidInput(
                    f"unknown event field(s) {', '.join(map(repr, unknown))}; an event takes: "
                    f"{', '.join(sorted(_EVENT_FIELDS))}",
                    field=where + unknown[0],
                )
            user = _id_value(row["user"], where + "user")
            item = _id_value(row["item"], where + "item")
            kind = row.get("kind", policy.default_kind)
            if kind not in policy.kinds:
                raise InvalidInput(
                    f"event kind {_shown(kind)} is not accepted here; kinds: "
                    f"{', '.join(policy.kinds)}",
                    field=where + "kind",
                )
            weight = row.get("weight")
            if weight is None:
                weight = policy.weights.get(kind, 1.0)
            elif not _finite_weight(weight):
                raise InvalidInput(
                    f"weight is {_shown(weight)}; a weight is a number from 0 to "
                    f"{MAX_WEIGHT:g} (a rating, a quantity)",
                    field=where + "weight",
                )
            at = parse_time(row["at"], where + "at", now) if "at" in row else now
            out.append(_Parsed(where, user, item, float(weight), kind, at))
        return out

    def apply_events(self, parsed: Sequence[_Parsed], now: datetime) -> list[Event]:
        """Check events against the model and, if all pass, apply them (all or none).

        Refuses (before changing anything) an unknown user or item the policy
        does not allow, and an event the endpoint already has (AlreadyExists):
        the same user, item and time twice in the request, or once before.
        Returns the event records to store. The caller serialises calls.
        """
        p = self.predictor
        policy = self.policy
        new_users: dict[str | int, str] = {}
        new_items: dict[str | int, str] = {}
        seen: set[tuple[Any, Any, float]] = set()
        for e in parsed:
            ucode = p.user_code(e.user)
            if ucode is None:
                if not policy.new_users:
                    raise InvalidInput(
                        f"unknown user {e.user!r}: {self.model} v{self.version} does not know "
                        "this user; events of new users are refused by this endpoint (its "
                        "policy can allow them with 'new_users': true)",
                        field=e.where + "user",
                    )
                new_users.setdefault(e.user, e.where + "user")
            icode = p.item_code(e.item)
            if icode is None:
                if not policy.new_items:
                    raise InvalidInput(
                        f"unknown item {e.item!r}: it is not in the catalogue of "
                        f"{self.model} v{self.version}; add it with a retrain (or allow new "
                        "items with the policy's 'new_items': true)",
                        field=e.where + "item",
                    )
                new_items.setdefault(e.item, e.where + "item")
            ts = e.at.timestamp()
            key = (
                ucode if ucode is not None else ("new", str(e.user)),
                icode if icode is not None else ("new", str(e.item)),
                ts,
            )
            if key in seen:
                raise AlreadyExists(
                    f"the event of user {e.user!r} on item {e.item!r} at {e.at.isoformat()} "
                    "appears twice in this request; send each event once",
                    field=e.where + "at",
                )
            seen.add(key)
            if ucode is not None and icode is not None and _known_event(p, ucode, icode, ts):
                raise AlreadyExists(
                    f"the event of user {e.user!r} on item {e.item!r} at {e.at.isoformat()} "
                    "was already recorded; do not resend it (a new interaction needs its own "
                    "time)",
                    field=e.where + "at",
                )
        try:
            for user in new_users:
                p.add_user(user)
            if new_items:
                p.add_items(list(new_items))
        except InvalidInput as exc:  # an id the model's id type cannot hold
            where = next(iter(new_users.values()), None) or next(iter(new_items.values()))
            raise InvalidInput(exc.message, field=where) from None
        events = [
            Event(
                workspace=self.workspace,
                endpoint=self.name,
                id=new_request_id(),
                user=str(e.user),
                item=str(e.item),
                at=e.at,
                weight=e.weight,
                kind=e.kind,
                received_at=now,
            )
            for e in parsed
        ]
        groups: dict[int, list[int]] = {}
        for j, e in enumerate(parsed):
            code = p.user_code(e.user)
            groups.setdefault(-1 if code is None else code, []).append(j)
        for rows in groups.values():
            first = parsed[rows[0]]
            try:
                p.add_events(
                    first.user,
                    [parsed[j].item for j in rows],
                    weights=[parsed[j].weight for j in rows],
                    timestamps=[parsed[j].at.timestamp() for j in rows],
                )
            except InvalidInput as exc:  # checked above: not expected
                raise InvalidInput(exc.message, field=first.where + "user") from None
        return events

    def replay(self, events: Iterable[Event]) -> int:
        """Apply stored events (oldest first) that the predictor does not hold yet.

        Users and items the predictor does not know are added when the
        policy allows them and skipped (counted in ``replay_skipped``) when
        it does not. Returns the number applied.
        """
        p = self.predictor
        policy = self.policy
        by_user: dict[str, list[Event]] = {}
        for e in events:
            by_user.setdefault(e.user, []).append(e)
        applied = 0
        for user, mine in by_user.items():
            ucode = p.user_code(user)
            if ucode is None:
                if not policy.new_users:
                    self.replay_skipped += len(mine)
                    continue
                p.add_user(user)
                ucode = p.user_code(user)
                if ucode is None:  # not a valid id for this model
                    self.replay_skipped += len(mine)
                    continue
            keep: list[Event] = []
            seen: set[tuple[int, float]] = set()
            for e in mine:
                icode = p.item_code(e.item)
                if icode is None:
                    if not policy.new_items:
                        self.replay_skipped += 1
                        continue
                    p.add_items([e.item])
                    icode = p.item_code(e.item)
                    if icode is None:
                        self.replay_skipped += 1
                        continue
                ts = e.at.timestamp()
                if (icode, ts) in seen or _known_event(p, ucode, icode, ts):
                    continue  # already held (a journalled event also in the store)
                seen.add((icode, ts))
                keep.append(e)
            for start in range(0, len(keep), MAX_EVENTS_PER_REQUEST):
                chunk = keep[start : start + MAX_EVENTS_PER_REQUEST]
                applied += p.add_events(
                    user,
                    [e.item for e in chunk],
                    weights=[e.weight for e in chunk],
                    timestamps=[e.at.timestamp() for e in chunk],
                )
        self.replayed += applied
        return applied


def _known_event(p: RecommenderPredictor, user: int, item: int, ts: float) -> bool:
    """Whether the predictor already holds the event (from training or online).

    The predictor refuses such an event in ``add_events``; asking first keeps
    a batch of several users all-or-none. Reads the predictor's duplicate
    bookkeeping directly (it has no public query for it).
    """
    state = p._online.get(user)
    if state is not None and ts in state.times.get(item, ()):
        return True
    return p._last_time(user, item) == ts


# -- the host ---------------------------------------------------------------------------
class RecsHost(ReloadingHost):
    """One recommendation endpoint served by this process.

    Parameters
    ----------
    metadata, artifacts
        Where the endpoint, its model versions, events and logs live.
    workspace, name
        The endpoint.
    reload_interval
        Seconds between checks for a newer revision (0: never check).
    spill_dir
        Where records the store refuses are kept (JSON lines).
    separate_writer
        Write the prediction log from a child process (SQL stores only).
    loader
        Turns a model version into a fresh predictor (default:
        :func:`load_recommender_version`).
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
        loader: Callable[[str, int], tuple[ModelVersion, RecommenderPredictor]] | None = None,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.workspace = workspace
        self.name = name
        self.reload_interval = reload_interval
        self._loader = loader or (
            lambda model, version: load_recommender_version(
                metadata, artifacts, workspace, model, version
            )
        )
        self.log, self._shipper = open_prediction_log(
            metadata, spill_dir=spill_dir, separate_writer=separate_writer
        )
        self.events = EventLogWriter(metadata, spill_dir=spill_dir)
        self._lock = threading.Lock()  # one event batch at a time; the swap of runtimes
        self._journal: list[Event] | None = None
        try:
            self.runtime = self._build(metadata.get_endpoint(workspace, name), None)
        except BaseException:
            self._close_writers()
            raise
        settle_memory()
        self._start_watching(f"leptonic-recs-{name}")

    # -- requests ----------------------------------------------------------------------
    def post_events(self, value: Any) -> dict[str, Any]:
        """Check, apply and queue the events of one ``POST /events`` body."""
        now = datetime.now(UTC)
        parsed = self.runtime.parse_events(value, now)
        with self._lock:
            events = self.runtime.apply_events(parsed, now)
            append = self.events.append
            for e in events:
                append(e)
            if self._journal is not None:
                self._journal.extend(events)
        return {"recorded": len(events), "ids": [e.id for e in events]}

    # -- loading -----------------------------------------------------------------------
    def _build(self, endpoint: Endpoint, current: RecsRuntime | None) -> RecsRuntime:
        policy = self.metadata.get_policy_version(
            self.workspace, self.name, endpoint.policy_version
        )
        if policy.spec.get("kind") != RECOMMENDATION:
            raise InvalidInput(
                f"endpoint {self.name!r} is not a recommendation endpoint (its policy is of "
                f"kind {policy.spec.get('kind')!r}); serve it with the decision app",
                field="endpoint",
            )
        route = endpoint.routes[0]
        if len(endpoint.routes) > 1:
            logger.warning(
                "endpoint %s: recommendation endpoints serve their primary route only (%s v%d)",
                self.name,
                route.model,
                route.version,
            )
        if current is not None and (current.model, current.version) == (
            route.model,
            route.version,
        ):  # same model: keep its predictor (and every event it holds)
            runtime = RecsRuntime(
                endpoint, policy, current.model_version, current.predictor, log=self.log
            )
            runtime.replayed, runtime.replay_skipped = current.replayed, current.replay_skipped
            return runtime
        mv, predictor = self._loader(route.model, route.version)
        runtime = RecsRuntime(endpoint, policy, mv, predictor, log=self.log)
        self.events.flush()  # everything accepted so far is in the store
        cutoff = events_until(mv, f"{self.workspace}/{self.name}")
        since = None if cutoff is None else cutoff + timedelta(microseconds=1)
        runtime.replay(self._stored_events(since))
        # each user's best items, listed once (and again after each of their events):
        # answers then skip scoring the catalogue
        if not predictor.precompute(SHORTLIST_SIZE):
            logger.info(
                "endpoint %s: %s v%d is not listed per user (a %s model, or above the "
                "work or memory budget); answers score the catalogue",
                self.name,
                mv.model,
                mv.version,
                predictor.kind,
            )
        if runtime.replayed or runtime.replay_skipped:
            logger.info(
                "endpoint %s: replayed %d stored event(s) into %s v%d (%d skipped)",
                self.name,
                runtime.replayed,
                mv.model,
                mv.version,
                runtime.replay_skipped,
            )
        return runtime

    def _stored_events(self, since: datetime | None, page: int = 10_000) -> list[Event]:
        out: list[Event] = []
        while True:
            batch = self.metadata.list_events(
                self.workspace, self.name, since=since, limit=page, offset=len(out)
            )
            out.extend(batch)
            if len(batch) < page:
                return out

    def reload(self, *, force: bool = False) -> bool:
        """Serve the stored revision if it is newer (or ``force``); True if swapped.

        Requests keep being answered by the current runtime meanwhile; events
        accepted during the reload are applied to the new one before the swap.
        """
        endpoint = self.metadata.get_endpoint(self.workspace, self.name)
        if not force and endpoint.revision == self.runtime.revision:
            return False
        with self._lock:
            self._journal = []
        try:
            runtime = self._build(endpoint, None if force else self.runtime)
            with self._lock:
                if runtime.predictor is not self.runtime.predictor:
                    runtime.replay(self._journal or [])
                self.runtime = runtime
        finally:
            with self._lock:
                self._journal = None
        settle_memory()
        logger.info("endpoint %s: now serving revision %d", self.name, self.runtime.revision)
        return True

    # -- status and shutdown ----------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        r = self.runtime
        return {
            "status": "ok",
            "endpoint": r.name,
            "workspace": r.workspace,
            "revision": r.revision,
            "model": r.model,
            "version": r.version,
            "users": r.predictor.n_users,
            "items": r.predictor.n_items,
            "shortlists": r.predictor.listed,
            "replayed": r.replayed,
            "replay_skipped": r.replay_skipped,
            "events_pending": self.events.pending,
            "events_written": self.events.written,
            "events_failures": self.events.failures,
            "events_spilled": self.events.spilled,
            **self.log_health(),
        }

    def info(self) -> dict[str, Any]:
        r = self.runtime
        return {
            "endpoint": r.name,
            "workspace": r.workspace,
            "revision": r.revision,
            "task": RECOMMENDATION,
            "model": r.model,
            "version": r.version,
            "policy_version": r.policy_version,
            "policy": r.policy.to_spec(),
            "max_k": r.cap,
            "item_attributes": r.predictor.item_attributes,
            "routes": ["POST /recommend", "GET|POST /similar", "POST /events", "GET /health"],
        }

    def close(self) -> None:
        """Stop watching and write every queued event and recommendation."""
        self._stop_watching()
        self._close_writers()

    def _close_writers(self) -> None:
        self.events.close()
        self.log.close()
        if self._shipper is not None:
            self._shipper.close()
