"""Credit scoring on real data: Leptonic against a plain scikit-learn pipeline.

German credit: 5-fold cross-validated AUC. Taiwan credit-card default:
stratified 70/30 test AUC and KS, and the whole Leptonic lifecycle (ingest →
profile → train with search → report) timed with its peak memory. Each part
runs in a fresh interpreter so that its peak RSS is its own. Prints tables;
never asserts.

Usage: python benchmarks/credit.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, peak_rss_mb, print_table, run_part

GERMAN = DATA / "german_credit" / "german_credit.csv"
TAIWAN = DATA / "credit_default_taiwan" / "default_of_credit_card_clients.csv"
SEED = 0
SEEDS = (0, 1, 2, 3, 4)


def _baseline_pipeline(categorical: list[str], numeric: list[str]):  # type: ignore[no-untyped-def]
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return make_pipeline(
        ColumnTransformer(
            [
                ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
                ("num", StandardScaler(), numeric),
            ]
        ),
        LogisticRegression(max_iter=5000),
    )


def _ks(y: np.ndarray, s: np.ndarray) -> float:
    from scipy.stats import ks_2samp

    return float(ks_2samp(s[y == 1], s[y == 0]).statistic)


def part_taiwan_leptonic() -> dict[str, float]:
    import leptonic
    from leptonic.evaluation.metrics import ks_statistic, roc_auc

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as home:
        lp = leptonic.Platform.open(leptonic.Settings.for_home(home, user="bench"))
        lp.create_workspace("credit")
        t = time.perf_counter()
        version, _ = lp.add_data(
            "credit", TAIWAN, name="taiwan", target="default_payment_next_month"
        )
        ingest_s = time.perf_counter() - t
        t = time.perf_counter()
        profile = lp.dataset_version("credit", "taiwan").quality
        profile_s = time.perf_counter() - t
        spec = leptonic.TrainSpec(
            target="default_payment_next_month",
            exclude=("ID",),
            fractions=(0.5, 0.2, 0.3),
            split="holdout",
            seed=SEED,
            trials=24,
            timeout_s=35.0,
        )
        t = time.perf_counter()
        outcome = lp.train("credit", "taiwan", spec, model_name="taiwan-default")
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        lp.write_report("credit", outcome.run.id, Path(home) / "report.html")
        report_s = time.perf_counter() - t
        lp.close()
    res = outcome.result
    return {
        "auc": roc_auc(res.y_test, res.test_scores),
        "ks": ks_statistic(res.y_test, res.test_scores)[0],
        "chosen": res.chosen,  # type: ignore[dict-item]
        "rows": version.num_rows,
        "issues": len(profile.get("issues", [])),
        "ingest_s": ingest_s,
        "profile_s": profile_s,
        "train_s": train_s,
        "report_s": report_s,
        "wall_s": time.perf_counter() - t0,
        "rss_mb": peak_rss_mb(),
    }


def part_taiwan_baseline() -> dict[str, float]:
    import pandas as pd
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    t0 = time.perf_counter()
    df = pd.read_csv(TAIWAN)
    y = df.pop("default_payment_next_month").to_numpy()
    df = df.drop(columns=["ID"])
    categorical = ["SEX", "EDUCATION", "MARRIAGE"]
    numeric = [c for c in df.columns if c not in categorical]
    tr, te = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=SEED)
    model = _baseline_pipeline(categorical, numeric).fit(df.iloc[tr], y[tr])
    score = model.predict_proba(df.iloc[te])[:, 1]
    return {
        "auc": float(roc_auc_score(y[te], score)),
        "ks": _ks(y[te], score),
        "wall_s": time.perf_counter() - t0,
        "rss_mb": peak_rss_mb(),
    }


def part_german() -> dict[str, float]:
    import pandas as pd
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    import leptonic
    from leptonic.tasks._data import load_training_data
    from leptonic.tasks.tabular import train_tabular

    df = pd.read_csv(GERMAN)
    y = df["default"].to_numpy()
    features = df.drop(columns=["class", "default"])
    categorical = [
        c
        for c in features.columns
        if features[c].dtype == object or str(features[c].dtype) in ("str", "string")
    ]
    numeric = [c for c in features.columns if c not in categorical]
    folds = list(StratifiedKFold(5, shuffle=True, random_state=SEED).split(features, y))
    base_aucs = []
    t = time.perf_counter()
    for tr, te in folds:
        model = _baseline_pipeline(categorical, numeric).fit(features.iloc[tr], y[tr])
        base_aucs.append(roc_auc_score(y[te], model.predict_proba(features.iloc[te])[:, 1]))
    base_s = time.perf_counter() - t

    lep_aucs = []
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as home:
        lp = leptonic.Platform.open(leptonic.Settings.for_home(home, user="bench"))
        lp.create_workspace("credit")
        version, _ = lp.add_data("credit", GERMAN, name="german", target="default")
        spec = leptonic.TrainSpec(
            target="default",
            exclude=("class",),
            seed=SEED,
            trials=24,
            timeout_s=None,  # a trial budget only: the result does not depend on machine load
            refit_all=True,
        )
        data = load_training_data(version, lp.artifacts, spec)
        for tr, te in folds:
            fold = type(data)(
                frame=data.frame.iloc[tr].reset_index(drop=True),
                y=data.y[tr],
                numeric=data.numeric,
                categorical=data.categorical,
                classes=data.classes,
                excluded=data.excluded,
                dropped_missing_target=0,
            )
            result = train_tabular(fold, spec, log=lambda _m: None)
            score = result.predictor.predict_batch(data.frame.iloc[te])
            lep_aucs.append(roc_auc_score(data.y[te], score))
        lp.close()
    lep_s = time.perf_counter() - t
    return {
        "leptonic_auc": float(np.mean(lep_aucs)),
        "leptonic_auc_sd": float(np.std(lep_aucs)),
        "baseline_auc": float(np.mean(base_aucs)),
        "baseline_auc_sd": float(np.std(base_aucs)),
        "leptonic_s": lep_s,
        "baseline_s": base_s,
        "rss_mb": peak_rss_mb(),
    }


def part_taiwan_seeds() -> dict[str, list[float]]:
    """Test AUC of Leptonic's training and of the baseline over several 70/30 splits."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    import leptonic
    from leptonic.evaluation.metrics import roc_auc
    from leptonic.tasks._data import load_training_data
    from leptonic.tasks.tabular import make_split, train_tabular

    df = pd.read_csv(TAIWAN)
    y_all = df.pop("default_payment_next_month").to_numpy()
    df = df.drop(columns=["ID"])
    categorical = ["SEX", "EDUCATION", "MARRIAGE"]
    numeric = [c for c in df.columns if c not in categorical]
    out: dict[str, list[float]] = {"seed": [], "leptonic": [], "baseline": []}
    with tempfile.TemporaryDirectory() as home:
        lp = leptonic.Platform.open(leptonic.Settings.for_home(home, user="bench"))
        lp.create_workspace("credit")
        version, _ = lp.add_data(
            "credit", TAIWAN, name="taiwan", target="default_payment_next_month"
        )
        for seed in SEEDS:
            spec = leptonic.TrainSpec(
                target="default_payment_next_month",
                exclude=("ID",),
                fractions=(0.5, 0.2, 0.3),
                split="holdout",
                seed=seed,
                trials=24,
                timeout_s=35.0,
            )
            data = load_training_data(version, lp.artifacts, spec)
            result = train_tabular(data, spec, log=lambda _m: None)
            split = make_split(data.y, spec)
            tr, te = split.pool, split.test
            base = _baseline_pipeline(categorical, numeric).fit(df.iloc[tr], y_all[tr])
            out["seed"].append(seed)
            out["leptonic"].append(roc_auc(result.y_test, result.test_scores))
            out["baseline"].append(
                float(roc_auc_score(y_all[te], base.predict_proba(df.iloc[te])[:, 1]))
            )
        lp.close()
    return out


