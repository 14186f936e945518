"""PAdES signing and verification of e-copies (pyHanko only: no FastAPI, no RQ, no storage).

- :mod:`signing.pki`: office keys (PKCS#12, PKCS#11), trust store, revocation policy,
  validation contexts.
- :mod:`signing.signer`: PAdES B-T / B-LT / B-LTA with a Vietnamese stamp and QR code, second
  signatures, B-LTA renewal.
- :mod:`signing.validator`: per-signature results and the document verdict of DESIGN.md.
- :mod:`signing.report`: JSON, HTML and PDF reports in Vietnamese, ETSI TS 119 102-2 XML.
- :mod:`signing.errors`: errors with stable problem slugs.
"""

from signing.errors import (
    CertificateNotUsableError,
    KeyUnavailableError,
    RevocationInfoUnavailableError,
    SigningConfigError,
    SigningError,
    TimestampUnavailableError,
    TrustStoreError,
    UnknownOfficeError,
    UnsignableDocumentError,
)
from signing.pki import (
    KeyRing,
    LoadedKey,
    OfficeKey,
    Pkcs11Key,
    Pkcs12Key,
    RevocationPolicy,
    TrustStore,
    ValidationConfig,
    ValidationContextPool,
    build_validation_context,
    load_key,
    load_trust_store,
)
from signing.signer import (
    DocMdp,
    OfficeSigner,
    PadesLevel,
    SignOptions,
    StampSpec,
    TimestampConfig,
    add_document_timestamp,
    async_add_document_timestamp,
    async_sign_pdf,
    sign_pdf,
)
from signing.validator import (
    Indication,
    Report,
    Revocation,
    SignatureResult,
    ValidateOptions,
    Verdict,
    async_validate,
    async_validate_in_thread,
    validate,
)

__all__ = [
    "CertificateNotUsableError",
    "DocMdp",
    "Indication",
    "KeyRing",
    "KeyUnavailableError",
    "LoadedKey",
    "OfficeKey",
    "OfficeSigner",
    "PadesLevel",
    "Pkcs11Key",
    "Pkcs12Key",
    "Report",
    "Revocation",
    "RevocationInfoUnavailableError",
    "RevocationPolicy",
    "SignOptions",
    "SignatureResult",
    "SigningConfigError",
    "SigningError",
    "StampSpec",
    "TimestampConfig",
    "TimestampUnavailableError",
    "TrustStore",
    "TrustStoreError",
    "UnknownOfficeError",
    "UnsignableDocumentError",
    "ValidateOptions",
    "ValidationConfig",
    "ValidationContextPool",
    "Verdict",
    "add_document_timestamp",
    "async_add_document_timestamp",
    "async_sign_pdf",
    "async_validate",
    "async_validate_in_thread",
    "build_validation_context",
    "load_key",
    "load_trust_store",
    "sign_pdf",
    "validate",
]
