"""Real-time decisions: Leptonic's endpoint against ``mlflow models serve`` and a no-op.

The Taiwan credit-card default data (``../shared/data/credit_default_taiwan``)
trains two models through Leptonic: a logistic-regression scorecard and a
LightGBM model. Each is served

* by ``leptonic endpoint serve`` (one process, one worker) with its decision
  policy, reason codes, token authentication and the prediction log on, and
* by ``mlflow models serve`` (one worker), the same Leptonic model wrapped as
  an MLflow pyfunc (MLflow is installed by this script into its own virtual
  environment under ``~/.cache/leptonic-bench``),

and a bare Starlette app that answers a constant is the ceiling. Load comes
from ``wrk`` (Debian package) on 127.0.0.1: 16 connections, one wrk thread
(the other core is the server's), the same rotating request bodies (real
test rows). Then a 60-second load with a graceful restart of the Leptonic
endpoint in the middle compares the responses the clients received with the
records in the prediction log.

Run: ``python benchmarks/serving.py [--duration 15] [--skip-mlflow] [--restart-seconds 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, print_table
from _http import free_port, stop, wrk, wrk_script

TAIWAN = DATA / "credit_default_taiwan" / "default_of_credit_card_clients.csv"
TARGET = "default_payment_next_month"
WORKSPACE = "credit"
CONNECTIONS = 16
#: endpoint → (model label, decisions/s target); the LightGBM model is served twice:
#: reason codes by TreeSHAP (the default) and by path attributions.
ENDPOINTS = {
    "scorecard": ("scorecard", 8000.0),
    "lightgbm": ("lightgbm", 5000.0),
    "lightgbm-path": ("lightgbm", 5000.0),
}


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer from {url} in {timeout} s")


# -- models -------------------------------------------------------------------------
def prepare(home: Path) -> dict[str, Any]:
    """Ingest Taiwan, train the two models, deploy two endpoints, make a token."""
    import leptonic
    from leptonic.core.access import Role

    lp = leptonic.Platform.open(leptonic.Settings.for_home(home, user="bench"))
    lp.create_workspace(WORKSPACE)
    lp.add_data(WORKSPACE, TAIWAN, name="taiwan", target=TARGET)
    out: dict[str, Any] = {"models": {}}
    for label, family in (("scorecard", "logistic"), ("lightgbm", "lightgbm")):
        spec = leptonic.TrainSpec(
            target=TARGET,
            exclude=("ID",),
            candidates=(family,),
            split="holdout",
            fractions=(0.5, 0.2, 0.3),
            trials=8,
            timeout_s=60.0,
            ensemble=False,
            # the scorecard is the classic one: each raw characteristic WoE-binned,
            # without the behaviour aggregates the default spec adds
            behaviour_aggregates=family != "logistic",
            seed=0,
        )
        t = time.perf_counter()
        outcome = lp.train(WORKSPACE, "taiwan", spec, model_name=f"taiwan-{label}")
        mv = outcome.model_version
        assert mv is not None
        lp.endpoints.create(WORKSPACE, label, mv.model, mv.version)
        if family == "lightgbm":
            from leptonic.serving.policy import default_policy

            policy = {
                **default_policy(lp.load_model(WORKSPACE, mv.model, mv.version).threshold or 0.5),
                "tree_reasons": "path",
            }
            lp.endpoints.create(WORKSPACE, "lightgbm-path", mv.model, mv.version, policy=policy)
        out["models"][label] = {
            "model": mv.model,
            "version": mv.version,
            "flavor": mv.flavor,
            "auc": mv.metrics.get("test", {}).get("auc"),
            "train_s": time.perf_counter() - t,
        }
    lp.create_user("decider")
    lp.set_member(WORKSPACE, "decider", Role.DEVELOPER)  # decisions write the log
    _, secret = lp.create_token("decider", "benchmark")
    out["token"] = secret
    predictor = lp.load_model(WORKSPACE, out["models"]["scorecard"]["model"], 1)
    names = predictor.input_names
    lp.close()
    import pandas as pd

    frame = pd.read_csv(TAIWAN, nrows=400)
    records = [
        {k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame[names].to_dict(orient="records")
    ]
    out["records"] = records
    return out


# -- servers ------------------------------------------------------------------------------
def leptonic_server(home: Path, endpoint: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LEPTONIC_HOME": str(home), "LEPTONIC_USER": "bench"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "leptonic.cli.main",
            "endpoint",
            "serve",
            endpoint,
            "-w",
            WORKSPACE,
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_http(f"http://127.0.0.1:{port}/health", proc)
    return proc


NOOP_APP = textwrap.dedent(
    """
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    BODY = b'{"decision":"approve","score":0.1}'

    async def decide(request):
        await request.body()
        return Response(BODY, media_type="application/json")

    app = Starlette(routes=[Route("/decide", decide, methods=["POST"])])
    """
)


def noop_server(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    (tmp / "noop_app.py").write_text(NOOP_APP)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "noop_app:app",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/decide", content=b"{}", timeout=1.0)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the no-op server did not start")


# -- load -----------------------------------------------------------------------------
def load(url: str, script: Path, seconds: int, before: Any = None) -> dict[str, Any]:
    """A 2-second warm-up, then the measured run; ``before()`` runs in between
    (the log count before the measured requests)."""
    wrk(url, script, 2)
    if before is not None:
        time.sleep(1.5)  # let the warm-up's records reach the log
        before()
    return wrk(url, script, seconds)


def count_log(home: Path, endpoint: str) -> int:
    import leptonic

    lp = leptonic.Platform.open(leptonic.Settings.for_home(home, user="bench"))
    try:
        return lp.metadata.count_predictions(WORKSPACE, endpoint)
    finally:
        lp.close()


# -- the graceful-restart run ---------------------------------------------------------------
async def _client_load(
    url: str, bodies: list[bytes], headers: dict[str, str], stop_at: float, counts: dict[str, int]
) -> None:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

        async def worker(k: int) -> None:
            i = k
            while time.monotonic() < stop_at:
                i += 1
                try:
                    r = await client.post(url, content=bodies[i % len(bodies)], headers=headers)
                except httpx.HTTPError:
                    counts["refused"] += 1
                    await asyncio.sleep(0.01)
                    continue
                if r.status_code == 200:
                    counts["ok"] += 1
                else:
                    counts["status_" + str(r.status_code)] = (
                        counts.get("status_" + str(r.status_code), 0) + 1
                    )

        await asyncio.gather(*(worker(k) for k in range(CONNECTIONS)))


def restart_run(
    home: Path, endpoint: str, bodies: list[bytes], headers: dict[str, str], seconds: int
) -> dict[str, Any]:
    before = count_log(home, endpoint)
    port = free_port()
    url = f"http://127.0.0.1:{port}/decide"
    proc = leptonic_server(home, endpoint, port)
    counts: dict[str, int] = {"ok": 0, "refused": 0}
    restarted: dict[str, float] = {}

    async def main() -> None:
        start = time.monotonic()
        stop_at = start + seconds
        load_task = asyncio.create_task(_client_load(url, bodies, headers, stop_at, counts))
        await asyncio.sleep(seconds / 2)
        t = time.monotonic()
        nonlocal proc
        await asyncio.to_thread(stop, proc)
        proc = await asyncio.to_thread(leptonic_server, home, endpoint, port)
        restarted["down_s"] = time.monotonic() - t
        await load_task

    asyncio.run(main())
    stop(proc)
    logged = count_log(home, endpoint) - before
    return {
        "responses": counts["ok"],
        "logged": logged,
        "refused": counts["refused"],
        "down_s": restarted.get("down_s", 0.0),
        "other": {k: v for k, v in counts.items() if k not in ("ok", "refused")},
    }


# -- main ---------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per server")
    parser.add_argument("--restart-seconds", type=int, default=60)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-restart", action="store_true")
    args = parser.parse_args()
    if not TAIWAN.exists():
        sys.exit(f"{TAIWAN} is missing: this benchmark needs ../shared/data (see its README)")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    tmp = Path(tempfile.mkdtemp(prefix="leptonic-serving-"))
    home = tmp / "home"
    t = time.perf_counter()
    prepared = prepare(home)
    print(
        f"trained and deployed in {time.perf_counter() - t:.1f} s: "
        + ", ".join(f"{k} AUC {v['auc']:.4f}" for k, v in prepared["models"].items())
    )
    bodies = [json.dumps(r).encode() for r in prepared["records"]]
    auth = {"Content-Type": "application/json", "Authorization": f"Bearer {prepared['token']}"}
    rows: list[list[Any]] = []
    results: dict[str, dict[str, Any]] = {}

    port = free_port()
    proc = noop_server(tmp, port)
    try:
        script = wrk_script("/decide", bodies, {"Content-Type": "application/json"}, tmp)
        results["noop"] = load(f"http://127.0.0.1:{port}", script, args.duration)
    finally:
        stop(proc)

    for endpoint in ENDPOINTS:
        port = free_port()
        counted: dict[str, int] = {}
        proc = leptonic_server(home, endpoint, port)
        try:
            script = wrk_script("/decide", bodies, auth, tmp)
            res = load(
                f"http://127.0.0.1:{port}",
                script,
                args.duration,
                before=lambda e=endpoint, c=counted: c.update(n=count_log(home, e)),
            )
        finally:
            stop(proc)
        # wrk counts the responses it read; up to 16 more were in flight when it stopped
        res["logged"] = count_log(home, endpoint) - counted["n"]
        results[f"leptonic-{endpoint}"] = res

    if not args.skip_mlflow:
        import _mlflow

        python = _mlflow.ensure_mlflow_venv(Path.home() / ".cache" / "leptonic-bench")
        for label in ("scorecard", "lightgbm"):
            info = prepared["models"][label]
            model_dir = _mlflow.export_pyfunc(
                python, home, WORKSPACE, info["model"], info["version"], tmp / f"mlflow-{label}"
            )
            port = free_port()
            proc = _mlflow.start_mlflow_server(python, model_dir, port, home)
            try:
                ml_bodies = [_mlflow.invocation_body(r) for r in prepared["records"]]
                script = wrk_script(
                    _mlflow.INVOCATIONS_PATH, ml_bodies, {"Content-Type": "application/json"}, tmp
                )
                results[f"mlflow-{label}"] = load(f"http://127.0.0.1:{port}", script, args.duration)
            finally:
                _mlflow.stop(proc)

    ceiling = results["noop"]["rps"]
    rows.append(
        [
            "starlette no-op (ceiling)",
            results["noop"]["rps"],
            results["noop"]["p50"],
            results["noop"]["p99"],
            results["noop"]["errors"],
            "-",
            "-",
            "-",
        ]
    )
    names = {
        "scorecard": "leptonic scorecard (policy, reasons, log)",
        "lightgbm": "leptonic lightgbm (policy, TreeSHAP reasons, log)",
        "lightgbm-path": "leptonic lightgbm (policy, path reasons, log)",
    }
    for endpoint, (label, _) in ENDPOINTS.items():
        lep = results[f"leptonic-{endpoint}"]
        ml = results.get(f"mlflow-{label}")
        ratio = lep["rps"] / ml["rps"] if ml else float("nan")
        rows.append(
            [
                names[endpoint],
                lep["rps"],
                lep["p50"],
                lep["p99"],
                lep["errors"],
                f"{lep['logged']}/{lep['requests']}",
                f"{lep['rps'] / ceiling:.2f}",
                f"{ratio:.1f}",
            ]
        )
    for label in ("scorecard", "lightgbm"):
        ml = results.get(f"mlflow-{label}")
        if ml:
            rows.append(
                [
                    f"mlflow models serve {label} (score only)",
                    ml["rps"],
                    ml["p50"],
                    ml["p99"],
                    ml["errors"],
                    "-",
                    f"{ml['rps'] / ceiling:.2f}",
                    "1.0",
                ]
            )
    print_table(
        f"Taiwan credit decisions over HTTP: wrk, {CONNECTIONS} connections, 1 server worker, "
        f"{args.duration} s each",
        [
            "server",
            "decisions/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "logged/wrk count",
            "x ceiling",
            "x mlflow",
        ],
        rows,
    )
    for endpoint, (label, target) in ENDPOINTS.items():
        lep = results[f"leptonic-{endpoint}"]
        ml = results.get(f"mlflow-{label}")
        ok = lep["rps"] >= target and lep["p99"] <= 3.0 and lep["errors"] == 0
        ratio_ok = ml is None or lep["rps"] >= 5 * ml["rps"]
        print(
            f"target {endpoint}: >= {target:.0f}/s, p99 <= 3 ms, 0 errors, >= 5x mlflow -> "
            f"{lep['rps']:.0f}/s, p99 {lep['p99']:.2f} ms, {lep['errors']} errors "
            f"({'met' if ok and ratio_ok else 'NOT met'})"
        )
        if lep["socket_errors"]:
            print(f"  wrk socket errors: {lep['socket_errors']}")

    if args.skip_restart:
        shutil.rmtree(tmp, ignore_errors=True)
        return
    res = restart_run(home, "scorecard", bodies, auth, args.restart_seconds)
    print_table(
        f"{args.restart_seconds}-second load, graceful restart (SIGTERM, start again) in the middle",
        ["responses received (200)", "records logged", "equal", "refused while down", "down s"],
        [
            [
                res["responses"],
                res["logged"],
                res["responses"] == res["logged"],
                res["refused"],
                res["down_s"],
            ]
        ],
    )
    if res["other"]:
        print(f"other statuses: {res['other']}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
