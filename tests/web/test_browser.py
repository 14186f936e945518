"""The pages in a real browser: Playwright driving Debian's Chromium by path (never a
downloaded browser), against the app served by uvicorn on loopback with real S3, Redis and
the database; the worker runs in-process between steps (``drain``).

Each page is checked for the basics: every input has a label, no horizontal overflow at
375 px, and a screenshot (desktop and 375 px) is saved to ``$SOHOA_SCREENSHOTS_DIR``
(default ``tests/web/screenshots/``, not versioned). Without Chromium these tests skip,
unless ``SOHOA_REQUIRE_BROWSER=1`` (CI): then they fail.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from digitizer.api.app import create_app
from digitizer.config import Settings
from signing.report import REASONS
from storage.db import Document, ECopy, ReviewLabel, session_scope
from tests.digitizer.test_review import RESIDENCE, text_pdf
from tests.helpers import drain, make_key
from tests.signing.conftest import (
    SigningEnv,
    env,
    office_signing,
    sample_pdf,
    signed,
    tamper_stream,
)

__all__ = ["env", "sample_pdf", "signed"]

CHROMIUM = os.environ.get("SOHOA_CHROMIUM", "/usr/bin/chromium")
OFFICE = "ubnd-tinh-ninh-binh"
PID = "001091004567"
SCREENSHOTS = Path(os.environ.get("SOHOA_SCREENSHOTS_DIR") or Path(__file__).parent / "screenshots")
DESKTOP = {"width": 1280, "height": 900}


def _require_browser() -> Any:
    """Playwright's sync API, or a skip (a failure when SOHOA_REQUIRE_BROWSER=1)."""
    required = os.environ.get("SOHOA_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("SOHOA_REQUIRE_BROWSER=1 but the playwright package is not installed")
        pytest.skip("playwright is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        if required:
            pytest.fail(f"SOHOA_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _require_browser()
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small classifier, trained once (as in tests/digitizer/test_review.py)."""
    from digitizer.pipeline.training import train_default

    root = tmp_path_factory.mktemp("models")
    train_default(root, per_type=8)
    return root


@pytest.fixture
def web_settings(settings: Settings, env: SigningEnv, model_dir: Path, tmp_path: Path) -> Settings:
    import shutil

    own = tmp_path / "models"
    shutil.copytree(model_dir, own)
    return settings.model_copy(
        update={
            "model_dir": own,
            "signing": office_signing(env, OFFICE),
        }
    )


@pytest.fixture
def server(web_settings: Settings) -> Iterator[tuple[str, Settings]]:
    """The app under uvicorn on a free loopback port, in a thread; yields its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = web_settings.model_copy(update={"public_base_url": url})
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield url, settings
    uv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, locale="vi-VN", accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


# -- checks every page gets ----------------------------------------------------------------
_UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
    .filter((e) => e.type !== 'hidden' && !(e.labels && e.labels.length))
    .map((e) => e.name || e.id || e.outerHTML)"""


def check_page(page: Any, name: str) -> None:
    """Every input labelled; no horizontal overflow at 375 px; screenshots of both widths."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert page.evaluate(_UNLABELLED) == [], f"{name}: inputs without a label"
    assert page.evaluate("document.documentElement.lang") == "vi", (name, page.url)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"{name}: {width} px wide at a 375 px viewport"
    page.screenshot(path=str(SCREENSHOTS / f"{name}-375.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def sign_in(page: Any, url: str, key: str, next_path: str = "/web/") -> None:
    page.goto(f"{url}{next_path}")
    assert "/web/login" in page.url  # no session yet: the sign-in page
    check_page(page, "dang-nhap")
    page.get_by_label("Khóa truy cập cá nhân").fill(key)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_load_state()
    assert page.url == f"{url}{next_path}", page.locator("main").inner_text()


def tab_to(page: Any, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    ids = page.evaluate("Array.from(document.querySelectorAll('input, select')).map(e => e.id)")
    raise AssertionError(f"Tab never reached {selector} on {page.url}; inputs: {ids}")


def _drop(page: Any, target: str, name: str, data: bytes, mime: str) -> None:
    """Drag and drop a file onto ``target`` (a DataTransfer, as the browser makes on a drop)."""
    transfer = page.evaluate_handle(
        """([b64, name, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            return transfer;
        }""",
        [base64.b64encode(data).decode(), name, mime],
    )
    page.dispatch_event(target, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(target, "drop", {"dataTransfer": transfer})


# -- scenarios -----------------------------------------------------------------------------
def test_clerk_uploads_a_batch_corrects_a_field_by_keyboard_and_approves(
    server: tuple[str, Settings], page: Any
) -> None:
    url, settings = server
    key = make_key(settings, "clerk", name="Trần Thị Mai", office=OFFICE)
    sign_in(page, url, key, "/web/batches/new")
    check_page(page, "so-hoa")

    page.get_by_label("Số định danh cá nhân của công dân").fill(PID)
    page.get_by_label("Thủ tục hoặc tên lô hồ sơ").fill("Đăng ký thường trú")
    residence = text_pdf(RESIDENCE.format(name="TRẦN VĂN AN", number=40))
    # One file dropped on the drop zone, then the same zone's file input (keyboard users).
    _drop(page, "[data-drop-target]", "xac-nhan-cu-tru.pdf", residence, "application/pdf")
    assert "xac-nhan-cu-tru.pdf" in page.locator("[data-drop-names]").inner_text()
    page.get_by_role("button", name="Tải lên và số hóa").click()
    page.wait_for_url(re.compile(r"/web/batches/[0-9a-f]{32}$"))
    assert PID not in page.url
    assert page.locator("#batch-summary").inner_text().startswith("Đang xử lý")

    drain(settings)  # the worker, in-process; the page polls and shows the outcome
    page.wait_for_selector("#batch-summary:has-text('Đã xong: 1/1')")
    assert page.locator("tr[data-state=needs_review]").count() == 1
    assert "Cần kiểm tra" in page.locator("table.docs").inner_text()
    check_page(page, "lo-ho-so")

    page.get_by_role("link", name="Hàng chờ kiểm tra").click()
    page.wait_for_url(f"{url}/web/review")
    check_page(page, "hang-cho")
    page.get_by_role("link", name="xac-nhan-cu-tru.pdf").click()
    page.wait_for_selector("#review-form")
    page.wait_for_function("() => document.querySelector('.pages img').naturalWidth > 0")
    check_page(page, "kiem-tra")

    with session_scope(settings.db.url) as session:
        doc = session.scalars(select(Document)).one()
        doc_id, predicted = doc.id, doc.doc_type
    # Keyboard only from here: Tab, typing, Enter.
    if predicted != "residence_confirmation":
        # The clerk corrects the type: Home, then down to the 5th type; Enter saves.
        tab_to(page, "#doc_type")
        page.keyboard.press("Home")
        for _ in range(4):
            page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.value") == "residence_confirmation"
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.wait_for_selector("text=Đã lưu sửa đổi")
        with session_scope(settings.db.url) as session:
            saved = session.get(Document, doc_id)
            assert saved is not None
            corrections = (saved.results or {}).get("corrections")
        assert page.locator("#doc_type").input_value() == "residence_confirmation", (
            predicted,
            corrections,
        )
    tab_to(page, "#f-full_name")
    page.keyboard.press("Control+A")
    page.keyboard.type("TRẦN VĂN ÂN")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # the form's default action: save
    page.wait_for_selector("text=Đã lưu sửa đổi")
    assert page.locator("#f-full_name").input_value() == "TRẦN VĂN ÂN"
    assert "(đã sửa)" in page.locator("label[for=f-full_name]").inner_text()
    tab_to(page, "button[value=approve]")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}/web/documents/{doc_id}")
    assert page.locator("#doc-state").inner_text() == "Đã duyệt"
    assert "Duyệt" in page.locator("#audit").inner_text()
    check_page(page, "tai-lieu")

    with session_scope(settings.db.url) as session:
        label = session.scalars(select(ReviewLabel)).one()
        assert label.document_id == doc_id and label.corrected
        assert label.doc_type == "residence_confirmation"
        assert label.fields["full_name"] == "TRẦN VĂN ÂN"


def test_approver_approves_and_signs_and_the_qr_page_shows_the_status(
    server: tuple[str, Settings], page: Any
) -> None:
    url, settings = server
    key = make_key(settings, "approver", name="Lê Văn Bình", office=OFFICE)
    sign_in(page, url, key, "/web/batches/new")
    residence = text_pdf(RESIDENCE.format(name="LÊ THỊ HOA", number=41))
    page.locator("#batch_files").set_input_files(
        {"name": "xac-nhan.pdf", "mimeType": "application/pdf", "buffer": residence}
    )
    page.get_by_role("button", name="Tải lên và số hóa").click()
    page.wait_for_url(re.compile(r"/web/batches/[0-9a-f]{32}$"))
    drain(settings)
    page.get_by_role("link", name="Kiểm tra", exact=True).click()
    page.wait_for_selector("#review-form")
    page.locator("#doc_type").select_option("residence_confirmation")
    page.get_by_role("button", name="Duyệt và ký bản điện tử").click()
    page.wait_for_selector("#ecopies")
    assert page.locator("#doc-state").inner_text() == "Đã cấp bản điện tử"
    assert "Còn hiệu lực" in page.locator("#ecopies").inner_text()

    page.get_by_role("link", name="Trang kiểm tra (QR)").click()
    page.wait_for_selector("#status")
    assert "/v1/verify/" in page.url
    assert page.locator("#status").inner_text() == "Còn hiệu lực"
    body = page.locator("main").inner_text()
    assert "Giấy xác nhận thông tin về cư trú" in body and "Ninh Bình" in body
    assert "LÊ THỊ HOA" not in body and PID not in body  # type, issuer, date, status only
    check_page(page, "kiem-tra-qr")
    with session_scope(settings.db.url) as session:
        assert session.scalars(select(ECopy)).one().status == "valid"


def test_verifier_drops_a_tampered_pdf_and_sees_it_is_invalid(
    server: tuple[str, Settings], page: Any, signed: dict[str, bytes]
) -> None:
    url, settings = server
    key = make_key(settings, "verifier", name="Phạm Quốc Việt", office=OFFICE)
    sign_in(page, url, key, "/web/verify")
    check_page(page, "xac-minh")
    _drop(
        page, "[data-drop-target]", "ban-sao.pdf", tamper_stream(signed["B-LT"]), "application/pdf"
    )
    page.wait_for_selector("#verdict")  # the drop submits the form
    assert page.locator("#verdict").inner_text() == "Không hợp lệ"
    reasons = page.locator("#reasons").inner_text()
    assert REASONS["hash_failure"] in reasons or REASONS["modified_after_signing"] in reasons
    with page.expect_download() as download:
        page.locator("#report-pdf").click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
    check_page(page, "xac-minh-ket-qua")

    # An intact one, chosen with the file input (keyboard users): valid.
    with page.expect_navigation():
        page.locator("#verify-file").set_input_files(
            {"name": "hop-le.pdf", "mimeType": "application/pdf", "buffer": signed["B-LT"]}
        )
    assert page.locator("#verdict").inner_text() == "Hợp lệ"
