"""PAdES signing of e-copies (B-T, B-LT by default, B-LTA) and B-LTA renewal.

- The input ``bytes`` are never modified; every call returns new bytes. A document that already
  carries signatures gets the new one in an incremental update, so earlier signatures stay valid.
- ``certify=True`` makes the first signature a certification signature (DocMDP "form filling
  and signing" by default): later changes other than filling signature fields, validation data
  and document timestamps then invalidate it, which shuts out annotation overlays. A new
  *visible* signature field after certification is such a change, so the certifying signer
  reserves empty fields for later signers (``reserve_fields``); later signatures fill them.
  Without certification, later signers add their own fields, and annotations added after
  signing are accepted with a warning (DESIGN.md).
- B-LT/B-LTA embed the signer's and the TSA's revocation data. Each signature gets a fresh
  ``ValidationContext``: pyHanko embeds *every* OCSP response and CRL that the context holds, so a
  context shared across a batch would copy other offices' revocation data into each document.
- A certificate that does not validate (expired, revoked, untrusted) is refused for B-LT/B-LTA:
  pyHanko validates it before signing. B-T does not check it (use it only where that is wanted).
- ``async_*`` functions are the API for event loops (pyHanko's sync API calls ``asyncio.run``);
  the sync wrappers run in a fresh loop, or in a helper thread when called from inside a loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import enum
import io
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError, PdfReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, PdfTimeStamper
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation import async_add_validation_info, read_certification_data
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

from signing import stamp as stamp_mod
from signing.errors import (
    CertificateNotUsableError,
    RevocationInfoUnavailableError,
    SigningConfigError,
    SigningError,
    TimestampUnavailableError,
    UnsignableDocumentError,
)
from signing.pki import (
    KeyRing,
    LoadedKey,
    TrustStore,
    ValidationConfig,
    build_validation_context,
)

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

T = TypeVar("T")


class PadesLevel(enum.StrEnum):
    """PAdES baseline levels (ETSI EN 319 142-1)."""

    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"


class DocMdp(enum.StrEnum):
    """What a certification signature allows after it (ISO 32000 DocMDP /P)."""

    NO_CHANGES = "no-changes"
    FORM_FILLING = "form-filling"  # also allows further signatures
    ANNOTATIONS = "annotations"  # form filling, signatures and annotations

    @property
    def mdp_perm(self) -> fields.MDPPerm:
        return {
            DocMdp.NO_CHANGES: fields.MDPPerm.NO_CHANGES,
            DocMdp.FORM_FILLING: fields.MDPPerm.FILL_FORMS,
            DocMdp.ANNOTATIONS: fields.MDPPerm.ANNOTATE,
        }[self]


@dataclasses.dataclass(frozen=True)
class TimestampConfig:
    """An RFC 3161 time-stamping authority."""

    url: str
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    timeout_s: float = 10.0


@dataclasses.dataclass(frozen=True)
class StampSpec:
    """The visible stamp.

    Attributes:
        verification_url: what the QR code carries (the caller mints the code).
        office: office name printed on the stamp; defaults to the key's office name, then to the
            certificate's organisation.
        signer: the person or office that signs; defaults to the certificate's common name.
        page: page index, negative from the end (``-1``: last page).
        box: ``(x1, y1, x2, y2)`` in PDF points from the bottom-left corner; by default the
            bottom-right corner, stacked above earlier stamps.
        heading: first line of the stamp.
    """

    verification_url: str
    office: str | None = None
    signer: str | None = None
    page: int = -1
    box: tuple[float, float, float, float] | None = None
    heading: str = "Đã ký số"


@dataclasses.dataclass(frozen=True)
class SignOptions:
    """What to produce.

    Attributes:
        level: PAdES level; B-LT by default.
        stamp: the visible stamp, or ``None`` for an invisible signature.
        field_name: signature field name; ``Chu-ky-N`` by default.
        reason: /Reason of the signature dictionary.
        location: /Location of the signature dictionary.
        certify: make this a certification signature (only the first signature can be one):
            afterwards only what ``docmdp`` allows, plus validation data and document
            timestamps, keeps it valid. Adding a *new* visible signature field is not among
            those, so when more signers will follow, reserve their fields now.
        docmdp: what a certification signature allows afterwards.
        reserve_fields: empty signature fields to add for later signers (with ``certify``);
            they are stacked above this stamp and filled in order by later signatures.
        md_algorithm: digest algorithm.
    """

    level: PadesLevel = PadesLevel.B_LT
    stamp: StampSpec | None = None
    field_name: str | None = None
    reason: str | None = "Ký số bản sao điện tử"
    location: str | None = None
    certify: bool = False
    docmdp: DocMdp = DocMdp.FORM_FILLING
    reserve_fields: int = 0
    md_algorithm: str = "sha256"


def _timestamper(tsa: TimestampConfig, session: aiohttp.ClientSession | None) -> HTTPTimeStamper:
    auth = (tsa.username, tsa.password or "") if tsa.username else None
    return HTTPTimeStamper(tsa.url, timeout=tsa.timeout_s, auth=auth, session=session)


def _open_writer(pdf: bytes) -> IncrementalPdfFileWriter:
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    except (PdfReadError, PdfError, ValueError, KeyError, TypeError) as exc:
        raise UnsignableDocumentError(f"not a readable PDF: {exc}") from exc
    if writer.prev.encrypted:
        raise UnsignableDocumentError("the PDF is encrypted; e-copies are issued unencrypted")
    return writer


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    filled: bool
    timestamp: bool


def _existing_fields(writer: IncrementalPdfFileWriter) -> list[_Field]:
    out = []
    try:
        for name, value, _ref in fields.enumerate_sig_fields(writer.prev):
            obj = value.get_object() if value is not None else None
            is_ts = obj is not None and obj.get("/Type") == "/DocTimeStamp"
            out.append(_Field(name=name, filled=obj is not None, timestamp=is_ts))
    except (PdfError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise UnsignableDocumentError(f"cannot read the signature fields: {exc}") from exc
    return out


def _new_field_names(existing: list[_Field], count: int) -> list[str]:
    taken = {f.name for f in existing}
    names: list[str] = []
    n = sum(1 for f in existing if not f.timestamp) + 1
    while len(names) < count:
        candidate = f"Chu-ky-{n}"
        if candidate not in taken:
            names.append(candidate)
        n += 1
    return names


def _is_certified(writer: IncrementalPdfFileWriter) -> bool:
    try:
        return read_certification_data(writer.prev) is not None
    except Exception:  # a damaged /Perms entry: treat as certified, the cautious answer
        return True


def _classify(exc: BaseException) -> SigningError:
    """Map what pyHanko raises while signing onto our errors (the cause chain tells why)."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 10:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for item in chain:
        if isinstance(item, TimestampRequestError):
            return TimestampUnavailableError(f"the TSA did not answer: {item}")
    for item in chain:
        if isinstance(item, (PathValidationError, PathBuildingError)):
            text = str(item)
            if "revocation" in text.lower() and "revoked" not in text.lower():
                return RevocationInfoUnavailableError(
                    f"the signing certificate's status could not be checked: {text}"
                )
            return CertificateNotUsableError(
                f"the signing certificate does not validate: {text}", reason=type(item).__name__
            )
    if isinstance(exc, PyHankoSigningError):
        text = str(exc)
        if "forbids" in text or "Certification signatures" in text:
            return UnsignableDocumentError(text)
        return SigningError(text)
    return SigningError(f"{type(exc).__name__}: {exc}")


