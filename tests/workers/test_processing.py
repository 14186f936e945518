"""Upload -> queue -> worker -> searchable PDF, on real services."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import httpx
import pymupdf
import pytest

from digitizer.config import Settings
from digitizer.pipeline import ocr as ocr_engines
from digitizer.services.wiring import object_store
from fixtures import generator
from fixtures.metrics import cer
from storage.db import Document, OutboxEntry, session_scope
from storage.errors import ObjectStoreUnavailableError
from storage.objects import ObjectStore, original_key
from tests import samples
from tests.helpers import client, drain
from workers import jobs
from workers.queues import enqueue_process


def _png(page: generator.GeneratedPage) -> bytes:
    import io

    out = io.BytesIO()
    page.image.save(out, format="PNG", dpi=(page.dpi, page.dpi))
    return out.getvalue()


def _upload(api, name: str, data: bytes) -> dict:  # type: ignore[no-untyped-def]
    response = api.post("/v1/documents", files={"file": (name, data, "application/octet-stream")})
    assert response.status_code == 202, response.text
    return response.json()["documents"][0]


def _pdf_text(api, doc_id: str) -> str:  # type: ignore[no-untyped-def]
    redirect = api.get(f"/v1/documents/{doc_id}/searchable.pdf", follow_redirects=False)
    assert redirect.status_code == 307
    pdf = httpx.get(redirect.headers["location"]).content
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        return "\n".join(page.get_text() for page in doc)


def _state(settings: Settings, doc_id: str) -> Document:
    with session_scope(settings.db.url) as session:
        doc = session.get(Document, doc_id)
        assert doc is not None
        session.expunge(doc)
        return doc


@pytest.mark.smoke
@pytest.mark.parametrize("seed", [101, 202])
def test_searchable_pdf_text_matches_ground_truth(settings: Settings, seed: int) -> None:
    """GIVEN a clean generated page WHEN it goes through upload and worker THEN the
    searchable PDF's text layer, extracted with PyMuPDF, is within 2% CER."""
    page = generator.generate_page(seed)
    api = client(settings)
    doc = _upload(api, f"page-{seed}.png", _png(page))
    drain(settings)
    status = api.get(doc["status_url"]).json()
    assert status["state"] == "ready", status
    assert status["page_count"] == 1
    text = unicodedata.normalize("NFC", _pdf_text(api, doc["id"]))
    assert cer(page.text, text) <= 0.02, (page.template, page.font, cer(page.text, text))


def test_multipage_scan_keeps_page_order(settings: Settings) -> None:
    pages = [generator.generate_page(s, "van-ban") for s in (5, 6, 7)]
    path = settings.embedded.home / "scan.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    generator.make_multipage_pdf(pages, path)
    api = client(settings)
    doc = _upload(api, "scan.pdf", path.read_bytes())
    drain(settings)
    assert api.get(doc["status_url"]).json()["page_count"] == 3
    redirect = api.get(f"/v1/documents/{doc['id']}/searchable.pdf", follow_redirects=False)
    with pymupdf.open(stream=httpx.get(redirect.headers["location"]).content) as pdf:
        assert pdf.page_count == 3
        for page, truth in zip(pdf, pages, strict=True):
            assert cer(truth.text, page.get_text()) <= 0.03


def test_born_digital_pdf_skips_ocr_and_is_its_own_searchable_pdf(settings: Settings) -> None:
    api = client(settings)
    data = samples.text_pdf()
    doc = _upload(api, "digital.pdf", data)
    drain(settings)
    stored = _state(settings, doc["id"])
    assert stored.state == "ready"
    assert stored.results["searchable_pdf"] == original_key(hashlib.sha256(data).hexdigest())
    assert stored.results["text_pages"] == [0]
    assert "quyền sử dụng đất" in _pdf_text(api, doc["id"])


