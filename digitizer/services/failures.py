"""A document's failure history: each attempt's reason, kept for clerks.

Its own module (not ``processing``) so that the worker's supervisor can record a lost
run without importing the pipeline.
"""

from __future__ import annotations

from storage.db import Document, utcnow


def record_failure(doc: Document, reason: str) -> None:
    """Append an attempt's failure to the document's history (kept for clerks)."""
    history = list(doc.failures or [])
    history.append({"attempt": doc.attempts, "at": utcnow().isoformat(), "reason": reason[:500]})
    doc.failures = history[-20:]
