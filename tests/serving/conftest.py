"""Shared set-up for the endpoint tests: a platform on SQLite with trained models,
and a real HTTP server for an ASGI app on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import uvicorn

from leptonic import Platform, Settings, TrainSpec
from leptonic.core.access import Role
from leptonic.synthetic import write_applicants_csv

FAST = dict(target="default", trials=3, timeout_s=20.0, ensemble=False, seed=0)


@dataclass
class Deployed:
    """A platform with a workspace ``credit``, dataset ``applicants`` and two models."""

    platform: Platform
    home: Path
    logistic: tuple[str, int]
    lightgbm: tuple[str, int]
    rows: list[dict[str, Any]]
    inputs: list[str]
    tokens: dict[str, str]

    def records(self, n: int, *, start: int = 0) -> list[dict[str, Any]]:
        rows = self.rows[start : start + n]
        return [{k: r[k] for k in [*self.inputs, "applicant_id"]} for r in rows]


@pytest.fixture(scope="package")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    home = tmp_path_factory.mktemp("serving-home")
    lp = Platform.open(Settings.for_home(home, user="ana"))
    lp.create_workspace("credit")
    lp.create_workspace("other")
    csv = write_applicants_csv(home / "applicants.csv", n=3000)
    lp.add_data("credit", csv, name="applicants", target="default")
    models = {}
    for family in ("logistic", "lightgbm"):
        spec = TrainSpec(candidates=(family,), **FAST)  # type: ignore[arg-type]
        outcome = lp.train("credit", "applicants", spec, model_name=f"risk-{family}")
        assert outcome.model_version is not None
        models[family] = (outcome.model_version.model, outcome.model_version.version)
    predictor = lp.load_model("credit", *models["logistic"])
    dv = lp.dataset_version("credit", "applicants")
    rows = pq.read_table(lp.artifacts.local_path(dv.artifact_key)).to_pylist()
    tokens = {}
    for name, role in (("viewer", Role.VIEWER), ("dev", Role.DEVELOPER), ("boss", Role.ADMIN)):
        lp.create_user(name)
        lp.set_member("credit", name, role)
        tokens[name] = lp.create_token(name, "test")[1]
    lp.create_user("stranger")
    lp.set_member("other", "stranger", Role.ADMIN)
    tokens["stranger"] = lp.create_token("stranger", "test")[1]
    yield Deployed(
        lp, home, models["logistic"], models["lightgbm"], rows, predictor.input_names, tokens
    )
    lp.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread (lifespan included)."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def live_server() -> type[LiveServer]:
    return LiveServer
