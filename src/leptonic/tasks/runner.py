"""Training as a recorded Run: lineage in, metrics, logs, report and model out.

:func:`run_training` records every task's run the same way; the tabular
trainer is run here, recommendation and text classification by
:mod:`leptonic.tasks.runner_tasks` (imported only for those tasks).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from leptonic.compute.base import Executor
from leptonic.core._time import utcnow
from leptonic.core.dataset import DatasetVersion
from leptonic.core.model_version import ModelVersion, Stage
from leptonic.core.run import Run, RunStatus
from leptonic.errors import Cancelled, Conflict
from leptonic.evaluation.report import render_report
from leptonic.features._common import MISSING
from leptonic.monitoring.baseline import BASELINE_ARTIFACT, BASELINE_ROWS, BaselineProfile
from leptonic.registry.service import ModelRegistry, check_model_task, dataset_ref, run_ref
from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.storage.metadata.base import MetadataStore, safe_text
from leptonic.tasks._data import TrainingData, load_training_data
from leptonic.tasks.spec import TrainSpec, spec_to_dict
from leptonic.tasks.tabular import TrainingResult, train_tabular

if TYPE_CHECKING:
    from leptonic.tasks.recsys.spec import RecommenderSpec
    from leptonic.tasks.textcls.spec import TextClassificationSpec

__all__ = ["RunLog", "TrainOutcome", "Trained", "run_training"]

logger = logging.getLogger("leptonic.train")

#: The trainer's result type: TrainingResult, RecommenderTrainingResult or TextTrainingResult.
R = TypeVar("R")


@dataclass
class TrainOutcome(Generic[R]):
    """A finished run, the model version it registered (if any) and the trainer's result."""

    run: Run
    model_version: ModelVersion | None
    result: R


@dataclass
class Trained:
    """What one task's training step hands back to be recorded on the run."""

    result: Any
    params: dict[str, Any]
    metrics: dict[str, Any]
    timings: dict[str, float]
    artifacts: dict[str, str]
    #: Columns left out of the features, and why (recorded on the model version).
    excluded: dict[str, str] = field(default_factory=dict)


@dataclass
class RunLog:
    """The run's log: timestamped lines, also sent to ``logging`` and ``echo``."""

    echo: Callable[[str], None] | None = None
    lines: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def __call__(self, message: str) -> None:
        self.lines.append(f"{time.perf_counter() - self.started:8.2f}s {message}")
        logger.info(message)
        if self.echo is not None:
            self.echo(message)

    def text(self) -> bytes:
        return "\n".join(self.lines).encode("utf-8")


def _json_artifact(artifacts: ArtifactStore, value: Any) -> str:
    return artifacts.put_bytes(json.dumps(value, indent=2, default=str).encode("utf-8"))


