"""The composition root: adapters built from settings, in one place."""

from __future__ import annotations

from digitizer.config import Settings
from digitizer.services.citizens import CitizenRegistry
from digitizer.services.secrets import derive_keys, master_secret
from storage.objects import ObjectStore, S3Config


def object_store(settings: Settings) -> ObjectStore:
    """The configured object store (bucket not created here; see ``ensure_bucket``)."""
    s3 = settings.s3
    return ObjectStore(
        S3Config(
            endpoint=s3.endpoint,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            bucket=s3.bucket,
            secure=s3.secure,
            region=s3.region,
            presign_seconds=s3.presign_seconds,
            sse=s3.sse,
        )
    )


def citizen_registry(settings: Settings) -> CitizenRegistry:
    """Citizen registry with keys derived from the master secret."""
    return CitizenRegistry(derive_keys(master_secret(settings)))
