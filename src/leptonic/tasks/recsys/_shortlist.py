"""Shortlists: each stored user's best unseen items, precomputed for serving.

A factor model (ALS, BPR) scores a user's items with one matrix-vector
product over the whole catalogue: for MovieLens with a blend of four ALS
models that is 1,682 × 601 numbers read per request, most of the time of an
answer. Between two retrains a stored user's vector and seen items change
only when the user posts an event, so their ranking can be computed once for
all of them (a matrix-matrix product, in blocks) and kept: the best ``size``
unseen items of each user with their scores. An answer for a user without
new events then filters that list (attribute filters keep its order) and
takes the first ``k``; it is exact whenever at least ``k`` entries pass the
filter, or the list holds every unseen item. Otherwise, and for users with
online events, the predictor scores the whole catalogue as before. Items
added online are not in the lists: the predictor scores them at request
time and merges them in. The explanation of each listed item (the seen item
most like it, weighted by the user's confidence) is listed with it: computed
at load for the stored users, and for a list rebuilt after an event, the
first time the item is answered (so an event does not pay for explaining a
hundred items).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "BYTES_PER_ENTRY",
    "UNEXPLAINED",
    "Row",
    "Shortlists",
    "best_row",
    "build_shortlists",
    "top_k",
]


#: One user's list: item codes, scores, explaining item codes, whether it holds
#: every item the user can be recommended, and the state it was computed from.
#: The last part is what the list was computed from (the user's online state: a
#: reader holding another state must not use it).
Row = tuple[np.ndarray, np.ndarray, np.ndarray, bool, object]
#: ``because`` of an item not explained yet (-1: nothing explains it).
UNEXPLAINED = -2
_STORED = object()  # marker: the user's list is in the arrays built at load


class Shortlists:
    """Per-user best unseen items, best first.

    The lists of the users stored with the model are built at load
    (:func:`build_shortlists`); a user's list is replaced as a whole
    (:meth:`set_row`) when their events change it, so a reader sees either
    list, never a mix.

    Parameters
    ----------
    codes, scores, because
        Users × ``size`` item codes, scores and explaining item codes, best
        first (``-1`` and ``-inf`` pad a row).
    lengths
        Entries in each row.
    complete
        Whether a row holds every item its user can be recommended (no item
        left out because the list was full).
    """

    def __init__(
        self,
        codes: np.ndarray,
        scores: np.ndarray,
        because: np.ndarray,
        lengths: np.ndarray,
        complete: np.ndarray,
    ) -> None:
        self.codes = codes
        self.scores = scores
        self.because = because
        self.lengths = lengths
        self.complete = complete
        self.size = int(codes.shape[1])
        self._rows: dict[int, Row | None] = {}

    def set_row(self, user: int, row: Row | None) -> None:
        """Replace ``user``'s list (None: unlisted, answers score the catalogue)."""
        self._rows[user] = row

    def top(
        self,
        user: int,
        k: int,
        mask: np.ndarray | None = None,
        *,
        origin: object = None,
        explain: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The ``k`` best listed items of ``user`` passing ``mask``: codes, scores and
        explaining items (-1: none, ``UNEXPLAINED``: not known yet).

        None when the list cannot tell: the user is not listed, too few entries
        pass, or the list was computed from another state than ``origin`` (the
        user's online state the caller read; None for users without events:
        the lists built at load). ``explain(codes)``, computed from that same
        state, explains the entries not explained yet, and the list keeps them.
        """
        row = self._rows.get(user, _STORED)
        if row is None:
            return None
        if row is _STORED:
            if origin is not None or user >= self.lengths.size:
                return None
            n = int(self.lengths[user])
            if n == 0:
                return None
            codes = self.codes[user, :n]
            scores = self.scores[user, :n]
            because = self.because[user, :n]
            complete = bool(self.complete[user])
        else:
            listed: Row = row  # type: ignore[assignment]
            if listed[4] is not origin:
                return None
            codes, scores, because, complete, _ = listed
        at = np.flatnonzero(mask[codes])[:k] if mask is not None else slice(0, k)
        top = codes[at]
        if top.size < k and not complete:
            return None
        why = because[at]
        if explain is not None:
            missing = why == UNEXPLAINED
            if missing.any():
                # from the state the list was computed from: any reader writes the same
                why[missing] = explain(top[missing])
                because[at] = why
        return top, scores[at], why


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best finite scores, best first."""
    n = scores.size
    part = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
    order = part[np.argsort(-scores[part], kind="stable")]
    return order[np.isfinite(scores[order])]


def best_row(
    scores: np.ndarray,
    size: int,
    items: np.ndarray | None = None,
    conf: np.ndarray | None = None,
    unit: np.ndarray | None = None,
    origin: object = None,
) -> Row:
    """The list of one user from their ``scores`` over the catalogue (items that
    may not be recommended at -inf; factor scores, exact in float32); explained
    when ``unit`` is given (with the seen ``items`` and their ``conf``), else
    left to answer time. ``origin``: the state the scores come from."""
    finite = int(np.count_nonzero(np.isfinite(scores)))
    n = min(size, finite)
    if n == 0:
        return _NO_CODES, _NO_SCORES, _NO_CODES, True, origin
    order = top_k(scores, n).astype(np.int32)
    because = np.full(n, UNEXPLAINED, dtype=np.int32)
    if unit is not None and items is not None and conf is not None and items.size:
        sims = (unit[items] @ unit[order].T) * conf[:, None]
        because = items[np.argmax(sims, axis=0)].astype(np.int32)
    return order, scores[order].astype(np.float32), because, finite <= size, origin


_NO_CODES = np.zeros(0, dtype=np.int32)
_NO_SCORES = np.zeros(0, dtype=np.float32)


#: Bytes per listed item: code, score, explaining item.
BYTES_PER_ENTRY = 12


def build_shortlists(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    seen: Callable[[int], tuple[np.ndarray, np.ndarray]],
    excluded: np.ndarray,
    size: int,
    *,
    unit: np.ndarray | None = None,
    block: int = 256,
) -> Shortlists:
    """Shortlists of the best ``size`` items by ``user_factors @ item_factors.T``.

    ``seen(u)`` gives user ``u``'s seen item codes and confidences (those
    items are left out; a user without any gets no list: the cold start
    answers them); ``excluded`` item codes are left out of every list (items
    whose factors may change online). With ``unit`` (unit-norm item vectors),
    each listed item is explained by the seen item of largest confidence ×
    cosine; without, each is explained when first answered.
    """
    n_users, n_items = user_factors.shape[0], item_factors.shape[0]
    size = max(1, min(int(size), n_items))
    # factor scores are float32 products: float32 holds them. (A matrix-matrix
    # product may differ from the matrix-vector one in the last bits: items tied
    # that closely may be listed in either order.)
    codes = np.full((n_users, size), -1, dtype=np.int32)
    scores = np.full((n_users, size), -np.inf, dtype=np.float32)
    because = np.full((n_users, size), -1, dtype=np.int32)
    lengths = np.zeros(n_users, dtype=np.int64)
    complete = np.zeros(n_users, dtype=bool)
    item_t = np.ascontiguousarray(item_factors.T)
    for start in range(0, n_users, block):
        stop = min(start + block, n_users)
        chunk = np.array(user_factors[start:stop] @ item_t, dtype=np.float32)
        if excluded.size:
            chunk[:, excluded] = -np.inf
        for row, u in enumerate(range(start, stop)):
            items, conf = seen(u)
            if items.size == 0:
                continue
            s = chunk[row]
            s[items[items < n_items]] = -np.inf
            top, top_scores, why, full, _ = best_row(s, size, items, conf, unit)
            n = top.size
            codes[u, :n], scores[u, :n], because[u, :n] = top, top_scores, why
            lengths[u], complete[u] = n, full
    return Shortlists(codes, scores, because, lengths, complete)
