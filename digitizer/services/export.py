"""A citizen's vault as a signed package, for moving it to another system.

The package is a ZIP:

- ``ecopies/{ecopy_id}.pdf``: each current, valid e-copy, byte for byte (its own PAdES
  signature keeps verifying on its own);
- ``manifest.json``: the package format, when and by which office it was made, the
  citizen's opaque reference, and per e-copy its id, type, number, issuer, issue date,
  validity, status, file name, size and SHA-256. Current e-copies that were revoked are
  listed with their status and no file. No personal identification number, no fields;
- ``manifest.json.p7s``: a detached CMS (CAdES) signature of ``manifest.json`` by the
  exporting office's key, timestamped when a TSA is configured.

:func:`verify_package` checks a package the way a receiving system would: the manifest's
signature (intact, valid, signer trusted), every listed file present with the listed
hash and size, and nothing in the archive that the manifest does not list.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from datetime import datetime
from typing import Any

from pyhanko_certvalidator import ValidationContext
from sqlalchemy.orm import Session

from digitizer.config import Settings
from digitizer.doctypes import DOC_TYPES
from digitizer.errors import InvalidRequestError, NotFoundError, ServiceUnavailableError
from digitizer.services import audit
from digitizer.services.keys import Actor
from digitizer.services.vault import current_ecopies
from digitizer.services.verify import validation_config
from signing.cms import DetachedStatus, sign_detached, validate_detached
from signing.pki import KeyRing, OfficeKey, Pkcs12Key, build_validation_context, load_trust_store
from signing.signer import TimestampConfig
from storage.db import Citizen, ECopyStatus, utcnow
from storage.objects import ObjectStore

FORMAT = "sohoa-vault-export/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.p7s"

#: Limits when reading a package (it may come from elsewhere).
MAX_ENTRIES = 10_000
MAX_TOTAL_BYTES = 2 * 1024**3


@dataclasses.dataclass(frozen=True)
class Package:
    """A built package and what it holds."""

    data: bytes
    manifest: dict[str, Any]


def _key_ring(settings: Settings, office_code: str | None) -> tuple[KeyRing, str, str]:
    offices = settings.signing.offices
    if not offices:
        raise ServiceUnavailableError(
            "no office signing keys are configured: set SOHOA_SIGNING__OFFICES"
        )
    chosen = next((o for o in offices if o.code == office_code), None)
    if office_code is None:
        chosen = offices[0]
    if chosen is None:
        raise NotFoundError("no signing key is configured for this office")
    ring = KeyRing(
        [
            OfficeKey(
                office_code=chosen.code,
                office_name=chosen.name,
                key=Pkcs12Key(
                    chosen.pkcs12,
                    chosen.passphrase.get_secret_value() if chosen.passphrase else None,
                ),
            )
        ]
    )
    return ring, chosen.code, chosen.name


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def build_package(
    session: Session,
    settings: Settings,
    store: ObjectStore,
    citizen: Citizen,
    actor: Actor | None,
    *,
    purpose: str,
    office_code: str | None = None,
) -> Package:
    """Export ``citizen``'s current e-copies, signed by ``office_code`` (audited).

    ``office_code`` defaults to the actor's office, else the first configured office.

    Raises:
        ServiceUnavailableError: no signing keys configured, or the object store is down.
        NotFoundError: no key for the office.
    """
    ring, code, name = _key_ring(settings, office_code or (actor.office if actor else None))
    tsa = TimestampConfig(settings.signing.tsa_url) if settings.signing.tsa_url else None
    ecopies = current_ecopies(session, citizen.id, DOC_TYPES)
    entries: list[dict[str, Any]] = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for ecopy in ecopies:
            entry: dict[str, Any] = {
                "ecopy_id": ecopy.id,
                "document_type": ecopy.doc_type,
                "document_number": ecopy.doc_number,
                "issuer": ecopy.issuer,
                "issuer_code": ecopy.office_code,
                "issued_at": _iso(ecopy.issued_at),
                "valid_until": _iso(ecopy.valid_until),
                "status": ecopy.status,
                "revoked_at": _iso(ecopy.revoked_at),
                "file": None,
                "size": None,
                "sha256": None,
            }
            if ecopy.status == ECopyStatus.VALID:
                data = store.get_bytes(ecopy.object_key)
                digest = hashlib.sha256(data).hexdigest()
                if digest != ecopy.sha256:
                    raise ServiceUnavailableError(
                        f"the stored file of e-copy {ecopy.id} does not match its hash"
                    )
                entry["file"] = f"ecopies/{ecopy.id}.pdf"
                entry["size"], entry["sha256"] = len(data), digest
                archive.writestr(zipfile.ZipInfo(entry["file"], _zip_time()), data)
            entries.append(entry)
        manifest = {
            "format": FORMAT,
            "created_at": _iso(utcnow()),
            "exported_by": {"office_code": code, "office_name": name},
            "citizen_ref": citizen.id,
            "documents": entries,
        }
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
        try:
            signature = sign_detached(manifest_bytes, ring.get(code), tsa)
        finally:
            ring.close()
        info = zipfile.ZipInfo(MANIFEST, _zip_time())
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, manifest_bytes)
        archive.writestr(zipfile.ZipInfo(SIGNATURE, _zip_time()), signature)
    audit.record(
        session,
        actor,
        "vault.export",
        citizen_id=citizen.id,
        purpose=purpose,
        detail={
            "office_code": code,
            "ecopy_ids": [e["ecopy_id"] for e in entries],
            "files": sum(1 for e in entries if e["file"]),
        },
    )
    return Package(data=buffer.getvalue(), manifest=manifest)


def _zip_time() -> tuple[int, int, int, int, int, int]:
    now = utcnow()
    return (now.year, now.month, now.day, now.hour, now.minute, now.second)


# -- verification --------------------------------------------------------------------------
@dataclasses.dataclass
class PackageCheck:
    """The outcome of :func:`verify_package`; ``ok`` only when nothing is wrong."""

    signature: DetachedStatus | None
    problems: list[str]
    manifest: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return not self.problems and self.signature is not None and self.signature.ok

    def as_dict(self) -> dict[str, Any]:
        sig = self.signature
        return {
            "ok": self.ok,
            "problems": self.problems,
            "signer": sig.signer if sig else None,
            "signature": (
                {
                    "intact": sig.intact,
                    "valid": sig.valid,
                    "trusted": sig.trusted,
                    "timestamped": sig.timestamped,
                    "signing_time": _iso(sig.signing_time),
                }
                if sig
                else None
            ),
            "documents": len((self.manifest or {}).get("documents", [])),
        }


def context_from_settings(settings: Settings) -> ValidationContext:
    """A validation context from the configured trust store and revocation policy."""
    config = validation_config(settings)
    return build_validation_context(
        load_trust_store(config.trust_store_dir, config.intermediates_dir), config=config
    )


def verify_package(data: bytes, context: ValidationContext | None) -> PackageCheck:
    """Check a package: manifest signature, every file's hash and size, nothing extra.

    ``context`` decides whom to trust; without one the signature can be intact and
    valid but never trusted, so the package is not ``ok``.
    """
    problems: list[str] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        return PackageCheck(None, [f"not a readable ZIP archive: {exc}"], None)
    if len(infos) > MAX_ENTRIES or sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
        return PackageCheck(None, ["the archive is larger than allowed"], None)
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        problems.append("the archive holds the same name twice")
    if MANIFEST not in names or SIGNATURE not in names:
        return PackageCheck(None, [*problems, f"{MANIFEST} or {SIGNATURE} is missing"], None)
    manifest_bytes = archive.read(MANIFEST)
    signature = validate_detached(manifest_bytes, archive.read(SIGNATURE), context)
    if signature.problem:
        problems.append(f"manifest signature: {signature.problem}")
    try:
        manifest = json.loads(manifest_bytes)
        documents = manifest["documents"]
        if manifest.get("format") != FORMAT or not isinstance(documents, list):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return PackageCheck(signature, [*problems, "the manifest is not a vault manifest"], None)
    listed = {MANIFEST, SIGNATURE}
    for entry in documents:
        name = entry.get("file") if isinstance(entry, dict) else None
        if name is None:
            continue
        listed.add(name)
        ref = entry.get("ecopy_id")
        if name not in names:
            problems.append(f"e-copy {ref}: file {name} is missing")
            continue
        content = archive.read(name)
        if hashlib.sha256(content).hexdigest() != entry.get("sha256"):
            problems.append(f"e-copy {ref}: file {name} does not match its SHA-256")
        elif len(content) != entry.get("size"):
            problems.append(f"e-copy {ref}: file {name} does not match its size")
    for extra in sorted(set(names) - listed):
        problems.append(f"{extra} is not listed in the manifest")
    return PackageCheck(signature, problems, manifest)


def find_citizen(session: Session, settings: Settings, pid: str) -> Citizen:
    """The citizen with ``pid``.

    Raises:
        InvalidPersonalIdError: not a valid number.
        NotFoundError: no such citizen here.
    """
    from digitizer.services.wiring import citizen_registry

    citizen = citizen_registry(settings).find(session, pid)
    if citizen is None:
        raise NotFoundError("no citizen with this personal identification number")
    return citizen


def check_purpose(purpose: str | None) -> str:
    """A stated purpose (required for an export).

    Raises:
        InvalidRequestError: missing or too long.
    """
    text = (purpose or "").strip()
    if not text or len(text) > 300:
        raise InvalidRequestError("state the purpose of the export (1 to 300 characters)")
    return text
