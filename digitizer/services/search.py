"""Clerks' search over their office's documents: by citizen, type, number, dates (of
digitization, and of issue: the paper's own ``issue_date``), full text.

PostgreSQL: full-text search over the recognised text, accent-insensitive
(``sohoa_search_vector`` / ``sohoa_search_query`` of migration 0007, served by a
GIN index; web-search syntax: words, "quoted phrases", -excluded words).
SQLite (embedded one-machine use): every word must occur in the text (``LIKE``),
which is case- and accent-sensitive beyond ASCII and scans the office's documents.

Results are newest first and paged with an opaque cursor. Each search writes an
audit event ``search.query`` naming the filters used, never their values (a
personal id is looked up by its keyed hash and never stored or logged).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from digitizer.errors import InvalidRequestError
from digitizer.services import audit, cursors
from digitizer.services.citizens import CitizenRegistry
from digitizer.services.keys import Actor
from storage.db import Document

MAX_LIMIT = 100
SNIPPET_CHARS = 160
_MAX_QUERY = 500


@dataclass(frozen=True)
class SearchQuery:
    """What a clerk asked for (all optional; ``citizen_pid`` never leaves this request)."""

    citizen_pid: str | None = None
    doc_type: str | None = None
    doc_number: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    #: The paper's own issue date (its reviewed ``issue_date`` field), inclusive.
    issued_from: date | None = None
    issued_to: date | None = None
    q: str | None = None
    limit: int = 20
    cursor: str | None = None


@dataclass(frozen=True)
class SearchHit:
    id: str
    filename: str
    doc_type: str | None
    doc_number: str | None
    issued_on: date | None
    state: str
    created_at: datetime
    snippet: str | None


@dataclass(frozen=True)
class SearchPage:
    items: list[SearchHit]
    next_cursor: str | None


# -- text --------------------------------------------------------------------------------
def fold(text: str) -> str:
    """Lower case without diacritics, one character per input character (đ -> d)."""
    out = []
    for char in text:
        base = unicodedata.normalize("NFD", char)[0].lower()
        out.append("d" if base == "đ" else base)
    return "".join(out)


_WORD = re.compile(r"[^\W_]+(?:[./-][^\W_]+)*", re.UNICODE)


def query_words(q: str) -> list[str]:
    """The words of a query, without web-search operators (for LIKE and snippets)."""
    words = []
    for token in q.split():
        if token.startswith("-"):
            continue
        words += _WORD.findall(token)
    return [w for w in words if w.lower() != "or"]


def snippet(text: str | None, words: list[str], width: int = SNIPPET_CHARS) -> str | None:
    """A window of ``text`` around the first word found (accent-insensitive), else its start."""
    if not text:
        return None
    flat = " ".join(text.split())
    folded = fold(flat)
    hits = [folded.find(fold(w)) for w in words if w]
    hits = [h for h in hits if h >= 0]
    start = max(0, min(hits) - width // 3) if hits else 0
    if start > 0:
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    end = min(len(flat), start + width)
    if end < len(flat):
        space = flat.rfind(" ", start, end)
        end = space if space > start + width // 2 else end
    return ("…" if start > 0 else "") + flat[start:end] + ("…" if end < len(flat) else "")


# -- search ------------------------------------------------------------------------------
def _office_clause(actor: Actor) -> Any:
    # Staff see their own office; a key without an office and documents without one form
    # one unscoped office (see digitizer.services.access).
    return Document.office.is_(None) if actor.office is None else Document.office == actor.office


def _text_clause(session: Session, q: str) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.sohoa_search_vector(Document.search_text).op("@@")(func.sohoa_search_query(q))
    words = query_words(q)
    if not words:
        return Document.id.is_(None)  # nothing searchable: no match
    return and_(*(Document.search_text.contains(w, autoescape=True) for w in words))


def validate(query: SearchQuery) -> None:
    """Refuse malformed queries before touching data.

    Raises:
        InvalidRequestError: limit out of range, reversed dates, over-long text.
    """
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_LIMIT}")
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise InvalidRequestError("date_from is after date_to")
    if query.issued_from and query.issued_to and query.issued_from > query.issued_to:
        raise InvalidRequestError("issued_from is after issued_to")
    if query.q is not None and len(query.q) > _MAX_QUERY:
        raise InvalidRequestError(f"q is longer than {_MAX_QUERY} characters")


def search(
    session: Session, registry: CitizenRegistry, actor: Actor, query: SearchQuery
) -> SearchPage:
    """One page of the actor's office's documents matching ``query`` (audited)."""
    validate(query)
    used = sorted(
        name
        for name in (
            "citizen_pid",
            "doc_type",
            "doc_number",
            "date_from",
            "date_to",
            "issued_from",
            "issued_to",
            "q",
        )
        if getattr(query, name) not in (None, "")
    )
    citizen_id: str | None = None
    stmt: Select[Document] = select(Document).where(_office_clause(actor))
    if query.citizen_pid:
        citizen = registry.find(session, query.citizen_pid)  # validates the number
        citizen_id = citizen.id if citizen else None
        stmt = stmt.where(Document.citizen_id == (citizen_id or ""))
    if query.doc_type:
        stmt = stmt.where(Document.doc_type == query.doc_type)
    if query.doc_number:
        stmt = stmt.where(Document.doc_number == query.doc_number.strip())
    if query.date_from:
        stmt = stmt.where(Document.created_at >= datetime.combine(query.date_from, time(), UTC))
    if query.date_to:
        end = datetime.combine(query.date_to + timedelta(days=1), time(), UTC)
        stmt = stmt.where(Document.created_at < end)
    if query.issued_from:
        stmt = stmt.where(Document.issued_on >= query.issued_from)
    if query.issued_to:
        stmt = stmt.where(Document.issued_on <= query.issued_to)
    text = (query.q or "").strip()
    if text:
        stmt = stmt.where(_text_clause(session, text))
    if query.cursor:
        created, doc_id = cursors.decode(query.cursor)
        stmt = stmt.where(
            or_(
                Document.created_at < created,
                and_(Document.created_at == created, Document.id < doc_id),
            )
        )
    stmt = stmt.order_by(Document.created_at.desc(), Document.id.desc()).limit(query.limit + 1)
    docs = list(session.scalars(stmt))
    more = len(docs) > query.limit
    docs = docs[: query.limit]
    words = query_words(text) if text else []
    items = [
        SearchHit(
            id=d.id,
            filename=d.filename,
            doc_type=d.doc_type,
            doc_number=d.doc_number,
            issued_on=d.issued_on,
            state=d.state,
            created_at=d.created_at,
            snippet=snippet(d.search_text, words) if text else None,
        )
        for d in docs
    ]
    audit.record(
        session,
        actor,
        "search.query",
        citizen_id=citizen_id,
        detail={"filters": used, "results": len(items), "page": bool(query.cursor)},
    )
    return SearchPage(
        items=items, next_cursor=cursors.encode(docs[-1].created_at, docs[-1].id) if more else None
    )
