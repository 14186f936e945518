"""Citizen identity: OpenID Connect ID tokens signed by the configured provider.

A portal key says which client is calling; only an ID token signed by the
identity provider (VNeID in production) says which citizen is present. Consent
and citizen-facing actions need both, so a portal cannot act for a citizen on
its own.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt

from digitizer.config import Settings
from digitizer.errors import InvalidCitizenTokenError, InvalidPersonalIdError
from digitizer.services.citizens import validate_pid


@dataclass(frozen=True)
class CitizenIdentity:
    """Who the token says is present: the personal id (never logged) and the subject."""

    pid: str
    subject: str

    def __repr__(self) -> str:  # keep the number out of tracebacks and logs
        return "CitizenIdentity(pid=<hidden>, subject=<hidden>)"


def keys_path(settings: Settings) -> Path:
    """Where the provider's public keys are read from."""
    if settings.identity.keys_file is not None:
        return Path(settings.identity.keys_file)
    return Path(settings.embedded.home) / "idp" / "jwks.json"


@lru_cache(maxsize=8)
def _load_keys(path: str, mtime: float) -> dict[str | None, Any]:
    raw = Path(path).read_bytes()
    if raw.lstrip().startswith(b"{"):
        jwks = jwt.PyJWKSet.from_dict(json.loads(raw))
        return {k.key_id: k.key for k in jwks.keys}
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return {None: load_pem_public_key(raw)}


def provider_keys(settings: Settings) -> dict[str | None, Any]:
    """The provider's public keys by key id (re-read when the file changes)."""
    path = keys_path(settings)
    try:
        return _load_keys(str(path), path.stat().st_mtime)
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise InvalidCitizenTokenError("the identity provider's keys are not configured") from exc


def verify_citizen_token(settings: Settings, token: str | None) -> CitizenIdentity:
    """Check an ID token's signature, issuer, audience and times; return the citizen.

    Raises:
        InvalidCitizenTokenError: missing, malformed, wrongly signed, expired, for
            another audience or issuer, or without a valid personal id claim.
    """
    failure = InvalidCitizenTokenError(
        "a valid ID token from the identity provider is required (header X-Citizen-Token)"
    )
    if not token or len(token) > 8192:
        raise failure
    cfg = settings.identity
    keys = provider_keys(settings)
    try:
        header = jwt.get_unverified_header(token)
        key = keys.get(header.get("kid"))
        if key is None and len(keys) == 1:
            key = next(iter(keys.values()))  # a single configured key (PEM) has no id
        if key is None:
            raise failure
        claims = jwt.decode(
            token,
            key=key,
            algorithms=cfg.algorithms,
            audience=cfg.audience,
            issuer=cfg.issuer,
            leeway=cfg.leeway_s,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise failure from exc
    if claims["iat"] < time.time() - cfg.max_age_s - cfg.leeway_s:
        raise failure
    try:
        pid = validate_pid(str(claims.get(cfg.pid_claim, "")))
    except InvalidPersonalIdError as exc:
        raise failure from exc
    return CitizenIdentity(pid=pid, subject=str(claims["sub"]))
