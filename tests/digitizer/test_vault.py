"""The vault through the API: issuing rules, filing and superseding, revocation everywhere."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from digitizer.config import Settings
from storage.db import AuditEvent, Document, ECopy, session_scope, utcnow
from tests.digitizer import vault_env
from tests.digitizer.vault_env import (
    OTHER_OFFICE,
    OTHER_PID,
    PID,
    api,
    code_of,
    issue,
    processed_document,
)

env, vault_settings = vault_env.env, vault_env.vault_settings  # fixtures


def _actions(settings: Settings) -> list[tuple[str, str | None]]:
    with session_scope(settings.db.url) as session:
        return [
            (e.action, e.document_id)
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        ]


@pytest.mark.smoke
def test_issue_needs_review_first_and_records_the_vault_item(vault_settings: Settings) -> None:
    """GIVEN documents ready, approved and awaiting review WHEN an approver issues them THEN
    the one awaiting review is refused ("review first"), the others become e-copies filed
    for the citizen with type, reviewed fields (never the personal id), number and validity."""
    approver = api(vault_settings, "approver")
    pending = processed_document(vault_settings, state="needs_review")
    refused = approver.post(
        f"/v1/documents/{pending}/issue", json={"office": "ubnd-tinh-ninh-binh"}
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/review-first"
    assert "review first" in refused.json()["detail"]

    fields = {
        "full_name": "Trần Văn Minh",
        "personal_id": PID,
        "place_of_residence": "Phường Hoa Lư, tỉnh Ninh Bình",
        "document_number": "25/XNCT",
        "valid_until": "2031-06-30",
    }
    ready = processed_document(vault_settings, doc_type="residence_confirmation", fields=fields)
    approved = processed_document(vault_settings, doc_type="diploma", state="approved")
    issued = issue(approver, ready)
    issue(approver, approved)

    clerk = api(vault_settings, "clerk")
    detail = clerk.get(f"/v1/ecopies/{issued['id']}")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["doc_type"] == "residence_confirmation"
    assert body["doc_number"] == "25/XNCT"
    assert body["valid_until"] == "2031-06-30"
    assert body["status"] == "valid" and body["citizen_ref"]
    assert body["fields"] == {k: v for k, v in fields.items() if k != "personal_id"}
    assert PID not in detail.text
    with session_scope(vault_settings.db.url) as session:
        ecopy = session.get(ECopy, issued["id"])
        assert ecopy is not None and PID not in str(ecopy.fields)
        doc = session.get(Document, ready)
        assert doc is not None and doc.state == "issued" and doc.doc_number == "25/XNCT"
    assert ("ecopy.issue", ready) in _actions(vault_settings)
    assert ("ecopy.issue", approved) in _actions(vault_settings)
    assert ("ecopy.read", ready) in _actions(vault_settings)
    assert api(vault_settings, "portal").get(f"/v1/ecopies/{issued['id']}").status_code == 403


def test_newer_ecopy_supersedes_the_older_of_the_same_citizen_and_type(
    vault_settings: Settings,
) -> None:
    """GIVEN a citizen's birth certificate e-copy WHEN a newer one is issued THEN the older
    is superseded (pointer to the new one, document state superseded, QR check says so);
    other citizens' e-copies and other types stay valid; for types a citizen holds several
    of (diplomas) only the same number is replaced."""
    approver = api(vault_settings, "approver")
    first = issue(approver, processed_document(vault_settings))
    others = issue(approver, processed_document(vault_settings, pid=OTHER_PID))
    diploma_a = issue(
        approver,
        processed_document(vault_settings, doc_type="diploma", fields={"document_number": "A1"}),
    )
    diploma_b = issue(
        approver,
        processed_document(vault_settings, doc_type="diploma", fields={"document_number": "B2"}),
    )
    second_doc = processed_document(vault_settings)
    second = issue(approver, second_doc)
    diploma_a2 = issue(
        approver,
        processed_document(vault_settings, doc_type="diploma", fields={"document_number": "A1"}),
    )

    public = api(vault_settings, None)
    old = public.get(f"/v1/verify/{code_of(first)}").json()
    assert (old["status"], old["label"]) == ("superseded", "Đã có bản mới thay thế")
    assert set(old) == {"status", "label", "doc_type", "issuer", "issue_date"}
    assert public.get(f"/v1/verify/{code_of(second)}").json()["status"] == "valid"
    assert public.get(f"/v1/verify/{code_of(others)}").json()["status"] == "valid"
    assert public.get(f"/v1/verify/{code_of(diploma_a)}").json()["status"] == "superseded"
    assert public.get(f"/v1/verify/{code_of(diploma_b)}").json()["status"] == "valid"
    assert public.get(f"/v1/verify/{code_of(diploma_a2)}").json()["status"] == "valid"
    with session_scope(vault_settings.db.url) as session:
        older = session.get(ECopy, first["id"])
        assert older is not None and older.superseded_by == second["id"]
        assert session.get(Document, older.document_id).state == "superseded"  # type: ignore[union-attr]
        assert session.get(Document, second_doc).state == "issued"  # type: ignore[union-attr]
    events = _actions(vault_settings)
    assert ("ecopy.supersede", first["document_id"]) in events

    verifier = api(vault_settings, "verifier")
    signed = httpx.get(
        api(vault_settings, "clerk")
        .get(first["download_url"], follow_redirects=False)
        .headers["location"]
    ).content
    report = verifier.post("/v1/verify", files={"file": ("a.pdf", signed, "application/pdf")})
    assert report.json()["document_status"] == "superseded"
    assert report.json()["label"] == "Hợp lệ (đã có bản mới)"


def test_the_issuing_office_revokes_and_every_reader_sees_it(vault_settings: Settings) -> None:
    """GIVEN an issued e-copy WHEN a clerk or another office's approver tries to revoke it
    THEN they are refused; WHEN the office's approver revokes it THEN the QR check, the
    verification report and the staff view say revoked at once; a second revocation is a
    conflict; an admin may revoke too."""
    approver = api(vault_settings, "approver")
    ecopy = issue(approver, processed_document(vault_settings))
    url = f"/v1/ecopies/{ecopy['id']}/revoke"
    reason = {"reason": "Cấp nhầm thông tin người được khai sinh"}
    assert api(vault_settings, "clerk").post(url, json=reason).status_code == 403
    # another office's e-copy answers like a missing one (office scope)
    assert api(vault_settings, "approver", OTHER_OFFICE).post(url, json=reason).status_code == 404
    assert approver.post(url, json={"reason": ""}).status_code == 422
    assert approver.post("/v1/ecopies/" + "0" * 32 + "/revoke", json=reason).status_code == 404

    revoked = approver.post(url, json=reason)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    assert revoked.json()["revocation_reason"] == reason["reason"]
    assert approver.post(url, json=reason).status_code == 409

    check = api(vault_settings, None).get(f"/v1/verify/{code_of(ecopy)}").json()
    assert (check["status"], check["label"]) == ("revoked", "Văn bản đã bị thu hồi")
    link = api(vault_settings, "clerk").get(ecopy["download_url"], follow_redirects=False)
    signed = httpx.get(link.headers["location"]).content
    report = api(vault_settings, "verifier").post(
        "/v1/verify", files={"file": ("a.pdf", signed, "application/pdf")}
    )
    body = report.json()
    assert (body["verdict"], body["document_status"]) == ("valid", "revoked")
    assert body["label"] == "Hợp lệ (văn bản đã bị thu hồi)"
    with session_scope(vault_settings.db.url) as session:
        assert session.get(Document, ecopy["document_id"]).state == "revoked"  # type: ignore[union-attr]
    assert ("ecopy.revoke", ecopy["document_id"]) in _actions(vault_settings)

    other = issue(approver, processed_document(vault_settings, pid=OTHER_PID))
    by_admin = api(vault_settings, "admin", None).post(
        f"/v1/ecopies/{other['id']}/revoke", json=reason
    )
    assert by_admin.status_code == 200 and by_admin.json()["status"] == "revoked"


def test_a_revoked_ecopy_is_replaced_by_the_next_issue(vault_settings: Settings) -> None:
    """A revoked e-copy stays revoked when a new one of the same type is issued; it gets the
    pointer to its replacement (and so leaves the citizen's current list)."""
    approver = api(vault_settings, "approver")
    first = issue(approver, processed_document(vault_settings))
    reason = {"reason": "Sai ngày sinh"}
    assert approver.post(f"/v1/ecopies/{first['id']}/revoke", json=reason).status_code == 200
    second = issue(approver, processed_document(vault_settings))
    detail = api(vault_settings, "clerk").get(f"/v1/ecopies/{first['id']}").json()
    assert (detail["status"], detail["superseded_by"]) == ("revoked", second["id"])


def test_the_ecopy_records_the_clerks_reviewed_values(vault_settings: Settings) -> None:
    """GIVEN a document the pipeline was unsure of WHEN a clerk corrects a field and approves
    it THEN the issued e-copy records the corrected value (and still no personal id)."""
    doc_id = processed_document(
        vault_settings,
        state="needs_review",
        fields={"full_name": "Nguyen Thi Lan", "personal_id": PID, "document_number": "12/TLKS"},
    )
    clerk = api(vault_settings, "clerk")
    correction = {"fields": {"full_name": "Nguyễn Thị Lan"}}
    approved = clerk.post(f"/v1/review/{doc_id}/approve", json=correction)
    assert approved.status_code == 200, approved.text
    ecopy = issue(api(vault_settings, "approver"), doc_id)
    detail = clerk.get(f"/v1/ecopies/{ecopy['id']}").json()
    assert detail["fields"] == {"full_name": "Nguyễn Thị Lan", "document_number": "12/TLKS"}
    assert detail["doc_number"] == "12/TLKS" and detail["doc_type"] == "birth_certificate"


def test_an_ecopy_past_its_validity_shows_expired_everywhere(vault_settings: Settings) -> None:
    """GIVEN an issued e-copy WHEN its valid_until passes THEN the QR check and the
    verification report say expired (never stored: the row stays valid), while one still
    within its validity, or without an end, says valid."""
    approver = api(vault_settings, "approver")
    ecopy = issue(approver, processed_document(vault_settings))
    public = api(vault_settings, None)
    assert public.get(f"/v1/verify/{code_of(ecopy)}").json()["status"] == "valid"
    with session_scope(vault_settings.db.url) as session:
        row = session.get(ECopy, ecopy["id"])
        assert row is not None
        row.valid_until = utcnow() + timedelta(days=1)
    assert public.get(f"/v1/verify/{code_of(ecopy)}").json()["status"] == "valid"
    with session_scope(vault_settings.db.url) as session:
        row = session.get(ECopy, ecopy["id"])
        assert row is not None
        row.valid_until = utcnow() - timedelta(minutes=1)

    check = public.get(f"/v1/verify/{code_of(ecopy)}").json()
    assert (check["status"], check["label"]) == ("expired", "Văn bản đã hết hiệu lực")
    link = api(vault_settings, "clerk").get(ecopy["download_url"], follow_redirects=False)
    signed = httpx.get(link.headers["location"]).content
    body = (
        api(vault_settings, "verifier")
        .post("/v1/verify", files={"file": ("a.pdf", signed, "application/pdf")})
        .json()
    )
    assert (body["verdict"], body["document_status"]) == ("valid", "expired")
    assert body["label"] == "Hợp lệ (văn bản đã hết hiệu lực)"
    with session_scope(vault_settings.db.url) as session:
        assert session.get(ECopy, ecopy["id"]).status == "valid"  # type: ignore[union-attr]
