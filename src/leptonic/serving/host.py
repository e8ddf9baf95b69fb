"""Keeping a served endpoint current: the runtime, its reloads and its log writer.

:class:`EndpointHost` owns one endpoint in one serving process. It builds the
:class:`~leptonic.serving.runtime.EndpointRuntime` of the current revision,
watches the store for a newer revision (a promotion, a new policy, a canary
change) from a background thread and swaps the new runtime in; requests
never wait for a reload. It also owns the prediction log writer, and closing
the host writes every queued record.
"""

from __future__ import annotations

import abc
import gc
import logging
import threading
from pathlib import Path
from typing import Any

from leptonic.registry.service import ModelRegistry
from leptonic.serving.log_shipper import ProcessAppender
from leptonic.serving.prediction_log import PredictionLogWriter
from leptonic.serving.runtime import EndpointRuntime, load_runtime
from leptonic.storage.metadata.base import MetadataStore

__all__ = ["EndpointHost", "HostPool", "ReloadingHost", "open_prediction_log", "settle_memory"]

logger = logging.getLogger(__name__)


def open_prediction_log(
    metadata: MetadataStore, *, spill_dir: str | Path | None, separate_writer: bool
) -> tuple[PredictionLogWriter, ProcessAppender | None]:
    """The prediction log writer of a serving process, and its child writer if any.

    With ``separate_writer`` and a SQL store, records are piped to a child
    process that writes them, so the serving process spends no CPU and no GIL
    time on the database; otherwise a background thread writes to ``metadata``.
    """
    uri = getattr(metadata, "uri", None)
    if separate_writer and isinstance(uri, str) and not uri.startswith("memory:"):
        shipper = ProcessAppender(uri, spill_dir=spill_dir)
        # small batches: encoding one holds the GIL for ~1 µs a record
        return PredictionLogWriter(shipper, batch_size=100, interval=0.05), shipper
    return PredictionLogWriter(metadata, spill_dir=spill_dir), None


