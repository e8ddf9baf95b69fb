"""The policy of a recommendation endpoint: how it answers, which events it takes.

Stored as the endpoint's policy spec ``{"kind": "recommendation", "k": 10,
"max_k": 100, ...}``; :func:`recommendation_policy` checks one and fills in the
defaults. A new policy revision is picked up by a serving endpoint without a
restart (:class:`~leptonic.serving.recs.RecsHost`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from leptonic.errors import InvalidInput

__all__ = [
    "DEFAULT_EVENT_KINDS",
    "MAX_WEIGHT",
    "RECOMMENDATION",
    "RecsPolicy",
    "recommendation_policy",
    "weight_ok",
]

#: The task, and the policy kind, of recommendation endpoints.
RECOMMENDATION = "recommendation"

#: Event kinds an endpoint accepts unless its policy lists others.
DEFAULT_EVENT_KINDS = ("view", "click", "cart", "purchase", "rating", "interaction")

#: The largest weight an event may carry.
MAX_WEIGHT = 1e6

_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")


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
            if not weight_ok(w):
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


def weight_ok(w: Any) -> bool:
    """Whether ``w`` is a usable event weight: a number from 0 to :data:`MAX_WEIGHT`."""
    return (
        not isinstance(w, bool)
        and isinstance(w, int | float)
        and 0 <= w <= MAX_WEIGHT  # compared first: an int beyond floats has no float
    )
