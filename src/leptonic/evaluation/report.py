"""Self-contained HTML evaluation reports.

:func:`render_report` returns one HTML page with inline CSS and the plots as
inline base64 PNG images: no scripts, fonts or links to fetch, so it reads the
same offline, attached to an e-mail or stored as a run artifact. All text
given to it is escaped.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from leptonic.errors import InvalidInput
from leptonic.evaluation import plots
from leptonic.evaluation.multiclass import multiclass_metrics

__all__ = ["TASKS", "render_report"]

#: Task name → the family of plots its report shows.
TASKS: Mapping[str, str] = {
    "binary": "binary",
    "anomaly": "binary",
    "multiclass": "multiclass",
    "text-classification": "multiclass",
    "regression": "regression",
}

_CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --band: #f5f7fa; --accent: #1f77b4; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica,
       Arial, sans-serif; color: var(--ink); background: #fff; }
header { padding: 20px 32px 12px; border-bottom: 3px solid var(--accent); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .task { color: var(--muted); }
nav { padding: 8px 32px; background: var(--band); border-bottom: 1px solid var(--line); }
nav a { color: var(--accent); margin-right: 16px; text-decoration: none; }
main { padding: 8px 32px 32px; max-width: 1200px; }
h2 { font-size: 17px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 8px; }
table { border-collapse: collapse; margin: 4px 0 12px; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { max-height: 480px; overflow: auto; display: inline-block; max-width: 100%; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; border: 1px solid var(--line); padding: 6px; background: #fff; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
.notes li { margin: 2px 0; }
.empty { color: var(--muted); font-style: italic; }
footer { color: var(--muted); font-size: 12px; padding: 12px 32px; border-top: 1px solid var(--line); }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> tuple[str, bool]:
    """Display text of a cell value and whether it is a number."""
    if value is None:
        return "—", False
    if isinstance(value, bool | np.bool_):
        return ("yes" if value else "no"), False
    if isinstance(value, int | np.integer):
        return f"{int(value):,}", True
    if isinstance(value, float | np.floating):
        v = float(value)
        if not math.isfinite(v):
            return str(v), True
        if v == 0 or 1e-3 <= abs(v) < 1e6:
            return (f"{v:,.4f}".rstrip("0").rstrip(".") if v != int(v) else f"{v:,.1f}"), True
        return f"{v:.4g}", True
    if isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, default=str)
        return (text if len(text) <= 200 else text[:197] + "..."), False
    return str(value), False


def _cell(value: Any, tag: str = "td") -> str:
    text, numeric = _fmt(value)
    cls = ' class="num"' if numeric else ""
    return f"<{tag}{cls}>{_e(text)}</{tag}>"


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return '<p class="empty">No rows.</p>'
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>\n" for row in rows)
    return (
        f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}</tbody></table></div>"
    )


def _key_values(items: Mapping[str, Any]) -> str:
    if not items:
        return '<p class="empty">Nothing to show.</p>'
    body = "".join(f"<tr><th>{_e(k)}</th>{_cell(v)}</tr>\n" for k, v in items.items())
    return f"<table>\n<tbody>\n{body}</tbody></table>"


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | np.number | np.bool_)


def _metrics_table(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """Metrics as rows and splits as columns; nested values are left out."""
    if not metrics:
        return '<p class="empty">No metrics.</p>'
    splits = list(metrics)
    names = list(
        dict.fromkeys(k for split in splits for k, v in metrics[split].items() if _is_scalar(v))
    )
    head = "<th>metric</th>" + "".join(f"<th>{_e(s)}</th>" for s in splits)
    body = "".join(
        f"<tr><th>{_e(name)}</th>"
        + "".join(_cell(metrics[s].get(name)) for s in splits)
        + "</tr>\n"
        for name in names
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>"


def _figure(png: bytes, caption: str) -> str:
    return (
        f'<figure><img src="{plots.png_data_uri(png)}" alt="{_e(caption)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _binary_plots(y_true: np.ndarray, y_score: np.ndarray) -> list[str]:
    labels = np.asarray(y_true)
    if labels.size and np.unique(labels).size > 1:
        figures = [
            _figure(plots.roc_plot(y_true, y_score), "ROC curve"),
            _figure(plots.ks_plot(y_true, y_score), "KS: cumulative score distributions"),
        ]
    else:  # a tiny split, or an anomaly split without positives
        figures = [
            '<p class="empty">No ROC or KS plot: the labels hold one class only; they need '
            "both positives and negatives.</p>"
        ]
    score = np.asarray(y_score, dtype=np.float64)
    if score.size and score.min() >= 0.0 and score.max() <= 1.0:
        figures.append(
            _figure(plots.calibration_plot(y_true, y_score), "Calibration (reliability diagram)")
        )
    else:
        figures.append(
            '<p class="empty">No calibration plot: the scores are not probabilities in [0, 1].</p>'
        )
    figures.append(
        _figure(plots.score_distribution_plot(y_true, y_score), "Score distribution by class")
    )
    return figures


def _multiclass_parts(
    y_true: np.ndarray, y_score: np.ndarray, classes: Sequence[str] | None
) -> tuple[list[str], list[dict[str, Any]]]:
    if classes is None:
        raise InvalidInput(
            "a multiclass report needs classes, in the order of the proba columns",
            field="classes",
        )
    result = multiclass_metrics(y_true, y_score, classes)
    figures = [
        _figure(plots.confusion_plot(result["confusion_matrix"], classes), "Confusion matrix"),
        _figure(plots.class_f1_plot(result["per_class"]), "F1 per class"),
    ]
    per_class = [{"class": name, **values} for name, values in result["per_class"].items()]
    return figures, per_class


def _regression_plots(y_true: np.ndarray, y_score: np.ndarray) -> list[str]:
    return [
        _figure(plots.regression_plot(y_true, y_score), "Predicted vs actual"),
        _figure(plots.residual_plot(y_true, y_score), "Residuals"),
    ]


_PLOTTERS: Mapping[str, Callable[[np.ndarray, np.ndarray], list[str]]] = {
    "binary": _binary_plots,
    "regression": _regression_plots,
}


def _anchor(text: str, used: set[str]) -> str:
    base = "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-") or "section"
    anchor, i = base, 2
    while anchor in used:
        anchor, i = f"{base}-{i}", i + 1
    used.add(anchor)
    return anchor


def render_report(
    *,
    title: str,
    task: str,
    summary: Mapping[str, Any],
    metrics: Mapping[str, Mapping[str, Any]],
    leaderboard: Sequence[Mapping[str, Any]],
    y_true: np.ndarray,
    y_score: np.ndarray,
    classes: Sequence[str] | None = None,
    tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """One self-contained HTML page reporting a model evaluation.

    Parameters
    ----------
    title
        Page title.
    task
        One of :data:`TASKS` (``"binary"``, ``"multiclass"``, ``"regression"``...);
        it picks the plots.
    summary
        Key facts (dataset, model, run, target...), shown as a key/value table.
    metrics
        Split name (``"valid"``, ``"test"``) → metric name → value; scalar
        values are tabulated with one column per split.
    leaderboard
        One row per candidate model.
    y_true
        Targets of the evaluated split.
    y_score
        Scores or probabilities of the positive class (binary), predictions
        (regression), or an ``(n, len(classes))`` probability array (multiclass).
    classes
        Class labels in the order of the ``y_score`` columns; multiclass only.
    tables
        Title → rows of further tables ("Information value", "Scorecard points"...).
    notes
        Free-text remarks, shown as a list.

    Returns
    -------
    str
        The HTML document.
    """
    family = TASKS.get(task)
    if family is None:
        raise InvalidInput(
            f"unknown task {task!r} for a report; use one of {', '.join(TASKS)}", field="task"
        )
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    per_class: list[dict[str, Any]] = []
    if family == "multiclass":
        figures, per_class = _multiclass_parts(y_true, y_score, classes)
    else:
        if y_score.ndim != 1:
            raise InvalidInput(
                f"y_score must be 1-D for a {task} report, got shape {y_score.shape}",
                field="y_score",
            )
        figures = _PLOTTERS[family](y_true, y_score)

    sections: list[tuple[str, str]] = [("Summary", _key_values(summary))]
    if notes:
        items = "".join(f"<li>{_e(note)}</li>" for note in notes)
        sections.append(("Notes", f'<ul class="notes">{items}</ul>'))
    sections.append(("Metrics", _metrics_table(metrics)))
    sections.append(("Leaderboard", _table(leaderboard)))
    sections.append(("Plots", f'<div class="plots">{"".join(figures)}</div>'))
    if per_class:
        sections.append(("Per-class report", _table(per_class)))
    for name, rows in (tables or {}).items():
        sections.append((str(name), _table(rows)))

    used: set[str] = set()
    anchors = [_anchor(name, used) for name, _ in sections]
    nav = "".join(
        f'<a href="#{a}">{_e(name)}</a>' for a, (name, _) in zip(anchors, sections, strict=True)
    )
    body = "\n".join(
        f'<section id="{a}">\n<h2>{_e(name)}</h2>\n{content}\n</section>'
        for a, (name, content) in zip(anchors, sections, strict=True)
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header><h1>{_e(title)}</h1><div class="task">task: {_e(task)} · '
        f"{y_true.shape[0]:,} rows evaluated</div></header>\n"
        f"<nav>{nav}</nav>\n<main>\n{body}\n</main>\n"
        "<footer>Generated by Leptonic. Self-contained: plots are embedded images.</footer>\n"
        "</body>\n</html>\n"
    )
