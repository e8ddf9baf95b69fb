from __future__ import annotations

import gc
import pickle
import threading
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.synthetic import applicants
from leptonic.tasks._data import load_training_data
from leptonic.tasks._lgbm_fast import FastPredictor, num_iteration
from leptonic.tasks.spec import TrainSpec
from leptonic.tasks.tabular import train_tabular
from support import make_version

PARAMS = {"verbosity": -1, "num_threads": 1, "seed": 0, "deterministic": True}


def _data(n: int = 1200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 5] = rng.integers(0, 5, n)  # a categorical code column
    X[rng.random((n, 6)) < 0.05] = np.nan
    X[:50, 2] = 0.0  # exact zeros (the C API drops them from its sparse rows)
    z = np.nan_to_num(X[:, 0]) - 0.5 * np.nan_to_num(X[:, 1]) + (X[:, 5] == 2)
    return X, z


def _binary(early_stopping: bool = True) -> tuple[lgb.Booster, np.ndarray]:
    X, z = _data()
    y = (z + np.random.default_rng(1).normal(size=len(z)) > 0).astype(int)
    train = lgb.Dataset(X[:900], y[:900], categorical_feature=[5])
    params = {**PARAMS, "objective": "binary", "learning_rate": 0.3, "num_leaves": 7}
    if not early_stopping:
        return lgb.train(params, train, num_boost_round=40), X
    valid = lgb.Dataset(X[900:], y[900:], reference=train)
    booster = lgb.train(
        params,
        train,
        num_boost_round=300,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(10, verbose=False)],
        keep_training_booster=True,  # keeps the trees after the best iteration
    )
    return booster, X


@pytest.fixture(scope="module")
def binary() -> tuple[lgb.Booster, np.ndarray]:
    booster, X = _binary()
    assert 0 < booster.best_iteration < booster.current_iteration()  # trees to leave out
    return booster, X


def _rows(fast: FastPredictor, X: np.ndarray) -> np.ndarray:
    return np.array([fast.predict(x) for x in X])


def test_num_iteration_follows_the_batch_path(binary: tuple[lgb.Booster, np.ndarray]) -> None:
    booster, _ = binary
    assert num_iteration(booster) == booster.best_iteration
    assert num_iteration(_binary(early_stopping=False)[0]) == -1


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("normal", {}),
        ("raw", {"raw_score": True}),
        ("contrib", {"pred_contrib": True}),
        ("leaf", {"pred_leaf": True}),
    ],
)
def test_fast_equals_batch(
    binary: tuple[lgb.Booster, np.ndarray], kind: str, options: dict[str, Any]
) -> None:
    booster, X = binary
    fast = FastPredictor(booster, kind)  # type: ignore[arg-type]
    batch = np.asarray(booster.predict(X, **options), dtype=np.float64).reshape(len(X), -1)
    one = _rows(fast, X)
    assert one.shape == batch.shape == (len(X), fast.n_outputs)
    np.testing.assert_allclose(one, batch, rtol=0, atol=1e-12)
    if kind in ("normal", "raw"):
        assert [fast.predict_value(x) for x in X[:20]] == batch[:20, 0].tolist()
    if kind == "contrib":  # contributions + expected value = raw margin
        raw = booster.predict(X, raw_score=True)
        np.testing.assert_allclose(one.sum(axis=1), raw, rtol=0, atol=1e-9)


def test_all_trees_without_early_stopping() -> None:
    booster, X = _binary(early_stopping=False)
    fast = FastPredictor(booster)
    np.testing.assert_allclose(_rows(fast, X)[:, 0], booster.predict(X), rtol=0, atol=1e-12)
    assert FastPredictor(booster, "leaf").n_outputs == booster.num_trees()


@pytest.mark.parametrize("objective", ["multiclass", "regression"])
def test_multiclass_and_regression(objective: str) -> None:
    X, z = _data(seed=3)
    if objective == "multiclass":
        y = np.digitize(z, [-0.5, 0.5])
        params = {**PARAMS, "objective": "multiclass", "num_class": 3}
    else:
        y, params = z, {**PARAMS, "objective": "regression"}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=30)
    for kind, options in (("normal", {}), ("contrib", {"pred_contrib": True})):
        fast = FastPredictor(booster, kind)  # type: ignore[arg-type]
        batch = np.asarray(booster.predict(X, **options)).reshape(len(X), -1)
        np.testing.assert_allclose(_rows(fast, X), batch, rtol=0, atol=1e-12)


@pytest.mark.parametrize("per_thread", [True, False])
def test_threads_get_the_right_answers(
    binary: tuple[lgb.Booster, np.ndarray], per_thread: bool
) -> None:
    booster, X = binary
    expected = booster.predict(X)
    fast = FastPredictor(booster, per_thread=per_thread)
    wrong: list[int] = []

    def work(start: int) -> None:
        for _ in range(3):
            for i in range(start, len(X), 4):
                if fast.predict_value(X[i]) != expected[i]:
                    wrong.append(i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_fast_configs_are_freed(binary: tuple[lgb.Booster, np.ndarray]) -> None:
    booster, X = binary
    fast = FastPredictor(booster)
    fast.predict_value(X[0])
    slot = fast._local.slot
    freed = slot.free
    assert freed.alive
    del fast, slot
    gc.collect()
    assert not freed.alive

    # a thread's FastConfig goes with the thread
    fast = FastPredictor(booster)
    finalizers: list[Any] = []

    def work() -> None:
        fast.predict_value(X[1])
        finalizers.append(fast._local.slot.free)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    gc.collect()
    assert len(finalizers) == 1 and not finalizers[0].alive
    assert fast.predict_value(X[1]) == booster.predict(X[1:2])[0]  # this thread's own


def test_pickles_without_its_handles(binary: tuple[lgb.Booster, np.ndarray]) -> None:
    booster, X = binary
    fast = FastPredictor(booster, "raw", per_thread=False)
    fast.predict_value(X[0])
    again = pickle.loads(pickle.dumps(fast))
    assert (again.kind, again.per_thread, again.num_iteration) == ("raw", False, fast.num_iteration)
    assert again.predict_value(X[3]) == fast.predict_value(X[3])
    assert "raw" in repr(again)
    with pytest.raises(ValueError, match="kind"):
        FastPredictor(booster, "proba")  # type: ignore[arg-type]


def test_predict_one_uses_the_fast_path_and_equals_the_batch_path() -> None:
    table = applicants(1500, seed=5)
    artifacts = MemoryArtifactStore()
    version = make_version(table, artifacts, "applicants")
    # no refit: the model keeps the early-stopping best iteration of its validation fold
    spec = TrainSpec(
        target="default", candidates=("lightgbm",), trials=1, timeout_s=None, refit=False
    )
    predictor = train_tabular(load_training_data(version, artifacts, spec), spec).predictor
    assert predictor.flavor == "lightgbm"
    assert predictor._fast is not None  # type: ignore[union-attr]
    assert predictor.estimator.best_iteration > 0  # type: ignore[union-attr]
    rows = table.slice(0, 200)
    batch = predictor.predict_batch(rows)
    one = [predictor.predict_one(r) for r in rows.to_pylist()]
    np.testing.assert_allclose(one, batch, rtol=0, atol=1e-12)
    # and after a round trip through pickle (the fast handles are rebuilt)
    again = pickle.loads(pickle.dumps(predictor))
    assert again.predict_one(rows.to_pylist()[7]) == one[7]
