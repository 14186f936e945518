"""Helpers for integration tests: keys, clients, running the queue in-process."""

from __future__ import annotations

from fastapi.testclient import TestClient
from rq import SimpleWorker

from digitizer.api.app import create_app
from digitizer.config import Settings
from digitizer.services.keys import create_key
from storage.db import session_scope
from workers.jobs import warm_up
from workers.queues import get_queue, get_redis
from workers.sweeper import relay_outbox


def make_key(
    settings: Settings,
    role: str = "clerk",
    name: str = "Nguyễn Văn Test",
    office: str | None = None,
) -> str:
    """Create an API key with ``role`` (and ``office``); returns the key."""
    with session_scope(settings.db.url) as session:
        _, key = create_key(session, name=name, role=role, office=office)
    return key


def client(settings: Settings, role: str | None = "clerk", office: str | None = None) -> TestClient:
    """A test client for the app, authenticated with a fresh key of ``role`` (and ``office``)."""
    test_client = TestClient(create_app(settings), raise_server_exceptions=False)
    if role is not None:
        test_client.headers["X-API-Key"] = make_key(settings, role, office=office)
    return test_client


def drain(settings: Settings) -> int:
    """Relay the outbox and work the queue until empty, in this process (rq's SimpleWorker)."""
    warm_up(settings)
    relay_outbox(settings)
    queue = get_queue(settings)
    worker = SimpleWorker([queue], connection=get_redis(settings.redis.url))
    worker.work(burst=True, with_scheduler=False)
    return queue.count
