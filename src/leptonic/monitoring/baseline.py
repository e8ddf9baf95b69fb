"""The training-time reference distribution of a model's inputs and score.

A :class:`BaselineProfile` holds, for each model input, the bins it is cut
into and the share of training rows in each bin, and the same for the model
score. Drift (:mod:`leptonic.monitoring.drift`) puts live values into the same
bins and compares the shares.

Bins
----
numeric
    Right-closed intervals between quantile cut points of the training values
    (``x <= e1``, ``e1 < x <= e2``, ..., ``x > em``; duplicate cut points
    removed, so a column with few distinct values gets fewer bins), then one
    bin for missing values (``None``, NaN).
categorical
    The most frequent training categories, then ``other`` (rarer and unseen
    categories), then missing. Values are compared as text, with integral
    floats written as integers (``1.0`` and ``1`` and ``"1"`` are one category).
score
    Like a numeric input.

Every stored proportion is at least ``epsilon`` (the shares are floored and
renormalised), so the population stability index stays finite when a bin is
empty at training time. :meth:`BaselineProfile.to_json` gives a plain JSON
dict tagged ``"format": "leptonic-baseline/1"``; :meth:`BaselineProfile.from_json`
reads it back (no pickle anywhere).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from leptonic.errors import InvalidInput

__all__ = [
    "BASELINE_ARTIFACT",
    "BASELINE_FORMAT",
    "BASELINE_ROWS",
    "DEFAULT_EPSILON",
    "EDGE_TOLERANCE",
    "BaselineProfile",
    "FeatureBins",
]

#: The ``format`` tag of :meth:`BaselineProfile.to_json`.
BASELINE_FORMAT = "leptonic-baseline/1"

#: The run artifact holding a model's baseline profile (JSON), written by training:
#: the model's inputs and answers on the rows or texts its run held out for the test.
BASELINE_ARTIFACT = "monitoring_baseline.json"

#: Rows profiled for a tabular model's baseline (a seeded sample above it).
BASELINE_ROWS = 50_000

#: The floor of every proportion.
DEFAULT_EPSILON = 1e-4

#: How far (relative) above a numeric bin's edge a value still counts as equal to it.
EDGE_TOLERANCE = 1e-9

Kind = Literal["numeric", "categorical"]
_KINDS = ("numeric", "categorical")


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _category_key(value: Any) -> str | None:
    """The text a categorical value is compared by; ``None`` when it is missing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    return str(value)


#: Types whose equal values have one key (``1 == 1.0``, both ``"1"``): factorised as they are.
#: Others go through their key first: ``True == 1`` but they are different categories.
_PLAIN_TYPES = frozenset({str, int, float, type(None), np.str_, np.int64, np.float64})


def _factorize(values: Sequence[Any] | NDArray[Any]) -> tuple[NDArray[np.int64], list[str | None]]:
    """Codes of ``values`` into their distinct keys (``-1`` for missing) and the keys.

    The result does not depend on the order of the values."""
    if isinstance(values, np.ndarray) and values.dtype == object and values.ndim == 1:
        arr = values
    else:
        arr = np.fromiter(values, dtype=object, count=len(values))
    if not set(map(type, arr)) <= _PLAIN_TYPES:
        # booleans (True == 1), unhashable lists...: factorise their keys
        arr = np.fromiter(map(_category_key, arr), dtype=object, count=len(arr))
    codes, uniques = pd.factorize(arr)
    return np.asarray(codes, dtype=np.int64), [_category_key(u) for u in uniques]


def _to_float(values: Sequence[Any] | NDArray[Any]) -> tuple[NDArray[np.float64], int]:
    """``values`` as floats (missing → NaN) and how many present values were not numbers.

    Values that are not numbers (text, lists...) become NaN too, and are counted.
    """
    try:
        x = np.asarray(values, dtype=np.float64)
        if x.ndim == 1:
            return x, 0
    except (TypeError, ValueError):
        pass
    # one object per value: lists of equal length would otherwise make a 2-D array
    series = pd.Series(np.fromiter(values, dtype=object, count=len(values)), dtype=object)
    present = ~series.isna().to_numpy()
    numbers_ = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    invalid = int(np.sum(present & np.isnan(numbers_)))
    return numbers_, invalid


