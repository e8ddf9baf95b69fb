from __future__ import annotations

import math
import warnings
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier

from leptonic.errors import InvalidInput
from leptonic.features.behaviour import SequenceAggregates
from leptonic.features.preprocessing import TabularPreprocessor
from leptonic.serving.reasons import Explainer
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.synthetic import applicants
from leptonic.tasks._data import load_training_data
from leptonic.tasks.predictor import EnsemblePredictor, TabularPredictor
from leptonic.tasks.spec import TrainSpec
from leptonic.tasks.tabular import train_tabular
from support import make_version

NUMERIC = [
    "age",
    "employment_years",
    "annual_income",
    "monthly_debt",
    "credit_limit",
    "loan_amount",
    "num_credit_lines",
    "late_payments_12m",
    *[f"utilization_m{m}" for m in range(1, 7)],
]
CATEGORICAL = ["employment_type", "home_ownership", "loan_purpose", "region"]


class Data:
    def __init__(self) -> None:
        self.table = applicants(1500, seed=11)
        frame = self.table.to_pandas()
        self.y = frame.pop("default").to_numpy()
        self.behaviour = SequenceAggregates().fit(NUMERIC)
        self.X = self.behaviour.transform(frame[NUMERIC + CATEGORICAL])
        self.numeric = NUMERIC + self.behaviour.feature_names_out_
        self.inputs = [{"name": c, "type": "numeric"} for c in NUMERIC]
        self.inputs += [{"name": c, "type": "categorical"} for c in CATEGORICAL]
        self.records = self.table.slice(1000, 80).to_pylist()

    def predictor(self, flavor: str, **options: Any) -> TabularPredictor:
        encoding = {"lightgbm": "ordinal", "mlp": "onehot"}.get(flavor, "woe")
        pre = TabularPreprocessor(
            self.numeric, CATEGORICAL, **{"encoding": encoding, **options}
        ).fit(self.X, self.y)
        Z = pre.transform(self.X)
        est: Any
        if flavor == "lightgbm":
            params = {"objective": "binary", "verbosity": -1, "num_leaves": 7, "num_threads": 1}
            train = lgb.Dataset(Z, self.y, categorical_feature=pre.categorical_indices_)
            est = lgb.train(params, train, num_boost_round=40)
        else:
            est = (
                LogisticRegression(C=0.3, max_iter=2000)
                if flavor == "logistic"
                else MLPClassifier((16,), max_iter=40, random_state=0)
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(Z, self.y)
        return TabularPredictor(
            task="binary",
            flavor=flavor,
            estimator=est,
            preprocessor=pre,
            behaviour=self.behaviour,
            inputs=self.inputs,
            classes=[0, 1],
            threshold=0.2,
        )


@pytest.fixture(scope="module")
def data() -> Data:
    return Data()


@pytest.fixture(scope="module")
def woe(data: Data) -> TabularPredictor:
    return data.predictor("logistic")


@pytest.fixture(scope="module")
def trees(data: Data) -> TabularPredictor:
    return data.predictor("lightgbm")


@pytest.fixture(scope="module")
def mlp(data: Data) -> TabularPredictor:
    return data.predictor("mlp")


def _logits(predictor: Any, records: list[dict[str, Any]]) -> np.ndarray:
    p = np.array([predictor.predict_one(r) for r in records])
    return np.log(p / (1.0 - p))


def _contributions(explainer: Explainer, records: list[dict[str, Any]]) -> np.ndarray:
    return np.array([explainer.contributions(r) for r in records])


# -- contributions --------------------------------------------------------------


def test_features_are_the_inputs_then_the_aggregates(data: Data, woe: TabularPredictor) -> None:
    explainer = Explainer(woe)
    assert explainer.features == NUMERIC + CATEGORICAL + data.behaviour.feature_names_out_
    assert "logistic" in repr(explainer)


def test_logistic_woe_contributions_add_up_to_the_logit(data: Data, woe: TabularPredictor) -> None:
    explainer = Explainer(woe)
    C = _contributions(explainer, data.records)
    np.testing.assert_allclose(
        C.sum(axis=1) + explainer.base_value, _logits(woe, data.records), rtol=0, atol=1e-10
    )
    # the baseline is the training mean of every WoE column
    coef, intercept = woe.estimator.coef_[0], woe.estimator.intercept_[0]
    mean = woe.preprocessor.transform(data.X).mean(axis=0)
    assert explainer.base_value == pytest.approx(intercept + coef @ mean, abs=1e-9)
    # and each input's share is coefficient x (its WoE - the mean WoE)
    record = data.records[0]
    x = woe.encode_one(record)
    j = woe.preprocessor.feature_names_out_.index("late_payments_12m")
    g = explainer.features.index("late_payments_12m")
    assert C[0, g] == pytest.approx(coef[j] * (x[j] - mean[j]), abs=1e-12)


@pytest.mark.parametrize(
    "options",
    [
        {"encoding": "onehot", "flag_outliers": True},
        {"encoding": "onehot", "projection": "pca"},
        {"encoding": "woe", "projection": "pca", "n_components": 5},
    ],
)
def test_logistic_onehot_and_projected_contributions_add_up(
    data: Data, options: dict[str, Any]
) -> None:
    predictor = data.predictor("logistic", **options)
    for background in (None, data.table.slice(0, 300)):
        explainer = Explainer(predictor, background=background)
        C = _contributions(explainer, data.records)
        np.testing.assert_allclose(
            C.sum(axis=1) + explainer.base_value,
            _logits(predictor, data.records),
            rtol=0,
            atol=1e-9,
        )
    # every encoded column is credited to one input: the group sums use all of them
    assert explainer._parts[0][2].weights.shape[1] == len(explainer.features)  # type: ignore[attr-defined]


def test_background_means_become_the_baseline(data: Data, woe: TabularPredictor) -> None:
    rows = data.table.slice(0, 200)
    explainer = Explainer(woe, background=rows)
    encoded = np.array([woe.encode_one(r) for r in rows.to_pylist()])
    coef, intercept = woe.estimator.coef_[0], woe.estimator.intercept_[0]
    assert explainer.base_value == pytest.approx(intercept + coef @ encoded.mean(axis=0), abs=1e-9)
    # DataFrames, record lists and a row limit work alike
    frame = rows.to_pandas()
    same = Explainer(woe, background=frame).base_value
    assert same == pytest.approx(explainer.base_value, abs=1e-12)
    few = Explainer(woe, background=rows.to_pylist(), max_background=10)
    assert few.base_value != pytest.approx(explainer.base_value, abs=1e-6)
    with pytest.raises(InvalidInput) as info:
        Explainer(woe, background=[])
    assert info.value.field == "background"


def test_lightgbm_treeshap_adds_up_to_the_raw_margin(data: Data, trees: TabularPredictor) -> None:
    explainer = Explainer(trees)
    C = _contributions(explainer, data.records)
    X = np.array([trees.encode_one(r) for r in data.records])
    booster = trees.estimator
    np.testing.assert_allclose(
        C.sum(axis=1) + explainer.base_value,
        booster.predict(X, raw_score=True),
        rtol=0,
        atol=1e-9,
    )
    # the booster's own TreeSHAP values, column by column (one input per ordinal column)
    shap = booster.predict(X, pred_contrib=True)
    names = trees.preprocessor.feature_names_out_
    order = [explainer.features.index(n) for n in names]
    np.testing.assert_allclose(C[:, order], shap[:, :-1], rtol=0, atol=1e-12)
    assert explainer.base_value == pytest.approx(shap[0, -1], abs=1e-12)


def test_lightgbm_path_attributions_add_up_too(data: Data, trees: TabularPredictor) -> None:
    shap = Explainer(trees)
    path = Explainer(trees, tree_method="path")
    assert path.base_value == pytest.approx(shap.base_value, abs=1e-9)
    C = _contributions(path, data.records)
    np.testing.assert_allclose(
        C.sum(axis=1) + path.base_value, _logits(trees, data.records), rtol=0, atol=1e-9
    )
    # different attributions, but they agree on the strongest input most of the time
    S = _contributions(shap, data.records)
    agree = np.mean(C.argmax(axis=1) == S.argmax(axis=1))
    assert agree > 0.6
    with pytest.raises(InvalidInput) as info:
        Explainer(trees, tree_method="saabas")
    assert info.value.field == "tree_method"


def test_path_attributions_of_a_stump_by_hand() -> None:
    X = np.array([[0.0], [0.0], [0.0], [1.0], [1.0], [1.0], [1.0], [1.0]] * 10)
    y = np.array([0, 0, 1, 1, 1, 1, 0, 1] * 10)
    params = {"objective": "binary", "verbosity": -1, "num_leaves": 2, "min_data_in_leaf": 1}
    params |= {"min_data_in_bin": 1, "learning_rate": 1.0}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=1)
    pre = TabularPreprocessor(["x"], [], encoding="ordinal").fit(pd.DataFrame({"x": X[:, 0]}))
    predictor = TabularPredictor(
        task="binary",
        flavor="lightgbm",
        estimator=booster,
        preprocessor=pre,
        behaviour=None,
        inputs=[{"name": "x", "type": "numeric"}],
    )
    explainer = Explainer(predictor, tree_method="path")
    tree = booster.dump_model()["tree_info"][0]["tree_structure"]
    left, right = tree["left_child"], tree["right_child"]
    n_left, n_right = left["leaf_count"], right["leaf_count"]
    expected = (left["leaf_value"] * n_left + right["leaf_value"] * n_right) / (n_left + n_right)
    assert explainer.base_value == pytest.approx(expected, abs=1e-12)
    for value, leaf in ((0.0, left), (1.0, right)):
        got = explainer.contributions({"x": value})
        assert got.tolist() == pytest.approx([leaf["leaf_value"] - expected], abs=1e-12)


