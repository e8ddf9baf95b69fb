"""The writing half of a served recommender: events, new users and items, snapshots.

:class:`OnlineUpdates` is mixed into
:class:`~leptonic.tasks.recsys.predictor.RecommenderPredictor`, which owns the
state it updates. Every writer holds the predictor's one lock; readers never
lock (see the predictor's module docstring for why that is safe).
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leptonic.errors import InvalidInput
from leptonic.tasks.recsys._catalogue import Catalogue
from leptonic.tasks.recsys._data import (
    Confidence,
    Ids,
    check_weights,
    parse_timestamps,
    plain_value,
)
from leptonic.tasks.recsys._foldin import als_solve, bpr_item, bpr_user
from leptonic.tasks.recsys._shortlist import Row, Shortlists

__all__ = ["MAX_EVENTS_PER_CALL", "Member", "OnlineUpdates", "UserState"]

#: The most events one ``add_events`` call may carry.
MAX_EVENTS_PER_CALL = 10_000

_NO_ITEMS = np.zeros(0, dtype=np.int64)
_NO_VALUES = np.zeros(0, dtype=np.float64)


@dataclass(frozen=True)
class UserState:
    """A user's online state; replaced as a whole on every update.

    ``times`` (item code → the times of the user's online events on it, for
    repeat detection) is the exception: one index per user, shared by the
    user's successive states and only added to, by the writer, once an update
    has succeeded. Copying it on every event would make each event cost as
    much as all the user's earlier ones; a reader holding an older state may
    see the times of newer events, which only makes it refuse a resend sooner.
    """

    items: np.ndarray  # sorted item codes
    raw: np.ndarray  # summed raw weights
    conf: np.ndarray  # confidences
    vector: np.ndarray | None
    times: dict[int, set[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Member:
    """One ALS model inside the (possibly blended) factors: its columns and fold-in terms."""

    start: int
    stop: int
    scale: float
    reg: float
    confidence: Confidence
    weight: float


class OnlineUpdates(abc.ABC):
    """Online updates of a recommender's state (the predictor provides the state)."""

    kind: str
    params: dict[str, Any]
    confidence: Confidence
    seed: int
    _cat: Catalogue
    _users: Ids
    _lock: threading.Lock
    _online: dict[int, UserState]
    _fresh: dict[int, dict[int, float]]
    _fresh_codes: np.ndarray
    _shortlists: Shortlists | None
    _members: list[Member]
    _user_factors: np.ndarray | None
    _user_gram: np.ndarray | None
    _user_columns: dict[str, list[Any]]
    _user_attrs: dict[int, dict[str, Any]]
    _indptr: np.ndarray
    _indices: np.ndarray
    _times: np.ndarray | None
    _n_base: int
    max_k: int

    @abc.abstractmethod
    def _listed_row(self, code: int, size: int) -> Row | None: ...  # the predictor's

    @abc.abstractmethod
    def _view(
        self, code: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]: ...  # the predictor's

    @abc.abstractmethod
    def _user_code(self, user: Any) -> int | None: ...  # the predictor's

    def add_user(self, user: Any, attributes: Mapping[str, Any] | None = None) -> None:
        """Register a user (no events yet: cold start), or update a user's attributes."""
        if attributes is not None and not isinstance(attributes, Mapping):
            raise InvalidInput("attributes must be a mapping", field="attributes")
        if self._users.key(user) is None:
            raise InvalidInput(
                f"user {user!r} is not a valid {self._users.kind} user id", field="user"
            )
        clean = {str(k): plain_value(v) for k, v in (attributes or {}).items()}
        with self._lock:
            code = self._users.code(user)
            if code is None:
                code = self._users.add(user)
            if clean:
                self._user_attrs[code] = {**self._user_attrs.get(code, {}), **clean}

    def add_items(
        self,
        items: Sequence[Any],
        attributes: Mapping[Any, Mapping[str, Any]] | None = None,
    ) -> None:
        """Add new items to the catalogue (``partial_fit_items`` semantics).

        A new item has no factors and no neighbours until events arrive: for
        ALS and BPR its vector is then folded in from the users who
        interacted with it; item-kNN cannot recommend it before retraining;
        every model counts it in the popularity used by the cold start.
        """
        if isinstance(items, str | int | np.integer):
            items = [items]
        items = list(items)
        if not items:
            raise InvalidInput("give at least one item to add", field="items")
        if attributes is not None and not isinstance(attributes, Mapping):
            raise InvalidInput(
                "attributes must map item id → {attribute: value}", field="attributes"
            )
        with self._lock:
            cat = self._cat
            keys = []
            for item in items:
                key = cat.ids.key(item)
                if key is None:
                    raise InvalidInput(
                        f"item {item!r} is not a valid {cat.ids.kind} item id", field="items"
                    )
                if key in cat.ids.index or key in keys:
                    raise InvalidInput(f"item {item!r} is already in the catalogue", field="items")
                keys.append(key)
            rows = []
            for item in items:
                attrs = (attributes or {}).get(item) or {}
                if not isinstance(attrs, Mapping):
                    raise InvalidInput(
                        f"attributes of item {item!r} must be a mapping", field="attributes"
                    )
                rows.append({str(k): plain_value(v) for k, v in attrs.items()})
            new_cat = cat.extended(len(keys), rows)
            codes = [cat.ids.add(key) for key in keys]
            for c in codes:
                self._fresh[c] = {}
            self._fresh_codes = np.array(sorted(self._fresh), dtype=np.int64)
            self._cat = new_cat

    def add_events(
        self,
        user: Any,
        items: Sequence[Any] | Any,
        weights: Sequence[float] | float | None = None,
        timestamps: Sequence[Any] | None = None,
    ) -> int:
        """Apply a user's new events at once; the next ``recommend`` reflects them.

        The user's vector is folded in again from all of the user's events
        (ALS: exact least squares against the fixed item factors, the
        solution ``implicit``'s ``recalculate_user`` computes; BPR: a few
        gradient steps), the events join the seen set, popularity counts
        grow, and items added online get their vectors folded in from their
        users.

        Parameters
        ----------
        user
            A known user (register new users with :meth:`add_user`).
        items
            Item ids, all in the catalogue (add new ones with :meth:`add_items`).
        weights
            Raw weights (rating, quantity...) per event, or one number for
            one event; default 1.
        timestamps
            Event times (epoch seconds, datetimes or ISO 8601); default now.
            An event whose (user, item, time) was already applied is refused.

        Returns
        -------
        int
            The number of events applied.
        """
        code = self._user_code(user)
        if code is None:
            raise InvalidInput(
                f"unknown user {user!r}; register the user first with add_user()", field="user"
            )
        if isinstance(items, np.ndarray):
            items = items.tolist()  # a 0-d array gives its one value: wrapped below
        if isinstance(items, str | int | np.integer) or not isinstance(items, Sequence):
            items = [items]
        n = len(items)
        if n == 0 or n > MAX_EVENTS_PER_CALL:
            raise InvalidInput(
                f"an update carries 1 to {MAX_EVENTS_PER_CALL} events; got {n}", field="items"
            )
        cat = self._cat
        codes = np.empty(n, dtype=np.int64)
        for j, item in enumerate(items):
            c = cat.ids.code(item)
            if c is None or c >= cat.n_items:
                raise InvalidInput(
                    f"unknown item {item!r} in the events; add it to the catalogue first "
                    "with add_items()",
                    field="items",
                )
            codes[j] = c
        if weights is None:
            w = np.ones(n)
        else:
            if isinstance(weights, np.ndarray):
                weights = weights.tolist()  # a 0-d array gives its one value: wrapped below
            if isinstance(weights, str) or not isinstance(weights, Sequence):
                weights = [weights]  # one weight, like one timestamp
            w = check_weights(list(weights), field="weights")
        if w.size != n:
            raise InvalidInput(f"weights has {w.size} values for {n} items", field="weights")
        if timestamps is None:
            ts = np.full(n, time.time())
        else:
            if isinstance(timestamps, str) or not isinstance(timestamps, Sequence | np.ndarray):
                timestamps = [timestamps]
            ts = parse_timestamps(list(timestamps), field="timestamps")
            if ts.size != n:
                raise InvalidInput(
                    f"timestamps has {ts.size} values for {n} items", field="timestamps"
                )
        pairs = set(zip(codes.tolist(), ts.tolist(), strict=True))
        if len(pairs) != n:
            raise InvalidInput(
                "duplicate events: the same item at the same time appears twice in this update",
                field="items",
            )
        with self._lock:
            return self._apply(code, codes, w, ts)

    def holds_event(self, user: int, item: int, at: float) -> bool | None:
        """Whether the event of user code ``user`` on item code ``item`` at ``at``
        (epoch seconds) was applied to this model.

        True when it was applied online or is the pair's latest training
        event; False when it certainly was not; None when the training data
        had the pair earlier than its latest time or without times (a model
        keeps only the latest time of a pair, so it cannot tell).
        """
        state = self._online.get(user)
        if state is not None and at in state.times.get(item, ()):
            return True
        if user >= self._n_base:
            return False
        lo, hi = self._indptr[user], self._indptr[user + 1]
        pos = lo + int(np.searchsorted(self._indices[lo:hi], item))
        if pos >= hi or self._indices[pos] != item:
            return False
        if self._times is None:
            return None
        last = float(self._times[pos])
        return True if last == at else (None if at < last else False)

    def _last_time(self, code: int, item: int) -> float | None:
        if self._times is None or code >= self._n_base:
            return None
        lo, hi = self._indptr[code], self._indptr[code + 1]
        pos = lo + int(np.searchsorted(self._indices[lo:hi], item))
        if pos < hi and self._indices[pos] == item:
            return float(self._times[pos])
        return None

    def _apply(self, code: int, codes: np.ndarray, w: np.ndarray, ts: np.ndarray) -> int:
        cat = self._cat
        old = self._online.get(code)
        items, _, raw, vector = self._view(code)
        times = old.times if old is not None else {}  # shared, added to below (see UserState)
        for c, t in zip(codes.tolist(), ts.tolist(), strict=True):
            if t in times.get(c, ()) or self._last_time(code, c) == t:
                raise InvalidInput(
                    f"duplicate event: item {cat.ids.values[c]!r} at time {t} was already "
                    "recorded for this user",
                    field="timestamps",
                )
        merged, inverse = np.unique(np.r_[items, codes], return_inverse=True)
        new_raw = np.bincount(inverse, weights=np.r_[raw, w])
        new_conf = self.confidence(new_raw)
        new_vector = self._fold_user(cat, code, merged, new_raw, new_conf, vector)
        # nothing above changed the model: an error there leaves it as it was
        newly = np.setdiff1d(np.unique(codes), items)
        cat.popularity[newly] += 1.0
        short = self._shortlists
        if short is not None:  # unlisted until listed again: answers score the catalogue
            short.set_row(code, None)
        for c, t in zip(codes.tolist(), ts.tolist(), strict=True):
            times.setdefault(c, set()).add(t)
        self._online[code] = UserState(merged, new_raw, new_conf, new_vector, times)
        for c in np.unique(codes).tolist():
            if c in self._fresh:
                self._fresh[c][code] = float(new_raw[np.searchsorted(merged, c)])
                self._fold_item(cat, c)
        if short is not None:
            short.set_row(code, self._listed_row(code, short.size))
        return int(codes.size)

    def _fold_user(
        self,
        cat: Catalogue,
        code: int,
        items: np.ndarray,
        raw: np.ndarray,
        conf: np.ndarray,
        vector: np.ndarray | None,
    ) -> np.ndarray | None:
        if cat.item_factors is None:
            return None
        if self.kind in ("als", "bpr") and not cat.item_factors[items].any():
            # every seen item was added online and has no factors yet: nothing to fold in
            # from. A zero vector (BPR: but its constant 1) sends the user to the cold start.
            zero = np.zeros(cat.item_factors.shape[1], dtype=np.float32)
            if self.kind == "bpr":
                zero[-1] = 1.0
            return zero
        if self.kind == "als" and cat.gram is not None:
            parts = []
            for m in self._members:
                block = cat.item_factors[items, m.start : m.stop]
                gram = cat.gram[m.start : m.stop, m.start : m.stop]
                start = None if vector is None else vector[m.start : m.stop] / m.weight
                x = als_solve(gram, block, m.confidence(raw) * m.scale, m.reg, start)
                parts.append(x * np.float32(m.weight))
            return np.concatenate(parts).astype(np.float32)
        if self.kind == "bpr":
            return bpr_user(
                cat.item_factors,
                items,
                conf,
                vector,
                regularization=float(self.params["regularization"]),
                seed=self.seed * 1_000_003 + code,
            )
        return None

    def _fold_item(self, cat: Catalogue, item: int) -> None:
        if cat.item_factors is None:
            return
        users = list(self._fresh[item].items())
        views = [(u, r, self._view(u)) for u, r in users]
        views = [(u, r, v) for u, r, v in views if v[3] is not None]
        if not views:
            return
        vecs = np.stack([np.asarray(v[3]) for _, _, v in views]).astype(np.float64)
        if self.kind == "als":
            if self._user_gram is None:
                base = (
                    self._user_factors.astype(np.float64)
                    if self._user_factors is not None
                    else np.zeros((0, vecs.shape[1]))
                )
                self._user_gram = base.T @ base
            raw = np.array([r for _, r, _ in views])
            parts = []
            for m in self._members:
                # stored user vectors are the member's vectors times its weight
                block = vecs[:, m.start : m.stop] / m.weight
                gram = self._user_gram[m.start : m.stop, m.start : m.stop] / m.weight**2
                parts.append(als_solve(gram, block, m.confidence(raw) * m.scale, m.reg))
            cat.set_factor(item, np.concatenate(parts).astype(np.float32))
        elif self.kind == "bpr":
            targets = []
            for _, _, (its, _, _, vec) in views:
                others = its[its != item]
                liked = cat.item_factors[others] @ vec if others.size else np.ones(1)
                targets.append(float(np.mean(liked)))
            cat.set_factor(item, bpr_item(vecs, np.asarray(targets)))

    # -- snapshot (for saving) -----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The current state, training and online events merged, as arrays and JSON values."""
        with self._lock:
            cat = self._cat
            n_users = len(self._users)
            indptr = [0]
            cols: list[np.ndarray] = []
            raws: list[np.ndarray] = []
            times: list[np.ndarray] = []
            vectors = None
            if self._user_factors is not None:
                width = self._user_factors.shape[1]
                vectors = np.zeros((n_users, width), dtype=np.float32)
                vectors[: self._n_base] = self._user_factors
            for u in range(n_users):
                items, _, raw, vec = self._view(u)
                cols.append(items)
                raws.append(raw)
                indptr.append(indptr[-1] + items.size)
                if vectors is not None and vec is not None:
                    vectors[u] = vec
                if self._times is not None:
                    st = self._online.get(u)
                    last = [self._last_time(u, int(i)) for i in items]
                    t = np.array([-np.inf if x is None else x for x in last], dtype=np.float64)
                    if st is not None:
                        extra = [max(st.times.get(int(i), frozenset({-np.inf}))) for i in items]
                        t = np.maximum(t, np.asarray(extra, dtype=np.float64))
                    times.append(t)
            user_columns = {name: list(values) for name, values in self._user_columns.items()}
            for name in {k for attrs in self._user_attrs.values() for k in attrs}:
                user_columns.setdefault(name, [])
            for name, values in user_columns.items():
                values.extend([None] * (n_users - len(values)))
                for code, attrs in self._user_attrs.items():
                    if name in attrs:
                        values[code] = attrs[name]
            arrays: dict[str, np.ndarray] = {
                "user_ids": self._users.array(),
                "item_ids": Ids(cat.ids.values[: cat.n_items], cat.ids.kind).array(),
                "seen_indptr": np.asarray(indptr, dtype=np.int64),
                "seen_indices": np.concatenate(cols).astype(np.int64) if cols else _NO_ITEMS,
                "seen_raw": np.concatenate(raws) if raws else _NO_VALUES,
                "popularity": cat.popularity.copy(),
                "fresh_items": np.array(sorted(self._fresh), dtype=np.int64),
            }
            if times:
                arrays["seen_times"] = np.concatenate(times)
            if vectors is not None:
                arrays["user_factors"] = vectors
            if cat.item_factors is not None:
                arrays["item_factors"] = cat.item_factors.copy()
            if cat.similarity is not None:
                arrays["sim_indptr"], arrays["sim_indices"], arrays["sim_data"] = cat.similarity
            meta: dict[str, Any] = {
                "kind": self.kind,
                "params": self.params,
                "confidence": self.confidence.to_dict(),
                "max_k": self.max_k,
                "seed": self.seed,
                "item_attributes": cat.attributes,
                "user_attributes": user_columns,
                "segments": None,
            }
            if cat.segments is not None:
                arrays["segments"] = cat.segments.matrix
                meta["segments"] = {"keys": cat.segments.keys, "edges": cat.segments.edges}
            return {"arrays": arrays, "meta": meta}