def test_rerun_skips_finished_steps(settings: Settings) -> None:
    """GIVEN a processed document WHEN its job runs again after a crash (state left
    at processing) THEN finished outputs are not recomputed; a missing one is."""
    api = client(settings)
    doc = _upload(api, "a.png", samples.png(["Giấy xác nhận thông tin về cư trú"]))
    drain(settings)
    first = _state(settings, doc["id"])
    store = object_store(settings)
    etags = {
        key: store.stat(key).etag for key in (first.results["ocr"], first.results["searchable_pdf"])
    }  # type: ignore[union-attr]
    store.delete(first.results["searchable_pdf"])
    with session_scope(settings.db.url) as session:
        session.get(Document, doc["id"]).state = "processing"  # type: ignore[union-attr]

    calls = []
    service = jobs.warm_up(settings)
    real = service.pipeline.engine.recognize
    service.pipeline.engine.recognize = lambda *a, **k: calls.append(1) or real(*a, **k)  # type: ignore[method-assign]
    try:
        assert jobs.process_document(doc["id"]) == first.state
    finally:
        service.pipeline.engine.recognize = real  # type: ignore[method-assign]
    assert calls == []  # OCR output existed: not recomputed
    assert store.stat(first.results["ocr"]).etag == etags[first.results["ocr"]]  # type: ignore[union-attr]
    assert store.exists(first.results["searchable_pdf"])  # recomputed
    assert _state(settings, doc["id"]).attempts == 2


def test_duplicate_job_does_nothing(settings: Settings) -> None:
    api = client(settings)
    doc = _upload(api, "a.png", samples.png())
    drain(settings)
    enqueue_process(settings, doc["id"])
    drain(settings)
    assert _state(settings, doc["id"]).attempts == 1


def test_bad_original_fails_with_reason_and_worker_goes_on(settings: Settings) -> None:
    """A stored original that fails preflight (e.g. accepted under older rules) ends
    ``failed`` with a readable reason; the original stays; the next job still runs."""
    store = object_store(settings)
    store.ensure_bucket()
    bad = samples.truncated_pdf()
    sha = hashlib.sha256(bad).hexdigest()
    store.put_bytes(original_key(sha), bad)
    with session_scope(settings.db.url) as session:
        doc = Document(
            sha256=sha, filename="bad.pdf", media_type="application/pdf", size=len(bad), results={}
        )
        session.add(doc)
        session.flush()
        session.add(OutboxEntry(topic="process_document", document_id=doc.id))
        bad_id = doc.id
    api = client(settings)
    good = _upload(api, "good.png", samples.png())
    drain(settings)
    failed = _state(settings, bad_id)
    assert failed.state == "failed"
    assert "truncated" in (failed.error or "")
    assert store.get_bytes(original_key(sha)) == bad
    assert _state(settings, good["id"]).state == "ready"


class _FlakyStore(ObjectStore):
    """The real S3 store, failing the first ``failures`` reads as an outage would."""

    def __init__(self, real: ObjectStore, failures: int) -> None:
        super().__init__(real.config)
        self.failures = failures

    def get_bytes(self, key: str) -> bytes:
        if self.failures > 0:
            self.failures -= 1
            raise ObjectStoreUnavailableError("simulated outage")
        return super().get_bytes(key)


def test_transient_error_is_retried_then_succeeds(settings: Settings) -> None:
    api = client(settings)
    doc = _upload(api, "a.png", samples.png())
    service = jobs.warm_up(settings)
    service.pipeline.store = _FlakyStore(service.store, failures=2)
    drain(settings)
    final = _state(settings, doc["id"])
    assert final.state == "ready"
    assert final.attempts == 3


def test_transient_errors_past_the_retries_leave_failed_with_reason(settings: Settings) -> None:
    api = client(settings)
    doc = _upload(api, "a.png", samples.png())
    service = jobs.warm_up(settings)
    service.pipeline.store = _FlakyStore(service.store, failures=100)
    drain(settings)
    final = _state(settings, doc["id"])
    assert final.state == "failed"
    assert "ObjectStoreUnavailableError" in (final.error or "")
    assert final.attempts == settings.worker.max_retries + 1
    assert object_store(settings).exists(original_key(final.sha256))


class _OutageStore(ObjectStore):
    """The real S3 store, unreachable (reads and pings) until ``until`` (monotonic)."""

    def __init__(self, real: ObjectStore, until: float) -> None:
        super().__init__(real.config)
        self.until = until
        self.pings = 0

    def _down(self) -> bool:
        return time.monotonic() < self.until

    def get_bytes(self, key: str) -> bytes:
        if self._down():
            raise ObjectStoreUnavailableError("simulated outage")
        return super().get_bytes(key)

    def ping(self) -> bool:
        self.pings += 1
        return not self._down() and super().ping()


def test_outage_longer_than_the_retries_costs_one_try(settings: Settings) -> None:
    """GIVEN S3 down for longer than the whole retry schedule (here 0 + 0 + 0 s) WHEN a
    document meets it THEN its run waits for S3 to answer and the retry completes it."""
    api = client(settings)
    doc = _upload(api, "a.png", samples.png())
    service = jobs.warm_up(settings)
    outage = _OutageStore(service.store, until=time.monotonic() + 2.0)
    service.store = service.pipeline.store = outage
    drain(settings)
    final = _state(settings, doc["id"])
    assert final.state == "ready"
    assert final.attempts == 2
    assert outage.pings >= 2  # it asked until S3 answered


