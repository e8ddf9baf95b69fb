"""The recommendation and text-classification steps of a recorded training run.

:func:`~leptonic.tasks.runner.run_training` records the run (spec, lineage,
log, status) for every task and calls :func:`train_task` for a
:class:`~leptonic.tasks.recsys.RecommenderSpec` or a
:class:`~leptonic.tasks.textcls.TextClassificationSpec`: it reads the
dataset version, trains, writes the HTML report and the task's other
artifacts, and registers the model when a name is given. The task packages
are imported here, on first use (the text one may bring torch).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from leptonic.core.dataset import DatasetVersion
from leptonic.core.run import Run
from leptonic.errors import SchemaError
from leptonic.registry.service import dataset_ref
from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.tasks._data import select_features
from leptonic.tasks.runner import RunLog, Trained

if TYPE_CHECKING:
    from leptonic.tasks.recsys.spec import RecommenderSpec
    from leptonic.tasks.spec import TrainSpec
    from leptonic.tasks.textcls.classifier import TextTrainingResult
    from leptonic.tasks.textcls.spec import TextClassificationSpec

__all__ = ["check_spec_columns", "train_task"]

ProgressFn = Callable[[int, int], None]


def train_task(
    artifacts: ArtifactStore,
    version: DatasetVersion,
    spec: RecommenderSpec | TextClassificationSpec,
    run: Run,
    log: RunLog,
    *,
    progress: ProgressFn | None,
) -> Trained:
    """Train ``spec``'s task on ``version`` for ``run`` (the caller registers the model)."""
    from leptonic.tasks.recsys.spec import RecommenderSpec

    if isinstance(spec, RecommenderSpec):
        trained = _recommendation(artifacts, version, spec, run, log, progress)
    else:
        trained = _text_classification(artifacts, version, spec, run, log, progress)
    return trained


def check_spec_columns(
    version: DatasetVersion, spec: TrainSpec | RecommenderSpec | TextClassificationSpec
) -> None:
    """Check the columns ``spec`` names against ``version``'s schema (no data is read).

    What training checks first, so that a request queued for later (a server's
    training job) is refused at once: :class:`SchemaError` or :class:`TargetError`
    naming the spec's field and the dataset's columns.
    """
    from leptonic.tasks.recsys.spec import RecommenderSpec
    from leptonic.tasks.textcls.spec import TextClassificationSpec

    if isinstance(spec, RecommenderSpec):
        _check_columns(version, _recs_roles(spec))
    elif isinstance(spec, TextClassificationSpec):
        _check_columns(version, {"text": spec.text, "label": spec.label})
    else:
        select_features(version, spec)


# -- recommendation ------------------------------------------------------------------


def _recommendation(
    artifacts: ArtifactStore,
    version: DatasetVersion,
    spec: RecommenderSpec,
    run: Run,
    log: RunLog,
    progress: ProgressFn | None,
) -> Trained:
    import pyarrow.parquet as pq

    from leptonic.evaluation.ranking_report import report_from_result
    from leptonic.tasks.recsys.train import train_recommender

    t0 = time.perf_counter()
    columns = _check_columns(version, _recs_roles(spec))
    table = pq.read_table(artifacts.local_path(version.artifact_key), columns=columns)
    log(f"loaded {table.num_rows:,} interactions ({', '.join(columns)})")
    load_s = time.perf_counter() - t0
    result = train_recommender(table, spec, log=log, progress=progress)
    t1 = time.perf_counter()
    report = report_from_result(
        result, title=f"Training run {run.id[:8]} — {version.dataset} (recommendation)"
    )
    saved = {
        "report.html": artifacts.put_bytes(report.encode("utf-8")),
        "leaderboard.json": _json_artifact(artifacts, result.leaderboard),
        "curves.json": _json_artifact(artifacts, result.curves),
    }
    metrics = {
        "valid": result.valid_metrics,
        "test": result.test_metrics,
        "baseline_popularity": result.baseline_metrics,
    }
    timings = {
        "load_s": round(load_s, 3),
        **{k: round(v, 3) for k, v in result.timings.items()},
        "report_s": round(time.perf_counter() - t1, 3),
    }
    return Trained(
        result=result,
        params=_json_ready({"candidate": result.chosen, **result.params}),
        metrics=_json_ready(metrics),
        timings=timings,
        artifacts=saved,
    )


# -- text classification ---------------------------------------------------------------


