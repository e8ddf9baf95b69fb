"""Training as a recorded Run: lineage in, metrics, logs, report and model out."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leptonic.core._time import utcnow
from leptonic.core.dataset import DatasetVersion
from leptonic.core.model_version import ModelVersion
from leptonic.core.run import Run, RunStatus
from leptonic.errors import Cancelled
from leptonic.evaluation.report import render_report
from leptonic.registry.service import ModelRegistry, dataset_ref, run_ref
from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.storage.metadata.base import MetadataStore
from leptonic.tasks._data import load_training_data
from leptonic.tasks.spec import TrainSpec
from leptonic.tasks.tabular import TrainingResult, train_tabular

__all__ = ["TrainOutcome", "run_training"]

logger = logging.getLogger("leptonic.train")


@dataclass
class TrainOutcome:
    run: Run
    model_version: ModelVersion | None
    result: TrainingResult


def _json_artifact(artifacts: ArtifactStore, value: Any) -> str:
    return artifacts.put_bytes(json.dumps(value, indent=2, default=str).encode("utf-8"))


def _report(run: Run, version: DatasetVersion, spec: TrainSpec, result: TrainingResult) -> str:
    tables: dict[str, list[dict[str, Any]]] = {}
    if result.importance:
        tables["Feature importance"] = result.importance
    if result.iv_table:
        tables["Information value (WoE bins)"] = result.iv_table
    if result.scorecard is not None:
        tables["Scorecard points"] = result.scorecard.points_table()
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


def run_training(
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    version: DatasetVersion,
    spec: TrainSpec,
    *,
    actor: str,
    model_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    echo: Callable[[str], None] | None = None,
    run_id: str | None = None,
) -> TrainOutcome:
    """Train on ``version`` as a new Run; register the model when ``model_name`` is given.

    The run is recorded as running first and ends succeeded (with metrics,
    timings, the HTML report, logs and the scorecard as artifacts) or failed
    (with the error), or cancelled when ``progress`` raises
    :class:`~leptonic.errors.Cancelled`; it is never left running by an error
    here. ``run_id`` lets a caller (a background job) choose the run's id.
    """
    lines: list[str] = []
    started = time.perf_counter()

    def log(message: str) -> None:
        line = f"{time.perf_counter() - started:8.2f}s {message}"
        lines.append(line)
        logger.info(message)
        if echo is not None:
            echo(message)

    run = metadata.create_run(
        Run(
            id=run_id or uuid.uuid4().hex,
            workspace=version.workspace,
            status=RunStatus.RUNNING,
            spec=spec.to_dict(),
            seed=spec.seed,
            inputs=(str(dataset_ref(version)),),
            created_by=actor,
            started_at=utcnow(),
        )
    )
    metadata.add_lineage(dataset_ref(version), run_ref(run))
    try:
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
        result = train_tabular(data, spec, log=log, progress=progress)
        t1 = time.perf_counter()
        report_key = artifacts.put_bytes(_report(run, version, spec, result).encode("utf-8"))
        saved = {
            "report.html": report_key,
            "leaderboard.json": _json_artifact(artifacts, result.leaderboard),
        }
        if result.scorecard is not None:
            saved["scorecard.json"] = _json_artifact(artifacts, result.scorecard.to_dict())
            saved["iv.json"] = _json_artifact(artifacts, result.iv_table)
        metrics = {"valid": result.valid_metrics, "test": result.test_metrics}
        model_version = None
        if model_name is not None:
            registry = ModelRegistry(metadata, artifacts)
            model_version = registry.register(
                version.workspace,
                model_name,
                result.predictor,
                run=run,
                dataset=version,
                metrics=metrics,
                excluded=result.features["excluded"],
                actor=actor,
            )
            log(f"registered {model_name} v{model_version.version}")
        timings = {"load_s": round(load_s, 3), **result.timings}
        timings["report_s"] = round(time.perf_counter() - t1, 3)
        timings["total_s"] = round(time.perf_counter() - started, 3)
        log("done")
        saved["log.txt"] = artifacts.put_bytes("\n".join(lines).encode("utf-8"))
        run = metadata.update_run(
            run.workspace,
            run.id,
            status=RunStatus.SUCCEEDED,
            params={"candidate": result.chosen, **result.params},
            metrics=metrics,
            timings=timings,
            artifacts=saved,
            finished_at=utcnow(),
        )
        return TrainOutcome(run=run, model_version=model_version, result=result)
    except BaseException as exc:
        cancelled = isinstance(exc, Cancelled)
        log(f"cancelled: {exc}" if cancelled else f"failed: {type(exc).__name__}: {exc}")
        log_key = artifacts.put_bytes("\n".join(lines).encode("utf-8"))
        metadata.update_run(
            run.workspace,
            run.id,
            status=RunStatus.CANCELLED if cancelled else RunStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            artifacts={"log.txt": log_key},
            finished_at=utcnow(),
        )
        raise
