from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from leptonic.errors import DataError, InvalidInput, SchemaError, TargetError
from leptonic.evaluation.metrics import roc_auc
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.tasks._data import TrainingData, load_training_data, select_features
from leptonic.tasks.candidates import LightGBMCandidate
from leptonic.tasks.spec import TrainSpec
from leptonic.tasks.tabular import _Search, make_split, train_tabular
from support import make_version, multiclass_table, regression_table

FAST = {"trials": 4, "timeout_s": 20.0, "candidates": ("logistic", "lightgbm")}


def test_pii_and_ids_are_not_features(applicant_version) -> None:  # type: ignore[no-untyped-def]
    numeric, categorical, excluded = select_features(applicant_version, TrainSpec(target="default"))
    for col in ("full_name", "email", "phone", "national_id"):
        assert col not in numeric + categorical
        assert "PII" in excluded[col]
    assert excluded["applicant_id"] == "role id"
    assert "employment_type" in categorical and "annual_income" in numeric


def test_pii_allowed_explicitly(applicant_version) -> None:  # type: ignore[no-untyped-def]
    spec = TrainSpec(target="default", allow_pii=("phone",))
    _, categorical, excluded = select_features(applicant_version, spec)
    assert "phone" in categorical and "phone" not in excluded


def test_a_pii_target_is_refused_unless_allowed(applicant_version) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TargetError, match="holds personal data") as info:
        select_features(applicant_version, TrainSpec(target="email", task="multiclass"))
    assert info.value.field == "target" and "@" not in str(info.value)
    spec = TrainSpec(target="email", task="multiclass", allow_pii=("email",))
    numeric, categorical, _ = select_features(applicant_version, spec)
    assert "email" not in numeric + categorical


def test_pii_allowed_in_training_by_the_contract(artifacts: MemoryArtifactStore) -> None:
    import dataclasses

    from leptonic.core.dataset import ColumnRole
    from leptonic.governance.schema import Contract

    table = pa.table({"age": [30, 40, 50, 60], "email": ["a@x.io"] * 4, "default": [0, 1, 0, 1]})
    version = make_version(table, artifacts)
    contract = Contract(pii={"age": "other", "email": "email"}, allow_in_training=("age",))
    columns = tuple(
        dataclasses.replace(c, role=ColumnRole.NUMERIC, pii="other") if c.name == "age" else c
        for c in version.columns
    )  # what ingestion records for this contract
    version = dataclasses.replace(
        version, columns=columns, source={**version.source, "contract": contract.to_dict()}
    )
    numeric, categorical, excluded = select_features(version, TrainSpec(target="default"))
    assert numeric == ["age"] and "age" not in excluded
    assert "email" not in categorical and "PII" in excluded["email"]


def test_split_is_stratified_50_30_20_and_disjoint() -> None:
    y = np.array([0] * 800 + [1] * 200 + [0] * 1200 + [1] * 300)
    split = make_split(y, TrainSpec(target="t", split="holdout"))
    (tr, va), test = split.folds[0], split.test
    assert len(tr) == 1250 and len(va) == 750 and len(test) == 500
    assert not set(tr) & set(va) and not set(tr) & set(test) and not set(va) & set(test)
    for part in (tr, va, test):
        assert y[part].mean() == pytest.approx(0.2, abs=0.01)


def test_small_data_uses_cross_validation() -> None:
    y = np.array([0, 1] * 300)
    split = make_split(y, TrainSpec(target="t"))
    assert split.kind == "cv" and len(split.folds) == 5
    valid = np.concatenate([va for _, va in split.folds])
    assert sorted(valid) == sorted(split.pool)


def test_binary_training_is_reproducible(applicant_version, artifacts) -> None:  # type: ignore[no-untyped-def]
    spec = TrainSpec(target="default", seed=1, **FAST)  # type: ignore[arg-type]
    data = load_training_data(applicant_version, artifacts, spec)
    first = train_tabular(data, spec)
    second = train_tabular(load_training_data(applicant_version, artifacts, spec), spec)
    assert first.test_metrics["auc"] > 0.7
    assert first.test_metrics == second.test_metrics
    assert first.chosen == second.chosen
    assert first.threshold is not None and 0 < first.threshold < 1
    assert {row["candidate"] for row in first.leaderboard} == {"logistic", "lightgbm"}
    # the test metrics are those of the predictor on the held-out rows
    assert first.test_metrics["auc"] == pytest.approx(roc_auc(first.y_test, first.test_scores))
    assert first.scorecard is not None and first.iv_table
    assert "utilization_m__mean" in first.features["numeric"]  # behaviour aggregates


