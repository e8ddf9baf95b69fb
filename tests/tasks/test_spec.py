from __future__ import annotations

import json
from typing import Any

import pytest

from leptonic.errors import InvalidInput
from leptonic.tasks.recsys.spec import RecommenderSpec
from leptonic.tasks.spec import MAX_SEED, TrainSpec
from leptonic.tasks.textcls.spec import TextClassificationSpec


def test_defaults_are_the_credit_scoring_split() -> None:
    spec = TrainSpec(target="default")
    assert spec.fractions == (0.5, 0.3, 0.2)
    assert spec.task == "binary"
    assert set(spec.candidates) == {"logistic", "lightgbm", "mlp"}


def test_round_trip_through_json() -> None:
    spec = TrainSpec(target="y", candidates=("lightgbm",), exclude=("a",), trials=3, seed=5)
    again = TrainSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"task": "ranking"}, "task"),
        ({"candidates": ("xgboost",)}, "candidates"),
        ({"candidates": ()}, "candidates"),
        ({"split": "random"}, "split"),
        ({"fractions": (0.5, 0.5, 0.5)}, "fractions"),
        ({"trials": 1}, "trials"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"projection": "tsne"}, "projection"),
        ({"projection": "lda", "task": "regression"}, "projection"),
        ({"threshold": "youden"}, "threshold"),
        ({"positive_label": {"a": 1}}, "positive_label"),
        ({"positive_label": float("nan")}, "positive_label"),
        ({"cv_folds": 1}, "cv_folds"),
    ],
)
def test_bad_spec_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        TrainSpec(target="y", **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert field in str(info.value)


def test_empty_target_is_refused() -> None:
    with pytest.raises(InvalidInput, match="target"):
        TrainSpec(target="")


def test_unknown_field_in_dict() -> None:
    with pytest.raises(InvalidInput, match="unknown training spec field"):
        TrainSpec.from_dict({"target": "y", "learning_rate": 0.1})


def test_a_single_column_name_is_a_one_column_list() -> None:
    # ``exclude="applicant_id"`` must not be read character by character
    # (which would silently exclude every column named like a substring of it).
    spec = TrainSpec(target="y", exclude="applicant_id", features="x", candidates="logistic")  # type: ignore[arg-type]
    assert spec.exclude == ("applicant_id",)
    assert spec.features == ("x",)
    assert spec.candidates == ("logistic",)
    assert TrainSpec(target="y", allow_pii=["email"]) == TrainSpec(target="y", allow_pii=("email",))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"trials": "5"}, "trials"),
        ({"trials": True}, "trials"),
        ({"seed": None}, "seed"),
        ({"cv_folds": 2.5}, "cv_folds"),
        ({"timeout_s": "10"}, "timeout_s"),
        ({"exclude": None}, "exclude"),
        ({"exclude": ["a", 3]}, "exclude"),
        ({"n_components": 0}, "n_components"),
        ({"refit": "no"}, "refit"),
        ({"fractions": ["0.5", "0.3", "0.2"]}, "fractions"),
    ],
)
def test_wrong_types_from_a_dict_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        TrainSpec.from_dict({"target": "y", **data})
    assert info.value.field == field


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 2**70])
@pytest.mark.parametrize(
    "make",
    [
        lambda seed: TrainSpec(target="y", seed=seed),
        lambda seed: RecommenderSpec(seed=seed),
        lambda seed: TextClassificationSpec(seed=seed),
    ],
    ids=["tabular", "recommender", "text"],
)
def test_a_seed_out_of_range_is_refused(make: Any, seed: int) -> None:
    with pytest.raises(InvalidInput, match="use a whole number from 0 to") as info:
        make(seed)
    assert info.value.field == "seed"
    assert make(MAX_SEED).seed == MAX_SEED
    assert make(1_234_567_890).seed == 1_234_567_890  # a seed earlier releases stored


@pytest.mark.parametrize(
    "fields",
    [
        {"timeout_s": float("nan")},
        {"pdo": float("inf")},
        {"base_score": 10**400},
        {"fractions": (0.5, float("nan"), 0.2)},
    ],
)
def test_non_finite_numbers_are_refused_naming_the_field(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as info:
        TrainSpec(target="y", **fields)
    assert info.value.field == next(iter(fields))
