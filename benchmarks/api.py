"""Benchmark: read latency of the REST API on a realistically sized store.

Fills a metadata store with one workspace holding 10,000 runs, a model with
1,000 versions (each with a model card, metrics and a stage history) and an
audit event per object, written in bulk through the store's tables (a few
transactions). Then it starts a real server process (``uvicorn`` on the app
factory) on a localhost port and times the main read routes sequentially
with one keep-alive httpx client: list workspaces, list runs (first page and
a deep page), get a run, list model versions, get a version, its stage
history and a page of the audit log.

It does this on SQLite and on PostgreSQL (a fresh database, dropped after;
skipped with a message when the server is unreachable) and prints p50 / p99
in milliseconds side by side. Target: p99 <= 50 ms for every route. It never
asserts.

Usage: ``python benchmarks/api.py [--requests 300] [--runs 10000] [--versions 1000]``
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table

from leptonic import Platform, Settings
from leptonic.core._time import utcnow
from leptonic.core.model_version import Model
from leptonic.storage.artifacts.local import LocalArtifactStore
from leptonic.storage.metadata import _tables as t
from leptonic.storage.registry import open_metadata_store

TARGET_P99_MS = 50.0
PG_ADMIN = os.environ.get("LEPTONIC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
WS = "bench"
MODEL = "scorecard"


def _metrics(rng: random.Random) -> dict[str, Any]:
    split = {k: round(rng.random(), 4) for k in ("auc", "ks", "gini", "pr_auc", "brier")}
    return {"valid": split, "test": dict(split)}


def fill(lp: Platform, runs: int, versions: int, seed: int = 0) -> dict[str, Any]:
    """Write the benchmark's objects; returns ids to request."""
    rng = random.Random(seed)
    store: Any = lp.metadata
    lp.create_workspace(WS, "benchmark")
    lp.create_workspace("other")
    lp.create_user("bench", admin=True)
    _, token = lp.create_token("bench")
    store.create_model(Model(WS, MODEL, "binary"))
    start = utcnow() - timedelta(days=30)
    spec = {"target": "default", "task": "binary", "candidates": ["logistic", "lightgbm"]}
    run_rows, version_rows, transition_rows, audit_rows = [], [], [], []
    run_ids = [uuid.uuid4().hex for _ in range(runs)]
    for i, run_id in enumerate(run_ids):
        at = start + timedelta(seconds=i * 60)
        run_rows.append(
            {
                "id": run_id,
                "workspace": WS,
                "status": "succeeded",
                "spec": {**spec, "seed": i, "trials": 24},
                "seed": i,
                "params": {"candidate": "logistic", "C": round(rng.random(), 4)},
                "metrics": _metrics(rng),
                "timings": {"load_s": 0.1, "search_s": 3.2, "total_s": 4.0},
                "artifacts": {"report.html": f"sha256/{secrets.token_hex(32)}"},
                "inputs": [f"leptonic://{WS}/dataset/applicants/1"],
                "error": None,
                "created_by": "bench",
                "created_at": at,
                "started_at": at,
                "finished_at": at + timedelta(seconds=4),
            }
        )
        audit_rows.append(_audit("run.train", f"leptonic://{WS}/run/{run_id}", at))
    card = "# Model card\n\n" + "A line of the model card with some detail.\n" * 50
    for v in range(1, versions + 1):
        at = start + timedelta(seconds=v * 600)
        version_rows.append(
            {
                "workspace": WS,
                "model": MODEL,
                "version": v,
                "task": "binary",
                "flavor": "logistic",
                "run_id": run_ids[v % len(run_ids)],
                "dataset": f"leptonic://{WS}/dataset/applicants/1",
                "artifact_key": f"sha256/{secrets.token_hex(32)}",
                "artifact_digest": secrets.token_hex(32),
                "signature": {"inputs": [{"name": f"x{k}", "type": "double"} for k in range(20)]},
                "metrics": _metrics(rng),
                "model_card": card,
                "stage": "staging" if v % 3 == 0 else "candidate",
                "created_by": "bench",
                "created_at": at,
            }
        )
        steps = [(None, "candidate")] + ([("candidate", "staging")] if v % 3 == 0 else [])
        for from_stage, to_stage in steps:
            transition_rows.append(
                {
                    "workspace": WS,
                    "model": MODEL,
                    "version": v,
                    "from_stage": from_stage,
                    "to_stage": to_stage,
                    "actor": "bench",
                    "reason": "benchmark",
                    "at": at,
                }
            )
        audit_rows.append(_audit("model.stage", f"leptonic://{WS}/model/{MODEL}/{v}", at))
    with store.engine.begin() as conn:
        for table, rows in (
            (t.runs, run_rows),
            (t.model_versions, version_rows),
            (t.stage_transitions, transition_rows),
            (t.audit_events, audit_rows),
        ):
            for chunk in range(0, len(rows), 2000):
                conn.execute(table.insert(), rows[chunk : chunk + 2000])
    return {"token": token, "runs": run_ids, "versions": versions}


