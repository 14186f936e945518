"""Job functions for the worker tests (imported by worker processes started by tests)."""

from __future__ import annotations

import signal
import time

from digitizer.config import get_settings
from digitizer.services.processing import Heartbeat
from storage.db import Document, DocumentState, session_scope, utcnow


def hang(document_id: str) -> None:
    """Claim the document as a processing run does (heartbeat included), then hang where
    rq's alarm cannot interrupt (SIGALRM blocked), as a job stuck inside native code would."""
    with session_scope(get_settings().db.url) as session:
        doc = session.get(Document, document_id)
        assert doc is not None
        doc.state = DocumentState.PROCESSING
        doc.attempts += 1
        doc.started_at = doc.heartbeat_at = utcnow()
    settings = get_settings()
    Heartbeat(settings.db.url, document_id, settings.worker.heartbeat_seconds).start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(3600)
