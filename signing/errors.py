"""Errors of the signing package, each with a stable problem slug.

Same shape as ``digitizer.errors`` (``slug``, ``title``, ``status``, ``detail``, ``extra``) without
importing it: ``signing`` depends on pyHanko only, and the API maps these to RFC 9457 problems.

Verification never raises for a bad document: an invalid, unverifiable or unreadable file is a
*verdict* (``signing.validator.Report``). These errors mean "could not do the job": a key that
cannot be loaded, a TSA that does not answer, a trust store that is misconfigured.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SigningError(Exception):
    """Base of all errors of the signing package."""

    slug: ClassVar[str] = "signing-failed"
    title: ClassVar[str] = "The document could not be signed"
    status: ClassVar[int] = 500

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @classmethod
    def type_uri(cls) -> str:
        """The stable problem type of this error."""
        return f"/problems/{cls.slug}"


class SigningConfigError(SigningError):
    """A signing or validation configuration is wrong (a path, a label, a policy value)."""

    slug = "signing-misconfigured"
    title = "Signing is misconfigured"
    status = 500


class KeyUnavailableError(SigningError):
    """The office's key cannot be used now: missing file, wrong passphrase/PIN, token absent."""

    slug = "signing-key-unavailable"
    title = "The office's signing key is unavailable"
    status = 503


class UnknownOfficeError(SigningConfigError):
    """No key is configured for the office."""

    slug = "signing-office-unknown"
    title = "No signing key is configured for this office"
    status = 404


class CertificateNotUsableError(SigningError):
    """The signing certificate is expired, revoked or untrusted, so the signature would be
    worthless; refusing beats issuing an e-copy that fails verification."""

    slug = "signing-certificate-not-usable"
    title = "The office's signing certificate cannot be used"
    status = 409


class TimestampUnavailableError(SigningError):
    """The time-stamping authority did not answer or answered with an error."""

    slug = "timestamp-unavailable"
    title = "The time-stamping service is unavailable"
    status = 503


class RevocationInfoUnavailableError(SigningError):
    """OCSP/CRL could not be fetched while embedding validation data (B-LT/B-LTA)."""

    slug = "revocation-info-unavailable"
    title = "Certificate status could not be checked"
    status = 503


class UnsignableDocumentError(SigningError):
    """The input cannot be signed: not a PDF, damaged, encrypted, or its certification
    signature forbids further changes."""

    slug = "document-not-signable"
    title = "The document cannot be signed"
    status = 422


class TrustStoreError(SigningConfigError):
    """The trust store directory is missing, empty or holds unreadable certificates."""

    slug = "trust-store-invalid"
    title = "The trust store is invalid"
    status = 500
