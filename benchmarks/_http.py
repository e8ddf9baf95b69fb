"""A lean HTTP/1.1 client for the serving benchmarks, and paced (open-loop) load.

The load generator shares this machine's two cores with the server, so its
own cost per request must stay small: one keep-alive connection per client
(asyncio streams, Content-Length framing, no parsing beyond the status line
and the length).

:func:`paced` offers a fixed rate of requests whatever the server's answers
take (open loop, like wrk2): request ``i`` is due at ``t0 + i / rate``, on
the next free connection, and its latency is counted from when it was due,
so time spent queued behind a slow answer counts (no coordinated omission).
This gives the latency a user sees at a given load; a closed loop (wrk) at
16 connections instead measures the latency at saturation, which on a small
machine is mostly queueing.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Connection", "free_port", "paced", "stop", "summary", "wrk", "wrk_script"]


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str | None
    ) -> None:
        self.reader, self.writer = reader, writer
        self.auth = f"Authorization: Bearer {token}\r\n" if token else ""

    @classmethod
    async def open(cls, port: int, token: str | None = None) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, token)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.auth}"
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


def summary(latencies_s: list[float]) -> dict[str, float]:
    """p50, p99 and p99.9 in milliseconds, and the largest."""
    if not latencies_s:
        return {"p50": float("nan"), "p99": float("nan"), "p999": float("nan"), "max": float("nan")}
    ms = np.asarray(latencies_s) * 1000.0
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "p999": float(np.percentile(ms, 99.9)),
        "max": float(ms.max()),
    }


async def paced(
    port: int,
    token: str | None,
    path: str,
    bodies: list[bytes],
    *,
    rate: float,
    seconds: float,
    connections: int = 16,
) -> dict[str, Any]:
    """Offer ``rate`` requests a second for ``seconds`` over ``connections`` connections.

    Returns the offered and achieved rates, the error count and the latency
    summary (from each request's due time).
    """
    conns = [await Connection.open(port, token) for _ in range(connections)]
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for c in conns:
        free.put_nowait(c)
    latencies: list[float] = []
    errors = 0
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def one(conn: Connection, due: float, body: bytes) -> None:
        nonlocal errors
        try:
            status, _ = await conn.request("POST", path, body)
        finally:
            free.put_nowait(conn)
        if status == 200:
            latencies.append(time.perf_counter() - due)
        else:
            errors += 1

    t0 = time.perf_counter() + 0.05
    for i in range(total):
        due = t0 + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        conn = await free.get()  # all busy: this request waits (and its wait counts)
        task = loop.create_task(one(conn, due, bodies[i % len(bodies)]))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return {
        "offered": rate,
        "achieved": len(latencies) / elapsed if elapsed > 0 else float("nan"),
        "requests": len(latencies),
        "errors": errors,
        **summary(latencies),
    }


# -- servers and wrk (the Debian package) -------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk_script(path: str, bodies: list[bytes], headers: dict[str, str], tmp: Path) -> Path:
    lua_bodies = ",\n".join("[==[" + b.decode() + "]==]" for b in bodies)
    lua_headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = tmp / f"load-{abs(hash((path, len(bodies))))}.lua"
    script.write_text(
        f"""
wrk.method = "POST"
{lua_headers}
local bodies = {{
{lua_bodies}
}}
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "{path}", nil, bodies[i])
end
"""
    )
    return script


def wrk(url: str, script: Path, seconds: int, connections: int = 16) -> dict[str, Any]:
    """Run wrk (one thread, ``connections`` keep-alive connections) with ``script``; parse it."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def unit(value: str, suffix: str) -> float:
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[suffix]
        return float(value) * scale

    lat = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)", out, flags=re.M))

    def ms(text: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", text)
        assert m, text
        return unit(m.group(1), m.group(2))

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": requests,
        "rps": rps,
        "p50": ms(lat["50"]),
        "p99": ms(lat["99"]),
        "errors": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "",
        "raw": out,
    }
