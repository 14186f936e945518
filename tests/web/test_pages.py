"""The web pages without a browser: sessions, CSRF, role and office checks, page answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from digitizer.config import Settings, WebSettings
from digitizer.services import websessions
from digitizer.services.keys import revoke_key
from storage.db import ApiKey, AuditEvent, Document, WebSession, session_scope, utcnow
from tests import samples
from tests.helpers import client, make_key
from tests.web.conftest import csrf_of, sign_in


@pytest.mark.smoke
def test_sign_in_sets_a_strict_http_only_cookie_and_pages_need_it(settings: Settings) -> None:
    api, _ = sign_in(settings, "clerk", office="ubnd-xa-yen-the")
    cookie = next(c for c in api.cookies.jar if c.name == websessions.COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "strict"
    assert not cookie.secure  # http:// base URL; https:// sets Secure (below)
    home = api.get("/web/")
    assert home.status_code == 200
    assert "Nguyễn Thị clerk" in home.text and "Số hóa hồ sơ" in home.text
    # Only a hash of the token is stored.
    with session_scope(settings.db.url) as session:
        [row] = session.scalars(select(WebSession)).all()
        assert cookie.value and cookie.value.split(".")[0] not in row.id
        assert session.scalars(select(AuditEvent.action)).all() == ["web.login"]
    anonymous = client(settings, role=None)
    answer = anonymous.get("/web/review", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/web/login?next=/web/review"


def test_secure_cookie_over_https(settings: Settings) -> None:
    https = settings.model_copy(update={"public_base_url": "https://sohoa.example.vn"})
    api = client(https, role=None)
    form = api.get("/web/login")
    assert "secure" in form.headers["set-cookie"].lower()
    answer = api.post(
        "/web/login",
        data={"api_key": make_key(https, "verifier"), "csrf_token": csrf_of(form.text)},
        headers={"Cookie": f"{websessions.LOGIN_COOKIE}={form.cookies[websessions.LOGIN_COOKIE]}"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    session_cookie = next(
        v for v in answer.headers.get_list("set-cookie") if v.startswith(websessions.COOKIE)
    )
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie
    assert "SameSite=strict" in session_cookie


@pytest.mark.smoke
def test_wrong_key_stale_form_and_portal_keys_do_not_sign_in(settings: Settings) -> None:
    api = client(settings, role=None)
    form = api.get("/web/login")
    token = csrf_of(form.text)
    wrong = api.post("/web/login", data={"api_key": "sohoa_abc_def", "csrf_token": token})
    assert wrong.status_code == 401
    assert "Khóa truy cập không đúng" in wrong.text
    api.cookies.clear()
    stale = api.post(
        "/web/login", data={"api_key": make_key(settings, "clerk"), "csrf_token": token}
    )
    assert stale.status_code == 400  # no sign-in form cookie: login CSRF
    form = api.get("/web/login")
    portal = api.post(
        "/web/login",
        data={"api_key": make_key(settings, "portal"), "csrf_token": csrf_of(form.text)},
    )
    assert portal.status_code == 403
    assert websessions.COOKIE not in api.cookies


@pytest.mark.smoke
def test_every_post_needs_the_session_csrf_token(settings: Settings) -> None:
    api, _ = sign_in(settings, "clerk")
    missing = api.post("/web/search", data={"q": "x"})
    assert missing.status_code == 403
    assert "Biểu mẫu đã cũ" in missing.text
    wrong = api.post("/web/search", data={"q": "x", "csrf_token": "nope"})
    assert wrong.status_code == 403
    page = api.get("/web/search")
    ok = api.post("/web/search", data={"q": "x", "csrf_token": csrf_of(page.text)})
    assert ok.status_code == 200 and "Kết quả" in ok.text
    # The token of another session is refused too.
    other, _ = sign_in(settings, "clerk")
    foreign = other.post("/web/search", data={"q": "x", "csrf_token": csrf_of(page.text)})
    assert foreign.status_code == 403


@pytest.mark.smoke
def test_logout_and_key_revocation_end_the_session(settings: Settings) -> None:
    api, key = sign_in(settings, "approver")
    page = api.get("/web/")
    out = api.post("/web/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/web/login"
    assert api.get("/web/", follow_redirects=False).status_code == 303
    api, key = sign_in(settings, "approver", key=key)
    assert api.get("/web/").status_code == 200
    prefix = key.split("_")[1]
    with session_scope(settings.db.url) as session:
        key_id = session.scalars(select(ApiKey.id).where(ApiKey.prefix == prefix)).one()
        revoke_key(session, key_id)
    assert api.get("/web/", follow_redirects=False).status_code == 303
    with session_scope(settings.db.url) as session:
        assert session.scalars(select(WebSession)).all() == []  # ended, not only refused


@pytest.mark.smoke
def test_idle_sessions_end(settings: Settings) -> None:
    short = settings.model_copy(update={"web": WebSettings(idle_minutes=5, max_hours=1)})
    api, _ = sign_in(short, "verifier")
    assert api.get("/web/verify").status_code == 200
    with session_scope(short.db.url) as session:
        session.execute(update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=6)))
    assert api.get("/web/verify", follow_redirects=False).status_code == 303
    api, _ = sign_in(short, "verifier")
    with session_scope(short.db.url) as session:
        session.execute(update(WebSession).values(created_at=utcnow() - timedelta(minutes=61)))
    assert api.get("/web/verify", follow_redirects=False).status_code == 303


@pytest.mark.smoke
def test_roles_and_offices_apply_to_pages(settings: Settings) -> None:
    verifier, _ = sign_in(settings, "verifier", office="ubnd-a")
    denied = verifier.get("/web/review")
    assert denied.status_code == 403
    assert "không có quyền" in denied.text and 'lang="vi"' in denied.text
    clerk_a, _ = sign_in(settings, "clerk", office="ubnd-a")
    page = clerk_a.get("/web/batches/new")
    uploaded = clerk_a.post(
        "/web/batches",
        data={"csrf_token": csrf_of(page.text), "name": "Đăng ký khai sinh"},
        files=[("files", ("a.png", samples.png(["Giấy khai sinh"]), "image/png"))],
        follow_redirects=False,
    )
    assert uploaded.status_code == 303, uploaded.text
    batch_url = uploaded.headers["location"]
    assert clerk_a.get(batch_url).status_code == 200
    clerk_b, _ = sign_in(settings, "clerk", office="ubnd-b")
    other = clerk_b.get(batch_url)
    missing = clerk_b.get("/web/batches/" + "0" * 32)
    assert other.status_code == missing.status_code == 404
    assert other.text == missing.text


def test_batch_upload_lists_refused_files_and_never_puts_the_pid_in_a_url(
    settings: Settings,
) -> None:
    api, _ = sign_in(settings, "clerk")
    page = api.get("/web/batches/new")
    answer = api.post(
        "/web/batches",
        data={"csrf_token": csrf_of(page.text), "citizen_pid": "001203004567", "name": "Hồ sơ"},
        files=[
            ("files", ("tot.png", samples.png(["Quyết định"]), "image/png")),
            ("files", ("hong.pdf", samples.truncated_pdf(), "application/pdf")),
        ],
    )
    assert answer.status_code == 200
    assert "hong.pdf" in answer.text and "Tệp bị hỏng" in answer.text
    assert "001203004567" not in answer.text and "001203004567" not in str(answer.url)
    bad_pid = api.post(
        "/web/batches",
        data={"csrf_token": csrf_of(page.text), "citizen_pid": "123"},
        files=[("files", ("x.png", samples.png(["Công văn"]), "image/png"))],
    )
    assert bad_pid.status_code == 422
    assert "Số định danh cá nhân không hợp lệ" in bad_pid.text


def test_static_files_are_served_from_the_package(settings: Settings) -> None:
    api = client(settings, role=None)
    css = api.get("/web/static/sohoa.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert api.get("/web/static/sohoa.js").status_code == 200
    assert api.get("/web/static/..%2Fdeps.py").status_code == 404
    login = api.get("/web/login")
    assert "http://" not in login.text.replace('lang="vi"', "")  # nothing from elsewhere


def test_a_failed_document_shows_its_reason_and_can_be_retried(settings: Settings) -> None:
    api, _ = sign_in(settings, "clerk")
    page = api.get("/web/batches/new")
    uploaded = api.post(
        "/web/batches",
        data={"csrf_token": csrf_of(page.text)},
        files=[("files", ("scan.png", samples.png(["Công văn số 12"]), "image/png"))],
        follow_redirects=False,
    )
    batch_url = uploaded.headers["location"]
    with session_scope(settings.db.url) as session:
        doc = session.scalars(select(Document)).one()
        doc.state, doc.error = "failed", "ocr: engine crashed"  # as a worker records it
        doc_id = doc.id
    batch = api.get(batch_url)
    assert "Lỗi" in batch.text and "Lý do: ocr: engine crashed" in batch.text
    assert "Thử lại" in batch.text
    rows = api.get(f"{batch_url}/rows")
    assert rows.status_code == 200 and 'data-done="true"' in rows.text
    retried = api.post(
        f"/web/documents/{doc_id}/reprocess",
        data={"csrf_token": csrf_of(batch.text), "back": batch_url},
        follow_redirects=False,
    )
    assert retried.status_code == 303 and retried.headers["location"] == batch_url
    with session_scope(settings.db.url) as session:
        doc = session.get(Document, doc_id)
        assert doc is not None and doc.state in ("uploaded", "queued") and doc.error is None
    assert "Thử lại" not in api.get(f"{batch_url}/rows").text
    # Back to a page elsewhere is refused: the redirect stays on this site's pages.
    with session_scope(settings.db.url) as session:
        row = session.get(Document, doc_id)
        assert row is not None
        row.state = "failed"
    away = api.post(
        f"/web/documents/{doc_id}/reprocess",
        data={"csrf_token": csrf_of(batch.text), "back": "https://example.org/x"},
        follow_redirects=False,
    )
    assert away.headers["location"] == "/web/"


@pytest.mark.smoke
def test_search_page_finds_papers_by_their_issue_date(settings: Settings) -> None:
    from tests.digitizer import rows

    with session_scope(settings.db.url) as session:
        for number, issued in (("12/2019", "2019-05-02"), ("7/2024", "2024-12-10")):
            doc = rows.document(session, citizen_id=None, office="ubnd-a", doc_number=number)
            doc.copy_out(doc.doc_type, {"document_number": number, "issue_date": issued})
    clerk, _ = sign_in(settings, "clerk", office="ubnd-a")
    token = csrf_of(clerk.get("/web/search").text)
    found = clerk.post(
        "/web/search",
        data={"csrf_token": token, "issued_from": "2024-01-01", "issued_to": "2024-12-31"},
    )
    assert found.status_code == 200
    assert "số 7/2024 · cấp ngày 10/12/2024" in found.text and "12/2019" not in found.text
    assert 'name="issued_from" type="date" value="2024-01-01"' in found.text
    backwards = clerk.post(
        "/web/search",
        data={"csrf_token": token, "issued_from": "2024-12-31", "issued_to": "2024-01-01"},
    )
    assert backwards.status_code == 422 and "Điều kiện tìm kiếm không hợp lệ" in backwards.text
