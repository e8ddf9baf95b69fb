"""Monitoring plots and the self-contained monitoring report page.

Plots are drawn like :mod:`leptonic.evaluation.plots`: a
:class:`matplotlib.figure.Figure` on the Agg renderer (no ``pyplot``, no
global state, safe in threads), saved as a small PNG. Each function returns
a ``data:image/png;base64,...`` URI, ready for an ``<img src>``.
:func:`monitoring_report_html` puts them on one HTML page in the style of
:func:`leptonic.evaluation.render_report`: inline CSS and images, no scripts
and no external URLs, all text escaped.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from leptonic.core.endpoint import Alert
from leptonic.evaluation.plots import png_data_uri
from leptonic.evaluation.report import _CSS, _anchor, _e, _key_values, _table
from leptonic.monitoring.alerts import score_subject
from leptonic.monitoring.baseline import BaselineProfile
from leptonic.monitoring.drift import DriftReport, DriftSeries, FeatureDrift
from leptonic.monitoring.performance import PerformanceReport, PerformanceWindow

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "band_bad_rate_plot",
    "distribution_plot",
    "monitoring_report_html",
    "performance_plot",
    "psi_plot",
]

_DPI = 90
_SIZE = (6.0, 3.5)
_BASE, _NOW, _GREY, _ALERT = "#1f77b4", "#ff7f0e", "#7f7f7f", "#d62728"
_BAND_COLOURS = {"approve": "#2ca02c", "review": "#ff7f0e", "reject": "#d62728"}


def _plain(value: Any) -> str:
    """``value`` as literal text: matplotlib would read ``$...$`` as TeX math."""
    return str(value).replace("$", r"\$")


def _figure(size: tuple[float, float] = _SIZE) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure  # imported on first use: it is slow to import

    fig = Figure(figsize=size, dpi=_DPI, layout="constrained")
    return fig, fig.add_subplot()


def _uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return png_data_uri(buf.getvalue())


def _nan(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _dates(starts: Sequence[datetime | None], window: timedelta | None) -> np.ndarray:
    """Middles of windows as matplotlib date numbers (days), read in UTC."""
    from matplotlib.dates import date2num

    naive = [s.astimezone(UTC).replace(tzinfo=None) if s and s.tzinfo else s for s in starts]
    half = window.total_seconds() / 172_800 if window else 0.0
    return np.asarray(date2num(naive), dtype=np.float64) + half


def _time_axis(fig: Figure, ax: Axes, xlabel: str = "Window (UTC)") -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=_GREY)
    ax.set_xticks([])
    ax.set_yticks([])


def psi_plot(
    series: DriftSeries,
    *,
    threshold: float = 0.25,
    top: int = 8,
    title: str = "PSI per window",
) -> str:
    """PSI of the score and of the ``top`` most drifting inputs over time, threshold dashed."""
    fig, ax = _figure()
    ax.set_title(_plain(title))
    if not series.starts:
        _empty(ax, "no predictions")
        return _uri(fig)
    x = _dates(series.starts, series.window)
    peak = {
        name: float(np.nanmax(v)) if not np.isnan(v).all() else -1.0
        for name, v in ((n, _nan(vals)) for n, vals in series.features.items())
    }
    shown = sorted(peak, key=lambda n: -peak[n])[:top]
    marker = "o" if len(x) <= 40 else None
    for name in shown:
        ax.plot(x, _nan(series.features[name]), lw=1.2, marker=marker, ms=3, label=_plain(name))
    ax.plot(x, _nan(series.score), color="black", lw=2.2, marker=marker, ms=3, label="score")
    ax.axhline(threshold, color=_ALERT, lw=1, ls="--", label=f"alert at {threshold:g}")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("PSI")
    _time_axis(fig, ax)
    ax.legend(fontsize=7, loc="upper left", ncols=2)
    return _uri(fig)


def distribution_plot(drift: FeatureDrift, *, title: str | None = None) -> str:
    """Baseline and recent shares of each bin of one input (or of the score), side by side."""
    k = len(drift.labels)
    fig, ax = _figure((max(5.0, 0.45 * k + 2.0), 3.5))
    idx = np.arange(k)
    ax.bar(idx - 0.2, drift.expected, width=0.4, color=_BASE, label="training baseline")
    ax.bar(idx + 0.2, drift.actual, width=0.4, color=_NOW, label=f"recent (n = {drift.n:,})")
    ax.set_xticks(idx, [_plain(label) for label in drift.labels], rotation=45, ha="right")
    psi = "—" if drift.psi is None else f"{drift.psi:.3f}"
    ax.set_title(_plain(title or f"{drift.name}: PSI {psi}"))
    ax.set_ylabel("Share")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _uri(fig)


def performance_plot(
    report: PerformanceReport,
    *,
    baseline_auc: float | None = None,
    title: str = "AUC and KS per window",
) -> str:
    """AUC and KS over time (windows with one class only are gaps), with counts as bars."""
    fig, ax = _figure()
    ax.set_title(_plain(title))
    if not report.windows:
        _empty(ax, "no windows: pass a window to performance_report")
        return _uri(fig)
    x = _dates([w.start for w in report.windows], report.window)
    counts = ax.twinx()
    width = 0.8 * (report.window or timedelta(days=1)).total_seconds() / 86_400
    counts.bar(x, [w.n for w in report.windows], width=width, color=_GREY, alpha=0.2)
    counts.set_ylabel("Outcomes", color=_GREY)
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    marker = "o" if len(x) <= 40 else None
    ax.plot(x, _nan([w.auc for w in report.windows]), color=_BASE, lw=2, marker=marker, label="AUC")
    ax.plot(x, _nan([w.ks for w in report.windows]), color=_NOW, lw=2, marker=marker, label="KS")
    if baseline_auc is not None:
        ax.axhline(
            baseline_auc, color=_BASE, lw=1, ls="--", label=f"baseline AUC {baseline_auc:.3f}"
        )
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("AUC / KS")
    _time_axis(fig, ax)
    ax.legend(fontsize=7, loc="lower left")
    return _uri(fig)


def band_bad_rate_plot(report: PerformanceReport, *, title: str = "Bad rate per band") -> str:
    """Bad rate of each decision band over time, and overall."""
    fig, ax = _figure()
    ax.set_title(_plain(title))
    if not report.windows:
        _empty(ax, "no windows: pass a window to performance_report")
        return _uri(fig)
    x = _dates([w.start for w in report.windows], report.window)
    marker = "o" if len(x) <= 40 else None
    for band in report.bands:
        ax.plot(
            x,
            _nan([w.bands[band].bad_rate for w in report.windows]),
            lw=1.6,
            marker=marker,
            color=_BAND_COLOURS.get(band),
            label=_plain(band),
        )
    ax.plot(
        x,
        _nan([w.bad_rate for w in report.windows]),
        color="black",
        lw=1,
        ls=":",
        label="all decisions",
    )
    ax.set_ylim(bottom=0)
    ax.set_ylabel("Bad rate")
    _time_axis(fig, ax)
    ax.legend(fontsize=7, loc="upper left")
    return _uri(fig)


def _img(uri: str, caption: str) -> str:
    return (
        f'<figure><img src="{uri}" alt="{_e(caption)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _drift_rows(drift: DriftReport, threshold: float) -> list[dict[str, Any]]:
    rows = []
    for d in [drift.score, *sorted(drift.features.values(), key=lambda f: -(f.psi or 0.0))]:
        rows.append(
            {
                "subject": score_subject(drift) if d is drift.score else d.name,
                "kind": "score" if d is drift.score else d.kind,
                "psi": d.psi,
                "n": d.n,
                "missing": d.n_missing,
                "status": "—"
                if d.psi is None
                else ("drift" if d.psi > threshold else ("watch" if d.psi > 0.1 else "stable")),
            }
        )
    for name, reason in drift.skipped.items():
        rows.append({"subject": name, "kind": "skipped", "status": reason})
    return rows


def _baseline_rows(profile: BaselineProfile) -> list[dict[str, Any]]:
    return [
        {
            "input": fb.name,
            "kind": "score" if fb is profile.score else fb.kind,
            "bins": fb.n_bins,
            "training rows": fb.n,
            "missing share": fb.proportions[-1],
            "kept categories": len(fb.categories) if fb.kind == "categorical" else None,
        }
        for fb in [profile.score, *profile.features.values()]
    ]


def _window_rows(windows: Sequence[PerformanceWindow]) -> list[dict[str, Any]]:
    rows = []
    for w in windows:
        row: dict[str, Any] = {
            "start": w.start.isoformat(timespec="minutes") if w.start else None,
            "n": w.n,
            "bad rate": w.bad_rate,
            "AUC": w.auc,
            "KS": w.ks,
        }
        for band, b in w.bands.items():
            row[f"{band} n"] = b.n
            row[f"{band} bad rate"] = b.bad_rate
        rows.append(row)
    return rows


def _alert_rows(alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    return [
        {
            "rule": a.rule,
            "subject": a.subject,
            "value": a.value,
            "threshold": a.threshold,
            "window": f"{a.window_start.isoformat(timespec='minutes')} – "
            f"{a.window_end.isoformat(timespec='minutes')}",
            "status": a.status,
            "message": a.message,
        }
        for a in alerts
    ]


def monitoring_report_html(
    *,
    title: str,
    summary: Mapping[str, Any] | None = None,
    profile: BaselineProfile | None = None,
    drift: DriftReport | None = None,
    series: DriftSeries | None = None,
    performance: PerformanceReport | None = None,
    alerts: Sequence[Alert] = (),
    baseline_auc: float | None = None,
    psi_threshold: float = 0.25,
    max_feature_plots: int = 6,
    notes: Sequence[str] = (),
) -> str:
    """One self-contained HTML page on an endpoint's drift, performance and alerts.

    Parameters
    ----------
    title
        Page title.
    summary
        Key facts (endpoint, model version, period...), shown as a table.
    profile
        The training baseline: a table of its inputs and bins.
    drift
        Drift of the recent predictions: a PSI table, the score's and the
        most drifted inputs' distributions against the baseline.
    series
        Drift per window: the PSI-over-time plot.
    performance
        Performance on outcomes: overall and per-window tables, AUC/KS and
        bad-rate-per-band plots.
    alerts
        Alerts to list.
    baseline_auc
        Drawn as a reference line on the AUC plot.
    psi_threshold
        Drawn on the PSI plot and used to flag inputs in the table.
    max_feature_plots
        Distribution plots of at most this many inputs (most drifted first).
    notes
        Free-text remarks.

    Returns
    -------
    str
        The HTML document.
    """
    sections: list[tuple[str, str]] = [("Summary", _key_values(summary or {}))]
    if notes:
        items = "".join(f"<li>{_e(note)}</li>" for note in notes)
        sections.append(("Notes", f'<ul class="notes">{items}</ul>'))
    sections.append(("Alerts", _table(_alert_rows(alerts)) if alerts else _none("No alerts.")))
    if drift is not None or series is not None:
        parts: list[str] = []
        if drift is not None:
            parts.append(_table(_drift_rows(drift, psi_threshold)))
            if drift.ignored:
                parts.append(
                    f'<p class="empty">Fields not in the baseline, ignored: '
                    f"{_e(', '.join(drift.ignored))}.</p>"
                )
        figures = []
        if series is not None:
            figures.append(_img(psi_plot(series, threshold=psi_threshold), "PSI per window"))
        if drift is not None:
            figures.append(
                _img(distribution_plot(drift.score), "Score distribution: baseline vs recent")
            )
            for d in drift.most_drifted(max_feature_plots):
                figures.append(_img(distribution_plot(d), f"{d.name}: baseline vs recent"))
        parts.append(f'<div class="plots">{"".join(figures)}</div>')
        sections.append(("Drift", "\n".join(parts)))
    if profile is not None:
        sections.append(("Baseline", _table(_baseline_rows(profile))))
    if performance is not None:
        overall = performance.overall
        parts = [
            _key_values(
                {
                    "outcomes": overall.n,
                    "bad": overall.n_bad,
                    "bad rate": overall.bad_rate,
                    "AUC": overall.auc,
                    "KS": overall.ks,
                    "baseline AUC": baseline_auc,
                }
            ),
            "<h3>Per decision band</h3>",
            _table([{"band": name, **b.to_dict()} for name, b in overall.bands.items()]),
        ]
        if performance.windows:
            parts += [
                "<h3>Per window</h3>",
                _table(_window_rows(performance.windows)),
                '<div class="plots">'
                + _img(performance_plot(performance, baseline_auc=baseline_auc), "AUC and KS")
                + _img(band_bad_rate_plot(performance), "Bad rate per decision band")
                + "</div>",
            ]
        sections.append(("Performance", "\n".join(parts)))

    used: set[str] = set()
    anchors = [_anchor(name, used) for name, _ in sections]
    nav = "".join(
        f'<a href="#{a}">{_e(name)}</a>' for a, (name, _) in zip(anchors, sections, strict=True)
    )
    body = "\n".join(
        f'<section id="{a}">\n<h2>{_e(name)}</h2>\n{content}\n</section>'
        for a, (name, content) in zip(anchors, sections, strict=True)
    )
    n_alerts = len(alerts)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header><h1>{_e(title)}</h1><div class="task">monitoring · '
        f"{n_alerts} alert{'s' if n_alerts != 1 else ''}</div></header>\n"
        f"<nav>{nav}</nav>\n<main>\n{body}\n</main>\n"
        "<footer>Generated by Leptonic. Self-contained: plots are embedded images.</footer>\n"
        "</body>\n</html>\n"
    )


def _none(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'