def _by_position(rows: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """The bins of one column named ``bin 1``, ``bin 2``... (``missing`` kept)."""
    n = 0
    out = []
    for row in rows:
        if row.get(label) != MISSING:
            n += 1
            row = {**row, label: f"bin {n}"}
        out.append(row)
    return out


def _bins_masked(
    rows: list[dict[str, Any]], personal: Collection[str], column: str, label: str
) -> list[dict[str, Any]]:
    """Rows of a bin table (WoE bins, scorecard points; a column's rows together)
    where a personal column's bins are named by position instead of by their values."""
    out: list[dict[str, Any]] = []
    for name, group in itertools.groupby(rows, key=lambda row: row.get(column)):
        part = list(group)
        out += _by_position(part, label) if name in personal else part
    return out


def _importance_masked(
    rows: list[dict[str, Any]], personal: Collection[str]
) -> list[dict[str, Any]]:
    """Feature importance rows where a personal column's one-hot features
    (``column=value``) are named by position (``column=value 1``...)."""
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        column, eq, _ = str(row.get("feature")).partition("=")
        if eq and column in personal:
            seen[column] = seen.get(column, 0) + 1
            row = {**row, "feature": f"{column}=value {seen[column]}"}
        out.append(row)
    return out


def _report(
    run: Run,
    version: DatasetVersion,
    spec: TrainSpec,
    result: TrainingResult,
    personal: Collection[str] = (),
) -> str:
    tables: dict[str, list[dict[str, Any]]] = {}
    if result.importance:
        tables["Feature importance"] = _importance_masked(result.importance, personal)
    if result.iv_table:
        tables["Information value (WoE bins)"] = _bins_masked(
            result.iv_table, personal, "column", "label"
        )
    if result.scorecard is not None:
        tables["Scorecard points"] = _bins_masked(
            result.scorecard.points_table(), personal, "feature", "bin"
        )
    tables["Data quality issues"] = list(version.quality.get("issues", [])) or [
        {"issue": "none found"}
    ]
    summary = {
        "run": run.id,
        "workspace": run.workspace,
        "dataset": str(dataset_ref(version)),
        "rows": version.num_rows,
        "target": spec.target,
        "task": spec.task,
        "chosen model": result.chosen,
        "parameters": json.dumps(result.params, default=str),
        "split": json.dumps(result.split),
        "threshold": result.threshold if result.threshold is not None else "-",
        "seed": spec.seed,
    }
    notes = [f"Excluded column {k}: {v}" for k, v in result.features["excluded"].items()]
    return render_report(
        title=f"Training run {run.id[:8]} — {version.dataset}",
        task=spec.task,
        summary=summary,
        metrics={"valid": result.valid_metrics, "test": result.test_metrics},
        leaderboard=result.leaderboard,
        y_true=result.y_test,
        y_score=result.test_scores,
        classes=[str(c) for c in result.predictor.classes] if result.predictor.classes else None,
        tables=tables,
        notes=notes,
    )


def _train_tabular(
    artifacts: ArtifactStore,
    version: DatasetVersion,
    spec: TrainSpec,
    run: Run,
    log: RunLog,
    *,
    progress: Callable[[int, int], None] | None,
    executor: Executor | None,
) -> Trained:
    t0 = time.perf_counter()
    data = load_training_data(version, artifacts, spec)
    log(
        f"loaded {len(data.y)} rows, {len(data.numeric)} numeric and "
        f"{len(data.categorical)} categorical features"
        + (
            f"; dropped {data.dropped_missing_target} rows without a target"
            if data.dropped_missing_target
            else ""
        )
    )
    for name, why in data.excluded.items():
        log(f"not used: {name} ({why})")
    load_s = time.perf_counter() - t0
    result = train_tabular(data, spec, log=log, progress=progress, executor=executor)
    t1 = time.perf_counter()
    # the run's pages and files name a personal column's bins by position: any member
    # may read them (the model itself keeps the values it needs to score)
    personal = {c.name for c in version.columns if c.pii}
    report = _report(run, version, spec, result, personal)
    saved = {
        "report.html": artifacts.put_bytes(report.encode("utf-8")),
        "leaderboard.json": _json_artifact(artifacts, result.leaderboard),
    }
    if result.scorecard is not None:
        card = result.scorecard.to_dict()
        for name in personal & set(card["bins"]):
            card["bins"][name] = _by_position(card["bins"][name], "label")
        saved["scorecard.json"] = _json_artifact(artifacts, card)
        saved["iv.json"] = _json_artifact(
            artifacts, _bins_masked(result.iv_table, personal, "column", "label")
        )
    profile = _monitoring_baseline(data, result, spec, log, personal)
    if profile is not None:
        saved[BASELINE_ARTIFACT] = _json_artifact(artifacts, profile.to_json())
    metrics = {"valid": result.valid_metrics, "test": result.test_metrics}
    timings = {"load_s": round(load_s, 3), **result.timings}
    timings["report_s"] = round(time.perf_counter() - t1, 3)
    return Trained(
        result=result,
        params={"candidate": result.chosen, **result.params},
        metrics=metrics,
        timings=timings,
        artifacts=saved,
        excluded=dict(result.features["excluded"]),
    )


def _monitoring_baseline(
    data: TrainingData,
    result: TrainingResult,
    spec: TrainSpec,
    log: RunLog,
    personal: Collection[str] = (),
) -> BaselineProfile | None:
    """What monitoring compares an endpoint's traffic with: the model's inputs and
    scores on the rows held out for the test (scores on training rows would be
    surer than on any new row, and drift would be found where there is none)."""
    rows = np.asarray(result.test_rows)
    scores = np.asarray(result.test_scores)
    if len(rows) > BASELINE_ROWS:
        rng = np.random.default_rng(spec.seed)
        keep = np.sort(rng.choice(len(rows), BASELINE_ROWS, replace=False))
        rows, scores = rows[keep], scores[keep]
    predictor = result.predictor
    # personal inputs (allowed in training) are logged hashed: drift skips them, and
    # the profile, which any member may read, keeps none of their values
    inputs = [i for i in predictor.inputs if i["name"] not in personal]
    try:
        frame = data.frame.iloc[rows][[i["name"] for i in inputs]].reset_index(drop=True)
        profile = BaselineProfile.fit(frame, scores, inputs)
    except Exception as exc:  # optional: the model trained, whatever happens here
        # monitoring then profiles the training rows, as for a run of an older release
        log(f"no monitoring baseline kept: {type(exc).__name__}: {exc}")
        return None
    log(
        f"monitoring baseline: the model's inputs and scores on {len(rows)} test rows"
        + (" (scored before the refit on every row)" if spec.refit_all else "")
    )
    return profile


def _log_safely(log: RunLog, message: str) -> None:
    """Log a line of a failing run; a failing echo (a closed output pipe) or logging
    handler is reported with ``logging`` and does not stop the run being marked ended."""
    try:
        log(message)
    except Exception as exc:
        logger.warning("could not log %r: %s: %s", message, type(exc).__name__, exc)


def _archive(metadata: MetadataStore, mv: ModelVersion, actor: str, log: RunLog) -> None:
    """Archive a version registered by a run that then failed (best effort: the run's
    own error is what the caller sees)."""
    try:
        metadata.set_stage(
            mv.workspace,
            mv.model,
            mv.version,
            Stage.ARCHIVED,
            actor=actor,
            reason="its training run failed after registering it",
        )
    except Exception as exc:  # the store that failed the run may fail this too
        _log_safely(log, f"could not archive {mv.model} v{mv.version}: {type(exc).__name__}: {exc}")
    else:
        _log_safely(log, f"archived {mv.model} v{mv.version}: the run failed after registering it")


def run_training(
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    version: DatasetVersion,
    spec: TrainSpec | RecommenderSpec | TextClassificationSpec,
    *,
    actor: str,
    model_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    echo: Callable[[str], None] | None = None,
    run_id: str | None = None,
    executor: Executor | None = None,
) -> TrainOutcome[Any]:
    """Train on ``version`` as a new Run; register the model when ``model_name`` is given.

    ``spec`` picks the task: a :class:`~leptonic.tasks.spec.TrainSpec`
    (tabular), a :class:`~leptonic.tasks.recsys.RecommenderSpec` or a
    :class:`~leptonic.tasks.textcls.TextClassificationSpec`. The run is
    recorded as running first and ends succeeded (with metrics, timings, the
    HTML report, logs and the task's other artifacts) or failed (with the
    error), or cancelled when ``progress`` raises
    :class:`~leptonic.errors.Cancelled`; it is never left running by an error
    here. ``run_id`` lets a caller (a background job) choose the run's id;
    ``executor`` is where a tabular search runs its candidate families.
    """
    if model_name is not None:  # before any work: a name of another task fails at the end
        check_model_task(metadata, version.workspace, model_name, spec_to_dict(spec)["task"])
    log = RunLog(echo)
    run = metadata.create_run(
        Run(
            id=run_id or uuid.uuid4().hex,
            workspace=version.workspace,
            status=RunStatus.RUNNING,
            spec=spec_to_dict(spec),
            seed=spec.seed,
            inputs=(str(dataset_ref(version)),),
            created_by=actor,
            started_at=utcnow(),
        )
    )
    model_version: ModelVersion | None = None
    try:
        metadata.add_lineage(dataset_ref(version), run_ref(run))
        if isinstance(spec, TrainSpec):
            trained = _train_tabular(
                artifacts, version, spec, run, log, progress=progress, executor=executor
            )
        else:
            from leptonic.tasks.runner_tasks import train_task

            trained = train_task(artifacts, version, spec, run, log, progress=progress)
        # The model is registered last, once everything else of the run is written;
        # should the run still fail, the version is archived (see below).
        if model_name is not None:
            model_version = ModelRegistry(metadata, artifacts).register(
                version.workspace,
                model_name,
                trained.result.predictor,
                run=run,
                dataset=version,
                metrics=trained.metrics,
                excluded=trained.excluded,
                actor=actor,
            )
            log(f"registered {model_name} v{model_version.version}")
        timings = {**trained.timings, "total_s": round(time.perf_counter() - log.started, 3)}
        log("done")
        saved = {**trained.artifacts, "log.txt": artifacts.put_bytes(log.text())}
        # Only a run still running ends succeeded: one a sweep failed meanwhile (its
        # job missed heartbeats) stays failed, and the model it registered is archived.
        succeeded = metadata.update_run_if(
            run.workspace,
            run.id,
            when_status=RunStatus.RUNNING,
            status=RunStatus.SUCCEEDED,
            params=trained.params,
            metrics=trained.metrics,
            timings=timings,
            artifacts=saved,
            finished_at=utcnow(),
        )
        if succeeded is None:
            ended = metadata.get_run(run.workspace, run.id)
            raise Conflict(
                f"run {run.id} was marked {ended.status} while it was still training "
                f"({ended.error or 'by another process'}); its results are not kept. "
                "Train again"
            )
        return TrainOutcome(run=succeeded, model_version=model_version, result=trained.result)
    except BaseException as exc:
        # Whatever fails below (the echo's pipe closed, the artifact store full or
        # gone), the run is still marked ended and the original error is raised.
        cancelled = isinstance(exc, Cancelled)
        _log_safely(
            log, f"cancelled: {exc}" if cancelled else f"failed: {type(exc).__name__}: {exc}"
        )
        if model_version is not None:  # registered, but its run did not succeed
            _archive(metadata, model_version, actor, log)
        saved_log: dict[str, Any] = {}
        try:
            saved_log["artifacts"] = {"log.txt": artifacts.put_bytes(log.text())}
        except Exception as store_exc:
            logger.warning(
                "run %s: its log was not saved: %s: %s",
                run.id,
                type(store_exc).__name__,
                store_exc,
            )
        metadata.update_run_if(  # a run ended elsewhere keeps that ending
            run.workspace,
            run.id,
            when_status=RunStatus.RUNNING,
            status=RunStatus.CANCELLED if cancelled else RunStatus.FAILED,
            # no store keeps NUL (or lone surrogates): replaced, so the failure is recorded
            error=safe_text(f"{type(exc).__name__}: {exc}"),
            finished_at=utcnow(),
            **saved_log,
        )
        raise
