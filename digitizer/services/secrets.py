"""The service's master secret and the keys derived from it.

Personal identification numbers are encrypted with AES-GCM and looked up by an
HMAC; both keys are derived (HKDF) from one master secret so that an operator
rotates one value. In deployments the secret comes from ``SOHOA_SECRET_KEY``;
for one-machine use a random key file is created once in the embedded home
(mode 0600), never next to the data it protects in a deployment.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets as _secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from digitizer.config import Settings


@dataclass(frozen=True)
class DerivedKeys:
    """Purpose-bound keys derived from the master secret."""

    encryption: bytes
    lookup: bytes


def _decode(value: str) -> bytes:
    value = value.strip()
    for decoder in (bytes.fromhex, base64.urlsafe_b64decode, base64.b64decode):
        try:
            raw = decoder(value)
        except (ValueError, binascii.Error):
            continue
        if len(raw) >= 32:
            return raw
    raise ValueError("SOHOA_SECRET_KEY must be at least 32 random bytes, hex or base64")


def master_secret(settings: Settings) -> bytes:
    """The configured master secret, or the embedded key file (created on first use)."""
    if settings.secret_key is not None:
        return _decode(settings.secret_key.get_secret_value())
    path = Path(settings.embedded.home) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(_secrets.token_hex(32))
    return _decode(path.read_text())


def derive_keys(master: bytes) -> DerivedKeys:
    """Separate keys for encryption and for keyed lookup hashes."""

    def derive(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)

    return DerivedKeys(
        encryption=derive(b"sohoa/pid-encryption/v1"), lookup=derive(b"sohoa/pid-lookup/v1")
    )