def _audit(action: str, ref: str, at: Any) -> dict[str, Any]:
    return {
        "actor": "bench",
        "action": action,
        "workspace": WS,
        "objects": [ref],
        "details": {"note": "benchmark"},
        "at": at,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def server(home: Path, db_uri: str) -> Iterator[str]:
    """A real server process on the store; yields its base URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEPTONIC_")}
    env.update({"LEPTONIC_HOME": str(home), "LEPTONIC_DB": db_uri})
    command = [sys.executable, "-m", "uvicorn", "--factory", "leptonic.api.app:app_from_environ"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(60)


def measure(url: str, ids: dict[str, Any], requests: int) -> dict[str, tuple[float, float]]:
    """p50 and p99 in ms of each route, ``requests`` sequential calls each."""
    rng = random.Random(1)
    base = f"/api/v1/workspaces/{WS}"
    mv = f"{base}/models/{MODEL}/versions"
    routes: dict[str, Any] = {
        "list workspaces": lambda: "/api/v1/workspaces",
        "list runs (page 1)": lambda: f"{base}/runs?limit=50",
        "list runs (offset 9000)": lambda: f"{base}/runs?limit=50&offset={len(ids['runs']) - 1000}",
        "get run": lambda: f"{base}/runs/{rng.choice(ids['runs'])}",
        "list model versions": lambda: f"{mv}?limit=50",
        "get model version": lambda: f"{mv}/{rng.randint(1, ids['versions'])}",
        "stage history": lambda: f"{mv}/{rng.randint(1, ids['versions'])}/history",
        "audit page": lambda: "/api/v1/audit?limit=50",
        "workspace audit page": lambda: f"{base}/audit?limit=50&offset=500",
    }
    out: dict[str, tuple[float, float]] = {}
    headers = {"Authorization": f"Bearer {ids['token']}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for name, path in routes.items():
            for _ in range(10):  # warm up
                client.get(path()).raise_for_status()
            times = []
            for _ in range(requests):
                target = path()
                started = time.perf_counter()
                response = client.get(target)
                times.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            times.sort()
            out[name] = (
                statistics.median(times),
                times[min(len(times) - 1, int(0.99 * len(times)))],
            )
    return out


def run_backend(name: str, db_uri: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"leptonic-bench-{name}-") as tmp:
        home = Path(tmp)
        lp = Platform(
            Settings.for_home(home, "bench"),
            metadata=open_metadata_store(db_uri),
            artifacts=LocalArtifactStore(home / "artifacts"),
        )
        started = time.perf_counter()
        ids = fill(lp, args.runs, args.versions)
        fill_s = time.perf_counter() - started
        lp.close()
        with server(home, db_uri) as url:
            latencies = measure(url, ids, args.requests)
    return {"fill_s": fill_s, "latencies": latencies}


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database (dropped after), or None when PostgreSQL is unreachable."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        print("PostgreSQL skipped: psycopg is not installed (pip install 'leptonic[postgres]')")
        yield None
        return
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        print(f"PostgreSQL skipped: {PG_ADMIN} is unreachable ({' '.join(str(exc).split())})")
        yield None
        return
    name = f"leptonic_bench_{secrets.token_hex(4)}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        scheme, _, rest = PG_ADMIN.partition("://")
        yield f"{scheme}://{rest.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=1_000)
    args = parser.parse_args()

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = run_backend("sqlite", f"sqlite:///{tmp}/bench.db", args)
    with postgres_database() as pg_uri:
        if pg_uri is not None:
            results["PostgreSQL"] = run_backend("postgresql", pg_uri, args)

    names = list(results)
    routes = list(results[names[0]]["latencies"])
    header = ["route"]
    for name in names:
        header += [f"{name} p50 ms", f"{name} p99 ms"]
    header.append(f"p99 <= {TARGET_P99_MS:.0f} ms")
    rows = []
    for route in routes:
        row: list[Any] = [route]
        ok = True
        for name in names:
            p50, p99 = results[name]["latencies"][route]
            row += [round(p50, 2), round(p99, 2)]
            ok = ok and p99 <= TARGET_P99_MS
        row.append("yes" if ok else "NO")
        rows.append(row)
    title = (
        f"REST API read latency: {args.runs} runs, {args.versions} model versions, "
        f"{args.requests} sequential requests per route"
    )
    print_table(title, header, rows)
    for name in names:
        print(f"{name}: store filled in {results[name]['fill_s']:.1f} s")


if __name__ == "__main__":
    main()
