"""The pipeline: preflight -> render -> ocr -> pdf, over derived objects.

Each step writes its output under ``derived/{sha256}/{step}-{version}/`` where
the version includes the versions of the steps it depends on, so a new engine
or renderer recomputes what depends on it and nothing else. A retried job finds
finished outputs and skips them; pages are processed one at a time so a
500-page scan needs the memory of one page, not of 500.

This module knows the object store only; document states live in
``digitizer.services.processing``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pymupdf

from digitizer.pipeline import orientation, preflight, render, textpdf
from digitizer.pipeline.ocr import OcrEngine, OcrLine, OcrPage
from digitizer.pipeline.preflight import FileInfo, Limits
from storage.errors import ObjectNotFoundError
from storage.objects import ObjectStore, derived_key, original_key

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
#: Validates a signed original; returns a JSON-ready report (see signing.report.to_json).
SignatureCheck = Callable[[bytes], dict[str, Any]]

SIGNATURES_STEP = "signatures"
SIGNATURES_VERSION = "1"


@dataclass
class PipelineResult:
    """What a run produced (keys of derived objects and summary figures)."""

    info: FileInfo
    pages: list[OcrPage]
    searchable_pdf_key: str
    ocr_key: str
    text_key: str
    timings: dict[str, float] = field(default_factory=dict)
    #: Validation report of a signed original (None when unsigned or not checked).
    signatures: dict[str, Any] | None = None

    @property
    def confidence(self) -> float | None:
        """Mean OCR confidence over OCR'd pages weighted by text length."""
        weighted = [
            (p.confidence, len(p.text)) for p in self.pages if p.source == "ocr" and p.confidence
        ]
        total = sum(n for _, n in weighted)
        if total == 0:
            return None
        return sum(c * n for c, n in weighted) / total

    @property
    def text(self) -> str:
        """All pages' text, pages separated by form feeds."""
        return "\f".join(p.text for p in self.pages)


