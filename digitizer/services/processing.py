"""Processing a document: the pipeline wrapped in the document state machine.

``process`` is safe to call twice for the same document: a document already
past processing is left alone (a duplicate job does nothing), a retried one
reuses the derived objects its earlier attempt finished. While it runs, a
heartbeat thread stamps the row every few seconds; the sweeper treats a silent
``processing`` document as abandoned (its worker died) and queues it again, up
to ``max_attempts`` runs in all, after which it is ``failed`` with every
attempt's reason kept for the clerk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rq.timeouts import JobTimeoutException
from sqlalchemy import or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from digitizer.config import Settings
from digitizer.errors import BadInputError
from digitizer.pipeline.classify import Classifier
from digitizer.pipeline.extract import extract, fields_to_dict, review_reasons
from digitizer.pipeline.fingerprint import Fingerprint, fingerprint, similarity
from digitizer.pipeline.ocr import OcrEngine
from digitizer.pipeline.preflight import limits_from
from digitizer.pipeline.runner import Pipeline, PipelineResult, ProgressFn
from digitizer.pipeline.training import CURRENT_FILE, ModelError, load_model
from digitizer.services.failures import record_failure
from digitizer.services.verify import VerifyService
from signing import report as reports
from storage.db import (
    SETTLED_STATES,
    BatchItem,
    Document,
    DocumentState,
    ping,
    session_scope,
    utcnow,
)
from storage.errors import ObjectNotFoundError, ObjectStoreUnavailableError
from storage.objects import ObjectStore

log = logging.getLogger(__name__)

#: Failures worth retrying: the adapters were unreachable, not the input bad.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ObjectStoreUnavailableError, OperationalError)


class Heartbeat(threading.Thread):
    """Stamps ``heartbeat_at`` on a document every ``interval`` seconds until stopped."""

    def __init__(self, db_url: str, document_id: str, interval: float) -> None:
        super().__init__(name=f"heartbeat-{document_id}", daemon=True)
        self.db_url = db_url
        self.document_id = document_id
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                with session_scope(self.db_url) as session:
                    session.execute(
                        update(Document)
                        .where(Document.id == self.document_id)
                        .values(heartbeat_at=utcnow())
                    )
            except Exception:  # a missed beat is not fatal; a long silence is
                log.warning("heartbeat for document %s failed", self.document_id)

    def stop(self) -> None:
        self.stopped.set()


class ProcessingService:
    """Runs the pipeline for documents and records the outcome."""

    def __init__(self, settings: Settings, store: ObjectStore, engine: OcrEngine) -> None:
        self.settings = settings
        self.store = store
        self.pipeline = Pipeline(
            store,
            engine,
            limits_from(settings),
            deskew=settings.ocr.deskew,
            orient=settings.ocr.orientation,
            signature_check=self._check_signatures,
        )
        self._verifier: VerifyService | None = None
        self._classifier: Classifier | bool | None = None  # False: no model available
        #: The ``current`` pointer the loaded classifier was read under (None: no pointer).
        self._classifier_current: str | None = None

    def _model_root(self) -> Path:
        return self.settings.model_dir or Path(self.settings.embedded.home) / "models"

    def load_models(self) -> None:
        """Load the classifier now (worker start-up) rather than on the first document."""
        self._classifier_or_none()

    def _classifier_or_none(self) -> Classifier | None:
        """The document-type classifier; None when no model is trained.

        Loaded once per process and loaded again only when the model folder's ``current``
        pointer names another version (``sohoa train`` ran): one small file read per document
        lets running workers pick up a retrained model without a restart.
        """
        root = self._model_root()
        pointer = root / CURRENT_FILE
        try:
            current = pointer.read_text().strip() if pointer.is_file() else None
        except OSError:
            current = None
        if self._classifier is not None and current != self._classifier_current:
            self._classifier = None
        if self._classifier is None:
            self._classifier_current = current
            try:
                self._classifier = Classifier(load_model(root))
            except ModelError as exc:
                log.warning("documents are not classified: %s", exc)
                self._classifier = False
        return self._classifier if isinstance(self._classifier, Classifier) else None

    def _classify(self, result: PipelineResult) -> tuple[dict[str, Any], list[str]]:
        """Type, fields and review reasons of a processed document (empty without a model)."""
        classifier = self._classifier_or_none()
        if classifier is None or not any(p.lines for p in result.pages):
            return {}, []
        classification = classifier.classify(result.pages)
        fields = extract(result.pages, classification.type)
        reasons = review_reasons(classification, fields)
        return {
            "doc_type": classification.type,
            "classification": classification.to_dict(),
            "fields": fields_to_dict(fields),
            "review": reasons,
            "classifier_version": classifier.version,
            "model_version": classifier.model.version if classifier.model else None,
        }, reasons

    def _check_signatures(self, pdf: bytes) -> dict[str, Any]:
        """Validate an uploaded signed PDF (intake validation, DESIGN.md preflight)."""
        if self.settings.signing.trust_store_dir is None:
            return {"verdict": None, "note": "signatures present; no trust store configured"}
        if self._verifier is None:
            self._verifier = VerifyService(self.settings)
        return reports.to_json(self._verifier.verify(pdf))

    @property
    def db_url(self) -> str:
        return self.settings.db.url

    def process(self, document_id: str, progress: ProgressFn | None = None) -> str:
        """Process one document; returns its resulting state.

        Raises:
            One of TRANSIENT_ERRORS, for the queue to retry later.
        """
        began = time.monotonic()
        limit = self.settings.worker.max_attempts
        with session_scope(self.db_url) as session:
            doc = session.get(Document, document_id)
            if doc is None:
                log.warning("document %s no longer exists; nothing to do", document_id)
                return "missing"
            if doc.state in SETTLED_STATES:
                log.info("document %s is already %s; skipping", document_id, doc.state)
                return doc.state
            if doc.attempts >= limit:
                reasons = "; ".join(f["reason"] for f in (doc.failures or [])[-3:])
                return self._fail(session, doc, f"gave up after {doc.attempts} attempts: {reasons}")
            doc.state = DocumentState.PROCESSING
            doc.started_at = doc.heartbeat_at = utcnow()
            doc.attempts += 1
            sha256 = doc.sha256

        beat = Heartbeat(self.db_url, document_id, self.settings.worker.heartbeat_seconds)
        beat.start()
        try:
            result = self.pipeline.run(sha256, progress)
        except BadInputError as exc:
            return self.mark_failed(document_id, exc.detail)
        except ObjectNotFoundError:
            return self.mark_failed(document_id, "the original file is missing from storage")
        except JobTimeoutException:
            return self.mark_failed(
                document_id,
                f"processing took longer than the {self.settings.worker.job_timeout}-second limit",
            )
        except TRANSIENT_ERRORS as exc:
            self._note(document_id, f"temporarily unavailable, will retry: {type(exc).__name__}")
            self._await_recovery(exc, began)
            raise
        except Exception as exc:  # a bug or an input the libraries choke on
            log.exception("document %s failed in the pipeline", document_id)
            return self.mark_failed(document_id, f"processing error: {type(exc).__name__}: {exc}")
        finally:
            beat.stop()
        return self._finish(document_id, result)

    def _finish(self, document_id: str, result: PipelineResult) -> str:
        confidence = result.confidence
        has_text = any(p.lines for p in result.pages)
        needs_review = not has_text or (
            confidence is not None and confidence < self.settings.review_min_ocr_confidence
        )
        print_ = fingerprint(result.text)
        classified, review = self._classify(result)
        needs_review = needs_review or bool(review)
        with session_scope(self.db_url) as session:
            doc = session.get(Document, document_id)
            if doc is None:
                return "missing"
            if doc.state in SETTLED_STATES:
                # Another run of the same document (the sweeper took it back from a worker
                # that only looked dead) settled it first: its outcome stands.
                log.info("document %s was settled meanwhile (%s)", document_id, doc.state)
                return doc.state
            # A clerk's corrections outlive a reprocess (a new model proposes, the clerk's
            # answer stands until approval).
            corrections = (doc.results or {}).get("corrections")
            doc.page_count = result.info.page_count
            doc.has_signatures = result.info.has_signatures
            doc.ocr_confidence = round(confidence, 2) if confidence is not None else None
            doc.error = None if has_text else "no text was recognised; check the scan"
            doc.fingerprint = print_.to_dict() if print_ else None
            doc.results = {
                "searchable_pdf": result.searchable_pdf_key,
                "ocr": result.ocr_key,
                "text": result.text_key,
                "ocr_version": self.pipeline.ocr_version,
                "text_pages": result.info.text_pages,
                "timings": {k: round(v, 3) for k, v in result.timings.items()},
                **classified,
            }
            if corrections:
                doc.results = {**doc.results, "corrections": corrections}
            self._copy_out(doc, classified, result)
            if result.signatures is not None:
                doc.results = {**doc.results, "signatures": result.signatures}
                verdict = result.signatures.get("verdict")
                if verdict not in (None, "valid"):
                    # A signed upload that does not verify is kept as it is, for a person.
                    needs_review = True
                    doc.error = f"the uploaded signatures do not verify: {verdict}"
            twin = self._near_duplicate(session, doc, print_) if print_ else None
            if twin is not None:
                other, score = twin
                doc.duplicate_of = other
                doc.error = (
                    f"looks like another scan of document {other} "
                    f"(similarity {score:.2f}); confirm or discard"
                )
                needs_review = True
            doc.state = DocumentState.NEEDS_REVIEW if needs_review else DocumentState.READY
            doc.finished_at = utcnow()
            return doc.state

    @staticmethod
    def _copy_out(doc: Document, classified: dict[str, Any], result: PipelineResult) -> None:
        """Columns for queries and search: type, number, issue date, model version, text."""
        corrections = (doc.results or {}).get("corrections") or {}
        corrected_fields = corrections.get("fields") or {}
        proposed = classified.get("fields") or {}
        values = {
            name: corrected_fields[name]
            if name in corrected_fields
            else (proposed.get(name) or {}).get("value")
            for name in ("document_number", "issue_date")
        }
        doc.copy_out(corrections.get("doc_type") or classified.get("doc_type"), values)
        doc.model_version = classified.get("model_version")
        # PostgreSQL text cannot hold NUL; pages stay separated by form feeds.
        doc.search_text = result.text.replace("\x00", "") or None

    def _near_duplicate(
        self, session: Session, doc: Document, print_: Fingerprint
    ) -> tuple[str, float] | None:
        """The id of an earlier document of the same citizen (or batch) and office with
        nearly the same text, and the similarity. Only ids and fingerprints are read: a
        batch of thousands of pages compares each page with all its mates."""
        scope: list[Any] = []
        if doc.citizen_id is not None:
            scope.append(Document.citizen_id == doc.citizen_id)
        batches = select(BatchItem.batch_id).where(BatchItem.document_id == doc.id)
        mates = select(BatchItem.document_id).where(BatchItem.batch_id.in_(batches))
        scope.append(Document.id.in_(mates))
        candidates = session.execute(
            select(Document.id, Document.fingerprint).where(
                or_(*scope),
                Document.id != doc.id,
                Document.fingerprint.is_not(None),
                # Never point at another office's document (it must stay invisible).
                Document.office == doc.office
                if doc.office is not None
                else Document.office.is_(None),
            )
        )
        best: tuple[str, float] | None = None
        for other_id, other_print in candidates:
            score = similarity(print_, Fingerprint.from_dict(other_print))
            if score >= self.settings.worker.duplicate_threshold and (
                best is None or score > best[1]
            ):
                best = (other_id, score)
        return best

    def _fail(self, session: Session, doc: Document, reason: str) -> str:
        doc.state = DocumentState.FAILED
        doc.error = reason[:2000]
        doc.finished_at = utcnow()
        log.info("document %s failed: %s", doc.id, reason)
        return DocumentState.FAILED.value

    def mark_failed(self, document_id: str, reason: str) -> str:
        """Record a final failure with a readable reason; the original stays stored."""
        with session_scope(self.db_url) as session:
            doc = session.get(Document, document_id)
            if doc is None:
                return "missing"
            if doc.state in SETTLED_STATES:
                # A late failure of a duplicate run (its retries ran out after another run
                # finished the document) must not turn a finished document into a failed one.
                log.info("document %s is already %s; late failure ignored", document_id, doc.state)
                return doc.state
            record_failure(doc, reason)
            return self._fail(session, doc, reason)

    def _await_recovery(self, exc: BaseException, began: float) -> None:
        """Wait for the service that failed to answer again, at most ``outage_wait_seconds``
        and never past the job's time limit (less a margin to record the failure) counted
        from ``began`` (monotonic).

        The queue retries a transient failure a few times on a fixed schedule; an outage
        longer than that schedule would otherwise fail documents that only had to wait.
        Waiting here, while the heartbeat goes on, keeps each outage to one spent try.
        """
        worker = self.settings.worker
        deadline = min(
            time.monotonic() + worker.outage_wait_seconds,
            began + worker.job_timeout - min(30.0, worker.job_timeout / 4),
        )
        probe: Callable[[], bool] = (
            self.store.ping if isinstance(exc, ObjectStoreUnavailableError) else self._db_answers
        )
        delay = 0.25
        while not probe():
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("%s still unavailable; giving up this try", type(exc).__name__)
                return
            time.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)

    def _db_answers(self) -> bool:
        try:
            ping(self.db_url)
        except OperationalError:
            return False
        return True

    def _note(self, document_id: str, message: str) -> None:
        try:
            with session_scope(self.db_url) as session:
                doc = session.get(Document, document_id)
                if doc is not None:
                    doc.error = message
                    record_failure(doc, message)
        except OperationalError:
            log.warning("could not record the retry note for document %s", document_id)
