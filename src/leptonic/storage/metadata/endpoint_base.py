"""The part of the metadata store interface that keeps endpoints.

:class:`~leptonic.storage.metadata.base.MetadataStore` inherits it; every
backend implements it and passes the same conformance tests. Endpoints,
their policy versions, the prediction log, feedback and alerts all belong to
one workspace, like every other object.
"""

from __future__ import annotations

import abc
import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from itertools import repeat
from typing import Any

import orjson

from leptonic.core.endpoint import Alert, Endpoint, Feedback, PolicyVersion, Prediction, Route
from leptonic.core.names import validate_name
from leptonic.errors import Conflict, InvalidInput
from leptonic.storage.metadata._errors import prediction_exists, revision_conflict
from leptonic.storage.metadata._fields import check_text, checked_record

__all__ = [
    "ALERT_STATUSES",
    "ENDPOINT_MUTABLE_FIELDS",
    "PREDICTION_ROUTES",
    "EndpointStore",
    "changed_endpoint",
    "check_alert",
    "check_alert_status",
    "check_before",
    "check_delivered",
    "check_endpoint_changes",
    "check_feedback",
    "check_policy",
    "check_prediction_route",
    "check_predictions",
    "check_routes",
    "check_window",
    "json_copy",
    "json_text",
    "new_endpoint",
    "policy_replaced",
]

#: Fields of an :class:`Endpoint` that :meth:`EndpointStore.update_endpoint` may change.
ENDPOINT_MUTABLE_FIELDS = frozenset(
    {"routes", "shadow", "entity_key", "description", "policy_version"}
)

#: Values of :attr:`Prediction.route`.
PREDICTION_ROUTES = ("live", "shadow")

#: Values of :attr:`Alert.status`.
ALERT_STATUSES = ("open", "acknowledged", "resolved")


def check_routes(routes: Sequence[Route], shadow: Route | None = None) -> tuple[Route, ...]:
    """Validate a traffic split: at least one route, percents in [0, 100] summing
    to 100, no version routed twice, the shadow (any percent) not also live.

    Returns the routes as a tuple with float percents (as every store keeps them).
    """
    if isinstance(routes, Route | str | bytes) or not isinstance(routes, Sequence):
        raise InvalidInput(
            f"routes must be a list of Route records, got {type(routes).__name__}",
            field="routes",
        )
    routes = tuple(routes)
    if not routes:
        raise InvalidInput(
            "an endpoint needs at least one route (a model version with a percent)",
            field="routes",
        )
    seen: set[tuple[str, int]] = set()
    for r in routes:
        _check_route(r, "routes")
        key = (r.model, r.version)
        if key in seen:
            raise InvalidInput(
                f"{r.model} v{r.version} is routed twice; give each version one route",
                field="routes",
            )
        seen.add(key)
    total = sum(float(r.percent) for r in routes)
    if abs(total - 100.0) > 1e-6:
        raise InvalidInput(f"route percents must sum to 100, they sum to {total:g}", field="routes")
    if shadow is not None:
        _check_route(shadow, "shadow")
        if (shadow.model, shadow.version) in seen:
            raise InvalidInput(
                f"{shadow.model} v{shadow.version} cannot be both live and the shadow",
                field="shadow",
            )
    return tuple(replace(r, percent=float(r.percent)) for r in routes)


def _check_route(r: object, field: str) -> None:
    if not isinstance(r, Route):
        raise InvalidInput(
            f"{field} must hold Route(model, version, percent) records, got {type(r).__name__}",
            field=field,
        )
    if not isinstance(r.model, str) or not r.model:
        raise InvalidInput(f"a route's model must be a model name, got {r.model!r}", field=field)
    if isinstance(r.version, bool) or not isinstance(r.version, int) or r.version < 1:
        raise InvalidInput(
            f"a route's version must be a whole number >= 1, got {r.version!r} "
            f"for model {r.model!r}",
            field=field,
        )
    pct = r.percent
    if isinstance(pct, bool) or not isinstance(pct, int | float) or not math.isfinite(pct):
        raise InvalidInput(f"route percent must be a number, got {pct!r}", field=field)
    if not 0 <= pct <= 100:
        raise InvalidInput(
            f"route percent must lie in 0..100, got {pct} for {r.model} v{r.version}",
            field=field,
        )


