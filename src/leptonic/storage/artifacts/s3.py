"""Artifacts in an S3-compatible bucket: ``s3://bucket/prefix``.

The URI names the bucket and an optional key prefix; its query may set
``endpoint`` (MinIO, Ceph, R2... e.g. ``?endpoint=http://minio:9000``),
``region``, ``cache`` (a local folder, default ``~/.cache/leptonic/s3``) and
``cache_max`` (the most the cache may hold, e.g. ``?cache_max=20G``)::

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
reuse it while the bucket still holds the blob (a copy this process did not
write or check itself is hashed once before it is trusted). Cached copies are
named by digest, so stores on several buckets can share one cache; they are
readable by their owner only. Without ``cache_max`` they are kept until the
blob is deleted through the store. With it, each new copy is followed by
removing the least recently used ones until the cache holds at most
``cache_max`` bytes (digits with an optional ``K``, ``M``, ``G`` or ``T``:
binary units), except copies used in the last ``CACHE_GRACE_S`` seconds (a
caller may still be reading a path it was given): the cache can then exceed
the limit for a while. A removed copy is downloaded again when next needed.
``get_bytes`` reads the bucket directly.

Uploads of more than 64 MiB are multipart; a killed process can leave parts
behind, which a bucket lifecycle rule (``AbortIncompleteMultipartUpload``)
removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NoReturn
from urllib.parse import parse_qs, unquote, urlsplit

from leptonic.errors import ConfigError, MissingExtra, NotFound, StoreError
from leptonic.storage.artifacts.base import (
    ArtifactStore,
    VerifiedFiles,
    digest_mismatch,
    key_for_digest,
    spool,
    validate_key,
)

__all__ = ["CACHE_GRACE_S", "S3ArtifactStore", "parse_size"]

#: Seconds after its last use during which a cached copy is never removed to make room.
CACHE_GRACE_S = 600.0

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_QUERY = ("endpoint", "region", "cache", "cache_max")
_SIZE = re.compile(r"^(\d+)\s*([KMGT]?)(?:i?B)?$", re.IGNORECASE)


def parse_size(text: str, name: str = "cache_max") -> int:
    """Bytes of a size written as digits with an optional binary unit: ``512M``, ``20G``,
    ``20GiB``, ``1048576``. :class:`ConfigError` naming ``name`` otherwise."""
    m = _SIZE.fullmatch(text.strip())
    if m is None or int(m.group(1)) <= 0:
        raise ConfigError(
            f"invalid {name} {text!r} in the artifact URI: give a size above 0 in bytes "
            "with an optional K, M, G or T (binary units), e.g. ?cache_max=20G"
        )
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2).upper() or " "))


_DIGEST_META = "sha256"
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_REFUSED = {
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}
_ELSEWHERE = {
    "301",
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
}


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
    cache_max
        The most the cache may hold in bytes (None: no limit); see above.
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
        cache_max: int | None = None,
        client: Any = None,
    ) -> None:
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise ConfigError(
                f"invalid S3 bucket name {bucket!r}: use 3 to 63 lower-case letters, digits, "
                "dots or hyphens, e.g. s3://ml-artifacts/leptonic"
            )
        if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
            raise ConfigError(
                "invalid S3 endpoint in the artifact URI: give its scheme, e.g. "
                "?endpoint=http://minio:9000"
            )
        self.bucket = bucket
        self.prefix = "/".join(p for p in prefix.split("/") if p)
        self._base = f"{self.prefix}/sha256/" if self.prefix else "sha256/"
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        if cache_max is not None and (
            isinstance(cache_max, bool) or not isinstance(cache_max, int) or cache_max <= 0
        ):
            raise ConfigError(f"cache_max must be a number of bytes above 0, got {cache_max!r}")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache()
        self.cache_max = cache_max
        self._tmp = self.cache_dir / "tmp"
        self._tempdir()
        # Copies whose bytes this process checked (hashed again once they change).
        self._verified_files = VerifiedFiles()
        # Blobs whose stored bytes failed a check here: the next put uploads again.
        self._damaged: set[str] = set()
        self._lock = threading.Lock()
        try:
            import boto3
            from boto3.exceptions import S3UploadFailedError
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise MissingExtra("boto3", "s3", "the S3 artifact store") from None
        self._client_error = ClientError
        self._boto_error = BotoCoreError
        self._upload_error = S3UploadFailedError
        self._transfer = TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=64 << 20)
        if client is None:
            options: dict[str, Any] = {
                "connect_timeout": 10,
                "retries": {"mode": "standard", "max_attempts": 3},
            }
            if endpoint_url is not None:
                # Checksums only where S3 requires them: several S3-compatible
                # stores refuse the newer default trailers.
                options["request_checksum_calculation"] = "when_required"
                options["response_checksum_validation"] = "when_required"
            try:
                client = boto3.session.Session().client(
                    "s3", endpoint_url=endpoint_url, region_name=region, config=Config(**options)
                )
            except (ValueError, BotoCoreError) as exc:
                raise ConfigError(
                    f"cannot set up the S3 client for the artifact URI ({type(exc).__name__}); "
                    "check its endpoint and region, and AWS_PROFILE if set"
                ) from None
        self._client = client
        try:
            self._client.head_bucket(Bucket=bucket)
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "open the bucket")

    @classmethod
    def from_uri(cls, uri: str) -> S3ArtifactStore:
        try:
            parts = urlsplit(uri)
        except ValueError:  # an unmatched "["
            parts = urlsplit("invalid://")
        if parts.scheme != "s3" or not parts.netloc or parts.fragment:
            raise ConfigError(
                f"invalid artifact URI {uri!r}: expected s3://bucket[/prefix][?query], "
                "e.g. s3://ml-artifacts/leptonic?endpoint=http://minio:9000"
            )
        # query values are percent-encoded; a literal '+' stays a '+'
        query = parse_qs(parts.query.replace("+", "%2B"), keep_blank_values=True)
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
            unquote(parts.path),
            endpoint_url=options.get("endpoint"),
            region=options.get("region"),
            cache_dir=Path(options["cache"]).expanduser() if "cache" in options else None,
            cache_max=parse_size(options["cache_max"]) if "cache_max" in options else None,
        )

    # --- errors ----------------------------------------------------------

    def _code(self, exc: BaseException) -> str:
        if isinstance(exc, self._upload_error) and exc.__context__ is not None:
            exc = exc.__context__  # boto3 raises it while handling the S3 error
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
        elif code in _REFUSED:
            hint = (
                f"access to the bucket {self.bucket!r} was refused ({code}); check the "
                "credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or ~/.aws) and that "
                "the bucket's policy allows s3:ListBucket, s3:GetObject, s3:PutObject and "
                "s3:DeleteObject"
            )
        elif code in _ELSEWHERE:
            hint = (
                f"the bucket {self.bucket!r} is in another region ({code}); name it in "
                "the URI, e.g. ?region=eu-west-1"
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

    def _tempdir(self) -> Path:
        """The cache's folder for files being written (made again if removed)."""
        try:
            # a cache made here is its owner's only (it holds copies of datasets)
            self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._tmp.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot use the S3 artifact cache folder ({exc.strerror}); give a writable "
                "one with ?cache=/path in LEPTONIC_ARTIFACTS"
            ) from None
        return self._tmp

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
        with self._lock:
            if key[-64:] in self._damaged:
                return False
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
        except (self._client_error, self._boto_error, self._upload_error) as exc:
            self._fail(exc, "store a blob")
        with self._lock:
            self._damaged.discard(key[-64:])

    def put_stream(self, stream: BinaryIO) -> str:
        # Spooled first, also for a file: the key names exactly the bytes uploaded,
        # whatever happens to the source meanwhile.
        tmp, digest = spool(stream, self._tempdir(), "put-")
        try:
            key = key_for_digest(digest)
            self._upload(tmp, key)
            # The spooled bytes are the blob: keep them as its local copy.
            self._keep(tmp, digest)
            return key
        finally:
            tmp.unlink(missing_ok=True)

    def _keep(self, tmp: Path, digest: str) -> None:
        """Move a file whose bytes hash to ``digest`` (fsynced) into the cache."""
        dest = self._cached(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o400)
        self._used(tmp)  # used now, however long the download took
        os.replace(tmp, dest)
        self._verified_files.trust(dest, digest)
        if self.cache_max is not None:
            self._make_room(keep=dest)

    def _make_room(self, keep: Path) -> None:
        """Remove the least recently used copies (not ``keep``, none used in the last
        ``CACHE_GRACE_S`` seconds) until the cache holds at most ``cache_max`` bytes.
        Other processes sharing the folder may remove the same copies: a copy already
        gone is skipped."""
        assert self.cache_max is not None
        copies: list[tuple[float, int, Path]] = []
        for path in (self.cache_dir / "sha256").glob("??/*"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            copies.append((st.st_atime, st.st_size, path))
        total = sum(size for _, size, _ in copies)
        recent = time.time() - CACHE_GRACE_S
        for used, size, path in sorted(copies, key=lambda c: c[0]):
            if total <= self.cache_max:
                break
            if used >= recent or path == keep:
                continue
            path.unlink(missing_ok=True)
            self._verified_files.forget(path.name)
            total -= size

    @staticmethod
    def _used(cached: Path) -> None:
        """Mark a cached copy as used now: its access time is the cache's recency (its
        modification time, part of what a check remembers, is left as it is)."""
        with contextlib.suppress(OSError):  # removed meanwhile, or another user's folder
            os.utime(cached, ns=(time.time_ns(), cached.stat().st_mtime_ns))

    # --- reading ---------------------------------------------------------

    def _mismatch(self, key: str) -> NoReturn:
        with self._lock:
            self._damaged.add(key[-64:])
        raise digest_mismatch(key)

    def _download(self, key: str, digest: str) -> Path:
        folder = self._tempdir()
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._object(key))["Body"]
            with body:
                tmp, got = spool(body, folder, "get-")
        except (self._client_error, self._boto_error) as exc:
            self._fail(exc, "read", key)
        try:
            if got != digest:
                self._mismatch(key)
            self._keep(tmp, digest)
        finally:
            tmp.unlink(missing_ok=True)
        return self._cached(digest)

    def local_path(self, key: str) -> Path:
        digest = validate_key(key)
        size = int(self._head(key)["ContentLength"])
        cached = self._cached(digest)
        # marked used first: a process making room leaves it alone while it is checked
        # (also without cache_max here: another process may share the folder with one)
        self._used(cached)
        if self._verified_files.matches(cached, digest, size) and cached.exists():
            return cached
        return self._download(key, digest)

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.local_path(key), "rb")
        except FileNotFoundError:  # the copy was removed meanwhile (a delete elsewhere)
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
            self._mismatch(key)
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
        self._verified_files.forget(digest)

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
