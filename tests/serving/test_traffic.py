"""Traffic splits: sticky by entity, proportional, stable when a canary grows."""

from __future__ import annotations

import pytest

from leptonic.serving.traffic import BUCKETS, TrafficSplit, bucket_of


def test_one_target_takes_everything() -> None:
    split = TrafficSplit(["v1"], [100])
    assert {split.pick(i) for i in range(100)} == {"v1"}
    assert split.pick(None) == "v1"


def test_sticky_and_proportional() -> None:
    split = TrafficSplit(["v1", "v2"], [80, 20])
    picks = [split.pick(f"customer-{i}") for i in range(20_000)]
    assert picks == [split.pick(f"customer-{i}") for i in range(20_000)]
    assert picks.count("v2") / len(picks) == pytest.approx(0.20, abs=0.015)
    random_picks = [split.pick(None) for _ in range(20_000)]
    assert random_picks.count("v2") / len(random_picks) == pytest.approx(0.20, abs=0.015)


def test_growing_a_canary_keeps_its_entities() -> None:
    small = TrafficSplit(["v1", "v2"], [95, 5])
    large = TrafficSplit(["v1", "v2"], [80, 20])
    on_canary = [i for i in range(5000) if small.pick(i) == "v2"]
    assert on_canary and all(large.pick(i) == "v2" for i in on_canary)


def test_buckets_are_stable_across_types() -> None:
    assert bucket_of(42) == bucket_of("42")
    assert 0 <= bucket_of("x") < BUCKETS


def test_bad_split() -> None:
    with pytest.raises(ValueError):
        TrafficSplit(["a", "b"], [100])
    with pytest.raises(ValueError):
        TrafficSplit([], [])


def test_a_whole_float_key_shares_the_bucket_of_its_integer() -> None:
    assert bucket_of(42.0) == bucket_of(42) == bucket_of("42")
    assert bucket_of(-7.0) == bucket_of("-7")
    split = TrafficSplit(["v1", "v2"], [50, 50])
    assert all(split.pick(float(i)) == split.pick(i) == split.pick(str(i)) for i in range(500))