def test_outage_past_the_wait_still_fails_with_reason(settings: Settings) -> None:
    """GIVEN S3 down for longer than the outage wait WHEN a document meets it THEN every
    try waits, gives up, and the document is failed with the reason (never stuck)."""
    settings.worker.outage_wait_seconds = 0.3
    api = client(settings)
    doc = _upload(api, "a.png", samples.png())
    service = jobs.warm_up(settings)
    service.store = service.pipeline.store = _OutageStore(service.store, until=1e18)
    began = time.monotonic()
    drain(settings)
    final = _state(settings, doc["id"])
    assert final.state == "failed"
    assert "ObjectStoreUnavailableError" in (final.error or "")
    assert final.attempts == settings.worker.max_retries + 1
    assert time.monotonic() - began >= 0.3 * final.attempts


def test_engine_loads_once_per_process(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    created = []
    real = ocr_engines.create_engine
    monkeypatch.setattr(jobs, "_engines", {})
    monkeypatch.setattr(jobs, "create_engine", lambda s: created.append(1) or real(s))
    api = client(settings)
    for n in range(3):
        _upload(api, f"{n}.png", samples.png([f"Văn bản số {n}"]))
    drain(settings)
    jobs.warm_up(settings.model_copy())  # new settings object, same OCR settings
    assert len(created) == 1


def test_unrotated_scans_keep_their_original_pixels(settings: Settings) -> None:
    """A JPEG scan and an unrotated image-only PDF are not re-encoded: the searchable
    PDF carries the very same image bytes, with the text layer on top."""
    api = client(settings)
    jpeg = samples.jpeg(["Chứng thực bản sao từ bản chính"])
    scan = samples.image_pdf(1)
    ids = [_upload(api, "a.jpg", jpeg)["id"], _upload(api, "b.pdf", scan)["id"]]
    drain(settings)
    with pymupdf.open(stream=scan, filetype="pdf") as original:
        scan_image = original.extract_image(original[0].get_images()[0][0])["image"]
    for doc_id, expected in zip(ids, [jpeg, scan_image], strict=True):
        redirect = api.get(f"/v1/documents/{doc_id}/searchable.pdf", follow_redirects=False)
        with pymupdf.open(stream=httpx.get(redirect.headers["location"]).content) as pdf:
            page = pdf[0]
            assert pdf.extract_image(page.get_images()[0][0])["image"] == expected
            assert "Chứng thực" in page.get_text() or "Trang số 1" in page.get_text()


def test_documents_are_classified_when_a_model_is_trained(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """GIVEN a trained document-type model WHEN a birth-certificate extract is processed
    THEN its type and fields are stored with the document (DESIGN's field shape)."""
    from digitizer.pipeline.training import train_default

    root = tmp_path_factory.mktemp("models")
    train_default(root, per_type=12)
    settings = settings.model_copy(update={"model_dir": root})
    page = generator.generate_page(77, "trich-luc-khai-sinh")
    api = client(settings)
    doc = _upload(api, "tlks.png", _png(page))
    drain(settings)
    stored = _state(settings, doc["id"])
    assert stored.results["doc_type"] == "birth_certificate"
    fields = stored.results["fields"]
    assert fields["personal_id"]["value"] in page.text
    assert fields["date_of_birth"]["source"]["page"] == 0
    assert stored.results["classifier_version"]
    assert stored.state in {"ready", "needs_review"}
    if stored.results["review"]:
        assert stored.state == "needs_review"


def test_worker_loads_the_classifier_before_its_first_job(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """GIVEN a trained model WHEN a worker warms up THEN the classifier is loaded then,
    not during the first document (scikit-learn alone takes seconds to import)."""
    from digitizer.pipeline.training import train_default

    root = tmp_path_factory.mktemp("models")
    train_default(root, per_type=6)
    service = jobs.warm_up(settings.model_copy(update={"model_dir": root}))
    assert service._classifier not in (None, False)


def test_no_model_means_no_scikit_learn_import(tmp_path: Path) -> None:
    """A worker without a trained model does not pay scikit-learn's import."""
    code = (
        "import sys\n"
        "from digitizer.pipeline.training import ModelError, load_model\n"
        "try:\n    load_model(sys.argv[1])\nexcept ModelError:\n    pass\n"
        "print('sklearn' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