def test_multiclass_and_regression(artifacts: MemoryArtifactStore) -> None:
    mc = make_version(multiclass_table(), artifacts, "mc")
    spec = TrainSpec(target="colour", task="multiclass", **FAST)  # type: ignore[arg-type]
    res = train_tabular(load_training_data(mc, artifacts, spec), spec)
    assert res.test_metrics["accuracy"] > 0.6
    assert res.predictor.classes == ["blue", "green", "red"]
    one = res.predictor.predict_one({"x1": 0.1, "x2": -1.0, "cat": "a"})
    assert isinstance(one, dict) and sum(one.values()) == pytest.approx(1.0)

    reg = make_version(regression_table(), artifacts, "reg")
    spec = TrainSpec(target="amount", task="regression", **FAST)  # type: ignore[arg-type]
    res = train_tabular(load_training_data(reg, artifacts, spec), spec)
    assert res.test_metrics["r2"] > 0.8
    assert res.threshold is None and res.scorecard is None


@pytest.mark.parametrize(
    ("values", "task", "match"),
    [
        ([1, 1, 1, 1], "binary", "constant"),
        ([0, 1, 2, 1], "binary", "not binary"),
        (["good", "bad", "good", "bad"], "binary", "positive_label"),
        ([None, None, None, None], "binary", "no values"),
        ([0, 1, 0, 1], "multiclass", "only 2 classes"),
        (["a", "b", "a", "b"], "regression", "non-numeric"),
        ([1.5, float("inf"), 2.5, 3.0], "regression", "1 infinite value"),
    ],
)
def test_bad_targets_are_refused(
    artifacts: MemoryArtifactStore, values: list[object], task: str, match: str
) -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "y": pa.array(values)})
    version = make_version(table, artifacts)
    with pytest.raises(TargetError, match=match):
        load_training_data(version, artifacts, TrainSpec(target="y", task=task))


def test_missing_target_and_unknown_columns(applicant_version, artifacts) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TargetError, match="not in dataset"):
        load_training_data(applicant_version, artifacts, TrainSpec(target="defaulted"))
    with pytest.raises(SchemaError, match="exclude names column"):
        select_features(applicant_version, TrainSpec(target="default", exclude=("nope",)))


def test_positive_label_for_text_labels(artifacts: MemoryArtifactStore) -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "y": ["good", "bad", "good", "bad"]})
    version = make_version(table, artifacts)
    data = load_training_data(version, artifacts, TrainSpec(target="y", positive_label="bad"))
    assert data.classes == ["good", "bad"]
    assert data.y.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize(
    ("values", "task", "classes"),
    [
        ([0, 1, None, 0, 1, 1], "binary", [0, 1]),
        ([0, 2, 1, None, 2, 1], "multiclass", [0, 1, 2]),
    ],
)
def test_integer_labels_with_missing_rows_stay_integers(
    artifacts: MemoryArtifactStore, values: list[object], task: str, classes: list[int]
) -> None:
    # Missing labels make Parquet's int64 column a float column in pandas:
    # the labels are still 0/1 (and "1" still names the positive class).
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "y": pa.array(values, pa.int64())})
    version = make_version(table, artifacts)
    data = load_training_data(version, artifacts, TrainSpec(target="y", task=task))
    assert data.classes == classes
    assert all(type(c) is int for c in data.classes)  # labels "1", not "1.0", when served
    assert data.dropped_missing_target == 1
    assert data.y.tolist() == [v for v in values if v is not None]
    spec = TrainSpec(target="y", positive_label="1")
    if task == "binary":
        assert load_training_data(version, artifacts, spec).classes == [0, 1]