def _float_percent(r: Route | None) -> Route | None:
    return None if r is None else replace(r, percent=float(r.percent))


#: Field checks: the accepted types and how a message names them.
_Kind = tuple[tuple[type, ...], str]
_STR: _Kind = ((str,), "a str")
_OPT_STR: _Kind = ((str, type(None)), "a str or None")
_WHOLE: _Kind = ((int,), "a whole number")
_NUMBER: _Kind = ((numbers.Real,), "a finite number (clip infinities, drop NaN)")
_TIME: _Kind = ((datetime,), "a datetime")
_DICT: _Kind = ((dict,), "a dict")

#: What each changeable endpoint field other than the routes must hold.
_CHANGE_KINDS: dict[str, _Kind] = {
    "shadow": ((Route, type(None)), "a Route or None"),
    "entity_key": _OPT_STR,
    "description": _STR,
    "policy_version": _WHOLE,
}
_PREDICTION_KINDS: dict[str, _Kind] = {
    "model": _STR,
    "decision": _STR,
    "entity": _OPT_STR,
    "version": _WHOLE,
    "policy_version": _WHOLE,
    "score": _NUMBER,
    "latency_ms": _NUMBER,
    "at": _TIME,
    "inputs": _DICT,
    "reasons": ((list,), "a list"),
}
_FEEDBACK_KINDS: dict[str, _Kind] = {"label": _NUMBER, "at": _TIME, "entity": _OPT_STR}
_POLICY_KINDS: dict[str, _Kind] = {
    "spec": ((dict,), "a dict (the JSON form of a decision policy)"),
    "reason": _STR,
    "created_by": _STR,
    "created_at": _TIME,
}
_ALERT_KINDS: dict[str, _Kind] = {
    **dict.fromkeys(("rule", "subject", "message"), _STR),
    **dict.fromkeys(("value", "threshold"), _NUMBER),
    **dict.fromkeys(("window_start", "window_end", "at"), _TIME),
    "details": _DICT,
    "delivered_at": ((datetime, type(None)), "a datetime or None"),
}


def _check_fields(values: dict[str, Any], kinds: dict[str, _Kind], where: str = "") -> None:
    """InvalidInput naming the first value not of its kind (bools are no numbers)."""
    for name, value in values.items():
        types, expected = kinds[name]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and kinds[name] is _NUMBER:
            ok = math.isfinite(float(value))
        if not ok:
            simple = isinstance(value, int | float | str | None)
            shown = repr(value) if simple else f"a {type(value).__name__}"
            raise InvalidInput(
                f"{where + ': ' if where else ''}{name} must be {expected}, got {shown}",
                field=name,
            )


def _check_record(record: Any, kinds: dict[str, _Kind], where: str = "") -> None:
    _check_fields({name: getattr(record, name) for name in kinds}, kinds, where)


def check_endpoint_changes(changes: dict[str, Any]) -> None:
    """Raise :class:`InvalidInput` for a field that may not be changed, or a
    value of the wrong type (routes are checked with the resulting shadow by
    :func:`changed_endpoint`)."""
    unknown = sorted(set(changes) - ENDPOINT_MUTABLE_FIELDS)
    if unknown:
        raise InvalidInput(
            f"cannot change endpoint field(s) {', '.join(unknown)}; "
            f"changeable: {', '.join(sorted(ENDPOINT_MUTABLE_FIELDS))}",
            field=unknown[0],
        )
    _check_fields({k: v for k, v in changes.items() if k != "routes"}, _CHANGE_KINDS)
    for name in ("description", "entity_key"):
        if name in changes:
            check_text(changes[name], name, optional=True, name=f"endpoint field {name}")


