"""Serving: batch scoring today; the real-time decision endpoints build on it."""

from __future__ import annotations

from leptonic.serving.batch import score_columns, score_to_parquet

__all__ = ["score_columns", "score_to_parquet"]