def test_ensemble_selection_weights_and_blend() -> None:
    from leptonic.tasks.tabular import select_ensemble

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    signal = y + rng.normal(0, 1.0, 2000)
    a = signal + rng.normal(0, 1.0, 2000)  # two noisy views: their average beats either
    b = signal + rng.normal(0, 1.0, 2000)
    weak = rng.normal(size=2000)
    weights, score = select_ensemble([a, b, weak], y, "binary")
    assert weights[2] == 0.0 and weights[0] > 0 and weights[1] > 0
    assert sum(weights) == pytest.approx(1.0)
    assert score > max(roc_auc(y, a), roc_auc(y, b))


def test_ensemble_predictor_blends_members(applicant_version, artifacts, applicant_table) -> None:  # type: ignore[no-untyped-def]
    from leptonic.registry.serialization import load_predictor, save_predictor
    from leptonic.tasks.predictor import EnsemblePredictor

    members = []
    for candidate in ("logistic", "lightgbm"):
        spec = TrainSpec(target="default", candidates=(candidate,), trials=1)
        members.append(train_tabular(load_training_data(applicant_version, artifacts, spec), spec))
    ens = EnsemblePredictor([m.predictor for m in members], [3, 1], threshold=0.2)
    assert ens.weights == [0.75, 0.25]
    rows = applicant_table.slice(0, 30)
    expected = 0.75 * members[0].predictor.predict_batch(rows) + 0.25 * members[
        1
    ].predictor.predict_batch(rows)
    np.testing.assert_allclose(ens.predict_batch(rows), expected)
    one = [ens.predict_one(r) for r in rows.to_pylist()]
    np.testing.assert_allclose(one, expected, rtol=1e-6)
    key, digest = save_predictor(ens, artifacts)
    loaded = load_predictor(artifacts, key, digest)
    assert isinstance(loaded, EnsemblePredictor) and loaded.threshold == 0.2
    np.testing.assert_allclose(loaded.predict_batch(rows), expected)


def _small_data(n: int = 600, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    grade = rng.integers(1, 5, n)  # integer codes of a category: risk not monotone in them
    income = rng.normal(size=n)
    logit = np.where(grade == 3, 1.5, -0.5) - income
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"grade": grade, "income": income})
    return TrainingData(frame, y, ["income"], ["grade"], [0, 1], {}, 0)


def test_scorecard_bins_declared_categorical_columns_as_categories() -> None:
    spec = TrainSpec(target="t", candidates=("logistic",), trials=1, timeout_s=None)
    res = train_tabular(_small_data(), spec, log=lambda _m: None)
    rows = [row for row in res.iv_table if row["column"] == "grade"]
    assert {row["kind"] for row in rows} == {"categorical"}
    assert sorted(row["label"] for row in rows) == ["1", "2", "3", "4"]


