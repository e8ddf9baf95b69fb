from __future__ import annotations

import numpy as np
import pytest

from leptonic.errors import InvalidInput
from leptonic.tasks._data import load_training_data
from leptonic.tasks.spec import TrainSpec
from leptonic.tasks.tabular import train_tabular


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