def test_mlp_contributions_are_baseline_substitutions(data: Data, mlp: TabularPredictor) -> None:
    rows = data.table.slice(0, 300)
    explainer = Explainer(mlp, background=rows)
    mean = np.array([mlp.encode_one(r) for r in rows.to_pylist()]).mean(axis=0)
    sources = np.asarray(explainer._parts[0][2].mask[1:])  # type: ignore[attr-defined]
    record = data.records[4]
    x = mlp.encode_one(record)

    def logit(v: np.ndarray) -> float:
        p = mlp.estimator.predict_proba(v[None, :])[0, 1]
        return float(np.log(p / (1.0 - p)))

    by_hand = [logit(x) - logit(np.where(sources[g], mean, x)) for g in range(len(sources))]
    np.testing.assert_allclose(explainer.contributions(record), by_hand, rtol=0, atol=1e-9)
    assert explainer.base_value == pytest.approx(logit(mean), abs=1e-9)


def test_ensemble_weighs_its_members(
    data: Data, woe: TabularPredictor, trees: TabularPredictor, mlp: TabularPredictor
) -> None:
    ensemble = EnsemblePredictor([woe, trees, mlp], [0.5, 0.3, 0.2], threshold=0.2)
    explainer = Explainer(ensemble)
    members = [Explainer(m) for m in (woe, trees, mlp)]
    weights = ensemble.weights
    for record in data.records[:10]:
        expected = sum(w * e.contributions(record) for w, e in zip(weights, members, strict=True))
        np.testing.assert_allclose(explainer.contributions(record), expected, rtol=0, atol=1e-12)
    assert explainer.base_value == pytest.approx(
        sum(w * e.base_value for w, e in zip(weights, members, strict=True)), abs=1e-12
    )
    # the WoE member words the reasons
    reasons = explainer.reasons(dict(data.records[0], late_payments_12m=9), 3)
    assert any("bin" in r["text"] for r in reasons)


