"""Training and batch scoring on each compute backend: the same work, side by side.

Trains the Taiwan credit-card default model (or, without ../shared/data, the
generated applicants) through the platform with a fixed number of trials and
no time limit, so every backend does the same work, on ``local://`` (one
process), ``local://?workers=N`` (N processes) and ``ray://local?cpus=N`` (Ray
started here), then scores a dataset of ``--score-rows`` rows drawn from it
with the model (``platform.score``). Prints the training wall time, the search
time, the scoring time, the ratios to one process, the test AUC (which must be
equal) and whether the scores are the same file. Each backend runs in a fresh
interpreter. Never asserts.

Usage: python benchmarks/compute.py [--workers 2] [--trials 24] [--score-rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, peak_rss_mb, print_table, run_part

TAIWAN = DATA / "credit_default_taiwan" / "default_of_credit_card_clients.csv"


def part(uri: str, trials: int, score_rows: int) -> dict[str, object]:
    import hashlib

    import pandas as pd

    import leptonic
    from leptonic.evaluation.metrics import roc_auc
    from leptonic.synthetic import write_applicants_csv

    with tempfile.TemporaryDirectory() as home:
        settings = leptonic.Settings.from_environ(
            {"LEPTONIC_HOME": home, "LEPTONIC_USER": "bench", "LEPTONIC_COMPUTE": uri}
        )
        lp = leptonic.Platform.open(settings)
        lp.create_workspace("credit")
        if TAIWAN.exists():
            source, target, exclude = TAIWAN, "default_payment_next_month", ("ID",)
        else:
            source = write_applicants_csv(Path(home) / "applicants.csv", n=30_000)
            target, exclude = "default", ()
        lp.add_data("credit", source, name="data", target=target)
        spec = leptonic.TrainSpec(
            target=target,
            exclude=exclude,
            fractions=(0.5, 0.2, 0.3),
            split="holdout",
            seed=0,
            trials=trials,
            timeout_s=None,
        )
        started = time.perf_counter()
        lp.compute  # noqa: B018 - opened before the clock: Ray's start is not training
        opened_s = time.perf_counter() - started
        t = time.perf_counter()
        outcome = lp.train("credit", "data", spec, model_name="risk")
        train_s = time.perf_counter() - t
        rows = pd.read_csv(source).sample(score_rows, replace=True, random_state=0)
        rows.insert(0, "row_id", range(len(rows)))
        wide = Path(home) / "to-score.parquet"
        rows.to_parquet(wide, index=False)
        lp.add_data("credit", wide, name="to-score")
        t = time.perf_counter()
        scored, _ = lp.score("credit", "risk", 1, "to-score")
        score_s = time.perf_counter() - t
        scores = lp.preview("credit", scored.dataset, limit=score_rows, raw=True)
        digest = hashlib.sha256(scores.column("score").to_numpy().tobytes()).hexdigest()[:12]
        lp.close()
    res = outcome.result
    return {
        "data": "taiwan" if TAIWAN.exists() else "generated",
        "open_s": opened_s,
        "train_s": train_s,
        "search_s": res.timings["search_s"],
        "score_s": score_s,
        "scores": digest,
        "auc": roc_auc(res.y_test, res.test_scores),
        "chosen": res.chosen,
        "rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--score-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.part:
        print(json.dumps(part(args.part, args.trials, args.score_rows)))
        return
    script = Path(__file__).resolve()
    uris = ["local://", f"local://?workers={args.workers}", f"ray://local?cpus={args.workers}"]
    results = {}
    for uri in uris:
        try:
            results[uri] = run_part(
                script,
                "--part",
                uri,
                "--trials",
                str(args.trials),
                "--score-rows",
                str(args.score_rows),
            )
        except RuntimeError as exc:  # the ray extra absent, say
            print(f"{uri}: failed\n{str(exc)[-600:]}")
    if "local://" not in results:
        return
    one = results["local://"]
    rows = [
        [
            uri,
            f"{r['open_s']:.1f}",
            f"{r['train_s']:.1f}",
            f"{r['search_s']:.1f}",
            f"{one['search_s'] / r['search_s']:.2f}",
            f"{r['score_s']:.1f}",
            f"{one['score_s'] / r['score_s']:.2f}",
            r["auc"],
            r["chosen"],
            "yes" if r["scores"] == one["scores"] else "NO",
            round(r["rss_mb"]),
        ]
        for uri, r in results.items()
    ]
    print_table(
        f"Training ({one['data']} data, {args.trials} trials, no time limit) and scoring "
        f"{args.score_rows:,} rows on each backend (x = speed-up over local://; peak RSS "
        "of the driver process)",
        [
            "LEPTONIC_COMPUTE",
            "open s",
            "train s",
            "search s",
            "search x",
            "score s",
            "score x",
            "test AUC",
            "chose",
            "same scores",
            "RSS MiB",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