def new_endpoint(endpoint: Endpoint, policy: PolicyVersion) -> tuple[Endpoint, PolicyVersion]:
    """The records :meth:`EndpointStore.create_endpoint` stores, checked.

    :class:`InvalidName` for a bad endpoint name; :class:`InvalidInput` for a
    bad split, a field of the wrong type or a policy of another endpoint.
    """
    if not isinstance(endpoint, Endpoint):
        raise InvalidInput(f"expected an Endpoint, got {type(endpoint).__name__}", field="endpoint")
    validate_name(endpoint.name, "endpoint")
    routes = check_routes(endpoint.routes, endpoint.shadow)
    _check_record(endpoint, {**_CHANGE_KINDS, "created_at": _TIME, "updated_at": _TIME})
    endpoint = checked_record(endpoint, ignore=("policy_version", "revision"))
    policy = check_policy(policy)
    if (policy.workspace, policy.endpoint) != (endpoint.workspace, endpoint.name):
        raise InvalidInput(
            f"the policy belongs to endpoint {policy.workspace}/{policy.endpoint}, not to "
            f"{endpoint.workspace}/{endpoint.name}; give it the endpoint's workspace and name",
            field="policy",
        )
    shadow = _float_percent(endpoint.shadow)
    stored = replace(endpoint, routes=routes, shadow=shadow, policy_version=1, revision=1)
    return stored, replace(policy, version=1)


def changed_endpoint(
    current: Endpoint,
    changes: dict[str, Any],
    *,
    expected_revision: int | None,
    at: datetime,
) -> Endpoint:
    """``current`` with ``changes`` (already passed through
    :func:`check_endpoint_changes`) applied: revision + 1, ``updated_at=at``.

    :class:`Conflict` if ``expected_revision`` is given and is not the stored
    revision. No changes at all return ``current`` as it is (nothing to reload).
    """
    if expected_revision is not None:
        _check_fields({"expected_revision": expected_revision}, {"expected_revision": _WHOLE})
        if expected_revision != current.revision:
            raise revision_conflict(
                current.workspace, current.name, current.revision, expected_revision
            )
    if not changes:
        return current
    updated = replace(current, **changes)
    if "routes" in changes or "shadow" in changes:
        routes = check_routes(updated.routes, updated.shadow)
        updated = replace(updated, routes=routes, shadow=_float_percent(updated.shadow))
    return replace(updated, revision=current.revision + 1, updated_at=at)


def check_policy(policy: PolicyVersion) -> PolicyVersion:
    """``policy`` with its time in UTC, if it can be stored (a JSON dict spec, text
    without NUL...); :class:`InvalidInput` naming the field otherwise."""
    if not isinstance(policy, PolicyVersion):
        raise InvalidInput(f"expected a PolicyVersion, got {type(policy).__name__}", field="policy")
    _check_record(policy, _POLICY_KINDS)
    json_text(policy.spec, "spec")
    return checked_record(policy, ignore=("version",))


def check_prediction_route(route: str | None) -> None:
    """Raise :class:`InvalidInput` unless ``route`` is None or in :data:`PREDICTION_ROUTES`."""
    if route is not None and route not in PREDICTION_ROUTES:
        raise InvalidInput(
            f"unknown prediction route {route!r}; routes are: {', '.join(PREDICTION_ROUTES)}",
            field="route",
        )


def check_window(since: datetime | None, until: datetime | None) -> None:
    """Raise :class:`InvalidInput` unless ``since`` and ``until`` are datetimes or None."""
    kind: _Kind = ((datetime, type(None)), "a datetime or None")
    _check_fields({"since": since, "until": until}, {"since": kind, "until": kind})


def check_before(before: Any) -> None:
    """Raise :class:`InvalidInput` unless ``before`` (of a deletion) is a datetime."""
    if not isinstance(before, datetime):
        raise InvalidInput(
            f"before must be a datetime (predictions logged before it are deleted), got {before!r}",
            field="before",
        )


