"""Citizens: personal identification numbers validated, encrypted, looked up by keyed hash.

A citizen is referred to everywhere by an opaque id; the 12-digit number (số
định danh cá nhân) is stored only encrypted and never leaves this module in
clear except to its rightful reader.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digitizer.errors import InvalidPersonalIdError
from digitizer.services.secrets import DerivedKeys
from storage.db import Citizen, new_id

#: Province/city codes of the first three digits (Circular 07/2016/TT-BCA, Annex),
#: unchanged by the 2025 province mergers: numbers issued before stay valid.
PROVINCE_CODES = frozenset(
    "001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031 033 "
    "034 035 036 037 038 040 042 044 045 046 048 049 051 052 054 056 058 060 062 064 066 "
    "067 068 070 072 074 075 077 079 080 082 083 084 086 087 089 091 092 093 094 095 096".split()
)


def validate_pid(value: str) -> str:
    """A normalised 12-digit personal identification number.

    Structure: 3 digits province of birth registration, 1 digit century and sex
    (0/1: 20th century male/female, 2/3: 21st, ... up to 9), 2 digits year of
    birth, 6 random digits.

    Raises:
        InvalidPersonalIdError: with a reason that does not repeat the number.
    """
    pid = "".join(value.split())
    if len(pid) != 12 or not pid.isdigit():
        raise InvalidPersonalIdError("a personal identification number has exactly 12 digits")
    if pid[:3] not in PROVINCE_CODES:
        raise InvalidPersonalIdError("the first three digits are not a province code")
    return pid


class CitizenRegistry:
    """Finds or creates citizens by their personal identification number."""

    def __init__(self, keys: DerivedKeys) -> None:
        self._keys = keys
        self._aead = AESGCM(keys.encryption)

    def lookup_hash(self, pid: str) -> str:
        """The keyed hash used to find a citizen without decrypting anything."""
        return hmac.new(self._keys.lookup, pid.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, pid: str, citizen_id: str) -> bytes:
        """Encrypt a number, bound to the citizen row it belongs to."""
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, pid.encode(), citizen_id.encode())

    def decrypt(self, citizen: Citizen) -> str:
        """The number of a citizen (for its rightful reader only)."""
        blob = citizen.pid_encrypted
        return self._aead.decrypt(blob[:12], blob[12:], citizen.id.encode()).decode()

    def find(self, session: Session, pid: str) -> Citizen | None:
        """The citizen with this number, if known."""
        digest = self.lookup_hash(validate_pid(pid))
        return session.scalars(select(Citizen).where(Citizen.pid_hash == digest)).first()

    def get_or_create(self, session: Session, pid: str) -> Citizen:
        """The citizen with this number, created if new (safe under concurrency)."""
        pid = validate_pid(pid)
        existing = self.find(session, pid)
        if existing is not None:
            return existing
        citizen_id = new_id()
        citizen = Citizen(
            id=citizen_id,
            pid_hash=self.lookup_hash(pid),
            pid_encrypted=self.encrypt(pid, citizen_id),
        )
        try:
            with session.begin_nested():
                session.add(citizen)
        except IntegrityError:
            found = self.find(session, pid)
            assert found is not None
            return found
        return citizen
