"""Scheme → backend class, resolved lazily.

A :class:`BackendRegistry` maps URI schemes to ``"module:Class"`` strings and
imports the module only when a URI with that scheme is opened, so an absent
optional dependency (psycopg, boto3) matters only to whoever uses it. The
default registries are plain values; pass your own to add a backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from leptonic.errors import ConfigError, UnknownBackend
from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.storage.metadata.base import MetadataStore

__all__ = [
    "ARTIFACT_BACKENDS",
    "METADATA_BACKENDS",
    "BackendRegistry",
    "open_artifact_store",
    "open_metadata_store",
]


class BackendRegistry:
    """An immutable mapping of URI scheme to a lazily imported backend class.

    Parameters
    ----------
    kind
        What the backends store, for error messages (``"metadata"``).
    backends
        Scheme → ``"package.module:ClassName"``.
    """

    def __init__(self, kind: str, backends: Mapping[str, str]) -> None:
        self.kind = kind
        self._backends = dict(backends)

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(sorted(self._backends))

    def with_backend(self, scheme: str, target: str) -> BackendRegistry:
        """A copy of this registry with ``scheme`` mapped to ``target``."""
        return BackendRegistry(self.kind, {**self._backends, scheme: target})

    def resolve(self, uri: str) -> type[Any]:
        if not isinstance(uri, str) or "://" not in uri:
            raise ConfigError(
                f"invalid {self.kind} store URI {uri!r}: expected '<scheme>://...', "
                f"with a scheme among {', '.join(self.schemes)}"
            )
        scheme = uri.split("://", 1)[0].split("+", 1)[0].lower()
        target = self._backends.get(scheme)
        if target is None:
            raise UnknownBackend(
                f"no {self.kind} backend for scheme {scheme!r} in {uri!r}; "
                f"known schemes: {', '.join(self.schemes)}"
            )
        module_name, _, class_name = target.partition(":")
        module = importlib.import_module(module_name)
        cls: type[Any] = getattr(module, class_name)
        return cls

    def open(self, uri: str) -> Any:
        """The backend for ``uri``, opened by its class's ``from_uri``."""
        return self.resolve(uri).from_uri(uri)


METADATA_BACKENDS = BackendRegistry(
    "metadata",
    {
        "sqlite": "leptonic.storage.metadata.sql:SQLMetadataStore",
        "postgresql": "leptonic.storage.metadata.sql:SQLMetadataStore",
        "memory": "leptonic.storage.metadata.memory:MemoryMetadataStore",
    },
)

ARTIFACT_BACKENDS = BackendRegistry(
    "artifact",
    {
        "file": "leptonic.storage.artifacts.local:LocalArtifactStore",
        "s3": "leptonic.storage.artifacts.s3:S3ArtifactStore",
        "memory": "leptonic.storage.artifacts.memory:MemoryArtifactStore",
    },
)


def open_metadata_store(uri: str, registry: BackendRegistry = METADATA_BACKENDS) -> MetadataStore:
    """Open the metadata store at ``uri`` (``sqlite:///``, ``postgresql://``, ``memory://``)."""
    store: MetadataStore = registry.open(uri)
    return store


def open_artifact_store(uri: str, registry: BackendRegistry = ARTIFACT_BACKENDS) -> ArtifactStore:
    """Open the artifact store at ``uri`` (``file:///``, ``s3://``, ``memory://``)."""
    store: ArtifactStore = registry.open(uri)
    return store
