"""Batch scoring: a model version over a dataset version, streamed batch by batch.

The dataset's Parquet snapshot is read in record batches, each batch is
scored with the model's :meth:`predict_batch`, and the scores are written to
a new Parquet file next to the rows' identifiers, so memory stays bounded by
the batch size whatever the table's length. Personal data is never copied
into the output: only identifier and timestamp columns travel with the scores.

With an executor that runs elsewhere (``LEPTONIC_COMPUTE``: worker processes
or Ray), a table of more than one batch is scored on its workers, a wave of
two batches per worker at a time (at most :data:`WAVE_ROWS` rows): each
batch's input columns go to a worker with the model and its scores come back,
and the batches are written in their order, so the file is the same and memory
stays bounded by the wave. A cancel is seen within a second, also mid-wave.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from leptonic.compute.base import Executor
from leptonic.core.dataset import ColumnRole, DatasetVersion
from leptonic.errors import DataError, SchemaError
from leptonic.tasks.predictor import Predictor

__all__ = ["BATCH_ROWS", "WAVE_ROWS", "score_columns", "score_to_parquet"]

#: Rows scored at a time.
BATCH_ROWS = 50_000

#: Most rows held at once when batches are scored on an executor's workers.
WAVE_ROWS = 400_000


def score_columns(predictor: Predictor, scores: np.ndarray) -> dict[str, pa.Array]:
    """The output columns for one batch of predictions.

    Binary: ``score`` (P(event)) and ``decision`` (1 at or above the model's
    threshold); multiclass: ``prediction`` (the most likely label) and one
    ``proba_<label>`` column per class; regression: ``prediction``.
    """
    if predictor.task == "binary":
        out = {"score": pa.array(scores, pa.float64())}
        if predictor.threshold is not None:
            out["decision"] = pa.array((scores >= predictor.threshold).astype(np.int8))
        return out
    if predictor.task == "multiclass":
        labels = [str(c) for c in (predictor.classes or range(scores.shape[1]))]
        out = {"prediction": pa.array(np.asarray(labels, dtype=object)[scores.argmax(axis=1)])}
        for i, label in enumerate(labels):
            out[f"proba_{label}"] = pa.array(scores[:, i], pa.float64())
        return out
    return {"prediction": pa.array(scores, pa.float64())}


def score_to_parquet(
    predictor: Predictor,
    version: DatasetVersion,
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
    decide: Callable[[pa.Table, np.ndarray], dict[str, pa.Array]] | None = None,
    executor: Executor | None = None,
) -> int:
    """Score every row of ``version`` (its Parquet at ``source``) into ``out``.

    ``decide`` adds (or replaces) columns from each batch's rows and scores:
    an endpoint's policy decisions and reason codes. Returns the number of
    rows scored. Raises :class:`SchemaError` naming the columns the model
    needs that the dataset lacks. ``executor`` scores the batches on its
    workers when it runs elsewhere.
    """
    names = {c.name for c in version.columns}
    missing = [n for n in predictor.input_names if n not in names]
    if missing:
        raise SchemaError(
            f"dataset {version.dataset!r} v{version.version} lacks column(s) "
            f"{', '.join(missing)} that the model needs; score a dataset with the "
            f"model's inputs: {', '.join(predictor.input_names)}",
            field="dataset",
        )
    keep = [
        c.name
        for c in version.columns
        if c.role in (ColumnRole.ID, ColumnRole.TIMESTAMP) and not c.pii
    ]
    produced = {"score", "decision", "prediction", "reasons", "policy_version"} | {
        f"proba_{c}" for c in (predictor.classes or []) if predictor.task == "multiclass"
    }
    clash = [name for name in keep if name in produced]
    if clash:
        raise SchemaError(
            f"dataset {version.dataset!r} v{version.version} has id/timestamp column(s) "
            f"{', '.join(clash)} named like the score columns; rename them before scoring",
            field="dataset",
        )
    wanted = set(predictor.input_names) | set(keep)
    reading = [c.name for c in version.columns if c.name in wanted]
    parquet = pq.ParquetFile(source)
    total = parquet.metadata.num_rows
    done = 0
    writer: pq.ParquetWriter | None = None
    batches = (
        pa.Table.from_batches([b])
        for b in parquet.iter_batches(batch_size=batch_rows, columns=reading)
    )

    def check() -> None:  # a cancel while a wave is on the workers
        if progress is not None:
            progress(done, total)

    elsewhere = executor if executor is not None and total > batch_rows else None
    try:
        for table, scores in _scored(predictor, batches, elsewhere, batch_rows, check):
            columns = {name: table.column(name) for name in keep}
            columns.update(score_columns(predictor, np.asarray(scores)))
            if decide is not None:
                columns.update(decide(table, np.asarray(scores)))
            chunk = pa.table(columns)
            if writer is None:
                writer = pq.ParquetWriter(out, chunk.schema, compression="zstd")
            writer.write_table(chunk)
            done += table.num_rows
            if progress is not None:
                progress(done, total)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise DataError(
            f"dataset {version.dataset!r} v{version.version} has no rows to score", field="dataset"
        )
    return done


def _predict(predictor: Predictor, table: pa.Table) -> np.ndarray:
    """One batch's scores (what a worker runs)."""
    return np.asarray(predictor.predict_batch(table))


def _scored(
    predictor: Predictor,
    batches: Iterator[pa.Table],
    executor: Executor | None,
    batch_rows: int,
    poll: Callable[[], None],
) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """Each batch with its scores, in order: here, or a wave at a time on ``executor``."""
    if executor is None or executor.runs_here:
        for table in batches:
            yield table, np.asarray(predictor.predict_batch(table))
        return
    inputs = predictor.input_names
    wave = max(1, min(2 * executor.workers, WAVE_ROWS // max(1, batch_rows)))
    while True:
        tables = [t for _, t in zip(range(wave), batches, strict=False)]
        if not tables:
            return
        scores = executor.map(_predict, predictor, [t.select(inputs) for t in tables], poll=poll)
        yield from zip(tables, scores, strict=True)
