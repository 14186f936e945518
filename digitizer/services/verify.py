"""Verifying signed PDFs: validation contexts built once, reports in Vietnamese.

pyHanko validation contexts are not thread-safe, so each thread (a request in
FastAPI's threadpool, a worker process) gets its own pool; within a pool one
context is reused for a batch and rebuilt when it ages (``signing.pki``).
"""

from __future__ import annotations

import threading
from pathlib import Path

from digitizer.config import Settings
from digitizer.errors import ServiceUnavailableError
from signing.pki import RevocationPolicy, ValidationConfig, ValidationContextPool, load_trust_store
from signing.validator import Report, ValidateOptions, validate


def validation_config(settings: Settings) -> ValidationConfig:
    """The signing section as the library's frozen config.

    Raises:
        ServiceUnavailableError: no trust store is configured.
    """
    sig = settings.signing
    if sig.trust_store_dir is None:
        raise ServiceUnavailableError(
            "signature verification is not configured: set SOHOA_SIGNING__TRUST_STORE_DIR"
        )
    return ValidationConfig(
        trust_store_dir=Path(sig.trust_store_dir),
        intermediates_dir=Path(sig.intermediates_dir) if sig.intermediates_dir else None,
        revocation=RevocationPolicy(sig.revocation),
        allow_fetching=sig.allow_fetching,
    )


class VerifyService:
    """Validates PDFs against the configured trust store."""

    def __init__(self, settings: Settings) -> None:
        self.config = validation_config(settings)
        self.trust = load_trust_store(self.config.trust_store_dir, self.config.intermediates_dir)
        self._local = threading.local()

    def _pool(self) -> ValidationContextPool:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = ValidationContextPool(self.config, self.trust)
            self._local.pool = pool
        return pool

    def verify(
        self, pdf: bytes, *, document_status: str | None = None, etsi: bool = False
    ) -> Report:
        """The verdict and per-signature results of a PDF (never raises for the file)."""
        options = ValidateOptions(document_status=document_status, etsi_report=etsi)
        return validate(pdf, self._pool().get(), options)
