"""``ray://host:port``: a real Ray head node started for the test, reached through
the Ray Client from another process (Ray is one session per process, and this
one may hold ``ray://local``).

Slow (a head node takes half a minute here) and run with ``pytest -m slow``: in
a full run, the head's per-client server has once failed to start (Ray's own
``SpecificServer startup failed``), which a suite that gates every merge cannot
carry."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("ray", reason="the Ray compute backend needs the ray extra")
pytest.importorskip("grpc", reason="the Ray Client needs the ray extra (ray[client])")

CLIENT = """
import json, operator, sys
from leptonic.compute import open_executor
from leptonic.core.names import validate_name
from leptonic.errors import InvalidName

with open_executor(sys.argv[1]) as executor:
    out = {"uri": executor.uri, "workers": executor.workers, "here": executor.runs_here}
    out["products"] = executor.map(operator.mul, 3, [1, 2, 3])
    try:
        executor.map(validate_name, "Bad Name!", ["model"])
    except InvalidName as exc:
        out["error"] = [type(exc).__name__, exc.field]
print(json.dumps(out))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Token authentication (Ray's default) with a token of this test's own."""
    token = tmp_path_factory.mktemp("ray-token") / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory, auth: dict[str, str]) -> Iterator[str]:
    ray = Path(sys.executable).with_name("ray")
    gcs, client = _free_port(), _free_port()
    temp = tmp_path_factory.mktemp("ray")
    proc = subprocess.Popen(
        [
            str(ray),
            "start",
            "--head",
            "--block",
            f"--port={gcs}",
            f"--ray-client-server-port={client}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=auth,
        start_new_session=True,  # its own process group: stopped whole below
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", client)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Ray head node did not start")
            time.sleep(0.5)
        yield f"ray://127.0.0.1:{client}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_a_ray_cluster_runs_the_items_through_the_ray_client(
    head: str, auth: dict[str, str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, head],
        capture_output=True,
        text=True,
        timeout=180,
        env=auth,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {
        "uri": head,
        "workers": 2,
        "here": False,
        "products": [3, 6, 9],
        "error": ["InvalidName", "model"],
    }
