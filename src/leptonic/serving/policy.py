"""Decision policies: hard rules, then score bands, compiled once from a JSON spec.

A policy turns a model's probability of the bad outcome into a business
decision (``approve`` / ``review`` / ``reject`` or any other names) and says
which decisions owe the applicant reason codes. It is written as a JSON
object, validated field by field (errors name the dotted path, e.g.
``bands[1].max``), stored as an immutable version by the endpoint service, and
compiled into tuples and closures so that :meth:`DecisionPolicy.decide` costs
about a microsecond.

The spec::

    {
      "score": "probability",           # or "points" (then pdo, base_score, base_odds)
      "bands": [                        # most favourable first
        {"decision": "approve", "max": 0.08},
        {"decision": "review",  "max": 0.20},
        {"decision": "reject"}          # the last band takes every other score
      ],
      "rules": [                        # checked before the bands; the first match wins
        {"field": "age", "op": "<", "value": 18,
         "decision": "reject", "reason": "applicants must be 18 or older"},
        {"field": "annual_income", "op": "is_missing",
         "decision": "review", "reason": "income not stated"}
      ],
      "reasons": 4,                     # reason codes per adverse decision (0..20)
      "adverse": ["review", "reject"],  # default: every decision but the first band's
      "tree_reasons": "shap",           # tree models: TreeSHAP ("shap") or path attributions ("path")
      "description": "..."              # optional free text
    }

**Bands.** They are listed from the most favourable decision to the least.
With ``"score": "probability"`` (P(bad), what ``predict_one`` returns) each
band but the last has a ``max`` and takes the scores *below* it: a score
equal to a band's ``max`` falls into the next, less favourable band, as
``p >= threshold`` is "bad" for a binary model. The ``max`` values increase
strictly, within (0, 1]. With ``"score": "points"`` the probability is first
scaled to scorecard points exactly as
:class:`~leptonic.evaluation.scorecard.Scorecard` does (``pdo`` points double
the good:bad odds, ``base_score`` points at odds ``base_odds``; higher is
better), and each band but the last has a ``min`` and takes the points *at or
above* it, the scorecard convention of a cut-off; the ``min`` values decrease
strictly. A band is never both.

**Rules.** ``op`` is one of ``< <= > >= == != in not_in is_missing``. The
ordering operators compare numbers (a numeric string is parsed); ``==`` and
``!=`` compare numbers when ``value`` is a number and category keys
otherwise (``"2"``, ``2`` and ``2.0`` are one category, ``True`` is ``"1"``);
``in`` / ``not_in`` take a list and compare category keys. A missing value
(absent, ``null``, NaN, or a string that does not parse for a numeric
comparison) matches no operator but ``is_missing`` (whose optional boolean
``value`` false inverts it). The first rule that matches decides, and the
model's score is then not needed for the decision.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from leptonic.core._numbers import as_float
from leptonic.errors import InvalidInput
from leptonic.serving.policy_decision import Decision
from leptonic.serving.policy_rules import OPS, Test, compile_test
from leptonic.serving.policy_spec import parse_spec

__all__ = ["OPS", "Decision", "DecisionPolicy", "default_policy"]


class DecisionPolicy:
    """A compiled decision policy; build it with :meth:`from_spec`.

    Attributes
    ----------
    score : str
        ``"probability"`` or ``"points"``.
    bands : tuple of (str, float or None)
        ``(decision, edge)`` per band, most favourable first; ``edge`` is the
        band's ``max`` (probability) or ``min`` (points), ``None`` for the last.
    rules : tuple of dict
        The rules as given (normalised), in evaluation order.
    reasons : int
        Reason codes to give with an adverse decision.
    adverse : frozenset of str
        Decisions that owe reason codes.
    decisions : tuple of str
        Every decision the policy can make: the bands' then the rules' own.
    pdo, base_score, base_odds : float or None
        The points scaling (``None`` for probability policies).
    factor, offset : float or None
        ``pdo / ln 2`` and ``base_score - factor · ln(base_odds)``.

    Examples
    --------
    >>> policy = DecisionPolicy.from_spec(default_policy(0.2))
    >>> [name for name, _ in policy.bands]
    ['approve', 'review', 'reject']
    >>> policy.decide({}, 0.05).decision
    'approve'
    >>> policy.decide({}, 0.9).adverse
    True
    """

    score: str
    bands: tuple[tuple[str, float | None], ...]
    rules: tuple[dict[str, Any], ...]
    reasons: int
    adverse: frozenset[str]
    decisions: tuple[str, ...]
    description: str
    tree_reasons: str
    pdo: float | None
    base_score: float | None
    base_odds: float | None
    factor: float | None
    offset: float | None

    def __init__(self, spec: Mapping[str, Any]) -> None:
        """Validate ``spec`` (see the module docstring) and compile it; as :meth:`from_spec`."""
        parsed = parse_spec(spec)
        self.score = parsed.score
        self.pdo, self.base_score, self.base_odds = parsed.pdo, parsed.base_score, parsed.base_odds
        self.factor, self.offset = parsed.factor, parsed.offset
        self.bands = parsed.bands
        self.rules = parsed.rules
        self.reasons = parsed.reasons
        self.decisions = parsed.decisions
        self.adverse = parsed.adverse
        self.description = parsed.description
        self.tree_reasons = parsed.tree_reasons
        self._compile()

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> DecisionPolicy:
        """Validate ``spec`` (see the module docstring) and compile it.

        Raises
        ------
        InvalidInput
            Naming the first field at fault (``field`` is its dotted path) and
            how to fix it.
        """
        return cls(spec)

    def _compile(self) -> None:
        adverse = self.adverse
        self._band_decisions = tuple(
            Decision(name, i, None, None, None, None, name in adverse)
            for i, (name, _) in enumerate(self.bands)
        )
        edges = [float(edge) for _, edge in self.bands if edge is not None]
        # probability: bisect_right(maxes, p) is the first band whose max is above p;
        # points: bisect_left(-mins, -s) is the first band whose min is at or below s.
        self._edges = edges if self.score == "probability" else []
        self._neg_edges = [-e for e in edges] if self.score == "points" else []
        self._points = self.score == "points"
        self._rule_plan: tuple[tuple[str, Test, Decision], ...] = tuple(
            (
                rule["field"],
                compile_test(rule["op"], rule.get("value")),
                Decision(
                    rule["decision"],
                    None,
                    rule["reason"],
                    rule["field"],
                    i,
                    None,
                    rule["decision"] in adverse,
                ),
            )
            for i, rule in enumerate(self.rules)
        )

    # -- the hot path ------------------------------------------------------
    def decide(self, record: Mapping[str, Any], probability: float | None = None) -> Decision:
        """Decide one record.

        Parameters
        ----------
        record
            The request record (the rules read its fields).
        probability
            The model's P(bad) for the record (``predict_one``'s result),
            whatever the policy's ``score``; a ``"points"`` policy scales it.
            May be ``None`` only if a rule decides: call :meth:`rule_for`
            first to skip the model when a rule applies.

        Returns
        -------
        Decision
            Shared, immutable instances for probability policies (no
            allocation); a points policy returns a fresh one holding the points.
        """
        if self._rule_plan:
            get = record.get
            for field, test, decision in self._rule_plan:
                if test(get(field)):
                    if self._points and probability is not None:
                        return decision._with_points(self._to_points(probability))
                    return decision
        if probability is None:
            raise InvalidInput(
                "no rule decided this record, so the decision needs the model's probability; "
                "pass predict_one(record) as probability",
                field="probability",
            )
        if not 0.0 <= probability <= 1.0:
            raise InvalidInput(
                f"the score must be a probability in [0, 1], got {probability!r}",
                field="probability",
            )
        if self._points:
            points = self._to_points(probability)
            i = bisect_left(self._neg_edges, -points)
            return self._band_decisions[i]._with_points(points)
        return self._band_decisions[bisect_right(self._edges, probability)]

    def rule_for(self, record: Mapping[str, Any]) -> Decision | None:
        """The decision of the first rule ``record`` matches, or ``None`` (the model decides)."""
        get = record.get
        for field, test, decision in self._rule_plan:
            if test(get(field)):
                return decision
        return None

    def _to_points(self, probability: float) -> float:
        p = probability
        if 0.0 < p < 1.0:
            return self.offset - self.factor * math.log(p / (1.0 - p))  # type: ignore[operator]
        if p <= 0.0:
            return math.inf
        return -math.inf

    def to_score(self, probability: float) -> float:
        """The score the bands compare: ``probability`` itself, or its scorecard points."""
        return self._to_points(probability) if self._points else probability

    # -- checks and changes --------------------------------------------------
    def check_fields(self, names: Collection[str]) -> None:
        """Refuse rules on fields that requests will not carry.

        Raises
        ------
        InvalidInput
            For the first rule whose field is not in ``names`` (``rules[i].field``).
        """
        for i, rule in enumerate(self.rules):
            if rule["field"] not in names:
                known = ", ".join(sorted(names)) or "(none)"
                raise InvalidInput(
                    f"rules[{i}] tests field {rule['field']!r}, which the endpoint's requests "
                    f"do not have; use one of: {known}",
                    field=f"rules[{i}].field",
                )

    def with_thresholds(self, edges: Sequence[float] | Mapping[str, float]) -> DecisionPolicy:
        """A copy of this policy with its band edges moved (rules and the rest unchanged).

        Parameters
        ----------
        edges
            The new ``max`` (probability) or ``min`` (points) of every band but
            the last, in band order; or a mapping from band decision names to
            their new edge (bands left out keep theirs).

        Raises
        ------
        InvalidInput
            If an edge is unknown or the new edges break the band order
            (``bands[i].max`` / ``bands[i].min``).
        """
        key = "max" if self.score == "probability" else "min"
        current = {name: edge for name, edge in self.bands[:-1]}
        if isinstance(edges, Mapping):
            for name in edges:
                if name not in current:
                    raise InvalidInput(
                        f"no band {name!r} with a {key} to move; movable bands: "
                        f"{', '.join(current) or '(none)'}",
                        field="thresholds",
                    )
            new = {**current, **{str(k): v for k, v in edges.items()}}
        else:
            values = list(edges)
            if len(values) != len(current):
                raise InvalidInput(
                    f"give one {key} per band but the last ({len(current)}), got {len(values)}",
                    field="thresholds",
                )
            new = dict(zip(current, values, strict=True))
        spec = self.to_spec()
        for band in spec["bands"][:-1]:
            band[key] = new[band["decision"]]
        return DecisionPolicy.from_spec(spec)

    def to_spec(self) -> dict[str, Any]:
        """The normalised JSON spec (defaults filled in); ``from_spec`` gives this policy back."""
        spec: dict[str, Any] = {"score": self.score}
        if self.score == "points":
            spec.update(pdo=self.pdo, base_score=self.base_score, base_odds=self.base_odds)
        key = "max" if self.score == "probability" else "min"
        spec["bands"] = [
            {"decision": name} if edge is None else {"decision": name, key: edge}
            for name, edge in self.bands
        ]
        spec["rules"] = [
            {k: (list(v) if isinstance(v, list) else v) for k, v in rule.items()}
            for rule in self.rules
        ]
        spec["reasons"] = self.reasons
        spec["adverse"] = [name for name in self.decisions if name in self.adverse]
        spec["tree_reasons"] = self.tree_reasons
        if self.description:
            spec["description"] = self.description
        return spec

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DecisionPolicy) and self.to_spec() == other.to_spec()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        bands = ", ".join(
            name
            if edge is None
            else f"{name}<{edge:g}"
            if self.score == "probability"
            else f"{name}>={edge:g}"
            for name, edge in self.bands
        )
        return f"DecisionPolicy({self.score}: {bands}; {len(self.rules)} rule(s))"


def default_policy(threshold: float, *, review_width: float = 0.5) -> dict[str, Any]:
    """The spec of an approve / review / reject policy around a binary model's threshold.

    The review band straddles ``threshold`` by ``review_width`` in log-odds
    on each side (0.5: the odds divided or multiplied by about 1.65); below
    it applicants are approved, above it rejected. ``review_width=0`` gives
    approve below the threshold and reject at or above it.

    Parameters
    ----------
    threshold
        The model's decision threshold on P(bad), in (0, 1).
    review_width
        Half-width of the review band in log-odds, >= 0.

    Returns
    -------
    dict
        A spec for :meth:`DecisionPolicy.from_spec`.

    Examples
    --------
    >>> default_policy(0.2)["bands"]
    [{'decision': 'approve', 'max': 0.131668}, {'decision': 'review', 'max': 0.291875}, {'decision': 'reject'}]
    """
    t = _unit_interval(threshold, "threshold")
    if isinstance(review_width, bool) or not isinstance(review_width, int | float):
        raise InvalidInput(
            f"review_width must be a number, got {review_width!r}", field="review_width"
        )
    width = as_float(review_width)
    if not (math.isfinite(width) and width >= 0.0):
        raise InvalidInput(
            f"review_width must be a log-odds width >= 0, got {review_width!r}; 0.5 is usual",
            field="review_width",
        )
    if width == 0.0:
        bands = [{"decision": "approve", "max": t}, {"decision": "reject"}]
    else:
        z = math.log(t / (1.0 - t))
        low = round(1.0 / (1.0 + math.exp(-(z - width))), 6)
        high = round(1.0 / (1.0 + math.exp(-(z + width))), 6)
        if not 0.0 < low < high <= 1.0:
            raise InvalidInput(
                f"review_width {review_width!r} is too wide for threshold {threshold!r}: "
                "the review band would leave (0, 1); use a smaller width",
                field="review_width",
            )
        bands = [
            {"decision": "approve", "max": low},
            {"decision": "review", "max": high},
            {"decision": "reject"},
        ]
    spec = {"score": "probability", "bands": bands, "rules": [], "reasons": 4}
    return DecisionPolicy.from_spec(spec).to_spec()


def _unit_interval(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{field} must be a number in (0, 1), got {value!r}", field=field)
    x = as_float(value)
    if not 0.0 < x < 1.0:
        raise InvalidInput(f"{field} must be a probability in (0, 1), got {value!r}", field=field)
    return x