def _text_classification(
    artifacts: ArtifactStore,
    version: DatasetVersion,
    spec: TextClassificationSpec,
    run: Run,
    log: RunLog,
    progress: ProgressFn | None,
) -> Trained:
    from leptonic.evaluation.classification import classification_report
    from leptonic.monitoring.text import BASELINE_ARTIFACT, text_profile
    from leptonic.tasks.textcls.classifier import load_text_data, train_text_classifier

    t0 = time.perf_counter()
    texts, labels, dropped = load_text_data(version, artifacts, spec)
    counts = (("label", dropped["dropped_no_label"]), ("text", dropped["dropped_no_text"]))
    skipped = [f"{n} row(s) without a {what}" for what, n in counts if n]
    log(
        f"loaded {len(texts):,} labelled texts from {spec.text!r} and {spec.label!r}"
        + (f"; dropped {' and '.join(skipped)}" if skipped else "")
    )
    load_s = time.perf_counter() - t0
    result = train_text_classifier(texts, labels, spec, progress=progress, log=log)
    t1 = time.perf_counter()
    per_class = [{"class": c, **v} for c, v in result.test_metrics["per_class"].items()]
    saved = {
        "report.html": artifacts.put_bytes(
            _text_report(run, version, spec, result, dropped, per_class).encode("utf-8")
        ),
        "classification_report.txt": artifacts.put_bytes(
            classification_report(result.test_metrics).encode("utf-8")
        ),
        "per_class.json": _json_artifact(artifacts, per_class),
    }
    for name, png in result.plots.items():
        saved[f"{name}.png"] = artifacts.put_bytes(png)
    if result.test_probabilities is not None:  # what monitoring compares traffic with
        profile = text_profile(
            [texts[i] for i in result.test_index],
            result.test_probabilities,
            result.classes,
            threshold=result.predictor.label_threshold,
        )
        saved[BASELINE_ARTIFACT] = _json_artifact(artifacts, profile.to_json())
    if result.history:
        saved["history.json"] = _json_artifact(artifacts, result.history)
    facts = {k: v for k, v in result.facts.items() if not k.endswith("_s")}
    timings = {
        "load_s": round(load_s, 3),
        **result.timings,
        "report_s": round(time.perf_counter() - t1, 3),
    }
    return Trained(
        result=result,
        params=_json_ready({"mode": spec.mode, **facts}),
        metrics=_json_ready(result.metrics()),
        timings=timings,
        artifacts=saved,
    )


def _text_report(
    run: Run,
    version: DatasetVersion,
    spec: TextClassificationSpec,
    result: TextTrainingResult,
    dropped: Mapping[str, int],
    per_class: Sequence[Mapping[str, Any]],
) -> str:
    """One self-contained HTML page, in the style of the tabular report."""
    from leptonic.evaluation.report import (
        _CSS,
        _anchor,
        _e,
        _figure,
        _key_values,
        _metrics_table,
        _table,
    )

    summary = {
        "run": run.id,
        "workspace": run.workspace,
        "dataset": str(dataset_ref(version)),
        "rows": version.num_rows,
        "text column": spec.text,
        "label column": spec.label,
        "mode": spec.mode,
        "base model": result.predictor.info.get("base_model", "-"),
        "classes": len(result.classes),
        "split (texts)": result.split,
        **{k.replace("_", " "): n for k, n in dropped.items()},
        "seed": spec.seed,
    }
    metrics = {"test": result.test_metrics}
    if result.baseline_metrics is not None:
        metrics["test (TF-IDF baseline)"] = result.baseline_metrics
    captions = {"confusion_matrix": "Confusion matrix (test)", "f1_per_class": "F1 per class"}
    figures = [_figure(png, captions.get(name, name)) for name, png in result.plots.items()]
    notes = [
        "Test metrics were computed once on a stratified held-out split never used for "
        "training or model choice.",
    ]
    if result.comparison is not None:
        gain = result.comparison
        notes.append(
            f"Against the TF-IDF baseline: accuracy {gain['accuracy_gain']:+.4f}, "
            f"macro-F1 {gain['macro_f1_gain']:+.4f}."
        )
    sections: list[tuple[str, str]] = [
        ("Summary", _key_values(summary)),
        ("Notes", f'<ul class="notes">{"".join(f"<li>{_e(n)}</li>" for n in notes)}</ul>'),
        ("Metrics", _metrics_table(metrics)),
        ("Plots", f'<div class="plots">{"".join(figures)}</div>'),
        ("Per-class report", _table(per_class)),
    ]
    if result.history:
        sections.append(("Training history", _table(result.history)))
    used: set[str] = set()
    anchors = [_anchor(name, used) for name, _ in sections]
    nav = "".join(
        f'<a href="#{a}">{_e(name)}</a>' for a, (name, _) in zip(anchors, sections, strict=True)
    )
    body = "\n".join(
        f'<section id="{a}">\n<h2>{_e(name)}</h2>\n{content}\n</section>'
        for a, (name, content) in zip(anchors, sections, strict=True)
    )
    title = f"Training run {run.id[:8]} — {version.dataset}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header><h1>{_e(title)}</h1><div class="task">task: text-classification · '
        f"{int(result.test_metrics['n']):,} texts evaluated</div></header>\n"
        f"<nav>{nav}</nav>\n<main>\n{body}\n</main>\n"
        "<footer>Generated by Leptonic. Self-contained: plots are embedded images.</footer>\n"
        "</body>\n</html>\n"
    )


# -- helpers ---------------------------------------------------------------------------


def _recs_roles(spec: RecommenderSpec) -> dict[str, str]:
    """The columns a recommender's spec names, by role."""
    roles = {"user": spec.user, "item": spec.item, "timestamp": spec.timestamp}
    return {k: v for k, v in {**roles, "weight": spec.weight}.items() if v is not None}


def _check_columns(version: DatasetVersion, roles: Mapping[str, str]) -> list[str]:
    """The columns named by the spec (role → column), each checked to be in ``version``."""
    names = [c.name for c in version.columns]
    for role, column in roles.items():
        if column not in names:
            raise SchemaError(
                f"{role} column {column!r} is not in dataset {version.dataset!r} "
                f"v{version.version}; columns are: {', '.join(names)} — name one of them as "
                f"the spec's {role}",
                field=role,
            )
    return list(dict.fromkeys(roles.values()))


def _json_artifact(artifacts: ArtifactStore, value: Any) -> str:
    data = json.dumps(_json_ready(value), indent=2, allow_nan=False)
    return artifacts.put_bytes(data.encode("utf-8"))


def _json_ready(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python values, non-finite floats as None
    and keys as strings: what the metadata store accepts."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)
