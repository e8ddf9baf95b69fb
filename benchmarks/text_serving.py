"""Serving a text classifier over HTTP: dynamic micro-batching on vs off.

A minimal Starlette app under uvicorn (one worker, its own process) serves a
:class:`~leptonic.tasks.textcls.TextPredictor` at ``POST /predict``
(``{"text": ...}`` → label, probability, top-k). With batching on, requests
go through a :class:`~leptonic.serving.batching.MicroBatcher` (up to
``--batch`` texts or ``--wait-ms`` milliseconds); with batching off, the same
batcher with a batch size of 1 runs one forward pass per request. Runtimes:
torch fp32, torch with bf16 autocast (AMX CPUs), and the ONNX Runtime export
(checked against torch when exported). 16 lean keep-alive HTTP clients
(asyncio streams) send real Banking77 utterances for a fixed time; the table
shows throughput, p50/p99 latency and the mean batch size. The model is the
MiniLM encoder with a 77-class head (what a Banking77 model computes; the
weights' values do not change the cost) unless ``--model`` names a folder
saved by ``TextPredictor.save``. Clients and server share this machine's
cores. Prints a table; never asserts.

Usage: python benchmarks/text_serving.py [--quick] [--clients 16] [--seconds 20]
       [--batch 32] [--wait-ms 5] [--threads 1] [--runtimes torch,torch-bf16,onnx]
       [--model FOLDER]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, print_table

BANKING77 = DATA / "banking77" / "train.csv"


# --- the server (runs in its own process) ------------------------------------------------


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


def create_app(model: str, batch: int, wait_ms: float, runtime: str) -> Any:
    import contextlib

    import orjson
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from leptonic.errors import InvalidInput
    from leptonic.serving.batching import MicroBatcher, Overloaded
    from leptonic.tasks.textcls import TextPredictor
    from leptonic.tasks.textcls._data import check_texts

    precision = "bf16" if runtime == "torch-bf16" else "fp32"
    predictor = TextPredictor.load(model, precision=precision)
    if runtime == "onnx":
        import torch

        from leptonic.tasks.textcls.onnx import export_onnx

        folder = tempfile.TemporaryDirectory()  # removed when the server process ends
        predictor = export_onnx(
            predictor, Path(folder.name) / "model.onnx", threads=torch.get_num_threads()
        )
        predictor.info["folder"] = folder
    batcher = MicroBatcher(predictor.predict_answers, max_batch_size=batch, max_wait_ms=wait_ms)

    async def predict(request: Request) -> JSONResponse:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "invalid_input", "message": "send JSON"}, 422)
        text = body.get("text") if isinstance(body, dict) else None
        try:
            check_texts([text], max_chars=predictor.max_chars)
            answer = await batcher.submit(text)
        except InvalidInput as exc:
            return JSONResponse({"error": exc.code, "message": str(exc)}, status_code=422)
        except Overloaded as exc:
            return JSONResponse({"error": exc.code, "message": str(exc)}, status_code=503)
        answer.pop("probabilities")  # label, probability and top-k are enough on the wire
        return Response(orjson.dumps(answer), media_type="application/json")

    async def stats(request: Request) -> JSONResponse:
        s = batcher.stats
        return JSONResponse(
            {"items": s.items, "batches": s.batches, "mean_batch": s.mean_batch_size}
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        await batcher.start()
        yield
        await batcher.close()

    return Starlette(
        routes=[Route("/predict", predict, methods=["POST"]), Route("/stats", stats)],
        lifespan=lifespan,
    )


def serve(args: argparse.Namespace) -> None:
    import torch
    import uvicorn

    torch.set_num_threads(args.threads)
    app = create_app(args.model, args.batch, args.wait_ms, args.runtime)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", workers=1)


# --- the clients -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _texts() -> list[str]:
    import pandas as pd

    return pd.read_csv(BANKING77)["text"].astype(str).tolist()


class _Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol.

    A lean client (asyncio streams, Content-Length framing) keeps the load
    generator's own CPU use small: it shares the machine with the server.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode("ascii") + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _load(port: int, texts: list[str], clients: int, seconds: float) -> dict[str, Any]:
    import numpy as np

    bodies = [json.dumps({"text": t}).encode("utf-8") for t in texts]
    latencies: list[float] = []
    errors = 0
    rng = random.Random(0)
    control = await _Connection.open(port)
    for body in bodies[:8]:  # warm-up
        status, _ = await control.request("POST", "/predict", body)
        if status != 200:
            raise RuntimeError(f"warm-up request failed with HTTP {status}")
    before = json.loads((await control.request("GET", "/stats"))[1])
    conns = [await _Connection.open(port) for _ in range(clients)]
    stop = time.perf_counter() + seconds

    async def client(conn: _Connection) -> None:
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
    control = await _Connection.open(port)
    after = json.loads((await control.request("GET", "/stats"))[1])
    for conn in [control, *conns]:
        conn.close()
    lat = np.array(latencies) * 1000
    batches = after["batches"] - before["batches"]
    return {
        "requests": len(latencies),
        "errors": errors,
        "throughput": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
        "mean_batch": (after["items"] - before["items"]) / batches if batches else 0.0,
    }


def _wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)  # polling a child process's port: nothing to wait on instead
    raise RuntimeError(f"the server did not listen on port {port} within {timeout:.0f}s")


def run_case(args: argparse.Namespace, model: Path, batch: int, runtime: str) -> dict[str, Any]:
    port = _free_port()
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve",
        "--model",
        str(model),
        "--port",
        str(port),
        "--batch",
        str(batch),
        "--wait-ms",
        str(args.wait_ms),
        "--threads",
        str(args.threads),
        "--runtime",
        runtime,
    ]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    try:
        _wait_up(port, proc)
        try:
            import uvloop

            return uvloop.run(_load(port, _texts(), args.clients, args.seconds))
        except ImportError:
            return asyncio.run(_load(port, _texts(), args.clients, args.seconds))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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
        default="torch,torch-bf16,onnx",
        help="torch (fp32), torch-bf16 (bf16 autocast: fast on AMX CPUs), onnx (ONNX Runtime)",
    )
    parser.add_argument("--model", default=None, help="a folder saved by TextPredictor.save")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--runtime", default="torch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    args.seconds = args.seconds or (8.0 if args.quick else 20.0)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else Path(tmp) / "model"
        if not args.model:
            build_model(model)
        runtimes = [r for r in args.runtimes.split(",") if r]
        unknown = sorted(set(runtimes) - {"torch", "torch-bf16", "onnx"})
        if unknown:
            parser.error(f"unknown runtime(s) {unknown}; known: torch, torch-bf16, onnx")
        rows, results = [], {}
        for runtime in runtimes:
            for label, batch in (("off", 1), ("on", args.batch)):
                print(f"serving {runtime}, batching {label} ...", file=sys.stderr, flush=True)
                r = run_case(args, model, batch, runtime)
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
        ],
        rows,
    )
    print(json.dumps({f"{k[0]}/{k[1]}": v for k, v in results.items()}))


if __name__ == "__main__":
    main()
