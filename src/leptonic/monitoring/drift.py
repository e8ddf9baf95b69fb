"""Input and score drift: the population stability index against a baseline.

:func:`drift_report` puts the inputs and scores of logged predictions into the
bins of a :class:`~leptonic.monitoring.baseline.BaselineProfile` and compares
the shares with :func:`psi`; :func:`drift_over_time` does the same per time
window, for plots. Everything is vectorised: the bins of every record are
found once with :func:`numpy.searchsorted` (numeric) or a factorisation
(categorical), and counted per window with one :func:`numpy.bincount`.

Rules of thumb for the PSI: below 0.1 no shift worth a look, 0.1–0.25 a
moderate shift, above 0.25 a major one. With ``k`` bins the PSI of a sample
of ``n`` drawn from the baseline itself is about ``(k - 1) / n``, so small
windows read high; alert rules demand a minimum count.

Inputs of logged predictions that the profile does not know (masked PII such
as hashed e-mails, extra fields) are ignored and listed in
:attr:`DriftReport.ignored`. An input named in ``masked`` (a model input logged
as hashes by the PII policy, whose training values were not hashed; a profile
kept by a training run leaves such inputs out), a numeric
input whose logged values are mostly text, or an input that no record holds
(dropped by the PII policy) is skipped, with the reason in
:attr:`DriftReport.skipped`, rather than read as a drift to 100% ``other`` or
missing.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from leptonic.core.endpoint import Prediction
from leptonic.errors import InvalidInput
from leptonic.monitoring._windows import assign_windows, epoch_seconds
from leptonic.monitoring.baseline import DEFAULT_EPSILON, BaselineProfile, FeatureBins, _to_float

__all__ = ["DriftReport", "DriftSeries", "FeatureDrift", "drift_over_time", "drift_report", "psi"]


def psi(expected: ArrayLike, actual: ArrayLike, *, epsilon: float = DEFAULT_EPSILON) -> float:
    """Population stability index ``sum((a - e) * ln(a / e))`` over bins.

    Parameters
    ----------
    expected, actual
        Shares (or counts) per bin, in the same bin order; each side is
        normalised to sum to 1, then floored at ``epsilon`` so that empty bins
        keep the index finite.

    Examples
    --------
    >>> round(psi([0.5, 0.5], [0.25, 0.75]), 6)
    0.274653
    """
    e = _shares(expected, "expected")
    a = _shares(actual, "actual")
    if e.shape != a.shape:
        raise InvalidInput(
            f"expected has {e.size} bins but actual has {a.size}; pass shares of the same bins",
            field="actual",
        )
    if not (isinstance(epsilon, int | float) and 0 < epsilon < 1):
        raise InvalidInput(f"epsilon must lie in (0, 1), got {epsilon!r}", field="epsilon")
    e, a = np.maximum(e, epsilon), np.maximum(a, epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def _shares(values: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a list of numbers", field=name) from None
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidInput(f"{name} must be a non-empty 1-D list of shares", field=name)
    if not np.isfinite(arr).all() or (arr < 0).any() or arr.sum() <= 0:
        raise InvalidInput(
            f"{name} must hold finite, non-negative shares with a positive sum", field=name
        )
    return arr / arr.sum()


def _psi_rows(
    expected: Sequence[float], counts: NDArray[np.float64], epsilon: float
) -> NDArray[np.float64]:
    """PSI of each row of ``counts`` (windows × bins) against ``expected``; NaN for empty rows."""
    n = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.maximum(counts / n, epsilon)
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    out = np.sum((a - e) * np.log(a / e), axis=1)
    out[n[:, 0] == 0] = np.nan
    return out


def _value(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@dataclass(frozen=True)
class FeatureDrift:
    """The drift of one input (or of the score).

    ``expected`` and ``actual`` are the baseline and observed shares of the
    bins named by ``labels`` (the missing bin last), ready to plot; ``psi`` is
    None when there were no values.
    """

    name: str
    kind: str
    psi: float | None
    n: int
    n_missing: int
    labels: tuple[str, ...]
    expected: tuple[float, ...]
    actual: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "psi": self.psi,
            "n": self.n,
            "n_missing": self.n_missing,
            "labels": list(self.labels),
            "expected": list(self.expected),
            "actual": list(self.actual),
        }


@dataclass(frozen=True)
class DriftReport:
    """PSI per input and for the score, over one batch of logged predictions.

    Attributes
    ----------
    n
        Records compared.
    features
        Input name → its drift, in the profile's order (skipped inputs left out).
    score
        The score's drift (``n`` is the number of scores).
    skipped
        Profiled inputs left out → why (masked or dropped by the PII policy).
    ignored
        Record fields that the profile does not know (masked PII, extras).
    """

    n: int
    features: Mapping[str, FeatureDrift]
    score: FeatureDrift
    skipped: Mapping[str, str]
    ignored: tuple[str, ...] = ()

    @property
    def psi(self) -> dict[str, float | None]:
        """Input name → PSI."""
        return {name: f.psi for name, f in self.features.items()}

    def most_drifted(self, k: int = 5) -> list[FeatureDrift]:
        """The ``k`` inputs with the highest PSI, highest first."""
        ranked = [f for f in self.features.values() if f.psi is not None]
        return sorted(ranked, key=lambda f: -(f.psi or 0.0))[:k]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "n": self.n,
            "score": self.score.to_dict(),
            "features": [f.to_dict() for f in self.features.values()],
            "skipped": dict(self.skipped),
            "ignored": list(self.ignored),
        }


@dataclass(frozen=True)
class DriftSeries:
    """PSI per time window, for plots.

    ``starts[i]`` is the start of window ``i`` (aware UTC), ``n[i]`` its record
    count; ``features[name][i]`` and ``score[i]`` its PSI, None for an empty window.
    """

    window: timedelta
    starts: tuple[datetime, ...]
    n: tuple[int, ...]
    features: Mapping[str, tuple[float | None, ...]]
    score: tuple[float | None, ...]
    skipped: Mapping[str, str]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per window: ``start``, ``end``, ``n``, ``score_psi``, ``psi`` (input → PSI)."""
        return [
            {
                "start": start,
                "end": start + self.window,
                "n": self.n[i],
                "score_psi": self.score[i],
                "psi": {name: values[i] for name, values in self.features.items()},
            }
            for i, start in enumerate(self.starts)
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes in ISO 8601)."""
        return {
            "window_seconds": self.window.total_seconds(),
            "starts": [s.isoformat() for s in self.starts],
            "n": list(self.n),
            "score": list(self.score),
            "features": {name: list(v) for name, v in self.features.items()},
            "skipped": dict(self.skipped),
        }


def _not_mappings(records: Sequence[Any]) -> InvalidInput:
    bad = next((r for r in records if not isinstance(r, Mapping)), None)
    return InvalidInput(
        "records must be mappings of input name to value, one per prediction, got a "
        f"{type(bad).__name__}",
        field="records",
    )


def _columns(
    records: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> tuple[dict[str, list[Any]], set[str]]:
    """The values of each named field (None where a record lacks it) and all field names."""
    if not records:
        return {name: [] for name in names}, set()
    if not all(issubclass(t, Mapping) for t in set(map(type, records))):
        raise _not_mappings(records)
    columns: dict[str, list[Any]] = {}
    try:
        present: set[str] = set().union(*records)
        for name in names:
            if name not in present:
                continue
            try:  # one pass in C per field when every record holds it
                columns[name] = list(map(itemgetter(name), records))
            except KeyError:
                columns[name] = [r.get(name) for r in records]
    except (TypeError, AttributeError):
        raise _not_mappings(records) from None
    return columns, present


def _masked_names(masked: Collection[str]) -> frozenset[str]:
    if isinstance(masked, str | bytes) or not isinstance(masked, Collection):
        raise InvalidInput(
            f"masked must be a list of input names, got {masked!r}; wrap a single name in a list",
            field="masked",
        )
    bad = next((m for m in masked if not isinstance(m, str)), None)
    if bad is not None:
        raise InvalidInput(f"masked must hold input names (text), got {bad!r}", field="masked")
    return frozenset(masked)


def _bin_records(
    profile: BaselineProfile, records: Sequence[Mapping[str, Any]], masked: Collection[str]
) -> tuple[dict[str, NDArray[np.int64]], dict[str, str], tuple[str, ...]]:
    """The bin of every record for each usable input; skipped inputs; ignored fields."""
    hidden = _masked_names(masked)
    if isinstance(records, pd.DataFrame):
        records = records.to_dict("records")
    if isinstance(records, Mapping | str | bytes):
        raise _not_mappings([records])
    columns, present = _columns(records, list(profile.features))
    binned: dict[str, NDArray[np.int64]] = {}
    skipped: dict[str, str] = {}
    why_masked = (
        "masked by the PII policy before logging: its logged values are hashes, "
        "not comparable with the training values"
    )
    for name, fb in profile.features.items():
        if name in hidden:
            skipped[name] = why_masked
            continue
        if name not in columns:
            if len(records):
                skipped[name] = "absent from every logged record (dropped by the PII policy?)"
                continue
            columns[name] = []
        values = columns[name]
        if fb.kind == "numeric":
            x, invalid = _to_float(values)
            if invalid and 2 * invalid >= invalid + int(np.sum(~np.isnan(x))):
                skipped[name] = (
                    f"{invalid:,} of the logged values are not numbers (text or lists; "
                    "masked by the PII policy?)"
                )
                continue
            binned[name] = fb.assign_numbers(x)
        else:
            binned[name] = fb.assign(values)
    # a profile kept by a training run leaves personal inputs out
    skipped.update({name: why_masked for name in sorted(hidden & present) if name not in skipped})
    ignored = tuple(sorted(present - set(profile.features) - hidden))
    return binned, skipped, ignored


def _score_bins(profile: BaselineProfile, scores: Sequence[float] | ArrayLike) -> NDArray[np.int64]:
    try:
        x = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):  # None or text among them: missing
        x = np.asarray(scores, dtype=object)
        if x.ndim == 1:
            x, _ = _to_float(x)
    if x.ndim != 1:
        raise InvalidInput("scores must be a 1-D list of numbers", field="scores")
    return profile.score.assign_numbers(x)


def _drift(fb: FeatureBins, bins: NDArray[np.int64], epsilon: float) -> FeatureDrift:
    counts = np.bincount(bins, minlength=fb.n_bins).astype(np.float64)
    n = int(bins.size)
    value = _psi_rows(fb.proportions, counts[None, :], epsilon)[0]
    actual = counts / n if n else counts
    return FeatureDrift(
        name=fb.name,
        kind=fb.kind,
        psi=_value(value),
        n=n,
        n_missing=int(counts[-1]),
        labels=tuple(fb.labels),
        expected=fb.proportions,
        actual=tuple(actual.tolist()),
    )


def drift_report(
    profile: BaselineProfile,
    records: Sequence[Mapping[str, Any]],
    scores: Sequence[float] | ArrayLike,
    *,
    masked: Collection[str] = (),
) -> DriftReport:
    """Compare logged inputs and scores with the training baseline.

    Parameters
    ----------
    profile
        The model version's baseline.
    records
        The ``inputs`` of logged predictions, one mapping per prediction (a
        DataFrame of them is accepted too).
    scores
        Their scores (usually one per record; NaN or None count as missing).
    masked
        Inputs that the serving runtime hashed before logging them (the PII
        fields of the model's dataset): skipped, with the reason in
        :attr:`DriftReport.skipped`.

    Returns
    -------
    DriftReport
        Unseen categories count in ``other``; missing values in the last bin.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"income": rng.normal(50, 10, 5000)})
    >>> profile = BaselineProfile.fit(
    ...     frame, rng.uniform(size=5000), [{"name": "income", "type": "numeric"}]
    ... )
    >>> records = [{"income": v} for v in rng.normal(60, 10, 2000)]
    >>> report = drift_report(profile, records, rng.uniform(size=2000))
    >>> report.features["income"].psi > 0.25, report.score.psi < 0.1
    (True, True)
    """
    binned, skipped, ignored = _bin_records(profile, records, masked)
    features = {
        name: _drift(profile.features[name], bins, profile.epsilon) for name, bins in binned.items()
    }
    score = _drift(profile.score, _score_bins(profile, scores), profile.epsilon)
    return DriftReport(
        n=len(records), features=features, score=score, skipped=skipped, ignored=ignored
    )


def _windowed_psi(
    fb: FeatureBins, bins: NDArray[np.int64], window: NDArray[np.int64], count: int, epsilon: float
) -> tuple[float | None, ...]:
    k = fb.n_bins
    counts = np.bincount(window * k + bins, minlength=count * k).reshape(count, k)
    return tuple(_value(v) for v in _psi_rows(fb.proportions, counts.astype(np.float64), epsilon))


def drift_over_time(
    profile: BaselineProfile,
    predictions: Sequence[Prediction],
    window: timedelta,
    *,
    origin: datetime | None = None,
    route: str | None = "live",
    masked: Collection[str] = (),
) -> DriftSeries:
    """PSI per input and for the score in consecutive time windows.

    Parameters
    ----------
    profile
        The model version's baseline.
    predictions
        Logged predictions, in any order.
    window
        Window width, e.g. ``timedelta(days=1)``.
    origin
        A window boundary; the Unix epoch (midnight UTC) by default, so daily
        windows are calendar days in UTC.
    route
        Only predictions of this route (``"live"`` by default; None: all).
    masked
        Inputs hashed before logging, skipped (see :func:`drift_report`).

    Returns
    -------
    DriftSeries
        Every window from the first prediction's to the last one's, empty
        windows included (their PSI is None).
    """
    chosen = [p for p in predictions if route is None or p.route == route]
    seconds = epoch_seconds([p.at for p in chosen])
    index, starts = assign_windows(seconds, window, origin)
    binned, skipped, _ = _bin_records(profile, [p.inputs for p in chosen], masked)
    count = len(starts)
    score_bins = _score_bins(profile, [p.score for p in chosen])
    return DriftSeries(
        window=window,
        starts=tuple(starts),
        n=tuple(np.bincount(index, minlength=count).tolist()),
        features={
            name: _windowed_psi(profile.features[name], bins, index, count, profile.epsilon)
            for name, bins in binned.items()
        },
        score=_windowed_psi(profile.score, score_bins, index, count, profile.epsilon),
        skipped=skipped,
    )