def test_lightgbm_early_stops_on_the_training_fold_not_the_scored_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _small_data()
    spec = TrainSpec(target="t", candidates=("lightgbm",), trials=1, split="cv", cv_folds=3)
    split = make_split(data.y, spec)
    calls: list[tuple[np.ndarray, Any]] = []
    fit = LightGBMCandidate.fit

    def spy(self: LightGBMCandidate, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        calls.append((args[1], kwargs["eval_set"]))  # (params, X, y, ...)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(LightGBMCandidate, "fit", spy)
    cand = LightGBMCandidate()
    _Search(data.frame, data, spec, split, lambda _m: None).evaluate(
        cand, cand.default_params(spec)
    )
    encoded = data.frame[["income"]].to_numpy()[:, 0]  # the ordinal encoding keeps numbers
    for (tr, va), (X, eval_set) in zip(split.folds, calls, strict=True):
        assert eval_set is not None
        stop, fit_rows, scored = set(eval_set[0][:, 0]), set(X[:, 0]), set(encoded[va])
        assert stop <= set(encoded[tr]) and not stop & scored and not stop & fit_rows
        assert len(X) + len(eval_set[0]) == len(tr)
        assert 0.1 < len(eval_set[0]) / len(tr) < 0.2
        assert eval_set[1].mean() == pytest.approx(data.y[tr].mean(), abs=0.02)  # stratified


def test_the_log_says_when_the_timeout_cuts_the_search() -> None:
    spec = TrainSpec(target="t", candidates=("logistic",), trials=3, timeout_s=1e-6)
    lines: list[str] = []
    res = train_tabular(_small_data(), spec, log=lines.append)
    assert res.leaderboard[0]["trials"] == 1
    cut = [line for line in lines if "time budget reached" in line]
    assert cut and "1 of 3" in cut[0] and "timeout_s=None" in cut[0]


def test_lda_components_beyond_the_classes_are_refused_before_the_search() -> None:
    spec = TrainSpec(target="t", projection="lda", n_components=2, trials=3)
    with pytest.raises(InvalidInput, match=r"n_components is 2.*n_classes - 1 = 1") as info:
        train_tabular(_small_data(), spec, log=lambda _m: None)
    assert info.value.field == "n_components"


@pytest.mark.parametrize(
    ("candidates", "n_components", "width"),
    [
        (("logistic", "lightgbm"), 3, "into 2 feature"),  # WoE: income and grade
        (("mlp",), 7, "into 6 feature"),  # one-hot: income, grade 1-4, grade=__other__
    ],
)
def test_pca_components_beyond_the_encoded_features_are_refused_before_the_search(
    candidates: tuple[str, ...], n_components: int, width: str
) -> None:
    # the linear family's trials all failed and were skipped: lightgbm was chosen silently
    spec = TrainSpec(
        target="t", candidates=candidates, projection="pca", n_components=n_components, trials=2
    )
    lines: list[str] = []
    with pytest.raises(InvalidInput, match=rf"n_components is {n_components}.*{width}") as info:
        train_tabular(_small_data(), spec, log=lines.append)
    assert info.value.field == "n_components" and "lower n_components" in str(info.value)
    assert not any("trial" in line for line in lines)


def test_preprocessing_errors_are_raised_not_skipped_as_failed_trials() -> None:
    data = _small_data(200)
    data.frame["income"] = 1.0
    data.frame["grade"] = "x"
    spec = TrainSpec(target="t", candidates=("logistic",), trials=1, projection="lda")
    # scikit-learn's IndexError escaped, or "every training trial failed" hid the cause
    with pytest.raises(DataError, match=r"do not separate the classes.*projection=None"):
        train_tabular(data, spec, log=lambda _m: None)


def test_behaviour_aggregates_named_like_inputs_are_refused() -> None:
    data = _small_data()
    rng = np.random.default_rng(1)
    for column in ("m1", "m2", "m3", "m__mean"):
        data.frame[column] = rng.normal(size=len(data.y))
    data.numeric.extend(["m1", "m2", "m3", "m__mean"])
    spec = TrainSpec(target="t", candidates=("logistic",), trials=1)
    with pytest.raises(InvalidInput, match=r"\['m__mean'\].*rename") as info:
        train_tabular(data, spec, log=lambda _m: None)
    assert info.value.field == "m__mean"


def test_categories_named_like_internal_labels_are_refused_before_the_search() -> None:
    data = _small_data()
    data.frame["grade"] = data.frame["grade"].map({1: "a", 2: "b", 3: "__other__", 4: "c"})
    spec = TrainSpec(target="t", candidates=("lightgbm",), trials=1)  # the scorecard bins it
    with pytest.raises(DataError, match=r"'grade'.*__other__.*rename"):
        train_tabular(data, spec, log=lambda _m: None)


@pytest.mark.parametrize("uri", ["local://?workers=2", "ray://local?cpus=2"])
def test_a_search_on_workers_gives_the_same_model(
    uri: str, applicant_version: Any, artifacts: MemoryArtifactStore, request: pytest.FixtureRequest
) -> None:
    from contextlib import nullcontext

    from leptonic.compute import open_executor

    spec = TrainSpec(target="default", seed=2, trials=3, timeout_s=None, ensemble=False)
    data = load_training_data(applicant_version, artifacts, spec)
    alone = train_tabular(data, spec)
    lines: list[str] = []
    ticks: list[tuple[int, int]] = []
    shared = request.getfixturevalue("ray_executor") if uri.startswith("ray") else None
    with nullcontext(shared) if shared else open_executor(uri) as executor:
        side_by_side = train_tabular(
            data,
            spec,
            log=lines.append,
            progress=lambda done, total: ticks.append((done, total)),
            executor=executor,
        )
    assert any("side by side" in line for line in lines)
    assert any(line.startswith("lightgbm trial 0: score") for line in lines), lines  # replayed
    untimed = [
        [{k: v for k, v in row.items() if k != "seconds"} for row in result.leaderboard]
        for result in (side_by_side, alone)
    ]
    assert untimed[0] == untimed[1]
    assert side_by_side.chosen == alone.chosen
    assert side_by_side.test_metrics == alone.test_metrics
    np.testing.assert_array_equal(side_by_side.test_scores, alone.test_scores)
    assert ticks[-1][0] == ticks[-1][1] and ticks == sorted(ticks)


@pytest.mark.parametrize(
    ("n", "positives", "cv_folds", "match"),
    [
        # 11 positives pass "cv_folds + 1", but the test part takes 2: a fold had none
        (400, 11, 10, r"class 1 of target 't' has 11 row\(s\).*holds out 2, leaving 9.*"),
        (12, 6, 5, r"class 0 of target 't' has 6 row\(s\).*holds out 2, leaving 4.*"),
    ],
)
def test_too_few_of_a_class_for_the_folds_is_refused_before_the_search(
    n: int, positives: int, cv_folds: int, match: str
) -> None:
    # every trial failed ("see the run log"), or a fold saw one class only
    y = np.array([1] * positives + [0] * (n - positives))
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=n) + y})
    data = TrainingData(frame, y, ["x"], [], [0, 1], {}, 0)
    spec = TrainSpec(target="t", candidates=("logistic",), trials=1, cv_folds=cv_folds)
    lines: list[str] = []
    with pytest.raises(TargetError, match=match + "lower cv_folds to") as info:
        train_tabular(data, spec, log=lines.append)
    assert info.value.field == "target" and not any("trial" in line for line in lines)


