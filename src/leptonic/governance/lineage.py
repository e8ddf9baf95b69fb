"""Walking lineage: everything made from an object, or everything it was made from.

The metadata store keeps direct edges (``DatasetVersion → Run → ModelVersion →
Endpoint``); :func:`walk` follows them breadth-first, any number of steps.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from leptonic.core.uri import ObjectRef
from leptonic.errors import InvalidInput
from leptonic.storage.metadata.base import MetadataStore

__all__ = ["Direction", "walk"]

Direction = Literal["upstream", "downstream"]


def walk(
    metadata: MetadataStore,
    ref: ObjectRef,
    direction: Direction = "downstream",
    *,
    max_depth: int | None = None,
) -> list[tuple[int, ObjectRef]]:
    """Every object reachable from ``ref`` along lineage edges, with its distance.

    Parameters
    ----------
    metadata
        The store holding the edges.
    ref
        Where to start; it is not part of the result.
    direction
        ``"downstream"`` (what was made from ``ref``) or ``"upstream"``
        (what ``ref`` was made from).
    max_depth
        Stop after this many steps; no limit when ``None``.

    Returns
    -------
    list of (depth, ObjectRef)
        Breadth-first order: depth 1 are direct neighbours, then theirs; each
        object appears once, at its shortest distance, so cycles end the walk
        instead of looping. Objects at one depth come in the store's order.

    Examples
    --------
    >>> from leptonic.storage.metadata.memory import MemoryMetadataStore
    >>> store = MemoryMetadataStore()
    >>> data = ObjectRef("credit", "dataset", "applicants", 1)
    >>> run = ObjectRef("credit", "run", "r1")
    >>> store.add_lineage(data, run)
    >>> walk(store, data)
    [(1, ObjectRef(workspace='credit', kind='run', name='r1', version=None))]
    """
    if direction not in ("upstream", "downstream"):
        raise InvalidInput(
            f"direction must be 'upstream' or 'downstream', got {direction!r}",
            field="direction",
        )
    if max_depth is not None and max_depth < 0:
        raise InvalidInput(f"max_depth must be 0 or more, got {max_depth}", field="max_depth")
    seen = {ref}
    out: list[tuple[int, ObjectRef]] = []
    queue: deque[tuple[int, ObjectRef]] = deque([(0, ref)])
    while queue:
        depth, node = queue.popleft()
        if max_depth is not None and depth >= max_depth:
            continue
        for neighbour in metadata.lineage(node, direction):
            if neighbour in seen:
                continue
            seen.add(neighbour)
            out.append((depth + 1, neighbour))
            queue.append((depth + 1, neighbour))
    return out
