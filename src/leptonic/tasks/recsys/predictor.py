"""The served recommender: answers from memory, updated online.

:class:`RecommenderPredictor` holds a fitted model (ALS, BPR, item-kNN or
popularity) as numpy arrays and answers :meth:`~RecommenderPredictor.recommend`
in tens of microseconds for catalogues of thousands of items: one
matrix-vector product (or a sparse gather for item-kNN), a mask, a partial
sort. Events posted with :meth:`~RecommenderPredictor.add_events` change the
user's vector and seen set at once, so the next call reflects them. For
serving, :meth:`~RecommenderPredictor.precompute` lists each user's best
items once (and again after each of their events), so that most answers
read a short list instead of scoring the catalogue.

Thread safety: any number of readers may call ``recommend``,
``similar_items`` and ``predict_one`` concurrently with one writer. Writers
(``add_events``, ``add_user``, ``add_items``) are serialised by one lock.
Readers never lock: a user's state is replaced as a whole (an immutable
record swapped in one assignment) and the catalogue is copied on write when
items are added, so a reader sees a user either before or after an event,
never half-way. A reader takes the catalogue first, then the user's state,
which may already hold events on items added after that catalogue: it
leaves those items out. Two benign races remain: popularity counts and the
factors of items added online are updated in place, so a concurrent reader
may see the previous or the new value of one item.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from leptonic.errors import InvalidInput
from leptonic.tasks.recsys._catalogue import Catalogue, Segments
from leptonic.tasks.recsys._data import Confidence, Ids, plain_value
from leptonic.tasks.recsys._models import ModelState
from leptonic.tasks.recsys._online import MAX_EVENTS_PER_CALL, Member, OnlineUpdates, UserState
from leptonic.tasks.recsys._shortlist import (
    BYTES_PER_ENTRY,
    Row,
    Shortlists,
    best_row,
    build_shortlists,
    top_k,
)

__all__ = ["MAX_EVENTS_PER_CALL", "Recommendation", "RecommenderPredictor"]

#: One recommendation: (item id, score, the seen item that explains it, or None).
Recommendation = tuple[Any, float, Any]

_NO_ITEMS = np.zeros(0, dtype=np.int64)
_NO_VALUES = np.zeros(0, dtype=np.float64)


class RecommenderPredictor(OnlineUpdates):
    """A fitted recommender, served from memory (see the module docstring).

    Parameters
    ----------
    state
        The fitted model (:class:`~leptonic.tasks.recsys._models.ModelState`).
    user_ids, item_ids
        Id tables of the training data.
    raw
        Users × items CSR of summed raw weights the model was fitted on (the
        seen items).
    last_times
        Latest event time of each stored pair (parallel to ``raw.data``), for
        duplicate checks; None when the data had no timestamps.
    item_attributes
        Attribute name → one value (or list of values) per item, for filters.
    user_attributes
        Attribute name → one value per user, for cold-start segments.
    popularity
        Interaction count per item (default: distinct users in ``raw``).
    segments
        Precomputed cold-start segments (default: fitted on ``user_attributes``).
    fresh_items
        Codes of items added online whose factors are folded in from events.
    max_k
        The largest ``k`` a call may ask for.
    seed
        Seed of the BPR fold-in's negative sampling.
    """

    task = "recommendation"

    def __init__(
        self,
        state: ModelState,
        *,
        user_ids: Ids,
        item_ids: Ids,
        raw: Any,
        last_times: np.ndarray | None = None,
        item_attributes: Mapping[str, list[Any]] | None = None,
        user_attributes: Mapping[str, list[Any]] | None = None,
        popularity: np.ndarray | None = None,
        segments: Segments | None = None,
        fresh_items: Sequence[int] = (),
        max_k: int = 1000,
        seed: int = 0,
    ) -> None:
        import scipy.sparse as sp

        raw = sp.csr_matrix(raw, dtype=np.float64)
        raw.sort_indices()
        if raw.shape != (len(user_ids), len(item_ids)):
            raise InvalidInput(
                f"raw matrix shape {raw.shape} does not match {len(user_ids)} users × "
                f"{len(item_ids)} items",
                field="raw",
            )
        self.kind = state.kind
        self.params = dict(state.params)
        self.confidence: Confidence = state.confidence
        self.max_k = int(max_k)
        self.seed = int(seed)
        self._members = self._als_members(self.params) if self.kind == "als" else []
        self._users = user_ids
        self._indptr = raw.indptr.astype(np.int64)
        self._indices = raw.indices.astype(np.int64)
        self._raw = raw.data.astype(np.float64)
        self._conf = self.confidence(self._raw)
        self._times = None if last_times is None else np.asarray(last_times, dtype=np.float64)
        self._n_base = raw.shape[0]
        self._user_factors = state.arrays.get("user_factors")
        if popularity is None:
            popularity = np.bincount(self._indices, minlength=raw.shape[1]).astype(np.float64)
        user_columns = {k: list(v) for k, v in (user_attributes or {}).items()}
        if segments is None and user_columns:
            presence = sp.csr_matrix(
                (np.ones_like(self._raw), self._indices, self._indptr), shape=raw.shape
            )
            segments = Segments.fit(user_columns, presence)
        similarity = None
        if "sim_indptr" in state.arrays:
            similarity = (
                state.arrays["sim_indptr"],
                state.arrays["sim_indices"],
                state.arrays["sim_data"],
            )
        self._cat = Catalogue(
            item_ids,
            item_factors=state.arrays.get("item_factors"),
            similarity=similarity,
            popularity=np.asarray(popularity, dtype=np.float64).copy(),
            attributes={k: [plain_value(x) for x in v] for k, v in (item_attributes or {}).items()},
            segments=segments,
            explain_width=self._members[0].stop if len(self._members) > 1 else None,
        )
        self._user_columns = user_columns
        self._user_attrs: dict[int, dict[str, Any]] = {}
        self._online: dict[int, UserState] = {}
        self._fresh: dict[int, dict[int, float]] = {int(c): {} for c in fresh_items}
        if self._fresh:
            for u in range(self._n_base):
                lo, hi = self._indptr[u], self._indptr[u + 1]
                for c, r in zip(self._indices[lo:hi], self._raw[lo:hi], strict=True):
                    if int(c) in self._fresh:
                        self._fresh[int(c)][u] = float(r)
        #: the codes of ``_fresh`` (replaced as a whole: readers do not lock)
        self._fresh_codes = np.array(sorted(self._fresh), dtype=np.int64)
        self._user_gram: np.ndarray | None = None
        self._shortlists: Shortlists | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _als_members(params: Mapping[str, Any]) -> list[Member]:
        members, start = [], 0
        for m in params.get("members", []):
            width = int(m["width"])
            members.append(
                Member(
                    start,
                    start + width,
                    float(m["scale"]),
                    float(m["reg"]),
                    Confidence.from_dict(m["confidence"]),
                    float(m["weight"]),
                )
            )
            start += width
        return members

    # -- facts ---------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self._users)

    @property
    def n_items(self) -> int:
        return self._cat.n_items

    @property
    def user_ids(self) -> list[Any]:
        return list(self._users.values)

    @property
    def item_ids(self) -> list[Any]:
        return list(self._cat.ids.values[: self._cat.n_items])

    @property
    def item_attributes(self) -> list[str]:
        return sorted(self._cat.attributes)

    @property
    def listed(self) -> bool:
        """Whether answers come from per-user shortlists (:meth:`precompute`)."""
        return self._shortlists is not None

    def user_key(self, user: Any) -> Any:
        """``user`` as this model's user ids spell it (``"05"`` and ``5`` are ``5`` when
        the ids are integers); None when it cannot be one of its user ids."""
        return self._users.key(user)

    def item_key(self, item: Any) -> Any:
        """``item`` as this model's item ids spell it; None when it cannot be one."""
        return self._cat.ids.key(item)

    def user_code(self, user: Any) -> int | None:
        """The dense code of ``user`` (None when unknown)."""
        return self._users.code(user)

    def item_code(self, item: Any) -> int | None:
        """The dense code of ``item`` (None when not in the catalogue)."""
        code = self._cat.ids.code(item)
        return code if code is not None and code < self._cat.n_items else None

    def seen(self, user: Any) -> list[Any]:
        """The items ``user`` interacted with (training and online)."""
        code = self._users.code(user)
        if code is None:
            return []
        items = self._view(code)[0]
        return [self._cat.ids.values[i] for i in items]

    @property
    def popularity(self) -> np.ndarray:
        """Interactions (distinct users) per item code, including online events."""
        return self._cat.popularity.copy()

    # -- state access --------------------------------------------------------------------------
    def _view(self, code: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(seen items, confidences, raw weights, vector) of a known user."""
        return self._view_of(code, self._online.get(code))

    def _view_of(
        self, code: int, st: UserState | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`_view` of ``code`` in online state ``st`` (None: as trained)."""
        if st is not None:
            return st.items, st.conf, st.raw, st.vector
        if code >= self._n_base:
            return _NO_ITEMS, _NO_VALUES, _NO_VALUES, None
        lo, hi = self._indptr[code], self._indptr[code + 1]
        vec = self._user_factors[code] if self._user_factors is not None else None
        return self._indices[lo:hi], self._conf[lo:hi], self._raw[lo:hi], vec

    def _seen_in(
        self, cat: Catalogue, code: int, st: UserState | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(seen items, confidences, vector) of ``code`` in state ``st``, the items limited
        to those of ``cat``: a writer may have added items, and the user's events on
        them, after the reader took ``cat``."""
        items, conf, _, vector = self._view_of(code, st)
        if items.size and items[-1] >= cat.n_items:  # sorted: only the last needs a look
            keep = items < cat.n_items
            items, conf = items[keep], conf[keep]
        return items, conf, vector

    def _has_signal(self, vectors: np.ndarray) -> Any:
        """Whether each user vector (a row, or one vector) says anything: not all zero
        (BPR: its last component is the constant 1 that reads the item biases). A user
        whose seen items have no factors yet (all added online) gets a zero vector."""
        body = vectors[..., :-1] if self.kind == "bpr" else vectors
        return np.any(body != 0, axis=-1)

    def _attributes_of(self, code: int) -> dict[str, Any]:
        attrs = {}
        if code < self._n_base:
            for name, values in self._user_columns.items():
                if code < len(values) and values[code] is not None:
                    attrs[name] = values[code]
        attrs.update(self._user_attrs.get(code, {}))
        return attrs

    # -- scoring -------------------------------------------------------------------------------
    def _scores(
        self, cat: Catalogue, items: np.ndarray, conf: np.ndarray, vector: np.ndarray | None
    ) -> np.ndarray | None:
        """Scores of every item of ``cat`` for a user with seen ``items``; None when those
        items say nothing (no factors, no neighbours): the caller falls back to the cold
        start."""
        if self.kind in ("als", "bpr") and cat.item_factors is not None:
            if vector is None or not self._has_signal(vector):
                return None
            return np.asarray(cat.item_factors @ vector, dtype=np.float64)
        if self.kind == "item_knn" and cat.similarity is not None:
            cols, vals, _ = self._gather(cat, items, conf)
            if cols.size == 0:
                return None
            return np.bincount(cols, weights=vals, minlength=cat.n_items).astype(np.float64)
        return cat.popularity.copy()

    @staticmethod
    def _gather(
        cat: Catalogue, items: np.ndarray, conf: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Neighbour (column, weighted similarity, source item) triples of ``items``."""
        if cat.similarity is None:
            return _NO_ITEMS, _NO_VALUES, _NO_ITEMS
        indptr, indices, data = cat.similarity
        starts, ends = indptr[items], indptr[items + 1]
        lens = ends - starts
        total = int(lens.sum())
        if total == 0:
            return _NO_ITEMS, _NO_VALUES, _NO_ITEMS
        offsets = np.repeat(starts - np.cumsum(np.r_[0, lens[:-1]]), lens) + np.arange(total)
        return (
            indices[offsets].astype(np.int64),
            data[offsets] * np.repeat(conf, lens),
            np.repeat(items, lens),
        )

    def _cold_scores(self, cat: Catalogue, attributes: Mapping[str, Any] | None) -> np.ndarray:
        pop = cat.popularity
        if attributes and cat.segments is not None:
            seg = cat.segments.scores(attributes)
            if seg is not None:
                # segment shares first; overall popularity breaks ties
                return seg + 1e-9 * pop / max(float(pop.max()), 1.0)
        return pop.copy()

    def _because(
        self,
        cat: Catalogue,
        top: np.ndarray,
        items: np.ndarray,
        conf: np.ndarray,
    ) -> list[Any]:
        """For each recommended item, the seen item contributing most to its score
        (None where none does); see :meth:`_because_codes`."""
        names = cat.ids.values
        return [names[b] if b >= 0 else None for b in self._because_codes(cat, top, items, conf)]

    def _because_codes(
        self,
        cat: Catalogue,
        top: np.ndarray,
        items: np.ndarray,
        conf: np.ndarray,
    ) -> np.ndarray:
        """Codes of the seen items explaining ``top`` (-1: none).

        item-kNN: exact (the largest c_uj · S[j, i]). ALS and BPR: the seen item
        whose factors are most similar (cosine) to the recommended item's,
        weighted by the user's confidence in it (for a blend, the factors of
        its best member).
        """
        out = np.full(top.size, -1, dtype=np.int64)
        if items.size == 0 or top.size == 0:
            return out
        if self.kind == "item_knn" and cat.similarity is not None:
            cols, vals, sources = self._gather(cat, items, conf)
            sel = np.isin(cols, top)
            cols, vals, sources = cols[sel], vals[sel], sources[sel]
            order = np.lexsort((-vals, cols))
            cols, sources = cols[order], sources[order]
            first = np.r_[True, cols[1:] != cols[:-1]] if cols.size else np.zeros(0, bool)
            best = dict(zip(cols[first].tolist(), sources[first].tolist(), strict=True))
            out[:] = [best.get(t, -1) for t in top.tolist()]
        elif self.kind in ("als", "bpr") and cat.unit is not None:
            sims = (np.take(cat.unit, items, axis=0) @ cat.unit[top].T) * conf[:, None]
            out[:] = items[np.argmax(sims, axis=0)]
        return out

    # -- reading -------------------------------------------------------------------------------
    def _check_k(self, k: Any, cat: Catalogue) -> int:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise InvalidInput(f"k is {k!r}; it must be a whole number ≥ 1", field="k")
        cap = min(self.max_k, cat.n_items)
        if not 1 <= k <= cap:
            raise InvalidInput(
                f"k is {k}; it must be between 1 and {cap} "
                f"(the catalogue has {cat.n_items} items, the limit is {self.max_k})",
                field="k",
            )
        return int(k)

    def _user_code(self, user: Any) -> int | None:
        key = self._users.key(user)
        if key is None:
            raise InvalidInput(
                f"user {user!r} is not a valid {self._users.kind} user id", field="user"
            )
        return self._users.index.get(key)

    def recommend(
        self,
        user: Any,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        filter: Mapping[str, Any] | None = None,
        user_attributes: Mapping[str, Any] | None = None,
    ) -> list[Recommendation]:
        """The ``k`` best items for ``user``, best first.

        Parameters
        ----------
        user
            A user id. An unknown user, or one without events, gets the cold
            start: the most popular items, or the most popular within the
            segments of ``user_attributes`` (or the attributes the user was
            registered with) when those are known. So does a user whose seen
            items tell the model nothing yet (item-kNN: none has neighbours;
            ALS, BPR: all were added online and have no factors yet), their
            seen items left out.
        k
            How many items; 1 ≤ k ≤ min(max_k, catalogue size). Fewer come
            back when the filter or the seen items leave fewer.
        exclude_seen
            Leave out the items the user already interacted with.
        filter
            Item attribute equality conditions, e.g. ``{"genre": "Comedy"}``.
        user_attributes
            Attributes of a user the model does not know (cold start).

        Returns
        -------
        list of (item, score, because)
            ``because`` is the seen item that contributes most to the item's
            score (None for cold-start answers).
        """
        cat = self._cat
        k = self._check_k(k, cat)
        code = self._user_code(user)
        short = self._shortlists
        if short is not None and exclude_seen and code is not None:
            listed = self._from_shortlist(short, cat, code, k, filter)
            if listed is not None:
                return listed
        if code is not None:
            items, conf, vector = self._seen_in(cat, code, self._online.get(code))
        else:
            items, conf, vector = _NO_ITEMS, _NO_VALUES, None
        scores = self._scores(cat, items, conf, vector) if items.size else None
        explained = scores is not None
        if scores is None:  # no events, or none the model can score from: the cold start
            if user_attributes is not None and not isinstance(user_attributes, Mapping):
                raise InvalidInput(
                    "user_attributes must be a mapping, e.g. {'gender': 'F'}",
                    field="user_attributes",
                )
            attrs = user_attributes
            if attrs is None and code is not None:
                attrs = self._attributes_of(code)
            scores = self._cold_scores(cat, attrs)
        if exclude_seen:
            scores[items] = -np.inf
        if filter:
            scores[~cat.filter_mask(filter)] = -np.inf
        top = top_k(scores, k)
        because = self._because(cat, top, items, conf) if explained else [None] * top.size
        names = cat.ids.values
        return [(names[i], float(scores[i]), b) for i, b in zip(top.tolist(), because, strict=True)]

    # -- shortlists (serving) ------------------------------------------------------------------
    def precompute(
        self, size: int = 100, *, budget: float = 5e10, max_bytes: int = 512 << 20
    ) -> bool:
        """List each stored user's ``size`` best unseen items and their explanations
        once, so that answers for users without new events skip scoring the
        catalogue (see :mod:`~leptonic.tasks.recsys._shortlist`). Factor models only
        (ALS, BPR); skipped (False) when the work, users × items × factors plus
        interactions × ``size`` × explanation factors, exceeds ``budget``, or the
        lists would take more than ``max_bytes``.
        """
        with self._lock:  # writers wait: events apply to the lists built here
            cat = self._cat
            factors, users, unit = cat.item_factors, self._user_factors, cat.unit
            if self.kind not in ("als", "bpr") or factors is None or users is None:
                return False
            if unit is None:
                return False
            work = self._n_base * cat.n_items * factors.shape[1]
            work += self._indices.size * min(size, cat.n_items) * unit.shape[1]
            if work > budget or self._n_base * size * BYTES_PER_ENTRY > max_bytes:
                return False
            indptr, indices, conf = self._indptr, self._indices, self._conf
            # a user whose vector says nothing is not listed: the cold start answers them
            signal = self._has_signal(users[: self._n_base])

            def seen(u: int) -> tuple[np.ndarray, np.ndarray]:
                if not signal[u]:
                    return _NO_ITEMS, _NO_VALUES
                return indices[indptr[u] : indptr[u + 1]], conf[indptr[u] : indptr[u + 1]]

            short = build_shortlists(
                users[: self._n_base],
                factors[: cat.n_items],
                seen,
                self._fresh_codes,
                size,
                unit=unit,
            )
            for code in list(self._online):  # users with events since training: listed as now
                short.set_row(code, self._listed_row(code, short.size))
            self._shortlists = short
        return True

    def _from_shortlist(
        self,
        short: Shortlists,
        cat: Catalogue,
        code: int,
        k: int,
        filter: Mapping[str, Any] | None,
    ) -> list[Recommendation] | None:
        """A stored user's answer from the shortlist, items added online merged in."""
        mask = cat.filter_mask(filter) if filter else None
        st = self._online.get(code)  # the list must come from this same state
        items, conf, vector = self._seen_in(cat, code, st)

        def explain(codes: np.ndarray) -> np.ndarray:
            return self._because_codes(cat, codes, items, conf)

        fresh = self._fresh_codes
        # items added online change their factors with anyone's events: explanations
        # naming them are not kept
        stable = fresh.size == 0 or not np.isin(items, fresh).any()
        listed = short.top(code, k, mask, origin=st, explain=explain if stable else None)
        if listed is None:
            return None
        top, scores, because = listed
        if not stable:
            because = explain(top)
        if fresh.size and vector is not None and cat.item_factors is not None:
            fresh = fresh[(fresh < cat.n_items) & ~np.isin(fresh, items)]
            if mask is not None:
                fresh = fresh[mask[fresh]]
            if fresh.size:
                top = np.r_[top, fresh]
                scores = np.r_[scores, np.asarray(cat.item_factors[fresh] @ vector, np.float64)]
                order = np.argsort(-scores, kind="stable")[:k]
                top, scores = top[order], scores[order]
                because = explain(top)
        names = cat.ids.values
        return [
            (names[i], s, names[b] if b >= 0 else None)
            for i, s, b in zip(top.tolist(), scores.tolist(), because.tolist(), strict=True)
        ]

    def _listed_row(self, code: int, size: int) -> Row | None:
        """A fresh list of ``size`` items for ``code`` from its current state."""
        cat, st = self._cat, self._online.get(code)
        items, conf, vector = self._seen_in(cat, code, st)
        if items.size == 0 or vector is None:
            return None
        scores = self._scores(cat, items, conf, vector)
        if scores is None:  # the vector says nothing: the cold start answers
            return None
        scores[items] = -np.inf
        fresh = self._fresh_codes
        scores[fresh[fresh < cat.n_items]] = -np.inf
        return best_row(scores, size, origin=st)

    def similar_items(
        self, item: Any, k: int = 10, *, filter: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, float]]:
        """The ``k`` items most similar to ``item``, best first: cosine of the factors
        (of the best member, for a blend of ALS models), the item-kNN similarity, or
        co-occurrence counts for the popularity model."""
        cat = self._cat
        k = self._check_k(k, cat)
        code = self.item_code(item)
        if code is None:
            raise InvalidInput(f"unknown item {item!r}: it is not in the catalogue", field="item")
        if self.kind in ("als", "bpr") and cat.unit is not None:
            if not cat.unit[code].any():  # added online, no events yet: no factors to compare
                return []
            scores = np.asarray(cat.unit @ cat.unit[code], dtype=np.float64)
        elif self.kind == "item_knn" and cat.similarity is not None:
            indptr, indices, data = cat.similarity
            lo, hi = indptr[code], indptr[code + 1]
            scores = np.full(cat.n_items, -np.inf)
            scores[indices[lo:hi]] = data[lo:hi]
        else:
            scores = self._cooccurrence(code, cat.n_items)
        scores[code] = -np.inf
        if filter:
            scores[~cat.filter_mask(filter)] = -np.inf
        top = top_k(scores, k)
        names = cat.ids.values
        return [(names[i], float(scores[i])) for i in top.tolist()]

    def _cooccurrence(self, code: int, n_items: int) -> np.ndarray:
        rows = np.repeat(np.arange(self._n_base), np.diff(self._indptr))
        users = set(rows[self._indices == code].tolist())
        # a snapshot: writers add users while readers run, and readers do not lock
        online = list(self._online.items())
        users |= {u for u, st in online if code in st.items}
        counts = np.zeros(n_items)
        for u in sorted(users):
            seen = self._view(u)[0]
            counts[seen[seen < n_items]] += 1.0
        counts[counts == 0] = -np.inf
        return counts

    def predict_one(self, record: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Recommendations for one request record (the serving hot path).

        ``record`` holds ``user`` and optionally ``k`` (default 10),
        ``exclude_seen``, ``filter`` and ``user_attributes``; the answer is a
        list of ``{"item", "score", "because"}`` dicts.
        """
        if not isinstance(record, Mapping) or "user" not in record:
            raise InvalidInput("a recommendation request needs a 'user' field", field="user")
        exclude = record.get("exclude_seen", True)
        if not isinstance(exclude, bool):
            raise InvalidInput("exclude_seen must be true or false", field="exclude_seen")
        recs = self.recommend(
            record["user"],
            record.get("k", 10),
            exclude_seen=exclude,
            filter=record.get("filter"),
            user_attributes=record.get("user_attributes"),
        )
        return [{"item": i, "score": s, "because": b} for i, s, b in recs]

    def predict_batch(self, users: Any, k: int = 10, *, exclude_seen: bool = True) -> Any:
        """Recommendations for many users as a table (batch scoring).

        ``users`` is a sequence of user ids, or a table (pandas or pyarrow)
        with a ``user`` column. Returns a pandas DataFrame with the columns
        ``user``, ``rank`` (1 = best), ``item``, ``score`` and ``because``.
        """
        import pandas as pd
        import pyarrow as pa

        if isinstance(users, pa.Table):
            users = users.to_pandas()
        if isinstance(users, pd.DataFrame):
            if "user" not in users.columns:
                raise InvalidInput("the table needs a 'user' column", field="user")
            users = users["user"].tolist()
        rows: list[tuple[Any, ...]] = []
        for user in users:
            recs = self.recommend(user, k, exclude_seen=exclude_seen)
            rows.extend((user, r, i, s, b) for r, (i, s, b) in enumerate(recs, start=1))
        return pd.DataFrame(rows, columns=["user", "rank", "item", "score", "because"])

    def recommend_codes(
        self, users: np.ndarray, k: int, *, exclude_seen: bool = True, chunk: int = 1024
    ) -> np.ndarray:
        """Batch top-k item codes for user codes (``-1`` pads short rows): evaluation and
        batch scoring. Users without events get the overall popularity ranking."""
        import scipy.sparse as sp

        cat = self._cat
        k = self._check_k(k, cat)
        users = np.asarray(users, dtype=np.int64)
        out = np.full((users.size, k), -1, dtype=np.int64)
        sim = None
        if self.kind == "item_knn" and cat.similarity is not None:
            sim = sp.csr_matrix(
                (cat.similarity[2], cat.similarity[1], cat.similarity[0]),
                shape=(cat.n_items, cat.n_items),
            )
        for start in range(0, users.size, chunk):
            block = users[start : start + chunk]
            views = [self._seen_in(cat, int(u), self._online.get(int(u))) for u in block]
            lens = np.array([v[0].size for v in views], dtype=np.int64)
            seen_rows = np.repeat(np.arange(block.size), lens)
            seen_cols = np.concatenate([v[0] for v in views]) if block.size else _NO_ITEMS
            cold = lens == 0
            if self.kind in ("als", "bpr") and cat.item_factors is not None:
                width = cat.item_factors.shape[1]
                vecs = np.stack(
                    [v[2] if v[2] is not None else np.zeros(width, np.float32) for v in views]
                )
                scores = np.asarray(vecs @ cat.item_factors.T, dtype=np.float64)
                cold |= ~self._has_signal(vecs)
            elif sim is not None:
                conf = np.concatenate([v[1] for v in views]) if block.size else _NO_VALUES
                rows = sp.csr_matrix(
                    (conf, seen_cols, np.r_[0, np.cumsum(lens)]), shape=(block.size, cat.n_items)
                )
                product = sp.csr_matrix(rows @ sim)
                cold |= np.diff(product.indptr) == 0  # no seen item has a neighbour
                scores = np.asarray(product.toarray(), dtype=np.float64)
            else:
                scores = np.tile(cat.popularity, (block.size, 1))
            if cold.any():
                scores[cold] = cat.popularity
            if exclude_seen:
                scores[seen_rows, seen_cols] = -np.inf
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            part_scores = np.take_along_axis(scores, part, axis=1)
            order = np.argsort(-part_scores, axis=1, kind="stable")
            top = np.take_along_axis(part, order, axis=1)
            finite = np.isfinite(np.take_along_axis(part_scores, order, axis=1))
            out[start : start + block.size] = np.where(finite, top, -1)
        return out
