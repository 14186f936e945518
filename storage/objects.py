"""The object store: S3 through the ``minio`` SDK, and only here.

Keys (DESIGN.md):
  ``originals/{sha256}``                          the uploaded bytes, never rewritten
  ``derived/{sha256}/{step}-{version}/{name}``    outputs of pipeline steps

Every write is one PUT of the whole object, so a reader sees the old object or
the new one, never half of it. Transient failures (connection refused, 5xx)
raise :class:`ObjectStoreUnavailableError` so callers can retry or answer 503.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from datetime import timedelta

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.sse import SseS3
from minio.sseconfig import Rule, SSEConfig

from storage.errors import ObjectNotFoundError, ObjectStoreUnavailableError

log = logging.getLogger(__name__)

_MISSING_CODES = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}


def original_key(sha256: str) -> str:
    """Key of an uploaded original."""
    return f"originals/{sha256}"


def derived_key(sha256: str, step: str, version: str, name: str) -> str:
    """Key of a step's output for an input hash, a step name and its version."""
    return f"derived/{sha256}/{step}-{version}/{name}"


@dataclass(frozen=True)
class S3Config:
    """Where the object store is and how to reach it."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    secure: bool = False
    region: str = "us-east-1"
    presign_seconds: int = 300
    #: Ask for server-side encryption with the server's key (SSE-S3, ``AES256``) on
    #: every PUT, and make it the bucket's default when the bucket is created.
    sse: bool = False


@dataclass(frozen=True)
class ObjectInfo:
    """What ``stat`` tells about an object."""

    key: str
    size: int
    etag: str
    content_type: str
    metadata: dict[str, str]


class ObjectStore:
    """A bucket on an S3 server."""

    def __init__(self, config: S3Config, *, timeout: float = 10.0) -> None:
        self.config = config
        # Short timeouts and few retries: an S3 outage must turn into a quick 503,
        # not a request that hangs for minutes.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(timeout, 3.0), read=timeout),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(502, 503, 504)),
            maxsize=16,
        )
        self.client = Minio(
            config.endpoint,
            access_key=config.access_key,
            secret_key=config.secret_key,
            secure=config.secure,
            region=config.region,
            http_client=http,
        )
        self.bucket = config.bucket
        self._sse = SseS3() if config.sse else None

    # -- errors ---------------------------------------------------------------------------
    def _wrap(self, exc: Exception, key: str) -> Exception:
        if isinstance(exc, S3Error):
            if exc.code in _MISSING_CODES:
                return ObjectNotFoundError(key)
            if exc.code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                return ObjectStoreUnavailableError(f"object store refused access: {exc.code}")
            return ObjectStoreUnavailableError(f"object store error {exc.code}")
        return ObjectStoreUnavailableError(f"object store unreachable: {type(exc).__name__}")

    # -- bucket ---------------------------------------------------------------------------
    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (idempotent, safe to race)."""
        try:
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket, location=self.config.region)
                except S3Error as exc:
                    if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
                if self.config.sse:
                    # Default encryption too, so that objects written by other tools
                    # (a restore with rclone, an operator's copy) are encrypted as well.
                    self.client.set_bucket_encryption(
                        self.bucket, SSEConfig(Rule.new_sse_s3_rule())
                    )
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._wrap(exc, self.bucket) from exc

    def ping(self) -> bool:
        """True when the bucket answers."""
        try:
            return bool(self.client.bucket_exists(self.bucket))
        except (S3Error, urllib3.exceptions.HTTPError, OSError):
            return False

    # -- objects --------------------------------------------------------------------------
    def put_bytes(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Write a whole object in one PUT."""
        try:
            self.client.put_object(
                self.bucket,
                key,
                io.BytesIO(data),
                length=len(data),
                content_type=content_type,
                metadata=metadata or None,  # type: ignore[arg-type]
                sse=self._sse,
            )
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._wrap(exc, key) from exc

    def put_if_absent(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> bool:
        """Write an object only if no object has that key; True when written.

        Content-addressed keys make a second write of the same bytes useless work.
        """
        if self.stat(key) is not None:
            return False
        self.put_bytes(key, data, content_type)
        return True

    def get_bytes(self, key: str) -> bytes:
        """Read a whole object."""
        try:
            resp = self.client.get_object(self.bucket, key)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._wrap(exc, key) from exc

    def sha256(self, key: str, chunk: int = 1 << 20) -> tuple[str, int]:
        """SHA-256 (hex) and size of an object, read as a stream (no whole copy in memory)."""
        digest = hashlib.sha256()
        size = 0
        try:
            resp = self.client.get_object(self.bucket, key)
            try:
                for block in resp.stream(chunk):
                    digest.update(block)
                    size += len(block)
            finally:
                resp.close()
                resp.release_conn()
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._wrap(exc, key) from exc
        return digest.hexdigest(), size

    def stat(self, key: str) -> ObjectInfo | None:
        """Metadata of an object, or None when it does not exist."""
        try:
            st = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                return None
            raise self._wrap(exc, key) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._wrap(exc, key) from exc
        meta = {k.lower(): v for k, v in (st.metadata or {}).items()}
        return ObjectInfo(
            key=key,
            size=int(st.size or 0),
            etag=str(st.etag or ""),
            content_type=str(st.content_type or ""),
            metadata=meta,
        )

    def exists(self, key: str) -> bool:
        """True when an object has that key."""
        return self.stat(key) is not None

    def list_keys(self, prefix: str) -> list[str]:
        """Keys under a prefix, recursively."""
        try:
            return [
                o.object_name
                for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
                if o.object_name
            ]
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._wrap(exc, prefix) from exc

    def delete(self, key: str) -> None:
        """Delete a derived object (originals are never deleted by the pipeline)."""
        if key.startswith("originals/"):
            raise ValueError("originals are never deleted by the service")
        try:
            self.client.remove_object(self.bucket, key)
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._wrap(exc, key) from exc

    def presigned_get(self, key: str, seconds: int | None = None) -> str:
        """A short-lived GET link to an object."""
        expires = timedelta(seconds=seconds or self.config.presign_seconds)
        try:
            return self.client.presigned_get_object(self.bucket, key, expires=expires)
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._wrap(exc, key) from exc
