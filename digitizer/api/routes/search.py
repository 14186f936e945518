"""Clerks' search (POST: the personal id travels in the body, never in the URL)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from digitizer.api.deps import Clerk, SessionDep, SettingsDep
from digitizer.models import Problem
from digitizer.services import search as svc
from digitizer.services.wiring import citizen_registry

router = APIRouter(prefix="/v1", tags=["search"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid key"},
    403: {"model": Problem, "description": "Not a clerk or approver"},
    422: {"model": Problem, "description": "Malformed query"},
}


class SearchRequest(BaseModel):
    """Filters (all optional, combined with AND) over the caller's office's documents."""

    citizen_pid: str | None = Field(
        default=None, description="12-digit personal identification number of the citizen"
    )
    doc_type: str | None = Field(default=None, max_length=50)
    doc_number: str | None = Field(default=None, max_length=100)
    date_from: date | None = Field(default=None, description="Digitized on or after (UTC)")
    date_to: date | None = Field(default=None, description="Digitized on or before (UTC)")
    issued_from: date | None = Field(
        default=None, description="Issued on or after (the document's own issue date)"
    )
    issued_to: date | None = Field(
        default=None, description="Issued on or before (the document's own issue date)"
    )
    q: str | None = Field(
        default=None,
        max_length=500,
        description='Full text of the OCR: words, "quoted phrase", -excluded; '
        "accent-insensitive on PostgreSQL",
    )
    limit: int = Field(default=20, ge=1, le=svc.MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=500)


class SearchResult(BaseModel):
    id: str
    filename: str
    doc_type: str | None
    doc_number: str | None
    issued_on: date | None = Field(description="The document's own issue date, when known")
    state: str
    created_at: datetime
    snippet: str | None = Field(description="Text around the first match (with q)")


class SearchResults(BaseModel):
    items: list[SearchResult]
    next_cursor: str | None = Field(description="Pass as cursor for the next page")


@router.post("/search", response_model=SearchResults, responses=_PROBLEMS)
def search_documents(
    body: SearchRequest, session: SessionDep, settings: SettingsDep, actor: Clerk
) -> SearchResults:
    """Search the caller's office's documents, newest first (audited as ``search.query``)."""
    page = svc.search(
        session,
        citizen_registry(settings),
        actor,
        svc.SearchQuery(**body.model_dump()),
    )
    return SearchResults(
        items=[SearchResult(**hit.__dict__) for hit in page.items],
        next_cursor=page.next_cursor,
    )