def check_predictions(predictions: Sequence[Prediction]) -> list[tuple[Prediction, str, str]]:
    """Check a batch for :meth:`EndpointStore.append_predictions`.

    Returns each prediction with its ``inputs`` and ``reasons`` as JSON text
    (:func:`json_text`). :class:`InvalidInput` names the first bad field and
    its request id; :class:`AlreadyExists` the first request logged twice (per
    route) in the batch. Runs on the logging path: a record of the usual types
    costs a few type tests and one JSON encoding per field.
    """
    checked: list[tuple[Prediction, str, str]] = []
    seen: set[tuple[str, str, str, str]] = set()
    isfinite = math.isfinite
    for p in predictions:
        if not isinstance(p, Prediction):
            raise InvalidInput(
                f"expected Prediction records, got {type(p).__name__}", field="predictions"
            )
        rid = p.request_id
        if not isinstance(rid, str) or not rid or "\x00" in rid:
            raise InvalidInput(
                f"a prediction's request_id must be a non-empty str without NUL (\\x00), "
                f"got {rid!r}",
                field="request_id",
            )
        if isinstance(p.entity, str) and "\x00" in p.entity:
            raise InvalidInput(
                f"prediction {rid!r}: entity {p.entity!r} holds NUL (\\x00); remove it",
                field="entity",
            )
        for name, text in (("model", p.model), ("decision", p.decision)):
            if isinstance(text, str) and "\x00" in text:
                raise InvalidInput(
                    f"prediction {rid!r}: {name} {text!r} holds NUL (\\x00); remove it",
                    field=name,
                )
        if p.route not in PREDICTION_ROUTES:
            raise InvalidInput(
                f"prediction {rid!r} has route {p.route!r}; "
                f"routes are: {', '.join(PREDICTION_ROUTES)}",
                field="route",
            )
        usual = (
            type(p.score) is float
            and isfinite(p.score)
            and type(p.latency_ms) is float
            and isfinite(p.latency_ms)
            and type(p.version) is int
            and type(p.policy_version) is int
            and isinstance(p.model, str)
            and isinstance(p.decision, str)
            and (p.entity is None or isinstance(p.entity, str))
            and isinstance(p.at, datetime)
            and isinstance(p.inputs, dict)
            and isinstance(p.reasons, list)
        )
        if not usual:  # ints for floats, subclasses... or a bad field
            _check_record(p, _PREDICTION_KINDS, f"prediction {rid!r}")
        key = (p.workspace, p.endpoint, rid, p.route)
        if key in seen:
            raise prediction_exists(p.workspace, p.endpoint, rid, p.route)
        seen.add(key)
        checked.append((p, json_text(p.inputs, "inputs"), json_text(p.reasons, "reasons")))
    return checked


#: Encodes what :func:`~leptonic.storage.metadata.base.json_value` accepts (dicts
#: with str keys, lists, tuples, str, int, finite floats, bool, None) in C.
_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
_NESTED = (dict, list, tuple)


def json_text(value: Any, field: str) -> str:
    """``value`` as JSON text, if it passes :func:`~leptonic.storage.metadata.base.json_value`.

    orjson encodes it in C and refuses what JSON cannot hold but non-finite
    floats (which it would write as ``null``), so a walk over the floats
    checks those. Anything refused is handed to ``json_value`` for the error
    that names the problem.
    """
    try:
        text = orjson.dumps(value, option=_STRICT)
    except TypeError:  # a key that is not a str, a numpy number, an int beyond 64 bits...
        pass
    else:
        # orjson writes NaN and infinities as null: no "null" in the text, none in the value
        if b"null" not in text or _finite(value):
            return text.decode()
    from leptonic.storage.metadata.base import json_value  # base imports this module

    json_value(value, field)  # raises InvalidInput, unless a Mapping that is not a dict
    return _encode(_plain(value))


def json_copy(value: Any, field: str) -> Any:
    """``value`` as a SQL store gives it back: written as JSON and read again (tuples
    become lists, mappings dicts); :class:`InvalidInput` naming ``field`` when JSON
    cannot hold it. For the memory store, which must give back what SQL does."""
    return json.loads(json_text(value, field))


