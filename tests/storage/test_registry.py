"""Backends chosen by URI: scheme lookup, errors that name the known schemes, lazy imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from leptonic.errors import ConfigError, UnknownBackend
from leptonic.storage import (
    ARTIFACT_BACKENDS,
    METADATA_BACKENDS,
    BackendRegistry,
    open_artifact_store,
    open_metadata_store,
)
from leptonic.storage.artifacts.local import LocalArtifactStore
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.storage.metadata.memory import MemoryMetadataStore


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(UnknownBackend, match=r"'mysql'.*known schemes: memory, postgresql, sqlite"):
        open_metadata_store("mysql://db.example/leptonic")
    with pytest.raises(UnknownBackend, match=r"'gs'.*known schemes: file, memory"):
        open_artifact_store("gs://bucket/prefix")


@pytest.mark.parametrize("uri", ["leptonic.db", "/var/lib/leptonic.db", "", "sqlite:", None, 42])
def test_malformed_uri(uri: Any) -> None:
    with pytest.raises(ConfigError, match=r"expected '<scheme>://...'.*memory, postgresql, sqlite"):
        open_metadata_store(uri)
    with pytest.raises(ValueError, match="file, memory"):
        open_artifact_store(uri)


def test_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        METADATA_BACKENDS.resolve("redis://localhost")


def test_schemes_resolve_to_their_backends() -> None:
    from leptonic.storage.metadata.sql import SQLMetadataStore

    assert METADATA_BACKENDS.schemes == ("memory", "postgresql", "sqlite")
    assert METADATA_BACKENDS.resolve("memory://") is MemoryMetadataStore
    assert METADATA_BACKENDS.resolve("sqlite:////tmp/x.db") is SQLMetadataStore
    assert METADATA_BACKENDS.resolve("postgresql://u@h/db") is SQLMetadataStore
    assert METADATA_BACKENDS.resolve("postgresql+psycopg://u@h/db") is SQLMetadataStore
    assert ARTIFACT_BACKENDS.resolve("file:///srv/artifacts") is LocalArtifactStore
    assert ARTIFACT_BACKENDS.resolve("memory://") is MemoryArtifactStore


def test_open_stores(tmp_path: Path) -> None:
    from leptonic.storage.metadata.sql import SQLMetadataStore

    assert isinstance(open_metadata_store("memory://"), MemoryMetadataStore)
    with open_metadata_store(f"sqlite:///{tmp_path / 'db' / 'leptonic.db'}") as store:
        assert isinstance(store, SQLMetadataStore)
        assert store.list_workspaces() == []
    artifacts = open_artifact_store((tmp_path / "artifacts").as_uri())
    assert isinstance(artifacts, LocalArtifactStore)
    assert isinstance(open_artifact_store("memory://"), MemoryArtifactStore)


def test_with_backend_returns_a_new_registry() -> None:
    target = "leptonic.storage.metadata.memory:MemoryMetadataStore"
    custom = METADATA_BACKENDS.with_backend("scratch", target)
    assert isinstance(custom, BackendRegistry)
    assert custom.schemes == ("memory", "postgresql", "scratch", "sqlite")
    assert METADATA_BACKENDS.schemes == ("memory", "postgresql", "sqlite")
    assert isinstance(open_metadata_store("scratch://", registry=custom), MemoryMetadataStore)
    with pytest.raises(UnknownBackend):
        open_metadata_store("scratch://")

    replaced = METADATA_BACKENDS.with_backend("sqlite", target)
    assert isinstance(open_metadata_store("sqlite:///ignored.db", replaced), MemoryMetadataStore)
    assert METADATA_BACKENDS.resolve("sqlite:///x.db").__name__ == "SQLMetadataStore"


def _python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_backends_are_imported_lazily() -> None:
    out = _python(
        """
        import sys
        import leptonic.storage
        from leptonic.storage import METADATA_BACKENDS
        lazy = ["leptonic.storage.metadata.sql", "leptonic.storage.metadata.migrate", "psycopg"]
        print(",".join(m for m in lazy if m in sys.modules) or "none")
        METADATA_BACKENDS.resolve("sqlite:///x.db")
        print("leptonic.storage.metadata.sql" in sys.modules)
        """
    )
    assert out.splitlines() == ["none", "True"]
