from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from leptonic.errors import InvalidInput
from leptonic.evaluation.scorecard import Scorecard
from leptonic.serving.policy import Decision, DecisionPolicy, default_policy

SPEC: dict[str, Any] = {
    "score": "probability",
    "bands": [
        {"decision": "approve", "max": 0.1},
        {"decision": "review", "max": 0.3},
        {"decision": "reject"},
    ],
    "rules": [
        {"field": "age", "op": "<", "value": 18, "decision": "reject", "reason": "under 18"},
        {
            "field": "country",
            "op": "in",
            "value": ["XX", "YY"],
            "decision": "refer",
            "reason": "country needs a manual check",
        },
    ],
}

POINTS: dict[str, Any] = {
    "score": "points",
    "pdo": 20,
    "base_score": 600,
    "base_odds": 1,  # 600 points at odds 1:1, i.e. exactly P(bad) = 0.5
    "bands": [
        {"decision": "approve", "min": 600},
        {"decision": "review", "min": 560},
        {"decision": "reject"},
    ],
}


def _with(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``spec`` with ``path`` ("bands.1.max") set (or deleted if value is ...)."""
    out = copy.deepcopy(spec)
    *parents, last = path.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    key: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return out


# -- validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("score", "odds", "score", "'probability'"),
        ("bands", [], "bands", "non-empty list"),
        ("bands.0", "approve", "bands[0]", "must be an object"),
        ("bands.1.max", 0.05, "bands[1].max", "must be above bands[0].max"),
        ("bands.1.max", 0.1, "bands[1].max", "must be above"),
        ("bands.1.max", 1.5, "bands[1].max", "(0, 1]"),
        ("bands.0.max", "0.1", "bands[0].max", "must be a number"),
        ("bands.0.max", True, "bands[0].max", "must be a number"),
        ("bands.1.max", ..., "bands[1].max", "needs a 'max'"),
        ("bands.2.max", 0.9, "bands[2].max", "last band"),
        ("bands.1.min", 0.2, "bands[1].min", "use 'max'"),
        ("bands.1.colour", "red", "bands[1].colour", "unknown field"),
        ("bands.1.decision", "approve", "bands[1].decision", "bands[0] already"),
        ("bands.1.decision", "send to review", "bands[1].decision", "decision name"),
        ("bands.1.decision", ..., "bands[1].decision", "decision name"),
        ("rules", {"field": "age"}, "rules", "must be a list"),
        ("rules.0.op", "~", "rules[0].op", "one of <"),
        ("rules.0.field", "", "rules[0].field", "request field"),
        ("rules.0.value", "eighteen", "rules[0].value", "finite number"),
        ("rules.0.value", math.inf, "rules[0].value", "finite number"),
        ("rules.0.value", ..., "rules[0].value", "needs a value"),
        ("rules.0.reason", "", "rules[0].reason", "short text"),
        ("rules.0.decision", "1st", "rules[0].decision", "decision name"),
        ("rules.0.why", "x", "rules[0].why", "unknown field"),
        ("rules.1.value", [], "rules[1].value", "non-empty list"),
        ("rules.1.value", ["XX", None], "rules[1].value[1]", "string, a number"),
        ("reasons", 21, "reasons", "from 0 to 20"),
        ("reasons", 2.0, "reasons", "integer"),
        ("adverse", ["reject", "decline"], "adverse[1]", "no band or rule decides"),
        ("adverse", "reject", "adverse", "list of decision names"),
        ("pdo", 20, "pdo", "only with score 'points'"),
        ("band", [], "band", "unknown policy field"),
        ("description", 3, "description", "string"),
    ],
)
def test_validation_errors_name_the_field(path: str, value: Any, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        DecisionPolicy.from_spec(_with(SPEC, path, value))
    assert info.value.field == field
    assert words in info.value.message


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("bands.1.min", 600, "bands[1].min", "below bands[0].min"),
        ("bands.1.min", math.nan, "bands[1].min", "finite number"),
        ("bands.1.max", 500, "bands[1].max", "use 'min'"),
        ("pdo", 0, "pdo", "positive"),
        ("base_odds", -1, "base_odds", "positive"),
        ("base_score", True, "base_score", "number"),
    ],
)
def test_points_validation(path: str, value: Any, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        DecisionPolicy.from_spec(_with(POINTS, path, value))
    assert info.value.field == field
    assert words in info.value.message


def test_is_missing_takes_a_boolean_value_at_most() -> None:
    rule = {"field": "x", "op": "is_missing", "value": 1, "decision": "review", "reason": "r"}
    with pytest.raises(InvalidInput) as info:
        DecisionPolicy.from_spec({**SPEC, "rules": [rule]})
    assert info.value.field == "rules[0].value"


def test_not_a_mapping() -> None:
    with pytest.raises(InvalidInput) as info:
        DecisionPolicy.from_spec([1, 2])  # type: ignore[arg-type]
    assert info.value.field == "policy"


# -- bands ------------------------------------------------------------------------


def test_probability_bands_at_their_edges() -> None:
    policy = DecisionPolicy.from_spec({"bands": SPEC["bands"]})  # score defaults to probability
    decide = policy.decide
    assert decide({}, 0.0).decision == "approve"
    assert decide({}, 0.0999999).decision == "approve"
    assert decide({}, 0.1).decision == "review"  # a score equal to max falls to the next band
    assert decide({}, 0.2999999).decision == "review"
    assert decide({}, 0.3).decision == "reject"
    assert decide({}, 1.0).decision == "reject"
    assert [decide({}, p).band for p in (0.05, 0.1, 0.5)] == [0, 1, 2]
    # shared immutable outcomes: no allocation per call
    assert decide({}, 0.01) is decide({}, 0.02)
    assert decide({}, 0.5).rule is None and decide({}, 0.5).points is None


@pytest.mark.parametrize("bad", [-0.1, 1.1, math.nan])
def test_the_probability_must_be_in_the_unit_interval(bad: float) -> None:
    policy = DecisionPolicy.from_spec(SPEC)
    with pytest.raises(InvalidInput) as info:
        policy.decide({"age": 40}, bad)
    assert info.value.field == "probability"


def test_points_bands_take_the_points_at_or_above_their_min() -> None:
    policy = DecisionPolicy.from_spec(POINTS)
    at_600 = policy.decide({}, 0.5)  # logit 0: exactly base_score points
    assert at_600.points == 600.0
    assert at_600.decision == "approve"  # points equal to min stay in the band
    assert policy.decide({}, 0.5000001).decision == "review"
    assert policy.decide({}, 0.01).decision == "approve"
    assert policy.decide({}, 0.99).decision == "reject"
    assert policy.decide({}, 0.0).points == math.inf
    assert policy.decide({}, 1.0).decision == "reject"
    # 560 points: 40 points (two pdo) below 600, i.e. odds good:bad of 1:4, P(bad) = 0.8
    assert policy.to_score(0.8) == pytest.approx(560.0, abs=1e-9)
    assert policy.decide({}, 0.79).decision == "review"
    assert policy.decide({}, 0.81).decision == "reject"


def test_points_use_the_scorecard_scaling() -> None:
    spec = {
        **POINTS,
        "base_odds": 50,
        "bands": [{"decision": "approve", "min": 600}, {"decision": "no"}],
    }
    policy = DecisionPolicy.from_spec(spec)
    card = Scorecard.from_logistic(
        {"x": -1.0},
        0.0,
        {"x": [{"label": "all", "woe": 0.0}]},
        pdo=20,
        base_score=600,
        base_odds=50,
    )
    assert (policy.factor, policy.offset) == (card.factor, card.offset)
    for p in (0.01, 0.2, 0.7):
        assert card.probability_from_score(policy.to_score(p)) == pytest.approx(p, rel=1e-12)
    # a WoE row scores the same in the scorecard and through the policy
    woe = 0.4
    logit = -woe  # coefficient -1, intercept 0
    p = 1.0 / (1.0 + math.exp(-logit))
    assert policy.to_score(p) == pytest.approx(card.score_from_woe({"x": woe}), abs=1e-9)


# -- rules ------------------------------------------------------------------------


def _rule(op: str, value: Any = ..., field: str = "x") -> DecisionPolicy:
    rule: dict[str, Any] = {"field": field, "op": op, "decision": "refer", "reason": "rule hit"}
    if value is not ...:
        rule["value"] = value
    return DecisionPolicy.from_spec({"bands": [{"decision": "approve"}], "rules": [rule]})


def _hits(policy: DecisionPolicy, value: Any) -> bool:
    record = {} if value is ... else {"x": value}
    return policy.decide(record, 0.5).decision == "refer"


@pytest.mark.parametrize(
    ("op", "value", "hits", "misses"),
    [
        ("<", 18, [17, 17.9, "17", True], [18, 18.5, "18", None, ..., "abc", math.nan]),
        ("<=", 18, [18, "18.0"], [18.01, None]),
        (">", 0.9, [0.91, "1"], [0.9, None, "n/a"]),
        (">=", 0.9, [0.9], [0.89, math.nan]),
        ("==", 2, [2, 2.0, "2"], [3, None, "two"]),
        ("!=", 2, [3, "3.5"], [2, 2.0, None, ..., "two"]),
        ("==", "rent", ["rent"], ["Rent", None, ...]),
        ("!=", "rent", ["own", 3], ["rent", None]),
        ("==", True, [True, 1, 1.0, "1"], [False, 0, None]),
        ("in", ["a", 2], ["a", 2, 2.0, "2"], ["b", 3, None, ...]),
        ("not_in", ["a", 2], ["b", 3], ["a", 2.0, None, ...]),
        ("is_missing", ..., [None, math.nan, ...], [0, "", "x"]),
        ("is_missing", False, [0, "", "x"], [None, math.nan, ...]),
    ],
)
def test_rule_operators(op: str, value: Any, hits: list[Any], misses: list[Any]) -> None:
    policy = _rule(op, value)
    for v in hits:
        assert _hits(policy, v), (op, value, v)
    for v in misses:
        assert not _hits(policy, v), (op, value, v)


def test_the_first_matching_rule_decides_without_the_model() -> None:
    policy = DecisionPolicy.from_spec(SPEC)
    minor = policy.decide({"age": 16, "country": "XX"})  # no probability needed
    assert (minor.decision, minor.rule, minor.rule_field, minor.rule_index) == (
        "reject",
        "under 18",
        "age",
        0,
    )
    assert minor.band is None and minor.adverse
    foreign = policy.decide({"age": 30, "country": "YY"}, 0.01)
    assert (foreign.decision, foreign.rule_index) == ("refer", 1)
    assert policy.rule_for({"age": 30, "country": "FR"}) is None
    assert policy.rule_for({"age": "12"}) is minor
    with pytest.raises(InvalidInput, match="needs the model's probability") as info:
        policy.decide({"age": 30, "country": "FR"})
    assert info.value.field == "probability"
    assert policy.decide({"age": 30, "country": "FR"}, 0.05).decision == "approve"


def test_rule_hits_in_a_points_policy_carry_the_points() -> None:
    rule = {"field": "x", "op": "is_missing", "decision": "review", "reason": "x is missing"}
    policy = DecisionPolicy.from_spec({**POINTS, "rules": [rule]})
    hit = policy.decide({}, 0.5)
    assert (hit.decision, hit.rule, hit.points) == ("review", "x is missing", 600.0)
    assert policy.decide({}).points is None


# -- adverse, specs, changes ----------------------------------------------------


def test_adverse_defaults_to_every_decision_but_the_most_favourable_band() -> None:
    policy = DecisionPolicy.from_spec(SPEC)
    assert policy.decisions == ("approve", "review", "reject", "refer")
    assert policy.adverse == {"review", "reject", "refer"}
    assert policy.reasons == 4
    assert not policy.decide({"age": 30}, 0.01).adverse
    assert policy.decide({"age": 30}, 0.2).adverse
    chosen = DecisionPolicy.from_spec({**SPEC, "adverse": ["reject"], "reasons": 0})
    assert chosen.adverse == {"reject"} and chosen.reasons == 0
    assert not chosen.decide({"age": 30}, 0.2).adverse
    assert chosen.decide({"age": 30}, 0.9).adverse


def test_to_spec_round_trips_as_json() -> None:
    for spec in (SPEC, POINTS, {**SPEC, "description": "v2: tighter review band"}):
        policy = DecisionPolicy.from_spec(spec)
        out = policy.to_spec()
        again = DecisionPolicy.from_spec(json.loads(json.dumps(out, allow_nan=False)))
        assert again == policy
        assert again.to_spec() == out
    assert DecisionPolicy.from_spec(SPEC).to_spec()["adverse"] == ["review", "reject", "refer"]
    assert DecisionPolicy.from_spec(POINTS).to_spec()["pdo"] == 20.0
    assert "review<0.3" in repr(DecisionPolicy.from_spec(SPEC))


def test_with_thresholds_moves_band_edges() -> None:
    policy = DecisionPolicy.from_spec(SPEC)
    moved = policy.with_thresholds([0.05, 0.25])
    assert moved.bands == (("approve", 0.05), ("review", 0.25), ("reject", None))
    assert moved.rules == policy.rules and moved.adverse == policy.adverse
    assert policy.bands[0] == ("approve", 0.1)  # the original is unchanged
    assert policy.with_thresholds({"review": 0.4}).bands[1] == ("review", 0.4)
    with pytest.raises(InvalidInput) as info:
        policy.with_thresholds([0.2, 0.15])
    assert info.value.field == "bands[1].max"
    with pytest.raises(InvalidInput) as info:
        policy.with_thresholds({"reject": 0.5})
    assert info.value.field == "thresholds"
    with pytest.raises(InvalidInput) as info:
        policy.with_thresholds([0.2])
    assert info.value.field == "thresholds"
    points = DecisionPolicy.from_spec(POINTS).with_thresholds({"approve": 620})
    assert points.bands[0] == ("approve", 620) and points.score == "points"


def test_check_fields() -> None:
    policy = DecisionPolicy.from_spec(SPEC)
    policy.check_fields({"age", "country", "income"})
    with pytest.raises(InvalidInput) as info:
        policy.check_fields({"age", "income"})
    assert info.value.field == "rules[1].field"
    assert "income" in info.value.message


def test_default_policy_straddles_the_threshold() -> None:
    spec = default_policy(0.2)
    policy = DecisionPolicy.from_spec(spec)
    (_, low), (_, high), last = policy.bands
    assert low < 0.2 < high and last == ("reject", None)
    logit = math.log(0.2 / 0.8)
    assert math.log(low / (1 - low)) == pytest.approx(logit - 0.5, abs=1e-5)
    assert math.log(high / (1 - high)) == pytest.approx(logit + 0.5, abs=1e-5)
    assert policy.decide({}, 0.2).decision == "review"
    assert policy.adverse == {"review", "reject"}
    two = DecisionPolicy.from_spec(default_policy(0.3, review_width=0))
    assert two.bands == (("approve", 0.3), ("reject", None))
    assert two.decide({}, 0.3).decision == "reject"
    for bad, field in ((0.0, "threshold"), (1, "threshold"), (None, "threshold")):
        with pytest.raises(InvalidInput) as info:
            default_policy(bad)  # type: ignore[arg-type]
        assert info.value.field == field
    with pytest.raises(InvalidInput) as info:
        default_policy(0.2, review_width=-1)
    assert info.value.field == "review_width"


def test_decision_equality_and_dict() -> None:
    policy = DecisionPolicy.from_spec(SPEC)
    d = policy.decide({"age": 30}, 0.2)
    assert isinstance(d, Decision)
    assert d.to_dict() == {
        "adverse": True,
        "band": 1,
        "decision": "review",
        "points": None,
        "rule": None,
        "rule_field": None,
        "rule_index": None,
    }
    assert d == DecisionPolicy.from_spec(SPEC).decide({}, 0.25)
    assert "review" in repr(d)


def test_tree_reasons_method_is_part_of_the_spec() -> None:
    spec = {"bands": [{"decision": "yes", "max": 0.5}, {"decision": "no"}]}
    assert DecisionPolicy.from_spec(spec).to_spec()["tree_reasons"] == "shap"
    fast = DecisionPolicy.from_spec({**spec, "tree_reasons": "path"})
    assert fast.tree_reasons == "path" and DecisionPolicy.from_spec(fast.to_spec()) == fast
    with pytest.raises(InvalidInput) as info:
        DecisionPolicy.from_spec({**spec, "tree_reasons": "lime"})
    assert info.value.field == "tree_reasons"


_HUGE = 10**400  # a JSON integer beyond the float range


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"bands": [{"decision": "approve", "max": _HUGE}, {"decision": "reject"}]},
            "bands[0].max",
        ),
        (
            {"score": "points", "bands": [{"decision": "a", "min": _HUGE}, {"decision": "r"}]},
            "bands[0].min",
        ),
        (
            {
                "score": "points",
                "base_score": _HUGE,
                "bands": [{"decision": "a", "min": 500}, {"decision": "r"}],
            },
            "base_score",
        ),
        (
            {
                "bands": [{"decision": "a", "max": 0.1}, {"decision": "r"}],
                "rules": [
                    {"field": "age", "op": "<", "value": _HUGE, "decision": "r", "reason": "x"}
                ],
            },
            "rules[0].value",
        ),
        (
            {
                "bands": [{"decision": "a", "max": 0.1}, {"decision": "r"}],
                "rules": [
                    {"field": "age", "op": "in", "value": [_HUGE], "decision": "r", "reason": "x"}
                ],
            },
            "rules[0].value[0]",
        ),
    ],
)
def test_integers_beyond_the_float_range_are_refused(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        DecisionPolicy.from_spec(spec)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"min_confidence": _HUGE}, "policy.min_confidence"),
        ({"max_wait_ms": _HUGE}, "policy.max_wait_ms"),
        ({"max_wait_ms": math.nan}, "policy.max_wait_ms"),
    ],
)
def test_text_policies_refuse_numbers_beyond_floats(spec: dict[str, Any], field: str) -> None:
    from leptonic.serving.text import TextPolicy

    with pytest.raises(InvalidInput) as info:
        TextPolicy.from_spec(spec)
    assert info.value.field == field


def test_recommendation_weights_beyond_floats_are_refused() -> None:
    from leptonic.serving.recs_policy import RecsPolicy, weight_ok

    with pytest.raises(InvalidInput) as info:
        RecsPolicy.from_spec({"weights": {"interaction": _HUGE}})
    assert info.value.field == "weights"
    assert not weight_ok(_HUGE) and not weight_ok(math.nan) and weight_ok(3)
