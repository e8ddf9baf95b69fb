"""Behaviour aggregates over repeated measurements.

Business tables often hold a customer's history as a family of columns that
share a stem and differ by a period number: ``BILL_AMT1 … BILL_AMT6``,
``PAY_0, PAY_2 … PAY_6``, ``txn_count_m1 … txn_count_m12``. A
:class:`SequenceAggregates` finds such families among the numeric columns
(three members or more) and adds per-row summaries of each: mean, standard
deviation, minimum, maximum, trend (least-squares slope over the period
order) and the number of positive periods. The families are learned at
``fit`` and the same columns are produced at serving time from one record.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from leptonic.errors import InvalidInput, NotFitted
from leptonic.features._common import numeric_column, to_float

__all__ = ["AGGREGATES", "SequenceAggregates"]

AGGREGATES = ("mean", "std", "min", "max", "slope", "npos")

_NAN = float("nan")


def _np_sum(xs: Sequence[float]) -> float:
    """Sum in the order numpy's pairwise summation uses for up to 128 values."""
    n = len(xs)
    if n < 8:
        total = 0.0
        for x in xs:
            total += x
        return total
    if n > 128:
        return float(np.sum(np.asarray(xs, dtype=float)))
    r = list(xs[:8])
    i = 8
    while i < n - n % 8:
        for j in range(8):
            r[j] += xs[i + j]
        i += 8
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        total += xs[i]
        i += 1
    return total


def _summarise_one(values: list[float], weights: list[float]) -> tuple[float, ...]:
    """:meth:`SequenceAggregates._summarise` of one row, in plain Python.

    One pass for the count, sum, extremes and positives, one for the
    variance; sums run in numpy's order (sequential below 8 values) and the
    squares as ``d * d`` like ``np.square``, so both paths agree exactly.
    """
    n = len(values)
    if n >= 8:
        total = _np_sum([v if v == v else 0.0 for v in values])
    count = npos = 0
    lo, hi = math.inf, -math.inf
    running = 0.0
    for v in values:
        if v == v:
            running += v
            count += 1
            if v > 0:
                npos += 1
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        else:
            running += 0.0
    if count == 0:
        return (_NAN, _NAN, _NAN, _NAN, _NAN, float(npos))
    mean = (running if n < 8 else total) / count
    squares = [(v - mean) * (v - mean) if v == v else 0.0 for v in values]
    if n < 8:
        sq = 0.0
        for d in squares:
            sq += d
    else:
        sq = _np_sum(squares)
    if count == n:
        products = [v * w for v, w in zip(values, weights, strict=True)]
        if n < 8:
            slope = 0.0
            for x in products:
                slope += x
        else:
            slope = _np_sum(products)
    else:
        slope = _NAN
    return (mean, math.sqrt(sq / count), lo, hi, slope, float(npos))


_MEMBER = re.compile(r"^(.*?[A-Za-z_])(\d{1,3})$")


