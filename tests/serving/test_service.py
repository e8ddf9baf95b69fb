"""Endpoint management: traffic (canary, promote, rollback, shadow), policy
versions, checks on every change, recalibration by bad rate and batch decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from leptonic import TrainSpec
from leptonic.core.endpoint import Prediction
from leptonic.core.uri import ObjectRef
from leptonic.errors import Conflict, InvalidInput, NotFound, StoreError
from leptonic.serving.host import EndpointHost
from serving.conftest import FAST, Deployed


def test_traffic_changes_are_checked_and_audited(deployed: Deployed) -> None:
    lp = deployed.platform.as_user("boss")
    model, version = deployed.logistic
    gbm, gbm_version = deployed.lightgbm
    eps = lp.endpoints
    eps.create("credit", "traffic", model, version, entity_key="applicant_id")
    with pytest.raises(InvalidInput):
        eps.canary("credit", "traffic", gbm, gbm_version, 150, reason="too much")
    with pytest.raises(Conflict):
        eps.canary("credit", "traffic", model, version, 10, reason="itself")
    with pytest.raises(NotFound):
        eps.canary("credit", "traffic", gbm, 99, 10, reason="no such version")
    with pytest.raises(InvalidInput, match="reason"):
        eps.canary("credit", "traffic", gbm, gbm_version, 10, reason=" ")
    endpoint_ref = ObjectRef("credit", "endpoint", "traffic")
    upstream = lp.metadata.lineage(endpoint_ref, "upstream")
    assert ObjectRef("credit", "model", gbm, 99) not in upstream  # a refused split left none
    ep = eps.canary("credit", "traffic", gbm, gbm_version, 10, reason="try gbm")
    assert [(r.model, r.percent) for r in ep.routes] == [(model, 90.0), (gbm, 10.0)]
    upstream = lp.metadata.lineage(endpoint_ref, "upstream")
    assert ObjectRef("credit", "model", gbm, gbm_version) in upstream
    ep = eps.promote("credit", "traffic", reason="gbm is better")
    assert [(r.model, r.version, r.percent) for r in ep.routes] == [(gbm, gbm_version, 100.0)]
    with pytest.raises(Conflict):
        eps.promote("credit", "traffic", reason="nothing to promote")
    ep = eps.rollback("credit", "traffic", reason="undo the promotion")
    assert [(r.model, r.version, r.percent) for r in ep.routes] == [(model, version, 100.0)]
    actions = [e.action for e in lp.audit_log(workspace="credit", limit=20)]
    assert actions[:3] == ["endpoint.rollback", "endpoint.promote", "endpoint.canary"]
    assert ep.revision == 4


def test_a_shadow_is_logged_but_never_answers(deployed: Deployed) -> None:
    lp = deployed.platform.as_user("boss")
    model, version = deployed.logistic
    gbm, gbm_version = deployed.lightgbm
    lp.endpoints.create("credit", "shadowed", model, version)
    with pytest.raises(InvalidInput):
        lp.endpoints.set_shadow("credit", "shadowed", model, version, reason="live already")
    lp.endpoints.set_shadow("credit", "shadowed", gbm, gbm_version, reason="compare")
    host = EndpointHost(lp.metadata, lp.registry, "credit", "shadowed", reload_interval=0)
    try:
        runtime = host.runtime
        for record in deployed.records(20):
            request = orjson.dumps({k: v for k, v in record.items() if k != "applicant_id"})
            body, parsed = runtime.decide_json(request)
            answer = orjson.loads(body)
            assert answer["model"] == model
            runtime.score_shadow(parsed, answer["request_id"])
    finally:
        host.close()
    live = lp.metadata.list_predictions("credit", "shadowed", route="live", limit=None)
    shadow = lp.metadata.list_predictions("credit", "shadowed", route="shadow", limit=None)
    assert len(live) == len(shadow) == 20
    assert {p.model for p in shadow} == {gbm}
    assert {p.request_id for p in live} == {p.request_id for p in shadow}


def test_policies_are_versioned_and_checked(deployed: Deployed) -> None:
    lp = deployed.platform.as_user("boss")
    model, version = deployed.logistic
    lp.endpoints.create("credit", "policies", model, version)
    spec = {
        "bands": [{"decision": "accept", "max": 0.2}, {"decision": "refer"}],
        "rules": [{"field": "age", "op": "<", "value": 21, "decision": "refer", "reason": "young"}],
    }
    stored = lp.endpoints.set_policy("credit", "policies", spec, reason="simpler bands")
    assert stored.version == 2 and lp.endpoints.get("credit", "policies").policy_version == 2
    bad = {**spec, "rules": [{**spec["rules"][0], "field": "shoe_size"}]}
    with pytest.raises(InvalidInput) as info:
        lp.endpoints.set_policy("credit", "policies", bad, reason="bad field")
    assert info.value.field == "rules[0].field"
    with pytest.raises(InvalidInput):
        lp.endpoints.set_policy("credit", "policies", {"bands": "nope"}, reason="bad")
    assert [p.version for p in lp.endpoints.policies("credit", "policies")] == [1, 2]


def test_recalibration_to_a_bad_rate(deployed: Deployed) -> None:
    lp = deployed.platform.as_user("boss")
    model, version = deployed.logistic
    lp.endpoints.create("credit", "calibrate", model, version)
    host = EndpointHost(lp.metadata, lp.registry, "credit", "calibrate", reload_interval=0)
    answers = []
    try:
        for record in deployed.records(800):
            body = {k: v for k, v in record.items() if k != "applicant_id"}
            answers.append(host.runtime.decide(body))
    finally:
        host.close()
    labels = [r["default"] for r in deployed.rows[:800]]
    lp.endpoints.feedback(
        "credit",
        "calibrate",
        [{"request_id": a["request_id"], "label": y} for a, y in zip(answers, labels, strict=True)],
    )
    with pytest.raises(InvalidInput):
        lp.endpoints.recalibrate("credit", "calibrate", reason="no target")
    policy = lp.endpoints.recalibrate(
        "credit", "calibrate", target_bad_rate=0.08, reason="risk appetite"
    )
    edge = policy.spec["bands"][0]["max"]
    approved = [y for a, y in zip(answers, labels, strict=True) if a["score"] < edge]
    assert approved and sum(approved) / len(approved) <= 0.08
    assert "recalibrated" in policy.reason


def test_batch_decisions_use_the_policy(deployed: Deployed) -> None:
    lp = deployed.platform.as_user("boss")
    model, version = deployed.lightgbm
    lp.endpoints.create("credit", "batch", model, version)
    decided, created = lp.endpoints.decide_batch(
        "credit", "batch", "applicants", dataset_version=1, output="decided"
    )
    assert created and decided.num_rows == len(deployed.rows)
    table = pq.read_table(lp.artifacts.local_path(decided.artifact_key))
    assert {"applicant_id", "score", "decision", "reasons", "policy_version"} <= set(
        table.column_names
    )
    assert "full_name" not in table.column_names and "email" not in table.column_names
    decisions = set(table.column("decision").to_pylist())
    assert decisions <= {"approve", "review", "reject"} and len(decisions) >= 2
    runtime = EndpointHost(lp.metadata, lp.registry, "credit", "batch", reload_interval=0)
    try:
        record = {k: deployed.rows[0][k] for k in deployed.inputs}
        one = runtime.runtime.decide(record)
    finally:
        runtime.close()
    first = table.slice(0, 1).to_pylist()[0]
    assert first["decision"] == one["decision"]
    assert first["score"] == pytest.approx(one["score"], abs=1e-9)


def test_prune_deletes_old_predictions_and_their_outcomes(deployed: Deployed) -> None:
    lp = deployed.platform
    lp.endpoints.create("credit", "retained", *deployed.logistic)
    now = datetime.now(UTC)
    ages = {"r-old": 100, "r-month": 29, "r-new": 0}
    lp.metadata.append_predictions(
        [
            Prediction(
                workspace="credit",
                endpoint="retained",
                request_id=rid,
                model=deployed.logistic[0],
                version=deployed.logistic[1],
                score=0.2,
                decision="approve",
                at=now - timedelta(days=days),
            )
            for rid, days in ages.items()
        ]
    )
    lp.endpoints.feedback("credit", "retained", [{"request_id": "r-old", "label": 1}])
    assert lp.endpoints.prune("credit", "retained", older_than_days=30, reason="90-day") == 1
    left = lp.endpoints.predictions("credit", "retained")
    assert sorted(p.request_id for p in left) == ["r-month", "r-new"]
    assert lp.metadata.labelled_predictions("credit", "retained") == []
    (event,) = lp.audit_log(workspace="credit", action="endpoint.prune", limit=1)
    assert event.details["deleted"] == 1 and event.details["reason"] == "90-day"
    assert event.objects[0] == "leptonic://credit/endpoint/retained"
    for days in (0, -1, "30", True, float("inf"), float("nan"), 1e9):
        with pytest.raises(InvalidInput) as info:
            lp.endpoints.prune("credit", "retained", older_than_days=days, reason="bad")  # type: ignore[arg-type]
        assert info.value.field == "older_than_days"
    with pytest.raises(InvalidInput):
        lp.endpoints.prune("credit", "retained", older_than_days=1, reason=" ")
    with pytest.raises(NotFound):
        lp.endpoints.prune("credit", "nope", older_than_days=1, reason="gone")
    assert lp.endpoints.prune("credit", "retained", older_than_days=1, reason="again") == 1


def test_a_prune_that_fails_part_way_is_audited(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    lp = deployed.platform
    lp.endpoints.create("credit", "half-pruned", *deployed.logistic)

    def broken(*args: object, **kwargs: object) -> int:
        raise StoreError("the database went away")

    monkeypatch.setattr(lp.metadata, "delete_predictions", broken)
    with pytest.raises(StoreError, match="went away"):
        lp.endpoints.prune("credit", "half-pruned", older_than_days=30, reason="retention")
    (event,) = lp.audit_log(workspace="credit", action="endpoint.prune", limit=1)
    assert event.objects[0] == "leptonic://credit/endpoint/half-pruned"
    assert "the database went away" in event.details["error"] and "again" in event.details["error"]


def test_an_outcome_follows_its_decision_at_once_with_a_writer_process(
    deployed: Deployed,
) -> None:
    from leptonic.serving.app import EndpointApp
    from leptonic.serving.feedback import parse_feedback

    lp = deployed.platform.as_user("boss")
    lp.endpoints.create("credit", "piped", *deployed.logistic, entity_key="applicant_id")
    host = EndpointHost(
        lp.metadata, lp.registry, "credit", "piped", reload_interval=0, separate_writer=True
    )
    app = EndpointApp(host)
    try:
        assert host._shipper is not None  # decisions are written by a child process
        for record in deployed.records(20):
            rid = host.runtime.decide(record)["request_id"]
            outcome = parse_feedback({"request_id": rid, "label": 1})
            (stored,) = app._record_feedback("boss", outcome)
            assert stored.request_id == rid
    finally:
        host.close()


@pytest.fixture(scope="module")
def without_age(deployed: Deployed) -> tuple[str, int]:
    """A logistic model that does not take ``age``."""
    spec = TrainSpec(candidates=("logistic",), exclude=("age",), **FAST)  # type: ignore[arg-type]
    outcome = deployed.platform.train("credit", "applicants", spec, model_name="risk-noage")
    assert outcome.model_version is not None
    return outcome.model_version.model, outcome.model_version.version


def test_serving_a_version_keeps_the_policy_rules_and_shadow_meaningful(
    deployed: Deployed, without_age: tuple[str, int]
) -> None:
    lp = deployed.platform.as_user("boss")
    model, version = deployed.logistic
    rules = [{"field": "age", "op": "is_missing", "decision": "review", "reason": "no age"}]
    policy = {"bands": [{"decision": "approve", "max": 0.3}, {"decision": "reject"}]}
    lp.endpoints.create("credit", "ruled", model, version, policy={**policy, "rules": rules})
    # the rule names a field requests would no longer carry: refused, as set_policy does
    with pytest.raises(InvalidInput, match="age"):
        lp.endpoints.deploy("credit", "ruled", *without_age, reason="fewer inputs")
    assert lp.endpoints.get("credit", "ruled").routes[0].model == model
    # a shadow needing a field the live version does not take would fail every request
    lp.endpoints.create("credit", "lean", *without_age)
    with pytest.raises(InvalidInput, match="needs field") as info:
        lp.endpoints.set_shadow("credit", "lean", model, version, reason="compare")
    assert info.value.field == "model" and lp.endpoints.get("credit", "lean").shadow is None
    # and serving a version without a field the shadow needs is refused the same way
    lp.endpoints.create("credit", "wide", model, version)
    lp.endpoints.set_shadow("credit", "wide", *deployed.lightgbm, reason="compare")
    with pytest.raises(InvalidInput, match="needs field"):
        lp.endpoints.deploy("credit", "wide", *without_age, reason="fewer inputs")


def test_rollback_undoes_the_endpoints_own_last_promotion_only(deployed: Deployed) -> None:
    lp = deployed.platform.as_user("boss")
    model, version = deployed.logistic
    gbm, gbm_version = deployed.lightgbm
    lp.endpoints.create("credit", "roll-a", model, version)
    lp.endpoints.deploy("credit", "roll-a", gbm, gbm_version, reason="gbm")
    lp.endpoints.create("credit", "roll-b", model, version)
    for i in range(25):  # another endpoint's promotions come later in the audit log
        target = (gbm, gbm_version) if i % 2 == 0 else (model, version)
        lp.endpoints.deploy("credit", "roll-b", *target, reason=f"flip {i}")
    ep = lp.endpoints.rollback("credit", "roll-a", reason="undo")
    assert [(r.model, r.version) for r in ep.routes] == [(model, version)]
    # the last change was that rollback, not a promotion: nothing more to undo
    with pytest.raises(Conflict, match="not a promotion"):
        lp.endpoints.rollback("credit", "roll-a", reason="again")


def test_a_canary_changed_meanwhile_is_a_conflict_not_a_lost_update(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    lp = deployed.platform.as_user("boss")
    model, version = deployed.logistic
    gbm, gbm_version = deployed.lightgbm
    lp.endpoints.create("credit", "raced", model, version)
    real = type(lp.endpoints)._refuse_single

    def another_operator_deploys(self: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        monkeypatch.setattr(type(lp.endpoints), "_refuse_single", real)
        lp.endpoints.deploy("credit", "raced", gbm, gbm_version, reason="operator B")

    monkeypatch.setattr(type(lp.endpoints), "_refuse_single", another_operator_deploys)
    with pytest.raises(Conflict):
        lp.endpoints.canary("credit", "raced", gbm, gbm_version, 10, reason="A")
    assert [(r.model, r.percent) for r in lp.endpoints.get("credit", "raced").routes] == [
        (gbm, 100.0)
    ]


@pytest.mark.parametrize("percent", [0.004, "10", None, [10], True])
def test_a_canary_share_must_be_a_number_the_split_can_route(
    deployed: Deployed, percent: Any
) -> None:
    lp = deployed.platform.as_user("boss")
    lp.endpoints.create("credit", f"tiny-{abs(hash(str(percent)))}", *deployed.logistic)
    with pytest.raises(InvalidInput, match="percent") as info:
        lp.endpoints.canary(
            "credit", f"tiny-{abs(hash(str(percent)))}", *deployed.lightgbm, percent, reason="x"
        )
    assert info.value.field == "percent"


@pytest.mark.parametrize("spec", [[1], "bands"])
def test_a_policy_that_is_no_mapping_is_refused_clearly(deployed: Deployed, spec: Any) -> None:
    lp = deployed.platform.as_user("boss")
    with pytest.raises(InvalidInput, match="mapping") as info:
        lp.endpoints.create("credit", "badpolicy", *deployed.logistic, policy=spec)
    assert info.value.field == "policy"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"last": -50}, "last"), ({"last": "300"}, "last"), ({"since": "2024-01-01"}, "since")],
)
def test_recalibration_checks_its_window(
    deployed: Deployed, kwargs: dict[str, Any], field: str
) -> None:
    lp = deployed.platform.as_user("boss")
    if "recal-window" not in {e.name for e in lp.endpoints.list_endpoints("credit")}:
        lp.endpoints.create("credit", "recal-window", *deployed.logistic)
    with pytest.raises(InvalidInput) as info:
        lp.endpoints.recalibrate(
            "credit", "recal-window", target_bad_rate=0.05, reason="x", **kwargs
        )
    assert info.value.field == field


def test_a_recalibration_does_not_overwrite_a_policy_set_meanwhile(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leptonic.serving import adjust

    lp = deployed.platform.as_user("boss")
    lp.endpoints.create("credit", "recal-race", *deployed.logistic)
    spec = {"bands": [{"decision": "approve", "max": 0.2}, {"decision": "reject"}]}
    real = adjust.thresholds_for_approval_rate

    def and_meanwhile(*args: Any, **kwargs: Any) -> Any:
        lp.endpoints.set_policy("credit", "recal-race", spec, reason="operator B")
        return real(*args, **kwargs)

    monkeypatch.setattr(adjust, "thresholds_for_approval_rate", and_meanwhile)
    host = EndpointHost(lp.metadata, lp.registry, "credit", "recal-race", reload_interval=0)
    try:
        for record in deployed.records(150):
            host.runtime.decide({k: v for k, v in record.items() if k != "applicant_id"})
    finally:
        host.close()
    with pytest.raises(Conflict, match="now runs policy version 2"):
        lp.endpoints.recalibrate("credit", "recal-race", target_approval_rate=0.5, reason="A")
    assert lp.endpoints.policy("credit", "recal-race").reason == "operator B"


@pytest.mark.parametrize("kind", ["recommendation", "text-classification"])
@pytest.mark.parametrize("spec", [[{"k": 5}], "k=5", 5])
def test_a_served_policy_that_is_no_object_is_refused_clearly(kind: str, spec: Any) -> None:
    from leptonic.serving.service import _served_policy

    with pytest.raises(InvalidInput, match="must be a JSON object") as info:
        _served_policy(kind, spec)
    assert info.value.field == "policy"


@pytest.mark.parametrize("percent", [150, 0, -5, 100, "10"])
def test_a_retrain_checks_its_canary_percent_before_training(percent: Any) -> None:
    from types import SimpleNamespace

    from leptonic.serving.service import EndpointService

    def train(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("trained before the canary percent was checked")

    service = EndpointService(SimpleNamespace(metadata=None, train=train))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=r"a canary takes from 0\.01 to 99\.99 percent") as info:
        service.retrain("credit", "ep", canary_percent=percent, reason="drift")
    assert info.value.field == "canary_percent"
