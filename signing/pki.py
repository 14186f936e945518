"""Keys per office, the trust store, the revocation policy and validation contexts.

- One signing key per office, from a PKCS#12 file (path + passphrase) or a PKCS#11 token / HSM
  (module, slot or token label, key label, PIN). :class:`KeyRing` loads each key once and hands
  out pyHanko signers; pyHanko's ``Signer`` does not care where the key lives.
- A trust store is a directory of certificates (PEM or DER, ``.pem .crt .cer .der``; a PEM file
  may hold several) that operators fill with Vietnam's root certificates. Nothing else is trusted:
  not the operating system's TLS roots (pyHanko's fallback to them is deprecated and wrong for
  document signatures).
- Revocation checking hard-fails by default: a signer whose status cannot be established is not
  "valid" (SIGNING.md: with checking off, a revoked signer passes).
- A pyHanko ``ValidationContext`` caches fetched OCSP responses, CRLs and built paths, which cut 20
  B-LT validations from 6.96 s to 2.72 s (SIGNING.md). Build one per batch with
  :func:`build_validation_context`, or let :class:`ValidationContextPool` rebuild it when it gets
  old (its validation time is fixed when it is built, and cached revocation data ages).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509
from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.fetchers.api import FetcherBackend, OwnedFetcherBackend

from signing.errors import (
    KeyUnavailableError,
    SigningConfigError,
    TrustStoreError,
    UnknownOfficeError,
)

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

CERT_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der"})


# -- key configuration --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Pkcs12Key:
    """An office key in a PKCS#12 (``.p12``/``.pfx``) file.

    Attributes:
        path: the PKCS#12 file.
        passphrase: its passphrase (``None`` for an unencrypted file).
        chain: extra certificate files (PEM/DER) to embed when the PKCS#12 file lacks the
            intermediate CA certificates.
    """

    path: Path
    passphrase: str | None = dataclasses.field(default=None, repr=False)
    chain: tuple[Path, ...] = ()


@dataclasses.dataclass(frozen=True)
class Pkcs11Key:
    """An office key on a PKCS#11 token or HSM.

    Attributes:
        module_path: the PKCS#11 module (``.so``), e.g. ``/usr/lib/softhsm/libsofthsm2.so``.
        key_label: label (CKA_LABEL) of the private key.
        pin: user PIN; ``None`` when the token authenticates out of band.
        slot: slot number; or find the token by ``token_label``.
        token_label: label of the token to use.
        cert_label: label of the certificate object (defaults to ``key_label``).
        cert_path: the certificate as a file, for tokens that hold only the key.
        chain: extra certificate files (PEM/DER) to embed (intermediate CAs).
    """

    module_path: Path
    key_label: str
    pin: str | None = dataclasses.field(default=None, repr=False)
    slot: int | None = None
    token_label: str | None = None
    cert_label: str | None = None
    cert_path: Path | None = None
    chain: tuple[Path, ...] = ()


KeyConfig = Pkcs12Key | Pkcs11Key


@dataclasses.dataclass(frozen=True)
class OfficeKey:
    """The signing key of one office.

    Attributes:
        office_code: stable identifier of the office (e.g. ``ubnd-tinh-ninh-binh``).
        office_name: the name printed on the stamp (e.g. "Ủy ban nhân dân tỉnh Ninh Bình").
        key: where the key lives.
    """

    office_code: str
    office_name: str
    key: KeyConfig


@dataclasses.dataclass
class LoadedKey:
    """A usable key: the pyHanko signer plus what the stamp and reports need from its certificate.

    For PKCS#11 keys it holds an open token session; call :meth:`close` (``KeyRing`` does).
    """

    signer: Signer
    certificate: x509.Certificate
    office_name: str | None = None
    _session: Any = dataclasses.field(default=None, repr=False)

    @property
    def subject_cn(self) -> str:
        return str(self.certificate.subject.native.get("common_name", ""))

    @property
    def subject_o(self) -> str:
        return str(self.certificate.subject.native.get("organization_name", ""))

    def close(self) -> None:
        """Close the PKCS#11 session, if any. Safe to call twice."""
        session, self._session = self._session, None
        if session is not None:
            try:
                session.close()
            except Exception:  # a token pulled out mid-run must not mask the real error
                log.warning("closing the PKCS#11 session failed", exc_info=True)


