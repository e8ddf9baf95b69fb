"""A graceful restart of ``leptonic endpoint serve`` under load loses no log record:
the prediction log holds exactly as many records as 200 responses were received."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx

from serving.conftest import Deployed, free_port


def _serve(d: Deployed, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LEPTONIC_HOME": str(d.home), "LEPTONIC_USER": "ana"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "leptonic.cli.main",
            "endpoint",
            "serve",
            "restart-test",
            "-w",
            "credit",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the endpoint server exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("the endpoint server did not start")


def test_graceful_restart_under_load_loses_nothing(deployed: Deployed) -> None:
    lp = deployed.platform
    model, version = deployed.logistic
    lp.as_user("boss").endpoints.create("credit", "restart-test", model, version)
    port = free_port()
    url = f"http://127.0.0.1:{port}/decide"
    headers = {"Authorization": f"Bearer {deployed.tokens['dev']}"}
    bodies = [{k: v for k, v in r.items() if k != "applicant_id"} for r in deployed.records(200)]
    ok = [0] * 8
    stop = threading.Event()

    def client(k: int) -> None:
        with httpx.Client(timeout=10) as c:
            i = k
            while not stop.is_set():
                i += 1
                try:
                    r = c.post(url, json=bodies[i % len(bodies)], headers=headers)
                except httpx.HTTPError:
                    time.sleep(0.01)
                    continue
                assert r.status_code == 200, r.text
                ok[k] += 1

    proc = _serve(deployed, port)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a clean stop
        proc = _serve(deployed, port)
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    received = sum(ok)
    assert received > 100
    assert lp.metadata.count_predictions("credit", "restart-test") == received
