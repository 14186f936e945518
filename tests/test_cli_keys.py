"""``sohoa keys``: create with role, office and expiry (shown once), list, revoke."""

from __future__ import annotations

from datetime import timedelta

import pytest

from digitizer.config import Settings
from digitizer.services.keys import authenticate
from digitizer.stack import settings_env
from storage.db import ApiKey, session_scope, utcnow
from tests.test_cli import sohoa


@pytest.mark.smoke
def test_keys_create_with_office_and_expiry_list_and_revoke(settings: Settings) -> None:
    env = settings_env(settings)
    created = sohoa(
        "keys",
        "create",
        "--role",
        "clerk",
        "--name",
        "Trần Thị Mai",
        "--office",
        "ubnd-phuong-hoan-kiem",
        "--expires-days",
        "30",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sohoa_") and len(created.stdout.splitlines()) == 1
    assert "shown once" in created.stderr and "note:" not in created.stderr
    with session_scope(settings.db.url) as session:
        actor = authenticate(session, key)
        row = session.get(ApiKey, actor.key_id)
        assert row is not None and row.expires_at is not None
        left = row.expires_at - utcnow()
        assert timedelta(days=29, hours=23) < left <= timedelta(days=30)
    assert (actor.role, actor.office, actor.name) == (
        "clerk",
        "ubnd-phuong-hoan-kiem",
        "Trần Thị Mai",
    )

    listed = sohoa("keys", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    [line] = [ln for ln in listed.stdout.splitlines() if ln.startswith(actor.key_id)]
    assert "clerk" in line and "active" in line and "ubnd-phuong-hoan-kiem" in line
    assert row.expires_at.date().isoformat() in line
    secret = key.split("_", 2)[2]
    assert key not in listed.stdout and secret not in listed.stdout + listed.stderr

    assert sohoa("keys", "revoke", actor.key_id, env=env).returncode == 0
    [line] = [ln for ln in sohoa("keys", "list", env=env).stdout.splitlines() if actor.key_id in ln]
    assert "revoked" in line
    unknown = sohoa("keys", "revoke", "0" * 32, env=env)
    assert unknown.returncode != 0 and "no key" in unknown.stderr


def test_portal_keys_have_no_office_and_staff_without_office_get_a_note(
    settings: Settings,
) -> None:
    env = settings_env(settings)
    refused = sohoa(
        "keys", "create", "--role", "portal", "--name", "Cổng DVC", "--office", "x", env=env
    )
    assert refused.returncode != 0 and "no office" in refused.stderr
    assert refused.stdout == ""
    portal = sohoa("keys", "create", "--role", "portal", "--name", "Cổng DVC", env=env)
    assert portal.returncode == 0 and "note:" not in portal.stderr
    approver = sohoa("keys", "create", "--role", "approver", "--name", "Lê Văn An", env=env)
    assert approver.returncode == 0 and "note: no --office" in approver.stderr
    for bad in (["--expires-days", "0"], ["--role", "root"]):
        args = ["keys", "create", "--role", "clerk", "--name", "n", *bad]
        assert sohoa(*args, env=env).returncode == 2  # usage error
    # An expired key is listed as expired and no longer authenticates.
    with session_scope(settings.db.url) as session:
        row = session.query(ApiKey).filter(ApiKey.role == "approver").one()
        row.expires_at = utcnow() - timedelta(minutes=1)
        key_id = row.id
    [line] = [ln for ln in sohoa("keys", "list", env=env).stdout.splitlines() if key_id in ln]
    assert "expired" in line