class ReloadingHost(abc.ABC):
    """A served endpoint that checks for a newer revision from a background thread.

    Subclasses implement :meth:`reload`; :meth:`_start_watching` starts the
    thread (when ``reload_interval`` > 0), :meth:`_stop_watching` ends it. A
    failed reload keeps the current revision serving and is kept in
    ``reload_error`` (shown by ``/health``).
    """

    name: str
    reload_interval: float
    log: PredictionLogWriter
    reload_error: str | None = None
    _stop: threading.Event
    _thread: threading.Thread | None = None

    @abc.abstractmethod
    def reload(self, *, force: bool = False) -> bool:
        """Serve the stored revision if it is newer (or ``force``); True if swapped."""

    def _start_watching(self, thread_name: str) -> None:
        self._stop = threading.Event()
        self._thread = None
        if self.reload_interval > 0:
            self._thread = threading.Thread(target=self._watch, name=thread_name, daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.reload_interval):
            try:
                self.reload()
                self.reload_error = None
            except Exception as exc:  # keep serving the revision we have
                self.reload_error = f"{type(exc).__name__}: {exc}"
                logger.warning("endpoint %s: reload failed: %s", self.name, self.reload_error)

    def log_health(self) -> dict[str, Any]:
        """The prediction log's counters and the last reload error (for ``/health``):
        records waiting, written, set aside in the spill file and dropped (lost: more
        than its ``max_pending`` waited for a store that was down, with no spill file)."""
        return {
            "log_pending": self.log.pending,
            "log_written": self.log.written,
            "log_spilled": self.log.spilled,
            "log_dropped": self.log.dropped,
            "log_failures": self.log.failures,
            "reload_error": self.reload_error,
        }

    def _stop_watching(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
        if self._thread is not None:
            self._thread.join(5)


class EndpointHost(ReloadingHost):
    """One endpoint served by this process.

    Parameters
    ----------
    metadata, registry
        Where the endpoint, its policy and its model versions are read from.
    workspace, name
        The endpoint.
    reload_interval
        Seconds between checks for a newer revision (0: never check).
    log
        The prediction log writer; by default one is made on ``metadata``.
    spill_dir
        Where the default writer puts records the store refuses.
    separate_writer
        Write the prediction log from a child process (SQL stores only), so
        that the serving process spends no CPU and no GIL time on the database.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        registry: ModelRegistry,
        workspace: str,
        name: str,
        *,
        reload_interval: float = 2.0,
        log: PredictionLogWriter | None = None,
        spill_dir: str | Path | None = None,
        separate_writer: bool = False,
    ) -> None:
        self.metadata = metadata
        self.registry = registry
        self.workspace = workspace
        self.name = name
        self.reload_interval = reload_interval
        self._owns_log = log is None
        self._shipper: ProcessAppender | None = None
        if log is None:
            log, self._shipper = open_prediction_log(
                metadata, spill_dir=spill_dir, separate_writer=separate_writer
            )
        self.log = log
        self.runtime: EndpointRuntime = load_runtime(
            metadata, registry, workspace, name, log=self.log
        )
        self._shadow_failures_before = 0  # of the revisions served before this one
        settle_memory()
        self._start_watching(f"leptonic-endpoint-{name}")

    @property
    def shadow_failures(self) -> int:
        """Shadow scorings that failed since this host started (logged with their
        request id; the live answers stood)."""
        return self._shadow_failures_before + self.runtime.shadow_failures

    def log_health(self) -> dict[str, Any]:
        """As :meth:`ReloadingHost.log_health`, with ``shadow_failures``."""
        return {**super().log_health(), "shadow_failures": self.shadow_failures}

    def reload(self, *, force: bool = False) -> bool:
        """Load the stored revision if it is newer (or ``force``); True if swapped."""
        endpoint = self.metadata.get_endpoint(self.workspace, self.name)
        if not force and endpoint.revision == self.runtime.revision:
            return False
        runtime = load_runtime(
            self.metadata, self.registry, self.workspace, self.name, log=self.log
        )
        old, self.runtime = self.runtime, runtime
        self._shadow_failures_before += old.shadow_failures
        settle_memory()
        logger.info("endpoint %s: now serving revision %d", self.name, self.runtime.revision)
        return True

    def flush_log(self) -> None:
        """Write every queued prediction now, through the writer process if there is one
        (it has them written, not only received, when this returns)."""
        self.log.flush()
        if self._shipper is not None:
            self._shipper.sync()

    def close(self) -> None:
        """Stop watching and write every queued prediction (of a log it owns)."""
        self._stop_watching()
        if self._owns_log:
            self.log.close()
        if self._shipper is not None:
            self._shipper.close()


def settle_memory() -> None:
    """Collect garbage once and exempt what is loaded now (models, libraries)
    from later collections: a full collection over hundreds of thousands of
    long-lived objects would otherwise stall requests for 100 ms and more."""
    gc.collect()
    gc.freeze()


class HostPool:
    """The endpoints served inside the platform server, loaded on first use.

    All share one prediction log writer; :meth:`close` stops them and writes it out.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        registry: ModelRegistry,
        *,
        reload_interval: float = 2.0,
        spill_dir: str | Path | None = None,
    ) -> None:
        self.metadata = metadata
        self.registry = registry
        self.reload_interval = reload_interval
        self.log = PredictionLogWriter(metadata, spill_dir=spill_dir)
        self._hosts: dict[tuple[str, str], EndpointHost] = {}
        self._lock = threading.Lock()

    def get(self, workspace: str, name: str) -> EndpointHost:
        """The host of an endpoint (NotFound if there is no such endpoint)."""
        key = (workspace, name)
        host = self._hosts.get(key)
        if host is not None:
            return host
        with self._lock:
            host = self._hosts.get(key)
            if host is None:
                host = EndpointHost(
                    self.metadata,
                    self.registry,
                    workspace,
                    name,
                    reload_interval=self.reload_interval,
                    log=self.log,
                )
                self._hosts[key] = host
        return host

    def close(self) -> None:
        with self._lock:
            hosts = list(self._hosts.values())
            self._hosts.clear()
        for host in hosts:
            host.close()
        self.log.close()
