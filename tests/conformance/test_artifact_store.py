"""One conformance suite for every artifact store: memory, local files and S3."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from leptonic.errors import InvalidInput, NotFound, UnsafeArtifact
from leptonic.storage.artifacts.base import ArtifactStore, key_for_digest
from leptonic.storage.artifacts.local import LocalArtifactStore
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.storage.registry import open_artifact_store


def _tamper_memory(store: ArtifactStore, key: str) -> None:
    assert isinstance(store, MemoryArtifactStore)
    data = bytearray(store._blobs[key])
    data[0] ^= 0xFF
    store._blobs[key] = bytes(data)


def _tamper_file(store: ArtifactStore, key: str) -> None:
    assert isinstance(store, LocalArtifactStore)
    path = store._path(key)
    path.chmod(path.stat().st_mode | stat.S_IWUSR)
    with open(path, "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))


def _tamper_s3(store: ArtifactStore, key: str) -> None:
    # Another tool overwrites the object in the bucket, and this machine has
    # no local copy yet (as on a fresh server).
    from leptonic.storage.artifacts.s3 import S3ArtifactStore

    assert isinstance(store, S3ArtifactStore)
    name = store._object(key)
    data = bytearray(store._client.get_object(Bucket=store.bucket, Key=name)["Body"].read())
    data[0] ^= 0xFF
    store._client.put_object(Bucket=store.bucket, Key=name, Body=bytes(data))
    store._cached(key[-64:]).unlink(missing_ok=True)


TAMPER: dict[str, Callable[[ArtifactStore, str], None]] = {
    "memory": _tamper_memory,
    "file": _tamper_file,
    "s3": _tamper_s3,
}


@pytest.fixture(params=["memory", "file", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> ArtifactStore:
    if backend == "memory":
        return MemoryArtifactStore.from_uri("memory://")
    if backend == "s3":
        return open_artifact_store(request.getfixturevalue("s3_uri"))
    return LocalArtifactStore.from_uri((tmp_path / "artifacts").as_uri())


def key_of(data: bytes) -> str:
    return key_for_digest(hashlib.sha256(data).hexdigest())


class _Trickle(io.RawIOBase):
    """A stream whose sized reads return at most ``step`` bytes, like a socket."""

    def __init__(self, data: bytes, step: int = 65_537) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = len(self._data) if size < 0 else min(size, self._step)
        chunk = bytes(self._data[self._pos : self._pos + n])
        self._pos += len(chunk)
        return chunk


class _Broken(io.RawIOBase):
    """A stream that fails after its first 1000 bytes, as a dropped upload would."""

    def __init__(self) -> None:
        self._sent = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._sent or size < 0:
            raise OSError("connection reset")
        self._sent = True
        return b"x" * min(size, 1000)


def test_put_and_get_bytes(store: ArtifactStore) -> None:
    data = b"hello \x00 world"
    key = store.put_bytes(data)
    assert key == key_of(data)
    assert key.startswith(f"sha256/{key[7:9]}/")
    assert store.get_bytes(key) == data
    assert store.exists(key)
    assert store.size(key) == len(data)
    with store.open(key) as f:
        assert f.read() == data


def test_empty_blob(store: ArtifactStore) -> None:
    key = store.put_bytes(b"")
    assert key == key_of(b"")
    assert store.get_bytes(key) == b""
    assert store.size(key) == 0


def test_same_bytes_same_key(store: ArtifactStore) -> None:
    first = store.put_bytes(b"same")
    second = store.put_stream(io.BytesIO(b"same"))
    assert first == second
    assert list(store.keys()) == [first]
    assert store.put_bytes(b"other") != first


def test_put_file(store: ArtifactStore, tmp_path: Path) -> None:
    path = tmp_path / "model.txt"
    path.write_bytes(b"tree\n" * 1000)
    key = store.put_file(path)
    assert key == key_of(path.read_bytes())
    assert store.get_bytes(key) == path.read_bytes()
    assert path.exists()  # the source is copied, not moved


def test_large_blob_is_streamed(store: ArtifactStore) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)
    key = store.put_stream(_Trickle(data))  # type: ignore[arg-type]
    assert key == key_of(data)
    assert store.size(key) == len(data)
    assert store.get_bytes(key) == data
    with store.open(key) as f:
        assert hashlib.sha256(f.read()).hexdigest() == key.rsplit("/", 1)[1]


def test_tampered_blob_is_refused(backend: str, store: ArtifactStore) -> None:
    key = store.put_bytes(b"weights" * 100)
    TAMPER[backend](store, key)
    with pytest.raises(UnsafeArtifact, match="does not match its digest") as info:
        store.get_bytes(key)
    assert info.value.field == "key"
    # datasets are read by path, bundles by stream: neither hands out the bad bytes
    with pytest.raises(UnsafeArtifact, match="does not match its digest"):
        store.local_path(key)
    with pytest.raises(UnsafeArtifact, match="does not match its digest"):
        store.open(key)
    assert store.get_bytes(key, verify=False) != b"weights" * 100


def test_putting_the_bytes_again_repairs_a_damaged_blob(backend: str, store: ArtifactStore) -> None:
    # The refusal above tells the user to register the model again: that must
    # replace the damaged copy, not keep it because its key already exists.
    data = b"weights" * 100
    key = store.put_bytes(data)
    TAMPER[backend](store, key)
    assert store.put_bytes(data) == key
    assert store.get_bytes(key) == data


@pytest.mark.parametrize(
    "bad",
    [
        "sha256/../../etc",
        "sha256/../../etc/passwd",
        "../" + "a" * 64,
        "/etc/passwd",
        "sha256/ab/" + "a" * 64,  # prefix does not match the digest
        "sha256/AA/" + "A" * 64,  # upper case
        "sha256/aa/" + "a" * 63,  # too short
        "sha256/aa/" + "a" * 64 + "/x",
        "md5/aa/" + "a" * 64,
        "",
        None,
    ],
)
def test_invalid_keys_are_refused(store: ArtifactStore, bad: Any) -> None:
    for call in (
        store.get_bytes,
        store.open,
        store.exists,
        store.size,
        store.delete,
        store.local_path,
    ):
        with pytest.raises(InvalidInput, match="invalid artifact key") as info:
            call(bad)
        assert info.value.field == "key"


def test_missing_key_is_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    key = key_of(b"never stored")
    assert not store.exists(key)
    for call in (store.get_bytes, store.open, store.size, store.local_path):
        with pytest.raises(NotFound, match=key) as info:
            call(key)
        assert isinstance(info.value, KeyError)
        # API callers read it: no server paths or addresses
        places = [str(tmp_path), str(getattr(store, "cache_dir", tmp_path)), "http"]
        assert not any(place in str(info.value) for place in places)


def test_delete(store: ArtifactStore) -> None:
    keep = store.put_bytes(b"keep")
    gone = store.put_bytes(b"gone")
    store.delete(gone)
    assert not store.exists(gone)
    assert store.exists(keep)
    store.delete(gone)  # absent keys are ignored
    assert list(store.keys()) == [keep]
    assert store.put_bytes(b"gone") == gone  # and it can be stored again
    assert store.get_bytes(gone) == b"gone"


def test_keys(store: ArtifactStore) -> None:
    assert list(store.keys()) == []
    keys = {store.put_bytes(bytes([i]) * (i + 1)) for i in range(5)}
    assert sorted(store.keys()) == sorted(keys)


def test_local_path(store: ArtifactStore) -> None:
    data = b"read me from disk"
    key = store.put_bytes(data)
    path = store.local_path(key)
    assert isinstance(path, Path)
    assert path.read_bytes() == data
    assert store.local_path(key).read_bytes() == data


def test_failed_stream_leaves_nothing(backend: str, store: ArtifactStore) -> None:
    with pytest.raises(OSError, match="connection reset"):
        store.put_stream(_Broken())  # type: ignore[arg-type]
    assert list(store.keys()) == []
    if isinstance(store, LocalArtifactStore):
        leftovers = [p for p in store.root.rglob("*") if p.is_file()]
        assert leftovers == []
    if backend == "s3":
        assert not any(p.is_file() for p in store.cache_dir.rglob("*"))  # type: ignore[attr-defined]


def test_local_blobs_are_read_only(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    key = store.put_bytes(b"frozen")
    mode = store.local_path(key).stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert not any((tmp_path / "artifacts" / "tmp").iterdir())


def test_local_store_from_uri(tmp_path: Path) -> None:
    store = LocalArtifactStore.from_uri((tmp_path / "a b" / "artifacts").as_uri())
    assert store.root == tmp_path / "a b" / "artifacts"
    assert store.root.is_dir()
    key = store.put_bytes(b"x")
    assert LocalArtifactStore.from_uri(store.uri).get_bytes(key) == b"x"


def test_local_store_removes_what_a_crashed_writer_left(tmp_path: Path) -> None:
    import os
    import time

    from leptonic.storage.artifacts.local import STALE_TMP_S

    root = tmp_path / "artifacts"
    LocalArtifactStore(root)
    old, fresh = root / "tmp" / "put-crashed", root / "tmp" / "put-writing"
    old.write_bytes(b"half")
    fresh.write_bytes(b"half")
    then = time.time() - STALE_TMP_S - 60
    os.utime(old, (then, then))
    LocalArtifactStore(root)  # the next process to open the store
    assert not old.exists() and fresh.exists()  # another process may still be writing that