class SequenceAggregates:
    """Add summary columns for each family of period-numbered numeric columns.

    Parameters
    ----------
    min_members
        Smallest family worth summarising.

    Attributes
    ----------
    families_ : dict[str, list[str]]
        Stem → member columns in period order.
    feature_names_out_ : list[str]
        The added columns, ``<stem>__<aggregate>``, the stem without its
        trailing underscores (``PAY_1`` … → ``PAY__mean``), unless two stems
        differ only by them (``pay1`` … and ``pay_1`` …): those keep their
        whole stem (``pay__mean`` and ``pay___mean``).
    """

    def __init__(self, min_members: int = 3) -> None:
        self.min_members = min_members

    def fit(self, columns: Sequence[str]) -> SequenceAggregates:
        """Find the families among ``columns`` (the numeric feature names).

        Raises
        ------
        InvalidInput
            If an aggregate would take the name of one of ``columns``
            (``m1, m2, m3`` and ``m__mean``).
        """
        groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for name in columns:
            m = _MEMBER.fullmatch(name)
            if m:
                groups[m.group(1)].append((int(m.group(2)), name))
        self._set_families(
            {
                stem: [name for _, name in sorted(members)]
                for stem, members in sorted(groups.items())
                if len(members) >= self.min_members
            }
        )
        self._check_clash(columns, "input column(s)")
        return self

    def _check_clash(self, columns: Iterable[Any], what: str) -> None:
        """Refuse ``columns`` that hold a name the aggregates are about to take."""
        present = set(columns)
        clash = [name for name in self.feature_names_out_ if name in present]
        if not clash:
            return
        family = next(
            cols for stem, cols in self.families_.items() if clash[0] in self._names[stem]
        )
        raise InvalidInput(
            f"the behaviour aggregate column(s) {clash}, summaries of {family}, would "
            f"take the name(s) of existing {what}; rename those column(s) (e.g. "
            f"{clash[0].replace('__', '_', 1)!r}) or turn the behaviour aggregates off.",
            field=clash[0],
        )

    def _set_families(self, families: dict[str, list[str]]) -> None:
        """Set ``families_`` and what follows from it: output names and slope weights."""
        stripped = [stem.rstrip("_") for stem in families]
        self.families_ = families
        self._names = {
            stem: [f"{stem if stripped.count(short) > 1 else short}__{agg}" for agg in AGGREGATES]
            for stem, short in zip(families, stripped, strict=True)
        }
        self.feature_names_out_ = [name for names in self._names.values() for name in names]
        self._weights = {stem: self._slope_weights(len(cols)) for stem, cols in families.items()}

    @staticmethod
    def _slope_weights(n: int) -> np.ndarray:
        k = np.arange(n, dtype=float)
        k -= k.mean()
        return k / float((k * k).sum())

    def _check(self) -> None:
        if not hasattr(self, "families_"):
            raise NotFitted("SequenceAggregates is not fitted: call fit(columns) first")

    @staticmethod
    def _summarise(a: np.ndarray, w: np.ndarray) -> list[np.ndarray]:
        valid = ~np.isnan(a)
        count = valid.sum(axis=1)
        filled = np.where(valid, a, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = filled.sum(axis=1) / count
            var = np.where(valid, (a - mean[:, None]) ** 2, 0.0).sum(axis=1) / count
            lo = np.where(valid, a, np.inf).min(axis=1)
            hi = np.where(valid, a, -np.inf).max(axis=1)
        empty = count == 0
        lo[empty] = np.nan
        hi[empty] = np.nan
        # elementwise, then numpy's row sum: the record path sums in the same order
        slope = np.where(valid.all(axis=1), (filled * w).sum(axis=1), np.nan)
        npos = (filled > 0).sum(axis=1).astype(float)
        return [mean, np.sqrt(var), lo, hi, slope, npos]

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the aggregate columns appended (a new frame).

        Raises
        ------
        InvalidInput
            If ``frame`` already has a column named like one of the aggregates.
        """
        self._check()
        if not self.families_:
            return frame
        self._check_clash(frame.columns, "column(s) of the data")
        added: dict[str, np.ndarray] = {}
        for stem, cols in self.families_.items():
            a = np.column_stack([numeric_column(frame[c]) for c in cols])
            for name, values in zip(
                self._names[stem], self._summarise(a, self._weights[stem]), strict=True
            ):
                added[name] = values
        return pd.concat([frame, pd.DataFrame(added, index=frame.index)], axis=1)

    def transform_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` with the aggregate fields added (a new dict); the serving path.

        Plain Python over a handful of numbers (numpy's per-call overhead
        would dominate), summing in numpy's order so both paths agree.
        """
        self._check()
        out = dict(record)
        if not self.families_:
            return out
        plan = self.__dict__.get("_record_plan")
        if plan is None:
            plan = [
                (cols, [float(x) for x in self._weights[stem]], self._names[stem])
                for stem, cols in self.families_.items()
            ]
            self._record_plan = plan
        get = record.get
        for cols, weights, names in plan:
            values = [to_float(get(c)) for c in cols]
            for name, value in zip(names, _summarise_one(values, weights), strict=True):
                out[name] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        self._check()
        return {"min_members": self.min_members, "families": self.families_}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SequenceAggregates:
        obj = cls(min_members=int(data["min_members"]))
        families = {str(k): [str(c) for c in v] for k, v in data["families"].items()}
        obj.fit([c for cols in families.values() for c in cols])
        if obj.families_ != families:
            obj._set_families(families)
        return obj
