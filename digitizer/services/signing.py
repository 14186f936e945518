"""Signing e-copies for the issuing offices (keys loaded once per process)."""

from __future__ import annotations

from digitizer.config import Settings
from digitizer.errors import ServiceUnavailableError
from digitizer.services.verify import validation_config
from signing.pki import KeyRing, OfficeKey, Pkcs12Key, load_trust_store
from signing.signer import OfficeSigner, PadesLevel, SignOptions, StampSpec, TimestampConfig


class SigningService:
    """Signs PDFs with the configured office keys, TSA and trust store."""

    def __init__(self, settings: Settings) -> None:
        sig = settings.signing
        if not sig.offices:
            raise ServiceUnavailableError(
                "no office signing keys are configured: set SOHOA_SIGNING__OFFICES"
            )
        config = validation_config(settings)
        offices = [
            OfficeKey(
                office_code=o.code,
                office_name=o.name,
                key=Pkcs12Key(
                    o.pkcs12,
                    o.passphrase.get_secret_value() if o.passphrase else None,
                ),
            )
            for o in sig.offices
        ]
        self.level = PadesLevel(sig.level)
        self.public_base_url = settings.public_base_url.rstrip("/")
        tsa = TimestampConfig(sig.tsa_url) if sig.tsa_url else None
        trust = load_trust_store(config.trust_store_dir, config.intermediates_dir)
        self.signer = OfficeSigner(KeyRing(offices), tsa, trust, config)

    def sign(
        self,
        pdf: bytes,
        office_code: str,
        *,
        level: str | None = None,
        verify_url: str | None = None,
        signer: str | None = None,
    ) -> bytes:
        """A new signed copy of ``pdf`` (the input bytes are never changed)."""
        stamp = StampSpec(verify_url or f"{self.public_base_url}/v1/verify", signer=signer)
        options = SignOptions(level=PadesLevel(level) if level else self.level, stamp=stamp)
        return self.signer.sign(pdf, office_code, options)
