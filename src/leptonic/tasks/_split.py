"""Row splits for tabular training: a stratified test hold-out, then a holdout
validation part or k folds on the rest, checked to suit the data first.

Data too small for the split asked for (too few rows, or too few of a class to
put one in every part and fold) is refused with
:class:`~leptonic.errors.TargetError` or :class:`~leptonic.errors.InvalidInput`
naming what to change, before any training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from leptonic.errors import InvalidInput, TargetError
from leptonic.tasks.spec import TrainSpec

__all__ = ["Split", "make_split"]


@dataclass
class Split:
    """Row indices: ``folds`` are (train, valid) pairs over ``pool``; ``test`` is held out."""

    kind: str
    pool: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    test: np.ndarray


def make_split(y: np.ndarray, spec: TrainSpec, classes: list[Any] | None = None) -> Split:
    """Stratified test hold-out, then holdout valid or k folds on the rest.

    Data too small for the split (too few rows, or too few of a class to put one in
    every part and fold) is refused with :class:`~leptonic.errors.TargetError` or
    :class:`~leptonic.errors.InvalidInput`, naming what to change; ``classes`` (the
    labels of the codes in ``y``) name the class.
    """
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    n = len(y)
    stratify = y if spec.task != "regression" else None
    kind = spec.split
    if kind == "auto":
        kind = "cv" if n < spec.cv_below_rows else "holdout"
    _check_rows(n, kind, spec)
    if stratify is not None:
        _check_classes(y, spec, classes)
    train_f, valid_f, test_f = spec.fractions
    idx = np.arange(n)
    pool, test = train_test_split(idx, test_size=test_f, stratify=stratify, random_state=spec.seed)
    pool_y = y[pool] if stratify is not None else None
    if stratify is not None:
        _check_pool_classes(y, pool, kind, spec, classes)
    if kind == "holdout":
        tr, va = train_test_split(
            pool,
            test_size=valid_f / (train_f + valid_f),
            stratify=pool_y,
            random_state=spec.seed + 1,
        )
        folds = [(np.sort(tr), np.sort(va))]
    else:
        splitter = (
            StratifiedKFold(spec.cv_folds, shuffle=True, random_state=spec.seed + 1)
            if stratify is not None
            else KFold(spec.cv_folds, shuffle=True, random_state=spec.seed + 1)
        )
        folds = [
            (np.sort(pool[a]), np.sort(pool[b]))
            for a, b in splitter.split(pool, pool_y if pool_y is not None else None)
        ]
    if stratify is not None:
        _check_folds(y, folds, kind, spec, classes)
    return Split(kind=kind, pool=np.sort(pool), folds=folds, test=np.sort(test))


def _label(code: int, classes: list[Any] | None) -> str:
    return repr(classes[code]) if classes is not None and code < len(classes) else repr(code)


def _part_sizes(n: int, share: float) -> tuple[int, int]:
    """The rows scikit-learn's ``train_test_split`` keeps and holds out: ``(rest, held)``."""
    held = math.ceil(share * n)
    return n - held, held


def _check_rows(n: int, kind: str, spec: TrainSpec) -> None:
    """Enough rows for the test part and the training and validation parts (or folds)."""
    train_f, valid_f, test_f = spec.fractions
    n_pool, n_test = _part_sizes(n, test_f)
    where = (
        f"the test part (fractions[2] = {test_f:g}) holds out {n_test} of the {n} rows, "
        f"leaving {n_pool}"
    )
    if kind == "cv" and n_pool < spec.cv_folds:
        fix = f"lower cv_folds to {n_pool} or less, or add rows" if n_pool >= 2 else "add rows"
        raise InvalidInput(
            f"too few rows for a {spec.cv_folds}-fold cross-validation: {where}, and each "
            f"fold needs at least one; {fix}",
            field="cv_folds",
        )
    n_train, n_valid = _part_sizes(n_pool, valid_f / (train_f + valid_f))
    if kind == "holdout" and min(n_train, n_valid) < 1:
        raise InvalidInput(
            f"too few rows for a holdout split: {where} for {n_train} training and "
            f"{n_valid} validation row(s), and each part needs at least one; add rows, or "
            "change fractions",
            field="fractions",
        )


