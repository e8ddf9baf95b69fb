"""An in-process server over memory stores, with users of every kind and real objects.

``server`` (per test) is an empty server; ``populated`` (per module) holds
workspaces ``alpha`` and ``beta``, a dataset, a trained run with a registered
model, and users:

========  ====================================================
root      platform admin
ana       admin of alpha, with raw_pii
dev       developer in alpha
vera      viewer in alpha
bob       admin of beta only
========  ====================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api._support import Server, populate
from leptonic import Platform, Settings
from leptonic.api import create_app
from leptonic.api.testing import serve_in_process
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.storage.metadata.memory import MemoryMetadataStore
from leptonic.synthetic import write_applicants_csv


@pytest.fixture(scope="session")
def applicants_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_applicants_csv(tmp_path_factory.mktemp("data") / "applicants.csv", n=600)


def _platform(home: Path) -> Platform:
    return Platform(
        Settings.for_home(home, "setup"),
        metadata=MemoryMetadataStore(),
        artifacts=MemoryArtifactStore(),
    )


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    """Start in-process servers: ``make_server(workers=0, platform=None, **create_app kwargs)``."""
    stack: list[Any] = []

    def start(*, workers: int = 0, platform: Platform | None = None, **kwargs: Any) -> Server:
        lp = platform or _platform(tmp_path)
        if "root" not in {u.name for u in lp.list_users()}:
            lp.as_user("setup").create_user("root", admin=True)
        app = create_app(lp.settings, platform=lp, workers=workers, poll_interval=0.05, **kwargs)
        cm = serve_in_process(app)
        transport = cm.__enter__()
        stack.append(cm)
        server = Server(lp, app, transport)
        _, server.tokens["root"] = lp.as_user("setup").create_token("root", "test")
        return server

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


@pytest.fixture
def server(make_server: Any) -> Server:
    server: Server = make_server()
    return server


@pytest.fixture
def populated(make_server: Any, applicants_csv: Path) -> Server:
    return populate(make_server(), applicants_csv)
