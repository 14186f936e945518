"""Processing a document: the pipeline wrapped in the document state machine.

``process`` is safe to call twice for the same document: a document already
past processing is left alone (a duplicate job does nothing), a retried one
reuses the derived objects its earlier attempt finished.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import OperationalError

from digitizer.config import Settings
from digitizer.errors import BadInputError
from digitizer.pipeline.ocr import OcrEngine
from digitizer.pipeline.preflight import Limits
from digitizer.pipeline.runner import Pipeline, PipelineResult, ProgressFn
from storage.db import SETTLED_STATES, Document, DocumentState, session_scope, utcnow
from storage.errors import ObjectNotFoundError, ObjectStoreUnavailableError
from storage.objects import ObjectStore

log = logging.getLogger(__name__)

#: Failures worth retrying: the adapters were unreachable, not the input bad.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ObjectStoreUnavailableError, OperationalError)


def limits_from(settings: Settings) -> Limits:
    """Preflight limits from the settings."""
    return Limits(
        max_bytes=settings.limits.max_upload_bytes,
        max_pages=settings.limits.max_pages,
        max_pixels=settings.limits.max_pixels,
    )


class ProcessingService:
    """Runs the pipeline for documents and records the outcome."""

    def __init__(self, settings: Settings, store: ObjectStore, engine: OcrEngine) -> None:
        self.settings = settings
        self.store = store
        self.pipeline = Pipeline(store, engine, limits_from(settings), deskew=settings.ocr.deskew)

    @property
    def db_url(self) -> str:
        return self.settings.db.url

    def process(self, document_id: str, progress: ProgressFn | None = None) -> str:
        """Process one document; returns its resulting state.

        Raises:
            One of TRANSIENT_ERRORS, for the queue to retry later.
        """
        with session_scope(self.db_url) as session:
            doc = session.get(Document, document_id)
            if doc is None:
                log.warning("document %s no longer exists; nothing to do", document_id)
                return "missing"
            if doc.state in SETTLED_STATES:
                log.info("document %s is already %s; skipping", document_id, doc.state)
                return doc.state
            doc.state = DocumentState.PROCESSING
            doc.started_at = utcnow()
            doc.attempts += 1
            doc.error = None
            sha256 = doc.sha256

        try:
            result = self.pipeline.run(sha256, progress)
        except BadInputError as exc:
            return self.mark_failed(document_id, exc.detail)
        except ObjectNotFoundError:
            return self.mark_failed(document_id, "the original file is missing from storage")
        except TRANSIENT_ERRORS as exc:
            self._note(document_id, f"temporarily unavailable, will retry: {type(exc).__name__}")
            raise
        except Exception as exc:  # a bug or an input the libraries choke on
            log.exception("document %s failed in the pipeline", document_id)
            return self.mark_failed(document_id, f"processing error: {type(exc).__name__}: {exc}")
        return self._finish(document_id, result)

    def _finish(self, document_id: str, result: PipelineResult) -> str:
        confidence = result.confidence
        has_text = any(p.lines for p in result.pages)
        needs_review = not has_text or (
            confidence is not None and confidence < self.settings.review_min_ocr_confidence
        )
        state = DocumentState.NEEDS_REVIEW if needs_review else DocumentState.READY
        with session_scope(self.db_url) as session:
            doc = session.get(Document, document_id)
            if doc is None:
                return "missing"
            doc.state = state
            doc.page_count = result.info.page_count
            doc.has_signatures = result.info.has_signatures
            doc.ocr_confidence = round(confidence, 2) if confidence is not None else None
            doc.error = None if has_text else "no text was recognised; check the scan"
            doc.results = {
                "searchable_pdf": result.searchable_pdf_key,
                "ocr": result.ocr_key,
                "text": result.text_key,
                "ocr_version": self.pipeline.ocr_version,
                "text_pages": result.info.text_pages,
                "timings": {k: round(v, 3) for k, v in result.timings.items()},
            }
            doc.finished_at = utcnow()
        return state.value

    def mark_failed(self, document_id: str, reason: str) -> str:
        """Record a final failure with a readable reason; the original stays stored."""
        with session_scope(self.db_url) as session:
            doc = session.get(Document, document_id)
            if doc is None:
                return "missing"
            doc.state = DocumentState.FAILED
            doc.error = reason[:2000]
            doc.finished_at = utcnow()
        log.info("document %s failed: %s", document_id, reason)
        return DocumentState.FAILED.value

    def _note(self, document_id: str, message: str) -> None:
        try:
            with session_scope(self.db_url) as session:
                doc = session.get(Document, document_id)
                if doc is not None:
                    doc.error = message
        except OperationalError:
            log.warning("could not record the retry note for document %s", document_id)
