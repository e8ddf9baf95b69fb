"""Points scorecards from a logistic regression over weight-of-evidence features.

The model predicts the probability of default (the *bad* outcome) with

    logit = intercept + Σ_j coef_j · woe_j

and WoE is higher for lower-risk bins, so fitted coefficients are usually
negative. The scorecard scales the good:bad odds ``exp(-logit)`` to points::

    factor = pdo / ln 2
    offset = base_score - factor · ln(base_odds)
    score  = offset - factor · logit = offset + factor · ln(odds good:bad)

so a higher score means lower risk, ``base_score`` points mean odds of
``base_odds`` to 1, and every ``pdo`` more points double the odds. The score is
split over the features: a bin of feature ``j`` is worth

    points = -factor · (coef_j · woe + intercept / n) + offset / n

with ``n`` the number of features, and a row's score is the sum of its bins' points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from leptonic.errors import InvalidInput

__all__ = ["Scorecard"]


def _number(value: Any, name: str, *, positive: bool = False) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond floats
        out = math.nan
    if not math.isfinite(out) or (positive and out <= 0):
        need = "a positive finite number" if positive else "a finite number"
        raise InvalidInput(f"{name} must be {need}, got {value!r}", field=name)
    return out


class Scorecard:
    """A points scorecard; build it with :meth:`from_logistic`.

    Attributes
    ----------
    pdo, base_score, base_odds
        The scaling: ``base_score`` points at good:bad odds of ``base_odds``,
        odds doubling every ``pdo`` points.
    factor, offset
        ``pdo / ln 2`` and ``base_score - factor · ln(base_odds)``.
    intercept
        The logistic intercept.
    coefficients
        Feature name → logistic coefficient, in model order.
    bins
        Feature name → tuple of ``(label, woe)`` pairs.

    Examples
    --------
    >>> card = Scorecard.from_logistic(
    ...     {"age": -1.0},
    ...     -2.0,
    ...     {"age": [{"label": "<30", "woe": -0.5}, {"label": ">=30", "woe": 0.4}]},
    ... )
    >>> round(card.score_from_woe({"age": 0.4}), 2)
    556.37
    """

    def __init__(
        self,
        coefficients: Mapping[str, float],
        intercept: float,
        bins: Mapping[str, Sequence[Mapping[str, Any]]],
        *,
        pdo: float = 20.0,
        base_score: float = 600.0,
        base_odds: float = 50.0,
    ) -> None:
        if not coefficients:
            raise InvalidInput("a scorecard needs at least one coefficient", field="coefficients")
        self.pdo = _number(pdo, "pdo", positive=True)
        self.base_score = _number(base_score, "base_score")
        self.base_odds = _number(base_odds, "base_odds", positive=True)
        self.intercept = _number(intercept, "intercept")
        self.coefficients = {
            str(name): _number(coef, f"coefficient of {name!r}")
            for name, coef in coefficients.items()
        }
        self.factor = self.pdo / math.log(2.0)
        self.offset = self.base_score - self.factor * math.log(self.base_odds)
        self.bins: dict[str, tuple[tuple[str, float], ...]] = {}
        for name in self.coefficients:
            if name not in bins:
                raise InvalidInput(
                    f"no bins for feature {name!r}; pass the WoE bins of every feature "
                    "that has a coefficient",
                    field="bins",
                )
            rows = []
            for i, row in enumerate(bins[name]):
                if "label" not in row or "woe" not in row:
                    raise InvalidInput(
                        f"bin {i} of feature {name!r} needs 'label' and 'woe' keys, "
                        f"got {sorted(row)}",
                        field="bins",
                    )
                rows.append((str(row["label"]), _number(row["woe"], f"woe of {name!r} bin {i}")))
            if not rows:
                raise InvalidInput(f"feature {name!r} has no bins", field="bins")
            self.bins[name] = tuple(rows)

    @classmethod
    def from_logistic(
        cls,
        coefficients: Mapping[str, float],
        intercept: float,
        bins: Mapping[str, Sequence[Mapping[str, Any]]],
        *,
        pdo: float = 20.0,
        base_score: float = 600.0,
        base_odds: float = 50.0,
    ) -> Scorecard:
        """A scorecard from a logistic regression on WoE features.

        Parameters
        ----------
        coefficients
            Feature name → coefficient of its WoE in the logit of P(bad).
        intercept
            The intercept of that logit.
        bins
            Feature name → list of bin dicts with at least ``"label"`` and
            ``"woe"`` keys (as the WoE binner gives them). Features without a
            coefficient are ignored.
        pdo
            Points to double the good:bad odds.
        base_score
            Score at good:bad odds of ``base_odds``.
        base_odds
            Good:bad odds at ``base_score``.
        """
        return cls(
            coefficients, intercept, bins, pdo=pdo, base_score=base_score, base_odds=base_odds
        )

    @property
    def features(self) -> tuple[str, ...]:
        """The features of the model, in coefficient order."""
        return tuple(self.coefficients)

    def points(self, feature: str, woe: float) -> float:
        """Points (full precision) of a bin of ``feature`` whose WoE is ``woe``."""
        coef = self.coefficients.get(feature)
        if coef is None:
            raise InvalidInput(
                f"unknown feature {feature!r}; the scorecard has {list(self.coefficients)}",
                field="feature",
            )
        n = len(self.coefficients)
        return -self.factor * (coef * float(woe) + self.intercept / n) + self.offset / n

    def points_by_feature(self, woe_by_feature: Mapping[str, float]) -> dict[str, float]:
        """Points of each feature for one row, given the WoE of each of its bins.

        Keys of ``woe_by_feature`` that are not model features are ignored.
        """
        missing = [name for name in self.coefficients if name not in woe_by_feature]
        if missing:
            raise InvalidInput(
                f"no WoE value for features {missing}; pass one for every scorecard feature",
                field="woe_by_feature",
            )
        return {
            name: self.points(name, _number(woe_by_feature[name], f"woe of {name!r}"))
            for name in self.coefficients
        }

    def score_from_woe(self, woe_by_feature: Mapping[str, float]) -> float:
        """The score of one row: the sum of its bins' points, ``offset - factor · logit``."""
        return math.fsum(self.points_by_feature(woe_by_feature).values())

    def probability_from_score(self, score: float) -> float:
        """The probability of the bad outcome (default) at ``score``."""
        logit = (self.offset - _number(score, "score")) / self.factor
        if logit >= 0:
            return 1.0 / (1.0 + math.exp(-logit))
        odds = math.exp(logit)
        return odds / (1.0 + odds)

    def points_table(self) -> list[dict[str, Any]]:
        """One row per bin: ``feature``, ``bin``, ``woe``, ``coefficient``, ``points`` (1 decimal)."""
        return [
            {
                "feature": name,
                "bin": label,
                "woe": woe,
                "coefficient": coef,
                "points": round(self.points(name, woe), 1),
            }
            for name, coef in self.coefficients.items()
            for label, woe in self.bins[name]
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description that :meth:`from_dict` restores."""
        return {
            "pdo": self.pdo,
            "base_score": self.base_score,
            "base_odds": self.base_odds,
            "intercept": self.intercept,
            "coefficients": dict(self.coefficients),
            "bins": {
                name: [{"label": label, "woe": woe} for label, woe in rows]
                for name, rows in self.bins.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scorecard:
        """The scorecard that :meth:`to_dict` described."""
        missing = [
            key
            for key in ("pdo", "base_score", "base_odds", "intercept", "coefficients", "bins")
            if key not in data
        ]
        if missing:
            raise InvalidInput(f"scorecard description lacks keys {missing}", field="scorecard")
        return cls(
            data["coefficients"],
            data["intercept"],
            data["bins"],
            pdo=data["pdo"],
            base_score=data["base_score"],
            base_odds=data["base_odds"],
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scorecard) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Scorecard(features={list(self.coefficients)}, pdo={self.pdo:g}, "
            f"base_score={self.base_score:g}, base_odds={self.base_odds:g})"
        )
