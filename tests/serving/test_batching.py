"""The micro-batcher: batches form under load, order is kept, overload and close are clean.

Synchronisation uses events, never sleeps: a gated fake model blocks its
first call until the test has queued what it needs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from leptonic.errors import InvalidInput
from leptonic.serving.batching import BatcherClosed, MicroBatcher, Overloaded
from support import minilm


class GatedModel:
    """Doubles numbers; its first call waits for ``gate``; it records batch sizes."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.sizes.append(len(items))
        self.entered.set()
        if not self.gate.wait(timeout=10):
            raise RuntimeError("test gate never opened")
        if any(i < 0 for i in items):
            raise ValueError("negative input")
        return [2 * i for i in items]


async def _blocked(batcher: MicroBatcher[int, int], model: GatedModel) -> asyncio.Task[int]:
    """Submit one item and wait until the model is busy with it."""
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.to_thread(model.entered.wait, 10)
    return first


def test_batches_form_while_the_model_is_busy() -> None:
    async def main() -> None:
        model = GatedModel()
        async with MicroBatcher(model, max_batch_size=4, max_wait_ms=0) as batcher:
            first = await _blocked(batcher, model)
            rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 10)]
            await asyncio.sleep(0)  # let the submissions reach the queue
            assert batcher.queued == 9
            model.gate.set()
            results = await asyncio.gather(first, *rest)
        assert results == [2 * i for i in range(10)]
        assert model.sizes == [1, 4, 4, 1]
        assert batcher.stats.items == 10 and batcher.stats.batches == 4
        assert batcher.stats.largest_batch == 4
        assert batcher.stats.mean_batch_size == pytest.approx(2.5)

    asyncio.run(main())


def test_a_lone_request_waits_at_most_max_wait() -> None:
    async def main() -> float:
        async with MicroBatcher(lambda xs: [x + 1 for x in xs], max_wait_ms=20) as batcher:
            t0 = time.perf_counter()
            assert await batcher.submit(41) == 42
            return time.perf_counter() - t0

    assert asyncio.run(main()) < 2.0


def test_batching_off_runs_one_item_per_call() -> None:
    sizes: list[int] = []

    def model(items: list[str]) -> list[str]:
        sizes.append(len(items))
        return [s.upper() for s in items]

    async def main() -> list[str]:
        async with MicroBatcher(model, max_batch_size=1) as batcher:
            return list(await asyncio.gather(*(batcher.submit(s) for s in "abc")))

    assert asyncio.run(main()) == ["A", "B", "C"]
    assert sizes == [1, 1, 1]


def test_full_queue_is_refused_with_overloaded() -> None:
    async def main() -> None:
        model = GatedModel()
        async with MicroBatcher(model, max_queue=2, max_wait_ms=0) as batcher:
            first = await _blocked(batcher, model)
            waiting = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
            await asyncio.sleep(0)
            with pytest.raises(Overloaded, match="retry"):
                await batcher.submit(3)
            model.gate.set()
            assert await asyncio.gather(first, *waiting) == [0, 2, 4]

    asyncio.run(main())


def test_one_bad_item_fails_only_its_own_request() -> None:
    async def main() -> None:
        model = GatedModel()
        model.gate.set()
        async with MicroBatcher(model, max_batch_size=8, max_wait_ms=50) as batcher:
            results = await asyncio.gather(
                *(batcher.submit(i) for i in (1, -1, 3)), return_exceptions=True
            )
        assert results[0] == 2 and results[2] == 6
        assert isinstance(results[1], ValueError)

    asyncio.run(main())


def test_wrong_number_of_results_is_an_error() -> None:
    async def main() -> None:
        async with MicroBatcher(lambda xs: xs[:-1], isolate_failures=False) as batcher:
            with pytest.raises(RuntimeError, match="results for"):
                await batcher.submit(1)

    asyncio.run(main())


