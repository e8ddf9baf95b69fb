"""Ranking metrics for recommenders, and the splits they are measured on.

Every metric takes the same two inputs:

``recommended``
    An ``(n_users, K)`` integer array: row ``u`` holds the item indices
    recommended to user ``u``, best first; ``-1`` marks an empty slot (fewer
    than ``K`` items could be recommended).
``relevant``
    The held-out items, as a ``scipy.sparse`` matrix of shape
    ``(n_users, n_items)`` whose non-zero entries are the relevant items, or a
    sequence of ``n_users`` integer arrays.

Averages are taken over the users with at least one relevant item (a user with
none cannot be scored); every function is vectorised over users. The
definitions follow the usual conventions (and match
``implicit.evaluation.ranking_metrics_at_k``):

- Recall@k: hits in the top k / number of relevant items.
- Precision@k: hits / k.
- NDCG@k: binary gains, DCG = Σ hit_i / log2(i + 2) over ranks i < k, divided
  by the DCG of an ideal list of ``min(k, |relevant|)`` hits.
- MAP@k: Σ precision@i · hit_i over ranks i < k, divided by ``min(k, |relevant|)``.
- Catalogue coverage@k: distinct items recommended in any top k / catalogue size.
- Popularity bias@k: the mean popularity percentile (0 = least, 1 = most
  popular in the training data) of the recommended items, and the Gini
  coefficient of how often each catalogue item is recommended.

Splits return boolean "is test" masks over interaction rows:
:func:`random_split` (a seeded per-user fraction) and :func:`time_split`
(the latest fraction, globally or per user).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from leptonic.errors import InvalidInput

__all__ = [
    "catalogue_coverage",
    "gini_coefficient",
    "hit_matrix",
    "map_at_k",
    "metric_curves",
    "ndcg_at_k",
    "popularity_percentile",
    "precision_at_k",
    "random_split",
    "ranking_metrics",
    "recall_at_k",
    "time_split",
]


# -- inputs -----------------------------------------------------------------------------------
def _recommended(recommended: ArrayLike, k: int | None = None) -> np.ndarray:
    recs = np.asarray(recommended)
    if recs.ndim != 2 or not np.issubdtype(recs.dtype, np.integer):
        raise InvalidInput(
            "recommended must be a 2-D integer array (users × ranked item indices, -1 for none), "
            f"got shape {recs.shape} and dtype {recs.dtype}",
            field="recommended",
        )
    if k is not None:
        _check_k(k, recs.shape[1])
        recs = recs[:, :k]
    return recs.astype(np.int64, copy=False)


def _check_k(k: int, available: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidInput(f"k is {k!r}; it must be a whole number ≥ 1", field="k")
    if k > available:
        raise InvalidInput(
            f"k is {k} but only {available} recommendations per user were given; "
            f"recommend at least k items",
            field="k",
        )


def _relevant_csr(relevant: Any, n_users: int) -> Any:
    """``relevant`` as a CSR matrix with sorted indices and unit data."""
    import scipy.sparse as sp

    if sp.issparse(relevant):
        m = sp.csr_matrix(relevant, copy=True)  # tidied below: not the caller's arrays
    elif isinstance(relevant, np.ndarray) and relevant.ndim == 2 and relevant.dtype == bool:
        m = sp.csr_matrix(relevant)  # an indicator matrix (users × items)
    elif isinstance(relevant, Sequence | np.ndarray):
        rows = [np.asarray(r, dtype=np.int64).ravel() for r in relevant]
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        cols = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        if cols.size and cols.min() < 0:
            raise InvalidInput("relevant item indices must be ≥ 0", field="relevant")
        n_items = int(cols.max()) + 1 if cols.size else 1
        indptr = np.r_[0, np.cumsum(lengths)]
        m = sp.csr_matrix((np.ones(cols.size), cols, indptr), shape=(len(rows), n_items))
    else:
        raise InvalidInput(
            "relevant must be a scipy.sparse matrix or a boolean array (users × items), or "
            "a list of item-index arrays",
            field="relevant",
        )
    if m.shape[0] != n_users:
        raise InvalidInput(
            f"relevant has {m.shape[0]} user rows but recommended has {n_users}; "
            "give one row per user in the same order",
            field="relevant",
        )
    m.eliminate_zeros()
    m.sum_duplicates()
    m.sort_indices()
    m.data = np.ones_like(m.data, dtype=np.float64)
    return m


def hit_matrix(recommended: ArrayLike, relevant: Any) -> tuple[np.ndarray, np.ndarray]:
    """Which recommendations are relevant, and how many items are relevant per user.

    Returns
    -------
    hits
        ``(n_users, K)`` boolean array.
    n_relevant
        ``(n_users,)`` number of relevant items of each user.
    """
    recs = _recommended(recommended)
    n_users = recs.shape[0]
    rel = _relevant_csr(relevant, n_users)
    n_relevant = np.diff(rel.indptr).astype(np.int64)
    n_cols = max(int(rel.shape[1]), int(recs.max(initial=-1)) + 1, 1)
    # (user, item) pairs as one sorted integer key each; hits by binary search.
    rel_rows = np.repeat(np.arange(n_users, dtype=np.int64), n_relevant)
    rel_keys = rel_rows * n_cols + rel.indices.astype(np.int64)
    rec_keys = np.arange(n_users, dtype=np.int64)[:, None] * n_cols + recs
    pos = np.searchsorted(rel_keys, rec_keys)
    pos = np.minimum(pos, max(rel_keys.size - 1, 0))
    hits = (rel_keys[pos] == rec_keys) if rel_keys.size else np.zeros_like(recs, dtype=bool)
    hits &= recs >= 0
    hits &= ~_repeats(recs)  # an item recommended twice is one hit
    return hits, n_relevant


def _repeats(recs: np.ndarray) -> np.ndarray:
    """Where a row repeats an item that it holds at an earlier position."""
    order = np.argsort(recs, axis=1, kind="stable")
    ranked = np.take_along_axis(recs, order, axis=1)
    repeated = np.zeros_like(recs, dtype=bool)
    repeated[:, 1:] = ranked[:, 1:] == ranked[:, :-1]
    out = np.zeros_like(repeated)
    np.put_along_axis(out, order, repeated, axis=1)
    return out


# -- metrics -----------------------------------------------------------------------------------
def _per_user(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    h = hits[:, :k].astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    ideal_n = np.minimum(n_relevant, k)
    idcg = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_n]
    n_hits = h.sum(axis=1)
    denom = np.maximum(ideal_n, 1)
    safe_rel = np.maximum(n_relevant, 1)
    precision_i = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    return {
        "recall": n_hits / safe_rel,
        "precision": n_hits / k,
        "ndcg": (h @ discounts) / np.where(idcg > 0, idcg, 1.0),
        "map": (precision_i * h).sum(axis=1) / denom,
    }


def _scored(n_relevant: np.ndarray) -> np.ndarray:
    return n_relevant > 0


def _mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else float("nan")


def recall_at_k(recommended: ArrayLike, relevant: Any, k: int) -> float:
    """Mean Recall@k over users with relevant items."""
    recs = _recommended(recommended, k)
    hits, n_rel = hit_matrix(recs, relevant)
    return _mean(_per_user(hits, n_rel, k)["recall"], _scored(n_rel))


def precision_at_k(recommended: ArrayLike, relevant: Any, k: int) -> float:
    """Mean Precision@k over users with relevant items."""
    recs = _recommended(recommended, k)
    hits, n_rel = hit_matrix(recs, relevant)
    return _mean(_per_user(hits, n_rel, k)["precision"], _scored(n_rel))


def ndcg_at_k(recommended: ArrayLike, relevant: Any, k: int) -> float:
    """Mean NDCG@k (binary relevance) over users with relevant items."""
    recs = _recommended(recommended, k)
    hits, n_rel = hit_matrix(recs, relevant)
    return _mean(_per_user(hits, n_rel, k)["ndcg"], _scored(n_rel))


def map_at_k(recommended: ArrayLike, relevant: Any, k: int) -> float:
    """Mean average precision at k over users with relevant items."""
    recs = _recommended(recommended, k)
    hits, n_rel = hit_matrix(recs, relevant)
    return _mean(_per_user(hits, n_rel, k)["map"], _scored(n_rel))


def catalogue_coverage(recommended: ArrayLike, n_items: int, k: int | None = None) -> float:
    """Share of the ``n_items`` catalogue that appears in at least one top-k list."""
    recs = _recommended(recommended, k)
    if n_items < 1:
        raise InvalidInput("n_items must be ≥ 1", field="n_items")
    shown = np.unique(recs[recs >= 0])
    return float(shown.size / n_items)


def _percentiles(item_popularity: np.ndarray) -> np.ndarray:
    """Each item's popularity percentile in [0, 1] (ties share their mean rank)."""
    pop = np.asarray(item_popularity, dtype=np.float64)
    n = pop.size
    if n == 1:
        return np.ones(1)
    order = np.argsort(pop, kind="stable")
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.arange(n, dtype=np.float64)
    # average ranks of ties, so that equal popularity gets an equal percentile
    _, inverse, counts = np.unique(pop, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse] / (n - 1)