def test_only_binary_models() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=50)})
    pre = TabularPreprocessor(["x"], []).fit(frame)
    ridge = Ridge().fit(pre.transform(frame), rng.normal(size=50))
    predictor = TabularPredictor(
        task="regression",
        flavor="logistic",
        estimator=ridge,
        preprocessor=pre,
        behaviour=None,
        inputs=[{"name": "x", "type": "numeric"}],
    )
    with pytest.raises(InvalidInput, match="binary") as info:
        Explainer(predictor)
    assert info.value.field == "predictor"


# -- reason codes ---------------------------------------------------------------


def test_reasons_are_adverse_sorted_and_worded(data: Data, woe: TabularPredictor) -> None:
    explainer = Explainer(woe)
    risky = dict(data.records[0], late_payments_12m=8, utilization_m6="1.2", home_ownership="rent")
    reasons = explainer.reasons(risky, 4)
    assert 1 <= len(reasons) <= 4
    assert [sorted(r) for r in reasons] == [["contribution", "feature", "text", "value"]] * len(
        reasons
    )
    contributions = [r["contribution"] for r in reasons]
    assert contributions == sorted(contributions, reverse=True)
    assert all(c > 0 for c in contributions)
    full = dict(zip(explainer.features, explainer.contributions(risky), strict=True))
    for r in reasons:
        assert r["contribution"] == pytest.approx(full[r["feature"]], abs=1e-12)
    top = reasons[0]
    assert top["feature"] == "late_payments_12m" and top["value"] == 8
    assert top["text"].startswith("late payments 12m 8 is in bin (")
    assert "with a high default rate (" in top["text"] and "overall)" in top["text"]
    by_name = {r["feature"]: r for r in explainer.reasons(risky, 20)}
    if "utilization_m6" in by_name:  # a numeric string keeps its raw value
        assert by_name["utilization_m6"]["value"] == "1.2"
    # k caps the list; 0 gives none; a safe applicant may have fewer
    assert len(explainer.reasons(risky, 2)) == 2
    assert explainer.reasons(risky, 0) == []
    assert len(explainer.reasons(risky, 20)) == sum(c > 0 for c in full.values())


