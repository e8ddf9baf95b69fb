"""The Python entry point: one object that opens the stores and calls the services.

:class:`Platform` is deliberately thin: each method validates names, then
delegates to one service function (``governance.ingest``,
``tasks.runner.run_training``, the :class:`~leptonic.registry.ModelRegistry`).
The CLI and the REST API call these same methods.

Examples
--------
>>> import leptonic
>>> with leptonic.Platform.open(leptonic.Settings.for_home(tmp)) as lp:  # doctest: +SKIP
...     lp.create_workspace("credit-risk")
...     version, _ = lp.add_data("credit-risk", "applicants.csv", target="default")
...     outcome = lp.train("credit-risk", "applicants", leptonic.TrainSpec(target="default"))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pyarrow as pa

from leptonic.config import Settings
from leptonic.core.dataset import Dataset, DatasetVersion
from leptonic.core.model_version import Model, ModelVersion, StageTransition
from leptonic.core.names import validate_name
from leptonic.core.run import Run, RunStatus
from leptonic.core.uri import ObjectRef
from leptonic.core.workspace import Workspace
from leptonic.errors import InvalidInput, NotFound
from leptonic.registry.service import ModelRegistry
from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.storage.metadata.base import MetadataStore
from leptonic.storage.registry import open_artifact_store, open_metadata_store
from leptonic.tasks.predictor import TabularPredictor
from leptonic.tasks.runner import TrainOutcome, run_training
from leptonic.tasks.spec import TrainSpec

__all__ = ["Platform"]


class Platform:
    """Leptonic's services over one metadata store and one artifact store.

    Parameters
    ----------
    settings
        Where the stores are and who is acting.
    metadata, artifacts
        Already-open stores (tests pass memory stores); opened from
        ``settings`` when omitted.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        metadata: MetadataStore | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self.settings = settings
        self.metadata = metadata or open_metadata_store(settings.db_uri)
        self.artifacts = artifacts or open_artifact_store(settings.artifacts_uri)
        self.registry = ModelRegistry(self.metadata, self.artifacts)

    @classmethod
    def open(cls, settings: Settings | None = None) -> Platform:
        """Open the stores named by ``settings`` (read from the environment when omitted)."""
        return cls(settings or Settings.from_environ())

    def close(self) -> None:
        self.metadata.close()

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def actor(self) -> str:
        return self.settings.user

    # -- workspaces ---------------------------------------------------------
    def create_workspace(self, name: str, description: str = "") -> Workspace:
        return self.metadata.create_workspace(
            Workspace(validate_name(name, "workspace"), description)
        )

    def list_workspaces(self) -> list[Workspace]:
        return self.metadata.list_workspaces()

    def get_workspace(self, name: str) -> Workspace:
        return self.metadata.get_workspace(validate_name(name, "workspace"))

    # -- data ---------------------------------------------------------------
    def add_data(
        self,
        workspace: str,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        contract: str | os.PathLike[str] | None = None,
        target: str | None = None,
        description: str = "",
        fmt: str | None = None,
        delimiter: str | None = None,
        encoding: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Ingest a CSV / Parquet / JSON-lines file as a new (or the same) dataset version."""
        from leptonic.governance.ingest import ingest
        from leptonic.governance.schema import load_contract

        self.get_workspace(workspace)
        dataset = name or _default_dataset_name(path)
        return ingest(
            path,
            metadata=self.metadata,
            artifacts=self.artifacts,
            workspace=workspace,
            dataset=validate_name(dataset, "dataset"),
            actor=self.actor,
            contract=load_contract(contract) if contract is not None else None,
            target=target,
            description=description,
            fmt=fmt,
            delimiter=delimiter,
            encoding=encoding,
            progress=progress,
        )

    def list_datasets(self, workspace: str) -> list[Dataset]:
        return self.metadata.list_datasets(validate_name(workspace, "workspace"))

    def dataset_versions(self, workspace: str, dataset: str) -> list[DatasetVersion]:
        return self.metadata.list_dataset_versions(workspace, dataset)

    def dataset_version(
        self, workspace: str, dataset: str, version: int | None = None
    ) -> DatasetVersion:
        return self.metadata.get_dataset_version(workspace, dataset, version)

    def preview(
        self,
        workspace: str,
        dataset: str,
        version: int | None = None,
        *,
        limit: int = 20,
        raw: bool = False,
    ) -> pa.Table:
        """The first rows, with PII masked unless ``raw``."""
        from leptonic.governance.ingest import preview

        ws = self.get_workspace(workspace)
        dv = self.dataset_version(workspace, dataset, version)
        return preview(dv, self.artifacts, workspace=ws, limit=limit, raw=raw)

    # -- training and runs --------------------------------------------------
    def train(
        self,
        workspace: str,
        dataset: str,
        spec: TrainSpec,
        *,
        version: int | None = None,
        model_name: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> TrainOutcome:
        """Train on a dataset version as a recorded run; register it as ``model_name``."""
        if model_name is not None:
            validate_name(model_name, "model")
        dv = self.dataset_version(workspace, dataset, version)
        return run_training(
            self.metadata,
            self.artifacts,
            dv,
            spec,
            actor=self.actor,
            model_name=model_name,
            progress=progress,
            echo=echo,
        )

    def list_runs(
        self, workspace: str, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Run]:
        return self.metadata.list_runs(
            workspace,
            status=RunStatus(status) if status else None,
            limit=limit,
            offset=offset,
        )

    def get_run(self, workspace: str, run_id: str) -> Run:
        runs = self.metadata.list_runs(workspace, limit=1_000_000) if len(run_id) < 32 else []
        matches = [r for r in runs if r.id.startswith(run_id)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidInput(
                f"run id prefix {run_id!r} is ambiguous ({len(matches)} runs); give more digits",
                field="run",
            )
        return self.metadata.get_run(workspace, run_id)

    def run_artifact(self, workspace: str, run_id: str, name: str) -> bytes:
        """One artifact of a run (``report.html``, ``log.txt``, ``scorecard.json``...)."""
        run = self.get_run(workspace, run_id)
        if name not in run.artifacts:
            raise NotFound(
                f"run {run.id} has no artifact {name!r}; it has: "
                f"{', '.join(sorted(run.artifacts)) or 'none'}",
                field="artifact",
            )
        return self.artifacts.get_bytes(run.artifacts[name])

    def write_report(self, workspace: str, run_id: str, path: str | os.PathLike[str]) -> Path:
        """Write the run's HTML report to ``path``, atomically."""
        data = self.run_artifact(workspace, run_id, "report.html")
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out)
        return out

    # -- models -------------------------------------------------------------
    def list_models(self, workspace: str) -> list[Model]:
        return self.metadata.list_models(workspace)

    def model_versions(self, workspace: str, model: str) -> list[ModelVersion]:
        return self.metadata.list_model_versions(workspace, model)

    def model_version(self, workspace: str, model: str, version: int) -> ModelVersion:
        return self.metadata.get_model_version(workspace, model, version)

    def promote(
        self, workspace: str, model: str, version: int, stage: str, *, reason: str
    ) -> ModelVersion:
        return self.registry.promote(
            workspace, model, version, stage, actor=self.actor, reason=reason
        )

    def stage_history(
        self, workspace: str, model: str, version: int | None = None
    ) -> list[StageTransition]:
        return self.registry.history(workspace, model, version)

    def load_model(self, workspace: str, model: str, version: int) -> TabularPredictor:
        return self.registry.load(workspace, model, version)

    # -- lineage ------------------------------------------------------------
    def lineage(
        self, ref: str | ObjectRef, direction: Literal["upstream", "downstream"] = "downstream"
    ) -> list[tuple[int, ObjectRef]]:
        """Everything made from ``ref`` (or that ``ref`` was made from), with depth."""
        from leptonic.governance.lineage import walk

        obj = ObjectRef.parse(ref) if isinstance(ref, str) else ref
        return walk(self.metadata, obj, direction)


def _default_dataset_name(path: str | os.PathLike[str]) -> str:
    import re

    stem = Path(path).name.split(".")[0].lower()
    return re.sub(r"[^a-z0-9_-]+", "-", stem).strip("-_")[:63] or "dataset"
