"""Checking the JSON spec of a decision policy, field by field.

:func:`parse_spec` refuses a spec at its first faulty field with an
:class:`~leptonic.errors.InvalidInput` whose ``field`` is the dotted path
(e.g. ``bands[1].max``) and says how to fix it; otherwise it returns the spec
normalised, defaults filled in, for
:class:`~leptonic.serving.policy.DecisionPolicy` to compile. The spec itself
is described in :mod:`leptonic.serving.policy`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from leptonic.core._numbers import as_float
from leptonic.errors import InvalidInput
from leptonic.evaluation.scorecard import Scorecard
from leptonic.serving.policy_rules import OPS, rule_value

__all__ = ["PolicySpec", "parse_spec"]

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
_SCALING_DEFAULTS = {"pdo": 20.0, "base_score": 600.0, "base_odds": 50.0}


class PolicySpec(NamedTuple):
    """A checked policy spec, defaults filled in: the attributes of a ``DecisionPolicy``."""

    score: str
    pdo: float | None
    base_score: float | None
    base_odds: float | None
    factor: float | None
    offset: float | None
    bands: tuple[tuple[str, float | None], ...]
    rules: tuple[dict[str, Any], ...]
    reasons: int
    decisions: tuple[str, ...]
    adverse: frozenset[str]
    description: str
    tree_reasons: str


def parse_spec(spec: Mapping[str, Any]) -> PolicySpec:
    """Check ``spec`` (see :mod:`leptonic.serving.policy`) and normalise it.

    Raises
    ------
    InvalidInput
        Naming the first field at fault (``field`` is its dotted path) and
        how to fix it.
    """
    if not isinstance(spec, Mapping):
        raise InvalidInput(
            f"a decision policy must be a JSON object (a mapping), got {type(spec).__name__}",
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
    scaling = _parse_scaling(spec, score)
    bands = _parse_bands(spec.get("bands"), score)
    rules = tuple(_parse_rules(spec.get("rules", [])))
    reasons = _parse_reasons(spec.get("reasons", 4))
    band_names = [name for name, _ in bands]
    names = list(band_names)
    for rule in rules:
        if rule["decision"] not in names:
            names.append(rule["decision"])
    decisions = tuple(names)
    adverse = _parse_adverse(spec.get("adverse"), decisions, band_names[0])
    description = spec.get("description", "")
    if not isinstance(description, str) or len(description) > 2000:
        raise InvalidInput(
            "description must be a string of at most 2000 characters", field="description"
        )
    tree_reasons = spec.get("tree_reasons", "shap")
    if tree_reasons not in ("shap", "path"):
        raise InvalidInput(
            f"tree_reasons must be 'shap' (TreeSHAP, exact Shapley values) or 'path' "
            f"(path attributions, about ten times faster), got {tree_reasons!r}",
            field="tree_reasons",
        )
    return PolicySpec(
        score,
        *scaling,
        bands,
        rules,
        reasons,
        decisions,
        adverse,
        description,
        tree_reasons,
    )


def _parse_scaling(
    spec: Mapping[str, Any], score: str
) -> tuple[float | None, float | None, float | None, float | None, float | None]:
    """``(pdo, base_score, base_odds, factor, offset)``; all ``None`` for probabilities."""
    given = {k: spec[k] for k in _SCALING_DEFAULTS if k in spec}
    if score == "probability":
        if given:
            name = next(iter(given))
            raise InvalidInput(
                f"{name} scales scorecard points; it applies only with score 'points' "
                "(remove it, or set score to 'points')",
                field=name,
            )
        return None, None, None, None, None
    for name, value in given.items():
        if isinstance(value, bool):
            raise InvalidInput(f"{name} must be a number, got {value!r}", field=name)
    scaling = {**_SCALING_DEFAULTS, **given}
    # The scaling of the training report's scorecard, validated and derived there.
    card = Scorecard({"score": 0.0}, 0.0, {"score": [{"label": "all", "woe": 0.0}]}, **scaling)
    return card.pdo, card.base_score, card.base_odds, card.factor, card.offset


def _parse_bands(bands: Any, score: str) -> tuple[tuple[str, float | None], ...]:
    if not isinstance(bands, list) or not bands:
        raise InvalidInput(
            "bands must be a non-empty list, most favourable first, e.g. "
            '[{"decision": "approve", "max": 0.1}, {"decision": "reject"}]',
            field="bands",
        )
    key, other = ("max", "min") if score == "probability" else ("min", "max")
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
                    f"{where} has {other!r} but this is a {score} policy: {why}; use {key!r}",
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
        edge = as_float(edge)
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
        value = rule_value(op, rule, where)
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
