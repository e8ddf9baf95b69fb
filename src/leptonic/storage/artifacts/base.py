"""The artifact store interface: content-addressed, immutable blobs.

A blob's key is ``sha256/<first two hex digits>/<full hex digest>`` of its
bytes, so the same bytes are stored once, a key can never point at other
bytes, and integrity can be checked on read.
"""

from __future__ import annotations

import abc
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from leptonic.errors import InvalidInput, UnsafeArtifact

__all__ = [
    "CHUNK_SIZE",
    "ArtifactStore",
    "VerifiedFiles",
    "digest_file",
    "digest_mismatch",
    "key_for_digest",
    "spool",
    "validate_key",
]

CHUNK_SIZE = 1 << 20
_KEY = re.compile(r"^sha256/([0-9a-f]{2})/([0-9a-f]{64})$")


class VerifiedFiles:
    """Which files' bytes matched their digest, and the file as it was then (size,
    modification time, inode): a file is hashed once, and again once it changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, int, int]] = {}

    @staticmethod
    def _identity(path: Path) -> tuple[int, int, int]:
        st = path.stat()
        return (st.st_size, st.st_mtime_ns, st.st_ino)

    def matches(self, path: Path, digest: str, size: int | None = None) -> bool:
        """Whether ``path`` holds the bytes of ``digest`` (of ``size`` bytes, if given):
        known from before and unchanged since, or hashed now. False if it is gone."""
        try:
            identity = self._identity(path)
        except FileNotFoundError:
            return False
        if size is not None and identity[0] != size:
            return False
        with self._lock:
            if self._seen.get(digest) == identity:
                return True
        if digest_file(path) != digest:
            return False
        with self._lock:
            self._seen[digest] = identity
        return True

    def trust(self, path: Path, digest: str) -> None:
        """Record ``path``, just written from bytes hashed to ``digest``, as matching."""
        identity = self._identity(path)
        with self._lock:
            self._seen[digest] = identity

    def forget(self, digest: str) -> None:
        with self._lock:
            self._seen.pop(digest, None)


def key_for_digest(hexdigest: str) -> str:
    return f"sha256/{hexdigest[:2]}/{hexdigest}"


def validate_key(key: str) -> str:
    """Return the hex digest in ``key`` or raise :class:`InvalidInput`."""
    m = _KEY.fullmatch(key) if isinstance(key, str) else None
    if m is None or m.group(1) != m.group(2)[:2]:
        raise InvalidInput(
            f"invalid artifact key {key!r}: expected 'sha256/<2 hex>/<64 hex>' as returned by put",
            field="key",
        )
    return m.group(2)


def digest_mismatch(key: str) -> UnsafeArtifact:
    """The error for a blob whose bytes no longer match its key."""
    return UnsafeArtifact(
        f"artifact {key} does not match its digest: it was changed after it was "
        f"stored; restore it from a backup or register the model again",
        field="key",
    )


def digest_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            h.update(chunk)
    return h.hexdigest()


def spool(stream: BinaryIO, folder: Path, prefix: str) -> tuple[Path, str]:
    """Copy ``stream`` into a new file in ``folder`` (flushed and fsynced), hashing it
    on the way: ``(path, SHA-256 hex digest)``. A stream that fails leaves nothing."""
    h = hashlib.sha256()
    fd, name = tempfile.mkstemp(dir=folder, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK_SIZE):
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), h.hexdigest()


class ArtifactStore(abc.ABC):
    """Abstract content-addressed blob store. Implementations: local files, memory."""

    uri: str

    @classmethod
    @abc.abstractmethod
    def from_uri(cls, uri: str) -> ArtifactStore: ...

    @abc.abstractmethod
    def put_stream(self, stream: BinaryIO) -> str:
        """Store the bytes read from ``stream``, atomically; return their key."""

    def put_bytes(self, data: bytes) -> str:
        import io

        return self.put_stream(io.BytesIO(data))

    def put_file(self, path: str | os.PathLike[str]) -> str:
        with open(path, "rb") as f:
            return self.put_stream(f)

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open the blob for reading; :class:`NotFound` if absent."""

    def get_bytes(self, key: str, *, verify: bool = True) -> bytes:
        """The blob's bytes; with ``verify`` refuse bytes that do not match the key."""
        digest = validate_key(key)
        with self.open(key) as f:
            data = f.read()
        if verify and hashlib.sha256(data).hexdigest() != digest:
            raise digest_mismatch(key)
        return data

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove a blob (garbage collection only); absent keys are ignored."""

    @abc.abstractmethod
    def keys(self) -> Iterator[str]:
        """Every stored key."""

    @abc.abstractmethod
    def local_path(self, key: str) -> Path:
        """A path on this machine from which the blob can be read (do not write to it)."""
