"""Recommendation endpoints: the runtime behind :mod:`leptonic.serving.recs_app`.

A recommendation endpoint serves one registered recommender
(:class:`~leptonic.tasks.recsys.RecommenderPredictor`, task
``recommendation``) from memory and keeps it current with the events posted
to it:

- :class:`~leptonic.serving.recs_policy.RecsPolicy`: the endpoint's settings,
  stored as its policy spec ``{"kind": "recommendation", "k": 10, "max_k": 100, ...}``
  (:mod:`leptonic.serving.recs_policy`); requests are checked by
  :mod:`leptonic.serving.recs_requests`.
- :class:`RecsRuntime`: one revision, ready to answer. ``recommend`` and
  ``similar`` read the predictor; ``apply_events`` checks a batch of events
  completely (ids as the model spells them, unknown users and items, repeats
  within the batch and of events the endpoint already has) and only then
  applies it to the predictor (``add_events``: the user's vector is folded in
  again), so the next request reflects it and a bad batch changes nothing.
- :class:`EventLogWriter`: events go to the metadata store's ``events`` table
  in the background (batched, retried, spilled if refused, written out on
  close), like the prediction log.
- :class:`RecsHost`: checks each ``POST /events`` body (kinds, weights, times)
  and queues the applied events for the store; loads the runtime, replays
  the endpoint's stored events into the predictor (all of them, or those
  received after the model version's ``events_until``; those whose ids the
  model cannot hold, or whose new users or items the policy refuses, are
  skipped and counted), watches for a new revision and owns the writers.
  Closing it writes every queued event and recommendation, so a graceful
  restart loses no accepted event and no effect of one (an event the store
  refuses is kept in the spill file, not replayed).

Served recommendations are written to the prediction log (decision
``recommend`` or ``cold_start``, the items as ``reasons``), which with the
events gives click-through, conversion and coverage
(:func:`leptonic.monitoring.recs.recommendation_monitoring`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from leptonic.core.endpoint import Endpoint, PolicyVersion, Prediction
from leptonic.core.event import Event
from leptonic.core.model_version import ModelVersion
from leptonic.errors import AlreadyExists, InvalidInput, MissingExtra, NotFound
from leptonic.governance.pii import hash_value
from leptonic.serving.host import ReloadingHost, open_prediction_log, settle_memory
from leptonic.serving.prediction_log import BatchWriter, PredictionLogWriter
from leptonic.serving.recs_policy import (
    DEFAULT_EVENT_KINDS,
    RECOMMENDATION,
    RecsPolicy,
    recommendation_policy,
)
from leptonic.serving.recs_requests import (
    MAX_EVENTS_PER_REQUEST,
    MAX_FUTURE,
    MAX_ID,
    MIN_ID,
    RECOMMEND_FIELDS,
    SIMILAR_FIELDS,
    ParsedEvent,
    as_utc,
    check_fields,
    check_k,
    id_value,
    mapping,
    parse_events,
    shown,
)
from leptonic.serving.runtime import OneVersionRuntime, dataset_pii, new_request_id
from leptonic.storage.metadata.base import MetadataStore
from leptonic.storage.metadata.event_base import EventStore

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
    "user_is_pii",
]

logger = logging.getLogger(__name__)

_TICK = timedelta(microseconds=1)

#: Items listed per stored user at load (answers with a larger ``k``, or a filter
#: that leaves fewer, score the whole catalogue).
SHORTLIST_SIZE = 100


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


def user_is_pii(metadata: MetadataStore, mv: ModelVersion) -> bool:
    """Whether the user ids of a recommendation version are personal data: its run's
    user column is a PII column of the dataset it was trained on (a version whose run
    is gone: the dataset has any PII column). The prediction log then holds their
    salted hashes."""
    pii = dataset_pii(metadata, mv.dataset)
    if not pii:
        return False
    try:
        stored = metadata.get_run(mv.workspace, mv.run_id).spec
    except NotFound:
        return True
    return str(stored.get("user", "user")) in pii


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
        return as_utc(datetime.fromisoformat(value))
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
    lookup
        The endpoint's stored events of one user (text id) timed from
        ``since`` to ``until`` inclusive, to refuse a resent event from
        before the model's training cut-off (None: not checked).
    pii_salt
        The workspace's PII salt when the user ids are personal data
        (:func:`user_is_pii`): the prediction log then holds each user's
        salted hash, never the id (None: ids logged as given).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        policy: PolicyVersion,
        model_version: ModelVersion,
        predictor: RecommenderPredictor,
        *,
        log: PredictionLogWriter | None = None,
        lookup: Callable[[str, datetime, datetime], Sequence[Event]] | None = None,
        pii_salt: str | None = None,
    ) -> None:
        self.policy = RecsPolicy.from_spec(policy.spec)
        super().__init__(
            endpoint, policy, model_version, predictor, log=log, logging_on=self.policy.log
        )
        self.predictor: RecommenderPredictor = predictor
        self.replayed = 0
        self.replay_skipped = 0
        #: events of this endpoint received until then are in the model's training data
        self.trained_until = events_until(model_version, f"{endpoint.workspace}/{endpoint.name}")
        self._lookup = lookup
        self.pii_salt = pii_salt
        self._trained_late: set[tuple[Any, Any, float]] = set()

    @property
    def cap(self) -> int:
        """The largest ``k`` answered now."""
        p = self.predictor
        return max(1, min(self.policy.max_k, p.max_k, p.n_items))

    # -- reading ---------------------------------------------------------------------
    def recommend(self, record: Any) -> dict[str, Any]:
        """Answer one ``POST /recommend`` body (parsed JSON)."""
        t0 = time.perf_counter()
        check_fields(record, RECOMMEND_FIELDS, "user", '{"user": "u1", "k": 10}')
        user = id_value(record["user"], "user")
        k = check_k(record.get("k"), self.policy.k, self.cap)
        exclude = record.get("exclude_seen", True)
        if not isinstance(exclude, bool):
            raise InvalidInput(
                f"exclude_seen must be true or false, got {shown(exclude)}", field="exclude_seen"
            )
        filt = mapping(record.get("filter"), "filter", '{"genre": "Comedy"}')
        attrs = mapping(record.get("user_attributes"), "user_attributes", '{"gender": "F"}')
        p = self.predictor
        recs = p.recommend(user, k, exclude_seen=exclude, filter=filt, user_attributes=attrs)
        # cold: no events, or events the model cannot score from yet (items added online,
        # without neighbours): the cold start answers. A warm user's items name the seen
        # item behind them (except with the popularity model, which names none).
        unexplained = all(b is None for _, _, b in recs)
        cold = p.user_code(user) is None or (
            unexplained and (not p.seen(user) or (bool(recs) and p.kind != "popularity"))
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
            # the user as the model spells it ("05" and 5 are 5 with integer ids), as
            # apply_events stores their events: click-through joins the two
            key = p.user_key(user)
            spelled = user if key is None else key
            logged = spelled if self.pii_salt is None else hash_value(str(spelled), self.pii_salt)
            inputs: dict[str, Any] = {"user": logged, "k": k, "exclude_seen": exclude}
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
                    entity=str(logged),
                    inputs=inputs,
                    reasons=items,
                    latency_ms=(time.perf_counter() - t0) * 1000.0,
                )
            )
        return answer

    def similar(self, record: Any) -> dict[str, Any]:
        """Answer one ``/similar`` request: ``{"item", "k"?, "filter"?}``."""
        check_fields(record, SIMILAR_FIELDS, "item", '{"item": "i1", "k": 10}')
        item = id_value(record["item"], "item")
        k = check_k(record.get("k"), self.policy.k, self.cap)
        filt = mapping(record.get("filter"), "filter", '{"genre": "Comedy"}')
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
    def apply_events(self, parsed: Sequence[ParsedEvent], now: datetime) -> list[Event]:
        """Check events against the model and, if all pass, apply them (all or none).

        Ids are compared as the model spells them (with integer ids, ``"05"``,
        ``" 5"`` and ``5`` are one id). Refuses, before changing anything, an id
        the model cannot hold and an unknown user or item the policy does not
        allow (InvalidInput), and an event the endpoint already has
        (AlreadyExists): the same user, item and time twice in the request, or
        once before (applied since the model was loaded, learned by its
        training, or stored before its training cut-off). Errors name the
        event and field (``events[2].at``). Returns the event records to store,
        ids spelled as the model spells them. The caller serialises calls.
        """
        p = self.predictor
        policy = self.policy
        keys: list[tuple[Any, Any, float]] = []
        seen: set[tuple[Any, Any, float]] = set()
        new_users: dict[Any, None] = {}
        new_items: dict[Any, None] = {}
        before_cutoff: list[int] = []
        cutoff = self.trained_until
        for j, e in enumerate(parsed):
            ukey = self._key(e.user, "user", e.where)
            ikey = self._key(e.item, "item", e.where)
            ucode = p.user_code(ukey)
            if ucode is None:
                if not policy.new_users:
                    raise InvalidInput(
                        f"unknown user {e.user!r}: {self.model} v{self.version} does not know "
                        "this user; events of new users are refused by this endpoint (its "
                        "policy can allow them with 'new_users': true)",
                        field=e.where + "user",
                    )
                new_users[ukey] = None
            icode = p.item_code(ikey)
            if icode is None:
                if not policy.new_items:
                    raise InvalidInput(
                        f"unknown item {e.item!r}: it is not in the catalogue of "
                        f"{self.model} v{self.version}; add it with a retrain (or allow new "
                        "items with the policy's 'new_items': true)",
                        field=e.where + "item",
                    )
                new_items[ikey] = None
            key = (ukey, ikey, e.at.timestamp())
            if key in seen:
                raise AlreadyExists(
                    f"the event of user {e.user!r} on item {e.item!r} at {e.at.isoformat()} "
                    "appears twice in this request (ids are compared as the model spells "
                    "them); send each event once",
                    field=e.where + "at",
                )
            if key in self._trained_late or (
                ucode is not None and icode is not None and p.holds_event(ucode, icode, key[2])
            ):
                raise _recorded(e)
            if cutoff is not None and e.at <= cutoff:
                before_cutoff.append(j)
            seen.add(key)
            keys.append(key)
        self._check_stored(parsed, keys, before_cutoff)
        # every event passed: only now is the model changed
        for user in new_users:
            p.add_user(user)
        if new_items:
            p.add_items(list(new_items))
        groups: dict[Any, list[int]] = {}
        for j, key in enumerate(keys):
            groups.setdefault(key[0], []).append(j)
        for user, rows in groups.items():
            try:
                p.add_events(
                    user,
                    [keys[j][1] for j in rows],
                    weights=[parsed[j].weight for j in rows],
                    timestamps=[keys[j][2] for j in rows],
                )
            except InvalidInput as exc:  # checked above: not expected
                raise InvalidInput(exc.message, field=parsed[rows[0]].where + "user") from None
        return [
            Event(
                workspace=self.workspace,
                endpoint=self.name,
                id=new_request_id(),
                user=str(user),
                item=str(item),
                at=e.at,
                weight=e.weight,
                kind=e.kind,
                received_at=now,
            )
            for e, (user, item, _) in zip(parsed, keys, strict=True)
        ]

    def _key(self, value: str | int, what: str, where: str) -> Any:
        """An event's user or item id as the model spells it; InvalidInput if it cannot be one."""
        p = self.predictor
        key = p.user_key(value) if what == "user" else p.item_key(value)
        if key is None:  # only integer ids refuse an id that passed the request check
            raise InvalidInput(
                f"{what} {value!r} is not an id {self.model} v{self.version} can hold: its "
                f"{what} ids are whole numbers from {MIN_ID} to {MAX_ID}; send one of those "
                "(a number or its digits)",
                field=where + what,
            )
        return key

    def _check_stored(
        self, parsed: Sequence[ParsedEvent], keys: list[tuple[Any, Any, float]], rows: list[int]
    ) -> None:
        """Refuse (AlreadyExists) the events of ``rows`` that the store already holds.

        Asked only for events timed before the training cut-off: the store's
        events received by then are in the training data, which keeps one
        time per user and item, so the model alone cannot recognise them. One
        query per user; a store that fails fails the request (nothing applied).
        """
        if not rows or self._lookup is None:
            return
        p = self.predictor
        by_user: dict[Any, list[int]] = {}
        for j in rows:
            by_user.setdefault(keys[j][0], []).append(j)
        for user, mine in by_user.items():
            times = [parsed[j].at for j in mine]
            stored = {
                (p.item_key(s.item), s.at.timestamp())
                for s in self._lookup(str(user), min(times), max(times))
            }
            for j in mine:
                if keys[j][1:] in stored:
                    raise _recorded(parsed[j])

    def remember_trained(self, events: Iterable[Event]) -> None:
        """Note stored events that the training used but that are timed after its cut-off.

        The events timed before it are checked against the store
        (:meth:`apply_events`); these few (timed ahead of their arrival) are
        kept here so that a resend of one is refused without asking.
        """
        p = self.predictor
        for e in events:
            user, item = p.user_key(e.user), p.item_key(e.item)
            if user is not None and item is not None:
                self._trained_late.add((user, item, e.at.timestamp()))

    def replay(self, events: Iterable[Event]) -> int:
        """Apply stored events (oldest first) that the predictor does not hold yet.

        Ids are read as the model spells them. An event is skipped (counted
        in ``replay_skipped``) when its user or item id is not one the model
        can hold, or is unknown and the policy does not allow new ones.
        Returns the number applied.
        """
        p = self.predictor
        policy = self.policy
        by_user: dict[Any, list[Event]] = {}
        for e in events:
            user = p.user_key(e.user)
            if user is None:  # e.g. a text id stored before an integer-id model was served
                self.replay_skipped += 1
                continue
            by_user.setdefault(user, []).append(e)
        applied = 0
        for user, mine in by_user.items():
            ucode = p.user_code(user)
            if ucode is None and not policy.new_users:
                self.replay_skipped += len(mine)
                continue
            keep: list[tuple[Any, float, float]] = []  # item, weight, time
            seen: set[tuple[Any, float]] = set()
            for e in mine:
                item = p.item_key(e.item)
                icode = None if item is None else p.item_code(item)
                if item is None or (icode is None and not policy.new_items):
                    self.replay_skipped += 1
                    continue
                ts = e.at.timestamp()
                if (item, ts) in seen or (
                    ucode is not None and icode is not None and p.holds_event(ucode, icode, ts)
                ):
                    continue  # already held (a journalled event also in the store)
                seen.add((item, ts))
                keep.append((item, e.weight, ts))
            if not keep:
                continue
            new_items = list(dict.fromkeys(i for i, _, _ in keep if p.item_code(i) is None))
            if new_items:
                p.add_items(new_items)
            if ucode is None:
                p.add_user(user)
            for start in range(0, len(keep), MAX_EVENTS_PER_REQUEST):
                chunk = keep[start : start + MAX_EVENTS_PER_REQUEST]
                applied += p.add_events(
                    user,
                    [i for i, _, _ in chunk],
                    weights=[w for _, w, _ in chunk],
                    timestamps=[t for _, _, t in chunk],
                )
        self.replayed += applied
        return applied


