"""Self-contained HTML reports for recommenders, with their plots.

:func:`render_ranking_report` returns one HTML page in the style of
:func:`leptonic.evaluation.report.render_report` (inline CSS, plots as inline
PNG images, all text escaped): summary, notes, metrics per split,
leaderboard, NDCG/recall/MAP at k = 1..20 for each model, and how popular
the recommended items are compared with the catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from leptonic.errors import InvalidInput
from leptonic.evaluation.plots import _figure as _new_figure
from leptonic.evaluation.plots import _plain, _png
from leptonic.evaluation.report import (
    _CSS,
    _anchor,
    _e,
    _figure,
    _key_values,
    _metrics_table,
    _table,
)

__all__ = ["metric_curve_plot", "popularity_plot", "render_ranking_report", "report_from_result"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#7f7f7f")
_LABELS = {"ndcg": "NDCG@k", "recall": "Recall@k", "map": "MAP@k", "precision": "Precision@k"}


def metric_curve_plot(
    curves: Mapping[str, Mapping[str, Sequence[float]]], metric: str = "ndcg"
) -> bytes:
    """``metric`` against k, one line per model (``curves``: model → {"k": [...], metric: [...]})."""
    label = _LABELS.get(metric, metric)
    fig, ax = _new_figure()
    drawn = 0
    for i, (name, curve) in enumerate(curves.items()):
        if metric not in curve or "k" not in curve:
            continue
        ax.plot(
            curve["k"],
            curve[metric],
            marker="o",
            ms=3,
            lw=2,
            color=_COLORS[i % len(_COLORS)],
            label=_plain(name),
        )
        drawn += 1
    if not drawn:
        raise InvalidInput(f"no curve holds the metric {metric!r}", field="curves")
    ax.set(title=f"{label} by cut-off", ylim=(0, None))
    ax.set_xlabel("k")
    ax.set_ylabel(label)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def popularity_plot(recommended: ArrayLike, catalogue: ArrayLike) -> bytes:
    """How popular recommended items are: histograms of interaction counts (log scale) of
    the catalogue's items and of the recommendation slots."""
    rec = np.asarray(recommended, dtype=np.float64).ravel()
    cat = np.asarray(catalogue, dtype=np.float64).ravel()
    if cat.size == 0:
        raise InvalidInput("the catalogue popularity is empty", field="catalogue")
    top = max(float(cat.max()), float(rec.max()) if rec.size else 0.0, 1.0)
    edges = (np.unique(np.r_[0.0, np.geomspace(1.0, top + 1.0, 20)]) - 0.5).tolist()
    fig, ax = _new_figure()
    ax.hist(cat, bins=edges, density=True, alpha=0.55, color="#7f7f7f", label="catalogue items")
    if rec.size:
        ax.hist(rec, bins=edges, density=True, alpha=0.55, color="#1f77b4", label="recommended")
        ax.axvline(float(np.median(rec)), color="#1f77b4", lw=1.5, ls="--")
    ax.axvline(float(np.median(cat)), color="#404040", lw=1.5, ls="--")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set(title="Popularity of recommended items vs catalogue")
    ax.set_xlabel("training interactions of the item (dashed: medians)")
    ax.set_ylabel("density")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def render_ranking_report(
    *,
    title: str,
    summary: Mapping[str, Any],
    metrics: Mapping[str, Mapping[str, Any]],
    leaderboard: Sequence[Mapping[str, Any]],
    curves: Mapping[str, Mapping[str, Sequence[float]]],
    recommended_popularity: ArrayLike,
    catalogue_popularity: ArrayLike,
    tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """One self-contained HTML page reporting a recommender evaluation.

    Parameters
    ----------
    title
        Page title.
    summary
        Key facts (dataset, chosen model, split...), shown as a key/value table.
    metrics
        Split or model name → metric name → value (``ndcg@10``, ``coverage@10``...).
    leaderboard
        One row per candidate family.
    curves
        Model name → ``{"k": [...], "ndcg": [...], "recall": [...], "map": [...]}``
        (as returned by :func:`leptonic.evaluation.ranking.metric_curves`).
    recommended_popularity
        Training interaction count of every recommended slot (top-k of each test user).
    catalogue_popularity
        Training interaction count of every catalogue item.
    tables
        Title → rows of further tables.
    notes
        Free-text remarks, shown as a list.
    """
    figures = []
    for metric in ("ndcg", "recall", "map"):
        if any(metric in c for c in curves.values()):
            png = metric_curve_plot(curves, metric)
            figures.append(_figure(png, f"{_LABELS[metric]} at k = 1..20"))
    figures.append(
        _figure(
            popularity_plot(recommended_popularity, catalogue_popularity),
            "Popularity bias: recommended items against the catalogue",
        )
    )
    sections: list[tuple[str, str]] = [("Summary", _key_values(summary))]
    if notes:
        items = "".join(f"<li>{_e(note)}</li>" for note in notes)
        sections.append(("Notes", f'<ul class="notes">{items}</ul>'))
    sections.append(("Metrics", _metrics_table(metrics)))
    sections.append(("Leaderboard", _table(leaderboard)))
    sections.append(("Plots", f'<div class="plots">{"".join(figures)}</div>'))
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
    n_items = int(np.asarray(catalogue_popularity).size)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header><h1>{_e(title)}</h1><div class="task">task: recommendation · '
        f"{n_items:,} catalogue items</div></header>\n"
        f"<nav>{nav}</nav>\n<main>\n{body}\n</main>\n"
        "<footer>Generated by Leptonic. Self-contained: plots are embedded images.</footer>\n"
        "</body>\n</html>\n"
    )


def report_from_result(result: Any, *, title: str = "Recommender evaluation") -> str:
    """The report of a :class:`~leptonic.tasks.recsys.RecommenderTrainingResult`."""
    k_metrics = {
        "test (chosen)": result.test_metrics,
        "test (popularity)": result.baseline_metrics,
        "validation (chosen)": result.valid_metrics,
    }
    summary = {
        "chosen model": result.chosen,
        "parameters": result.params,
        "split": result.split,
        "timings (s)": {k: round(v, 2) for k, v in result.timings.items()},
    }
    return render_ranking_report(
        title=title,
        summary=summary,
        metrics=k_metrics,
        leaderboard=result.leaderboard,
        curves=result.curves,
        recommended_popularity=result.recommended_popularity,
        catalogue_popularity=result.catalogue_popularity,
        notes=result.notes,
    )
