"""Breadth-first lineage walks: depth, both directions, cycles, limits."""

from __future__ import annotations

import pytest

from leptonic.core.uri import ObjectRef
from leptonic.errors import InvalidInput
from leptonic.governance.lineage import walk
from leptonic.storage.metadata.memory import MemoryMetadataStore

DATA = ObjectRef("credit", "dataset", "applicants", 1)
RUN = ObjectRef("credit", "run", "r1")
RUN2 = ObjectRef("credit", "run", "r2")
MODEL = ObjectRef("credit", "model", "scorecard", 1)
ENDPOINT = ObjectRef("credit", "endpoint", "decide")


@pytest.fixture
def store() -> MemoryMetadataStore:
    s = MemoryMetadataStore()
    s.add_lineage(DATA, RUN)
    s.add_lineage(DATA, RUN2)
    s.add_lineage(RUN, MODEL)
    s.add_lineage(RUN2, MODEL)  # a diamond: MODEL is reachable twice
    s.add_lineage(MODEL, ENDPOINT)
    return s


def test_downstream_with_depths(store: MemoryMetadataStore) -> None:
    assert walk(store, DATA) == [(1, RUN), (1, RUN2), (2, MODEL), (3, ENDPOINT)]


def test_upstream_with_depths(store: MemoryMetadataStore) -> None:
    assert walk(store, ENDPOINT, "upstream") == [(1, MODEL), (2, RUN), (2, RUN2), (3, DATA)]


def test_leaf_has_nothing_downstream(store: MemoryMetadataStore) -> None:
    assert walk(store, ENDPOINT) == []
    assert walk(store, ObjectRef("credit", "dataset", "other", 1)) == []


def test_cycles_end_the_walk(store: MemoryMetadataStore) -> None:
    store.add_lineage(ENDPOINT, DATA)  # feedback loop: monitoring data retrains
    result = walk(store, DATA)
    assert result == [(1, RUN), (1, RUN2), (2, MODEL), (3, ENDPOINT)]
    assert DATA not in [ref for _, ref in result]


def test_self_loop() -> None:
    s = MemoryMetadataStore()
    s.add_lineage(DATA, DATA)
    assert walk(s, DATA) == []


def test_max_depth(store: MemoryMetadataStore) -> None:
    assert walk(store, DATA, max_depth=1) == [(1, RUN), (1, RUN2)]
    assert walk(store, DATA, max_depth=0) == []


def test_bad_arguments(store: MemoryMetadataStore) -> None:
    with pytest.raises(InvalidInput, match="direction must be 'upstream' or 'downstream'"):
        walk(store, DATA, "sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="max_depth"):
        walk(store, DATA, max_depth=-1)