#: orjson would write datetimes, dataclasses and subclasses of str, int, dict...
#: on its own; make it refuse them, like json_value (the fallback decides).
_STRICT = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _finite(value: Any) -> bool:
    """Whether every float in ``value``, at any depth, is finite."""
    kind = type(value)
    if kind is float:
        return bool(value - value == 0.0)
    if kind is dict:
        items: Iterable[Any] = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return True
    for item in items:
        t = type(item)
        if t is float:
            if item - item != 0.0:
                return False
        elif (t is dict or t is list or t is tuple) and not _finite(item):
            return False
    return True


def _str_keys(value: Any) -> bool:
    """Whether every dict key in ``value``, at any depth, is a str (loops in C)."""
    if isinstance(value, dict):
        if not all(map(isinstance, value, repeat(str))):
            return False
        items: Iterable[Any] = value.values()
    elif isinstance(value, list | tuple):
        items = value
    else:
        return True
    if any(map(isinstance, items, repeat(_NESTED))):
        return all(_str_keys(item) for item in items if isinstance(item, _NESTED))
    return True


def _plain(value: Any) -> Any:
    """``value`` with every Mapping made a dict (json_value accepts any Mapping)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def check_feedback(items: Sequence[Feedback]) -> list[Feedback]:
    """Check a batch for :meth:`EndpointStore.add_feedback`.

    Returns one item per request, the batch's last (a later outcome replaces an
    earlier one), in the order the requests first appear.
    """
    latest: dict[tuple[str, str, str], Feedback] = {}
    for f in items:
        if not isinstance(f, Feedback):
            raise InvalidInput(f"expected Feedback records, got {type(f).__name__}", field="items")
        if not isinstance(f.request_id, str) or not f.request_id:
            raise InvalidInput(
                f"feedback's request_id must be a non-empty str, got {f.request_id!r}",
                field="request_id",
            )
        check_text(f.request_id, "request_id", name="feedback's request_id")
        _check_record(f, _FEEDBACK_KINDS, f"feedback for request {f.request_id!r}")
        check_text(f.entity, "entity", optional=True, name=f"feedback {f.request_id!r}: entity")
        latest[(f.workspace, f.endpoint, f.request_id)] = f
    return list(latest.values())


def check_alert_status(status: str) -> str:
    """``status`` if it is one of :data:`ALERT_STATUSES`, else :class:`InvalidInput`."""
    if status not in ALERT_STATUSES:
        raise InvalidInput(
            f"unknown alert status {status!r}; statuses are: {', '.join(ALERT_STATUSES)}",
            field="status",
        )
    return status


def check_alert_endpoint(alert_id: int, owner: str, endpoint: str | None) -> None:
    """:class:`InvalidInput` when an alert of endpoint ``owner`` is asked for as one of
    ``endpoint`` (None: any endpoint)."""
    if endpoint is not None and owner != endpoint:
        raise InvalidInput(
            f"alert {alert_id} belongs to endpoint {owner!r}, not {endpoint!r}; change it "
            f"through endpoint {owner!r}",
            field="alert_id",
        )


def check_delivered(alert_ids: Sequence[int], at: Any) -> list[int]:
    """The arguments of :meth:`EndpointStore.set_alerts_delivered`: ``alert_ids`` as a
    list of ints; :class:`InvalidInput` naming the first bad one, or a bad ``at``."""
    if isinstance(alert_ids, str | bytes) or not isinstance(alert_ids, Sequence):
        raise InvalidInput("alert_ids must be a list of alert ids", field="alert_ids")
    for i in alert_ids:
        if isinstance(i, bool) or not isinstance(i, int):
            raise InvalidInput(f"alert ids are whole numbers, got {i!r}", field="alert_ids")
    if not isinstance(at, datetime):
        raise InvalidInput(f"at must be a datetime, got {at!r}", field="at")
    return list(alert_ids)


def policy_replaced(endpoint: str, expected: int, active: int) -> Conflict:
    """The error for a policy derived from version ``expected`` while ``active`` is active."""
    return Conflict(
        f"endpoint {endpoint!r} now runs policy version {active}, not {expected} that this "
        "change was worked out from; look at the new policy and try again",
        field="policy_version",
    )


def check_alert(alert: Alert) -> Alert:
    """``alert`` with its times in UTC, if it can be stored; :class:`InvalidInput`
    naming the field otherwise."""
    if not isinstance(alert, Alert):
        raise InvalidInput(f"expected an Alert, got {type(alert).__name__}", field="alert")
    check_alert_status(alert.status)
    _check_record(alert, _ALERT_KINDS, f"alert {alert.rule!r}")
    json_text(alert.details, "details")
    return checked_record(alert, ignore=("id",))


class EndpointStore(abc.ABC):
    """Endpoints, policy versions, the prediction log, feedback and alerts."""

    # -- endpoints ------------------------------------------------------------
    @abc.abstractmethod
    def create_endpoint(self, endpoint: Endpoint, policy: PolicyVersion) -> Endpoint:
        """Store a new endpoint and its first policy version in one transaction.

        The endpoint's ``policy_version`` and the policy's ``version`` are set
        to 1 and its ``revision`` to 1. :class:`NotFound` if the workspace or
        a routed (or shadow) model version does not exist; :class:`AlreadyExists`
        if the name is taken; :class:`InvalidInput` for a bad split
        (:func:`check_routes`), a spec that is not JSON or a policy of another
        endpoint; :class:`~leptonic.errors.InvalidName` for a bad name.
        Percents are returned (and read back) as floats.
        """

    @abc.abstractmethod
    def get_endpoint(self, workspace: str, name: str) -> Endpoint:
        """The endpoint called ``name``; :class:`NotFound` if there is none (or no
        such workspace)."""

    @abc.abstractmethod
    def list_endpoints(self, workspace: str) -> list[Endpoint]:
        """The workspace's endpoints, by name."""

    @abc.abstractmethod
    def update_endpoint(
        self,
        workspace: str,
        name: str,
        *,
        expected_revision: int | None = None,
        **changes: Any,
    ) -> Endpoint:
        """Change fields in :data:`ENDPOINT_MUTABLE_FIELDS`, atomically.

        The revision grows by one and ``updated_at`` is set. :class:`Conflict`
        if ``expected_revision`` is given and differs from the stored one (a
        concurrent change won). Routes are checked as in
        :meth:`create_endpoint` (with the resulting shadow, whose model version
        must exist too); ``policy_version`` must name an existing policy
        version of this endpoint (:class:`NotFound`). A call without changes
        only checks ``expected_revision`` and returns the endpoint unchanged.
        """

    @abc.abstractmethod
    def add_policy_version(
        self,
        policy: PolicyVersion,
        *,
        activate: bool = True,
        expected_active: int | None = None,
    ) -> PolicyVersion:
        """Store the endpoint's next policy version (its ``version`` field is
        ignored and assigned: highest + 1); with ``activate`` it also becomes
        the endpoint's ``policy_version`` (revision + 1), in the same transaction.

        :class:`NotFound` if the endpoint does not exist; :class:`InvalidInput`
        if the spec is not a JSON dict; :class:`Conflict` (nothing stored) when
        ``expected_active`` is given and another policy version is active: the
        caller derived this one from a policy that was replaced meanwhile.
        """

    @abc.abstractmethod
    def get_policy_version(self, workspace: str, endpoint: str, version: int) -> PolicyVersion:
        """One policy version; :class:`NotFound` if absent."""

    @abc.abstractmethod
    def list_policy_versions(self, workspace: str, endpoint: str) -> list[PolicyVersion]:
        """All policy versions of an endpoint, oldest first."""

    # -- prediction log -------------------------------------------------------------
    @abc.abstractmethod
    def append_predictions(self, predictions: Sequence[Prediction]) -> int:
        """Append logged predictions in one transaction (all or none); returns the count.

        ``(workspace, endpoint, request_id, route)`` is unique: a repeat raises
        :class:`AlreadyExists` and nothing of the batch is written. The
        endpoint must exist (:class:`NotFound`); a bad field is
        :class:`InvalidInput` naming it and the request id (scores and
        latencies must be finite, inputs a JSON dict, reasons a JSON list).
        A batch may mix endpoints. Meant for batches of thousands:
        implementations insert them with one statement per batch.
        """

    @abc.abstractmethod
    def list_predictions(
        self,
        workspace: str,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        route: str | None = "live",
        limit: int | None = 100,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[Prediction]:
        """Logged predictions with ``since <= at < until``, of one route (None: both).

        Ordered by ``(at, request_id, route)``, newest first unless
        ``newest_first`` is False; ``limit`` None: all. :class:`NotFound` if
        the endpoint does not exist; :class:`InvalidInput` for an unknown route.
        """

    @abc.abstractmethod
    def count_predictions(
        self,
        workspace: str,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        route: str | None = "live",
    ) -> int:
        """How many predictions :meth:`list_predictions` would return without a limit."""

    @abc.abstractmethod
    def get_prediction(
        self, workspace: str, endpoint: str, request_id: str, *, route: str = "live"
    ) -> Prediction:
        """One logged prediction; :class:`NotFound` naming the request id if absent."""

    @abc.abstractmethod
    def latest_prediction_for_entity(
        self, workspace: str, endpoint: str, entity: str
    ) -> Prediction | None:
        """The newest live prediction for an entity key value, or None.

        Newest by ``at`` (then the greatest request id).
        """

    @abc.abstractmethod
    def delete_predictions(self, workspace: str, endpoint: str, *, before: datetime) -> int:
        """Delete the endpoint's logged predictions (both routes) with ``at < before``,
        and the outcomes recorded for them; returns how many predictions were deleted
        (a retention policy: the log grows with every answer). A database deletes in
        batches of a transaction each, one route after the other, oldest first within
        a route, an outcome with its prediction: an interrupted call leaves a
        consistent log, and the rest for the next call.
        :class:`NotFound` if the endpoint does not exist; :class:`InvalidInput` if
        ``before`` is not a datetime."""

    # -- feedback ------------------------------------------------------------------
    @abc.abstractmethod
    def add_feedback(self, items: Sequence[Feedback]) -> int:
        """Record outcomes, all or none; returns the number of items given.

        Each must name a live prediction of its endpoint (:class:`NotFound`
        naming the first unknown request id, and nothing is written). A later
        outcome for the same request replaces the earlier one (outcomes get
        corrected), within a batch too (the last one wins).
        """

    @abc.abstractmethod
    def labelled_predictions(
        self,
        workspace: str,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[tuple[Prediction, Feedback]]:
        """Live predictions with ``since <= at < until`` that have an outcome,
        joined to it, oldest first (by ``at``, then request id); the window
        applies to the prediction's ``at``; ``limit`` None: all."""

    # -- alerts ----------------------------------------------------------------------
    @abc.abstractmethod
    def add_alert(self, alert: Alert) -> Alert:
        """Store an alert; returns it with its ``id`` assigned (increasing).

        The endpoint must exist (:class:`NotFound`); ``value`` and
        ``threshold`` must be finite and ``status`` one of :data:`ALERT_STATUSES`.
        """

    @abc.abstractmethod
    def list_alerts(
        self,
        workspace: str,
        endpoint: str | None = None,
        *,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Alert]:
        """Alerts, newest first (by ``id``), optionally of one endpoint and one status."""

    @abc.abstractmethod
    def set_alert_status(
        self, workspace: str, alert_id: int, status: str, *, endpoint: str | None = None
    ) -> Alert:
        """Change an alert's status (one of :data:`ALERT_STATUSES`); returns it.

        :class:`NotFound` for an unknown id or an alert of another workspace;
        with ``endpoint``, :class:`InvalidInput` (nothing changed) for an alert of
        another endpoint.
        """

    @abc.abstractmethod
    def set_alerts_delivered(
        self, workspace: str, endpoint: str, alert_ids: Sequence[int], at: datetime
    ) -> int:
        """Record that a webhook took these alerts of ``endpoint`` at ``at``; returns how
        many were marked. Ids of other endpoints or workspaces are left alone (not
        counted). :class:`NotFound` if the endpoint does not exist."""
