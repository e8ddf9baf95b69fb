"""Work on a Ray cluster: ``ray://host:port``, or ``ray://local`` for one started here.

``ray://host:port`` connects to a running cluster through the Ray Client (port
10001 by default on the head node); every node needs the same Leptonic release
installed, since the tasks import it. ``ray://local`` (``?cpus=N``) starts Ray
in this process with this machine's CPUs, as a laptop would, and stops it on
:meth:`RayExecutor.close`. A Ray session already started by the caller is used
as it is.

Each item is one Ray task with one CPU; ``shared`` is put in the object store
once per call. When an item fails, or the caller cancels, the other tasks are
cancelled, the running ones stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from leptonic.compute.base import Executor, ResultFn, parse_workers
from leptonic.errors import ConfigError, MissingExtra, StoreError

__all__ = ["RayExecutor"]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")


def _call(fn: Callable[[S, T], R], shared: S, item: T) -> R:
    """What a Ray task runs (Ray takes Python functions only, not builtins)."""
    return fn(shared, item)


class RayExecutor(Executor):
    """Items as Ray tasks on the cluster at ``address``.

    Parameters
    ----------
    address
        ``"ray://host:port"`` (a running cluster) or ``None`` (start Ray here).
    cpus
        CPUs of the Ray started here (this machine's when omitted).
    """

    def __init__(self, address: str | None = None, *, cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise MissingExtra("ray", "ray", "the Ray compute backend") from None
        self._ray = ray
        self.uri = address or ("ray://local" + (f"?cpus={cpus}" if cpus else ""))
        self._started = False
        self._task: Any = None
        if ray.is_initialized():
            return
        quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        try:
            if address is None:
                ray.init(num_cpus=cpus, include_dashboard=False, **quiet)
            else:
                ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise StoreError(
                f"cannot reach the Ray cluster named by LEPTONIC_COMPUTE ({type(exc).__name__}); "
                "check that its head node runs the Ray Client server (ray start --head, "
                "port 10001) and that this machine can reach it"
            ) from exc
        self._started = True

    @classmethod
    def from_uri(cls, uri: str) -> RayExecutor:
        parts = urlsplit(uri)
        query = parse_qs(parts.query, keep_blank_values=True)
        local = parts.netloc == "local"
        if parts.scheme != "ray" or not parts.netloc or parts.path not in ("", "/"):
            bad = True
        elif local:
            bad = bool(set(query) - {"cpus"})
        else:
            bad = bool(query) or parts.port is None
        if bad:
            raise ConfigError(
                f"invalid compute URI {uri!r}: expected ray://host:port (a Ray cluster's "
                "client address) or ray://local[?cpus=N] (Ray started in this process)"
            )
        if local:
            return cls(cpus=parse_workers(query.get("cpus", [None])[-1], uri, "cpus"))
        return cls(f"ray://{parts.netloc}")

    @property
    def workers(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def map(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        *,
        on_result: ResultFn | None = None,
    ) -> list[R]:
        ray = self._ray
        if not items:
            return []
        if self._task is None:
            self._task = ray.remote(num_cpus=1, max_retries=0)(_call)
        shared_ref = ray.put(shared)
        refs = [self._task.remote(fn, shared_ref, item) for item in items]
        index = {ref: i for i, ref in enumerate(refs)}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    result = ray.get(ref)  # raises the task's error
                    if on_result is not None:
                        on_result(index[ref], result)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        results: list[R] = ray.get(refs)
        return results

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False