@pytest.mark.parametrize("stop", [StopIteration, StopAsyncIteration])
def test_a_model_raising_stop_iteration_fails_the_batch_and_keeps_serving(
    stop: type[Exception],
) -> None:
    # StopIteration cannot be set on an asyncio future: unwrapped, the batch was
    # never answered and the worker (and close()) hung forever.
    def model(items: list[int]) -> list[int]:
        if -1 in items:
            raise stop
        return [2 * i for i in items]

    async def main() -> None:
        # the wait_for's only guard against a hang (the defect), they time nothing
        batcher = MicroBatcher(model, max_batch_size=4, max_wait_ms=50)
        await batcher.start()
        try:
            bad = await asyncio.wait_for(
                asyncio.gather(*(batcher.submit(i) for i in (1, -1)), return_exceptions=True),
                10,
            )
            assert bad[0] == 2  # isolated: the good item of the batch is answered
            assert isinstance(bad[1], RuntimeError)
            assert stop.__name__ in str(bad[1]) and "predict_batch" in str(bad[1])
            assert isinstance(bad[1].__cause__, stop)
            assert await asyncio.wait_for(batcher.submit(3), 10) == 6  # still serving
            await asyncio.wait_for(batcher.close(), 10)  # no timeout of its own: no hang
            assert batcher.stats.failed_batches == 2  # the pair, then -1 alone
        finally:
            await batcher.close(timeout=1)

    asyncio.run(main())


def test_close_answers_queued_items_then_refuses_new_ones() -> None:
    async def main() -> None:
        model = GatedModel()
        batcher: MicroBatcher[int, int] = MicroBatcher(model, max_batch_size=2, max_wait_ms=0)
        await batcher.start()
        first = await _blocked(batcher, model)
        queued = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2, 3)]
        await asyncio.sleep(0)
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0)
        with pytest.raises(BatcherClosed):
            await batcher.submit(9)
        model.gate.set()
        await closing
        assert await asyncio.gather(first, *queued) == [0, 2, 4, 6]
        assert not batcher.running
        await batcher.close()  # closing twice is fine

    asyncio.run(main())


def test_cancelled_requests_are_skipped() -> None:
    async def main() -> None:
        model = GatedModel()
        async with MicroBatcher(model, max_batch_size=8, max_wait_ms=0) as batcher:
            first = await _blocked(batcher, model)
            gone = asyncio.ensure_future(batcher.submit(5))
            kept = asyncio.ensure_future(batcher.submit(6))
            await asyncio.sleep(0)
            gone.cancel()
            model.gate.set()
            assert await asyncio.gather(first, kept) == [0, 12]
        assert model.sizes == [1, 1]

    asyncio.run(main())


def test_close_with_timeout_fails_the_batch_in_flight_and_the_queue() -> None:
    async def main() -> None:
        model = GatedModel()
        batcher: MicroBatcher[int, int] = MicroBatcher(model, max_batch_size=2, max_wait_ms=0)
        await batcher.start()
        first = await _blocked(batcher, model)
        queued = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0)
        t0 = time.perf_counter()
        await batcher.close(timeout=0.05)  # the model is stuck: close does not wait for it
        assert time.perf_counter() - t0 < 5
        for request in (first, queued):
            with pytest.raises(BatcherClosed, match="closed before answering"):
                await request
        model.gate.set()

    asyncio.run(main())


