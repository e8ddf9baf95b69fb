"""Benchmark: ingesting a 1,000,000 x 20 CSV into a governed dataset version.

Generates a CSV with numerics, categoricals, a date, an e-mail, a phone and a
card-number column (with some missing values), then measures, each in a fresh
process so that peak RSS is the stage's own:

* Leptonic: ``ingest`` end to end (stream to Parquet, hash, PII scan, schema,
  quality report, artifact + metadata writes), followed by a separate
  ``quality_report``, ``detect_pii`` and ``infer_schema`` on the stored snapshot;
* baseline: ``pandas.read_csv`` + ``DataFrame.to_parquet`` + ``DataFrame.describe``.

It prints a table of wall seconds and peak RSS with the Leptonic/baseline
ratio. It never asserts. Target: Leptonic ingest <= 15 s and <= 2 GB peak RSS
on a 2-core machine.

Usage: ``python benchmarks/ingest.py [--rows N] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

TARGET_SECONDS = 15.0
TARGET_RSS_MB = 2048.0


def _card_numbers(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` Luhn-valid 16-digit card numbers formatted ``dddd dddd dddd dddd``."""
    digits = rng.integers(0, 10, size=(n, 16), dtype=np.int64)
    digits[:, 0] = 4
    payload = digits[:, :15]
    doubled = payload.copy()
    # positions counted from the right of the full number: the payload's even indices double
    doubled[:, 0::2] *= 2
    doubled[doubled > 9] -= 9
    digits[:, 15] = (10 - doubled.sum(axis=1) % 10) % 10
    chars = np.full((n, 19), ord(" "), dtype=np.uint8)
    for group in range(4):
        chars[:, group * 5 : group * 5 + 4] = digits[:, group * 4 : group * 4 + 4] + ord("0")
    return pa.array(chars.view("S19").ravel()).cast(pa.string())


def _with_missing(rng: np.random.Generator, values: Any, rate: float) -> pa.Array:
    mask = rng.random(len(values)) < rate
    return pa.array(values, mask=mask)


