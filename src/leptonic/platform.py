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

import copy
import dataclasses
import hashlib
import os
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import pyarrow as pa

from leptonic.compute import COMPUTE_BACKENDS, Executor, open_executor
from leptonic.config import Settings
from leptonic.core._time import utcnow
from leptonic.core.access import ApiToken, Membership, Role, User
from leptonic.core.audit import AuditEvent
from leptonic.core.dataset import Dataset, DatasetVersion
from leptonic.core.model_version import Model, ModelVersion, StageTransition
from leptonic.core.names import validate_name
from leptonic.core.run import Run
from leptonic.core.uri import ObjectRef
from leptonic.core.workspace import Workspace
from leptonic.errors import InvalidInput, NotFound, StoreError
from leptonic.registry.service import ModelRegistry
from leptonic.serving.service import EndpointService
from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.storage.metadata.base import MetadataStore, check_run_status
from leptonic.storage.registry import open_artifact_store, open_metadata_store
from leptonic.tasks.predictor import Predictor
from leptonic.tasks.runner import TrainOutcome, run_training
from leptonic.tasks.spec import TrainSpec, spec_to_dict

if TYPE_CHECKING:
    from leptonic.governance.schema import Contract
    from leptonic.tasks.recsys.spec import RecommenderSpec
    from leptonic.tasks.recsys.train import RecommenderTrainingResult
    from leptonic.tasks.tabular import TrainingResult
    from leptonic.tasks.textcls.classifier import TextTrainingResult
    from leptonic.tasks.textcls.spec import TextClassificationSpec

__all__ = ["TOKEN_PREFIX", "Platform", "check_score_output", "hash_token"]

#: Every API token secret starts with this.
TOKEN_PREFIX = "lep_"


def hash_token(secret: str) -> str:
    """The SHA-256 hex digest of an API token secret: all that is stored of it."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_score_output(dataset: str, output: str) -> None:
    """Refuse scores written as a new version of the very dataset they score."""
    if output == dataset:
        raise InvalidInput(
            f"scores of {dataset!r} cannot become a version of {dataset!r} itself "
            "(its latest version would be the scores); name another output dataset",
            field="output",
        )


class _Compute:
    """The platform's executor, opened on first use and closed once."""

    def __init__(self, uri: str, executor: Executor | None) -> None:
        if executor is None:  # a bad URI or a missing extra fails now, not at training
            COMPUTE_BACKENDS.resolve(uri).check_uri(uri)
        self.uri = uri
        self._executor = executor
        self._closed = False
        self._lock = threading.Lock()

    def get(self) -> Executor:
        with self._lock:
            if self._closed:
                raise StoreError(
                    "this platform was closed; open a new one (Platform.open) to train"
                )
            if self._executor is None:
                self._executor = open_executor(self.uri)
            return self._executor

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            self._closed = True
        if executor is not None:
            executor.close()