def _read_cert_files(paths: Iterable[Path]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for path in paths:
        try:
            certs.extend(load_certs_from_pemder_data(Path(path).read_bytes()))
        except OSError as exc:
            raise SigningConfigError(f"cannot read certificate file {path}: {exc}") from exc
        except Exception as exc:  # asn1crypto raises ValueError/TypeError on junk
            raise SigningConfigError(f"{path} is not a PEM/DER certificate: {exc}") from exc
    return certs


def load_pkcs12_key(config: Pkcs12Key) -> LoadedKey:
    """Load a PKCS#12 key.

    Raises:
        KeyUnavailableError: the file is missing or the passphrase is wrong.
        SigningConfigError: a chain file is unreadable.
    """
    try:
        data = Path(config.path).read_bytes()
    except OSError as exc:
        raise KeyUnavailableError(f"cannot read the PKCS#12 file {config.path}: {exc}") from exc
    chain = _read_cert_files(config.chain)
    passphrase = config.passphrase.encode("utf-8") if config.passphrase is not None else None
    try:
        signer = SimpleSigner.load_pkcs12_data(data, other_certs=chain, passphrase=passphrase)
    except ValueError as exc:
        # pyHanko says "Could not load key material": almost always a wrong passphrase
        raise KeyUnavailableError(
            f"cannot open the PKCS#12 file {config.path} (wrong passphrase or damaged file)"
        ) from exc
    cert = signer.signing_cert
    if cert is None:  # pragma: no cover - pyHanko always sets it for PKCS#12
        raise KeyUnavailableError(f"{config.path} holds no certificate")
    return LoadedKey(signer=signer, certificate=cert)


def load_pkcs11_key(config: Pkcs11Key) -> LoadedKey:
    """Open a session on the token and prepare a PKCS#11 signer.

    Raises:
        KeyUnavailableError: module, token, key or certificate not found, or wrong PIN.
    """
    try:
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session
    except ImportError as exc:  # pragma: no cover - python-pkcs11 is a dependency
        raise SigningConfigError("PKCS#11 support needs python-pkcs11") from exc

    if config.slot is None and config.token_label is None:
        raise SigningConfigError("a PKCS#11 key needs a slot number or a token label")
    criteria = TokenCriteria(label=config.token_label) if config.token_label else None
    try:
        session = open_pkcs11_session(
            str(config.module_path),
            slot_no=config.slot,
            token_criteria=criteria,
            user_pin=config.pin,
        )
    except Exception as exc:  # python-pkcs11 raises its own hierarchy, not all under one base
        raise KeyUnavailableError(
            f"cannot open the PKCS#11 token ({type(exc).__name__}: {exc})"
        ) from exc

    signing_cert = None
    if config.cert_path is not None:
        certs = _read_cert_files([config.cert_path])
        if not certs:
            session.close()
            raise SigningConfigError(f"{config.cert_path} holds no certificate")
        signing_cert = certs[0]
    try:
        signer = PKCS11Signer(
            session,
            key_label=config.key_label,
            cert_label=None
            if signing_cert is not None
            else (config.cert_label or config.key_label),
            signing_cert=signing_cert,
            ca_chain=_read_cert_files(config.chain),
        )
        cert = signer.signing_cert  # forces the lookup, so a wrong label fails here
    except SigningConfigError:
        session.close()
        raise
    except Exception as exc:
        session.close()
        raise KeyUnavailableError(
            f"key or certificate not found on the PKCS#11 token ({type(exc).__name__}: {exc})"
        ) from exc
    return LoadedKey(signer=signer, certificate=cert, _session=session)


def load_key(config: KeyConfig) -> LoadedKey:
    """Load a key from PKCS#12 or PKCS#11."""
    if isinstance(config, Pkcs12Key):
        return load_pkcs12_key(config)
    if isinstance(config, Pkcs11Key):
        return load_pkcs11_key(config)
    raise SigningConfigError(f"unknown key configuration {type(config).__name__}")


class KeyRing:
    """The offices' keys, each loaded on first use and kept for the life of the process.

    A worker loads a key once and signs many documents with it; PKCS#12 decryption and token
    log-in are not paid per job. Thread-safe for lookups; a PKCS#11 session itself is not shared
    across threads by pyHanko, so use one ``KeyRing`` per worker thread or process.
    """

    def __init__(self, offices: Iterable[OfficeKey]) -> None:
        self._offices = {o.office_code: o for o in offices}
        self._loaded: dict[str, LoadedKey] = {}
        self._lock = threading.Lock()

    @property
    def office_codes(self) -> list[str]:
        return sorted(self._offices)

    def office(self, office_code: str) -> OfficeKey:
        try:
            return self._offices[office_code]
        except KeyError:
            raise UnknownOfficeError(
                f"no signing key configured for office {office_code!r}", office=office_code
            ) from None

    def get(self, office_code: str) -> LoadedKey:
        """The loaded key of ``office_code``.

        Raises:
            UnknownOfficeError: no key configured for the office.
            KeyUnavailableError: the key cannot be loaded.
        """
        office = self.office(office_code)
        with self._lock:
            key = self._loaded.get(office_code)
            if key is None:
                key = load_key(office.key)
                key.office_name = office.office_name
                self._loaded[office_code] = key
                log.info("loaded signing key of office %s", office_code)
            return key

    def forget(self, office_code: str) -> None:
        """Drop a loaded key (e.g. after the token was re-inserted); reloads on next use."""
        with self._lock:
            key = self._loaded.pop(office_code, None)
        if key is not None:
            key.close()

    def close(self) -> None:
        with self._lock:
            keys, self._loaded = list(self._loaded.values()), {}
        for key in keys:
            key.close()

    def __enter__(self) -> KeyRing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- trust and revocation -----------------------------------------------------------------------
class RevocationPolicy(enum.StrEnum):
    """How certificate status checking treats missing information.

    ``hard-fail`` (default): a certificate that names a CRL/OCSP location must be checked, and an
    unreachable responder makes the signature indeterminate. ``require``: every certificate must
    have revocation information, even without such a location. ``soft-fail``: fetching failures
    are ignored (for offline diagnostics only; a revoked signer may then pass).
    """

    HARD_FAIL = "hard-fail"
    REQUIRE = "require"
    SOFT_FAIL = "soft-fail"


@dataclasses.dataclass(frozen=True)
class TrustStore:
    """Trusted roots, plus optional intermediate certificates used to build paths."""

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    source: str = ""


def load_certificates(directory: Path) -> list[x509.Certificate]:
    """Every certificate in ``directory`` (non-recursive), in file-name order.

    Raises:
        TrustStoreError: the directory is missing or a file cannot be parsed.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise TrustStoreError(f"trust store directory {directory} does not exist")
    certs: list[x509.Certificate] = []
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() not in CERT_SUFFIXES or not path.is_file():
            continue
        try:
            found = list(load_certs_from_pemder_data(path.read_bytes()))
        except Exception as exc:
            raise TrustStoreError(f"{path.name} in the trust store is not a certificate") from exc
        certs.extend(found)
    return certs


def load_trust_store(directory: Path, intermediates_dir: Path | None = None) -> TrustStore:
    """Load the trust store directory (and optionally a directory of intermediate CAs).

    Raises:
        TrustStoreError: missing directory, unreadable file, or no certificate at all (an empty
            trust store would make every signature indeterminate; better to fail at start-up).
    """
    roots = load_certificates(directory)
    if not roots:
        raise TrustStoreError(f"trust store directory {directory} holds no certificate")
    intermediates = load_certificates(intermediates_dir) if intermediates_dir else []
    log.info("trust store loaded: %d roots, %d intermediates", len(roots), len(intermediates))
    return TrustStore(roots=tuple(roots), intermediates=tuple(intermediates), source=str(directory))


@dataclasses.dataclass(frozen=True)
class ValidationConfig:
    """How signatures are validated.

    Attributes:
        trust_store_dir: directory of trusted root certificates.
        intermediates_dir: optional directory of intermediate CA certificates (for signatures
            that do not embed their chain).
        revocation: revocation policy (hard-fail by default).
        allow_fetching: fetch OCSP/CRL (and missing issuers) over HTTP.
        fetch_timeout_s: per-request timeout for those fetches.
        time_tolerance_s: clock skew tolerated in validity checks.
        context_max_age_s: how long :class:`ValidationContextPool` reuses one context.
    """

    trust_store_dir: Path
    intermediates_dir: Path | None = None
    revocation: RevocationPolicy = RevocationPolicy.HARD_FAIL
    allow_fetching: bool = True
    fetch_timeout_s: float = 10.0
    time_tolerance_s: float = 1.0
    context_max_age_s: float = 300.0


def build_validation_context(
    trust: TrustStore | ValidationConfig,
    *,
    config: ValidationConfig | None = None,
    moment: datetime | None = None,
    session: aiohttp.ClientSession | None = None,
    other_certs: Sequence[x509.Certificate] = (),
    crls: Sequence[bytes | asn1_crl.CertificateList] = (),
    ocsps: Sequence[bytes | asn1_ocsp.OCSPResponse] = (),
) -> ValidationContext:
    """Build a pyHanko ``ValidationContext``; build one per batch and reuse it.

    Args:
        trust: a loaded :class:`TrustStore`, or a :class:`ValidationConfig` whose trust store
            directory is read now.
        config: the policy to apply (defaults to ``trust`` when it is a ``ValidationConfig``,
            else to hard-fail with fetching).
        moment: validate "as of" this time instead of now (point-in-time validation; remote
            fetching is then disabled, pass ``crls``/``ocsps``).
        session: an aiohttp session for OCSP/CRL fetching, owned by the caller; by default the
            context provisions its own, which the sync helpers release after each call.
        other_certs: extra certificates for path building.
        crls: known CRLs (DER or parsed).
        ocsps: known OCSP responses (DER or parsed).
    """
    if isinstance(trust, ValidationConfig):
        config = config or trust
        trust = load_trust_store(trust.trust_store_dir, trust.intermediates_dir)
    if config is None:
        config = ValidationConfig(trust_store_dir=Path(trust.source or "."))
    fetching = config.allow_fetching and moment is None
    backend: FetcherBackend | OwnedFetcherBackend | None = None
    if fetching:
        if session is not None:
            backend = AIOHttpFetcherBackend(session, per_request_timeout=config.fetch_timeout_s)
        else:
            backend = OwnedFetcherBackend(
                AIOHttpFetcherBackend(per_request_timeout=config.fetch_timeout_s)
            )
    return ValidationContext(
        trust_roots=list(trust.roots),
        other_certs=[*trust.intermediates, *other_certs],
        moment=moment,
        allow_fetching=fetching,
        fetcher_backend=backend,
        revocation_mode=config.revocation.value,
        # lists, never None: certvalidator refuses an essential policy when both are None and
        # fetching is off, but "nothing known" must give an indeterminate result, not an error
        crls=list(crls),
        ocsps=list(ocsps),
        time_tolerance=timedelta(seconds=config.time_tolerance_s),
    )


class ValidationContextPool:
    """Hands out one validation context and rebuilds it after ``context_max_age_s``.

    The trust store is read once. A context's "now" is fixed when it is built and its cache of
    OCSP responses ages, so a long-lived worker must not keep one forever; within the age limit a
    batch reuses fetched revocation data and paths. Not thread-safe by design: pyHanko contexts
    are not, so give each worker thread its own pool.
    """

    def __init__(self, config: ValidationConfig, trust: TrustStore | None = None) -> None:
        self.config = config
        self.trust = trust or load_trust_store(config.trust_store_dir, config.intermediates_dir)
        self._context: ValidationContext | None = None
        self._built_at = 0.0

    def get(self) -> ValidationContext:
        """The current context, rebuilt if it is older than the configured age."""
        now = time.monotonic()
        if self._context is None or now - self._built_at > self.config.context_max_age_s:
            self._context = self.new()
            self._built_at = now
        return self._context

    def new(self, **kwargs: Any) -> ValidationContext:
        """A fresh context with this pool's trust store and policy (``kwargs`` as for
        :func:`build_validation_context`)."""
        return build_validation_context(self.trust, config=self.config, **kwargs)