def test_a_class_too_rare_for_the_folds_is_named_by_its_label() -> None:
    y = np.array([1] * 5 + [0] * 20)
    with pytest.raises(TargetError, match=r"class 'yes' of target 't' has 5 row"):
        make_split(y, TrainSpec(target="t"), classes=["no", "yes"])


@pytest.mark.parametrize(
    ("y", "spec", "error", "field", "match"),
    [
        (  # scikit-learn: "test_size = 5 should be greater or equal to the number of classes"
            np.repeat(np.arange(8), 3),
            TrainSpec(target="t", task="multiclass", split="holdout"),
            TargetError,
            "target",
            r"8 classes in 24 rows.*test part.*holds 5 row\(s\).*fractions\[2\] = 0.2\) to at "
            r"least 0.34",
        ),
        (  # 2400 rows: auto picks holdout
            np.repeat(np.arange(600), 4),
            TrainSpec(target="t", task="multiclass"),
            TargetError,
            "target",
            r"600 classes in 2400 rows.*holds 480 row\(s\).*to at least 0.25",
        ),
        (  # scikit-learn: "Cannot have number of splits n_splits=5 greater than ..."
            np.arange(6, dtype=float),
            TrainSpec(target="t", task="regression"),
            InvalidInput,
            "cv_folds",
            r"5-fold cross-validation.*holds out 2 of the 6 rows, leaving 4.*lower cv_folds to 4",
        ),
        (
            np.arange(2, dtype=float),
            TrainSpec(target="t", task="regression", split="holdout"),
            InvalidInput,
            "fractions",
            r"holdout split.*0 training and 1 validation row",
        ),
        (
            np.array([0, 0, 0, 1]),
            TrainSpec(target="t", split="holdout"),
            TargetError,
            "target",
            r"class 1 of target 't' has 1 row; a stratified split needs at least 2",
        ),
    ],
)
def test_data_too_small_for_the_split_is_refused_clearly(
    y: np.ndarray, spec: TrainSpec, error: type[Exception], field: str, match: str
) -> None:
    with pytest.raises(error, match=match) as info:
        make_split(y, spec)
    assert type(info.value) is error and getattr(info.value, "field", None) == field


