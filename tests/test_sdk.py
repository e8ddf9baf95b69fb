"""The Python client against an in-process server: same records, same errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leptonic import (
    AlreadyExists,
    Client,
    Conflict,
    DataError,
    InvalidInput,
    InvalidName,
    LeptonicError,
    NotFound,
    Platform,
    Settings,
    Stage,
    TrainSpec,
)
from leptonic.api import create_app
from leptonic.api.testing import InProcessTransport, serve_in_process
from leptonic.core.access import Role
from leptonic.core.run import RunStatus
from leptonic.errors import PermissionDenied, SchemaError, StoreError, Unauthenticated
from leptonic.sdk import _error
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.storage.metadata.memory import MemoryMetadataStore
from leptonic.synthetic import write_applicants_csv

URL = "http://leptonic.test"


def _all_errors(base: type[LeptonicError]) -> set[type[LeptonicError]]:
    """``base`` and its subclasses that declare their own error code."""
    found = {base} if "code" in base.__dict__ else set()
    for sub in base.__subclasses__():
        found |= _all_errors(sub)
    return found


SPEC = TrainSpec(target="default", candidates=("logistic",), trials=2, timeout_s=60.0)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Platform, InProcessTransport, str]]:
    lp = Platform(
        Settings.for_home(tmp_path, "setup"),
        metadata=MemoryMetadataStore(),
        artifacts=MemoryArtifactStore(),
    )
    lp.create_user("root", admin=True)
    _, secret = lp.create_token("root")
    with serve_in_process(create_app(lp.settings, platform=lp, workers=1, poll_interval=0.05)) as t:
        yield lp, t, secret


@pytest.fixture
def client(served: tuple[Platform, InProcessTransport, str]) -> Iterator[Client]:
    _, transport, secret = served
    with Client(URL, secret, transport=transport) as c:
        yield c


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_applicants_csv(tmp_path_factory.mktemp("sdk") / "applicants.csv", n=600)


def test_lifecycle(client: Client, csv: Path, tmp_path: Path) -> None:
    ws = client.create_workspace("credit", "retail credit")
    assert ws.name == "credit" and ws.pii_salt == ""
    assert [w.name for w in client.list_workspaces()] == ["credit"]
    sent: list[int] = []
    version, created = client.add_data(
        "credit", csv, target="default", progress=lambda _, n: sent.append(n)
    )
    assert created and version.num_rows == 600 and sent[-1] == csv.stat().st_size
    assert {"email", "phone"} <= set(version.pii)
    again, created_again = client.add_data("credit", csv, target="default")
    assert not created_again and again == version
    assert [d.name for d in client.list_datasets("credit")] == ["applicants"]
    assert client.dataset_version("credit", "applicants") == version
    assert client.dataset_versions("credit", "applicants") == [version]
    assert "columns" in client.profile("credit", "applicants")
    preview = client.preview("credit", "applicants", limit=3)
    raw = client.preview("credit", "applicants", limit=3, raw=True)
    assert preview.num_rows == 3 and preview.column_names == [c.name for c in version.columns]
    assert "@" in raw.column("email")[0].as_py() and "@" not in preview.column("email")[0].as_py()

    steps: list[tuple[int, int]] = []
    run = client.train(
        "credit",
        "applicants",
        SPEC,
        model_name="sc",
        poll=0.05,
        progress=lambda d, t: steps.append((d, t)),
    )
    assert run.status == RunStatus.SUCCEEDED and run.metrics["test"]["auc"] > 0.5
    assert steps[-1] == (2, 2)
    assert client.get_run("credit", run.id[:8]) == run
    assert client.list_runs("credit") == [run]
    assert "<html" in client.write_report("credit", run.id, tmp_path / "r.html").read_text()
    assert b"done" in client.run_artifact("credit", run.id, "log.txt")
    job = client.list_jobs("credit")[0]
    assert client.get_job("credit", job.id) == job and job.run_id == run.id

    assert [m.name for m in client.list_models("credit")] == ["sc"]
    mv = client.model_versions("credit", "sc")[0]
    assert client.model_version("credit", "sc", 1) == mv and mv.stage == Stage.CANDIDATE
    promoted = client.promote("credit", "sc", 1, "staging", reason="validated")
    assert promoted.stage == Stage.STAGING
    history = client.stage_history("credit", "sc", 1)
    assert [(h.to_stage, h.actor) for h in history] == [
        (Stage.CANDIDATE, "root"),
        (Stage.STAGING, "root"),
    ]
    assert client.stage_history("credit", "sc") == history
    lineage = client.lineage(f"leptonic://credit/dataset/applicants/{version.version}")
    assert [str(ref) for _, ref in lineage] == [
        f"leptonic://credit/run/{run.id}",
        "leptonic://credit/model/sc/1",
    ]
    actions = [e.action for e in client.audit_log(workspace="credit")]
    assert actions[:2] == ["model.stage", "run.train"]


def test_access_management(
    client: Client, served: tuple[Platform, InProcessTransport, str]
) -> None:
    _, transport, _ = served
    client.create_workspace("credit")
    user = client.create_user("ana", display_name="Ana")
    assert user.name == "ana" and not user.is_admin
    assert {u.name for u in client.list_users()} == {"root", "ana"}
    token, secret = client.create_token("ana", "laptop", expires_in_days=7)
    assert token.expires_at is not None and token.token_hash == ""
    member = client.set_member("credit", "ana", "developer", raw_pii=True)
    assert member.role == Role.DEVELOPER and member.raw_pii
    assert [m.user for m in client.memberships(workspace="credit")] == ["ana"]
    with Client(URL, secret, transport=transport) as ana:
        me, roles = ana.me()
        assert me.name == "ana" and [r.workspace for r in roles] == ["credit"]
        with pytest.raises(PermissionDenied):
            ana.create_workspace("mine")
        with pytest.raises(PermissionDenied):
            ana.promote("credit", "sc", 1, "production", reason="x")
        ana.revoke_token(token.id)
        with pytest.raises(Unauthenticated):
            ana.me()
    assert client.list_tokens("ana")[0].revoked_at is not None
    client.remove_member("credit", "ana")
    with pytest.raises(NotFound):
        client.remove_member("credit", "ana")


def test_errors_map_back_to_domain_errors(client: Client, tmp_path: Path) -> None:
    client.create_workspace("credit")
    with pytest.raises(AlreadyExists):
        client.create_workspace("credit")
    with pytest.raises(InvalidName) as bad_name:
        client.create_workspace("Not Valid")
    assert bad_name.value.field == "workspace"
    with pytest.raises(NotFound) as missing:
        client.get_run("credit", "f" * 32)
    assert isinstance(missing.value, KeyError)
    with pytest.raises(NotFound):
        client.get_workspace("nowhere")
    with pytest.raises(InvalidName):  # the whole name is the path segment, not a query
        client.get_workspace("credit?x=1")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"")
    with pytest.raises(InvalidInput) as empty:
        client.add_data("credit", bad)
    assert empty.value.field == "body"
    bad.write_bytes(b"\x00\x01\x02 not csv")
    with pytest.raises(DataError):
        client.add_data("credit", bad, fmt="parquet")
    with pytest.raises(NotFound):
        client.cancel_run("credit", "0" * 32)


def test_wrong_token(served: tuple[Platform, InProcessTransport, str]) -> None:
    with Client(URL, "lep_wrong", transport=served[1]) as c, pytest.raises(Unauthenticated):
        c.me()


@pytest.mark.parametrize("cls", sorted(_all_errors(LeptonicError), key=lambda c: c.code))
def test_every_error_code_maps_back(cls: type[LeptonicError]) -> None:
    body = {"error": {"code": cls.code, "message": "what to do", "field": "f"}}
    exc = _error(httpx.Response(400, json=body, request=httpx.Request("GET", URL)))
    assert type(exc) is cls and exc.message == "what to do" and exc.field == "f"


def test_unknown_error_code_falls_back_on_status() -> None:
    body = {"error": {"code": "brand_new", "message": "m", "field": None}}
    exc = _error(httpx.Response(409, json=body, request=httpx.Request("GET", URL)))
    assert type(exc) is Conflict
    exc = _error(httpx.Response(502, text="bad gateway", request=httpx.Request("GET", URL)))
    assert type(exc) is LeptonicError and "502" in exc.message


def test_unreachable_server() -> None:
    from leptonic.errors import StoreError

    with Client("http://127.0.0.1:9", "lep_x", timeout=2) as c, pytest.raises(StoreError):
        c.list_workspaces()


def test_contracts_travel_with_the_upload(client: Client, csv: Path, tmp_path: Path) -> None:
    client.create_workspace("credit")
    contract = tmp_path / "c.toml"
    contract.write_text(
        'target = "default"\n[roles]\napplicant_id = "id"\nregion = "ignore"\n[pii]\nage = false\n',
        encoding="utf-8",
    )
    version, _ = client.add_data("credit", csv, contract=contract)
    roles = {c.name: c.role.value for c in version.columns}
    assert roles["applicant_id"] == "id" and roles["region"] == "ignore"
    assert roles["default"] == "target"
    assert version.source["contract"]["roles"]["region"] == "ignore"
    bad = tmp_path / "bad.toml"
    bad.write_text('[roles]\nnope = "id"\n', encoding="utf-8")
    with pytest.raises(SchemaError, match="nope"):
        client.add_data("credit", csv, name="other", contract=bad)


def test_a_contract_that_is_not_json_is_refused(
    served: tuple[Platform, InProcessTransport, str], csv: Path
) -> None:
    import httpx

    _, transport, secret = served
    with httpx.Client(
        base_url=f"{URL}/api/v1",
        transport=transport,
        headers={"Authorization": f"Bearer {secret}"},
    ) as http:
        http.post("/workspaces", json={"name": "credit"}).raise_for_status()
        r = http.post(
            "/workspaces/credit/datasets/a/versions",
            params={"filename": "a.csv", "contract": "{not json"},
            content=csv.read_bytes(),
        )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "contract" and "not JSON" in r.json()["error"]["message"]


def test_lists_longer_than_a_page_are_fetched_page_by_page(
    client: Client, served: tuple[Platform, InProcessTransport, str]
) -> None:
    lp, _, _ = served
    lp.create_workspace("credit")
    for i in range(520):  # more than the server's largest page (500)
        lp.audit("test.event", "credit", [], n=i)
    events = client.audit_log(workspace="credit", action="test.event", limit=1000)
    assert len(events) == 520
    assert len(client.audit_log(workspace="credit", action="test.event", limit=510)) == 510
    assert client.audit_log(workspace="credit", action="test.event", limit=0) == []
    with pytest.raises(InvalidInput, match="limit"):
        client.audit_log(limit=-1)


def test_an_empty_name_is_refused_before_it_becomes_another_route(client: Client) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        client.get_workspace("")


def test_a_redirect_is_not_taken_for_an_answer() -> None:
    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(307, headers={"Location": "/elsewhere"})

    with (
        Client(URL, "lep_x", transport=httpx.MockTransport(redirect)) as c,
        pytest.raises(StoreError, match="HTTP 307"),
    ):
        c.list_workspaces()


def test_an_unanswered_post_says_it_may_have_been_carried_out() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with Client(URL, "lep_x", transport=httpx.MockTransport(slow)) as c:
        with pytest.raises(StoreError, match="may have been carried out"):
            c.create_workspace("credit")
        with pytest.raises(StoreError, match="did not answer in time"):
            c.list_workspaces()


def test_uploads_carry_the_description(client: Client, csv: Path) -> None:
    client.create_workspace("credit")
    client.add_data("credit", csv, name="apps", description="applicants of 2024")
    assert [d.description for d in client.list_datasets("credit")] == ["applicants of 2024"]


def test_a_contract_longer_than_a_query_travels_in_the_upload_form(
    client: Client, csv: Path, tmp_path: Path, served: tuple[Platform, InProcessTransport, str]
) -> None:
    import pandas as pd

    client.create_workspace("credit")
    columns = [f"bureau_attribute_with_a_rather_long_descriptive_name_{i:03d}" for i in range(150)]
    wide = tmp_path / "wide.csv"
    pd.DataFrame({c: range(20) for c in columns} | {"label": [0, 1] * 10}).to_csv(wide, index=False)
    contract = tmp_path / "wide.toml"
    roles = "".join(f'{c} = "numeric"\n' for c in columns)
    contract.write_text(f'target = "label"\n[roles]\n{roles}', encoding="utf-8")
    assert contract.stat().st_size > 8192  # more than the query parameter carries
    version, created = client.add_data("credit", wide, contract=contract)
    assert created and version.num_rows == 20
    assert {c.name: c.role.value for c in version.columns}["label"] == "target"
    assert version.source["contract"]["roles"][columns[-1]] == "numeric"
    # the query parameter still carries a short contract
    _, transport, secret = served
    auth = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=f"{URL}/api/v1", transport=transport, headers=auth) as http:
        r = http.post(
            "/workspaces/credit/datasets/short/versions",
            params={"filename": "a.csv", "contract": '{"target": "default"}'},
            content=csv.read_bytes(),
        )
        assert r.status_code == 201, r.text
        # a longer one is refused with the way to send it
        r = http.post(
            "/workspaces/credit/datasets/long/versions",
            params={"filename": "a.csv", "contract": " " * 9000 + "{}"},
            content=csv.read_bytes(),
        )
        error = r.json()["error"]
        assert r.status_code == 422 and error["field"] == "contract"
        assert "multipart/form-data" in error["message"]
        # and a contract field past 1 MiB too
        huge = b'{"description": "' + b"x" * (1024 * 1024) + b'"}'
        r = http.post(
            "/workspaces/credit/datasets/huge/versions",
            params={"filename": "a.csv"},
            files={"file": ("a.csv", csv.read_bytes())},
            data={"contract": huge.decode()},
        )
        error = r.json()["error"]
        assert r.status_code == 413 and error["field"] == "contract" and "1 MiB" in error["message"]
    assert [d.name for d in client.list_datasets("credit")] == ["short", "wide"]


def test_a_contract_past_the_limit_is_refused_before_the_upload(
    client: Client, csv: Path, tmp_path: Path
) -> None:
    contract = tmp_path / "huge.json"
    contract.write_text('{"description": "' + "x" * (1024 * 1024) + '"}', encoding="utf-8")
    with pytest.raises(InvalidInput, match="1 MiB") as info:
        client.add_data("credit", csv, contract=contract)
    assert info.value.field == "contract"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.get_run("credit", ".."), "run_id"),
        (lambda c: c.get_run("..", "abc"), "workspace"),
        (lambda c: c.get_workspace("."), "name"),
        (lambda c: c.get_job("credit", "."), "job_id"),
        (lambda c: c.model_versions("credit", ".."), "model"),
        (lambda c: c.endpoints.get("credit", ".."), "name"),
    ],
)
def test_dot_segments_are_refused_not_dropped_from_the_path(call: Any, field: str) -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(200, json={})

    with (
        Client(URL, "lep_x", transport=httpx.MockTransport(answer)) as c,
        pytest.raises(InvalidInput, match="not a name or id") as info,
    ):
        call(c)
    assert info.value.field == field and sent == []


def test_a_failed_run_raises_the_error_it_recorded(client: Client, tmp_path: Path) -> None:
    from leptonic import TargetError
    from leptonic.sdk import RunFailed, _run_error

    client.create_workspace("credit")
    constant = tmp_path / "constant.csv"
    constant.write_text("x,y\n" + "".join(f"{i},0\n" for i in range(50)), encoding="utf-8")
    client.add_data("credit", constant)
    spec = TrainSpec(target="y", candidates=("logistic",), trials=1)
    with pytest.raises(TargetError, match="constant") as info:  # as Platform.train raises
        client.train("credit", "constant", spec, poll=0.05)
    (run,) = client.list_runs("credit")
    assert run.status is RunStatus.FAILED and f"run {run.id} failed" in str(info.value)
    # an error that is no leptonic error: RunFailed, with what the server recorded
    other = dataclasses.replace(run, error="ZeroDivisionError: division by zero")
    exc = _run_error(other)
    assert type(exc) is RunFailed and "division by zero" in str(exc) and run.id in str(exc)


def test_tokens_are_stripped_and_checked() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={"items": [], "next_offset": None})

    for token in ("lep_abc\n", "  lep_abc \r\n"):
        with Client(URL, token, transport=httpx.MockTransport(answer)) as c:
            assert c.list_workspaces() == []
    assert seen == ["Bearer lep_abc", "Bearer lep_abc"]
    for bad in ("lep_a bc", "lep_\u00e9", "lep_a\nb"):
        with pytest.raises(InvalidInput, match="tokens are printable ASCII") as info:
            Client(URL, bad)
        assert info.value.field == "token" and bad not in str(info.value)


def test_a_report_is_not_written_over_a_folder(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidInput, match="is a folder") as info:
        client.write_report("credit", "abc", tmp_path)
    assert info.value.field == "path"
    monkeypatch.setattr(client, "run_artifact", lambda *args: b"<html></html>")

    def refuse(*args: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("leptonic.sdk.os.replace", refuse)
    with pytest.raises(PermissionError):
        client.write_report("credit", "abc", tmp_path / "r.html")
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_platform_reports_are_not_written_over_a_folder(
    served: tuple[Platform, InProcessTransport, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lp = served[0]
    with pytest.raises(InvalidInput, match="is a folder"):
        lp.write_report("credit", "abc", tmp_path)
    monkeypatch.setattr(lp, "run_artifact", lambda *args: b"<html></html>")

    def refuse(*args: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("leptonic.platform.os.replace", refuse)
    with pytest.raises(PermissionError):
        lp.write_report("credit", "abc", tmp_path / "r.html")
    assert list(tmp_path.iterdir()) == []
