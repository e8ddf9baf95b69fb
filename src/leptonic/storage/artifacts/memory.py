"""Artifacts in a dictionary, for fast tests: ``memory://``."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from leptonic.errors import NotFound
from leptonic.storage.artifacts.base import (
    ArtifactStore,
    digest_mismatch,
    key_for_digest,
    validate_key,
)

__all__ = ["MemoryArtifactStore"]


class MemoryArtifactStore(ArtifactStore):
    def __init__(self) -> None:
        self.uri = "memory://"
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._spill: Path | None = None

    @classmethod
    def from_uri(cls, uri: str) -> MemoryArtifactStore:
        return cls()

    def put_stream(self, stream: BinaryIO) -> str:
        data = stream.read()
        key = key_for_digest(hashlib.sha256(data).hexdigest())
        with self._lock:
            self._blobs[key] = data  # the same bytes, or a repair of a damaged copy
        return key

    def _get(self, key: str) -> bytes:
        validate_key(key)
        with self._lock:
            try:
                return self._blobs[key]
            except KeyError:
                raise NotFound(f"artifact {key} not found in memory store", field="key") from None

    def _verified(self, key: str) -> bytes:
        data = self._get(key)
        if hashlib.sha256(data).hexdigest() != key[-64:]:
            raise digest_mismatch(key)
        return data

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self._verified(key))

    def get_bytes(self, key: str, *, verify: bool = True) -> bytes:
        return self._verified(key) if verify else self._get(key)

    def exists(self, key: str) -> bool:
        validate_key(key)
        with self._lock:
            return key in self._blobs

    def size(self, key: str) -> int:
        return len(self._get(key))

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._lock:
            self._blobs.pop(key, None)

    def keys(self) -> Iterator[str]:
        with self._lock:
            return iter(sorted(self._blobs))

    def local_path(self, key: str) -> Path:
        data = self._verified(key)
        with self._lock:
            if self._spill is None:
                self._spill = Path(tempfile.mkdtemp(prefix="leptonic-mem-"))
                weakref.finalize(self, shutil.rmtree, self._spill, ignore_errors=True)
            spill = self._spill
        path = spill / validate_key(key)
        if not path.exists():  # written whole, then renamed: a reader never sees part of it
            fd, tmp = tempfile.mkstemp(dir=spill, prefix=".part-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return path