def _floor(counts: NDArray[np.float64], epsilon: float) -> NDArray[np.float64]:
    total = counts.sum()
    shares = counts / total if total > 0 else np.full(counts.size, 1.0 / counts.size)
    shares = np.maximum(shares, epsilon)
    return shares / shares.sum()


@dataclass(frozen=True)
class FeatureBins:
    """The bins of one input (or of the score) and the training share in each.

    Attributes
    ----------
    name
        The input's name (``"score"`` for the score).
    kind
        ``"numeric"`` or ``"categorical"``.
    edges
        Numeric: the cut points, increasing; bins are ``x <= edges[0]``,
        ``edges[i-1] < x <= edges[i]``, ``x > edges[-1]``, then missing.
    categories
        Categorical: the kept categories, most frequent first; then the bins
        ``other`` and missing.
    proportions
        Training share of each bin, floored at the profile's epsilon, summing to 1.
    n
        Training values the shares were computed from.
    """

    name: str
    kind: Kind
    proportions: tuple[float, ...]
    n: int
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.categories)})

    @property
    def n_bins(self) -> int:
        """Number of bins, the missing bin (and ``other``) included."""
        if self.kind == "numeric":
            return len(self.edges) + 2
        return len(self.categories) + 2

    @property
    def labels(self) -> list[str]:
        """A display label per bin, for tables and plots."""
        if self.kind == "categorical":
            return [*self.categories, "other", "missing"]
        e = self.edges
        if not e:
            return ["all values", "missing"]
        middle = [f"({_fmt(a)}, {_fmt(b)}]" for a, b in itertools.pairwise(e)]
        return [f"≤ {_fmt(e[0])}", *middle, f"> {_fmt(e[-1])}", "missing"]

    def assign(self, values: Sequence[Any] | NDArray[Any]) -> NDArray[np.int64]:
        """The bin of each value (vectorised)."""
        if self.kind == "numeric":
            x, _ = _to_float(values)
            return self.assign_numbers(x)
        codes, keys = _factorize(values)
        other, missing = len(self.categories), len(self.categories) + 1
        lookup = np.array(
            [missing if k is None else self._index.get(k, other) for k in keys] + [missing],
            dtype=np.int64,
        )
        return lookup[codes]  # code -1 picks the trailing ``missing``

    def assign_numbers(self, x: NDArray[np.float64]) -> NDArray[np.int64]:
        """The bin of each float (NaN → missing); numeric bins only.

        A value within :data:`EDGE_TOLERANCE` (relative) above an edge counts as
        equal to it: edges are observed values, and the same value computed on
        another path (a model's one-record and batch predictions) may differ in
        its last bit, which must not move it to the next bin.
        """
        edges = np.asarray(self.edges, dtype=np.float64)
        bins = np.searchsorted(edges + EDGE_TOLERANCE * np.abs(edges), x, side="left")
        bins[np.isnan(x)] = len(self.edges) + 1
        return bins.astype(np.int64)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "n": self.n}
        if self.kind == "numeric":
            out["edges"] = list(self.edges)
        else:
            out["categories"] = list(self.categories)
        out["proportions"] = list(self.proportions)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> FeatureBins:
        if not isinstance(data, Mapping):
            raise _bad(where, "must be an object")
        kind = data.get("kind")
        if kind not in _KINDS:
            raise _bad(where, f"has kind {kind!r}; expected 'numeric' or 'categorical'")
        name, n = data.get("name"), data.get("n")
        if not isinstance(name, str) or not name:
            raise _bad(where, "needs a non-empty 'name'")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise _bad(where, f"needs a count 'n' >= 0, got {n!r}")
        edges: tuple[float, ...] = ()
        categories: tuple[str, ...] = ()
        if kind == "numeric":
            raw = data.get("edges")
            if not isinstance(raw, list) or not all(_is_number(v) for v in raw):
                raise _bad(where, "needs 'edges', a list of numbers")
            edges = tuple(float(v) for v in raw)
            if any(not math.isfinite(v) for v in edges) or any(
                a >= b for a, b in itertools.pairwise(edges)
            ):
                raise _bad(where, "needs finite, strictly increasing 'edges'")
        else:
            raw = data.get("categories")
            if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
                raise _bad(where, "needs 'categories', a list of strings")
            if len(set(raw)) != len(raw):
                raise _bad(where, "has repeated categories")
            categories = tuple(raw)
        props = data.get("proportions")
        expected = (len(edges) if kind == "numeric" else len(categories)) + 2
        if (
            not isinstance(props, list)
            or len(props) != expected
            or not all(_is_number(v) and 0 <= v <= 1 for v in props)
        ):
            raise _bad(where, f"needs 'proportions', {expected} numbers in [0, 1]")
        return cls(
            name=name,
            kind=kind,
            proportions=tuple(float(v) for v in props),
            n=n,
            edges=edges,
            categories=categories,
        )


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _bad(where: str, what: str) -> InvalidInput:
    return InvalidInput(
        f"baseline profile {where} {what}; pass the output of BaselineProfile.to_json()",
        field="profile",
    )