def test_wording_of_missing_unseen_and_plain_values(
    data: Data, woe: TabularPredictor, trees: TabularPredictor
) -> None:
    words = Explainer(woe, event="bad")
    text = dict(zip(words.features, words._texts, strict=True))
    income = text["annual_income"](None)
    assert income.startswith("annual income is missing")
    assert "bad rate" in income
    assert text["annual_income"](math.nan) == income
    assert text["home_ownership"]("castle") == "home ownership 'castle' was not seen in training"
    assert text["home_ownership"]("rent").startswith("home ownership 'rent'")
    assert text["utilization_m__mean"](0.5).startswith("utilization m mean 0.5 is in bin (")

    plain = Explainer(trees)
    text = dict(zip(plain.features, plain._texts, strict=True))
    assert text["annual_income"](52000.0) == "annual income 52000 raises the default risk"
    assert text["annual_income"](None) == "annual income is missing"
    assert text["region"]("north") == "region 'north' raises the default risk"
    assert text["region"](None) == "region is missing"
    mlp_words = Explainer(data.predictor("mlp"))
    text = dict(zip(mlp_words.features, mlp_words._texts, strict=True))
    assert "(training average " in text["age"](80)


def test_missing_values_come_back_as_none(data: Data, trees: TabularPredictor) -> None:
    explainer = Explainer(trees)
    record = {
        k: (math.nan if k.startswith("utilization") else v) for k, v in data.records[2].items()
    }
    for r in explainer.reasons(record, 20):
        if r["feature"].startswith("utilization"):
            assert r["value"] is None
            assert r["text"].endswith("is missing")


def test_explains_a_model_from_the_training_path() -> None:
    table = applicants(1500, seed=2)
    artifacts = MemoryArtifactStore()
    version = make_version(pa.Table.from_pylist(table.to_pylist()), artifacts, "applicants")
    spec = TrainSpec(target="default", candidates=("logistic",), trials=1, timeout_s=None)
    predictor = train_tabular(load_training_data(version, artifacts, spec), spec).predictor
    explainer = Explainer(predictor)
    records = table.slice(0, 30).to_pylist()
    C = _contributions(explainer, records)
    np.testing.assert_allclose(
        C.sum(axis=1) + explainer.base_value, _logits(predictor, records), rtol=0, atol=1e-10
    )
    assert "applicant_id" not in explainer.features and "default" not in explainer.features
    assert explainer.reasons(dict(records[0], late_payments_12m=10), 1)[0]["feature"]


def test_a_reason_made_again_around_a_hash_names_no_value(
    woe: TabularPredictor, trees: TabularPredictor
) -> None:
    words = Explainer(woe)
    hidden = words.reason_text("late_payments_12m", "8", "h4sh")
    assert (
        hidden.startswith("late payments 12m h4sh is in bin ")
        and "(" not in hidden.split("rate")[0]
    )
    assert words.reason_text("late_payments_12m", 8) == words._texts[
        words.features.index("late_payments_12m")
    ](8)
    assert words.reason_text("home_ownership", "rent", "h4sh").startswith("home ownership 'h4sh'")
    assert words.reason_text("home_ownership", "castle", "h4sh") == (
        "home ownership 'h4sh' was not seen in training"
    )
    plain = Explainer(trees)
    assert plain.reason_text("annual_income", "52000", "h4sh") == (
        "annual income h4sh raises the default risk"
    )
    assert plain.reason_text("region", "north", "h4sh") == "region 'h4sh' raises the default risk"


@pytest.mark.parametrize("flavor", ["woe", "trees"])
@pytest.mark.parametrize("extreme", [1e200, -1e200])
def test_an_aggregate_that_overflows_is_none_and_not_printed(
    data: Data, flavor: str, extreme: float, request: pytest.FixtureRequest
) -> None:
    import json

    explainer = Explainer(request.getfixturevalue(flavor))
    record = dict(data.records[0], utilization_m6=extreme, late_payments_12m=8)
    assert explainer._augment(record)["utilization_m__std"] == math.inf  # the variance overflows
    reasons = explainer.reasons(record, 30)
    json.dumps(reasons, allow_nan=False)  # every value and contribution is finite (or None)
    by_name = {r["feature"]: r for r in reasons}
    assert "utilization_m__std" in by_name
    std = by_name["utilization_m__std"]
    assert std["value"] is None
    assert std["text"].startswith("utilization m std (too large to show)")
    for r in reasons:  # the value is never printed as inf or nan (a bin's bound may be inf)
        said = r["text"].split(" raises")[0].split(" is in bin")[0].split()
        assert "inf" not in said and "-inf" not in said and "nan" not in said
    assert explainer.reason_text("utilization_m__std", -math.inf).startswith(
        "utilization m std (too negative to show)"
    )