def _json(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def text_layer_page(page: pymupdf.Page, dpi: int = render.PDF_DPI) -> OcrPage:
    """The lines of a born-digital PDF page, boxes in pixels at ``dpi``."""
    scale = dpi / 72
    result = OcrPage(
        width=round(page.rect.width * scale),
        height=round(page.rect.height * scale),
        dpi=dpi,
        source="text-layer",
    )
    for block in page.get_text("dict")["blocks"]:
        for line in block.get("lines", []):
            text = "".join(span["text"] for span in line["spans"]).strip()
            if text:
                x0, y0, x1, y1 = (round(v * scale) for v in line["bbox"])
                result.lines.append(OcrLine(text=text, bbox=(x0, y0, x1, y1), confidence=100.0))
    return result


def read_page(
    engine: OcrEngine,
    fresh: render.RenderedPage,
    deskew: bool = True,
    detector: orientation.OrientationDetector | None = None,
    deskewed: render.RenderedPage | None = None,
) -> tuple[render.RenderedPage, OcrPage]:
    """Deskew and read one rendered page; a page that reads as if sideways or upside
    down is turned (when ``detector`` is given) and read again, the better reading kept.
    ``deskewed``: ``fresh`` already deskewed (done ahead, while the previous page was
    read). Returns the page as read (turned, deskewed) and its lines."""
    page = deskewed or (render.deskew(fresh) if deskew else fresh)
    ocr_page = engine.recognize(page.image, page.dpi)
    if detector is not None and orientation.suspicious(ocr_page, page.image):
        found = detector.detect(fresh.image, fresh.dpi)
        if found.degrees and found.confidence >= orientation.MIN_OSD_CONFIDENCE:
            turned = render.turned(fresh, found.degrees)
            turned = render.deskew(turned) if deskew else turned
            second = engine.recognize(turned.image, turned.dpi)
            if not orientation.suspicious(second, turned.image) or (second.confidence or 0.0) > (
                ocr_page.confidence or 0.0
            ):
                page, ocr_page = turned, second
    ocr_page.skew, ocr_page.rotation = page.skew, page.rotation
    return page, ocr_page


class Pipeline:
    """Runs the steps for one original, identified by its SHA-256."""

    def __init__(
        self,
        store: ObjectStore,
        engine: OcrEngine,
        limits: Limits,
        *,
        deskew: bool = True,
        orient: bool = True,
        signature_check: SignatureCheck | None = None,
    ):
        self.store = store
        self.engine = engine
        self.limits = limits
        self.deskew = deskew
        self.orientation = orientation.OrientationDetector() if orient else None
        self.signature_check = signature_check

    # -- versions ----------------------------------------------------------------------
    @property
    def ocr_version(self) -> str:
        """OCR output depends on the renderer and the engine."""
        return f"{self.engine.name}.{self.engine.version}.r{render.VERSION}"

    @property
    def pdf_version(self) -> str:
        """The searchable PDF depends on the OCR output and its own code."""
        return f"{textpdf.VERSION}.{self.ocr_version}"

    # -- steps -------------------------------------------------------------------------
    def run(self, sha256: str, progress: ProgressFn | None = None) -> PipelineResult:
        """Run every step whose output is missing; returns the outputs.

        Raises:
            storage.errors.ObjectNotFoundError: the original is gone.
            digitizer.errors.BadInputError: the original fails preflight.
            storage.errors.ObjectStoreUnavailableError: transient; retry later.
        """
        timings: dict[str, float] = {}
        started = time.perf_counter()
        data = self.store.get_bytes(original_key(sha256))
        info = self._preflight(sha256, data)
        signatures = self._signatures(sha256, data) if info.has_signatures else None
        timings["preflight"] = time.perf_counter() - started

        ocr_key = derived_key(sha256, "ocr", self.ocr_version, "result.json")
        text_key = derived_key(sha256, "ocr", self.ocr_version, "text.txt")
        pdf_key = derived_key(sha256, textpdf.NAME, self.pdf_version, "searchable.pdf")

        stored_ocr = self._load_json(ocr_key)
        if info.has_signatures or (info.kind == "pdf" and not info.needs_ocr):
            # A signed original is never rewritten, and a born-digital PDF is already
            # searchable: the original is the searchable PDF.
            pdf_key = original_key(sha256)
        if stored_ocr is None and pdf_key != original_key(sha256):
            need_pdf = True  # the PDF is stored after the OCR result: none without it
        else:
            need_pdf = not self.store.exists(pdf_key)
        if stored_ocr is not None and not need_pdf:
            done = [OcrPage.from_dict(p) for p in stored_ocr["pages"]]
            return PipelineResult(info, done, pdf_key, ocr_key, text_key, timings, signatures)

        text_pages = frozenset(info.text_pages)
        source_doc = pymupdf.open(stream=data, filetype="pdf") if info.kind == "pdf" else None
        stored_pages = (
            [OcrPage.from_dict(p) for p in stored_ocr["pages"]] if stored_ocr is not None else None
        )
        pages: list[OcrPage] = []
        pdf_items: list[textpdf.PdfPage] = []
        # One helper thread works beside the OCR (Tesseract releases the GIL): it renders
        # and deskews the next page while this one is read, and uploads the OCR result
        # while the PDF is built. MuPDF is not thread-safe: its calls hold ``mupdf``.
        mupdf = threading.Lock()
        helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")
        try:
            # Rendering is cheap next to OCR (~0.1 s vs ~1 s a page) and deterministic,
            # so page images are not stored: a retry renders again and skips the OCR.
            page_iter = render.iter_pages(data, info.kind, text_pages)
            deskew_ahead = self.deskew and stored_pages is None

            def prepare() -> tuple[render.RenderedPage | None, render.RenderedPage | None]:
                with mupdf:
                    fresh = next(page_iter)
                if fresh is None or not deskew_ahead:
                    return fresh, None
                return fresh, render.deskew(fresh)

            ahead: Future[Any] | None = helper.submit(prepare) if info.page_count else None
            for index in range(info.page_count):
                assert ahead is not None
                t0 = time.perf_counter()
                fresh, deskewed = ahead.result()
                timings["render_wait"] = timings.get("render_wait", 0.0) + time.perf_counter() - t0
                # The PDF will embed the deskewed image as JPEG unless it keeps the
                # original's pixels: encode it beside the OCR (PIL releases the GIL).
                encoded = None
                if need_pdf and deskewed is not None and not self._keeps_pixels(info, deskewed):
                    encoded = helper.submit(textpdf.encode_jpeg, deskewed.image)
                more = index + 1 < info.page_count
                ahead = helper.submit(prepare) if more else None
                if fresh is None:
                    assert source_doc is not None
                    with mupdf:
                        ocr_page = (
                            stored_pages[index]
                            if stored_pages is not None
                            else text_layer_page(source_doc.load_page(index))
                        )
                    pages.append(ocr_page)
                    pdf_items.append(textpdf.PdfPage(source_page=index))
                    continue
                t0 = time.perf_counter()
                if stored_pages is not None:
                    # Turned and deskewed as it was when it was read (deterministic).
                    ocr_page = stored_pages[index]
                    page = render.turned(fresh, ocr_page.rotation)
                    page = render.deskew(page) if self.deskew else page
                else:
                    page, ocr_page = read_page(
                        self.engine, fresh, self.deskew, self.orientation, deskewed
                    )
                timings["ocr"] = timings.get("ocr", 0.0) + time.perf_counter() - t0
                pages.append(ocr_page)
                if need_pdf:
                    with mupdf:
                        item = self._pdf_page(info, data, source_doc, index, page, ocr_page)
                    if encoded is not None and page is deskewed and item.image is page.image:
                        item = textpdf.PdfPage(ocr=ocr_page, jpeg=encoded.result())
                    pdf_items.append(item)
                if progress:
                    progress(index + 1, info.page_count)

            uploaded = (
                helper.submit(self._put_ocr, pages, text_key, ocr_key)
                if stored_ocr is None
                else None
            )
            if need_pdf:
                t0 = time.perf_counter()
                pdf = textpdf.build_searchable_pdf(pdf_items, data if info.kind == "pdf" else None)
                self.store.put_bytes(pdf_key, pdf, "application/pdf")
                timings["pdf"] = time.perf_counter() - t0
            if uploaded is not None:
                uploaded.result()
        finally:
            helper.shutdown(wait=True, cancel_futures=True)
            if source_doc is not None:
                source_doc.close()
        timings["total"] = time.perf_counter() - started
        return PipelineResult(info, pages, pdf_key, ocr_key, text_key, timings, signatures)

    def _put_ocr(self, pages: list[OcrPage], text_key: str, ocr_key: str) -> None:
        """Store the recognised text and the OCR result (lines, boxes, confidences)."""
        text = "\f".join(p.text for p in pages).encode()
        self.store.put_bytes(text_key, text, "text/plain; charset=utf-8")
        result = {
            "engine": self.engine.name,
            "version": self.ocr_version,
            "pages": [p.to_dict() for p in pages],
        }
        self.store.put_bytes(ocr_key, _json(result), "application/json")

    def _preflight(self, sha256: str, data: bytes) -> FileInfo:
        key = derived_key(sha256, preflight.NAME, preflight.VERSION, "info.json")
        stored = self._load_json(key)
        if stored is not None:
            return FileInfo(**stored)
        info = preflight.inspect_file(data, self.limits)
        self.store.put_bytes(
            key,
            _json(
                {
                    "kind": info.kind,
                    "media_type": info.media_type,
                    "page_count": info.page_count,
                    "has_signatures": info.has_signatures,
                    "text_pages": info.text_pages,
                }
            ),
            "application/json",
        )
        return info

    @staticmethod
    def _keeps_pixels(info: FileInfo, page: render.RenderedPage) -> bool:
        """Whether the PDF may keep the original's pixels for ``page`` (as read so far)."""
        if page.skew != 0.0 or page.rotation != 0:
            return False
        return info.kind == "pdf" or (
            info.kind == "jpeg" and info.page_count == 1 and page.exif_upright
        )

    @staticmethod
    def _pdf_page(
        info: FileInfo,
        data: bytes,
        source_doc: pymupdf.Document | None,
        index: int,
        page: render.RenderedPage,
        ocr_page: OcrPage,
    ) -> textpdf.PdfPage:
        """Keep the original pixels where nothing was rotated: an unrotated scanned PDF
        page is copied as it is, a JPEG scan embedded as it is (no re-encoding loss)."""
        if page.skew == 0.0 and page.rotation == 0:
            if source_doc is not None and source_doc.load_page(index).rotation == 0:
                return textpdf.PdfPage(ocr=ocr_page, source_page=index)
            if info.kind == "jpeg" and info.page_count == 1 and page.exif_upright:
                return textpdf.PdfPage(ocr=ocr_page, jpeg=data)
        return textpdf.PdfPage(ocr=ocr_page, image=page.image)

    def _signatures(self, sha256: str, data: bytes) -> dict[str, Any] | None:
        """Validate a signed original once (a derived object); its bytes stay as they are."""
        if self.signature_check is None:
            return None
        key = derived_key(sha256, SIGNATURES_STEP, SIGNATURES_VERSION, "report.json")
        stored = self._load_json(key)
        if stored is not None:
            return stored
        report = self.signature_check(data)
        self.store.put_bytes(key, _json(report), "application/json")
        return report

    def _load_json(self, key: str) -> dict | None:  # type: ignore[type-arg]
        try:
            return json.loads(self.store.get_bytes(key))  # one round trip, not HEAD + GET
        except ObjectNotFoundError:
            return None
