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
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from leptonic.errors import InvalidInput
from leptonic.evaluation.scorecard import Scorecard
from leptonic.features._common import category_key, to_float

__all__ = ["OPS", "Decision", "DecisionPolicy", "default_policy"]

#: Rule operators.
OPS = ("<", "<=", ">", ">=", "==", "!=", "in", "not_in", "is_missing")
_SCORES = ("probability", "points")
_KEYS = (
    "score",
    "pdo",
    "base_score",
    "base_odds",
    "bands",
    "rules",
    "reasons",
    "adverse",
    "tree_reasons",
    "description",
)
_RULE_KEYS = ("field", "op", "value", "decision", "reason")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_MAX_REASONS = 20
_MAX_LIST = 1000
_SCALING_DEFAULTS = {"pdo": 20.0, "base_score": 600.0, "base_odds": 50.0}

Test = Callable[[Any], bool]


class Decision:
    """The outcome of :meth:`DecisionPolicy.decide`.

    Attributes
    ----------
    decision : str
        The decision name.
    band : int or None
        Index of the band that decided; ``None`` when a rule did.
    rule : str or None
        The ``reason`` of the rule that decided; ``None`` when a band did.
    rule_field : str or None
        The field that rule tested.
    rule_index : int or None
        The rule's position in ``rules``.
    points : float or None
        Scorecard points of the score (``"points"`` policies, when a score
        was given); ``None`` otherwise.
    adverse : bool
        Whether this decision owes reason codes.
    """

    __slots__ = ("adverse", "band", "decision", "points", "rule", "rule_field", "rule_index")

    def __init__(
        self,
        decision: str,
        band: int | None,
        rule: str | None,
        rule_field: str | None,
        rule_index: int | None,
        points: float | None,
        adverse: bool,
    ) -> None:
        self.decision = decision
        self.band = band
        self.rule = rule
        self.rule_field = rule_field
        self.rule_index = rule_index
        self.points = points
        self.adverse = adverse

    def _with_points(self, points: float) -> Decision:
        return Decision(
            self.decision,
            self.band,
            self.rule,
            self.rule_field,
            self.rule_index,
            points,
            self.adverse,
        )

    def to_dict(self) -> dict[str, Any]:
        """The attributes as a dict (for logs and tests)."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        how = f"band={self.band}" if self.rule is None else f"rule={self.rule_index}"
        points = "" if self.points is None else f", points={self.points:.1f}"
        return f"Decision({self.decision!r}, {how}{points})"


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
        if not isinstance(spec, Mapping):
            raise InvalidInput(
                f"a decision policy must be a JSON object, got {type(spec).__name__}",
                field="policy",
            )
        unknown = [k for k in spec if k not in _KEYS]
        if unknown:
            raise InvalidInput(
                f"unknown policy field {unknown[0]!r}; the known fields are {', '.join(_KEYS)}",
                field=str(unknown[0]),
            )
        score = spec.get("score", "probability")
        if score not in _SCORES:
            raise InvalidInput(
                f"score must be 'probability' (P(bad), the default) or 'points' "
                f"(scorecard points, higher is better), got {score!r}",
                field="score",
            )
        self.score = score
        self._scaling(spec)
        self.bands = self._parse_bands(spec.get("bands"))
        self.rules = tuple(_parse_rules(spec.get("rules", [])))
        self.reasons = _parse_reasons(spec.get("reasons", 4))
        band_names = [name for name, _ in self.bands]
        decisions = list(band_names)
        for rule in self.rules:
            if rule["decision"] not in decisions:
                decisions.append(rule["decision"])
        self.decisions = tuple(decisions)
        self.adverse = _parse_adverse(spec.get("adverse"), self.decisions, band_names[0])
        description = spec.get("description", "")
        if not isinstance(description, str) or len(description) > 2000:
            raise InvalidInput(
                "description must be a string of at most 2000 characters", field="description"
            )
        self.description = description
        tree_reasons = spec.get("tree_reasons", "shap")
        if tree_reasons not in ("shap", "path"):
            raise InvalidInput(
                f"tree_reasons must be 'shap' (TreeSHAP, exact Shapley values) or 'path' "
                f"(path attributions, about ten times faster), got {tree_reasons!r}",
                field="tree_reasons",
            )
        self.tree_reasons = tree_reasons
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

    def _scaling(self, spec: Mapping[str, Any]) -> None:
        given = {k: spec[k] for k in _SCALING_DEFAULTS if k in spec}
        if self.score == "probability":
            if given:
                name = next(iter(given))
                raise InvalidInput(
                    f"{name} scales scorecard points; it applies only with score 'points' "
                    "(remove it, or set score to 'points')",
                    field=name,
                )
            self.pdo = self.base_score = self.base_odds = None
            self.factor = self.offset = None
            return
        for name, value in given.items():
            if isinstance(value, bool):
                raise InvalidInput(f"{name} must be a number, got {value!r}", field=name)
        scaling = {**_SCALING_DEFAULTS, **given}
        # The scaling of the training report's scorecard, validated and derived there.
        card = Scorecard({"score": 0.0}, 0.0, {"score": [{"label": "all", "woe": 0.0}]}, **scaling)
        self.pdo, self.base_score, self.base_odds = card.pdo, card.base_score, card.base_odds
        self.factor, self.offset = card.factor, card.offset

    def _parse_bands(self, bands: Any) -> tuple[tuple[str, float | None], ...]:
        if not isinstance(bands, list) or not bands:
            raise InvalidInput(
                "bands must be a non-empty list, most favourable first, e.g. "
                '[{"decision": "approve", "max": 0.1}, {"decision": "reject"}]',
                field="bands",
            )
        key, other = ("max", "min") if self.score == "probability" else ("min", "max")
        out: list[tuple[str, float | None]] = []
        seen: dict[str, int] = {}
        last = len(bands) - 1
        for i, band in enumerate(bands):
            where = f"bands[{i}]"
            if not isinstance(band, Mapping):
                raise InvalidInput(
                    f'{where} must be an object like {{"decision": "approve", "{key}": ...}}',
                    field=where,
                )
            extra = [k for k in band if k not in ("decision", key)]
            if extra:
                if extra[0] == other:
                    why = (
                        "probability bands take the scores below their max"
                        if key == "max"
                        else "points bands take the points at or above their min"
                    )
                    raise InvalidInput(
                        f"{where} has {other!r} but this is a {self.score} policy: {why}; "
                        f"use {key!r}",
                        field=f"{where}.{other}",
                    )
                raise InvalidInput(
                    f"{where} has unknown field {extra[0]!r}; a band has 'decision' and '{key}'",
                    field=f"{where}.{extra[0]}",
                )
            name = _decision_name(band.get("decision"), f"{where}.decision")
            if name in seen:
                raise InvalidInput(
                    f"decision {name!r} names bands[{seen[name]}] already; each band needs "
                    "its own decision",
                    field=f"{where}.decision",
                )
            seen[name] = i
            if i == last:
                if key in band:
                    raise InvalidInput(
                        f"the last band takes every score the others leave, so it has no "
                        f"{key}; remove it (or add a band after it)",
                        field=f"{where}.{key}",
                    )
                out.append((name, None))
                continue
            if key not in band:
                raise InvalidInput(
                    f"{where} needs a {key!r} (every band but the last has one)",
                    field=f"{where}.{key}",
                )
            edge = band[key]
            if isinstance(edge, bool) or not isinstance(edge, int | float):
                raise InvalidInput(
                    f"{where}.{key} must be a number, got {edge!r}", field=f"{where}.{key}"
                )
            edge = float(edge)
            if key == "max":
                if not 0.0 < edge <= 1.0:
                    raise InvalidInput(
                        f"{where}.max is a probability of the bad outcome: it must be in "
                        f"(0, 1], got {edge!r}",
                        field=f"{where}.max",
                    )
                if out and edge <= out[-1][1]:  # type: ignore[operator]
                    raise InvalidInput(
                        f"{where}.max ({edge!r}) must be above bands[{i - 1}].max "
                        f"({out[-1][1]!r}): list bands from the lowest risk up",
                        field=f"{where}.max",
                    )
            else:
                if not math.isfinite(edge):
                    raise InvalidInput(
                        f"{where}.min must be a finite number of points, got {edge!r}",
                        field=f"{where}.min",
                    )
                if out and edge >= out[-1][1]:  # type: ignore[operator]
                    raise InvalidInput(
                        f"{where}.min ({edge!r}) must be below bands[{i - 1}].min "
                        f"({out[-1][1]!r}): list bands from the highest points down",
                        field=f"{where}.min",
                    )
            out.append((name, edge))
        return tuple(out)

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
                _compile_test(rule["op"], rule.get("value")),
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
    width = float(review_width)
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


# ---------------------------------------------------------------- parsing


def _unit_interval(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{field} must be a number in (0, 1), got {value!r}", field=field)
    x = float(value)
    if not 0.0 < x < 1.0:
        raise InvalidInput(f"{field} must be a probability in (0, 1), got {value!r}", field=field)
    return x


def _decision_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(
            f"{field} must be a decision name: a letter, then letters, digits or '_' "
            f"(at most 64), such as 'approve' or 'refer_to_underwriter'; got {value!r}",
            field=field,
        )
    return value


def _parse_reasons(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_REASONS:
        raise InvalidInput(
            f"reasons is how many reason codes an adverse decision carries: an integer "
            f"from 0 to {_MAX_REASONS}, got {value!r}",
            field="reasons",
        )
    return int(value)


def _parse_adverse(value: Any, decisions: Sequence[str], first: str) -> frozenset[str]:
    if value is None:
        return frozenset(name for name in decisions if name != first)
    if not isinstance(value, list):
        raise InvalidInput(
            f"adverse must be a list of decision names, e.g. {list(decisions[1:])}",
            field="adverse",
        )
    for i, name in enumerate(value):
        if name not in decisions:
            raise InvalidInput(
                f"adverse[{i}] is {name!r}, which no band or rule decides; the policy's "
                f"decisions are {', '.join(decisions)}",
                field=f"adverse[{i}]",
            )
    return frozenset(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite_number(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _parse_rules(rules: Any) -> list[dict[str, Any]]:
    if not isinstance(rules, list):
        raise InvalidInput(
            'rules must be a list of objects like {"field": "age", "op": "<", "value": 18, '
            '"decision": "reject", "reason": "under 18"}',
            field="rules",
        )
    out = []
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        if not isinstance(rule, Mapping):
            raise InvalidInput(
                f"{where} must be an object with field, op, value, decision and reason",
                field=where,
            )
        extra = [k for k in rule if k not in _RULE_KEYS]
        if extra:
            raise InvalidInput(
                f"{where} has unknown field {extra[0]!r}; a rule has {', '.join(_RULE_KEYS)}",
                field=f"{where}.{extra[0]}",
            )
        field = rule.get("field")
        if not isinstance(field, str) or not field:
            raise InvalidInput(
                f"{where}.field must name a request field, got {field!r}", field=f"{where}.field"
            )
        op = rule.get("op")
        if op not in OPS:
            raise InvalidInput(
                f"{where}.op must be one of {' '.join(OPS)}, got {op!r}", field=f"{where}.op"
            )
        value = _rule_value(op, rule, where)
        decision = _decision_name(rule.get("decision"), f"{where}.decision")
        reason = rule.get("reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 300:
            raise InvalidInput(
                f"{where}.reason must be a short text for the applicant (1 to 300 characters), "
                f"e.g. 'applicants must be 18 or older'; got {reason!r}",
                field=f"{where}.reason",
            )
        entry: dict[str, Any] = {"field": field, "op": op}
        if value is not None:
            entry["value"] = value
        entry.update(decision=decision, reason=reason)
        out.append(entry)
    return out


def _rule_value(op: str, rule: Mapping[str, Any], where: str) -> Any:
    field = f"{where}.value"
    value = rule.get("value")
    if op == "is_missing":
        if "value" in rule and not isinstance(value, bool):
            raise InvalidInput(
                f"{field}: is_missing takes no value, or true / false (false: the field "
                f"is present); got {value!r}",
                field=field,
            )
        return value
    if "value" not in rule:
        raise InvalidInput(f"{where} needs a value to compare with ({op})", field=field)
    if op in ("<", "<=", ">", ">="):
        if not _finite_number(value):
            raise InvalidInput(
                f"{field} must be a finite number for {op!r}, got {value!r}", field=field
            )
        return value
    if op in ("==", "!="):
        ok = isinstance(value, str | bool) or _finite_number(value)
        if not ok:
            raise InvalidInput(
                f"{field} must be a number, a string or a boolean for {op!r}, got {value!r}",
                field=field,
            )
        return value
    if not isinstance(value, list) or not value or len(value) > _MAX_LIST:
        raise InvalidInput(
            f"{field} must be a non-empty list (at most {_MAX_LIST} items) for {op!r}, "
            f"got {value!r}",
            field=field,
        )
    for j, item in enumerate(value):
        ok = isinstance(item, str | bool) or _finite_number(item)
        if not ok:
            raise InvalidInput(
                f"{field}[{j}] must be a string, a number or a boolean, got {item!r}",
                field=f"{field}[{j}]",
            )
    return value


# ---------------------------------------------------------------- compiling


def _number(v: Any) -> float:
    return v if type(v) is float else to_float(v)


def _compile_test(op: str, value: Any) -> Test:
    """A closure ``value_in_record -> bool`` for one rule."""
    if op == "is_missing":
        want = value is not False

        def is_missing(v: Any) -> bool:
            return (category_key(v) is None) is want

        return is_missing
    if op in ("in", "not_in"):
        keys = frozenset(category_key(item) for item in value)
        inside = op == "in"

        def member(v: Any) -> bool:
            k = v if type(v) is str else category_key(v)
            return k is not None and (k in keys) is inside

        return member
    if op in ("==", "!=") and not _is_number(value):
        key = category_key(value)
        equal = op == "=="

        def same_key(v: Any) -> bool:
            k = v if type(v) is str else category_key(v)
            return k is not None and (k == key) is equal

        return same_key
    c = float(value)
    if op == "<":
        return lambda v: _number(v) < c
    if op == "<=":
        return lambda v: _number(v) <= c
    if op == ">":
        return lambda v: _number(v) > c
    if op == ">=":
        return lambda v: _number(v) >= c
    if op == "==":
        return lambda v: _number(v) == c

    def differs(v: Any) -> bool:
        x = _number(v)
        return x == x and x != c  # a missing value (NaN) matches nothing

    return differs
