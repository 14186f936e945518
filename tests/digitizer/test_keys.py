"""API keys: hashed, shown once, expiring, revocable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from digitizer.errors import ForbiddenError, NotAuthenticatedError
from digitizer.services.keys import authenticate, create_key, require_role, revoke_key
from storage.db import ApiKey, session_scope, utcnow

pytestmark = pytest.mark.smoke


def test_key_is_stored_hashed_and_authenticates_repeatedly(db: str) -> None:
    with session_scope(db) as session:
        row, key = create_key(session, name="Phạm Thu Hà", role="clerk", office="ubnd-ba-dinh")
        key_id = row.id
    with session_scope(db) as session:
        stored = session.get(ApiKey, key_id)
        assert stored is not None and key not in (stored.key_hash, stored.prefix)
    for _ in range(2):  # the second read compares stored (timezone-aware) times
        with session_scope(db) as session:
            actor = authenticate(session, key)
    assert (actor.role, actor.office) == ("clerk", "ubnd-ba-dinh")


def test_expired_revoked_and_forged_keys_are_refused(db: str) -> None:
    with session_scope(db) as session:
        _, expired = create_key(session, name="a", role="clerk", expires_at=utcnow() - timedelta(1))
        row, revoked = create_key(session, name="b", role="clerk")
        assert revoke_key(session, row.id)
        _, good = create_key(session, name="c", role="clerk")
    forged = good[:-4] + "AAAA"
    for key in (expired, revoked, forged, None, "", "sohoa_x", "Bearer x"):
        with session_scope(db) as session, pytest.raises(NotAuthenticatedError):
            authenticate(session, key)


def test_roles() -> None:
    from digitizer.services.keys import Actor

    require_role(Actor("1", "n", "admin", None), ("clerk",))
    with pytest.raises(ForbiddenError):
        require_role(Actor("1", "n", "portal", None), ("clerk", "approver"))
