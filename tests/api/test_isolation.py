"""Workspace isolation, on every route of the app.

Each route of the OpenAPI app is called with the real ids of workspace
``alpha``'s objects, (a) by ``bob``, an admin of workspace ``beta`` only, and
(b) by ``vera``, a viewer of ``alpha``. Bob must see a 404 indistinguishable
from a missing workspace for everything in alpha; Vera must be refused every
change with 403. Neither may change anything: the whole metadata store,
audit log included, is compared before and after.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from api._support import TRAIN, Server, snapshot

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def all_routes(server: Server) -> list[tuple[str, str]]:
    """Every operation of the app's OpenAPI schema, as ``(METHOD, path under /api/v1)``."""
    paths = server.app.openapi()["paths"]
    return sorted(
        (method.upper(), path.removeprefix("/api/v1"))
        for path, operations in paths.items()
        for method in operations
    )


def fill(server: Server, path: str, ws: str = "alpha") -> str:
    values = {
        "ws": ws,
        "version": "1",
        "run_id": server.ids["run"],
        "job_id": server.ids["job"],
        "token_id": server.ids["root_token"],
        "alert_id": server.ids["alert"],
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "name":
            return "applicants" if "/datasets/" in path else "scorecard"
        if name == "user":
            return "vera" if "/members/" in path else "root"
        return values[name]

    return re.sub(r"\{(\w+)\}", value, path)


def request(
    client: httpx.Client, server: Server, method: str, path: str, csv: Path, ws: str = "alpha"
) -> httpx.Response:
    url = fill(server, path, ws)
    kwargs: dict[str, Any] = {}
    if path.endswith("/lineage"):
        kwargs["params"] = {"ref": f"leptonic://{ws}/dataset/applicants/1"}
    if method in MUTATING:
        if path.endswith("/datasets/{name}/versions"):
            kwargs = {"params": {"filename": "a.csv"}, "content": csv.read_bytes()}
        else:
            kwargs["json"] = {
                "/workspaces": {"name": "gamma"},
                "/workspaces/{ws}/members/{user}": {"role": "admin", "raw_pii": True},
                "/workspaces/{ws}/runs": {"dataset": "applicants", "spec": TRAIN},
                "/workspaces/{ws}/models/{name}/versions/{version}/stage": {
                    "stage": "staging",
                    "reason": "sneaky",
                },
                "/users": {"name": "mallory", "admin": True},
                "/users/{user}/tokens": {"name": "stolen"},
                "/workspaces/{ws}/endpoints": {
                    "name": "sneaky",
                    "model": "scorecard",
                    "version": 1,
                },
                "/workspaces/{ws}/endpoints/{name}/canary": {
                    "model": "scorecard",
                    "version": 1,
                    "percent": 50,
                    "reason": "sneaky",
                },
                "/workspaces/{ws}/endpoints/{name}/deploy": {
                    "model": "scorecard",
                    "version": 1,
                    "reason": "sneaky",
                },
                "/workspaces/{ws}/endpoints/{name}/promote": {"reason": "sneaky"},
                "/workspaces/{ws}/endpoints/{name}/rollback": {"reason": "sneaky"},
                "/workspaces/{ws}/endpoints/{name}/shadow": {"reason": "sneaky"},
                "/workspaces/{ws}/endpoints/{name}/policies": {
                    "spec": {"bands": [{"decision": "yes", "max": 0.5}, {"decision": "no"}]},
                    "reason": "sneaky",
                },
                "/workspaces/{ws}/endpoints/{name}/decide": {"age": 30},
                "/workspaces/{ws}/endpoints/{name}/feedback": {
                    "request_id": server.ids["request"],
                    "label": 1,
                },
                "/workspaces/{ws}/endpoints/{name}/monitor": {},
                "/workspaces/{ws}/endpoints/{name}/predictions/prune": {
                    "older_than_days": 1,
                    "reason": "sneaky",
                },
                "/workspaces/{ws}/endpoints/{name}/alerts/{alert_id}": {"status": "resolved"},
                "/workspaces/{ws}/endpoints/{name}/recalibrate": {
                    "target_approval_rate": 0.5,
                    "reason": "sneaky",
                },
                "/workspaces/{ws}/endpoints/{name}/retrain": {},
                "/workspaces/{ws}/endpoints/{name}/batch": {"dataset": "applicants"},
            }.get(path)
    return client.request(method, url, **kwargs)


def test_other_workspace_sees_nothing(populated: Server, applicants_csv: Path) -> None:
    server = populated
    before = snapshot(server.platform.metadata)
    routes = all_routes(server)
    assert len(routes) >= 35
    with server.client("bob") as bob:
        for method, path in routes:
            response = request(bob, server, method, path, applicants_csv)
            where = f"{method} {path}"
            if "{ws}" in path:
                missing = request(bob, server, method, path, applicants_csv, ws="no-such-ws")
                assert response.status_code == 404, (where, response.text)
                expected = missing.text.replace("no-such-ws", "alpha")
                assert response.text == expected, where
            elif method in MUTATING:
                assert response.status_code in (403, 404), (where, response.text)
            else:
                assert response.status_code in (200, 403), (where, response.text)
                assert "alpha" not in response.text, where
        audit = bob.get("/audit", params={"workspace": "alpha"})
        assert audit.status_code == 404
        assert bob.get("/workspaces").json()["items"][0]["name"] == "beta"
    assert snapshot(server.platform.metadata) == before


def test_viewer_cannot_change_anything(populated: Server, applicants_csv: Path) -> None:
    server = populated
    before = snapshot(server.platform.metadata)
    routes = all_routes(server)
    assert len(routes) >= 35
    with server.client("vera") as vera:
        for method, path in routes:
            response = request(vera, server, method, path, applicants_csv)
            where = f"{method} {path}"
            if method in MUTATING:
                expected = {403} if "{ws}" in path or "/users" in path else {403, 404}
                assert response.status_code in expected, (where, response.text)
                assert response.json()["error"]["code"] in ("permission_denied", "not_found")
            elif path in ("/workspaces/{ws}/audit", "/audit", "/users", "/users/{user}/tokens"):
                assert response.status_code == 403, (where, response.text)
            else:
                assert response.status_code == 200, (where, response.text)
        raw = vera.get("/workspaces/alpha/datasets/applicants/preview", params={"raw": "true"})
        assert raw.status_code == 403 and raw.json()["error"]["field"] == "raw"
    assert snapshot(server.platform.metadata) == before


def test_raw_pii_needs_the_grant(populated: Server) -> None:
    url = "/workspaces/alpha/datasets/applicants/preview"
    with populated.client("dev") as dev:
        assert dev.get(url, params={"raw": "true"}).status_code == 403
        masked = dev.get(url).json()
    with populated.client("ana") as ana:
        raw = ana.get(url, params={"raw": "true"}).json()
    assert masked["rows"][0]["email"] != raw["rows"][0]["email"]
    assert "@" in raw["rows"][0]["email"]
    log = "/workspaces/alpha/endpoints/scorecard/predictions"
    with populated.client("dev") as dev:
        refused = dev.get(log, params={"raw": "true"})
        assert refused.status_code == 403 and refused.json()["error"]["field"] == "raw"
        assert dev.get(log).status_code == 200
    with populated.client("ana") as ana:
        assert ana.get(log, params={"raw": "true"}).json()["items"]
