"""The decision hot path: µs per record for predict_one, the policy and reason codes.

Trains a weight-of-evidence logistic scorecard and a LightGBM model on
generated applicants through the platform (ingest → train → register), loads
them back from the registry as an endpoint does, and times, one held-out
record at a time:

- the parts of ``predict_one``: behaviour aggregates, encoding, the model
  (LightGBM: the fast single-row C API against ``Booster.predict``);
- ``DecisionPolicy.decide`` (the default approve / review / reject bands and
  two rules);
- ``Explainer.reasons`` with k = 4 (LightGBM: TreeSHAP and path attributions);
- a whole decision without HTTP: predict + policy + reasons for the adverse
  decisions only, and the decisions per second that leaves.

Each flavor is trained twice, with and without behaviour aggregates (the
``utilization_m__mean`` ... columns), because those dominate the record path.
Also compares the FastPredictor's thread-local FastConfigs with one shared
behind a lock. Medians of 5 passes; prints tables, never asserts.

Usage: python benchmarks/decisions.py [--rows 20000] [--records 2000] [--trials 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, print_table

RULES = [
    {"field": "age", "op": "<", "value": 18, "decision": "reject", "reason": "under 18"},
    {
        "field": "employment_type",
        "op": "in",
        "value": ["unknown"],
        "decision": "review",
        "reason": "employment to be checked",
    },
]


def per_record_us(fn: Callable[[Any], Any], items: Sequence[Any], repeats: int = 5) -> float:
    """Median over ``repeats`` passes of the µs per call of ``fn`` over ``items``."""
    for item in items[:50]:
        fn(item)
    passes = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for item in items:
            fn(item)
        passes.append((time.perf_counter_ns() - t0) / len(items) / 1000.0)
    return statistics.median(passes)


def train(rows: int, trials: int, home: Path) -> dict[str, Any]:
    """Train and register the four models; return them loaded from the registry."""
    import leptonic
    from leptonic.synthetic import write_applicants_csv

    csv = write_applicants_csv(home / "applicants.csv", n=rows, seed=7)
    lp = leptonic.Platform.open(leptonic.Settings.for_home(home / "lp", user="bench"))
    lp.create_workspace("credit")
    lp.add_data("credit", csv, name="applicants", target="default")
    models: dict[str, Any] = {}
    for flavor in ("logistic", "lightgbm"):
        for aggregates in (True, False):
            name = f"{flavor}{'' if aggregates else '-plain'}"
            spec = leptonic.TrainSpec(
                target="default",
                candidates=(flavor,),
                trials=trials,
                timeout_s=None,
                behaviour_aggregates=aggregates,
                exclude=("applicant_id",),
            )
            t0 = time.perf_counter()
            outcome = lp.train("credit", "applicants", spec, model_name=name)
            mv = outcome.model_version
            models[name] = {
                "predictor": lp.load_model("credit", mv.model, mv.version),
                "train_s": time.perf_counter() - t0,
                "auc": outcome.result.test_metrics.get("auc"),
            }
    lp.close()
    return models


def measure(name: str, predictor: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
    from leptonic.serving.policy import DecisionPolicy, default_policy
    from leptonic.serving.reasons import Explainer

    spec = default_policy(predictor.threshold if predictor.threshold is not None else 0.5)
    policy = DecisionPolicy.from_spec({**spec, "rules": RULES})
    augmented = [predictor.with_aggregates(r) for r in records]
    encoded = [predictor.encode_one(r, aggregated=True) for r in augmented]
    scores = [float(predictor.predict_one(r)) for r in records]
    pairs = list(zip(records, scores, strict=True))
    decisions = [policy.decide(r, p) for r, p in pairs]
    adverse = float(np.mean([d.adverse and d.rule is None for d in decisions]))
    out: dict[str, Any] = {"name": name, "adverse": adverse}
    out["aggregates"] = (
        per_record_us(predictor.with_aggregates, records) if predictor.behaviour else 0.0
    )
    out["encode"] = per_record_us(predictor.preprocessor.transform_record, augmented)
    out["predict_one"] = per_record_us(predictor.predict_one, records)
    out["policy"] = per_record_us(lambda rp: policy.decide(*rp), pairs)
    methods = ["shap", "path"] if predictor.flavor == "lightgbm" else ["shap"]
    for method in methods:
        explainer = Explainer(predictor, tree_method=method)
        key = "reasons" if method == "shap" else "reasons_path"
        out[key] = per_record_us(lambda r, e=explainer: e.reasons(r, policy.reasons), records)

        def decide(r: dict[str, Any], e: Explainer = explainer) -> Any:
            p = float(predictor.predict_one(r))
            d = policy.decide(r, p)
            return e.reasons(r, policy.reasons) if d.adverse and d.rule is None else None

        out["decision" if method == "shap" else "decision_path"] = per_record_us(decide, records)
    if predictor.flavor == "lightgbm":
        booster = predictor.estimator
        best = getattr(booster, "best_iteration", 0) or None
        out["model_fast"] = per_record_us(predictor._fast.predict_value, encoded)
        out["model_booster"] = per_record_us(
            lambda x: booster.predict(x[None, :], num_iteration=best)[0], encoded[:300]
        )
        shap = Explainer(predictor)
        path = Explainer(predictor, tree_method="path")
        top1 = top4 = 0.0
        for r in records[:500]:
            a = [x["feature"] for x in shap.reasons(r, 4)]
            b = [x["feature"] for x in path.reasons(r, 4)]
            top1 += bool(a and b and a[0] == b[0])
            top4 += len(set(a) & set(b)) / max(len(a), 1)
        out["agree_top1"] = top1 / 500
        out["agree_top4"] = top4 / 500
        out["trees"] = booster.num_trees()
    return out


def thread_modes(predictor: Any, records: list[dict[str, Any]]) -> list[list[Any]]:
    """FastPredictor: thread-local FastConfigs against one shared behind a lock."""
    from leptonic.tasks._lgbm_fast import FastPredictor

    encoded = [predictor.encode_one(r) for r in records]
    rows = []
    n_threads, passes = 2, 3
    for per_thread in (True, False):
        fast = FastPredictor(predictor.estimator, per_thread=per_thread)
        one = per_record_us(fast.predict_value, encoded)

        def work(fast: FastPredictor = fast) -> None:
            for _ in range(passes):
                for x in encoded:
                    fast.predict_value(x)

        threads = [threading.Thread(target=work) for _ in range(n_threads)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rate = n_threads * passes * len(encoded) / (time.perf_counter() - t0)
        rows.append(["thread-local" if per_thread else "shared + lock", one, round(rate)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="training rows")
    parser.add_argument("--records", type=int, default=2_000, help="held-out records timed")
    parser.add_argument("--trials", type=int, default=1, help="search trials per model")
    args = parser.parse_args()

    from leptonic.synthetic import applicants

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        models = train(args.rows, args.trials, Path(tmp))
    train_s = time.perf_counter() - t0
    records = applicants(args.records, seed=99).to_pylist()
    results = [measure(name, m["predictor"], records) for name, m in models.items()]

    print_table(
        "Models (trained through the platform, loaded from the registry)",
        ["model", "test AUC", "train s", "encoded cols", "trees"],
        [
            [
                name,
                f"{m['auc']:.4f}",
                f"{m['train_s']:.1f}",
                m["predictor"].preprocessor.n_features_out_,
                next((r.get("trees", "") for r in results if r["name"] == name), ""),
            ]
            for name, m in models.items()
        ],
    )
    print_table(
        "µs per record (median of 5 passes; one thread)",
        [
            "model",
            "aggregates",
            "encode",
            "predict_one",
            "policy",
            "reasons k=4",
            "adverse share",
            "decision",
            "decisions/s",
        ],
        [
            [
                r["name"],
                f"{r['aggregates']:.1f}",
                f"{r['encode']:.1f}",
                f"{r['predict_one']:.1f}",
                f"{r['policy']:.2f}",
                f"{r['reasons']:.1f}",
                f"{r['adverse']:.3f}",
                f"{r['decision']:.1f}",
                round(1e6 / r["decision"]),
            ]
            for r in results
        ],
    )
    trees = [r for r in results if "model_fast" in r]
    print_table(
        "LightGBM: model call on an encoded row, and path attributions against TreeSHAP",
        [
            "model",
            "fast C API µs",
            "Booster.predict µs",
            "speed-up",
            "reasons path µs",
            "decision path µs",
            "decisions/s (path)",
            "top-1 agree",
            "top-4 overlap",
        ],
        [
            [
                r["name"],
                f"{r['model_fast']:.1f}",
                f"{r['model_booster']:.1f}",
                f"{r['model_booster'] / r['model_fast']:.1f}",
                f"{r['reasons_path']:.1f}",
                f"{r['decision_path']:.1f}",
                round(1e6 / r["decision_path"]),
                f"{r['agree_top1']:.3f}",
                f"{r['agree_top4']:.3f}",
            ]
            for r in trees
        ],
    )
    print_table(
        "FastPredictor thread safety: µs per call (one thread), rows/s with 2 threads",
        ["mode", "µs per call", "rows/s, 2 threads"],
        [
            [m, f"{us:.2f}", rate]
            for m, us, rate in thread_modes(models["lightgbm"]["predictor"], records)
        ],
    )
    print(
        f"\ntraining {train_s:.1f}s, wall {time.perf_counter() - t0:.1f}s, peak RSS {peak_rss_mb():.0f} MiB"
    )


if __name__ == "__main__":
    main()
