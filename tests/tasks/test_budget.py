"""Trial budgets shared among candidates."""

from __future__ import annotations

import pytest

from leptonic.tasks._budget import share_trials


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (24, [0.6, 1.6, 0.4], [5, 15, 4]),  # rounding each share alone gave 6 + 15 + 4 = 25
        (30, [3.0, 0.4, 1.0, 0.0], [20, 2, 7, 1]),  # a zero weight still gets its one trial
        (2, [1.0, 1.0, 1.0], [1, 1, 1]),  # fewer trials than candidates: one each
        (7, [1.0, 1.0, 1.0], [3, 2, 2]),  # ties go to the earlier candidate
        (5, [0.0, 0.0], [3, 2]),
        (10, [], []),
    ],
)
def test_shares_add_up_to_the_budget(total: int, weights: list[float], expected: list[int]) -> None:
    assert share_trials(total, weights) == expected


@pytest.mark.parametrize("total", range(1, 60))
def test_every_candidate_gets_a_trial_and_the_sum_is_the_budget(total: int) -> None:
    shares = share_trials(total, [0.6, 1.6, 0.4, 0.0, 3.0])
    assert min(shares) >= 1 and sum(shares) == max(total, 5)
