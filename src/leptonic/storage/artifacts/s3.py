"""Artifacts in an S3-compatible bucket: ``s3://bucket/prefix``.

The URI names the bucket and an optional key prefix; its query may set
``endpoint`` (MinIO, Ceph, R2... e.g. ``?endpoint=http://minio:9000``),
``region`` and ``cache`` (a local folder, default ``~/.cache/leptonic/s3``)::

    LEPTONIC_ARTIFACTS='s3://ml-artifacts/leptonic?endpoint=http://minio:9000&region=us-east-1'

Credentials never go in the URI: boto3 reads them as usual (the
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` variables, ``~/.aws``, an
instance role). The bucket must exist; opening the store checks that it can
be reached.

Blobs are stored under ``<prefix>/sha256/<2 hex>/<64 hex>`` with their digest
in the object's metadata. An upload is one S3 object write (a single PUT, or a
multipart upload completed at the end), so a key never shows half-written
bytes, and a stream that fails is never uploaded: it is spooled to a local
file first, as its key is only known once it has been read. Putting bytes that
are already stored skips the upload unless the stored object lost its digest
or its size, which is how an object overwritten by another tool is repaired.

``open`` and ``local_path`` read a local copy: the first call downloads the
blob into the cache folder, checking its digest on the way, and later calls
reuse it while the bucket still holds the blob. Cached copies are named by
digest, so stores on several buckets can share one cache. ``get_bytes`` reads
the bucket directly.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NoReturn
from urllib.parse import parse_qs, urlsplit

from leptonic.errors import ConfigError, MissingExtra, NotFound, StoreError
from leptonic.storage.artifacts.base import (
    CHUNK_SIZE,
    ArtifactStore,
    digest_file,
    digest_mismatch,
    key_for_digest,
    validate_key,
)

__all__ = ["S3ArtifactStore"]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_QUERY = ("endpoint", "region", "cache")
_DIGEST_META = "sha256"
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def _missing(key: str) -> NotFound:
    return NotFound(
        f"artifact {key} not found in the S3 artifact store; it was deleted or never "
        "stored here (check LEPTONIC_ARTIFACTS)",
        field="key",
    )


def _default_cache() -> Path:
    return Path.home() / ".cache" / "leptonic" / "s3"


class S3ArtifactStore(ArtifactStore):
    """Content-addressed objects in ``bucket`` under ``prefix``.

    Parameters
    ----------
    bucket
        An existing bucket.
    prefix
        Key prefix inside the bucket (``""`` for the bucket's root).
    endpoint_url
        The S3 API's address for stores other than AWS; boto3's default
        (``AWS_ENDPOINT_URL`` or AWS itself) when omitted.
    region
        The bucket's region; boto3's default when omitted.
    cache_dir
        Local folder for downloaded copies.
    client
        An already configured boto3 S3 client (the other connection
        settings are then ignored).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        client: Any = None,
    ) -> None:
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise ConfigError(
                f"invalid S3 bucket name {bucket!r}: use 3 to 63 lower-case letters, digits, "
                "dots or hyphens, e.g. s3://ml-artifacts/leptonic"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._base = f"{self.prefix}/sha256/" if self.prefix else "sha256/"
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache()
        self._tmp = self.cache_dir / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise MissingExtra("boto3", "s3", "the S3 artifact store") from None
        self._client_error = ClientError
        self._boto_error = BotoCoreError
        self._transfer = TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=64 << 20)
        self._client = client or boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(connect_timeout=10, retries={"mode": "standard", "max_attempts": 3}),
        )
        try:
            self._client.head_bucket(Bucket=bucket)
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "open the bucket")

    @classmethod
    def from_uri(cls, uri: str) -> S3ArtifactStore:
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigError(
                f"invalid artifact URI {uri!r}: expected s3://bucket[/prefix], "
                "e.g. s3://ml-artifacts/leptonic?endpoint=http://minio:9000"
            )
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - set(_QUERY))
        if unknown or any(len(v) != 1 or not v[0] for v in query.values()):
            raise ConfigError(
                f"invalid artifact URI {uri!r}: the query may set each of "
                f"{', '.join(_QUERY)} once, with a value"
                + (f" (unknown: {', '.join(unknown)})" if unknown else "")
            )
        options = {name: values[0] for name, values in query.items()}
        return cls(
            parts.netloc,
            parts.path,
            endpoint_url=options.get("endpoint"),
            region=options.get("region"),
            cache_dir=Path(options["cache"]).expanduser() if "cache" in options else None,
        )

    # --- errors ----------------------------------------------------------

    def _code(self, exc: BaseException) -> str:
        if isinstance(exc, self._client_error):
            return str(exc.response.get("Error", {}).get("Code", ""))
        return ""

    def _fail(self, exc: BaseException, doing: str, key: str | None = None) -> NoReturn:
        """Raise the domain error for a failed S3 call (never its address)."""
        code = self._code(exc)
        if key is not None and code in _NOT_FOUND:
            raise _missing(key) from None
        if code in ("NoSuchBucket",) or (key is None and code in _NOT_FOUND):
            hint = f"the bucket {self.bucket!r} does not exist; create it or fix LEPTONIC_ARTIFACTS"
        elif code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            hint = (
                f"access to the bucket {self.bucket!r} was refused ({code}); check the "
                "credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or ~/.aws) and the "
                "bucket's policy"
            )
        elif code:
            hint = f"S3 answered {code}"
        else:
            hint = (
                f"{type(exc).__name__}; check that the S3 endpoint is reachable and the "
                "credentials are set"
            )
        raise StoreError(f"could not {doing} in the S3 artifact store: {hint}") from exc

    # --- keys and cache --------------------------------------------------

    def _object(self, key: str) -> str:
        return self._base + key[len("sha256/") :]

    def _cached(self, digest: str) -> Path:
        return self.cache_dir / "sha256" / digest[:2] / digest

    def _stat(self, key: str) -> dict[str, Any] | None:
        """The object's HEAD answer, or None when the bucket does not hold it."""
        try:
            head: dict[str, Any] = self._client.head_object(
                Bucket=self.bucket, Key=self._object(key)
            )
        except self._client_error as exc:
            if self._code(exc) in _NOT_FOUND:
                return None
            self._fail(exc, "check a blob")
        except self._boto_error as exc:
            self._fail(exc, "check a blob")
        return head

    def _head(self, key: str) -> dict[str, Any]:
        head = self._stat(key)
        if head is None:
            raise _missing(key)
        return head

    def _stored_already(self, key: str, size: int) -> bool:
        head = self._stat(key)
        meta = (head or {}).get("Metadata") or {}
        return bool(
            head is not None
            and head.get("ContentLength") == size
            and meta.get(_DIGEST_META) == key[-64:]
        )

    # --- writing ---------------------------------------------------------

    def _upload(self, path: Path, key: str) -> None:
        if self._stored_already(key, path.stat().st_size):
            return
        try:
            self._client.upload_file(
                str(path),
                self.bucket,
                self._object(key),
                ExtraArgs={"Metadata": {_DIGEST_META: key[-64:]}},
                Config=self._transfer,
            )
        except (self._client_error, self._boto_error) as exc:
            self._fail(exc, "store a blob")

    def put_stream(self, stream: BinaryIO) -> str:
        h = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK_SIZE):
                    h.update(chunk)
                    out.write(chunk)
            key = key_for_digest(h.hexdigest())
            self._upload(tmp, key)
            # The spooled bytes are the blob: keep them as its local copy.
            self._keep(tmp, h.hexdigest())
            return key
        finally:
            tmp.unlink(missing_ok=True)

    def put_file(self, path: str | os.PathLike[str]) -> str:
        key = key_for_digest(digest_file(path))
        self._upload(Path(path), key)
        return key

    def _keep(self, tmp: Path, digest: str) -> None:
        dest = self._cached(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, dest)

    # --- reading ---------------------------------------------------------

    def _download(self, key: str, digest: str) -> Path:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._object(key))["Body"]
        except (self._client_error, self._boto_error) as exc:
            self._fail(exc, "read", key)
        h = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="get-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, body:
                for chunk in body.iter_chunks(CHUNK_SIZE):
                    h.update(chunk)
                    out.write(chunk)
            if h.hexdigest() != digest:
                raise digest_mismatch(key)
            self._keep(tmp, digest)
        except self._boto_error as exc:
            self._fail(exc, "read", key)
        finally:
            tmp.unlink(missing_ok=True)
        return self._cached(digest)

    def local_path(self, key: str) -> Path:
        digest = validate_key(key)
        size = self._head(key).get("ContentLength")
        cached = self._cached(digest)
        try:
            if cached.stat().st_size == size:
                return cached
        except FileNotFoundError:
            pass
        return self._download(key, digest)

    def open(self, key: str) -> BinaryIO:
        return open(self.local_path(key), "rb")

    def get_bytes(self, key: str, *, verify: bool = True) -> bytes:
        digest = validate_key(key)
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._object(key))["Body"]
            with body:
                data: bytes = body.read()
        except (self._client_error, self._boto_error) as exc:
            self._fail(exc, "read", key)
        if verify and hashlib.sha256(data).hexdigest() != digest:
            raise digest_mismatch(key)
        return data

    def exists(self, key: str) -> bool:
        validate_key(key)
        return self._stat(key) is not None

    def size(self, key: str) -> int:
        validate_key(key)
        return int(self._head(key)["ContentLength"])

    def delete(self, key: str) -> None:
        digest = validate_key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._object(key))
        except (self._client_error, self._boto_error) as exc:
            self._fail(exc, "delete a blob")
        self._cached(digest).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        pattern = re.compile(re.escape(self._base) + r"([0-9a-f]{2})/([0-9a-f]{64})")
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._base
        )
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    m = pattern.fullmatch(item["Key"])
                    if m is not None and m.group(2).startswith(m.group(1)):
                        yield key_for_digest(m.group(2))
        except (self._client_error, self._boto_error) as exc:
            self._fail(exc, "list blobs")
