"""Artifacts as files under a folder: ``file:///path/to/artifacts``.

Writes go to a temporary file in the same folder, are flushed and fsynced,
then renamed into place, so a crash never leaves a half-written blob under
its key. Reads check the bytes against the key: a file is hashed the first
time it is opened or handed out by path here, and again once it changes, so
a damaged or tampered blob is refused (:class:`~leptonic.errors.UnsafeArtifact`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from leptonic.errors import ConfigError, NotFound
from leptonic.storage.artifacts.base import (
    ArtifactStore,
    VerifiedFiles,
    digest_file,
    digest_mismatch,
    key_for_digest,
    spool,
    validate_key,
)

__all__ = ["STALE_TMP_S", "LocalArtifactStore"]

#: Seconds after which a temporary file of an unfinished write is taken as left by a crash.
STALE_TMP_S = 24 * 3600


def _missing(key: str) -> NotFound:
    # Name the key, never the server's folder: callers of the API read this.
    return NotFound(
        f"artifact {key} not found in the local artifact store; it was deleted or never "
        "stored here (check LEPTONIC_ARTIFACTS)",
        field="key",
    )


class LocalArtifactStore(ArtifactStore):
    """Content-addressed files under ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.uri = self.root.as_uri()
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(exist_ok=True)
        self._sweep_tmp()
        self._verified_files = VerifiedFiles()

    @classmethod
    def from_uri(cls, uri: str) -> LocalArtifactStore:
        try:
            parts = urlsplit(uri)
        except ValueError:  # an unmatched "["
            parts = urlsplit("file://invalid")
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ConfigError(
                f"invalid artifact URI {uri!r}: use an absolute path, e.g. file:///srv/artifacts"
            )
        path = unquote(parts.path)
        try:
            return cls(path)
        except OSError as exc:
            raise ConfigError(
                f"the artifact folder {path!r} cannot be used ({exc.strerror or exc}); point "
                "LEPTONIC_ARTIFACTS (or LEPTONIC_HOME) at a writable folder"
            ) from None

    def _sweep_tmp(self) -> None:
        """Remove temporary files a crashed writer left behind: those untouched for a
        day (a live writer's file is younger; another process may be writing one)."""
        cutoff = time.time() - STALE_TMP_S
        for path in self._tmp.iterdir():
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()

    def _path(self, key: str) -> Path:
        digest = validate_key(key)
        return self.root / "sha256" / digest[:2] / digest

    def put_stream(self, stream: BinaryIO) -> str:
        tmp, digest = spool(stream, self._tmp, "put-")
        try:
            key = key_for_digest(digest)
            dest = self._path(key)
            if dest.exists() and digest_file(dest) == digest:
                tmp.unlink()  # already stored (a damaged copy is replaced below)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)
                os.replace(tmp, dest)
            return key
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _verified(self, key: str) -> Path:
        """The blob's file, once its bytes are known to match the key: hashed the first
        time it is used here, and again whenever its size, time or inode change."""
        digest = validate_key(key)
        path = self._path(key)
        if not self._verified_files.matches(path, digest):
            raise digest_mismatch(key) if path.exists() else _missing(key)
        return path

    def open(self, key: str) -> BinaryIO:
        path = self._verified(key)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise _missing(key) from None

    def get_bytes(self, key: str, *, verify: bool = True) -> bytes:
        digest = validate_key(key)
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            raise _missing(key) from None
        if verify and hashlib.sha256(data).hexdigest() != digest:
            raise digest_mismatch(key)
        return data

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise _missing(key) from None

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.exists():
            path.unlink()

    def keys(self) -> Iterator[str]:
        base = self.root / "sha256"
        if base.is_dir():
            for p in sorted(base.glob("*/*")):
                yield key_for_digest(p.name)

    def local_path(self, key: str) -> Path:
        return self._verified(key)
