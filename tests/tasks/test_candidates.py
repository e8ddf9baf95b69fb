"""Model families: their fits on small encoded matrices."""

from __future__ import annotations

import numpy as np

from leptonic.tasks.candidates import LightGBMCandidate
from leptonic.tasks.spec import TrainSpec


def test_lightgbm_trains_on_one_thread() -> None:
    # OpenMP threads spin at every boosting round: with two threads on a
    # machine where anything else runs (the server, another job, the tests),
    # training was measured 3x (one busy process) to 100x (two) slower than
    # on one thread, which is within 1.4x of two threads on an idle machine.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    cand = LightGBMCandidate()
    spec = TrainSpec(target="y")
    booster, facts = cand.fit({**cand.default_params(spec), "num_boost_round": 5}, X, y, spec, 2)
    assert booster.params["num_threads"] == 1
    assert facts["best_iteration"] == 5