def _numeric_bins(
    name: str, x: NDArray[np.float64], bins: int, epsilon: float, n: int
) -> FeatureBins:
    finite = x[~np.isnan(x)]
    if finite.size:
        probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
        cuts = np.unique(np.quantile(finite, probs, method="inverted_cdf"))
        # A cut at the maximum would leave the top bin empty; infinities are not cuts.
        edges = cuts[np.isfinite(cuts) & (cuts < finite.max())]
    else:
        edges = np.zeros(0)
    fb = FeatureBins(name, "numeric", (), n, edges=tuple(float(v) for v in edges))
    counts = np.bincount(fb.assign_numbers(x), minlength=fb.n_bins).astype(np.float64)
    return FeatureBins(name, "numeric", tuple(_floor(counts, epsilon).tolist()), n, edges=fb.edges)


def _categorical_bins(
    name: str, values: Sequence[Any] | NDArray[Any], max_categories: int, epsilon: float
) -> FeatureBins:
    codes, keys = _factorize(values)
    per_code = np.bincount(codes[codes >= 0], minlength=len(keys))
    totals: dict[str, int] = {}
    for key, count in zip(keys, per_code.tolist(), strict=True):
        if key is not None:
            totals[key] = totals.get(key, 0) + count
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = tuple(k for k, c in ranked[:max_categories] if c > 0)
    fb = FeatureBins(name, "categorical", (), len(values), categories=kept)
    counts = np.bincount(fb.assign(values), minlength=fb.n_bins).astype(np.float64)
    return FeatureBins(
        name, "categorical", tuple(_floor(counts, epsilon).tolist()), len(values), categories=kept
    )


def _check_inputs(inputs: Sequence[Mapping[str, Any]]) -> list[tuple[str, Kind]]:
    if isinstance(inputs, str | bytes) or not isinstance(inputs, Sequence) or not inputs:
        raise InvalidInput(
            'inputs must be a non-empty list of {"name", "type"} items (the model signature)',
            field="inputs",
        )
    out: list[tuple[str, Kind]] = []
    for i, item in enumerate(inputs):
        name = item.get("name") if isinstance(item, Mapping) else None
        kind = item.get("type") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"inputs[{i}] needs a non-empty 'name'", field="inputs")
        if kind not in _KINDS:
            raise InvalidInput(
                f"input {name!r} has type {kind!r}; use 'numeric' or 'categorical'",
                field="inputs",
            )
        if name in (n for n, _ in out):
            raise InvalidInput(f"input {name!r} is listed twice", field="inputs")
        out.append((name, kind))
    return out


