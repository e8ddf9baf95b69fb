"""Helpers shared by the API tests: an in-process server handle, seeding, snapshots."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from leptonic import Platform
from leptonic.api.testing import InProcessTransport
from leptonic.storage.metadata.base import MetadataStore

BASE = "http://leptonic.test/api/v1"
TRAIN = {"target": "default", "candidates": ["logistic"], "trials": 2, "timeout_s": 60.0}


@dataclasses.dataclass
class Server:
    """A running in-process app with its platform and job runner."""

    platform: Platform
    app: Any
    transport: InProcessTransport
    tokens: dict[str, str] = dataclasses.field(default_factory=dict)
    ids: dict[str, str] = dataclasses.field(default_factory=dict)

    def client(self, user: str | None = None, *, token: str | None = None) -> httpx.Client:
        secret = token or (self.tokens[user] if user else None)
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=BASE, transport=self.transport, headers=headers)

    def add_user(
        self,
        name: str,
        *,
        admin: bool = False,
        roles: dict[str, str] | None = None,
        raw_pii: bool = False,
    ) -> str:
        lp = self.platform.as_user("setup")
        lp.create_user(name, admin=admin)
        for ws, role in (roles or {}).items():
            lp.set_member(ws, name, role, raw_pii=raw_pii)
        _, secret = lp.create_token(name, "test")
        self.tokens[name] = secret
        return secret

    def run_jobs(self) -> None:
        """Run every queued job now, in this thread."""
        while self.app.state.runner.run_one() is not None:
            pass


def populate(server: Server, csv: Path) -> Server:
    """Workspaces alpha and beta, data, a trained and registered model, users of every role."""
    with server.client("root") as root:
        for ws in ("alpha", "beta"):
            root.post("/workspaces", json={"name": ws}).raise_for_status()
        r = root.post(
            "/workspaces/alpha/datasets/applicants/versions",
            params={"target": "default", "filename": csv.name},
            content=csv.read_bytes(),
        )
        r.raise_for_status()
        r = root.post(
            "/workspaces/alpha/runs",
            json={"dataset": "applicants", "spec": TRAIN, "model": "scorecard"},
        )
        r.raise_for_status()
        server.ids["run"] = r.json()["run_id"]
        server.ids["job"] = r.json()["job"]["id"]
        server.run_jobs()
        run = root.get(f"/workspaces/alpha/runs/{server.ids['run']}").json()
        assert run["status"] == "succeeded", run
        r = root.post(
            "/workspaces/alpha/endpoints",
            json={"name": "scorecard", "model": "scorecard", "version": 1},
        )
        r.raise_for_status()
        record = _first_record(server, csv)
        r = root.post("/workspaces/alpha/endpoints/scorecard/decide", json=record)
        r.raise_for_status()
        server.ids["request"] = r.json()["request_id"]
    server.app.state.endpoint_hosts.log.flush()
    server.ids["alert"] = str(_an_alert(server).id)
    server.add_user("ana", roles={"alpha": "admin"}, raw_pii=True)
    server.add_user("dev", roles={"alpha": "developer"})
    server.add_user("vera", roles={"alpha": "viewer"})
    server.add_user("bob", roles={"beta": "admin"})
    server.ids["root_token"] = server.platform.list_tokens("root")[0].id
    return server


def _first_record(server: Server, csv: Path) -> dict[str, Any]:
    import csv as csv_module

    inputs = server.platform.load_model("alpha", "scorecard", 1).input_names
    with open(csv, newline="") as f:
        row = next(csv_module.DictReader(f))
    numeric = {
        i["name"]
        for i in server.platform.load_model("alpha", "scorecard", 1).inputs
        if i["type"] == "numeric"
    }
    return {
        k: (float(row[k]) if k in numeric and row[k] != "" else (row[k] or None)) for k in inputs
    }


def _an_alert(server: Server) -> Any:
    from datetime import UTC, datetime

    from leptonic.core.endpoint import Alert

    now = datetime.now(UTC)
    return server.platform.metadata.add_alert(
        Alert("alpha", "scorecard", "psi", "age", 0.4, 0.25, "age drifted", now, now)
    )


def snapshot(store: MetadataStore) -> dict[str, Any]:
    """Everything in a metadata store, for before/after comparisons."""
    out: dict[str, Any] = {"workspaces": store.list_workspaces(), "users": store.list_users()}
    out["tokens"] = [store.list_tokens(u.name) for u in out["users"]]
    out["memberships"] = store.list_memberships()
    out["audit"] = store.list_audit(limit=1_000_000)
    for ws in out["workspaces"]:
        name = ws.name
        datasets = store.list_datasets(name)
        out[f"{name}/datasets"] = [(d, store.list_dataset_versions(name, d.name)) for d in datasets]
        out[f"{name}/runs"] = store.list_runs(name, limit=1_000_000)
        out[f"{name}/jobs"] = store.list_jobs(name, limit=1_000_000)
        models = store.list_models(name)
        out[f"{name}/models"] = [
            (m, store.list_model_versions(name, m.name), store.list_stage_transitions(name, m.name))
            for m in models
        ]
        out[f"{name}/endpoints"] = [
            (
                e,
                store.list_policy_versions(name, e.name),
                store.list_predictions(name, e.name, route=None, limit=None),
                store.labelled_predictions(name, e.name),
            )
            for e in store.list_endpoints(name)
        ]
        out[f"{name}/alerts"] = store.list_alerts(name, limit=1_000_000)
    return out


# -- real server processes ----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEPTONIC_")}
    return {**env, "LEPTONIC_HOME": str(home), "LEPTONIC_USER": "server"}


def start(command: list[str], home: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a server process and wait until it answers; returns it and its log file."""
    log_path = home / f"server-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, env=environment(home), stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log_path.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                return proc, log_path
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait(30)
    raise AssertionError("the server did not start within 60 s")