def popularity_percentile(
    recommended: ArrayLike, item_popularity: ArrayLike, k: int | None = None
) -> float:
    """Mean popularity percentile of the recommended items (0.5 ≈ no bias, 1 = most popular)."""
    recs = _recommended(recommended, k)
    pct = _percentiles(np.asarray(item_popularity))
    shown = recs[recs >= 0]
    return float(pct[shown].mean()) if shown.size else float("nan")


def gini_coefficient(values: ArrayLike) -> float:
    """Gini coefficient of non-negative ``values`` (0: all equal, → 1: all on one)."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if v.size == 0 or v.sum() <= 0:
        return 0.0
    n = v.size
    cum = np.cumsum(v)
    return float((n + 1 - 2 * (cum.sum() / cum[-1])) / n)


def ranking_metrics(
    recommended: ArrayLike,
    relevant: Any,
    k: int = 10,
    *,
    n_items: int | None = None,
    item_popularity: ArrayLike | None = None,
) -> dict[str, float]:
    """Recall, precision, NDCG and MAP at ``k``, plus coverage and popularity bias.

    Parameters
    ----------
    recommended
        ``(n_users, K ≥ k)`` ranked item indices, ``-1`` for an empty slot.
    relevant
        Held-out items per user (sparse matrix or list of index arrays).
    k
        Cut-off.
    n_items
        Catalogue size, for coverage (default: the ``relevant`` matrix width).
    item_popularity
        Interaction counts of every catalogue item in the training data, for
        the popularity bias figures (left out when not given).

    Returns
    -------
    dict
        ``recall@k``, ``precision@k``, ``ndcg@k``, ``map@k``, ``coverage@k``,
        ``popularity_percentile@k``, ``gini@k`` and ``users`` (users scored).

    Examples
    --------
    >>> import numpy as np
    >>> m = ranking_metrics(np.array([[0, 1], [2, 3]]), [[1], [3, 4]], k=2, n_items=5)
    >>> round(m["recall@2"], 3), round(m["coverage@2"], 2)
    (0.75, 0.8)
    """
    recs = _recommended(recommended, k)
    hits, n_rel = hit_matrix(recs, relevant)
    per_user = _per_user(hits, n_rel, k)
    mask = _scored(n_rel)
    out = {f"{name}@{k}": _mean(values, mask) for name, values in per_user.items()}
    if n_items is None:  # the catalogue as far as seen: relevant and recommended items
        width = int(_relevant_csr(relevant, recs.shape[0]).shape[1])
        n_items = max(width, int(recs.max(initial=-1)) + 1)
    scored_recs = recs[mask]
    out[f"coverage@{k}"] = catalogue_coverage(scored_recs, n_items) if mask.any() else 0.0
    if item_popularity is not None:
        pop = np.asarray(item_popularity, dtype=np.float64)
        out[f"popularity_percentile@{k}"] = popularity_percentile(scored_recs, pop)
        shown = scored_recs[scored_recs >= 0]
        out[f"gini@{k}"] = gini_coefficient(np.bincount(shown, minlength=pop.size))
    out["users"] = float(mask.sum())
    return out


def metric_curves(
    recommended: ArrayLike, relevant: Any, ks: Sequence[int] = tuple(range(1, 21))
) -> dict[str, list[float]]:
    """Recall, precision, NDCG and MAP at every cut-off in ``ks`` (for plots)."""
    recs = _recommended(recommended)
    for k in ks:
        _check_k(k, recs.shape[1])
    hits, n_rel = hit_matrix(recs, relevant)
    mask = _scored(n_rel)
    curves: dict[str, list[float]] = {"k": [float(k) for k in ks]}
    for k in ks:
        for name, values in _per_user(hits, n_rel, k).items():
            curves.setdefault(name, []).append(_mean(values, mask))
    return curves


# -- splits ------------------------------------------------------------------------------------
def _check_fraction(fraction: float) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
        raise InvalidInput(
            f"test_fraction is {fraction!r}; it must be between 0 and 1 (e.g. 0.2)",
            field="test_fraction",
        )
    return float(fraction)


def random_split(users: ArrayLike, *, test_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """A seeded random per-user split: ``round(test_fraction · n_u)`` of each user's rows in test.

    Each user keeps at least one row for training, so a user with a single
    interaction is never in the test part.

    Returns
    -------
    numpy.ndarray
        Boolean mask over rows: True for the test part.

    Examples
    --------
    >>> mask = random_split([0, 0, 0, 0, 0, 1], test_fraction=0.2, seed=0)
    >>> int(mask[:5].sum()), bool(mask[5])
    (1, False)
    """
    fraction = _check_fraction(test_fraction)
    codes = np.unique(np.asarray(users), return_inverse=True)[1].ravel()
    n = codes.size
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(n), codes))
    counts = np.bincount(codes)
    n_test = np.minimum(np.floor(counts * fraction + 0.5).astype(np.int64), counts - 1)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    sorted_codes = codes[order]
    rank = np.arange(n) - starts[sorted_codes]
    mask = np.zeros(n, dtype=bool)
    mask[order] = rank < n_test[sorted_codes]
    return mask


def time_split(
    timestamps: ArrayLike,
    *,
    test_fraction: float = 0.2,
    users: ArrayLike | None = None,
) -> np.ndarray:
    """The latest ``test_fraction`` of the rows in test.

    Without ``users`` the cut-off is global (the rows after the
    ``1 - test_fraction`` time quantile: a "train on the past, test on the
    future" split; ties are broken by row order). With ``users`` the latest
    rows of each user go to test (each user keeps at least one for training).

    Returns
    -------
    numpy.ndarray
        Boolean mask over rows: True for the test part.
    """
    fraction = _check_fraction(test_fraction)
    ts = np.asarray(timestamps)
    if ts.ndim != 1 or not (
        np.issubdtype(ts.dtype, np.number) or np.issubdtype(ts.dtype, np.datetime64)
    ):
        raise InvalidInput(
            "timestamps must be a 1-D numeric or datetime64 array", field="timestamps"
        )
    if np.issubdtype(ts.dtype, np.datetime64):
        if np.isnat(ts).any():
            raise InvalidInput("timestamps hold missing values (NaT)", field="timestamps")
        ts = ts.astype("datetime64[ns]").astype(np.int64)
    elif np.isnan(ts.astype(np.float64)).any():
        raise InvalidInput("timestamps hold missing values (NaN)", field="timestamps")
    n = ts.size
    mask = np.zeros(n, dtype=bool)
    if users is None:
        order = np.argsort(ts, kind="stable")
        n_test = int(np.floor(n * fraction + 0.5))
        mask[order[n - n_test :]] = True
        return mask
    codes = np.unique(np.asarray(users), return_inverse=True)[1].ravel()
    if codes.size != n:
        raise InvalidInput("users and timestamps must have one entry per row", field="users")
    order = np.lexsort((np.arange(n), ts, codes))
    counts = np.bincount(codes)
    n_test = np.minimum(np.floor(counts * fraction + 0.5).astype(np.int64), counts - 1)
    ends = np.cumsum(counts)
    sorted_codes = codes[order]
    from_end = ends[sorted_codes] - np.arange(n)  # 1 for a user's latest row
    mask[order] = from_end <= n_test[sorted_codes]
    return mask
