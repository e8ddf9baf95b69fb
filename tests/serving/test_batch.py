"""Batch scoring on the compute backends: the same file as scoring here."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from leptonic.compute import open_executor
from leptonic.serving.batch import score_to_parquet
from serving.conftest import Deployed


@pytest.mark.parametrize("uri", ["local://?workers=2", "ray://local?cpus=2"])
def test_batches_scored_on_workers_give_the_same_file(
    deployed: Deployed, tmp_path: Path, uri: str, request: pytest.FixtureRequest
) -> None:
    lp = deployed.platform
    dv = lp.dataset_version("credit", "applicants")
    source = lp.artifacts.local_path(dv.artifact_key)
    shared = request.getfixturevalue("ray_executor") if uri.startswith("ray") else None
    for model in (deployed.logistic, deployed.lightgbm):
        predictor = lp.load_model("credit", *model)
        here = tmp_path / f"{model[0]}-here.parquet"
        rows = score_to_parquet(predictor, dv, source, here, batch_rows=400)
        ticks: list[tuple[int, int]] = []
        there = tmp_path / f"{model[0]}-there.parquet"
        with nullcontext(shared) if shared else open_executor(uri) as executor:
            assert not executor.runs_here
            scored = score_to_parquet(
                predictor,
                dv,
                source,
                there,
                batch_rows=400,  # 3000 rows: 8 batches, two waves of four
                executor=executor,
                progress=lambda done, total, ticks=ticks: ticks.append((done, total)),
            )
        assert scored == rows == dv.num_rows
        assert pq.read_table(there).equals(pq.read_table(here))
        expected = [(min(400 * i, rows), rows) for i in range(1, 9)]
        # each batch once as it is written; polls while a wave runs repeat the count so far
        assert set(expected) <= set(ticks) <= {*expected, (0, rows)}
        assert ticks == sorted(ticks)


def test_a_table_of_one_batch_is_scored_here(deployed: Deployed, tmp_path: Path) -> None:
    from leptonic.compute.local import LocalExecutor

    class Unused(LocalExecutor):
        def map(self, *args: object, **kwargs: object) -> list[object]:
            raise AssertionError("one batch went to the workers")

    lp = deployed.platform
    dv = lp.dataset_version("credit", "applicants")
    predictor = lp.load_model("credit", *deployed.logistic)
    source = lp.artifacts.local_path(dv.artifact_key)
    out = tmp_path / "one.parquet"
    with Unused(2) as executor:
        rows = score_to_parquet(predictor, dv, source, out, batch_rows=5000, executor=executor)
    assert rows == dv.num_rows == pq.read_metadata(out).num_rows


def test_a_cancel_stops_scoring_on_the_workers(deployed: Deployed, tmp_path: Path) -> None:
    from leptonic.errors import Cancelled

    lp = deployed.platform
    dv = lp.dataset_version("credit", "applicants")
    predictor = lp.load_model("credit", *deployed.lightgbm)
    source = lp.artifacts.local_path(dv.artifact_key)

    def cancel(done: int, total: int) -> None:
        raise Cancelled("the job was cancelled")

    with open_executor("local://?workers=2") as executor, pytest.raises(Cancelled):
        score_to_parquet(
            predictor,
            dv,
            source,
            tmp_path / "x.parquet",
            batch_rows=10,
            executor=executor,
            progress=cancel,
        )
