"""Detached CMS (CAdES) signatures over arbitrary bytes, e.g. the manifest of a vault export.

A receiving system checks that the bytes were signed by an office it trusts and were not
changed since. With a TSA the signature carries a signature timestamp (CAdES-T), which
proves when it was made.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from asn1crypto import cms
from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
from pyhanko_certvalidator import ValidationContext

from signing.errors import SigningError
from signing.pki import LoadedKey
from signing.signer import TimestampConfig, _timestamper, run_sync

#: Digest used for new signatures.
DIGEST = "sha256"


def sign_detached(data: bytes, key: LoadedKey, tsa: TimestampConfig | None = None) -> bytes:
    """A DER-encoded CMS ``SignedData`` (detached) over ``data`` with ``key``."""

    async def sign() -> cms.ContentInfo:
        timestamper = _timestamper(tsa, None) if tsa is not None else None
        return await key.signer.async_sign_general_data(
            data, DIGEST, detached=True, use_cades=True, timestamper=timestamper
        )

    try:
        return bytes(run_sync(sign).dump())
    except (ValueError, OSError) as exc:
        raise SigningError(f"the detached signature could not be made: {exc}") from exc


@dataclasses.dataclass(frozen=True)
class DetachedStatus:
    """What validating a detached signature found.

    Attributes:
        intact: the signed digest matches ``data``.
        valid: the signature value is cryptographically valid for the signer's key.
        trusted: the signer's certificate chains to a trusted root and is not revoked
            (only checked with a validation context; False without one).
        signer: the signer certificate's subject, human-readable.
        signing_time: the signing time the signer claimed, if any.
        timestamped: a signature timestamp from a TSA is attached.
        problem: why it is not intact/valid/trusted, if it is not.
    """

    intact: bool
    valid: bool
    trusted: bool
    signer: str | None
    signing_time: datetime | None
    timestamped: bool
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.intact and self.valid and self.trusted and self.problem is None


def validate_detached(
    data: bytes, signature: bytes, context: ValidationContext | None
) -> DetachedStatus:
    """Validate ``signature`` (DER CMS) over ``data``; never raises for a bad signature.

    A signature timestamp, when present, must be intact, valid and trusted too. The
    context's fetchers are released at the end (the context can be used again).
    """
    try:
        info = cms.ContentInfo.load(signature)
        if info["content_type"].native != "signed_data":
            raise ValueError("not a CMS SignedData")
        signed_data = info["content"]
        _ = signed_data.native  # parse everything now: a damaged structure fails here
    except (ValueError, TypeError, KeyError) as exc:
        return DetachedStatus(False, False, False, None, None, False, f"unreadable: {exc}")

    async def check():  # type: ignore[no-untyped-def]
        try:
            # without a context: check integrity only, trusting nothing (never the OS list)
            checker = context or ValidationContext(trust_roots=[], allow_fetching=False)
            return await async_validate_detached_cms(
                data, signed_data, signer_validation_context=checker
            )
        finally:
            if context is not None:
                await context.aclose()  # release the fetchers' HTTP session

    try:
        status = run_sync(check)
    except Exception as exc:  # pyHanko raises several types for broken structures
        return DetachedStatus(False, False, False, None, None, False, f"{type(exc).__name__}")
    cert = status.signing_cert
    stamp = status.timestamp_validity
    trusted = bool(context is not None and status.trusted and not status.revoked)
    problem = None
    if not status.intact:
        problem = "the signed data was changed"
    elif not status.valid:
        problem = "the signature value is not valid"
    elif stamp is not None and not (stamp.intact and stamp.valid):
        problem = "the signature timestamp is not valid"
    elif context is None:
        problem = "no trust store to check the signer against"
    elif not trusted:
        problem = "the signer's certificate is not trusted or is revoked"
    elif stamp is not None and not stamp.trusted:
        problem = "the signature timestamp's authority is not trusted"
    return DetachedStatus(
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=trusted,
        signer=cert.subject.human_friendly if cert is not None else None,
        signing_time=getattr(status, "signer_reported_dt", None),
        timestamped=stamp is not None,
        problem=problem,
    )
