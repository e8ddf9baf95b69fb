"""What a training run is asked to do: the :class:`TrainSpec`, and specs of any task as JSON."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from leptonic.core._numbers import as_float
from leptonic.errors import InvalidInput

if TYPE_CHECKING:
    from leptonic.tasks.recsys.spec import RecommenderSpec
    from leptonic.tasks.textcls.spec import TextClassificationSpec

__all__ = [
    "ALL_TASKS",
    "CANDIDATES",
    "MAX_SEED",
    "TASKS",
    "TrainSpec",
    "spec_from_dict",
    "spec_from_stored",
    "spec_to_dict",
]

#: The largest seed a spec takes: what scikit-learn, numpy and LightGBM accept (below
#: 2**32), less room for the seeds derived from it (a soup's ``seed + i``, a split's
#: ``seed + 1``...).
MAX_SEED = 2**32 - 2**16 - 1

TASKS = ("binary", "multiclass", "regression")
#: Every task a training run can do (the tabular ones, then the others).
ALL_TASKS = (*TASKS, "recommendation", "text-classification")
CANDIDATES = ("logistic", "lightgbm", "mlp")
SPLITS = ("auto", "holdout", "cv")


@dataclass(frozen=True)
class TrainSpec:
    """A tabular training job.

    Parameters
    ----------
    target
        Column to predict.
    task
        ``binary``, ``multiclass`` or ``regression``.
    candidates
        Model families to search: ``logistic`` (L2-regularised logistic
        regression; ridge regression for ``regression``), ``lightgbm``, ``mlp``.
    split
        ``holdout`` (stratified train/valid/test by ``fractions``), ``cv``
        (k-fold cross-validation on train+valid, then the test part) or
        ``auto`` (``cv`` below ``cv_below_rows`` rows, else ``holdout``).
    fractions
        Train / valid / test fractions, the credit-scoring 50/30/20 by default.
    cv_folds
        Folds for ``cv``.
    trials
        Hyperparameter trials in all, shared among the candidates.
    timeout_s
        Wall-clock budget for the search, in seconds (None: trials only).
        Each candidate gets a share; when its share runs out its search stops
        before its trials are done, and the run log says so.
    seed
        Seed for splits, search and models. The same seed gives the same run
        only when ``timeout_s`` does not cut the search short: how many trials
        fit in the time depends on the machine's speed and load, so with the
        default 40 s a slower or busier machine may run fewer trials and
        choose other parameters (see the log's "time budget reached" lines).
        Set ``timeout_s=None`` for a run fixed by the seed alone.
    features
        Columns to use; by default every numeric and categorical column.
    exclude
        Columns never to use.
    allow_pii
        PII columns allowed as features (they are excluded otherwise), besides
        those the dataset's contract allows (``allow_in_training``).
    behaviour_aggregates
        Add summaries of period-numbered column families (see
        :class:`~leptonic.features.behaviour.SequenceAggregates`).
    projection, n_components
        Optional ``pca`` or ``lda`` projection for the linear and MLP models.
        LDA keeps at most ``n_classes - 1`` components (1 for ``binary``);
        training refuses more before its search.
    positive_label
        The label of the positive (event) class for ``binary``; needed unless
        labels are 0/1 or booleans.
    threshold
        How the binary decision threshold is chosen on validation data:
        ``ks`` (the KS-optimal cut) or ``f1``.
    refit
        Refit the chosen candidate on train+valid before the test.
    ensemble
        Blend the best model of each family when the blend scores better on
        validation (greedy ensemble selection).
    refit_all
        After the test, refit once more on every row (train+valid+test) for
        the model that is kept; its reported test metrics are those of the
        model fitted without the test rows.
    pdo, base_score, base_odds
        Scorecard scaling: points to double the odds, score at ``base_odds``.
    """

    target: str
    task: str = "binary"
    candidates: tuple[str, ...] = CANDIDATES
    split: str = "auto"
    fractions: tuple[float, float, float] = (0.5, 0.3, 0.2)
    cv_folds: int = 5
    cv_below_rows: int = 2000
    trials: int = 24
    timeout_s: float | None = 40.0
    seed: int = 0
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    allow_pii: tuple[str, ...] = ()
    behaviour_aggregates: bool = True
    projection: str | None = None
    n_components: int | None = None
    positive_label: str | None = None
    threshold: str = "ks"
    refit: bool = True
    refit_all: bool = False
    ensemble: bool = True
    pdo: float = 20.0
    base_score: float = 600.0
    base_odds: float = 50.0

    def __post_init__(self) -> None:
        def bad(field: str, msg: str) -> InvalidInput:
            return InvalidInput(f"invalid training spec: {field} {msg}", field=field)

        if not isinstance(self.target, str) or not self.target:
            raise bad("target", "must name the column to predict (e.g. --target default)")
        for name in ("candidates", "features", "exclude", "allow_pii"):
            value = getattr(self, name)
            if value is None and name == "features":
                continue
            if isinstance(value, str):  # one name, not a sequence of characters
                value = (value,)
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise bad(name, f"is {value!r}; give a list of column names, e.g. ['a', 'b']")
            object.__setattr__(self, name, tuple(value))
        for name in ("cv_folds", "cv_below_rows", "trials", "seed", "n_components"):
            value = getattr(self, name)
            if value is None and name == "n_components":
                continue
            if not _is_int(value):
                raise bad(name, f"is {value!r}; it must be a whole number")
            object.__setattr__(self, name, int(value))
        if not 0 <= self.seed <= MAX_SEED:
            raise bad("seed", f"is {self.seed}; use a whole number from 0 to {MAX_SEED}")
        if self.n_components is not None and self.n_components < 1:
            raise bad("n_components", "must be at least 1 (or unset)")
        for name in ("behaviour_aggregates", "refit", "refit_all", "ensemble"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, f"is {getattr(self, name)!r}; it must be true or false")
        for name in ("timeout_s", "pdo", "base_score", "base_odds"):
            value = getattr(self, name)
            if value is None and name == "timeout_s":
                continue
            if not _is_number(value) or not np.isfinite(as_float(value)):
                raise bad(name, f"is {value!r}; it must be a finite number")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.fractions, list | tuple) or not all(
            _is_number(f) and np.isfinite(as_float(f)) for f in self.fractions
        ):
            raise bad("fractions", "must be three positive train/valid/test fractions")
        object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
        if self.task not in TASKS:
            raise bad("task", f"is {self.task!r}; use one of {', '.join(TASKS)}")
        unknown = [c for c in self.candidates if c not in CANDIDATES]
        if unknown or not self.candidates:
            raise bad(
                "candidates",
                f"{list(self.candidates)!r} must be a non-empty subset of {', '.join(CANDIDATES)}",
            )
        if self.split not in SPLITS:
            raise bad("split", f"is {self.split!r}; use one of {', '.join(SPLITS)}")
        if len(self.fractions) != 3 or any(f <= 0 for f in self.fractions):
            raise bad("fractions", "must be three positive train/valid/test fractions")
        if abs(sum(self.fractions) - 1.0) > 1e-6:
            raise bad("fractions", f"{self.fractions} must add up to 1")
        if self.cv_folds < 2:
            raise bad("cv_folds", "must be at least 2")
        if self.trials < len(self.candidates):
            raise bad("trials", f"must be at least one per candidate ({len(self.candidates)})")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise bad("timeout_s", "must be positive (or None for no time limit)")
        if self.projection not in (None, "pca", "lda"):
            raise bad("projection", f"is {self.projection!r}; use pca, lda or leave it unset")
        if self.projection == "lda" and self.task == "regression":
            raise bad("projection", "lda needs class labels; use pca for regression")
        if self.threshold not in ("ks", "f1"):
            raise bad("threshold", f"is {self.threshold!r}; use ks or f1")
        label = self.positive_label
        if label is not None and (
            not isinstance(label, str | int | float)
            or (isinstance(label, float) and not np.isfinite(label))
        ):
            raise bad(
                "positive_label",
                f"is {label!r}; give one value of the target column, e.g. 'bad' or 1",
            )
        if self.pdo <= 0 or self.base_odds <= 0:
            raise bad("pdo/base_odds", "must be positive")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainSpec:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInput(
                f"unknown training spec field(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(names))}",
                field=unknown[0],
            )
        kwargs: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names
        }
        return cls(**kwargs)


def spec_from_dict(data: Mapping[str, Any]) -> TrainSpec | RecommenderSpec | TextClassificationSpec:
    """The spec of a training job from its JSON form, picked by ``task``.

    ``binary`` (the default when ``task`` is absent), ``multiclass`` and
    ``regression`` give a :class:`TrainSpec`, ``recommendation`` a
    :class:`~leptonic.tasks.recsys.RecommenderSpec` and ``text-classification``
    a :class:`~leptonic.tasks.textcls.TextClassificationSpec`.

    Raises
    ------
    InvalidInput
        ``data`` is not a mapping, names an unknown task, or holds an unknown
        or invalid field (the error names the field).

    Examples
    --------
    >>> spec_from_dict({"task": "recommendation", "user": "customer"}).user
    'customer'
    """
    if not isinstance(data, Mapping):
        raise InvalidInput(
            f"a training spec must be a JSON object of fields, not {type(data).__name__}; "
            'e.g. {"task": "binary", "target": "default"}'
        )
    task = data.get("task", "binary")
    try:
        if task in TASKS:
            if "target" not in data:
                raise InvalidInput(
                    f"invalid training spec: a {task} model needs target, the column to "
                    "predict (e.g. --target default)",
                    field="target",
                )
            return TrainSpec.from_dict(data)
        if task == "recommendation":
            from leptonic.tasks.recsys.spec import RecommenderSpec

            return RecommenderSpec.from_dict({k: v for k, v in data.items() if k != "task"})
        if task == "text-classification":
            from leptonic.tasks.textcls.spec import TextClassificationSpec

            return TextClassificationSpec.from_dict(data)
    except TypeError as exc:  # a value of a shape the spec cannot even compare
        raise InvalidInput(f"invalid training spec: {exc}") from None
    raise InvalidInput(
        f"invalid training spec: task is {task!r}; use one of {', '.join(ALL_TASKS)}",
        field="task",
    )


def spec_from_stored(
    data: Mapping[str, Any],
) -> TrainSpec | RecommenderSpec | TextClassificationSpec:
    """:func:`spec_from_dict` for a spec stored earlier (a run's record, a queued
    job): a text spec's fields that its mode does not use, which earlier releases
    accepted and ignored and this one refuses, are left out (the run ignored them)."""
    if isinstance(data, Mapping) and data.get("task") == "text-classification":
        from leptonic.tasks.textcls.spec import used_fields

        data = used_fields(data)
    return spec_from_dict(data)


def spec_to_dict(spec: TrainSpec | RecommenderSpec | TextClassificationSpec) -> dict[str, Any]:
    """The JSON form of a spec, with its ``task``: :func:`spec_from_dict` reads it back."""
    data = spec.to_dict()
    if "task" not in data:  # a RecommenderSpec has one task and no field for it
        data = {"task": "recommendation", **data}
    return data


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
