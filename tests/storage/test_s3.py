"""What the S3 artifact store adds to the conformance suite: its URI, its errors,
its local copies and multipart uploads."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from leptonic.errors import ConfigError, NotFound, StoreError, UnsafeArtifact
from leptonic.storage.artifacts.base import key_for_digest
from leptonic.storage.registry import open_artifact_store

pytest.importorskip("boto3", reason="the S3 artifact store needs the s3 extra")

from leptonic.storage.artifacts import s3
from leptonic.storage.artifacts.s3 import S3ArtifactStore, parse_size


@pytest.fixture
def store(s3_uri: str) -> S3ArtifactStore:
    opened = open_artifact_store(s3_uri)
    assert isinstance(opened, S3ArtifactStore)
    return opened


def _endpoint(s3_uri: str) -> str:
    return parse_qs(urlsplit(s3_uri).query)["endpoint"][0]


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("s3://", "expected s3://bucket"),
        ("s3://Upper-Case/x", "invalid S3 bucket name"),
        ("s3://ab/x", "invalid S3 bucket name"),
        ("s3://bad..name/x", "invalid S3 bucket name"),
        ("s3://fine-bucket/x?endpont=http://h:9000", "unknown: endpont"),
        ("s3://fine-bucket/x?endpoint=", "once, with a value"),
        ("s3://fine-bucket/x?region=a&region=b", "once, with a value"),
        ("s3://fine-bucket/x#part", "expected s3://bucket"),
        ("s3://fine-bucket/x?endpoint=minio:9000", "give its scheme"),
        ("s3://fine-bucket/x?endpoint=http://127.0.0.1:1&region=us%20east", "check its endpoint"),
    ],
)
def test_bad_uris_are_refused(uri: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        open_artifact_store(uri)


def test_uri_names_bucket_and_prefix(store: S3ArtifactStore, s3_uri: str) -> None:
    assert store.uri == f"s3://{store.bucket}/artifacts"
    key = store.put_bytes(b"x")
    names = [item["Key"] for item in store._client.list_objects_v2(Bucket=store.bucket)["Contents"]]
    assert names == [f"artifacts/{key}"]


def test_a_missing_bucket_is_a_clear_error(s3_uri: str) -> None:
    endpoint = _endpoint(s3_uri)
    with pytest.raises(StoreError, match="bucket 'no-such-bucket-here' does not exist") as info:
        open_artifact_store(f"s3://no-such-bucket-here?endpoint={endpoint}")
    assert endpoint not in str(info.value)  # API callers read it: no addresses


def test_an_unreachable_endpoint_is_a_clear_error(s3_uri: str) -> None:
    with pytest.raises(StoreError, match="endpoint is reachable") as info:
        open_artifact_store("s3://some-bucket?endpoint=http://127.0.0.1:1")
    assert "127.0.0.1" not in str(info.value)


def test_a_failed_upload_is_a_clear_error(store: S3ArtifactStore) -> None:
    # the bucket goes away under a running server
    store._client.delete_bucket(Bucket=store.bucket)
    try:
        with pytest.raises(StoreError, match="does not exist") as info:
            store.put_bytes(b"lost")
        assert str(store.cache_dir) not in str(info.value) and "http" not in str(info.value)
        assert not any((store.cache_dir / "tmp").iterdir())
    finally:
        store._client.create_bucket(Bucket=store.bucket)


def test_a_refused_request_names_the_fix(store: S3ArtifactStore) -> None:
    from botocore.exceptions import ClientError

    def deny(**_: object) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")

    store._client.meta.events.register("before-call.s3.PutObject", deny)
    with pytest.raises(StoreError, match=r"refused \(AccessDenied\); check the credentials"):
        store.put_bytes(b"denied")


def test_prefix_and_cache_are_read_as_written(s3_uri: str, tmp_path: Path) -> None:
    endpoint = _endpoint(s3_uri)
    bucket = urlsplit(s3_uri).netloc
    cache = tmp_path / "a+b"
    opened = open_artifact_store(
        f"s3://{bucket}//team%20a/models/?endpoint={endpoint}&cache={cache}"
    )
    assert isinstance(opened, S3ArtifactStore)
    assert opened.prefix == "team a/models" and opened.cache_dir == cache


def test_open_gives_a_seekable_local_copy(store: S3ArtifactStore) -> None:
    data = os.urandom(100_000)
    key = store.put_bytes(data)
    with store.open(key) as f:
        f.seek(50_000)
        assert f.read(10) == data[50_000:50_010]


def _other(store: S3ArtifactStore, s3_uri: str, name: str = "other") -> S3ArtifactStore:
    """A store on the same bucket with its own cache (another server)."""
    cache = f"{store.cache_dir}-{name}"
    opened = open_artifact_store(s3_uri.replace(str(store.cache_dir), cache))
    assert isinstance(opened, S3ArtifactStore)
    return opened


def _gets(store: S3ArtifactStore) -> list[str]:
    calls: list[str] = []
    store._client.meta.events.register(
        "before-call.s3.GetObject", lambda model, **_: calls.append(model.name)
    )
    return calls


def test_local_copy_is_downloaded_once_and_checked(
    store: S3ArtifactStore, s3_uri: str, tmp_path: Path
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(300_000))
    key = store.put_file(source)
    cached = store.cache_dir / "sha256" / key[7:9] / key[10:]
    assert cached.read_bytes() == source.read_bytes()  # the uploaded bytes are kept
    assert cached.stat().st_mode & 0o077 == 0  # the owner's only
    other = _other(store, s3_uri)
    gets = _gets(other)
    path = other.local_path(key)
    assert path.read_bytes() == source.read_bytes() and gets == ["GetObject"]
    first = path.stat().st_ino
    assert other.local_path(key).stat().st_ino == first and gets == ["GetObject"]  # reused
    assert not any((other.cache_dir / "tmp").iterdir())


def test_a_damaged_local_copy_is_fetched_again(store: S3ArtifactStore, s3_uri: str) -> None:
    data = os.urandom(10_000)
    key = store.put_bytes(data)
    cached = store.local_path(key)
    cached.chmod(0o600)
    cached.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])  # same size, other bytes
    # the next process hashes a copy it did not check itself
    fresh = open_artifact_store(s3_uri)
    assert isinstance(fresh, S3ArtifactStore)
    gets = _gets(fresh)
    assert fresh.local_path(key).read_bytes() == data and gets == ["GetObject"]


def test_a_tampered_object_is_refused_on_download(store: S3ArtifactStore, s3_uri: str) -> None:
    data = b"weights" * 1000
    key = store.put_bytes(data)
    name = store._object(key)
    # overwritten by another tool that copied the object's metadata too
    head = store._client.head_object(Bucket=store.bucket, Key=name)
    damaged = bytes([data[0] ^ 0xFF]) + data[1:]
    store._client.put_object(Bucket=store.bucket, Key=name, Body=damaged, Metadata=head["Metadata"])
    other = _other(store, s3_uri)
    for read in (other.local_path, other.open):
        with pytest.raises(UnsafeArtifact, match="does not match its digest"):
            read(key)
    assert not any(p.is_file() for p in other.cache_dir.rglob("*"))
    # registering again repairs it, although size and metadata still look right
    assert other.put_bytes(data) == key
    assert other.get_bytes(key) == data


def test_a_blob_deleted_elsewhere_is_not_served_from_the_cache(store: S3ArtifactStore) -> None:
    key = store.put_bytes(b"gone soon")
    assert store.local_path(key).exists()
    store._client.delete_object(Bucket=store.bucket, Key=store._object(key))
    with pytest.raises(NotFound, match=key):
        store.local_path(key)


def test_two_stores_on_one_bucket_see_the_same_blobs(store: S3ArtifactStore, s3_uri: str) -> None:
    key = store.put_bytes(b"shared")
    other_cache = Path(str(store.cache_dir) + "-other")
    other = open_artifact_store(s3_uri.replace(str(store.cache_dir), str(other_cache)))
    assert other.get_bytes(key) == b"shared"
    assert other.local_path(key).read_bytes() == b"shared"
    assert list(other.keys()) == [key]


def test_large_blobs_use_multipart_uploads(store: S3ArtifactStore) -> None:
    from boto3.s3.transfer import TransferConfig

    store._transfer = TransferConfig(  # 5 MiB parts keep the test small
        multipart_threshold=5 << 20, multipart_chunksize=5 << 20
    )
    data = os.urandom(11 << 20)
    key = store.put_stream(io.BytesIO(data))
    assert key == key_for_digest(hashlib.sha256(data).hexdigest())
    head = store._client.head_object(Bucket=store.bucket, Key=store._object(key))
    assert head["ETag"].endswith('-3"')  # three parts
    assert head["Metadata"]["sha256"] == key[-64:]
    assert store.get_bytes(key) == data
    # The same bytes again: already stored, nothing is uploaded.
    calls: list[str] = []
    store._client.meta.events.register(
        "before-call.s3.*", lambda model, **_: calls.append(model.name)
    )
    assert store.put_bytes(data) == key
    assert calls == ["HeadObject"]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1 << 20),
        ("512M", 512 << 20),
        ("20G", 20 << 30),
        ("20GiB", 20 << 30),
        ("2t", 2 << 40),
    ],
)
def test_cache_sizes_are_read_in_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0", "-5G", "20 gigabytes", "1.5G", "G"])
def test_a_bad_cache_size_is_refused(s3_uri: str, text: str) -> None:
    with pytest.raises(ConfigError, match="cache_max"):
        open_artifact_store(f"{s3_uri}&cache_max={text}")


def test_a_full_cache_drops_its_least_recently_used_copies(
    store: S3ArtifactStore, s3_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3, "CACHE_GRACE_S", 0.0)
    limited = _other(store, f"{s3_uri}&cache_max=250K", "limited")
    assert limited.cache_max == 250 << 10
    blobs = [os.urandom(100_000) for _ in range(3)]
    a, b = (limited.put_bytes(blob) for blob in blobs[:2])

    def cached(key: str) -> bool:
        return (limited.cache_dir / "sha256" / key[7:9] / key[10:]).exists()

    time.sleep(0.02)
    limited.local_path(a)  # used: b is now the least recently used
    time.sleep(0.02)
    c = limited.put_bytes(blobs[2])
    assert cached(a) and not cached(b) and cached(c)
    gets = _gets(limited)
    with limited.open(b) as f:  # downloaded again; a goes instead
        assert f.read() == blobs[1]
    assert gets == ["GetObject"] and not cached(a) and cached(b) and cached(c)


def test_copies_in_use_stay_even_over_the_limit(store: S3ArtifactStore, s3_uri: str) -> None:
    limited = _other(store, f"{s3_uri}&cache_max=150K", "busy")
    keys = [limited.put_bytes(os.urandom(100_000)) for _ in range(3)]
    assert all((limited.cache_dir / "sha256" / k[7:9] / k[10:]).exists() for k in keys)


def test_a_copy_counts_as_used_when_it_is_cached_not_when_its_download_began(
    store: S3ArtifactStore, s3_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = store.put_bytes(os.urandom(10_000))
    other = _other(store, s3_uri, "slow")
    spool = s3.spool

    def slow(*args: object, **kw: object) -> tuple[Path, str]:  # a download of an hour
        tmp, digest = spool(*args, **kw)  # type: ignore[arg-type]
        hour_ago = time.time_ns() - 3600 * 10**9
        os.utime(tmp, ns=(hour_ago, hour_ago))
        return tmp, digest

    monkeypatch.setattr(s3, "spool", slow)
    before = time.time()
    path = other.local_path(key)
    assert path.stat().st_atime >= before - 1  # not the first to go when room is made
