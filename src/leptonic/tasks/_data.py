"""Turn a dataset version into a training table: feature selection and target checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from leptonic.core.dataset import ColumnRole, DatasetVersion
from leptonic.errors import SchemaError, TargetError
from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.tasks.spec import TrainSpec

__all__ = ["TrainingData", "load_training_data", "select_features"]

_FEATURE_ROLES = (ColumnRole.NUMERIC, ColumnRole.CATEGORICAL)
_NUMERIC_TYPES = ("int", "uint", "float", "double", "decimal", "bool")


@dataclass
class TrainingData:
    """Features, encoded target and what is needed to decode it."""

    frame: pd.DataFrame
    y: np.ndarray
    numeric: list[str]
    categorical: list[str]
    classes: list[Any] | None
    excluded: dict[str, str]
    dropped_missing_target: int


def _is_numeric_dtype(dtype: str) -> bool:
    return dtype.startswith(_NUMERIC_TYPES)


def select_features(
    version: DatasetVersion, spec: TrainSpec
) -> tuple[list[str], list[str], dict[str, str]]:
    """Numeric and categorical feature columns, and why each other column is left out."""
    names = [c.name for c in version.columns]
    if spec.target not in names:
        raise TargetError(
            f"target column {spec.target!r} is not in dataset {version.dataset!r} "
            f"v{version.version}; columns are: {', '.join(names)}",
            field="target",
        )
    for listed, label in (
        ((spec.features or ()), "features"),
        (spec.exclude, "exclude"),
        (
            spec.allow_pii,
            "allow_pii",
        ),
    ):
        missing = [c for c in listed if c not in names]
        if missing:
            raise SchemaError(
                f"{label} names column(s) not in the dataset: {', '.join(missing)}; "
                f"columns are: {', '.join(names)}",
                field=label,
            )
    numeric: list[str] = []
    categorical: list[str] = []
    excluded: dict[str, str] = {}
    wanted = set(spec.features) if spec.features is not None else None
    contract = version.source.get("contract") or {}
    allowed = {*spec.allow_pii, *contract.get("pii", {}).get("allow_in_training", ())}
    target = next(c for c in version.columns if c.name == spec.target)
    if target.pii and target.name not in allowed:
        # its values would become class labels, seen in reports, models and errors
        raise TargetError(
            f"target column {spec.target!r} holds personal data ({target.pii}): a model's "
            "classes and reports would show its values to every member; choose another "
            "target, or list it in allow_pii to train on it anyway",
            field="target",
        )
    for col in version.columns:
        if col.name == spec.target:
            continue
        if col.name in spec.exclude:
            excluded[col.name] = "excluded by the spec"
            continue
        if wanted is not None and col.name not in wanted:
            excluded[col.name] = "not in the spec's features"
            continue
        if col.pii and col.name not in allowed:
            excluded[col.name] = f"PII ({col.pii}); allow it with allow_pii"
            continue
        role = col.role
        if role == ColumnRole.PII:
            role = ColumnRole.NUMERIC if _is_numeric_dtype(col.dtype) else ColumnRole.CATEGORICAL
        if role not in _FEATURE_ROLES:
            excluded[col.name] = f"role {role.value}"
            continue
        if (
            col.name not in (wanted or ())
            and version.quality.get("columns", {}).get(col.name, {}).get("distinct") == 1
        ):
            excluded[col.name] = "constant"
            continue
        (numeric if role == ColumnRole.NUMERIC else categorical).append(col.name)
    if not numeric and not categorical:
        raise SchemaError(
            f"dataset {version.dataset!r} v{version.version} has no usable feature columns "
            f"(left out: {excluded}); declare column roles in a contract file or pass features",
            field="features",
        )
    return numeric, categorical, excluded


def _encode_target(values: pd.Series, spec: TrainSpec) -> tuple[np.ndarray, list[Any] | None]:
    name = spec.target
    if spec.task == "regression":
        y = pd.to_numeric(values, errors="coerce")
        if y.isna().any():
            raise TargetError(
                f"target {name!r} has non-numeric values (e.g. {values[y.isna()].iloc[0]!r}); "
                f"regression needs numbers — use task binary/multiclass for labels",
                field="target",
            )
        infinite = int(np.isinf(y.to_numpy(dtype=float)).sum())
        if infinite:
            raise TargetError(
                f"target {name!r} has {infinite} infinite value(s); replace them with numbers "
                "or leave them empty (rows without a target are left out)",
                field="target",
            )
        if y.nunique() < 2:
            raise TargetError(
                f"target {name!r} is constant ({y.iloc[0]!r}); nothing to learn", field="target"
            )
        return y.to_numpy(dtype=float), None
    # integer labels read as floats (missing labels make pandas widen them)
    if pd.api.types.is_float_dtype(values.dtype) and bool(
        ((values % 1 == 0) & (values.abs() < 2**53)).all()
    ):
        values = values.astype(np.int64)
    labels = sorted(values.unique().tolist(), key=lambda v: (str(type(v)), v))
    if len(labels) < 2:
        raise TargetError(
            f"target {name!r} is constant (every row is {labels[0]!r}); a classifier needs at "
            f"least two classes — check the target column or the data extract",
            field="target",
        )
    if spec.task == "binary":
        if len(labels) > 2:
            shown = ", ".join(repr(v) for v in labels[:8])
            raise TargetError(
                f"target {name!r} is not binary: it has {len(labels)} classes ({shown}...); "
                f"use task 'multiclass', or map it to two classes",
                field="target",
            )
        if spec.positive_label is not None:
            matches = [v for v in labels if str(v) == str(spec.positive_label)]
            if not matches:
                raise TargetError(
                    f"positive_label {spec.positive_label!r} is not a value of target {name!r}; "
                    f"values are {labels!r}",
                    field="positive_label",
                )
            positive = matches[0]
        elif set(map(str, labels)) in ({"0", "1"}, {"False", "True"}, {"false", "true"}):
            positive = labels[1]
        else:
            raise TargetError(
                f"target {name!r} has labels {labels!r}; say which one is the event with "
                f"positive_label (--positive-label)",
                field="positive_label",
            )
        negative = labels[0] if labels[1] == positive else labels[1]
        y = (values == positive).to_numpy(dtype=np.int64)
        return y, [negative, positive]
    if len(labels) < 3:
        raise TargetError(
            f"target {name!r} has only {len(labels)} classes; use task 'binary'", field="target"
        )
    index = {v: i for i, v in enumerate(labels)}
    return values.map(index).to_numpy(dtype=np.int64), labels


def load_training_data(
    version: DatasetVersion, artifacts: ArtifactStore, spec: TrainSpec
) -> TrainingData:
    """Read the feature and target columns of ``version`` and check the target."""
    numeric, categorical, excluded = select_features(version, spec)
    path = artifacts.local_path(version.artifact_key)
    table = pq.read_table(path, columns=[*numeric, *categorical, spec.target])
    frame = table.to_pandas()
    target = frame.pop(spec.target)
    missing = target.isna()
    if missing.all():
        raise TargetError(
            f"target {spec.target!r} has no values in dataset {version.dataset!r} "
            f"v{version.version}",
            field="target",
        )
    if missing.any():
        frame = frame.loc[~missing.to_numpy()].reset_index(drop=True)
        target = target.loc[~missing].reset_index(drop=True)
    y, classes = _encode_target(target, spec)
    return TrainingData(
        frame=frame,
        y=y,
        numeric=numeric,
        categorical=categorical,
        classes=classes,
        excluded=excluded,
        dropped_missing_target=int(missing.sum()),
    )
