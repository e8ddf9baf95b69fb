"""Storage behind interfaces, chosen by URI: metadata (SQL, memory) and artifacts (files, memory)."""

from __future__ import annotations

from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.storage.metadata.base import MetadataStore
from leptonic.storage.registry import (
    ARTIFACT_BACKENDS,
    METADATA_BACKENDS,
    BackendRegistry,
    open_artifact_store,
    open_metadata_store,
)

__all__ = [
    "ARTIFACT_BACKENDS",
    "METADATA_BACKENDS",
    "ArtifactStore",
    "BackendRegistry",
    "MetadataStore",
    "open_artifact_store",
    "open_metadata_store",
]
