"""RFC 3161 timestamp tokens over arbitrary messages (the audit chain's anchors).

A token is requested from the TSA for the SHA-256 of a message and kept as DER. Checking one
means: the token parses, its message imprint is the digest of the expected message, and, when a
trust store is given, the TSA's signature is intact, cryptographically valid and chains to a
trusted root (revocation per the validation policy).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime

from asn1crypto import cms, tsp
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext

from signing.errors import TimestampUnavailableError
from signing.pki import TrustStore, ValidationConfig, build_validation_context
from signing.signer import TimestampConfig, run_sync


@dataclasses.dataclass(frozen=True)
class TokenCheck:
    """What checking one timestamp token found.

    Attributes:
        imprint_ok: the token's message imprint is the digest of the expected message.
        gen_time: the time the TSA asserts (None when the token is unreadable).
        trusted: the TSA's signature validates against the trust store (None: not checked).
        problem: why the token is not acceptable, in English, or None.
    """

    imprint_ok: bool
    gen_time: datetime | None
    trusted: bool | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def timestamp_message(tsa: TimestampConfig, message: bytes) -> bytes:
    """A DER TimeStampToken over SHA-256(``message``) from ``tsa``.

    Raises:
        TimestampUnavailableError: the TSA did not answer or refused the request.
    """
    auth = (tsa.username, tsa.password or "") if tsa.username else None
    stamper = HTTPTimeStamper(tsa.url, timeout=tsa.timeout_s, auth=auth)
    digest = hashlib.sha256(message).digest()
    try:
        token = run_sync(lambda: stamper.async_timestamp(digest, "sha256"))
    except (TimestampRequestError, OSError) as exc:
        raise TimestampUnavailableError(f"the TSA did not answer: {exc}") from exc
    return bytes(token.dump())


def _tst_info(token: bytes) -> tuple[cms.SignedData, tsp.TSTInfo]:
    info = cms.ContentInfo.load(token)
    if info["content_type"].native != "signed_data":
        raise ValueError("not a CMS SignedData")
    signed = info["content"]
    encap = signed["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise ValueError("the SignedData does not hold a TSTInfo")
    tst = encap["content"].parsed
    if not isinstance(tst, tsp.TSTInfo):
        raise ValueError("the SignedData does not hold a TSTInfo")
    return signed, tst


def _digest(algorithm: str, message: bytes) -> bytes:
    return hashlib.new(algorithm.replace("_", "-"), message).digest()


def _imprint(message: bytes, algorithm: str) -> bytes:
    return _digest(algorithm, message)


def check_tokens(
    items: Sequence[tuple[bytes, bytes]],
    *,
    trust: TrustStore | ValidationConfig | None = None,
    config: ValidationConfig | None = None,
) -> list[TokenCheck]:
    """Check ``(token, expected message)`` pairs; the TSA signatures too when ``trust`` is given.

    One validation context serves every token (built once, its fetched revocation data reused).
    """
    parsed: list[tuple[cms.SignedData, tsp.TSTInfo] | str] = []
    for token, _message in items:
        try:
            parsed.append(_tst_info(token))
        except (ValueError, TypeError, KeyError) as exc:
            parsed.append(f"the timestamp token is unreadable: {exc}")

    async def validate_all() -> list[TokenCheck]:
        context = build_validation_context(trust, config=config) if trust is not None else None
        try:
            return await check_all(context)
        finally:
            if context is not None:
                await context.aclose()

    async def check_all(context: ValidationContext | None) -> list[TokenCheck]:
        out: list[TokenCheck] = []
        for (_token, message), entry in zip(items, parsed, strict=True):
            if isinstance(entry, str):
                out.append(TokenCheck(False, None, None, entry))
                continue
            signed, tst = entry
            gen_time = tst["gen_time"].native
            imprint = tst["message_imprint"]
            algorithm = imprint["hash_algorithm"]["algorithm"].native
            try:
                expected = _digest(algorithm, message)
            except ValueError:
                out.append(TokenCheck(False, gen_time, None, f"unknown digest {algorithm}"))
                continue
            if not hmac.compare_digest(expected, imprint["hashed_message"].native):
                differs = "the timestamp token covers another head (message imprint differs)"
                out.append(TokenCheck(False, gen_time, None, differs))
                continue
            if context is None:
                out.append(TokenCheck(True, gen_time, None, None))
                continue
            try:
                status = await validate_tst_signed_data(
                    signed, context, functools.partial(_imprint, message)
                )
            except Exception as exc:  # pyHanko raises several unrelated types for bad tokens
                out.append(
                    TokenCheck(True, gen_time, False, f"the TSA signature does not validate: {exc}")
                )
                continue
            trusted = bool(
                status.get("intact")
                and status.get("valid")
                and status.get("trust_problem_indic") is None
            )
            problem = None
            if not trusted:
                indic = status.get("trust_problem_indic")
                why = indic.name if indic is not None else "signature not intact or not valid"
                problem = f"the TSA signature does not validate ({why})"
            out.append(TokenCheck(True, gen_time, trusted, problem))
        return out

    return run_sync(validate_all)
