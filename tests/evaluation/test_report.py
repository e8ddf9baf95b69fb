"""HTML reports: well formed, self-contained, escaped, for every task family."""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest

from leptonic.errors import InvalidInput
from leptonic.evaluation import binary_metrics, plots, render_report

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}


class _Checker(HTMLParser):
    """Collects tags and checks that every non-void element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    return checker


def _binary_data(n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 1)))
    return y, p


def _binary_report(title: str = "Credit risk — applicants v3", **extra: Any) -> str:
    y, p = _binary_data()
    return render_report(
        title=title,
        task="binary",
        summary={"dataset": "applicants@3", "target": "default", "rows": 3000, "model": "lr"},
        metrics={"valid": binary_metrics(y, p), "test": binary_metrics(y[::2], p[::2])},
        leaderboard=[
            {"candidate": "logistic", "auc": 0.81, "ks": 0.45},
            {"candidate": "lightgbm", "auc": 0.83, "ks": 0.48, "rounds": 120},
        ],
        y_true=y,
        y_score=p,
        tables={
            "Information value": [
                {"feature": "age", "iv": 0.31},
                {"feature": "income", "iv": 0.12},
            ],
            "Scorecard points": [{"feature": "age", "bin": "<25", "points": 41.2}],
        },
        notes=["Validated on an out-of-time sample."],
        **extra,
    )


def test_binary_report_is_well_formed_and_self_contained() -> None:
    page = _binary_report()
    checker = _parse(page)
    assert page.startswith("<!DOCTYPE html>")
    pngs = [img["src"] for img in checker.images]
    assert len(pngs) == 4
    for src in pngs:
        assert src is not None and src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert all(img["alt"] for img in checker.images)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page
    text = " ".join(checker.text)
    for heading in ("Summary", "Metrics", "Leaderboard", "Plots", "Information value"):
        assert heading in text
    assert "Scorecard points" in text and "rounds" in text and "out-of-time" in text


def test_report_stays_small_for_30k_rows() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 30_000)
    p = 1 / (1 + np.exp(-(rng.normal(size=30_000) + y)))
    page = render_report(
        title="big",
        task="binary",
        summary={},
        metrics={"test": binary_metrics(y, p)},
        leaderboard=[],
        y_true=y,
        y_score=p,
    )
    assert len(page.encode()) < 1_000_000


def test_text_is_escaped() -> None:
    evil = "<script>alert('x')</script>"
    page = _binary_report(title=evil)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    y, p = _binary_data(200)
    page = render_report(
        title="t",
        task="binary",
        summary={evil: evil},
        metrics={evil: {evil: 1.0}},
        leaderboard=[{evil: evil}],
        y_true=y,
        y_score=p,
        tables={evil: [{evil: evil}]},
        notes=[evil],
    )
    assert "<script" not in page
    _parse(page)


def test_multiclass_report() -> None:
    rng = np.random.default_rng(2)
    classes = ["billing", "cancel", "<other>"]
    idx = rng.integers(0, 3, 600)
    logits = rng.normal(size=(600, 3)) + 2 * np.eye(3)[idx]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array(classes)[idx]
    page = render_report(
        title="Intents",
        task="multiclass",
        summary={"model": "minilm"},
        metrics={"test": {"accuracy": 0.8, "per_class": {"a": {"f1": 1}}}},
        leaderboard=[],
        y_true=y,
        y_score=proba,
        classes=classes,
    )
    checker = _parse(page)
    assert len(checker.images) == 2
    assert "Per-class report" in page and "&lt;other&gt;" in page
    assert "per_class" not in page  # nested metric values stay out of the metrics table
    with pytest.raises(InvalidInput, match="classes"):
        render_report(
            title="t",
            task="multiclass",
            summary={},
            metrics={},
            leaderboard=[],
            y_true=y,
            y_score=proba,
        )


def test_regression_report() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(100, 20, 5000)
    pred = y + rng.normal(0, 5, 5000)
    page = render_report(
        title="Basket value",
        task="regression",
        summary={"target": "value"},
        metrics={"test": {"rmse": 5.01, "r2": 0.94, "mape": None}},
        leaderboard=[{"candidate": "lightgbm", "rmse": 5.01}],
        y_true=y,
        y_score=pred,
    )
    checker = _parse(page)
    assert len(checker.images) == 2
    assert "http" not in page


def test_non_probability_scores_skip_calibration_only() -> None:
    y, p = _binary_data(500)
    page = render_report(
        title="scores",
        task="binary",
        summary={},
        metrics={},
        leaderboard=[],
        y_true=y,
        y_score=400 + 200 * p,
    )
    assert len(_parse(page).images) == 3
    assert "not probabilities" in page


def test_unknown_task_lists_known_ones() -> None:
    y, p = _binary_data(100)
    with pytest.raises(InvalidInput, match="binary, "):
        render_report(
            title="t",
            task="ranking",
            summary={},
            metrics={},
            leaderboard=[],
            y_true=y,
            y_score=p,
        )


@pytest.mark.parametrize(
    "draw",
    [
        lambda y, p: plots.roc_plot(y, p),
        lambda y, p: plots.ks_plot(y, p),
        lambda y, p: plots.calibration_plot(y, p, strategy="uniform"),
        lambda y, p: plots.score_distribution_plot(y, p),
        lambda y, p: plots.regression_plot(p, p + 0.1),
        lambda y, p: plots.residual_plot(p, p + 0.1),
        lambda y, p: plots.confusion_plot([[5, 1], [2, 7]], ["no", "yes"]),
        lambda y, p: plots.class_f1_plot({"no": {"f1": 0.7}, "yes": {"f1": 0.8}}),
    ],
)
def test_plots_are_small_pngs(draw: Any) -> None:
    y, p = _binary_data(5000)
    png = draw(y, p)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) < 150_000
    assert plots.png_data_uri(png).startswith("data:image/png;base64,")


def test_a_binary_report_on_one_class_says_why_it_has_no_roc_plot() -> None:
    html = render_report(
        task="binary",
        y_true=np.array([0, 0, 0]),
        y_score=np.array([0.1, 0.2, 0.3]),
        title="tiny",
        summary={},
        metrics={},
        leaderboard=[],
    )
    assert "No ROC or KS plot: the labels hold one class only" in html
    assert "Score distribution by class" in html