def _recorded(e: ParsedEvent) -> AlreadyExists:
    return AlreadyExists(
        f"the event of user {e.user!r} on item {e.item!r} at {e.at.isoformat()} was already "
        "recorded; do not resend it (a new interaction needs its own time)",
        field=e.where + "at",
    )


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
        self._stamped_until = datetime.min.replace(tzinfo=UTC)  # after the last arrival stamp
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
        with self._lock:  # checked and applied by one runtime: a reload swaps it under the lock
            # events without a time are stamped now, now + 1 µs, ...: never before the
            # stamps of the previous request, so two requests in a row cannot collide
            now = max(datetime.now(UTC), self._stamped_until)
            runtime = self.runtime
            parsed = parse_events(value, runtime.policy, now)
            self._stamped_until = now + timedelta(microseconds=len(parsed))
            events = runtime.apply_events(parsed, now)
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
                endpoint,
                policy,
                current.model_version,
                current.predictor,
                log=self.log,
                lookup=self._stored_of,
                pii_salt=current.pii_salt,
            )
            runtime.replayed, runtime.replay_skipped = current.replayed, current.replay_skipped
            runtime._trained_late = current._trained_late
            return runtime
        mv, predictor = self._loader(route.model, route.version)
        salt = self.metadata.get_workspace(self.workspace).pii_salt
        runtime = RecsRuntime(
            endpoint,
            policy,
            mv,
            predictor,
            log=self.log,
            lookup=self._stored_of,
            pii_salt=salt if user_is_pii(self.metadata, mv) else None,
        )
        self.events.flush()  # everything accepted so far is in the store
        cutoff = runtime.trained_until
        since = None if cutoff is None else cutoff + _TICK
        runtime.replay(self._stored_events(since))
        if cutoff is not None:  # events received by the cut-off are timed at most a day after it
            late = self._stored_events(since, by="at", until=cutoff + MAX_FUTURE + _TICK)
            runtime.remember_trained(e for e in late if e.received_at <= cutoff)
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

    def _stored_events(
        self,
        since: datetime | None,
        page: int = 10_000,
        *,
        by: Literal["received_at", "at"] = "received_at",
        until: datetime | None = None,
    ) -> list[Event]:
        out: list[Event] = []
        while True:
            batch = self.metadata.list_events(
                self.workspace,
                self.name,
                since=since,
                until=until,
                by=by,
                limit=page,
                offset=len(out),
            )
            out.extend(batch)
            if len(batch) < page:
                return out

    def _stored_of(self, user: str, since: datetime, until: datetime) -> list[Event]:
        """The stored events of ``user`` timed from ``since`` to ``until`` (inclusive)."""
        return self.metadata.list_events(
            self.workspace,
            self.name,
            user=user,
            by="at",
            since=since,
            until=until + _TICK,
            limit=None,
        )

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
