"""Property-based requests from the OpenAPI schema: no input makes the server fail (5xx).

Schemathesis generates a few requests per operation (deterministically, no
network: the ASGI app is called in-process) as the platform admin, against a
store with a workspace ``alpha`` holding a dataset, a run and a model; path
parameter ``ws`` is pinned to ``alpha`` so requests reach past the access
checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed: pip install 'leptonic[dev]'"
)
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from leptonic import Platform, Settings, TrainSpec  # noqa: E402
from leptonic.api import create_app  # noqa: E402
from leptonic.storage.artifacts.memory import MemoryArtifactStore  # noqa: E402
from leptonic.storage.metadata.memory import MemoryMetadataStore  # noqa: E402
from leptonic.synthetic import write_applicants_csv  # noqa: E402

TOKEN: dict[str, str] = {}
CONFIG = {
    "parameters": {"path.ws": "alpha", "path.version": 1},
    "generation": {"max-examples": 6, "deterministic": True},
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app over a store with data (schemathesis runs its lifespan)."""
    home = tmp_path_factory.mktemp("schemathesis")
    lp = Platform(
        Settings.for_home(home, "setup"),
        metadata=MemoryMetadataStore(),
        artifacts=MemoryArtifactStore(),
    )
    lp.create_user("root", admin=True)
    _, TOKEN["root"] = lp.create_token("root")
    lp.create_workspace("alpha")
    csv = write_applicants_csv(Path(home) / "applicants.csv", n=400)
    lp.add_data("alpha", csv, target="default")
    spec = TrainSpec(target="default", candidates=("logistic",), trials=1, timeout_s=30.0)
    lp.train("alpha", "applicants", spec, model_name="scorecard")
    return create_app(lp.settings, platform=lp, workers=0)


# The schema does not depend on the data: read it from an app that is never started.
schema = schemathesis.openapi.from_dict(
    create_app(Settings.for_home("/nonexistent")).openapi(),
    config=schemathesis.Config.from_dict(CONFIG),
)


@schema.parametrize()
@settings(
    max_examples=6,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(app: Any, case: Any) -> None:
    case.call_and_validate(
        app=app,
        headers={"Authorization": f"Bearer {TOKEN['root']}"},
        checks=[not_a_server_error],
    )
