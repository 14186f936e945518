"""Validation of signed PDFs into a verdict that DESIGN.md's table defines.

``validate(pdf, context)`` never raises for a bad document; every outcome is a :class:`Report`:

=================  ===========================================================================
``valid``          every signature intact, cryptographically valid, chain trusted, not revoked
                   at signing time, no forbidden change after signing
``invalid``        a byte changed in a signed range, a cryptographic failure, signer revoked
                   before signing, a forbidden change after signing
``indeterminate``  intact, but no trusted root, revocation status unobtainable, or expired with
                   no proof that the signature existed before expiry
``no_signature``   a readable PDF without signatures
``unreadable``     not a PDF, truncated, encrypted without a password
=================  ===========================================================================

pyHanko reports the status of each signature (intact, valid, trust problem); this module adds
what it does not do: the PAdES level, the ETSI indication for the whole signature (pyHanko's
``bottom_line`` folds in timestamps and modifications without saying why), the "signed before
revocation / expiry" reasoning from timestamps, annotation changes at DocMDP level 3, and the
catch-all: pyHanko raises ``KeyError``, ``AssertionError``, ``ValueError`` and friends on damaged
or exotic real-world files. Then a raw check on the bytes (ByteRange digest against the CMS
``messageDigest``, the CMS signature against the certificate) still says whether the signed
bytes changed, and the entry records the error.

Validation is CPU-bound (20-400 ms a signature). ``validate`` is synchronous: run it in a
worker, or ``await asyncio.to_thread(validate, pdf, context)`` from an event loop, one context
per thread. ``async_validate`` is the same on the caller's loop (it does block it while
computing). Reuse one context for a batch (see ``signing.pki.ValidationContextPool``).
"""

from __future__ import annotations

import asyncio
import binascii
import dataclasses
import enum
import hashlib
import io
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms, x509
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader
from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate, AdESPassed, AdESSubIndic
from pyhanko.sign.diff_analysis import (
    DEFAULT_DIFF_POLICY,
    DiffPolicy,
    ModificationLevel,
    StandardDiffPolicy,
)
from pyhanko.sign.diff_analysis.commons import compare_dicts
from pyhanko.sign.diff_analysis.policy_api import DiffResult
from pyhanko.sign.diff_analysis.rules_api import QualifiedWhitelistRule, ReferenceUpdate
from pyhanko.sign.fields import MDPPerm, enumerate_sig_fields
from pyhanko.sign.general import find_unique_cms_attribute
from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.generic_cms import validate_sig_integrity
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import (
    PdfSignatureStatus,
    SignatureCoverageLevel,
    TimestampSignatureStatus,
)
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import InsufficientRevinfoError

from signing.signer import run_sync

log = logging.getLogger(__name__)


