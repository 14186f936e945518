"""RQ job functions: module-level, importable, taking plain ids.

The processing service (and with it the OCR engine and its weights) is built
once per worker process by :func:`warm_up`, before RQ forks a work horse per
job; the horse inherits the loaded model instead of loading it again. After a
fork, pooled connections are replaced so parent and child never share sockets.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from digitizer.config import Settings, get_settings
from digitizer.pipeline.ocr import OcrEngine, create_engine
from digitizer.services.processing import ProcessingService
from digitizer.services.wiring import object_store
from storage.db import dispose_engines, get_engine

log = logging.getLogger(__name__)

_service: ProcessingService | None = None
_engines: dict[str, OcrEngine] = {}


def _engine(settings: Settings) -> OcrEngine:
    key = settings.ocr.model_dump_json()
    if key not in _engines:
        _engines[key] = create_engine(settings.ocr)
    return _engines[key]


def warm_up(settings: Settings | None = None) -> ProcessingService:
    """The processing service of this process, built once (loads the OCR model and the
    document-type classifier once, before the first job).

    Passing other settings (tests, a reconfigured worker) rebuilds the service but
    reuses an engine already loaded for the same OCR settings.
    """
    global _service
    if _service is None or (settings is not None and settings is not _service.settings):
        settings = settings or get_settings()
        # Create the database engine now, in the parent: its driver is imported lazily,
        # and an import in progress at fork time would deadlock the horse.
        get_engine(settings.db.url)
        _service = ProcessingService(settings, object_store(settings), _engine(settings))
        _service.load_models()
    return _service


def _after_fork_in_child() -> None:
    dispose_engines()
    if _service is not None:
        _service.store = object_store(_service.settings)
        _service.pipeline.store = _service.store


os.register_at_fork(after_in_child=_after_fork_in_child)


def process_document(document_id: str) -> str:
    """Run the pipeline for a document; returns its new state."""
    return warm_up().process(document_id)


def on_process_failure(job: Any, connection: Any, exc_type: Any, exc_value: Any, tb: Any) -> None:
    """RQ failure callback: after the last retry, leave the document ``failed`` with a reason."""
    if job.retries_left:
        return  # RQ will retry with backoff
    document_id = job.args[0] if job.args else None
    if document_id is None:
        return
    reason = f"gave up after retries: {exc_type.__name__}: {exc_value}"
    try:
        warm_up().mark_failed(document_id, reason)
    except Exception:
        log.exception("could not mark document %s failed", document_id)