class Platform:
    """Leptonic's services over one metadata store and one artifact store.

    Parameters
    ----------
    settings
        Where the stores are and who is acting.
    metadata, artifacts
        Already-open stores (tests pass memory stores); opened from
        ``settings`` when omitted.
    compute
        An already-open executor for training work; opened from
        ``settings.compute_uri`` on first use when omitted.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        metadata: MetadataStore | None = None,
        artifacts: ArtifactStore | None = None,
        compute: Executor | None = None,
    ) -> None:
        self.settings = settings
        # shared with the copies of as_user; opened on first use (Ray connects then)
        self._compute = _Compute(settings.compute_uri, compute)
        self.metadata = metadata or open_metadata_store(settings.db_uri)
        try:
            self.artifacts = artifacts or open_artifact_store(settings.artifacts_uri)
        except BaseException:
            if metadata is None:  # opened here: its connections go with the failure
                self.metadata.close()
            raise
        self.registry = ModelRegistry(self.metadata, self.artifacts)

    @classmethod
    def open(cls, settings: Settings | None = None) -> Platform:
        """Open the stores named by ``settings`` (read from the environment when omitted)."""
        return cls(settings or Settings.from_environ())

    @property
    def compute(self) -> Executor:
        """Where training work runs (``LEPTONIC_COMPUTE``), opened on first use."""
        return self._compute.get()

    def close(self) -> None:
        try:
            self._compute.close()
        finally:
            self.metadata.close()

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def actor(self) -> str:
        return self.settings.user

    def audit(
        self,
        action: str,
        workspace: str | None,
        objects: Sequence[ObjectRef | str] = (),
        **details: Any,
    ) -> AuditEvent:
        """Append one event to the audit log, as :attr:`actor`."""
        return self.metadata.append_audit(
            AuditEvent(
                actor=self.actor,
                action=action,
                workspace=workspace,
                objects=tuple(str(o) for o in objects),
                details=details,
            )
        )

    def audit_log(
        self,
        *,
        workspace: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[AuditEvent]:
        """Audit events, newest first."""
        return self.metadata.list_audit(
            workspace=workspace, actor=actor, action=action, limit=limit, offset=offset
        )

    # -- workspaces ---------------------------------------------------------
    def create_workspace(self, name: str, description: str = "") -> Workspace:
        ws = self.metadata.create_workspace(
            Workspace(validate_name(name, "workspace"), description)
        )
        self.audit("workspace.create", ws.name, description=description)
        return ws

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
        contract: str | os.PathLike[str] | Contract | None = None,
        target: str | None = None,
        description: str = "",
        fmt: str | None = None,
        delimiter: str | None = None,
        encoding: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        origin: Mapping[str, Any] | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Ingest a CSV / Parquet / JSON-lines file as a new (or the same) dataset version.

        ``origin`` records where the data comes from when ``path`` is a
        temporary copy (an upload, a scoring output).
        """
        from leptonic.governance.ingest import ingest
        from leptonic.governance.schema import Contract, load_contract

        self.get_workspace(workspace)
        dataset = name or _default_dataset_name(path)
        version, created = ingest(
            path,
            metadata=self.metadata,
            artifacts=self.artifacts,
            workspace=workspace,
            dataset=validate_name(dataset, "dataset"),
            actor=self.actor,
            contract=(
                contract
                if contract is None or isinstance(contract, Contract)
                else load_contract(contract)
            ),
            target=target,
            description=description,
            fmt=fmt,
            delimiter=delimiter,
            encoding=encoding,
            progress=progress,
            origin=origin,
        )
        if created:
            self.audit(
                "dataset.add",
                workspace,
                [ObjectRef(workspace, "dataset", version.dataset, version.version)],
                rows=version.num_rows,
                sha256=version.content_hash,
                source=str(version.source.get("path", "")),
            )
        return version, created

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
    @overload
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
        run_id: str | None = None,
    ) -> TrainOutcome[TrainingResult]: ...

    @overload
    def train(
        self,
        workspace: str,
        dataset: str,
        spec: RecommenderSpec,
        *,
        version: int | None = None,
        model_name: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        echo: Callable[[str], None] | None = None,
        run_id: str | None = None,
    ) -> TrainOutcome[RecommenderTrainingResult]: ...

    @overload
    def train(
        self,
        workspace: str,
        dataset: str,
        spec: TextClassificationSpec,
        *,
        version: int | None = None,
        model_name: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        echo: Callable[[str], None] | None = None,
        run_id: str | None = None,
    ) -> TrainOutcome[TextTrainingResult]: ...

    def train(
        self,
        workspace: str,
        dataset: str,
        spec: TrainSpec | RecommenderSpec | TextClassificationSpec,
        *,
        version: int | None = None,
        model_name: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        echo: Callable[[str], None] | None = None,
        run_id: str | None = None,
    ) -> TrainOutcome[Any]:
        """Train on a dataset version as a recorded run; register it as ``model_name``.

        ``spec`` picks the task: a :class:`~leptonic.tasks.spec.TrainSpec`
        (binary, multiclass, regression), a
        :class:`~leptonic.tasks.recsys.RecommenderSpec` or a
        :class:`~leptonic.tasks.textcls.TextClassificationSpec`; the outcome's
        ``result`` is that trainer's result. Load a recommender or text model
        back with ``registry.load_any``.
        """
        if model_name is not None:
            validate_name(model_name, "model")
        dv = self.dataset_version(workspace, dataset, version)
        outcome = run_training(
            self.metadata,
            self.artifacts,
            dv,
            spec,
            actor=self.actor,
            model_name=model_name,
            progress=progress,
            echo=echo,
            run_id=run_id,
            executor=self.compute if isinstance(spec, TrainSpec) else None,
        )
        refs: list[ObjectRef | str] = [ObjectRef(workspace, "run", outcome.run.id)]
        if outcome.model_version is not None:
            mv = outcome.model_version
            refs.append(ObjectRef(workspace, "model", mv.model, mv.version))
        if isinstance(spec, TrainSpec):
            self.audit("run.train", workspace, refs, dataset=dataset, target=spec.target)
        else:
            task = spec_to_dict(spec)["task"]
            self.audit("run.train", workspace, refs, dataset=dataset, task=task)
        return outcome

    def list_runs(
        self, workspace: str, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Run]:
        return self.metadata.list_runs(
            workspace,
            status=check_run_status(status) if status else None,
            limit=limit,
            offset=offset,
        )

    def get_run(self, workspace: str, run_id: str) -> Run:
        if 0 < len(run_id) < 32:
            matches = self.metadata.find_run_ids(workspace, run_id, limit=2)
            if len(matches) > 1:
                raise InvalidInput(
                    f"run id prefix {run_id!r} is ambiguous; give more digits", field="run"
                )
            if matches:
                run_id = matches[0]
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
        """Write the run's HTML report to ``path``, atomically (a folder is refused)."""
        return write_report_file(
            path, run_id, lambda: self.run_artifact(workspace, run_id, "report.html")
        )

    # -- models -------------------------------------------------------------
    def list_models(self, workspace: str) -> list[Model]:
        return self.metadata.list_models(workspace)

    def model_versions(
        self, workspace: str, model: str, *, limit: int | None = None, offset: int = 0
    ) -> list[ModelVersion]:
        return self.metadata.list_model_versions(workspace, model, limit=limit, offset=offset)

    def model_version(self, workspace: str, model: str, version: int) -> ModelVersion:
        return self.metadata.get_model_version(workspace, model, version)

    def promote(
        self, workspace: str, model: str, version: int, stage: str, *, reason: str
    ) -> ModelVersion:
        mv = self.registry.promote(
            workspace, model, version, stage, actor=self.actor, reason=reason
        )
        self.audit(
            "model.stage",
            workspace,
            [ObjectRef(workspace, "model", model, version)],
            stage=mv.stage.value,
            reason=reason,
        )
        return mv

    def stage_history(
        self, workspace: str, model: str, version: int | None = None
    ) -> list[StageTransition]:
        return self.registry.history(workspace, model, version)

    def load_model(self, workspace: str, model: str, version: int) -> Predictor:
        return self.registry.load(workspace, model, version)

    @property
    def endpoints(self) -> EndpointService:
        """Real-time decision endpoints: deploy, traffic, policy, outcomes, monitoring."""
        return EndpointService(self)

    def score(
        self,
        workspace: str,
        model: str,
        version: int,
        dataset: str,
        *,
        dataset_version: int | None = None,
        output: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Score a dataset version with a model version into a new dataset version.

        The output dataset (``<dataset>-scores`` unless ``output`` names
        another) holds the input's id and timestamp columns and the scores;
        lineage links it to both the input version and the model version.
        """
        import tempfile

        from leptonic.serving.batch import score_to_parquet

        out_name = validate_name(output or f"{dataset}-scores"[:63], "dataset")
        mv = self.model_version(workspace, model, version)
        dv = self.dataset_version(workspace, dataset, dataset_version)
        check_score_output(dv.dataset, out_name)
        predictor = self.load_model(workspace, model, version)
        model_ref = ObjectRef(workspace, "model", model, mv.version)
        input_ref = ObjectRef(workspace, "dataset", dv.dataset, dv.version)
        with tempfile.TemporaryDirectory(prefix="leptonic-score-") as tmp:
            path = Path(tmp) / f"{out_name}.parquet"
            rows = score_to_parquet(
                predictor,
                dv,
                self.artifacts.local_path(dv.artifact_key),
                path,
                progress=progress,
                executor=self.compute,
            )
            scored, created = self.add_data(
                workspace,
                path,
                name=out_name,
                description=f"scores of {model_ref} on {input_ref}",
                origin={"path": f"scored:{model_ref} on {input_ref}", "model": str(model_ref)},
            )
        out_ref = ObjectRef(workspace, "dataset", scored.dataset, scored.version)
        self.metadata.add_lineage(input_ref, out_ref)
        self.metadata.add_lineage(model_ref, out_ref)
        self.audit("model.score", workspace, [model_ref, input_ref, out_ref], rows=rows)
        return scored, created

    # -- users, tokens and roles ----------------------------------------------
    def as_user(self, name: str) -> Platform:
        """This platform acting as ``name``: the same stores (close only the original)."""
        clone = copy.copy(self)
        clone.settings = dataclasses.replace(self.settings, user=name)
        return clone

    def create_user(self, name: str, *, admin: bool = False, display_name: str = "") -> User:
        user = self.metadata.create_user(User(validate_name(name, "user"), display_name, admin))
        self.audit("user.create", None, user=user.name, admin=admin)
        return user

    def get_user(self, name: str) -> User:
        return self.metadata.get_user(name)

    def list_users(self) -> list[User]:
        return self.metadata.list_users()

    def create_token(
        self, user: str, name: str = "default", *, expires_in_days: float | None = None
    ) -> tuple[ApiToken, str]:
        """A new API token of ``user``: ``(record, secret)``; the secret is shown only here."""
        self.metadata.get_user(user)
        if not 0 < len(name.strip()) <= 100:
            raise InvalidInput("a token name must have 1-100 characters", field="name")
        if expires_in_days is not None and not 0 < expires_in_days <= 36_500:
            raise InvalidInput(
                f"expires_in_days must be in (0, 36500], got {expires_in_days}",
                field="expires_in_days",
            )
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        expires = None if expires_in_days is None else now + timedelta(days=expires_in_days)
        token = self.metadata.create_token(
            ApiToken(
                uuid.uuid4().hex, user, name.strip(), hash_token(secret), secret[:12], now, expires
            )
        )
        self.audit("token.create", None, user=user, token=token.id, name=token.name)
        return token, secret

    def list_tokens(self, user: str) -> list[ApiToken]:
        return self.metadata.list_tokens(user)

    def revoke_token(self, token_id: str) -> ApiToken:
        token = self.metadata.revoke_token(token_id, utcnow())
        self.audit("token.revoke", None, user=token.user, token=token.id)
        return token

    def set_member(
        self, workspace: str, user: str, role: str, *, raw_pii: bool = False
    ) -> Membership:
        """Give ``user`` ``role`` in ``workspace``, replacing any role they had there."""
        self.get_workspace(workspace)
        self.metadata.get_user(user)
        if role not in Role.__members__.values():
            raise InvalidInput(f"unknown role {role!r}; roles are: {', '.join(Role)}", field="role")
        member = self.metadata.set_membership(Membership(workspace, user, Role(role), raw_pii))
        self.audit("member.set", workspace, user=user, role=role, raw_pii=raw_pii)
        return member

    def remove_member(self, workspace: str, user: str) -> None:
        if self.metadata.get_membership(workspace, user) is None:
            raise NotFound(f"user {user!r} is not a member of {workspace!r}", field="user")
        self.metadata.remove_membership(workspace, user)
        self.audit("member.remove", workspace, user=user)

    def membership(self, workspace: str, user: str) -> Membership | None:
        return self.metadata.get_membership(workspace, user)

    def memberships(
        self, *, workspace: str | None = None, user: str | None = None
    ) -> list[Membership]:
        return self.metadata.list_memberships(workspace=workspace, user=user)

    # -- lineage ------------------------------------------------------------
    def lineage(
        self, ref: str | ObjectRef, direction: Literal["upstream", "downstream"] = "downstream"
    ) -> list[tuple[int, ObjectRef]]:
        """Everything made from ``ref`` (or that ``ref`` was made from), with depth."""
        from leptonic.governance.lineage import walk

        obj = ObjectRef.parse(ref) if isinstance(ref, str) else ref
        return walk(self.metadata, obj, direction)


def write_report_file(path: str | os.PathLike[str], run_id: str, read: Callable[[], bytes]) -> Path:
    """Write the report that ``read`` returns to ``path``, atomically: a folder is
    refused (naming a file in it), and nothing is left behind on a failure."""
    out = Path(path)
    if out.is_dir():
        raise InvalidInput(
            f"{out} is a folder; give the report's file name, e.g. "
            f"{out / f'report-{run_id[:12]}.html'}",
            field="path",
        )
    data = read()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def _default_dataset_name(path: str | os.PathLike[str]) -> str:
    import re

    stem = Path(path).name.split(".")[0].lower()
    return re.sub(r"[^a-z0-9_-]+", "-", stem).strip("-_")[:63] or "dataset"
