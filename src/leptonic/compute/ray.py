"""Work on a Ray cluster: ``ray://host:port``, or ``ray://local`` for one started here.

``ray://host:port`` connects to a running cluster through the Ray Client (port
10001 by default on the head node; the ``ray`` extra); every node needs the
same Leptonic release installed, since the tasks import it. A cluster with
token authentication (Ray's default) needs ``RAY_AUTH_MODE=token`` here and its
token in ``~/.ray/auth_token``. ``ray://local``
(``?cpus=N``) starts Ray in this process with this machine's CPUs, as a laptop
would. Ray is one session per process: executors opened on the same URI share
it, the last one closed stops it, and a session the caller started is used as
it is and never stopped here.

Each item is one Ray task with one CPU; ``shared`` is put in the object store
once per call. When an item fails, or the caller stops a map, the other tasks
are cancelled, the running ones stopped.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from leptonic.compute.base import (
    POLL_S,
    Executor,
    PollFn,
    ResultFn,
    parse_workers,
    run_task,
)
from leptonic.errors import ConfigError, MissingExtra, StoreError

__all__ = ["RayExecutor"]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

# Connections to a cluster tried when the head's per-client server dies as it starts.
_CLIENT_ATTEMPTS = 3
_SERVER_RACE = ("Starting Ray client server failed", "Initialization failure from server")

# The Ray session this module started: its URI and how many executors use it.
_session: dict[str, Any] = {"uri": None, "users": 0}
_session_lock = threading.Lock()


def _call(fn: Callable[[S, T], R], shared: S, item: T) -> R:
    """What a Ray task runs (Ray takes Python functions only, not builtins)."""
    return run_task(fn, shared, item)


def _parse(uri: str) -> tuple[str | None, int | None]:
    """``(client address or None for a local Ray, cpus)``."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:  # an unmatched "[", a port that is no number
        raise ConfigError(
            f"invalid compute URI {uri!r}: expected ray://host:port or ray://local[?cpus=N]"
        ) from None
    query = parse_qs(parts.query, keep_blank_values=True)
    local = parts.netloc == "local"
    if parts.scheme != "ray" or not parts.netloc or parts.path not in ("", "/") or parts.fragment:
        bad = True
    elif local:
        bad = bool(set(query) - {"cpus"})
    else:
        bad = bool(query) or not parts.hostname or port is None or not 1 <= port <= 65535
    if bad:
        raise ConfigError(
            f"invalid compute URI {uri!r}: expected ray://host:port (a Ray cluster's "
            "client address) or ray://local[?cpus=N] (Ray started in this process)"
        )
    if local:
        return None, parse_workers(query.get("cpus", [None])[-1], uri, "cpus")
    return f"ray://{parts.netloc}", None


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
        self._task: Any = None
        self._joined = False
        self._closed = False
        with _session_lock:
            if ray.is_initialized():
                if _session["uri"] is None:
                    return  # the caller's own session: used as it is, never stopped here
                if _session["uri"] != self.uri:
                    raise ConfigError(
                        f"Ray already runs in this process for {_session['uri']}; one "
                        f"process cannot also use {self.uri} (Ray has one session per "
                        "process)"
                    )
            else:
                self._start(address, cpus)
                _session["uri"] = self.uri
            _session["users"] += 1
            self._joined = True

    def _start(self, address: str | None, cpus: int | None) -> None:
        ray = self._ray
        quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        failure: BaseException = ConnectionError("not tried")
        for _ in range(1 if address is None else _CLIENT_ATTEMPTS):
            try:
                if address is None:
                    ray.init(num_cpus=cpus, include_dashboard=False, **quiet)
                else:
                    ray.init(address=address, **quiet)
                return
            except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
                failure = exc
                if not any(sign in str(exc) for sign in _SERVER_RACE):
                    break
                # Ray's head forks a server per client, which dies now and then (ray
                # issue 63202); the next connection gets a new one
                with contextlib.suppress(Exception):
                    ray.shutdown()
        if address is None:
            hint = (
                "Ray could not start on this machine; check free memory, /dev/shm "
                "and /tmp/ray, or use local://?workers=N"
            )
        else:
            hint = (
                "the cluster named by LEPTONIC_COMPUTE was not reached; check that its "
                "head node runs the Ray Client server (ray start --head, port 10001), "
                "that this machine can reach it, and, for a cluster with token "
                "authentication, that RAY_AUTH_MODE=token is set here with the "
                "cluster's token in ~/.ray/auth_token"
            )
        raise StoreError(f"{hint} ({type(failure).__name__})") from failure

    @classmethod
    def check_uri(cls, uri: str) -> None:
        _parse(uri)
        if importlib.util.find_spec("ray") is None:
            raise MissingExtra("ray", "ray", "the Ray compute backend")

    @classmethod
    def from_uri(cls, uri: str) -> RayExecutor:
        address, cpus = _parse(uri)
        return cls(address, cpus=cpus)

    def _check_open(self) -> None:
        # Ray starts a session of its own on first use after a shutdown: on this machine,
        # not on the cluster, and never stopped. A closed executor runs nothing.
        if self._closed:
            raise StoreError(f"the compute executor {self.uri} is closed; open a new one")

    @property
    def workers(self) -> int:
        self._check_open()
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    @property
    def runs_here(self) -> bool:
        return False

    def map(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        *,
        on_result: ResultFn | None = None,
        poll: PollFn | None = None,
    ) -> list[R]:
        ray = self._ray
        self._check_open()
        if not items:
            return []
        if self._task is None:
            self._task = ray.remote(num_cpus=1, max_retries=0)(_call)
        shared_ref = ray.put(shared)
        refs = [self._task.remote(fn, shared_ref, item) for item in items]
        index = {ref: i for i, ref in enumerate(refs)}
        pending = list(refs)
        results: dict[int, R] = {}
        polled = time.monotonic()
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
                for ref in done:
                    try:
                        results[index[ref]] = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        # the task's own error, not Ray's wrapper with the remote traceback
                        raise (exc.cause or exc) from None
                    except ray.exceptions.RayError as exc:  # a worker or node lost
                        raise StoreError(
                            f"a Ray worker died while running the task ({type(exc).__name__}: "
                            "out of memory, or its node was lost); the run is lost, and the "
                            "next run starts new workers"
                        ) from None
                    if on_result is not None:
                        on_result(index[ref], results[index[ref]])
                # about every POLL_S seconds, also while results keep coming
                if pending and poll is not None and time.monotonic() - polled >= POLL_S:
                    polled = time.monotonic()
                    poll()
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return [results[i] for i in range(len(items))]

    def close(self) -> None:
        self._closed = True
        if not self._joined:
            return
        self._joined = False
        with _session_lock:
            _session["users"] -= 1
            if _session["users"] > 0:
                return
            _session["uri"] = None
            if self._ray.is_initialized():
                self._ray.shutdown()
