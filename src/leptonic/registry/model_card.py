"""Model cards: what a model version is, what it was trained on, how well it does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_model_card"]

_HEADLINE = ("auc", "ks", "gini", "pr_auc", "brier", "accuracy", "macro_f1", "rmse", "mae", "r2")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def render_model_card(
    *,
    model: str,
    version: int | None,
    workspace: str,
    task: str,
    flavor: str,
    run_id: str,
    dataset: str,
    dataset_rows: int,
    dataset_hash: str,
    metrics: Mapping[str, Mapping[str, Any]],
    inputs: Sequence[Mapping[str, str]],
    excluded: Mapping[str, str],
    threshold: float | None,
    created_by: str,
    description: str = "",
) -> str:
    """A Markdown model card."""
    lines = [
        f"# Model card: {model}" + (f" v{version}" if version is not None else ""),
        "",
        description or f"A {task} model ({flavor}) trained by Leptonic in workspace {workspace}.",
        "",
        "## Details",
        f"- Task: {task}",
        f"- Model family: {flavor}",
        f"- Training run: {run_id}",
        f"- Training data: {dataset} ({dataset_rows} rows, sha256 {dataset_hash[:16]}…)",
        f"- Registered by: {created_by}",
    ]
    if threshold is not None:
        lines.append(f"- Decision threshold on P(event): {threshold:.4f}")
    lines += ["", "## Performance", "", "| split | " + " | ".join(_HEADLINE) + " |"]
    lines.append("|---" * (len(_HEADLINE) + 1) + "|")
    for split, values in metrics.items():
        cells = [_fmt(values.get(k, "")) for k in _HEADLINE]
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    lines += ["", "## Inputs", ""]
    lines += [f"- `{i['name']}` ({i['type']})" for i in inputs]
    if excluded:
        lines += ["", "## Columns not used", ""]
        lines += [f"- `{name}`: {why}" for name, why in excluded.items()]
    lines += [
        "",
        "## Intended use and limitations",
        "",
        "- Scores applicants or records like those in the training data; check drift before "
        "trusting it on a different population.",
        "- Test metrics were computed once on a held-out part never seen during the search.",
        "- Personal data columns were left out of the features unless explicitly allowed.",
        "",
    ]
    return "\n".join(lines)