def _check_count(value: Any, name: str, low: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise InvalidInput(f"{name} must be an integer >= {low}, got {value!r}", field=name)
    return int(value)


@dataclass(frozen=True)
class BaselineProfile:
    """Training-time bins and shares of every model input and of the score.

    Build one with :meth:`fit`; store it with :meth:`to_json`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> frame = pd.DataFrame({"age": np.arange(100.0), "region": ["n", "s"] * 50})
    >>> profile = BaselineProfile.fit(
    ...     frame, np.linspace(0, 1, 100),
    ...     [{"name": "age", "type": "numeric"}, {"name": "region", "type": "categorical"}],
    ... )
    >>> profile.features["region"].labels
    ['n', 's', 'other', 'missing']
    >>> BaselineProfile.from_json(profile.to_json()) == profile
    True
    """

    features: Mapping[str, FeatureBins]
    score: FeatureBins
    bins: int = 10
    epsilon: float = DEFAULT_EPSILON

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        scores: ArrayLike,
        inputs: Sequence[Mapping[str, Any]],
        bins: int = 10,
        *,
        max_categories: int = 20,
        epsilon: float = DEFAULT_EPSILON,
    ) -> BaselineProfile:
        """Profile the training rows and the scores the model gave them.

        Parameters
        ----------
        frame
            Training rows with one column per input.
        scores
            Model scores (P(bad)) of the training or test rows, finite.
        inputs
            The model signature: ``[{"name": ..., "type": "numeric"|"categorical"}, ...]``.
        bins
            Quantile bins per numeric input and for the score (fewer when
            values repeat).
        max_categories
            Categories kept per categorical input; the rest share ``other``.
        epsilon
            Floor of every proportion, in ``(0, 0.01]``.
        """
        spec = _check_inputs(inputs)
        bins = _check_count(bins, "bins", 2)
        max_categories = _check_count(max_categories, "max_categories", 1)
        if not _is_number(epsilon) or not 0 < epsilon <= 0.01:
            raise InvalidInput(f"epsilon must lie in (0, 0.01], got {epsilon!r}", field="epsilon")
        if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
            raise InvalidInput("frame must be a non-empty pandas DataFrame", field="frame")
        missing = [name for name, _ in spec if name not in frame.columns]
        if missing:
            raise InvalidInput(
                f"input column(s) {', '.join(map(repr, missing))} are not in the training frame; "
                "pass the frame the model was trained on",
                field=missing[0],
            )
        s, invalid = _to_float(np.ravel(np.asarray(scores, dtype=object)))
        if s.size == 0 or invalid or not np.isfinite(s).all():
            raise InvalidInput(
                f"scores must be a non-empty list of finite numbers, got {s.size} values "
                f"of which {invalid + int(np.sum(~np.isfinite(s)))} are not",
                field="scores",
            )
        features: dict[str, FeatureBins] = {}
        for name, kind in spec:
            column = frame[name]
            if kind == "numeric":
                x, _ = _to_float(column.to_numpy())
                features[name] = _numeric_bins(name, x, bins, epsilon, len(frame))
            else:
                features[name] = _categorical_bins(
                    name, column.to_numpy(dtype=object), max_categories, epsilon
                )
        score = _numeric_bins("score", s, bins, epsilon, int(s.size))
        return cls(features=features, score=score, bins=bins, epsilon=float(epsilon))

    @property
    def inputs(self) -> list[dict[str, str]]:
        """The profiled inputs, as a signature."""
        return [{"name": f.name, "type": f.kind} for f in self.features.values()]

    def to_json(self) -> dict[str, Any]:
        """A plain JSON-ready dict (stable key order), tagged with :data:`BASELINE_FORMAT`."""
        return {
            "format": BASELINE_FORMAT,
            "bins": self.bins,
            "epsilon": self.epsilon,
            "score": self.score.to_json(),
            "features": [f.to_json() for f in self.features.values()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaselineProfile:
        """Read back the output of :meth:`to_json`; :class:`InvalidInput` if it is not one."""
        if not isinstance(data, Mapping):
            raise _bad("data", "must be a JSON object")
        fmt = data.get("format")
        if fmt != BASELINE_FORMAT:
            raise InvalidInput(
                f"baseline profile has format {fmt!r}, this Leptonic reads {BASELINE_FORMAT!r}; "
                "refit the profile with BaselineProfile.fit",
                field="profile",
            )
        bins, epsilon = data.get("bins"), data.get("epsilon")
        if not isinstance(bins, int) or isinstance(bins, bool) or bins < 2:
            raise _bad("data", f"has bins {bins!r}; expected an integer >= 2")
        if not isinstance(epsilon, int | float) or isinstance(epsilon, bool):
            raise _bad("data", f"has epsilon {epsilon!r}; expected a number in (0, 0.01]")
        if not 0 < epsilon <= 0.01:
            raise _bad("data", f"has epsilon {epsilon!r}; expected a number in (0, 0.01]")
        raw = data.get("features")
        if not isinstance(raw, list):
            raise _bad("data", "needs 'features', a list")
        features: dict[str, FeatureBins] = {}
        for i, item in enumerate(raw):
            fb = FeatureBins.from_json(item, f"features[{i}]")
            if fb.name in features:
                raise _bad(f"features[{i}]", f"repeats the input {fb.name!r}")
            features[fb.name] = fb
        score = FeatureBins.from_json(data.get("score"), "score")
        if score.kind != "numeric":
            raise _bad("score", "must be numeric")
        return cls(features=features, score=score, bins=bins, epsilon=float(epsilon))