# -- result types -------------------------------------------------------------------------------
class Verdict(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    INDETERMINATE = "indeterminate"
    NO_SIGNATURE = "no_signature"
    UNREADABLE = "unreadable"


class Indication(enum.StrEnum):
    """ETSI EN 319 102-1 main indication."""

    TOTAL_PASSED = "TOTAL_PASSED"
    TOTAL_FAILED = "TOTAL_FAILED"
    INDETERMINATE = "INDETERMINATE"


class Revocation(enum.StrEnum):
    GOOD = "good"  # status checked at validation time (or at a proven earlier time)
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # checking was attempted and failed (responder down, stale data)
    NOT_CHECKED = "not_checked"  # no trusted chain, or the signature could not be processed


@dataclasses.dataclass(frozen=True)
class SignatureResult:
    """The validation result of one signature or document timestamp.

    ``reasons`` and ``warnings`` hold stable codes; ``signing.report`` words them for people.
    """

    kind: str  # "signature" or "document_timestamp"
    field_name: str | None
    indication: Indication
    sub_indication: str | None
    signer_cn: str | None = None
    signer_o: str | None = None
    issuer_cn: str | None = None
    certificate_sha256: str | None = None
    signing_time: datetime | None = None  # best known: timestamp time, else the claimed time
    claimed_signing_time: datetime | None = None
    timestamped: bool = False
    timestamp_time: datetime | None = None
    timestamp_trusted: bool | None = None
    intact: bool | None = None
    crypto_valid: bool | None = None
    trusted: bool | None = None
    revocation: Revocation = Revocation.NOT_CHECKED
    revocation_time: datetime | None = None
    pades_level: str | None = None
    subfilter: str | None = None
    coverage: str | None = None
    modification_level: str | None = None
    docmdp: str | None = None
    certification: bool = False
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.indication == Indication.TOTAL_PASSED

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


@dataclasses.dataclass(frozen=True)
class Report:
    """The verdict on a document and the results behind it.

    ``document_status`` is set by the caller for e-copies this deployment issued
    (``"revoked"``/``"superseded"``); it does not change ``verdict``.
    """

    verdict: Verdict
    signatures: tuple[SignatureResult, ...] = ()
    timestamps: tuple[SignatureResult, ...] = ()
    sha256: str = ""
    size: int = 0
    validated_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    error: str | None = None
    document_status: str | None = None
    etsi_xml: str | None = dataclasses.field(default=None, repr=False, compare=False)

    def with_document_status(self, status: str | None) -> Report:
        return dataclasses.replace(self, document_status=status)


@dataclasses.dataclass(frozen=True)
class ValidateOptions:
    """Knobs of :func:`validate`.

    Attributes:
        diff_policy: how changes after signing are judged; by default pyHanko's policy plus
            annotation changes at DocMDP level 3.
        etsi_report: also build the ETSI TS 119 102-2 XML report (``Report.etsi_xml``).
        max_signatures: stop after this many signature fields (a file with thousands is an
            attack on the validator, not a document).
        document_status: copied into the report.
    """

    diff_policy: DiffPolicy | None = None
    etsi_report: bool = False
    max_signatures: int = 50
    document_status: str | None = None


# -- diff policy: annotations (DocMDP level 3) ---------------------------------------------------
def _page_leaves(pages: generic.PdfObject, depth: int = 0) -> Iterator[generic.Reference]:
    """References of the page objects under a page tree node, in order."""
    if depth > 32:
        raise ValueError("page tree too deep")
    node = pages.get_object()
    for kid in node["/Kids"]:
        if not isinstance(kid, generic.IndirectObject):
            raise ValueError("direct object in /Kids")
        obj = kid.get_object()
        if obj.get("/Type") == "/Pages":
            yield from _page_leaves(kid, depth + 1)
        else:
            yield kid.reference


def _annot_refs(page: generic.DictionaryObject) -> list[generic.Reference] | None:
    value = page.get("/Annots")
    if value is None:
        return []
    arr = value.get_object()
    if not isinstance(arr, generic.ArrayObject):
        return None
    refs = []
    for item in arr:
        if not isinstance(item, generic.IndirectObject):
            return None  # direct annotation dictionaries: not worth the ambiguity
        refs.append(item.reference)
    return refs


def _fresh_descendants(
    old: HistoricalResolver, obj: generic.PdfObject, seen: set[generic.Reference]
) -> Iterator[generic.Reference]:
    """New objects reachable from ``obj`` (appearance streams, pop-ups, their resources).

    Objects that existed in the old revision are not descended into: if they changed, the
    policy's cross-reference check flags them on its own.
    """
    stack = [obj]
    while stack:
        cur = stack.pop()
        if isinstance(cur, generic.IndirectObject):
            ref = cur.reference
            if ref in seen or not old.is_ref_unassignable(ref):
                continue
            seen.add(ref)
            yield ref
            stack.append(cur.get_object())
        elif isinstance(cur, generic.DictionaryObject):  # streams are dictionaries too
            for key, value in cur.items():
                if key not in ("/P", "/Parent"):
                    stack.append(value)
        elif isinstance(cur, generic.ArrayObject):
            stack.extend(cur)


class AnnotationChangeRule(QualifiedWhitelistRule):
    """Clears added or removed non-widget annotations at level ANNOTATIONS.

    pyHanko's default policy treats any annotation change as suspicious (its ANNOTATIONS level is
    unused), so a document certified with DocMDP /P 3 would fail on a harmless comment. This
    rule explains a page whose only change is its ``/Annots`` array, when every added
    annotation is a new non-widget annotation (widgets are signature/form fields, judged by the
    form rule) and every removed one is a non-widget annotation. Whether level ANNOTATIONS is
    allowed is then decided by the signature's DocMDP, as for any other level.
    """

    def apply_qualified(
        self, old: HistoricalResolver, new: HistoricalResolver
    ) -> Iterator[tuple[ModificationLevel, ReferenceUpdate]]:
        try:
            old_pages = list(_page_leaves(old.root["/Pages"]))
            new_pages = list(_page_leaves(new.root["/Pages"]))
        except (KeyError, ValueError, TypeError, AttributeError):
            return
        if old_pages != new_pages:
            return  # added/removed pages are never explained here
        level = ModificationLevel.ANNOTATIONS
        seen: set[generic.Reference] = set()
        for page_ref in new_pages:
            try:
                old_page = old(page_ref)
                new_page = new(page_ref)
                old_annots = _annot_refs(old_page)
                new_annots = _annot_refs(new_page)
                if old_annots is None or new_annots is None or old_annots == new_annots:
                    continue
                if not compare_dicts(old_page, new_page, frozenset({"/Annots"}), raise_exc=False):
                    continue
                added = [r for r in new_annots if r not in old_annots]
                removed = [r for r in old_annots if r not in new_annots]
                if any(old(r).get("/Subtype") == "/Widget" for r in removed):
                    continue
                if any(
                    not old.is_ref_unassignable(r) or new(r).get("/Subtype") in (None, "/Widget")
                    for r in added
                ):
                    continue
            except (KeyError, ValueError, TypeError, AttributeError):
                continue
            yield level, ReferenceUpdate(page_ref)
            annots_value = new_page.raw_get("/Annots")
            if isinstance(annots_value, generic.IndirectObject):
                ref = annots_value.reference
                old_value = old_page.raw_get("/Annots") if "/Annots" in old_page else None
                same = isinstance(old_value, generic.IndirectObject) and (
                    old_value.reference == ref
                )
                if same or old.is_ref_unassignable(ref):
                    yield level, ReferenceUpdate(ref)
            for ref in added:
                for fresh in _fresh_descendants(
                    old, generic.IndirectObject(ref.idnum, ref.generation, new.reader), seen
                ):
                    yield level, ReferenceUpdate(fresh)


def default_diff_policy() -> DiffPolicy:
    """pyHanko's default policy plus :class:`AnnotationChangeRule`."""
    base = DEFAULT_DIFF_POLICY
    assert isinstance(base, StandardDiffPolicy)
    return StandardDiffPolicy(
        global_rules=[*base.global_rules, AnnotationChangeRule()],
        form_rule=base.form_rule,
    )


_DIFF_POLICY = default_diff_policy()


# -- reading --------------------------------------------------------------------------------
class _Unreadable(Exception):
    pass


def _integrity_failure(
    status: Any, modified: bool, reasons: list[str]
) -> tuple[Indication, str] | None:
    """TOTAL_FAILED for a changed byte, a broken signature value or a forbidden change
    after signing (DSS's format check fails a DocMDP violation); None when none applies.
    Shared by signatures and document timestamps."""
    if not status.intact:
        reasons.append("hash_failure")
        return Indication.TOTAL_FAILED, AdESFailure.HASH_FAILURE.name
    if not status.valid:
        reasons.append("sig_crypto_failure")
        return Indication.TOTAL_FAILED, AdESFailure.SIG_CRYPTO_FAILURE.name
    if modified:
        reasons.append("modified_after_signing")
        return Indication.TOTAL_FAILED, AdESFailure.FORMAT_FAILURE.name
    return None


def _open(pdf: bytes) -> PdfFileReader:
    head = pdf[:1024]
    if b"%PDF-" not in head:
        raise _Unreadable("not a PDF (no %PDF- header)")
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        if reader.encrypted:
            # an empty user password is common ("protected" against editing only); signatures in
            # such files are rare but legitimate
            from pyhanko.pdf_utils.crypt.api import AuthStatus

            if reader.decrypt(b"").status == AuthStatus.FAILED:
                raise _Unreadable("encrypted with a password")
        _ = reader.root  # forces the catalog and the cross-reference data
        _ = reader.xrefs.total_revisions
    except _Unreadable:
        raise
    except Exception as exc:  # pyHanko raises a zoo on broken files; all mean "cannot parse"
        raise _Unreadable(f"{type(exc).__name__}: {exc}") from exc
    return reader


# -- raw fallback: what the bytes say when pyHanko cannot ------------------------------------
_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")


@dataclasses.dataclass(frozen=True)
class _RawCheck:
    byte_range: tuple[int, int, int, int]
    intact: bool | None
    crypto_valid: bool | None
    signer: x509.Certificate | None
    error: str | None


def _raw_check(pdf: bytes, byte_range: tuple[int, int, int, int]) -> _RawCheck:
    """Check a signature from the bytes alone: digest of the ByteRange vs the CMS."""
    start1, len1, start2, len2 = byte_range
    signer: x509.Certificate | None = None
    try:
        if start1 != 0 or start2 < len1 or start2 + len2 > len(pdf):
            return _RawCheck(byte_range, False, None, None, "ByteRange outside the file")
        hex_contents = re.sub(rb"\s", b"", pdf[len1:start2]).lstrip(b"<").rstrip(b">")
        if len(hex_contents) % 2:
            hex_contents += b"0"
        # the zero padding after the DER value is ignored by asn1crypto's non-strict load
        der = binascii.unhexlify(hex_contents)
        content_info = cms.ContentInfo.load(der)
        signed_data = content_info["content"]
        signer_info = signed_data["signer_infos"][0]
        md = signer_info["digest_algorithm"]["algorithm"].native
        h = hashlib.new(md)
        h.update(pdf[start1 : start1 + len1])
        h.update(pdf[start2 : start2 + len2])
        digest = h.digest()
        sid = signer_info["sid"]
        for choice in signed_data["certificates"] or []:
            cert = choice.chosen
            if not isinstance(cert, x509.Certificate):
                continue
            if sid.name == "issuer_and_serial_number":
                wanted = sid.chosen
                if (
                    cert.issuer == wanted["issuer"]
                    and cert.serial_number == wanted["serial_number"].native
                ):
                    signer = cert
                    break
            elif cert.key_identifier == sid.chosen.native:
                signer = cert
                break
        eci = signed_data["encap_content_info"]
        econtent = eci["content_type"].native
        if econtent == "tst_info":
            # document timestamp: the file digest is the TSTInfo's message imprint, and the CMS
            # signs the TSTInfo itself
            imprint = eci["content"].parsed["message_imprint"]
            h = hashlib.new(imprint["hash_algorithm"]["algorithm"].native)
            h.update(pdf[start1 : start1 + len1])
            h.update(pdf[start2 : start2 + len2])
            file_ok = h.digest() == imprint["hashed_message"].native
            digest = hashlib.new(md, eci["content"].contents).digest()
        else:
            file_ok = True
        if signer is None:
            claimed = find_unique_cms_attribute(signer_info["signed_attrs"], "message_digest")
            intact = file_ok and claimed.native == digest
            return _RawCheck(byte_range, intact, None, None, "no signer cert")
        intact, valid = validate_sig_integrity(signer_info, signer, econtent, digest)
        return _RawCheck(byte_range, file_ok and intact, valid, signer, None)
    except Exception as exc:
        return _RawCheck(byte_range, None, None, signer, f"{type(exc).__name__}: {exc}")


def _byte_range_of(sig_object: Any) -> tuple[int, int, int, int] | None:
    try:
        values = [int(v) for v in sig_object.get_object().raw_get("/ByteRange")]
        if len(values) == 4:
            return (values[0], values[1], values[2], values[3])
    except Exception:  # the dictionary itself may be what is broken
        return None
    return None


def _result_from_raw(
    raw: _RawCheck, *, kind: str, field_name: str | None, error: str
) -> SignatureResult:
    """A result from the raw check after pyHanko failed on this signature."""
    subject = raw.signer.subject.native if raw.signer is not None else {}
    common: dict[str, Any] = {
        "kind": kind,
        "field_name": field_name,
        "signer_cn": subject.get("common_name"),
        "signer_o": subject.get("organization_name"),
        "certificate_sha256": raw.signer.sha256.hex() if raw.signer is not None else None,
        "intact": raw.intact,
        "crypto_valid": raw.crypto_valid,
        "error": error if raw.error is None else f"{error}; raw check: {raw.error}",
        "warnings": ("validation_error",),
    }
    if raw.intact is False:
        return SignatureResult(
            indication=Indication.TOTAL_FAILED,
            sub_indication=AdESFailure.HASH_FAILURE.name,
            reasons=("hash_failure",),
            **common,
        )
    if raw.crypto_valid is False:
        return SignatureResult(
            indication=Indication.TOTAL_FAILED,
            sub_indication=AdESFailure.SIG_CRYPTO_FAILURE.name,
            reasons=("sig_crypto_failure",),
            **common,
        )
    if raw.intact is None:
        return SignatureResult(
            indication=Indication.INDETERMINATE,
            sub_indication=AdESFailure.FORMAT_FAILURE.name,
            reasons=("unprocessable",),
            **common,
        )
    # the signed bytes are intact and the CMS signature verifies, yet full validation failed:
    # most likely a pyHanko limitation on this file, so "could not confirm", not "invalid"
    return SignatureResult(
        indication=Indication.INDETERMINATE,
        sub_indication=AdESIndeterminate.GENERIC.name,
        reasons=("unprocessable",),
        **common,
    )


# -- PAdES level ------------------------------------------------------------------------------
@dataclasses.dataclass
class _DssIndex:
    """Which certificates the DSS holds revocation data for (by issuer and serial)."""

    present: bool = False
    ocsp_ids: set[tuple[bytes, int]] = dataclasses.field(default_factory=set)
    crl_issuers: set[bytes] = dataclasses.field(default_factory=set)
    ocsps: list[asn1_ocsp.OCSPResponse] = dataclasses.field(default_factory=list)
    crls: list[asn1_crl.CertificateList] = dataclasses.field(default_factory=list)
    certs: list[x509.Certificate] = dataclasses.field(default_factory=list)


def _read_dss(reader: PdfFileReader) -> _DssIndex:
    index = _DssIndex()
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except Exception:  # NoDSSFoundError, or a damaged DSS: both mean "no usable LT data"
        return index
    index.present = True
    try:
        vc = dss.as_validation_context(
            {"trust_roots": [], "allow_fetching": False, "revocation_mode": "soft-fail"}
        )
        index.ocsps = list(vc.ocsps)
        index.crls = list(vc.crls)
        index.certs = list(dss.load_certs())
    except Exception:
        log.debug("DSS present but unreadable", exc_info=True)
        return index
    for resp in index.ocsps:
        try:
            basic = resp["response_bytes"]["response"].parsed
            for single in basic["tbs_response_data"]["responses"]:
                cert_id = single["cert_id"]
                # issuer name hash is SHA-1 (or other) of the issuer DN; match by serial and
                # re-derive the name hash with the same algorithm when comparing
                index.ocsp_ids.add(
                    (cert_id["issuer_name_hash"].native, cert_id["serial_number"].native)
                )
        except Exception:
            continue
    for crl_obj in index.crls:
        try:
            index.crl_issuers.add(crl_obj.issuer.sha256)
        except Exception:
            continue
    return index


def _ocsp_covers(dss: _DssIndex, cert: x509.Certificate) -> bool:
    if cert.issuer.sha256 in dss.crl_issuers:
        return True
    for name_hash, serial in dss.ocsp_ids:
        if serial != cert.serial_number:
            continue
        for algo in ("sha1", "sha256"):
            if hashlib.new(algo, cert.issuer.dump()).digest() == name_hash:
                return True
    return False


def _pades_level(
    has_tst: bool, dss: _DssIndex, cert: x509.Certificate | None, later_doc_ts: bool
) -> str:
    if not has_tst:
        return "B-B"
    lt = dss.present and cert is not None and _ocsp_covers(dss, cert)
    if not lt:
        return "B-T"
    return "B-LTA" if later_doc_ts else "B-LT"


# -- per-signature evaluation ----------------------------------------------------------------
def _subject(cert: x509.Certificate | None) -> dict[str, Any]:
    if cert is None:
        return {}
    try:
        return dict(cert.subject.native)
    except Exception:
        return {}


def _ts_ok(ts: TimestampSignatureStatus | None) -> bool:
    return ts is not None and ts.intact and ts.valid and ts.trusted


async def _validate_at(
    cert: x509.Certificate,
    moment: datetime,
    context: ValidationContext,
    other_certs: list[x509.Certificate],
    dss: _DssIndex,
    embedded: EmbeddedPdfSignature,
    *,
    tsa: bool = False,
) -> bool:
    """Validate ``cert``'s chain as of ``moment`` with the revocation data the file carries
    (DSS, and the Adobe revocation-info attribute), no fetching.

    This is what B-LT is for: the document proves its signer was in good standing when the
    timestamp was taken, after the certificate expired or while responders are unreachable.
    ``tsa`` checks a TSA certificate (time-stamping usage) instead of a signer's.
    """
    crls = list(dss.crls)
    ocsps = list(dss.ocsps)
    try:
        # adbe-revocationInfoArchival (signed attribute) for pre-PAdES style LT signatures
        revinfo = find_unique_cms_attribute(
            embedded.signer_info["signed_attrs"], "adobe_revocation_info_archival"
        )
        crls.extend(revinfo["crl"] or [])
        ocsps.extend(revinfo["ocsp"] or [])
    except Exception:
        pass
    point_in_time = ValidationContext(
        trust_manager=context.path_builder.trust_manager,
        other_certs=[*other_certs, *dss.certs],
        moment=moment,
        allow_fetching=False,
        revocation_mode="hard-fail",
        crls=crls,
        ocsps=ocsps,
        time_tolerance=context.time_tolerance,
    )
    try:
        validator = CertificateValidator(
            cert, intermediate_certs=other_certs, validation_context=point_in_time
        )
        if tsa:
            await validator.async_validate_usage(set(), extended_key_usage={"time_stamping"})
        else:
            await validator.async_validate_usage({"non_repudiation"})
        return True
    except Exception as exc:
        log.debug("point-in-time validation failed: %s", type(exc).__name__)
        return False


async def _revinfo_missing(
    cert: x509.Certificate, context: ValidationContext, other_certs: list[x509.Certificate]
) -> bool:
    """Whether the signer's chain fails only for want of revocation data."""
    try:
        validator = CertificateValidator(
            cert, intermediate_certs=other_certs, validation_context=context
        )
        await validator.async_validate_usage({"non_repudiation"})
    except InsufficientRevinfoError:
        return True
    except Exception:
        return False
    return False


async def _proven_with_embedded_data(
    embedded: EmbeddedPdfSignature,
    status: PdfSignatureStatus,
    context: ValidationContext,
    dss: _DssIndex,
) -> bool:
    """Responders unreachable: does the file itself prove the signature (B-LT)?

    The signature timestamp must be intact and its TSA valid at the timestamp's time, and the
    signer's chain valid at that time, both with revocation data embedded in the file.
    """
    tst = status.timestamp_validity
    cert = status.signing_cert
    if tst is None or not (tst.intact and tst.valid) or cert is None or not dss.present:
        return False
    moment = tst.timestamp
    others = list(embedded.other_embedded_certs)
    if not (
        tst.trusted
        or await _validate_at(tst.signing_cert, moment, context, others, dss, embedded, tsa=True)
    ):
        return False
    return await _validate_at(cert, moment, context, others, dss, embedded)


async def _evaluate(
    embedded: EmbeddedPdfSignature,
    context: ValidationContext,
    diff_policy: DiffPolicy,
    dss: _DssIndex,
    doc_ts: list[tuple[int, SignatureResult]],
    signature_fields: set[str],
) -> tuple[SignatureResult, PdfSignatureStatus]:
    status = await async_validate_pdf_signature(
        embedded,
        signer_validation_context=context,
        ts_validation_context=context,
        diff_policy=diff_policy,
    )
    cert = status.signing_cert
    subj = _subject(cert)
    issuer = cert.issuer.native if cert is not None else {}
    tst = status.timestamp_validity
    tst_ok = _ts_ok(tst)
    claimed = status.signer_reported_dt
    later_doc_ts = [r for rev, r in doc_ts if rev > embedded.signed_revision]
    poe_candidates = [tst.timestamp] if tst_ok and tst is not None else []
    poe_candidates += [
        r.timestamp_time for r in later_doc_ts if r.passed and r.timestamp_time is not None
    ]
    poe = min(poe_candidates) if poe_candidates else None
    signing_time = tst.timestamp if tst_ok and tst is not None else claimed

    diff = status.diff_result
    if isinstance(diff, DiffResult):
        mod_level = diff.modification_level.name
    elif diff is not None:
        mod_level = ModificationLevel.OTHER.name
    else:
        mod_level = None
    docmdp = embedded.docmdp_level
    certification = embedded.sig_object.get("/Reference") is not None and docmdp is not None
    coverage = status.coverage

    reasons: list[str] = []
    warnings: list[str] = []
    revocation = Revocation.NOT_CHECKED
    details = status.revocation_details
    revocation_time = details.revocation_date if details is not None else None
    trust_problem: AdESSubIndic | None = status.trust_problem_indic
    indication: Indication
    sub: str | None = None

    if tst is not None and not tst_ok:
        warnings.append("timestamp_not_verified")
    subfilter = str(embedded.sig_object.get("/SubFilter", "")).lstrip("/") or None
    if subfilter and subfilter != "ETSI.CAdES.detached":
        warnings.append("not_pades")

    modified = status.docmdp_ok is False or (
        coverage is not None and coverage < SignatureCoverageLevel.ENTIRE_REVISION
    )
    failure = _integrity_failure(status, modified, reasons)
    if failure is not None:
        indication, sub = failure
    elif details is not None:
        revocation = Revocation.REVOKED
        when = signing_time
        if when is not None and details.revocation_date <= when:
            # the signer's own claim (or the timestamp) puts the signature after revocation
            indication, sub = Indication.TOTAL_FAILED, AdESFailure.REVOKED.name
            reasons.append("revoked_before_signing")
        elif poe is not None and poe < details.revocation_date:
            indication = Indication.TOTAL_PASSED
            warnings.append("revoked_after_signing")
        else:
            indication = Indication.INDETERMINATE
            sub = (
                AdESIndeterminate.REVOKED_CA_NO_POE.name
                if details.ca_revoked
                else AdESIndeterminate.REVOKED_NO_POE.name
            )
            reasons.append("revoked_no_poe")
    elif trust_problem is None and status.trusted:
        indication = Indication.TOTAL_PASSED
        revocation = Revocation.GOOD
    elif trust_problem in (
        AdESIndeterminate.OUT_OF_BOUNDS_NO_POE,
        AdESIndeterminate.OUT_OF_BOUNDS_NOT_REVOKED,
        AdESIndeterminate.EXPIRED,
    ):
        in_validity = (
            cert is not None
            and poe is not None
            and cert.not_valid_before <= poe <= cert.not_valid_after
        )
        if (
            in_validity
            and poe is not None
            and await _validate_at(
                cert, poe, context, list(embedded.other_embedded_certs), dss, embedded
            )
        ):
            indication = Indication.TOTAL_PASSED
            revocation = Revocation.GOOD
            warnings.append("validated_at_timestamp_time")
        else:
            indication = Indication.INDETERMINATE
            sub = AdESIndeterminate.OUT_OF_BOUNDS_NO_POE.name
            reasons.append("expired_no_poe")
    else:
        problem = trust_problem or AdESIndeterminate.CERTIFICATE_CHAIN_GENERAL_FAILURE
        if problem == AdESIndeterminate.CERTIFICATE_CHAIN_GENERAL_FAILURE and cert is not None:
            # pyHanko folds "no revocation data obtainable" into this sub-indication; ask
            # certvalidator again (cheap: the context caches) to tell the two apart
            if await _revinfo_missing(cert, context, list(embedded.other_embedded_certs)):
                problem = AdESIndeterminate.TRY_LATER
        unavailable = problem in (
            AdESIndeterminate.TRY_LATER,
            AdESIndeterminate.REVOCATION_OUT_OF_BOUNDS_NO_POE,
        )
        if unavailable and await _proven_with_embedded_data(embedded, status, context, dss):
            indication = Indication.TOTAL_PASSED
            revocation = Revocation.GOOD
            warnings.append("validated_with_embedded_revocation_data")
        else:
            sub = problem.standard_name
            indication = (
                Indication.TOTAL_FAILED
                if isinstance(problem, AdESFailure)
                else Indication.INDETERMINATE
            )
            if problem == AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND:
                reasons.append("no_trusted_root")
            elif unavailable:
                reasons.append("revocation_unavailable")
                revocation = Revocation.UNKNOWN
            elif problem in (AdESIndeterminate.NOT_YET_VALID, AdESFailure.NOT_YET_VALID):
                reasons.append("not_yet_valid")
            elif problem in (
                AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE,
                AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
            ):
                reasons.append("weak_algorithm")
            else:
                reasons.append("chain_invalid")

    if indication == Indication.TOTAL_PASSED and mod_level == ModificationLevel.ANNOTATIONS.name:
        # allowed, but a person should look at what was drawn over the signed page
        warnings.append("annotations_after_signing")
    elif indication == Indication.TOTAL_PASSED and mod_level == ModificationLevel.FORM_FILLING.name:
        changed = set(diff.changed_form_fields) if isinstance(diff, DiffResult) else set()
        if changed - signature_fields:  # later signatures are expected; filled-in forms less so
            warnings.append("form_filled_after_signing")
    if "validated_with_embedded_revocation_data" in warnings:
        warnings = [w for w in warnings if w != "timestamp_not_verified"]

    result = SignatureResult(
        kind="signature",
        field_name=embedded.field_name,
        indication=indication,
        sub_indication=sub,
        signer_cn=subj.get("common_name"),
        signer_o=subj.get("organization_name"),
        issuer_cn=issuer.get("common_name") if isinstance(issuer, dict) else None,
        certificate_sha256=cert.sha256.hex() if cert is not None else None,
        signing_time=signing_time,
        claimed_signing_time=claimed,
        timestamped=tst is not None,
        timestamp_time=tst.timestamp if tst is not None else None,
        timestamp_trusted=tst_ok if tst is not None else None,
        intact=status.intact,
        crypto_valid=status.valid,
        trusted=status.trusted or indication == Indication.TOTAL_PASSED,
        revocation=revocation,
        revocation_time=revocation_time,
        pades_level=_pades_level(tst is not None, dss, cert, bool(later_doc_ts)),
        subfilter=subfilter,
        coverage=coverage.name if coverage is not None else None,
        modification_level=mod_level,
        docmdp=docmdp.name if isinstance(docmdp, MDPPerm) else None,
        certification=certification,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
    )
    return result, status


async def _evaluate_timestamp(
    embedded: EmbeddedPdfSignature, context: ValidationContext, diff_policy: DiffPolicy
) -> SignatureResult:
    status = await async_validate_pdf_timestamp(
        embedded, validation_context=context, diff_policy=diff_policy
    )
    cert = status.signing_cert
    subj = _subject(cert)
    diff = status.diff_result
    if isinstance(diff, DiffResult):
        mod_level = diff.modification_level.name
    elif diff is not None:
        mod_level = ModificationLevel.OTHER.name
    else:
        mod_level = None
    reasons: list[str] = []
    warnings: list[str] = []
    sub: str | None = None
    coverage = status.coverage
    modified = mod_level == ModificationLevel.OTHER.name or (
        coverage is not None and coverage < SignatureCoverageLevel.ENTIRE_REVISION
    )
    failure = _integrity_failure(status, modified, reasons)
    if failure is not None:
        indication, sub = failure
    elif status.trusted:
        indication = Indication.TOTAL_PASSED
    else:
        indication = Indication.INDETERMINATE
        problem = status.trust_problem_indic or AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND
        sub = problem.standard_name
        warnings.append("document_timestamp_untrusted")
    return SignatureResult(
        kind="document_timestamp",
        field_name=embedded.field_name,
        indication=indication,
        sub_indication=sub,
        signer_cn=subj.get("common_name"),
        signer_o=subj.get("organization_name"),
        certificate_sha256=cert.sha256.hex() if cert is not None else None,
        signing_time=status.timestamp,
        timestamped=True,
        timestamp_time=status.timestamp,
        timestamp_trusted=status.trusted,
        intact=status.intact,
        crypto_valid=status.valid,
        trusted=status.trusted,
        revocation=Revocation.GOOD if status.trusted else Revocation.NOT_CHECKED,
        coverage=coverage.name if coverage is not None else None,
        modification_level=mod_level,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
    )


def _etsi_xml(items: list[tuple[EmbeddedPdfSignature, PdfSignatureStatus, SignatureResult]]) -> str:
    """ETSI TS 119 102-2 XML via pyHanko's (incubating) reporting, with *our* indications."""
    from pyhanko.sign.validation.ades import AdESBasicValidationResult, ValidationObjectSet
    from pyhanko.sign.validation.report import tools as report_tools

    def subindic(result: SignatureResult) -> AdESSubIndic:
        if result.indication == Indication.TOTAL_PASSED:
            return AdESPassed.OK
        name = result.sub_indication or "GENERIC"
        enum_cls = (
            AdESFailure if result.indication == Indication.TOTAL_FAILED else AdESIndeterminate
        )
        try:
            return enum_cls[name]
        except KeyError:
            return AdESIndeterminate.GENERIC

    results = [
        (
            embedded,
            AdESBasicValidationResult(
                ades_subindic=subindic(result),
                api_status=status,
                failure_msg=", ".join(result.reasons) or None,
                validation_objects=ValidationObjectSet.empty(),
            ),
        )
        for embedded, status, result in items
    ]
    if len(results) == 1:
        return report_tools.generate_report(*results[0])
    # several signatures: one ValidationReport with one entry each (pyHanko's public function
    # writes one document per signature)
    from pyhanko.generated.etsi import ts_11910202
    from xsdata.formats.dataclass.serializers import XmlSerializer
    from xsdata.formats.dataclass.serializers.config import SerializerConfig

    report = ts_11910202.ValidationReport(
        signature_validation_report=tuple(
            report_tools._generate_report(emb, res) for emb, res in results
        ),
    )
    return XmlSerializer(config=SerializerConfig(indent="  ")).render(
        report, ns_map=report_tools.NAMESPACES
    )


def _aggregate(signatures: list[SignatureResult], timestamps: list[SignatureResult]) -> Verdict:
    every = [*signatures, *timestamps]
    if any(r.indication == Indication.TOTAL_FAILED for r in every):
        return Verdict.INVALID
    if any(r.indication == Indication.INDETERMINATE for r in signatures):
        return Verdict.INDETERMINATE
    return Verdict.VALID


def _report(pdf: bytes, verdict: Verdict, **kwargs: Any) -> Report:
    return Report(verdict=verdict, sha256=hashlib.sha256(pdf).hexdigest(), size=len(pdf), **kwargs)


async def async_validate(
    pdf: bytes,
    context: ValidationContext,
    options: ValidateOptions = ValidateOptions(),
) -> Report:
    """Validate every signature and document timestamp in ``pdf``; never raises for the file.

    Args:
        pdf: the file as uploaded.
        context: a pyHanko validation context (see ``signing.pki``); reuse it for a batch. Its
            cache of revocation data and paths survives; the HTTP session it opened for itself
            is closed before returning, because a session belongs to one event loop and the
            next call may run in another (a caller-owned session is left alone).
        options: see :class:`ValidateOptions`.
    """
    try:
        return await _validate(pdf, context, options)
    except Exception as exc:
        # last resort: a bug of ours or an exception outside the per-signature guards; the
        # file was readable, so "could not confirm" is the honest verdict
        log.exception("validation failed unexpectedly")
        return _report(
            bytes(pdf),
            Verdict.INDETERMINATE,
            error=f"{type(exc).__name__}: {exc}"[:500],
            warnings=("validation_error",),
            document_status=options.document_status,
        )
    finally:
        await context.aclose()


async def _validate(pdf: bytes, context: ValidationContext, options: ValidateOptions) -> Report:
    pdf = bytes(pdf)
    document_status = options.document_status
    try:
        reader = _open(pdf)
    except _Unreadable as exc:
        log.info("unreadable file (%s)", str(exc)[:120])
        return _report(pdf, Verdict.UNREADABLE, error=str(exc), document_status=document_status)

    diff_policy = options.diff_policy or _DIFF_POLICY
    # enumerate fields one by one: one broken field must not hide the others
    entries: list[tuple[str | None, Any]] = []
    enumeration_error: str | None = None
    try:
        for name, sig_obj, field_ref in enumerate_sig_fields(reader, filled_status=True):
            entries.append((name, (sig_obj, field_ref)))
            if len(entries) >= options.max_signatures:
                break
    except Exception as exc:
        enumeration_error = f"{type(exc).__name__}: {exc}"
        log.info("cannot enumerate signature fields: %s", type(exc).__name__)

    signatures: list[SignatureResult] = []
    timestamps: list[SignatureResult] = []
    report_warnings: list[str] = []

    if enumeration_error is not None:
        # fall back to the raw bytes: every ByteRange in the file is a signature to account for
        report_warnings.append("signature_fields_unreadable")
        seen: set[tuple[int, int, int, int]] = set()
        for m in _BYTE_RANGE.finditer(pdf):
            br = (int(m[1]), int(m[2]), int(m[3]), int(m[4]))
            if br in seen or len(seen) >= options.max_signatures:
                continue
            seen.add(br)
            signatures.append(
                _result_from_raw(
                    _raw_check(pdf, br),
                    kind="signature",
                    field_name=None,
                    error=enumeration_error,
                )
            )
        if not signatures:
            return _report(
                pdf,
                Verdict.NO_SIGNATURE,
                warnings=tuple(report_warnings),
                error=enumeration_error,
                document_status=document_status,
            )
        return _report(
            pdf,
            _aggregate(signatures, []),
            signatures=tuple(signatures),
            warnings=tuple(report_warnings),
            document_status=document_status,
        )

    if not entries:
        return _report(pdf, Verdict.NO_SIGNATURE, document_status=document_status)

    # build EmbeddedPdfSignature objects; a failure here is recorded per field
    embedded_list: list[tuple[int, str, EmbeddedPdfSignature]] = []
    for name, (sig_obj, field_ref) in entries:
        try:
            embedded = EmbeddedPdfSignature(reader, field_ref, str(name))
            kind = (
                "document_timestamp" if embedded.sig_object_type == "/DocTimeStamp" else "signature"
            )
            embedded_list.append((embedded.signed_revision, kind, embedded))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.info("signature field unreadable: %s", type(exc).__name__)
            kind = "signature"
            try:
                if sig_obj.get_object().get("/Type") == "/DocTimeStamp":
                    kind = "document_timestamp"
            except Exception:
                pass
            found = _byte_range_of(sig_obj)
            raw = (
                _raw_check(pdf, found) if found else _RawCheck((0, 0, 0, 0), None, None, None, None)
            )
            result = _result_from_raw(raw, kind=kind, field_name=name, error=error)
            (timestamps if kind == "document_timestamp" else signatures).append(result)
    embedded_list.sort(key=lambda item: item[0])

    dss = _read_dss(reader)
    sig_field_names = {str(name) for name, _ in entries if name is not None}

    # document timestamps first: they are proofs of existence for the signatures before them
    doc_ts: list[tuple[int, SignatureResult]] = []
    for revision, kind, embedded in embedded_list:
        if kind != "document_timestamp":
            continue
        try:
            result = await _evaluate_timestamp(embedded, context, diff_policy)
        except Exception as exc:
            result = _on_error(pdf, embedded, kind, exc)
        doc_ts.append((revision, result))
        timestamps.append(result)

    etsi_items: list[tuple[EmbeddedPdfSignature, PdfSignatureStatus, SignatureResult]] = []
    for _revision, kind, embedded in embedded_list:
        if kind != "signature":
            continue
        try:
            result, status = await _evaluate(
                embedded, context, diff_policy, dss, doc_ts, sig_field_names
            )
            etsi_items.append((embedded, status, result))
        except Exception as exc:
            result = _on_error(pdf, embedded, kind, exc)
        signatures.append(result)

    if not signatures:
        # only document timestamps: nobody signed the document
        return _report(
            pdf,
            Verdict.NO_SIGNATURE,
            timestamps=tuple(timestamps),
            warnings=("only_document_timestamps",),
            document_status=document_status,
        )

    etsi_xml = None
    if options.etsi_report and etsi_items:
        try:
            etsi_xml = _etsi_xml(etsi_items)
        except Exception:  # incubating in pyHanko; the rest of the report stands without it
            log.warning("ETSI report generation failed", exc_info=True)

    verdict = _aggregate(signatures, timestamps)
    reasons = tuple(dict.fromkeys(r for s in [*signatures, *timestamps] for r in s.reasons))
    warnings = tuple(
        dict.fromkeys(
            [*report_warnings, *(w for s in [*signatures, *timestamps] for w in s.warnings)]
        )
    )
    log.info(
        "validated %d signature(s), %d document timestamp(s): %s",
        len(signatures),
        len(timestamps),
        verdict,
    )
    return _report(
        pdf,
        verdict,
        signatures=tuple(signatures),
        timestamps=tuple(timestamps),
        reasons=reasons,
        warnings=warnings,
        document_status=document_status,
        etsi_xml=etsi_xml,
    )


def _on_error(
    pdf: bytes, embedded: EmbeddedPdfSignature, kind: str, exc: BaseException
) -> SignatureResult:
    """pyHanko raised while validating: record it and let the raw bytes decide."""
    error = f"{type(exc).__name__}: {exc}"[:500]
    log.info("validation error on a %s: %s", kind, type(exc).__name__)
    br = _byte_range_of(embedded.sig_object)
    raw = _raw_check(pdf, br) if br else _RawCheck((0, 0, 0, 0), None, None, None, None)
    return _result_from_raw(raw, kind=kind, field_name=embedded.field_name, error=error)


def validate(
    pdf: bytes,
    context: ValidationContext,
    options: ValidateOptions = ValidateOptions(),
) -> Report:
    """Synchronous :func:`async_validate` (runs its own event loop; see the module docstring).

    The same context can be reused across calls and threads (one at a time).
    """
    return run_sync(lambda: async_validate(pdf, context, options))


async def async_validate_in_thread(
    pdf: bytes,
    context: ValidationContext,
    options: ValidateOptions = ValidateOptions(),
) -> Report:
    """Run :func:`validate` in a worker thread, keeping the caller's event loop free."""
    return await asyncio.to_thread(validate, pdf, context, options)
