"""What the S3 artifact store adds to the conformance suite: its URI, its errors,
its local copies and multipart uploads."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from leptonic.errors import ConfigError, NotFound, StoreError
from leptonic.storage.artifacts.base import key_for_digest
from leptonic.storage.registry import open_artifact_store

pytest.importorskip("boto3", reason="the S3 artifact store needs the s3 extra")

from leptonic.storage.artifacts.s3 import S3ArtifactStore


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
    with pytest.raises(StoreError, match="endpoint is reachable"):
        open_artifact_store("s3://some-bucket?endpoint=http://127.0.0.1:1")


def test_open_gives_a_seekable_local_copy(store: S3ArtifactStore) -> None:
    data = os.urandom(100_000)
    key = store.put_bytes(data)
    with store.open(key) as f:
        f.seek(50_000)
        assert f.read(10) == data[50_000:50_010]


def test_local_copy_is_downloaded_once_and_checked(store: S3ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(300_000))
    key = store.put_file(source)  # a file is uploaded from where it is: no local copy yet
    cached = store.cache_dir / "sha256" / key[7:9] / key[10:]
    assert not cached.exists()
    path = store.local_path(key)
    assert path == cached and path.read_bytes() == source.read_bytes()
    first = path.stat().st_ino
    assert store.local_path(key).stat().st_ino == first  # reused, not fetched again
    assert not any((store.cache_dir / "tmp").iterdir())


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
