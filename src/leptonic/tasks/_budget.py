"""Trial budgets: a search's trials shared among its candidates by their weights."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["share_trials"]


def share_trials(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` trials shared by ``weights`` (largest remainders), at least one each.

    The shares add up to ``total`` (or to one per candidate when ``total`` is
    smaller): a spec's ``trials`` is the search's budget in all, which rounding
    each share on its own overshot (24 trials over three candidates ran 25).

    Examples
    --------
    >>> share_trials(24, [0.25, 0.6, 0.15])
    [6, 14, 4]
    >>> share_trials(2, [1.0, 0.0, 0.0])
    [1, 1, 1]
    """
    n = len(weights)
    if n == 0:
        return []
    total_w = sum(max(w, 0.0) for w in weights)
    exact = [total * max(w, 0.0) / total_w if total_w > 0 else total / n for w in weights]
    shares = [max(1, math.floor(e)) for e in exact]
    target = max(total, n)
    while sum(shares) < target:  # the largest remainder first, then the earliest
        i = max(range(n), key=lambda j: (exact[j] - shares[j], -j))
        shares[i] += 1
    while sum(shares) > target:  # minimums taken from the largest shares' rounding
        i = min((j for j in range(n) if shares[j] > 1), key=lambda j: (exact[j] - shares[j], j))
        shares[i] -= 1
    return shares
