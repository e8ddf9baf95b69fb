"""Every route's happy path, paging, and the shape of errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api._support import TRAIN, Server

W = "/workspaces/alpha"


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def test_workspaces(populated: Server) -> None:
    with populated.client("root") as c:
        page = c.get("/workspaces").json()
        assert [w["name"] for w in page["items"]] == ["alpha", "beta"]
        assert page == {**page, "limit": 50, "offset": 0, "next_offset": None}
        assert "pii_salt" not in page["items"][0]
        assert c.get(W).json()["name"] == "alpha"
        err = error_of(c.post("/workspaces", json={"name": "alpha"}), 409)
        assert err["code"] == "already_exists"
        err = error_of(c.post("/workspaces", json={"name": "Bad Name"}), 422)
        assert err["code"] == "invalid_name" and err["field"] == "workspace"
    with populated.client("vera") as c:
        assert [w["name"] for w in c.get("/workspaces").json()["items"]] == ["alpha"]
        assert error_of(c.post("/workspaces", json={"name": "x"}), 403)["code"] == (
            "permission_denied"
        )


def test_pagination(populated: Server) -> None:
    with populated.client("root") as c:
        for i in range(5):
            c.post("/workspaces", json={"name": f"ws-{i}"}).raise_for_status()
        first = c.get("/workspaces", params={"limit": 3}).json()
        assert len(first["items"]) == 3 and first["next_offset"] == 3
        rest = c.get("/workspaces", params={"limit": 3, "offset": 3}).json()
        assert len(rest["items"]) == 3 and rest["next_offset"] == 6
        last = c.get("/workspaces", params={"limit": 3, "offset": 6}).json()
        assert len(last["items"]) == 1 and last["next_offset"] is None
        names = [w["name"] for p in (first, rest, last) for w in p["items"]]
        assert len(set(names)) == 7
        audit = c.get("/audit", params={"limit": 2}).json()
        assert len(audit["items"]) == 2 and audit["next_offset"] == 2
        ids = [e["id"] for e in audit["items"]]
        assert ids == sorted(ids, reverse=True)
        for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "x"}):
            err = error_of(c.get("/workspaces", params=bad), 422)
            assert err["field"] == next(iter(bad)) and err["code"] == "invalid_input"


def test_datasets(populated: Server) -> None:
    with populated.client("ana") as c:
        assert [d["name"] for d in c.get(f"{W}/datasets").json()["items"]] == ["applicants"]
        versions = c.get(f"{W}/datasets/applicants/versions").json()["items"]
        assert [v["version"] for v in versions] == [1]
        v1 = c.get(f"{W}/datasets/applicants/versions/1").json()
        assert v1["num_rows"] == 600 and {"email", "phone"} <= set(v1["pii"])
        assert any(col["role"] == "target" for col in v1["columns"])
        assert v1["source"]["format"] == "csv"
        profile = c.get(f"{W}/datasets/applicants/profile").json()
        assert "columns" in profile
        masked = c.get(f"{W}/datasets/applicants/preview", params={"limit": 3}).json()
        raw = c.get(f"{W}/datasets/applicants/preview", params={"limit": 3, "raw": True}).json()
        assert masked["masked"] and not raw["masked"] and len(raw["rows"]) == 3
        assert "@" in raw["rows"][0]["email"] and "@" not in masked["rows"][0]["email"]
        err = error_of(c.get(f"{W}/datasets/nope/versions/1"), 404)
        assert err["code"] == "not_found"
        assert error_of(c.get(f"{W}/datasets/applicants/versions/0"), 422)["field"] == "version"
    with populated.client("vera") as c:
        err = error_of(c.get(f"{W}/datasets/applicants/preview", params={"raw": True}), 403)
        assert err["field"] == "raw"


def test_upload(populated: Server, applicants_csv: Path, tmp_path: Path) -> None:
    url = f"{W}/datasets/applicants/versions"
    with populated.client("dev") as c:
        again = c.post(url, params={"filename": "a.csv"}, content=applicants_csv.read_bytes())
        assert again.status_code == 200 and again.json()["created"] is False  # nothing new
        parquet = tmp_path / "small.parquet"
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]}), parquet)
        r = c.post(
            f"{W}/datasets/small/versions",
            params={"format": "parquet"},
            content=parquet.read_bytes(),
        )
        assert r.status_code == 201 and r.json()["version"]["num_rows"] == 3


@pytest.mark.parametrize(
    ("params", "content", "code", "field"),
    [
        ({"filename": "x.csv"}, b"", "invalid_input", "body"),
        ({}, b"a,b\n1,2\n", "invalid_input", "format"),
        ({"format": "parquet"}, b"not a parquet file at all", "data_error", None),
        ({"filename": "x.csv", "target": "nope"}, b"a,b\n1,2\n3,4\n", "target_error", None),
        ({"filename": "x.exe"}, b"a,b\n1,2\n", "data_error", "path"),
        ({"format": "xml"}, b"<a/>", "invalid_input", "fmt"),
    ],
)
def test_bad_uploads(
    server: Server, params: dict[str, str], content: bytes, code: str, field: str | None
) -> None:
    server.platform.create_workspace("alpha")
    server.add_user("dev", roles={"alpha": "developer"})
    with server.client("dev") as c:
        err = error_of(c.post(f"{W}/datasets/bad/versions", params=params, content=content), 422)
    assert err["code"] == code
    if field is not None:
        assert err["field"] == field
    assert server.platform.list_datasets("alpha") == []


def test_unknown_encoding_is_a_clear_422(server: Server) -> None:
    server.platform.create_workspace("alpha")
    with server.client("root") as c:
        r = c.post(
            f"{W}/datasets/bad/versions",
            params={"filename": "x.csv", "encoding": "no-such-codec"},
            content=b"a,b\n1,2\n",
        )
    assert error_of(r, 422)["field"] == "encoding"
    assert server.platform.list_datasets("alpha") == []


def test_upload_errors_name_the_uploaded_file_not_a_server_path(server: Server) -> None:
    server.platform.create_workspace("alpha")
    with server.client("root") as c:
        r = c.post(f"{W}/datasets/bad/versions", params={"filename": "mine.csv"}, content=b"a,b\n")
    message = error_of(r, 422)["message"]
    assert "mine.csv" in message and "leptonic-upload-" not in message, message


def test_scores_cannot_overwrite_their_input(populated: Server) -> None:
    url = f"{W}/models/scorecard/versions/1/score"
    with populated.client("dev") as c:
        r = c.post(url, json={"dataset": "applicants", "output": "applicants"})
        assert error_of(r, 422)["field"] == "output"
        assert len(c.get(f"{W}/datasets/applicants/versions").json()["items"]) == 1


def test_upload_too_large(make_server: Any) -> None:
    server = make_server(max_upload_bytes=100)
    server.platform.create_workspace("alpha")
    with server.client("root") as c:
        r = c.post(f"{W}/datasets/d/versions?filename=d.csv", content=b"a,b\n" + b"1,2\n" * 100)
        assert error_of(r, 413)["code"] == "payload_too_large"

        def chunks() -> Any:  # no Content-Length: the limit holds while streaming
            yield from [b"a,b\n"] + [b"1,2\n"] * 100

        r = c.post(f"{W}/datasets/d/versions?filename=d.csv", content=chunks())
        assert error_of(r, 413)["code"] == "payload_too_large"
    assert server.platform.list_datasets("alpha") == []


def test_runs_and_jobs(populated: Server) -> None:
    run_id = populated.ids["run"]
    with populated.client("vera") as c:
        page = c.get(f"{W}/runs").json()
        assert [r["id"] for r in page["items"]] == [run_id]
        assert c.get(f"{W}/runs", params={"status": "failed"}).json()["items"] == []
        assert error_of(c.get(f"{W}/runs", params={"status": "weird"}), 422)["field"] == "status"
        run = c.get(f"{W}/runs/{run_id[:10]}").json()
        assert run["id"] == run_id and run["status"] == "succeeded"
        assert "report.html" in run["artifacts"] and run["metrics"]["test"]["auc"] > 0.5
        report = c.get(f"{W}/runs/{run_id}/report")
        assert report.headers["content-type"].startswith("text/html") and "<html" in report.text
        log = c.get(f"{W}/runs/{run_id}/log")
        assert log.headers["content-type"].startswith("text/plain") and "done" in log.text
        progress = c.get(f"{W}/runs/{run_id}/progress").json()
        assert progress["status"] == "succeeded" and progress["done"] == progress["total"] == 2
        assert progress["log"]
        jobs = c.get(f"{W}/jobs").json()["items"]
        assert [j["id"] for j in jobs] == [populated.ids["job"]]
        job = c.get(f"{W}/jobs/{populated.ids['job']}").json()
        assert job["result"]["model_version"] == 1 and job["created_by"] == "root"
        assert error_of(c.get(f"{W}/runs/{'0' * 32}"), 404)["code"] == "not_found"
    with populated.client("dev") as c:
        err = error_of(c.post(f"{W}/runs/{run_id}/cancel"), 409)
        assert err["code"] == "conflict"
        bad = {"dataset": "applicants", "spec": {**TRAIN, "trials": 0}}
        err = error_of(c.post(f"{W}/runs", json=bad), 422)
        assert err["field"] == "spec.trials" and "trials" in err["message"]
        bad = {"dataset": "applicants", "spec": {**TRAIN, "colour": "red"}}
        assert error_of(c.post(f"{W}/runs", json=bad), 422)["field"] == "spec.colour"
        missing = {"dataset": "nope", "spec": TRAIN}
        assert error_of(c.post(f"{W}/runs", json=missing), 404)["code"] == "not_found"


def test_models(populated: Server) -> None:
    url = f"{W}/models/scorecard/versions/1"
    with populated.client("vera") as c:
        assert [m["name"] for m in c.get(f"{W}/models").json()["items"]] == ["scorecard"]
        versions = c.get(f"{W}/models/scorecard/versions").json()["items"]
        assert [v["version"] for v in versions] == [1]
        mv = c.get(url).json()
        assert mv["stage"] == "candidate" and mv["model_card"].startswith("# Model card")
        assert mv["signature"]["inputs"] and mv["metrics"]["test"]
    with populated.client("dev") as c:
        r = c.post(f"{url}/stage", json={"stage": "staging", "reason": "validated"})
        assert r.status_code == 200 and r.json()["stage"] == "staging"
        err = error_of(c.post(f"{url}/stage", json={"stage": "production", "reason": "go"}), 403)
        assert err["code"] == "permission_denied"
        assert error_of(c.post(f"{url}/stage", json={"stage": "staging"}), 422)["field"] == (
            "reason"
        )
        assert error_of(c.post(f"{url}/stage", json={"stage": "x", "reason": "y"}), 422)[
            "field"
        ] == ("stage")
    with populated.client("ana") as c:
        r = c.post(f"{url}/stage", json={"stage": "production", "reason": "go live"})
        assert r.json()["stage"] == "production"
        err = error_of(c.post(f"{url}/stage", json={"stage": "candidate", "reason": "x"}), 409)
        assert err["code"] == "conflict" and err["field"] == "stage"
        history = c.get(f"{url}/history").json()["items"]
        assert [(h["to_stage"], h["actor"]) for h in history] == [
            ("candidate", "root"),
            ("staging", "dev"),
            ("production", "ana"),
        ]
        assert len(c.get(f"{W}/models/scorecard/history").json()["items"]) == 3
        audit = c.get(f"{W}/audit", params={"action": "model.stage"}).json()["items"]
        assert [e["actor"] for e in audit] == ["ana", "dev"]


def test_only_admins_take_a_version_out_of_production_or_archived(populated: Server) -> None:
    url = f"{W}/models/scorecard/versions/1"
    with populated.client("ana") as c:
        c.post(f"{url}/stage", json={"stage": "staging", "reason": "ok"}).raise_for_status()
        c.post(f"{url}/stage", json={"stage": "production", "reason": "go"}).raise_for_status()
    with populated.client("dev") as c:
        for stage in ("staging", "archived"):
            err = error_of(c.post(f"{url}/stage", json={"stage": stage, "reason": "x"}), 403)
            assert err["code"] == "permission_denied" and "admin role" in err["message"]
        assert c.get(url).json()["stage"] == "production"
    with populated.client("ana") as c:
        c.post(f"{url}/stage", json={"stage": "archived", "reason": "old"}).raise_for_status()
    with populated.client("dev") as c:
        error_of(c.post(f"{url}/stage", json={"stage": "candidate", "reason": "x"}), 403)
        assert c.get(url).json()["stage"] == "archived"
    with populated.client("ana") as c:
        r = c.post(f"{url}/stage", json={"stage": "candidate", "reason": "revive"})
        assert r.status_code == 200 and r.json()["stage"] == "candidate"


def test_lineage(populated: Server) -> None:
    run_id = populated.ids["run"]
    with populated.client("vera") as c:
        down = c.get(
            f"{W}/lineage", params={"ref": "leptonic://alpha/dataset/applicants/1"}
        ).json()["items"]
        assert [(i["depth"], i["ref"]) for i in down] == [
            (1, f"leptonic://alpha/run/{run_id}"),
            (2, "leptonic://alpha/model/scorecard/1"),
            (3, "leptonic://alpha/endpoint/scorecard"),
        ]
        up = c.get(
            f"{W}/lineage",
            params={"ref": "leptonic://alpha/model/scorecard/1", "direction": "upstream"},
        ).json()["items"]
        assert up[-1]["ref"] == "leptonic://alpha/dataset/applicants/1"
        assert error_of(c.get(f"{W}/lineage", params={"ref": "nonsense"}), 422)["field"] == "ref"
        other = {"ref": "leptonic://beta/dataset/applicants/1"}
        assert error_of(c.get(f"{W}/lineage", params=other), 404)["field"] == "ref"
        assert error_of(c.get(f"{W}/lineage"), 422)["field"] == "ref"


def test_users_tokens_members(populated: Server) -> None:
    with populated.client("root") as c:
        user = c.post("/users", json={"name": "zoe", "display_name": "Zoe"})
        assert user.status_code == 201 and user.json()["is_admin"] is False
        assert error_of(c.post("/users", json={"name": "zoe"}), 409)["code"] == "already_exists"
        assert "zoe" in [u["name"] for u in c.get("/users").json()["items"]]
        token = c.post("/users/zoe/tokens", json={"name": "laptop", "expires_in_days": 30})
        secret = token.json()["secret"]
        assert token.status_code == 201 and secret.startswith("lep_") and len(secret) > 40
        assert token.json()["prefix"] == secret[:12]
        listed = c.get("/users/zoe/tokens").json()["items"]
        assert "secret" not in listed[0] and "token_hash" not in listed[0]
        member = c.put(f"{W}/members/zoe", json={"role": "viewer"}).json()
        assert member["role"] == "viewer" and member["raw_pii"] is False
        assert error_of(c.put(f"{W}/members/zoe", json={"role": "boss"}), 422)["field"] == "role"
        assert error_of(c.put(f"{W}/members/nobody", json={"role": "viewer"}), 404)
    with populated.client(token=secret) as z:
        me = z.get("/me").json()
        assert me["user"]["name"] == "zoe"
        assert [(m["workspace"], m["role"]) for m in me["memberships"]] == [("alpha", "viewer")]
        members = z.get(f"{W}/members").json()["items"]
        assert {m["user"] for m in members} >= {"zoe", "ana", "dev", "vera"}
        assert z.delete(f"/tokens/{listed[0]['id']}").json()["revoked_at"] is not None
        assert error_of(z.get("/me"), 401)["code"] == "unauthenticated"
    with populated.client("ana") as c:
        assert c.delete(f"{W}/members/zoe").status_code == 204
        assert error_of(c.delete(f"{W}/members/zoe"), 404)["field"] == "user"
        actions = [e["action"] for e in c.get(f"{W}/audit").json()["items"]]
        assert actions[:2] == ["member.remove", "member.set"]
    with populated.client("root") as c:
        mine = c.get("/audit", params={"actor": "root", "limit": 500}).json()["items"]
        assert {"user.create", "token.create", "member.set"} <= {e["action"] for e in mine}
        zoes = c.get("/audit", params={"actor": "zoe"}).json()["items"]
        assert [e["action"] for e in zoes] == ["token.revoke"]


def test_audit_scoping(populated: Server) -> None:
    with populated.client("bob") as c:
        events = c.get("/audit").json()["items"]
        assert events and {e["workspace"] for e in events} == {"beta"}
        assert error_of(c.get("/audit", params={"workspace": "alpha"}), 404)["code"] == "not_found"
    with populated.client("vera") as c:
        assert error_of(c.get("/audit"), 403)["code"] == "permission_denied"
        assert error_of(c.get(f"{W}/audit"), 403)["code"] == "permission_denied"
    with populated.client("ana") as c:
        events = c.get("/audit", params={"workspace": "alpha"}).json()["items"]
        assert {e["workspace"] for e in events} == {"alpha"}
        assert {"workspace.create", "dataset.add", "run.submit", "run.train"} <= {
            e["action"] for e in events
        }


def test_unknown_route_and_method(server: Server) -> None:
    with server.client("root") as c:
        assert error_of(c.get("/nope"), 404)["code"] == "not_found"
        assert error_of(c.delete("/workspaces"), 405)["code"] == "method_not_allowed"
        assert error_of(c.post("/workspaces", content=b"{not json"), 422)["code"] == (
            "invalid_input"
        )


def test_openapi_and_docs(server: Server) -> None:
    with server.client() as c:
        spec = c.get("http://leptonic.test/openapi.json").json()
        assert "/api/v1/workspaces/{ws}/runs" in spec["paths"]
        assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
        assert c.get("http://leptonic.test/docs").status_code == 200


def test_openapi_documents_the_error_body_the_server_sends(server: Server) -> None:
    import jsonschema

    with server.client("root") as c:
        spec = c.get("http://leptonic.test/openapi.json").json()
        invalid = c.get("/workspaces", params={"limit": 0})
        missing = c.get("/workspaces/nope")
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's {"detail": [...]}, never sent
    responses = spec["paths"]["/api/v1/workspaces"]["get"]["responses"]
    for status in ("422", "default"):
        ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/Error"
    assert (invalid.status_code, missing.status_code) == (422, 404)
    for response in (invalid, missing):
        jsonschema.validate(response.json(), schemas["Error"])


def test_unexpected_error_is_generic_500(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(type(server.platform), "list_workspaces", boom)
    with server.client("root") as c:
        err = error_of(c.get("/workspaces"), 500)
    assert err["code"] == "internal_error" and "secret" not in err["message"]


@pytest.mark.postgres
def test_smoke_on_postgresql(
    make_server: Any, postgres_db: str, applicants_csv: Path, tmp_path: Path
) -> None:
    from api._support import populate
    from leptonic import Platform, Settings
    from leptonic.storage.artifacts.local import LocalArtifactStore
    from leptonic.storage.registry import open_metadata_store

    lp = Platform(
        Settings.for_home(tmp_path, "setup"),
        metadata=open_metadata_store(postgres_db),
        artifacts=LocalArtifactStore(tmp_path / "artifacts"),
    )
    try:
        server = populate(make_server(platform=lp), applicants_csv)
        with server.client("vera") as c:
            assert c.get(f"{W}/runs/{server.ids['run']}").json()["status"] == "succeeded"
            assert c.get(f"{W}/models/scorecard/versions/1").json()["stage"] == "candidate"
            assert c.post(f"{W}/runs/{server.ids['run']}/cancel").status_code == 403
        with server.client("bob") as c:
            assert c.get(f"{W}/runs").status_code == 404
        with server.client("ana") as c:
            events = c.get(f"{W}/audit").json()["items"]
            assert {"dataset.add", "run.submit", "run.train"} <= {e["action"] for e in events}
    finally:
        lp.close()


def test_a_model_name_of_another_task_is_a_409_before_any_job(populated: Server) -> None:
    with populated.client("root") as c:
        jobs = len(populated.platform.metadata.list_jobs("alpha"))
        r = c.post(
            "/workspaces/alpha/runs",
            json={
                "dataset": "applicants",
                "spec": {"target": "default", "task": "multiclass"},
                "model": "scorecard",
            },
        )
    assert error_of(r, 409)["field"] == "model"
    assert len(populated.platform.metadata.list_jobs("alpha")) == jobs


def test_a_lone_surrogate_in_a_request_is_a_422(server: Server) -> None:
    server.platform.create_workspace("alpha")
    with server.client("root") as c:
        r = c.post(
            f"{W}/runs",
            content=b'{"dataset": "x\\ud800", "spec": {"target": "y"}}',
            headers={"Content-Type": "application/json"},
        )
    assert "unpaired surrogate" in error_of(r, 422)["message"]


def test_a_form_upload_is_refused_not_stored_with_its_boundaries(populated: Server) -> None:
    with populated.client("dev") as c:
        r = c.post(
            f"{W}/datasets/form/versions",
            params={"filename": "d.csv"},
            files={"file": ("d.csv", b"amount\n1\n2\n", "text/csv")},
        )
        err = error_of(r, 415)
        assert err["field"] == "body" and "--data-binary" in err["message"]
        assert error_of(c.get(f"{W}/datasets/form/versions"), 404)


def test_a_new_dataset_gets_its_description_by_upload(populated: Server, tmp_path: Path) -> None:
    with populated.client("dev") as c:
        r = c.post(
            f"{W}/datasets/described/versions",
            params={"filename": "d.csv", "description": "loans of 2024"},
            content=b"amount,y\n1,0\n2,1\n3,0\n",
        )
        assert r.status_code == 201
        listed = {d["name"]: d for d in c.get(f"{W}/datasets").json()["items"]}
        assert listed["described"]["description"] == "loans of 2024"


def test_bad_json_is_named_as_the_body(populated: Server) -> None:
    with populated.client("root") as c:
        r = c.post("/workspaces", content=b"{bad", headers={"Content-Type": "application/json"})
        err = error_of(r, 422)
        assert err["field"] == "body" and "not valid JSON" in err["message"]
        deep = b'{"name": "w", "description": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        r = c.post("/workspaces", content=deep, headers={"Content-Type": "application/json"})
        assert error_of(r, 422)["field"] == "body"


def test_the_history_of_a_missing_version_is_not_found(populated: Server) -> None:
    with populated.client("vera") as c:
        assert error_of(c.get(f"{W}/models/scorecard/versions/99/history"), 404)
        assert c.get(f"{W}/models/scorecard/versions/1/history").status_code == 200


def test_a_decision_endpoints_retrain_records_its_reason(populated: Server) -> None:
    with populated.client("dev") as c:
        r = c.post(f"{W}/endpoints/scorecard/retrain", json={"reason": "drift-ticket-42"})
        assert r.status_code == 202
    events = populated.platform.audit_log(action="endpoint.retrain")
    assert [e.details["reason"] for e in events] == ["drift-ticket-42"]


def test_predictions_of_all_routes_and_a_time_window(populated: Server) -> None:
    with populated.client("vera") as c:
        everything = c.get(f"{W}/endpoints/scorecard/predictions", params={"route": "all"})
        assert everything.status_code == 200 and len(everything.json()["items"]) >= 1
        later = c.get(
            f"{W}/endpoints/scorecard/predictions",
            params={"route": "all", "since": "2199-01-01T00:00:00Z"},
        )
        assert later.json()["items"] == []
