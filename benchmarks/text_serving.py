"""Serving a text classifier over HTTP: dynamic micro-batching on vs off.

The model is registered in a fresh Leptonic home (SQLite, local files) and
deployed as a text endpoint; each case runs the product's own server,
``leptonic endpoint serve`` (uvicorn, one worker, API tokens, the prediction
log written by a child process), in its own process. With batching on,
concurrent requests are gathered by the endpoint's micro-batcher (up to
``--batch`` texts or ``--wait-ms`` milliseconds); with batching off, the
policy's ``max_batch_size`` is 1, so every request gets its own forward pass.
Runtimes (the policy's ``runtime`` and ``precision``): torch fp32, torch with
bf16 autocast, and the ONNX Runtime export (checked against torch when the
endpoint loads it). 16 lean keep-alive HTTP clients (asyncio streams) send
real Banking77 utterances for a fixed time; the table shows throughput,
p50/p99 latency, the mean batch size and the share of the time the model was busy. The model is the MiniLM encoder with
a 77-class head (what a Banking77 model computes; the weights' values do not
change the cost) unless ``--model`` names a folder saved by
``TextPredictor.save``. Clients and server share this machine's cores. Prints
a table; never asserts.

Usage: python benchmarks/text_serving.py [--quick] [--clients 16] [--seconds 20]
       [--batch 32] [--wait-ms 5] [--threads 1] [--runtimes torch,torch-bf16,onnx]
(torch-bf16 runs by default only where the CPU has bf16 units.)
       [--model FOLDER]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, print_table
from _http import Connection, free_port, summary

BANKING77 = DATA / "banking77" / "train.csv"
WORKSPACE = "support"
RUNTIMES = {"torch": ("torch", "fp32"), "torch-bf16": ("torch", "bf16"), "onnx": ("onnx", "fp32")}


# --- the model and the endpoints -------------------------------------------------------------


def build_model(folder: Path, n_labels: int = 77) -> None:
    """Save the MiniLM encoder with a fresh ``n_labels`` head as a Leptonic text model."""
    import torch

    from leptonic.tasks.textcls import TextPredictor, resolve_base_model
    from leptonic.tasks.textcls._nets import LogitsOf
    from leptonic.tasks.textcls._runtime import quiet_transformers, transformers_module

    torch.manual_seed(0)
    tf = transformers_module()
    base = resolve_base_model(None)
    classes = [f"intent_{i:02d}" for i in range(n_labels)]
    with quiet_transformers():
        model = tf.AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=n_labels, local_files_only=True
        )
        tokenizer = tf.AutoTokenizer.from_pretrained(base, local_files_only=True)
    TextPredictor(
        flavor="transformer",
        classes=classes,
        net=LogitsOf(model),
        tokenizer=tokenizer,
        max_length=64,
    ).save(folder)


def prepare(home: Path, folder: Path, cases: list[tuple[str, str, int, float]]) -> str:
    """Register the model in ``home``, deploy one endpoint per case; return a developer token.

    ``cases``: (endpoint name, runtime name, largest batch, wait in ms).
    """
    import leptonic
    from leptonic.core.access import Role
    from leptonic.core.model_version import Model, ModelVersion
    from leptonic.tasks.textcls import TextPredictor, save_text_predictor

    predictor = TextPredictor.load(folder)
    lp = leptonic.Platform.open(leptonic.Settings.for_home(home, user="bench"))
    try:
        lp.create_workspace(WORKSPACE)
        key, digest = save_text_predictor(predictor, lp.artifacts)
        lp.metadata.create_model(Model(WORKSPACE, "intents", task="text-classification"))
        mv = lp.metadata.add_model_version(
            ModelVersion(
                WORKSPACE,
                "intents",
                0,
                "text-classification",
                predictor.flavor,
                "benchmark",
                f"{WORKSPACE}/banking77@1",
                key,
                digest,
                {"inputs": predictor.inputs, "classes": predictor.classes},
                {},
                "",
            )
        )
        for name, runtime, batch, wait_ms in cases:
            engine, precision = RUNTIMES[runtime]
            policy = {
                "runtime": engine,
                "precision": precision,
                "max_batch_size": batch,
                "max_wait_ms": wait_ms,
            }
            lp.endpoints.create(WORKSPACE, name, mv.model, mv.version, policy=policy)
        lp.create_user("agent")
        lp.set_member(WORKSPACE, "agent", Role.DEVELOPER)
        return lp.create_token("agent", "benchmark")[1]
    finally:
        lp.close()


# --- the clients -------------------------------------------------------------------------


def _texts() -> list[str]:
    import pandas as pd

    return pd.read_csv(BANKING77)["text"].astype(str).tolist()


async def _batcher(control: Connection) -> dict[str, Any]:
    status, body = await control.request("GET", "/health")
    if status != 200:
        raise RuntimeError(f"GET /health answered HTTP {status}: {body[:300]!r}")
    return dict(json.loads(body)["batcher"])


async def _load(
    port: int, token: str, texts: list[str], clients: int, seconds: float
) -> dict[str, Any]:
    bodies = [json.dumps({"text": t}).encode("utf-8") for t in texts]
    latencies: list[float] = []
    errors = 0
    rng = random.Random(0)
    control = await Connection.open(port, token)
    for body in bodies[:8]:  # warm-up
        status, answer = await control.request("POST", "/predict", body)
        if status != 200:
            raise RuntimeError(f"warm-up request failed with HTTP {status}: {answer[:300]!r}")
    before = await _batcher(control)
    conns = [await Connection.open(port, token) for _ in range(clients)]
    stop = time.perf_counter() + seconds

    async def client(conn: Connection) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            status, _ = await conn.request("POST", "/predict", rng.choice(bodies))
            if status == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in conns))
    elapsed = time.perf_counter() - t0
    control.close()  # idle past uvicorn's keep-alive timeout: open a fresh one
    control = await Connection.open(port, token)
    after = await _batcher(control)
    for conn in [control, *conns]:
        conn.close()
    lat = summary(latencies)
    batches = after["batches"] - before["batches"]
    return {
        "requests": len(latencies),
        "errors": errors,
        "throughput": len(latencies) / elapsed,
        "p50_ms": lat["p50"],
        "p99_ms": lat["p99"],
        "mean_batch": (after["items"] - before["items"]) / batches if batches else 0.0,
        # share of the time the model was computing (the rest: waiting for requests)
        "model_busy": (after["busy_s"] - before["busy_s"]) / elapsed,
    }


def _wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{err[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)  # polling a child process's port: nothing to wait on instead
    raise RuntimeError(f"the server did not listen on port {port} within {timeout:.0f}s")


def run_case(args: argparse.Namespace, home: Path, token: str, endpoint: str) -> dict[str, Any]:
    """Serve ``endpoint`` with ``leptonic endpoint serve`` and load it for ``args.seconds``."""
    port = free_port()
    env = {
        **os.environ,
        "LEPTONIC_HOME": str(home),
        "LEPTONIC_USER": "bench",
        "OMP_NUM_THREADS": str(args.threads),  # torch's intra-op threads in the server
    }
    cmd = [sys.executable, "-m", "leptonic.cli.main", "endpoint", "serve", endpoint]
    proc = subprocess.Popen(
        [*cmd, "-w", WORKSPACE, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_up(port, proc)
        try:
            import uvloop

            return uvloop.run(_load(port, token, _texts(), args.clients, args.seconds))
        except ImportError:
            return asyncio.run(_load(port, token, _texts(), args.clients, args.seconds))
    finally:
        proc.send_signal(signal.SIGTERM)  # graceful: the log is written out
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 s per case instead of 20")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--batch", type=int, default=32, help="largest batch with batching on")
    parser.add_argument("--wait-ms", type=float, default=5.0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads in the server (the clients use the other core of a 2-core machine)",
    )
    parser.add_argument(
        "--runtimes",
        default=None,
        help="torch (fp32), torch-bf16 (bf16 autocast: fast on CPUs with AMX or AVX-512 BF16; "
        "left out by default where bf16 would be emulated), onnx (ONNX Runtime)",
    )
    parser.add_argument("--model", default=None, help="a folder saved by TextPredictor.save")
    args = parser.parse_args()
    args.seconds = args.seconds or (8.0 if args.quick else 20.0)
    if args.runtimes is None:
        from leptonic.tasks.textcls._runtime import native_bf16, torch_module

        native = native_bf16(torch_module().device("cpu"))
        args.runtimes = "torch,torch-bf16,onnx" if native else "torch,onnx"
        if not native:
            print(
                "torch-bf16 left out: this CPU has no AMX or AVX-512 BF16 (bf16 would be "
                "emulated, slower than fp32); --runtimes torch-bf16 runs it anyway",
                file=sys.stderr,
            )
    runtimes = [r for r in args.runtimes.split(",") if r]
    unknown = sorted(set(runtimes) - set(RUNTIMES))
    if unknown:
        parser.error(f"unknown runtime(s) {unknown}; known: {', '.join(RUNTIMES)}")
    cases = [
        (f"{runtime}-{label}", runtime, batch)
        for runtime in runtimes
        for label, batch in (("off", 1), ("on", args.batch))
    ]
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else Path(tmp) / "model"
        if not args.model:
            build_model(model)
        home = Path(tmp) / "home"
        token = prepare(
            home, model, [(name, runtime, batch, args.wait_ms) for name, runtime, batch in cases]
        )
        for name, runtime, batch in cases:
            label = "off" if batch == 1 else "on"
            print(f"serving {runtime}, batching {label} ...", file=sys.stderr, flush=True)
            r = run_case(args, home, token, name)
            results[(runtime, label)] = r
            off = results.get((runtime, "off"))
            ratio = r["throughput"] / off["throughput"] if off and off["throughput"] else 1.0
            rows.append(
                [
                    runtime,
                    label if batch == 1 else f"on (≤{batch}, {args.wait_ms:g} ms)",
                    r["requests"],
                    r["errors"],
                    f"{r['throughput']:.1f}",
                    f"{ratio:.2f}×",
                    f"{r['p50_ms']:.1f}",
                    f"{r['p99_ms']:.1f}",
                    f"{r['mean_batch']:.1f}",
                    f"{r['model_busy']:.0%}",
                ]
            )
    print_table(
        f"Text endpoint over HTTP, {args.clients} concurrent clients, {args.seconds:g} s per case, "
        f"{args.threads} torch threads",
        [
            "runtime",
            "batching",
            "requests",
            "errors",
            "req/s",
            "vs off",
            "p50 ms",
            "p99 ms",
            "mean batch",
            "model busy",
        ],
        rows,
    )
    for runtime in runtimes:
        on, off = results[(runtime, "on")], results[(runtime, "off")]
        ratio = on["throughput"] / off["throughput"] if off["throughput"] else float("nan")
        # the target is the default runtime's; the others are shown for comparison
        verdict = ("met" if ratio >= 2 else "NOT met") if runtime == "torch" else "reference"
        print(
            f"target {runtime}: batching on >= 2x the throughput of off -> {ratio:.2f}x "
            f"({verdict}), p99 {on['p99_ms']:.1f} ms on, {off['p99_ms']:.1f} ms off"
        )
    print(json.dumps({f"{k[0]}/{k[1]}": v for k, v in results.items()}))


if __name__ == "__main__":
    main()
