"""Monitoring plots and the HTML report: images, escaping, nothing fetched from outside."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from leptonic.core.endpoint import Alert, Prediction
from leptonic.monitoring import (
    AlertRules,
    BaselineProfile,
    band_bad_rate_plot,
    distribution_plot,
    drift_over_time,
    drift_report,
    evaluate_rules,
    monitoring_report_html,
    performance_plot,
    performance_report,
    psi_plot,
)
from leptonic.monitoring.drift import DriftReport, DriftSeries
from leptonic.monitoring.performance import PerformanceReport

DAY = timedelta(days=1)
T0 = datetime(2025, 3, 1, tzinfo=UTC)
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}


def _png(uri: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    data = base64.b64decode(uri[len(prefix) :])
    assert data.startswith(b"\x89PNG")
    return data


@pytest.fixture(scope="module")
def monitored(
    profile: BaselineProfile,
    make_applicants: Callable[..., tuple[pd.DataFrame, np.ndarray]],
    make_predictions: Callable[..., list[Prediction]],
) -> tuple[DriftReport, DriftSeries, PerformanceReport, list[Prediction]]:
    predictions: list[Prediction] = []
    for day in range(5):
        frame, scores = make_applicants(300, seed=40 + day, shift=0.25 * day)
        predictions += make_predictions(frame, scores, T0 + day * DAY, timedelta(minutes=3))
    recent = [p for p in predictions if p.at >= T0 + 4 * DAY]
    drift = drift_report(profile, [p.inputs for p in recent], [p.score for p in recent])
    series = drift_over_time(profile, predictions, DAY)
    rng = np.random.default_rng(0)
    outcomes = [(p.score, int(rng.uniform() < p.score), p.decision, p.at) for p in predictions]
    return drift, series, performance_report(outcomes, DAY), predictions


def test_each_plot_is_a_png_data_uri(
    monitored: tuple[DriftReport, DriftSeries, PerformanceReport, list[Prediction]],
) -> None:
    drift, series, perf, _ = monitored
    _png(psi_plot(series))
    _png(distribution_plot(drift.score))
    _png(distribution_plot(drift.features["region"]))
    _png(performance_plot(perf, baseline_auc=0.8))
    _png(band_bad_rate_plot(perf))


def test_plots_of_empty_inputs_still_render(profile: BaselineProfile) -> None:
    _png(psi_plot(drift_over_time(profile, [], DAY)))
    _png(performance_plot(performance_report([])))
    _png(band_bad_rate_plot(performance_report([])))
    _png(distribution_plot(drift_report(profile, [], []).score))


def test_dollar_signs_are_text_not_mathtext() -> None:
    frame = pd.DataFrame({"price $band": ["$10_$20", "$20+", "a$^$b"] * 10})
    profile = BaselineProfile.fit(
        frame, np.linspace(0, 1, 30), [{"name": "price $band", "type": "categorical"}]
    )
    drift = drift_report(profile, [{"price $band": "$5-$10"}] * 5, [0.5] * 5)
    _png(distribution_plot(drift.features["price $band"]))


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "action", "srcset")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>")
        else:
            self.stack.pop()


def test_report_is_self_contained_and_well_formed(
    profile: BaselineProfile,
    monitored: tuple[DriftReport, DriftSeries, PerformanceReport, list[Prediction]],
) -> None:
    drift, series, perf, _ = monitored
    alerts = evaluate_rules(
        AlertRules(), drift, perf, 0.95, T0 + 4 * DAY, T0 + 5 * DAY, "credit", "decide"
    )
    assert alerts
    page = monitoring_report_html(
        title="decide: monitoring",
        summary={"endpoint": "decide", "model": "scorecard v1"},
        profile=profile,
        drift=drift,
        series=series,
        performance=perf,
        alerts=alerts,
        baseline_auc=0.95,
        notes=["weekly review"],
    )
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert "script" not in parser.tags and "link" not in parser.tags
    images = [u for u in parser.urls if not u.startswith("#")]
    assert len(images) >= 5
    for uri in images:
        _png(uri)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"(https?:)?//[a-z0-9]", text, re.I)
    assert "url(" not in page and "@import" not in page
    for heading in ("Summary", "Notes", "Alerts", "Drift", "Baseline", "Performance"):
        assert f"<h2>{heading}</h2>" in page
    assert "income" in page and "approve bad rate" in page


def test_report_escapes_text(profile: BaselineProfile) -> None:
    alert = Alert(
        workspace="credit",
        endpoint="decide",
        rule="psi",
        subject="<script>alert(1)</script>",
        value=0.5,
        threshold=0.25,
        message="<b>bold</b> & more",
        window_start=T0,
        window_end=T0 + DAY,
    )
    page = monitoring_report_html(
        title="<title>", summary={"<k>": "<v>"}, alerts=[alert], notes=["<i>x</i>"]
    )
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold" in page
    assert "<title>&lt;title&gt;</title>" in page


def test_report_without_data_says_so() -> None:
    page = monitoring_report_html(title="empty")
    assert "No alerts." in page and "<h2>Drift</h2>" not in page