PARTS = {
    "taiwan-leptonic": part_taiwan_leptonic,
    "taiwan-baseline": part_taiwan_baseline,
    "german": part_german,
    "taiwan-seeds": part_taiwan_seeds,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=sorted(PARTS))
    args = parser.parse_args()
    if args.part:
        print(json.dumps(PARTS[args.part]()))
        return
    if not GERMAN.exists() or not TAIWAN.exists():
        print(f"skipped: the credit datasets are not in {DATA} (see ../shared/data/README.md)")
        return
    script = Path(__file__).resolve()
    german = run_part(script, "--part", "german")
    print_table(
        "German credit (1,000 rows): 5-fold cross-validated AUC, same folds",
        ["pipeline", "AUC mean", "AUC sd", "seconds", "target"],
        [
            [
                "leptonic (search over LR/WoE, LightGBM, MLP)",
                german["leptonic_auc"],
                german["leptonic_auc_sd"],
                round(german["leptonic_s"], 1),
                ">= 0.79",
            ],
            [
                "sklearn one-hot + scaler + LR",
                german["baseline_auc"],
                german["baseline_auc_sd"],
                round(german["baseline_s"], 1),
                "",
            ],
            [
                "ratio leptonic / sklearn",
                german["leptonic_auc"] / german["baseline_auc"],
                "",
                "",
                "",
            ],
        ],
    )
    lep = run_part(script, "--part", "taiwan-leptonic")
    base = run_part(script, "--part", "taiwan-baseline")
    print_table(
        "Taiwan credit-card default (30,000 rows): stratified 70/30, same test rows",
        ["pipeline", "test AUC", "test KS", "wall s", "peak RSS MiB"],
        [
            [
                f"leptonic lifecycle (chose {lep['chosen']})",
                lep["auc"],
                lep["ks"],
                round(lep["wall_s"], 1),
                round(lep["rss_mb"]),
            ],
            [
                "sklearn one-hot + scaler + LR",
                base["auc"],
                base["ks"],
                round(base["wall_s"], 1),
                round(base["rss_mb"]),
            ],
            [
                "ratio leptonic / sklearn",
                lep["auc"] / base["auc"],
                lep["ks"] / base["ks"],
                round(lep["wall_s"] / base["wall_s"], 1),
                round(lep["rss_mb"] / base["rss_mb"], 2),
            ],
        ],
    )
    seeds = run_part(script, "--part", "taiwan-seeds")
    rows: list[list[object]] = [
        [seed, lep_auc, base_auc, lep_auc / base_auc]
        for seed, lep_auc, base_auc in zip(
            seeds["seed"], seeds["leptonic"], seeds["baseline"], strict=True
        )
    ]
    mean_l, mean_b = float(np.mean(seeds["leptonic"])), float(np.mean(seeds["baseline"]))
    rows.append(["mean", mean_l, mean_b, mean_l / mean_b])
    print_table(
        "Taiwan test AUC over five stratified 70/30 splits (split seed = training seed)",
        ["seed", "leptonic", "sklearn LR", "ratio"],
        rows,
    )
    print_table(
        "Taiwan lifecycle stages (targets: AUC >= 0.785, wall <= 60 s, peak RSS <= 2048 MiB)",
        ["stage", "seconds"],
        [
            ["ingest (stream to Parquet, schema, PII scan, quality)", round(lep["ingest_s"], 2)],
            ["profile (read the quality report)", round(lep["profile_s"], 3)],
            ["train with search + register", round(lep["train_s"], 2)],
            ["report (write HTML)", round(lep["report_s"], 3)],
            ["whole lifecycle in the process", round(lep["wall_s"], 2)],
            ["the process, interpreter start and imports included", round(lep["process_s"], 2)],
        ],
    )


if __name__ == "__main__":
    main()
