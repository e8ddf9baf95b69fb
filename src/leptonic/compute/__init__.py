"""Where training work runs: this process, local worker processes, or a Ray cluster.

``open_executor(uri)`` opens the backend named by ``LEPTONIC_COMPUTE``:
``local://`` (the default: in this process), ``local://?workers=N`` (N worker
processes) or ``ray://host:port`` / ``ray://local`` (Ray tasks). The tabular
search runs its candidate families on it side by side, and batch scoring its
batches.
"""

from __future__ import annotations

from leptonic.compute.base import Executor, ResultFn
from leptonic.storage.registry import BackendRegistry

__all__ = ["COMPUTE_BACKENDS", "Executor", "ResultFn", "open_executor"]

COMPUTE_BACKENDS = BackendRegistry(
    "compute",
    {
        "local": "leptonic.compute.local:LocalExecutor",
        "ray": "leptonic.compute.ray:RayExecutor",
    },
)


def open_executor(uri: str, registry: BackendRegistry = COMPUTE_BACKENDS) -> Executor:
    """Open the compute backend at ``uri`` (``local://``, ``local://?workers=N``, ``ray://``)."""
    executor: Executor = registry.open(uri)
    return executor