def test_a_blend_is_compared_with_the_best_model_scored_the_same_way() -> None:
    # Under CV a model's search score is the mean of its per-fold scores, while a blend
    # is scored on the pooled out-of-fold predictions: for RMSE the pooled score is the
    # lower (Jensen), so a blend equal to the best model was rejected as worse.
    from leptonic.tasks.candidates import LinearCandidate
    from leptonic.tasks.tabular import _Best, _choose_blend, _score

    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    folds = np.array_split(np.arange(400), 4)
    oof = y + rng.normal(size=400) * np.repeat([0.2, 0.5, 1.0, 3.0], 100)  # uneven folds
    mean_of_folds = float(np.mean([_score("regression", y[f], oof[f]) for f in folds]))
    rows = np.arange(400)
    assert _score("regression", y, oof) < mean_of_folds
    best = _Best(mean_of_folds, LinearCandidate(), {}, oof, [])
    twin = _Best(mean_of_folds, LightGBMCandidate(), {}, oof.copy(), [])
    chosen = _choose_blend([best, twin], y, rows, "regression")
    assert chosen is not None
    members, weights, blend_score, single_score = chosen
    assert blend_score == pytest.approx(single_score) == pytest.approx(_score("regression", y, oof))
    assert len(members) == 2 and sum(weights) == pytest.approx(1.0)


def _weak_data(n: int = 1000) -> TrainingData:
    """A weak signal: LightGBM early-stops after a few dozen rounds."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    y = (0.15 * x[:, 0] + rng.normal(size=n) > 0).astype(int)
    return TrainingData(
        pd.DataFrame(x, columns=["a", "b", "c"]), y, ["a", "b", "c"], [], [0, 1], {}, 0
    )


def test_a_refit_on_every_row_keeps_the_early_stopped_rounds() -> None:
    # refit=False, refit_all=True: the kept LightGBM model had 300 trees (the default)
    # where the tested one had early-stopped at a few dozen
    data = _weak_data()
    common: dict[str, Any] = {
        "target": "t",
        "candidates": ("lightgbm",),
        "trials": 1,
        "timeout_s": None,
        "split": "holdout",
        "refit": False,
        "behaviour_aggregates": False,
    }
    tested = train_tabular(data, TrainSpec(**common), log=lambda _m: None)
    kept = train_tabular(data, TrainSpec(**common, refit_all=True), log=lambda _m: None)
    stopped = tested.predictor.estimator.best_iteration  # type: ignore[union-attr]
    assert 0 < stopped < 200
    # the rounds the search's early-stopped fit found, scaled to the rows of the refit
    rounds = LightGBMCandidate().refit_params({}, [{"best_iteration": stopped}])
    assert kept.predictor.estimator.num_trees() == rounds["num_boost_round"] < 300  # type: ignore[union-attr]
    assert kept.params["num_boost_round"] == rounds["num_boost_round"]
    assert "num_boost_round" not in tested.params


def test_ensemble_members_record_the_parameters_they_were_fitted_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from leptonic.tasks import tabular
    from leptonic.tasks.predictor import EnsemblePredictor

    def both(bests: list[Any], *args: Any) -> Any:  # keep a blend of every family
        return bests, [1 / len(bests)] * len(bests), 0.0, 0.0

    monkeypatch.setattr(tabular, "_choose_blend", both)
    spec = TrainSpec(
        target="t",
        candidates=("logistic", "lightgbm"),
        trials=2,
        timeout_s=None,
        split="holdout",
        behaviour_aggregates=False,
    )
    res = train_tabular(_weak_data(), spec, log=lambda _m: None)
    assert res.chosen == "ensemble" and isinstance(res.predictor, EnsemblePredictor)
    members = {m.flavor: m for m in res.predictor.members}
    recorded = res.params["members"]
    assert recorded["lightgbm"]["num_boost_round"] == members["lightgbm"].estimator.num_trees()
    assert recorded["logistic"]["C"] == members["logistic"].estimator.C