def test_a_dead_worker_fails_its_items_and_is_restarted() -> None:
    class Fatal(BaseException):
        pass

    calls: list[list[int]] = []

    def model(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            raise Fatal("the model took the worker down")
        return [i + 1 for i in items]

    async def main() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(model, max_wait_ms=0)
        await batcher.start()
        with pytest.raises(BatcherClosed, match="stopped before answering"):
            await batcher.submit(1)
        await asyncio.sleep(0)
        assert not batcher.running
        assert batcher.failed is not None and "Fatal" in batcher.failed
        with pytest.raises(BatcherClosed, match="not running"):
            await batcher.submit(2)
        await batcher.start()  # a new worker
        assert batcher.failed is None
        assert await batcher.submit(2) == 3
        await batcher.close()

    asyncio.run(main())


def test_submit_many_queues_all_or_nothing() -> None:
    async def main() -> None:
        model = GatedModel()
        async with MicroBatcher(model, max_batch_size=8, max_queue=3, max_wait_ms=0) as batcher:
            first = await _blocked(batcher, model)
            with pytest.raises(InvalidInput, match="at most 3"):
                await batcher.submit_many([1, 2, 3, 4])  # more than the queue ever holds
            one = asyncio.ensure_future(batcher.submit(1))
            await asyncio.sleep(0)
            with pytest.raises(Overloaded, match="retry"):
                await batcher.submit_many([2, 3, 4])  # room for two only: none is queued
            assert batcher.queued == 1
            many = asyncio.ensure_future(batcher.submit_many([2, 3]))
            await asyncio.sleep(0)
            model.gate.set()
            assert await asyncio.gather(first, one, many) == [0, 2, [4, 6]]

    asyncio.run(main())


def test_submit_many_withdraws_the_rest_when_one_fails() -> None:
    async def main() -> None:
        model = GatedModel()
        async with MicroBatcher(model, max_batch_size=1, max_wait_ms=0) as batcher:
            first = await _blocked(batcher, model)
            many = asyncio.ensure_future(batcher.submit_many([-1, 5, 6]))
            await asyncio.sleep(0)
            model.gate.set()
            assert await first == 0
            with pytest.raises(ValueError, match="negative"):
                await many
        # 0, -1, and 5 (taken by the worker before the failure reached the request);
        # 6 was withdrawn and never computed
        assert model.sizes == [1, 1, 1]

    asyncio.run(main())


def test_a_withdrawn_request_frees_its_place_in_the_queue() -> None:
    async def main() -> None:
        model = GatedModel()
        async with MicroBatcher(model, max_queue=2, max_wait_ms=0) as batcher:
            first = await _blocked(batcher, model)
            gone = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
            await asyncio.sleep(0)
            assert batcher.queued == 2
            for request in gone:
                request.cancel()
            await asyncio.sleep(0)
            assert batcher.queued == 0
            kept = asyncio.ensure_future(batcher.submit_many([3, 4]))  # room again
            await asyncio.sleep(0)
            model.gate.set()
            assert await asyncio.gather(first, kept) == [0, [6, 8]]
        assert sum(model.sizes) == 3  # the withdrawn items were never computed

    asyncio.run(main())


def test_submit_before_start_and_bad_settings() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda xs: xs)
    with pytest.raises(BatcherClosed, match="not running"):
        asyncio.run(batcher.submit(1))
    for kwargs in ({"max_batch_size": 0}, {"max_wait_ms": -1}, {"max_queue": 0}):
        with pytest.raises(InvalidInput):
            MicroBatcher(lambda xs: xs, **kwargs)  # type: ignore[arg-type]


def test_with_a_real_text_predictor() -> None:
    pytest.importorskip("torch", reason="the text model needs torch: pip install 'leptonic[text]'")
    pytest.importorskip("transformers", reason="pip install 'leptonic[text]'")
    import torch

    from leptonic.tasks.textcls import TextPredictor
    from leptonic.tasks.textcls._nets import LogitsOf

    torch.set_num_threads(1)
    model, tokenizer = minilm(num_labels=3)
    predictor = TextPredictor(
        flavor="transformer",
        classes=["negative", "neutral", "positive"],
        net=LogitsOf(model),
        tokenizer=tokenizer,
        max_length=32,
    )
    texts = [
        "Profit rose sharply this quarter.",
        "The company will publish its report on Monday.",
        "Sales fell and the outlook is weak.",
        "ok",
    ] * 3

    async def main() -> Sequence[dict[str, object]]:
        async with MicroBatcher(predictor.predict_answers, max_batch_size=8, max_wait_ms=20) as b:
            return await asyncio.gather(*(b.submit(t) for t in texts))

    answers = asyncio.run(main())
    expected = predictor.predict_batch(texts)
    got = np.array([[a["probabilities"][c] for c in predictor.classes] for a in answers])  # type: ignore[index]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [a["label"] for a in answers] == predictor.predict_labels(texts)
    assert len(answers[0]["top_k"]) == 3  # type: ignore[arg-type]