def _check_classes(y: np.ndarray, spec: TrainSpec, classes: list[Any] | None) -> None:
    """Every class can be stratified into the test part and the rows left."""
    n = len(y)
    counts = np.bincount(y)
    present = np.flatnonzero(counts)
    rarest = int(present[np.argmin(counts[present])])
    if counts[rarest] < 2:
        raise TargetError(
            f"class {_label(rarest, classes)} of target {spec.target!r} has "
            f"{counts[rarest]} row; a stratified split needs at least 2 of each class (one "
            "held out for the test) — add rows of that class or merge it with another",
            field="target",
        )
    test_f = spec.fractions[2]
    n_pool, n_test = _part_sizes(n, test_f)
    k = len(present)
    if n_test < k or n_pool < k:
        part, rows = ("test part", n_test) if n_test < k else ("rows left to train on", n_pool)
        fix = (
            f"raise the test fraction (fractions[2] = {test_f:g}) to at least "
            f"{math.ceil(100 * k / n) / 100:g}"
            if n_test < k
            else f"lower the test fraction (fractions[2] = {test_f:g})"
        )
        raise TargetError(
            f"target {spec.target!r} has {k} classes in {n} rows, but the {part} of a "
            f"stratified split holds {rows} row(s), fewer than one per class; {fix}, add "
            "rows or merge rare classes",
            field="target",
        )


def _check_pool_classes(
    y: np.ndarray, pool: np.ndarray, kind: str, spec: TrainSpec, classes: list[Any] | None
) -> None:
    """Enough of each class left after the test part for every fold (or part) to hold it."""
    counts = np.bincount(y)
    in_pool = np.bincount(y[pool], minlength=len(counts))
    present = np.flatnonzero(counts)
    worst = int(present[np.argmin(in_pool[present])])
    left = int(in_pool[worst])
    need = spec.cv_folds if kind == "cv" else 2
    label = _label(worst, classes)
    if left < need:
        what = (
            f"a {spec.cv_folds}-fold cross-validation, which needs at least {need} so that "
            "every fold is scored on that class"
            if kind == "cv"
            else f"the training and validation parts, which need at least {need}"
        )
        fix = "add rows of that class or merge rare classes"
        if kind == "cv" and left >= 2:
            fix = f"lower cv_folds to {left} or less, {fix}"
        raise TargetError(
            f"class {label} of target {spec.target!r} has {counts[worst]} row(s); the test "
            f"part holds out {counts[worst] - left}, leaving {left} for {what}; {fix}",
            field="target",
        )
    if kind == "holdout":
        train_f, valid_f, _ = spec.fractions
        n_train, n_valid = _part_sizes(len(pool), valid_f / (train_f + valid_f))
        k = len(present)
        if min(n_train, n_valid) < k:
            part, rows = ("validation", n_valid) if n_valid < k else ("training", n_train)
            raise TargetError(
                f"target {spec.target!r} has {k} classes, but the {part} part of the holdout "
                f"split holds {rows} row(s), fewer than one per class; add rows, merge rare "
                "classes, change fractions, or use split='cv'",
                field="target",
            )


def _check_folds(
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    kind: str,
    spec: TrainSpec,
    classes: list[Any] | None,
) -> None:
    """Every fold trains on every class; binary folds are also scored on both (AUC)."""
    present = np.flatnonzero(np.bincount(y))
    for tr, va in folds:
        parts = (
            [("training", tr), ("validation", va)] if spec.task == "binary" else [("training", tr)]
        )
        for part, rows in parts:
            missing = np.setdiff1d(present, y[rows])
            if missing.size:
                code = int(missing[0])
                raise TargetError(
                    f"class {_label(code, classes)} of target {spec.target!r} has "
                    f"{int(np.sum(y == code))} row(s), and none fell in the {part} rows of "
                    f"the {kind} split; add rows of that class or merge rare classes",
                    field="target",
                )
