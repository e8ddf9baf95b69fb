from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from leptonic.core.dataset import ColumnRole
from leptonic.errors import InvalidInput
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.tasks._data import load_training_data
from leptonic.tasks.spec import TrainSpec
from leptonic.tasks.tabular import make_split, train_tabular
from support import make_version


@pytest.mark.parametrize("candidate", ["logistic", "lightgbm", "mlp"])
def test_predict_one_matches_predict_batch(
    applicant_version, artifacts, applicant_table, candidate
) -> None:  # type: ignore[no-untyped-def]
    spec = TrainSpec(target="default", candidates=(candidate,), trials=1, timeout_s=30.0)
    res = train_tabular(load_training_data(applicant_version, artifacts, spec), spec)
    predictor = res.predictor
    assert predictor.flavor == candidate
    records = applicant_table.slice(0, 40).to_pylist()
    batch = predictor.predict_batch(applicant_table.slice(0, 40))
    one = np.array([predictor.predict_one(r) for r in records])
    np.testing.assert_allclose(one, batch, rtol=1e-6, atol=1e-9)
    # unknown categories and missing fields are served, not refused
    odd = dict(records[0], employment_type="astronaut")
    odd.pop("annual_income")
    assert 0.0 <= float(predictor.predict_one(odd)) <= 1.0  # type: ignore[arg-type]


def test_batch_needs_the_signature_columns(applicant_version, artifacts, applicant_table) -> None:  # type: ignore[no-untyped-def]
    spec = TrainSpec(target="default", candidates=("logistic",), trials=1)
    res = train_tabular(load_training_data(applicant_version, artifacts, spec), spec)
    with pytest.raises(InvalidInput, match="missing column"):
        res.predictor.predict_batch(applicant_table.drop_columns(["annual_income"]))
    assert res.predictor.decide(0.99) is True


@pytest.mark.parametrize("candidate", ["logistic", "lightgbm", "mlp"])
def test_number_and_boolean_coded_categories_score_alike_on_both_paths(candidate: str) -> None:
    # A grade coded 1..4 with gaps (read back as floats) and a boolean flag, both
    # declared categorical: the batch path must see the categories training saw.
    rng = np.random.default_rng(0)
    n = 600
    grade = rng.integers(1, 5, n).astype(float)
    grade[rng.random(n) < 0.1] = np.nan
    flag = rng.random(n) < 0.5
    x = rng.normal(size=n)
    y = (x + 2 * (grade == 2) + flag + rng.normal(size=n) > 1.0).astype(int)
    table = pa.table({"grade": grade, "flag": flag, "x": x, "default": y})
    artifacts = MemoryArtifactStore()
    version = make_version(table, artifacts)
    columns = tuple(
        dataclasses.replace(c, role=ColumnRole.CATEGORICAL) if c.name in ("grade", "flag") else c
        for c in version.columns
    )
    version = dataclasses.replace(version, columns=columns)
    spec = TrainSpec(
        target="default", candidates=(candidate,), trials=1, timeout_s=None, split="holdout"
    )
    data = load_training_data(version, artifacts, spec)
    res = train_tabular(data, spec)
    predictor = res.predictor
    assert [i["name"] for i in predictor.inputs if i["type"] == "categorical"] == ["grade", "flag"]
    # batch scoring of the held-out rows gives the test scores computed in training
    test_rows = table.take(make_split(data.y, spec).test)
    np.testing.assert_allclose(predictor.predict_batch(test_rows), res.test_scores, atol=1e-12)
    one = [predictor.predict_one(r) for r in test_rows.to_pylist()]
    np.testing.assert_allclose(one, res.test_scores, atol=1e-9)
    # 2, 2.0 and True / 1 are the same category on both paths
    records = [{"grade": 2, "flag": True, "x": 0.1}, {"grade": 2.0, "flag": 1, "x": 0.1}]
    batch = predictor.predict_batch(records)
    assert batch[0] == pytest.approx(batch[1], abs=1e-12)
    np.testing.assert_allclose([predictor.predict_one(r) for r in records], batch, atol=1e-9)


def test_an_mlp_regressor_in_real_units_scores_alike_on_every_path() -> None:
    # The MLP fits a standardised target; every path (the training's test scores,
    # batch, single record, a saved and loaded bundle) predicts in the target's units.
    from leptonic.registry.serialization import load_predictor, save_predictor
    from support import regression_table

    table = regression_table(500, seed=1)
    table = table.set_column(3, "amount", pa.array(np.asarray(table["amount"]) * 1000.0))
    artifacts = MemoryArtifactStore()
    version = make_version(table, artifacts)
    spec = TrainSpec(
        target="amount",
        task="regression",
        candidates=("mlp",),
        trials=1,
        timeout_s=None,
        split="holdout",
    )
    data = load_training_data(version, artifacts, spec)
    res = train_tabular(data, spec)
    assert res.test_metrics["r2"] > 0.7  # ~0 when the raw target was fitted
    predictor = res.predictor
    test_rows = table.take(make_split(data.y, spec).test)
    batch = predictor.predict_batch(test_rows)
    np.testing.assert_allclose(batch, res.test_scores, rtol=1e-9)
    one = [predictor.predict_one(r) for r in test_rows.to_pylist()]
    np.testing.assert_allclose(one, batch, rtol=1e-9)
    loaded = load_predictor(artifacts, *save_predictor(predictor, artifacts))
    np.testing.assert_allclose(loaded.predict_batch(test_rows), batch, rtol=1e-12)
    np.testing.assert_allclose(
        [loaded.predict_one(r) for r in test_rows.to_pylist()], one, rtol=1e-12
    )