def generate_csv(path: Path, rows: int, seed: int = 7) -> None:
    """Write a ``rows`` x 20 CSV of realistic-looking customer data to ``path``."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, rows + 1, dtype=np.int64)
    id_text = pc.cast(pa.array(ids), pa.string())
    regions = np.array(["north", "south", "east", "west", "centre", "coast", "alps", "lakes"])
    products = np.array(["card", "loan", "mortgage", "savings", "overdraft"])
    channels = np.array(["web", "branch", "phone", "partner"])
    domains = pa.array(rng.choice(["example.com", "mail.test", "corp.example"], rows))
    phone_mid = pc.utf8_lpad(pc.cast(pa.array(rng.integers(0, 1000, rows)), pa.string()), 3, "0")
    phone_end = pc.utf8_lpad(pc.cast(pa.array(rng.integers(0, 10**6, rows)), pa.string()), 6, "0")
    income = rng.lognormal(10.5, 0.6, rows).round(2)
    start = np.datetime64("2015-01-01")
    table = pa.table(
        {
            "customer_id": ids,
            "age": _with_missing(rng, rng.integers(18, 90, rows), 0.02),
            "income": _with_missing(rng, income, 0.03),
            "balance": rng.normal(2500, 1800, rows).round(2),
            "credit_limit": rng.choice([500, 1000, 2500, 5000, 10000], rows).astype(np.float64),
            "utilisation": rng.beta(2, 5, rows).round(4),
            "num_accounts": rng.integers(0, 10, rows),
            "tenure_months": rng.integers(0, 360, rows),
            "score": rng.normal(600, 80, rows).round(1),
            "late_payments": rng.poisson(0.4, rows),
            "region": pa.array(rng.choice(regions, rows)),
            "product": pa.array(rng.choice(products, rows)),
            "channel": _with_missing(rng, rng.choice(channels, rows), 0.01),
            "segment": pa.array(rng.choice(["retail", "premium", "business"], rows)),
            "is_active": rng.random(rows) < 0.8,
            "signup_date": pa.array(start + rng.integers(0, 3650, rows).astype("timedelta64[D]")),
            "email": pc.binary_join_element_wise("user", id_text, "@", domains, ""),
            "phone": pc.binary_join_element_wise("+44 7", phone_mid, " ", phone_end, ""),
            "card_number": _card_numbers(rng, rows),
            "default": (rng.random(rows) < 0.08).astype(np.int64),
        }
    )
    pa_csv.write_csv(table, path)


def _peak_rss_mb() -> float:
    """Peak RSS of this process and of its waited-for children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def _leptonic(csv_path: Path, work: Path) -> list[dict[str, Any]]:
    """Run in a fresh process: ingest, then profile and PII-scan the snapshot."""
    from leptonic.core.workspace import Workspace
    from leptonic.governance.ingest import ingest
    from leptonic.governance.pii import detect_pii
    from leptonic.governance.quality import quality_report
    from leptonic.governance.schema import infer_schema
    from leptonic.storage.artifacts.local import LocalArtifactStore

    try:
        from leptonic.storage import open_metadata_store

        metadata = open_metadata_store(f"sqlite:///{work / 'leptonic.db'}")
        store_name = "sqlite"
    except Exception as exc:  # the SQL store may not exist yet
        from leptonic.storage.metadata.memory import MemoryMetadataStore

        metadata = MemoryMetadataStore()
        store_name = f"memory (sqlite unavailable: {type(exc).__name__}: {exc})"
    artifacts = LocalArtifactStore(work / "artifacts")
    metadata.create_workspace(Workspace("bench"))
    stages: list[dict[str, Any]] = []

    def timed(name: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        out = fn()
        stages.append(
            {"stage": name, "seconds": time.perf_counter() - t0, "rss_mb": _peak_rss_mb()}
        )
        return out

    version, _ = timed(
        "leptonic: ingest (all steps)",
        lambda: ingest(
            csv_path,
            metadata=metadata,
            artifacts=artifacts,
            workspace="bench",
            dataset="customers",
            actor="bench",
            target="default",
        ),
    )
    parquet = artifacts.local_path(version.artifact_key)
    timed(
        "leptonic: quality_report",
        lambda: quality_report(parquet, version.columns, target="default"),
    )
    pii = timed("leptonic: detect_pii", lambda: detect_pii(parquet))
    timed(
        "leptonic: infer_schema",
        lambda: infer_schema(parquet, pii=pii, contract=None, target="default"),
    )
    stages.append({"stage": "metadata store", "note": store_name, "pii": pii})
    return stages


def _baseline(csv_path: Path, work: Path) -> list[dict[str, Any]]:
    """Run in a fresh process: pandas read_csv + to_parquet + describe."""
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_csv(csv_path)
    df.to_parquet(work / "pandas.parquet")
    df.describe(include="all")
    return [
        {
            "stage": "pandas: read_csv + to_parquet + describe",
            "seconds": time.perf_counter() - t0,
            "rss_mb": _peak_rss_mb(),
        }
    ]


def _in_subprocess(which: str, csv_path: Path, work: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, __file__, "--_child", which, str(csv_path), str(work)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: list[dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="write files here and keep them")
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        which, csv_path, work = args._child
        fn = _leptonic if which == "leptonic" else _baseline
        print(json.dumps(fn(Path(csv_path), Path(work)), default=str))
        return

    with tempfile.TemporaryDirectory(prefix="leptonic-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        csv_path = work / "customers.csv"
        t0 = time.perf_counter()
        generate_csv(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 2**20
        print(
            f"generated {args.rows:,} rows x 20 columns, {size_mb:.0f} MiB CSV "
            f"in {time.perf_counter() - t0:.1f} s; cpus={os.cpu_count()}"
        )
        ours = _in_subprocess("leptonic", csv_path, work)
        base = _in_subprocess("baseline", csv_path, work)

    note = next(s for s in ours if s["stage"] == "metadata store")
    rows = [s for s in ours if "seconds" in s] + base
    ingest_row, base_row = rows[0], base[0]
    width = max(len(r["stage"]) for r in rows)
    print(f"metadata store: {note['note']}")
    print(f"PII found: {note['pii']}")
    print(f"{'stage':<{width}}  {'seconds':>8}  {'peak RSS MiB':>12}")
    for r in rows:
        print(f"{r['stage']:<{width}}  {r['seconds']:>8.2f}  {r['rss_mb']:>12.0f}")
    print(
        f"ratio ingest / pandas baseline: time {ingest_row['seconds'] / base_row['seconds']:.2f}x, "
        f"peak RSS {ingest_row['rss_mb'] / base_row['rss_mb']:.2f}x"
    )
    print(
        f"target: ingest <= {TARGET_SECONDS:.0f} s and <= {TARGET_RSS_MB:.0f} MiB -> "
        f"{ingest_row['seconds']:.1f} s, {ingest_row['rss_mb']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