async def async_sign_pdf(
    pdf: bytes,
    key: LoadedKey,
    options: SignOptions = SignOptions(),
    *,
    tsa: TimestampConfig | None = None,
    trust: TrustStore | None = None,
    policy: ValidationConfig | None = None,
    session: aiohttp.ClientSession | None = None,
) -> bytes:
    """Sign ``pdf`` with ``key`` and return the signed copy.

    Args:
        pdf: the document (left untouched).
        key: the office's key (see :class:`signing.pki.KeyRing`).
        options: level, stamp and signature dictionary entries.
        tsa: the time-stamping authority; required from B-T up.
        trust: trust store used to validate the signer and TSA before embedding their revocation
            data; required for B-LT and B-LTA.
        policy: validation policy (revocation mode, fetch timeout); hard-fail by default.
        session: aiohttp session for TSA/OCSP/CRL requests (caller-owned), e.g. a shared pool.

    Returns:
        The signed PDF (the input plus one or two incremental updates).

    Raises:
        SigningConfigError: the level needs a TSA or a trust store that was not given.
        UnsignableDocumentError: not a PDF, encrypted, or certification forbids changes.
        CertificateNotUsableError: the signer's certificate does not validate (B-LT/B-LTA).
        TimestampUnavailableError / RevocationInfoUnavailableError: a service did not answer.
        SigningError: anything else pyHanko reported.
    """
    pdf = bytes(pdf)  # a bytearray passed in must not change under us, nor we under the caller
    level = PadesLevel(options.level)
    if level != PadesLevel.B_B and tsa is None:
        raise SigningConfigError(f"PAdES {level} needs a time-stamping authority")
    needs_lt = level in (PadesLevel.B_LT, PadesLevel.B_LTA)
    if needs_lt and trust is None:
        raise SigningConfigError(f"PAdES {level} needs a trust store")

    writer = _open_writer(pdf)
    existing = _existing_fields(writer)
    certified = _is_certified(writer)
    has_signatures = any(f.filled for f in existing)
    certify = bool(options.certify)
    if certify and has_signatures:
        raise UnsignableDocumentError("only the first signature of a document can certify it")
    empty = [f.name for f in existing if not f.filled]
    if options.field_name is not None:
        match = [f for f in existing if f.name == options.field_name]
        if match and match[0].filled:
            raise UnsignableDocumentError(f"signature field {options.field_name!r} is signed")
        field_name = options.field_name
        new_field = not match
    elif empty:
        # a field reserved by the certifying signature: filling it is allowed by DocMDP
        field_name, new_field = empty[0], False
    else:
        field_name, new_field = _new_field_names(existing, 1)[0], True
    if certified and new_field and options.stamp is not None:
        # pyHanko's diff policy (rightly) treats a new widget on a page after a certification
        # signature as a change that breaks it; refusing keeps the first signature valid
        raise UnsignableDocumentError(
            "the document is certified and has no empty signature field for a visible stamp; "
            "reserve fields when certifying (SignOptions.reserve_fields) or sign without a stamp"
        )

    vc: ValidationContext | None = None
    if needs_lt:
        assert trust is not None
        vc = build_validation_context(trust, config=policy, session=session)
    meta = PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm=options.md_algorithm,
        reason=options.reason,
        location=options.location,
        name=key.subject_cn or None,
        certify=certify,
        docmdp_permissions=options.docmdp.mdp_perm,
        subfilter=fields.SigSeedSubFilter.PADES,
        embed_validation_info=needs_lt,
        use_pades_lta=level == PadesLevel.B_LTA,
        validation_context=vc,
    )

    field_spec = None
    style = None
    text_params: dict[str, Any] | None = None
    spec = options.stamp
    page_index = 0
    if spec is not None or options.reserve_fields:
        try:
            pages = stamp_mod.page_count(writer)
            page = spec.page if spec is not None else -1
            page_index = page if page >= 0 else pages + page
            if not 0 <= page_index < pages:
                raise SigningConfigError(f"stamp page {page} not in a {pages}-page document")
        except SigningError:
            raise
        except (PdfError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise UnsignableDocumentError(f"cannot place the stamp: {exc}") from exc
    slot = sum(1 for f in existing if not f.timestamp)
    if spec is not None:
        if new_field:
            box = spec.box or stamp_mod.default_stamp_box(writer, page_index, slot=slot)
            field_spec = fields.SigFieldSpec(
                sig_field_name=field_name,
                on_page=page_index,
                box=tuple(round(v) for v in box),  # type: ignore[arg-type]
            )
        style = stamp_mod.stamp_style()
        text_params = stamp_mod.stamp_text_params(
            heading=spec.heading,
            office=spec.office or key.office_name or key.subject_o or key.subject_cn,
            signer=spec.signer or key.subject_cn,
            moment=datetime.now(stamp_mod.VN_TZ),
            url=spec.verification_url,
        )
    if options.reserve_fields:
        if not certify:
            raise SigningConfigError("reserve_fields only makes sense with certify=True")
        # empty fields for later signers, in the same revision as the certification
        for i, name in enumerate(
            _new_field_names([*existing, _Field(field_name, True, False)], options.reserve_fields)
        ):
            box = stamp_mod.default_stamp_box(writer, page_index, slot=slot + 1 + i)
            fields.append_signature_field(
                writer,
                fields.SigFieldSpec(sig_field_name=name, on_page=page_index, box=box),
            )

    pdf_signer = PdfSigner(
        meta,
        signer=key.signer,
        timestamper=(
            _timestamper(tsa, session) if tsa is not None and level != PadesLevel.B_B else None
        ),
        stamp_style=style,
        new_field_spec=field_spec,
    )
    output = io.BytesIO()
    try:
        await pdf_signer.async_sign_pdf(writer, output=output, appearance_text_params=text_params)
    except SigningError:
        raise
    except Exception as exc:  # pyHanko, certvalidator, aiohttp: classified, never leaked raw
        err = _classify(exc)
        log.warning("signing failed: %s (%s)", err.slug, type(exc).__name__)
        raise err from exc
    finally:
        if vc is not None and session is None:
            await vc.aclose()
    log.info("signed a document at PAdES %s (%d -> %d bytes)", level, len(pdf), output.tell())
    return output.getvalue()


async def async_add_document_timestamp(
    pdf: bytes,
    *,
    tsa: TimestampConfig,
    trust: TrustStore,
    policy: ValidationConfig | None = None,
    session: aiohttp.ClientSession | None = None,
) -> bytes:
    """Renew the archival timestamp chain (B-LTA): validation data for the last document
    timestamp, then a new document timestamp, in incremental updates.

    Run it on issued e-copies before their last timestamp's TSA certificate expires or its
    algorithms weaken. A document without any DSS yet (a B-T e-copy) first gets validation data
    for each signature, so the result is B-LTA.

    Raises:
        UnsignableDocumentError: not a readable, unencrypted PDF.
        CertificateNotUsableError / TimestampUnavailableError / RevocationInfoUnavailableError.
    """
    pdf = bytes(pdf)
    vc = build_validation_context(trust, config=policy, session=session)
    try:
        _open_writer(pdf)  # same checks as signing: readable, not encrypted
        data = pdf
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if "/DSS" not in reader.root:
            for index in range(len(reader.embedded_regular_signatures)):
                reader = PdfFileReader(io.BytesIO(data), strict=False)
                sig = reader.embedded_regular_signatures[index]
                out = await async_add_validation_info(sig, vc, output=io.BytesIO())
                data = out.getvalue()
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        stamper = PdfTimeStamper(_timestamper(tsa, session))
        output = io.BytesIO()
        await stamper.async_update_archival_timestamp_chain(
            reader, vc, in_place=False, output=output
        )
    except SigningError:
        raise
    except Exception as exc:
        err = _classify(exc)
        log.warning("document timestamp failed: %s (%s)", err.slug, type(exc).__name__)
        raise err from exc
    finally:
        if session is None:
            await vc.aclose()
    log.info("added a document timestamp (%d -> %d bytes)", len(pdf), output.tell())
    return output.getvalue()


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    In a plain thread (an RQ worker, a CLI): a fresh event loop. If this thread already runs a
    loop (someone called the sync API from async code), the work goes to a helper thread with its
    own loop instead of failing with "asyncio.run() cannot be called from a running event loop";
    that blocks the calling loop, so async callers should use the ``async_*`` functions.
    """

    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def sign_pdf(
    pdf: bytes,
    key: LoadedKey,
    options: SignOptions = SignOptions(),
    *,
    tsa: TimestampConfig | None = None,
    trust: TrustStore | None = None,
    policy: ValidationConfig | None = None,
) -> bytes:
    """Synchronous :func:`async_sign_pdf` (for workers and the CLI)."""
    return run_sync(lambda: async_sign_pdf(pdf, key, options, tsa=tsa, trust=trust, policy=policy))


def add_document_timestamp(
    pdf: bytes,
    *,
    tsa: TimestampConfig,
    trust: TrustStore,
    policy: ValidationConfig | None = None,
) -> bytes:
    """Synchronous :func:`async_add_document_timestamp`."""
    return run_sync(lambda: async_add_document_timestamp(pdf, tsa=tsa, trust=trust, policy=policy))


@dataclasses.dataclass
class OfficeSigner:
    """Signs e-copies for any configured office: keys, TSA, trust store and policy in one place.

    Build one per worker process; keys load on first use and stay loaded.
    """

    keys: KeyRing
    tsa: TimestampConfig | None
    trust: TrustStore | None
    policy: ValidationConfig | None = None

    async def async_sign(
        self,
        pdf: bytes,
        office_code: str,
        options: SignOptions = SignOptions(),
        *,
        session: aiohttp.ClientSession | None = None,
    ) -> bytes:
        """Sign with ``office_code``'s key; see :func:`async_sign_pdf`."""
        key = self.keys.get(office_code)
        return await async_sign_pdf(
            pdf, key, options, tsa=self.tsa, trust=self.trust, policy=self.policy, session=session
        )

    def sign(self, pdf: bytes, office_code: str, options: SignOptions = SignOptions()) -> bytes:
        """Synchronous :meth:`async_sign`."""
        return run_sync(lambda: self.async_sign(pdf, office_code, options))

    def renew(self, pdf: bytes) -> bytes:
        """Add a document timestamp (B-LTA renewal)."""
        if self.tsa is None or self.trust is None:
            raise SigningConfigError("renewal needs a TSA and a trust store")
        return add_document_timestamp(pdf, tsa=self.tsa, trust=self.trust, policy=self.policy)
