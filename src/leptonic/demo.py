"""``make demo``: the credit-scoring lifecycle on generated data, end to end.

Generates a realistic applicant table, then: workspace → governed dataset
(schema, quality report, PII masking) → training with hyperparameter search
→ evaluation report → registry (staging, production) → scoring one applicant
from the registered model.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from leptonic.cli._render import kv_table, progress_bar, table
from leptonic.config import Settings
from leptonic.errors import AlreadyExists
from leptonic.platform import Platform
from leptonic.synthetic import write_applicants_csv
from leptonic.tasks.spec import TrainSpec

__all__ = ["run_demo"]

CONTRACT = """\
# Column roles the team declares; everything else is inferred.
target = "default"

[roles]
applicant_id = "id"
"""


def run_demo(
    home: Path, *, rows: int = 20_000, seed: int = 7, console: Console
) -> dict[str, object]:
    """Run the demo lifecycle under ``home``; return the summary it prints."""
    started = time.perf_counter()
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings.for_home(home, user="demo")
    data_dir = home.parent / "data"
    csv_path = write_applicants_csv(data_dir / "applicants.csv", n=rows, seed=seed)
    contract_path = data_dir / "applicants.contract.toml"
    contract_path.write_text(CONTRACT, encoding="utf-8")
    console.rule("[bold]Leptonic demo: credit scoring")
    console.print(f"generated {rows} applicants → {csv_path}")

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
        applicant = lp.preview("credit-risk", "applicants", limit=1, raw=True).to_pylist()[0]
        probability = predictor.predict_one(applicant)
        if not isinstance(probability, float):  # pragma: no cover - binary model
            raise RuntimeError("the demo model is not binary")
        threshold = predictor.threshold or 0.5
        decision = (
            "reject"
            if probability >= threshold
            else ("review" if probability >= 0.6 * threshold else "approve")
        )
        report = lp.write_report("credit-risk", outcome.run.id, home.parent / "report.html")
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
        "one applicant": f"P(default)={probability:.3f} → {decision}",
        "report": str(report),
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
    console.print(f"open the report: [bold]{report}[/bold]")
    return summary
