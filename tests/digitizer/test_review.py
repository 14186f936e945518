"""The clerk review queue on real services: list, detail, correct, approve, retrain.

Documents are born-digital PDFs (their text layer is read, no OCR), classified by a small
model trained once for the module from generated documents. The "residence confirmation"
below is a wording the generator never produces ("GIẤY XÁC NHẬN NƠI CƯ TRÚ"): the small
model is unsure of it, so it lands in the queue.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx
import pymupdf
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from digitizer.api.app import create_app
from digitizer.config import Settings
from digitizer.pipeline.classify import Classifier
from digitizer.pipeline.training import load_model, train_default
from digitizer.services.keys import create_key
from digitizer.services.wiring import object_store
from digitizer.stack import settings_env
from storage.db import ApiKey, AuditEvent, Document, ReviewLabel, iso_date, session_scope
from tests.helpers import drain

PROBLEM = "application/problem+json"
PID = "001091004567"

RESIDENCE = """CÔNG AN XÃ YÊN THẾ
CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM
Độc lập - Tự do - Hạnh phúc
Số: {number}/XN-CA
GIẤY XÁC NHẬN NƠI CƯ TRÚ
Công an xã Yên Thế xác nhận ông/bà: {name}
Ngày sinh: 12/03/1991
Giới tính: Nam
Số định danh cá nhân: 001091004567
Hiện đang cư trú tại: thôn Đông, xã Yên Thế, tỉnh Bắc Ninh
Thời hạn của giấy xác nhận: đến ngày 09/12/2025
Yên Thế, ngày 09 tháng 6 năm 2025
TRƯỞNG CÔNG AN XÃ
Nguyễn Văn Bình"""

NAMES = ["TRẦN VĂN AN", "LÊ THỊ HOA", "PHẠM QUỐC VIỆT", "ĐỖ THỊ NGỌC ÁNH"]


def text_pdf(text: str) -> bytes:
    """A one-page born-digital PDF with ``text`` as lines."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    writer = pymupdf.TextWriter(page.rect)
    font = pymupdf.Font("notos")
    for i, line in enumerate(text.splitlines()):
        writer.append((60, 70 + i * 22), line, font=font, fontsize=11)
    writer.write_text(page)
    return doc.tobytes()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small classifier (8 generated documents per type), trained once."""
    root = tmp_path_factory.mktemp("models")
    train_default(root, per_type=8)
    return root


@pytest.fixture
def rsettings(settings: Settings, model_dir: Path, tmp_path: Path) -> Settings:
    """Settings with a model folder of this test's own (retraining must not leak)."""
    import shutil

    own = tmp_path / "models"
    shutil.copytree(model_dir, own)
    return settings.model_copy(update={"model_dir": own})


def staff(
    settings: Settings, role: str = "clerk", office: str | None = "ubnd-yen-the"
) -> TestClient:
    """A client with a fresh key of ``role`` in ``office``."""
    with session_scope(settings.db.url) as session:
        _, key = create_key(session, name=f"Nguyễn Thị {role}", role=role, office=office)
    api = TestClient(create_app(settings), raise_server_exceptions=False)
    api.headers["X-API-Key"] = key
    return api


def key_id(api: TestClient) -> str:
    prefix = api.headers["X-API-Key"].split("_")[1]
    return prefix


def upload(settings: Settings, api: TestClient, text: str, name: str, office: str | None) -> str:
    response = api.post("/v1/documents", files={"file": (name, text_pdf(text), "application/pdf")})
    assert response.status_code == 202, response.text
    doc_id = response.json()["documents"][0]["id"]
    # The office is stamped at upload from the clerk's key; set here so these tests do
    # not depend on how intake stamps it.
    with session_scope(settings.db.url) as session:
        row = session.get(Document, doc_id)
        assert row is not None
        row.office = office
    return doc_id


def residence(
    settings: Settings, api: TestClient, n: int, office: str | None = "ubnd-yen-the"
) -> str:
    text = RESIDENCE.format(name=NAMES[n], number=40 + n)
    return upload(settings, api, text, f"xac-nhan-{n}.pdf", office)


def row(settings: Settings, doc_id: str) -> Document:
    with session_scope(settings.db.url) as session:
        doc = session.get(Document, doc_id)
        assert doc is not None
        session.expunge(doc)
        return doc


def actions(settings: Settings, document_id: str) -> list[str]:
    with session_scope(settings.db.url) as session:
        return list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.document_id == document_id)
                .order_by(AuditEvent.seq)
            )
        )


# --------------------------------------------------------------------------------------------


@pytest.mark.smoke
def test_processing_fills_type_number_model_and_text(rsettings: Settings) -> None:
    """GIVEN a trained model WHEN a document is processed THEN the columns for queries carry
    its type, normalised number, the model version and the recognised text, and the status
    answer shows type, fields and review reasons."""
    api = staff(rsettings)
    doc_id = residence(rsettings, api, 0)
    drain(rsettings)
    doc = row(rsettings, doc_id)
    version = load_model(rsettings.model_dir).version  # type: ignore[arg-type]
    assert doc.state == "needs_review", doc.results.get("review")
    assert doc.model_version == version
    assert doc.results["doc_type"] == doc.doc_type
    assert doc.results["classification"]["predicted"] == "residence_confirmation"
    assert doc.search_text and "GIẤY XÁC NHẬN NƠI CƯ TRÚ" in doc.search_text
    assert doc.results["review"]
    status = api.get(f"/v1/documents/{doc_id}").json()
    assert status["doc_type"] == doc.doc_type
    assert status["model_version"] == version
    assert status["review_reasons"] == doc.results["review"]
    assert status["type_confidence"] == doc.results["classification"]["confidence"]


@pytest.mark.smoke
def test_queue_lists_own_office_oldest_first_with_pagination(rsettings: Settings) -> None:
    api = staff(rsettings)
    ids = [residence(rsettings, api, n) for n in range(3)]
    elsewhere = residence(rsettings, api, 3, office="ubnd-bac-ninh")
    drain(rsettings)
    for doc_id in [*ids, elsewhere]:
        assert row(rsettings, doc_id).state == "needs_review"

    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/review", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids  # oldest first, the other office's document absent
    first = api.get("/v1/review", params={"limit": 1}).json()["items"][0]
    assert first["filename"] == "xac-nhan-0.pdf"
    assert first["predicted_type"] == "residence_confirmation"
    assert first["review_reasons"] and first["review_url"] == f"/v1/review/{ids[0]}"
    assert "created_at" in first and "type_confidence" in first

    other = staff(rsettings, office="ubnd-bac-ninh").get("/v1/review").json()
    assert [item["id"] for item in other["items"]] == [elsewhere]
    assert staff(rsettings, office=None).get("/v1/review").json()["items"] == []
    # A verifier is not a clerk; a malformed cursor is a 422 problem.
    assert staff(rsettings, "verifier").get("/v1/review").status_code == 403
    bad = api.get("/v1/review", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM


def test_detail_has_pages_lines_image_and_proposals(rsettings: Settings) -> None:
    api = staff(rsettings)
    doc_id = residence(rsettings, api, 1)
    drain(rsettings)
    detail = api.get(f"/v1/review/{doc_id}")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["page_count"] == 1 and len(body["pages"]) == 1
    [page] = body["pages"]
    texts = [line["text"] for line in page["lines"]]
    assert "GIẤY XÁC NHẬN NƠI CƯ TRÚ" in texts
    assert all(len(line["bbox"]) == 4 and line["confidence"] > 0 for line in page["lines"])
    assert body["predicted_type"] == "residence_confirmation"
    assert body["type_below_threshold"] is True
    assert body["type_scores"]["residence_confirmation"] > 0
    assert body["review_reasons"] == row(rsettings, doc_id).results["review"]
    assert body["model_version"] == load_model(rsettings.model_dir).version  # type: ignore[arg-type]
    for field in body["fields"].values():
        assert field["below_threshold"] == (
            field["confidence"] is None or field["confidence"] < field["threshold"]
        )
        assert field["corrected"] is False

    # The page image: rendered on demand, stored as a derived object, short-lived link.
    image = api.get(page["image_url"], follow_redirects=False)
    assert image.status_code == 307
    png = httpx.get(image.headers["location"]).content
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG"
        assert abs(img.width / img.height - page["width"] / page["height"]) < 0.01
        assert 700 <= img.width <= 900  # A4 at 100 dpi
    doc = row(rsettings, doc_id)
    assert object_store(rsettings).exists(f"derived/{doc.sha256}/pageimg-1/0.png")
    assert api.get(f"/v1/review/{doc_id}/pages/1.png").status_code == 404

    # Reads are audited; another office's clerk is told there is no such document.
    assert actions(rsettings, doc_id)[-2:] == ["review.read", "review.page"]
    other = staff(rsettings, office="ubnd-bac-ninh")
    assert other.get(f"/v1/review/{doc_id}").status_code == 404
    assert other.put(f"/v1/review/{doc_id}", json={"doc_type": "other"}).status_code == 404


@pytest.mark.smoke
def test_corrections_are_validated_and_stored_without_approving(rsettings: Settings) -> None:
    api = staff(rsettings)
    doc_id = residence(rsettings, api, 2)
    drain(rsettings)
    url = f"/v1/review/{doc_id}"
    bad_bodies = [
        ({"doc_type": "passport"}, "unknown document type"),
        ({"fields": {"shoe_size": "42"}}, "unknown field"),
        ({"doc_type": "decision", "fields": {"full_name": "A"}}, "has no field"),
        ({"fields": {"issue_date": "09/06/2025"}}, "issue_date"),
        ({"fields": {"date_of_birth": "1991-02-30"}}, "date_of_birth"),
        ({"fields": {"sex": "khác"}}, "sex"),
    ]
    for body, expected in bad_bodies:
        response = api.put(url, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "/problems/invalid-correction"
        assert expected in response.json()["detail"]
    bad_pid = "999091004567"  # no such province code
    response = api.put(
        url, json={"doc_type": "residence_confirmation", "fields": {"personal_id": bad_pid}}
    )
    assert response.status_code == 422
    assert "personal_id" in response.json()["detail"] and bad_pid not in response.text
    assert api.put(url, json={"fields": {"full_name": 7}}).status_code == 422

    response = api.put(
        url,
        json={
            "doc_type": "residence_confirmation",
            "fields": {"full_name": "Phạm Quốc Việt", "personal_id": "0010 9100 4567"},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "needs_review"
    assert body["doc_type"] == "residence_confirmation" and body["type_corrected"] is True
    assert body["fields"]["full_name"]["value"] == "Phạm Quốc Việt"
    # "xác nhận ông/bà:" is no name label the extractor knows: the clerk's value is new.
    assert body["fields"]["full_name"]["corrected"] is True
    assert body["fields"]["full_name"]["proposed_value"] is None
    assert body["fields"]["personal_id"]["value"] == PID
    # Fields of the corrected type are proposed from the recognised text.
    assert body["fields"]["date_of_birth"]["value"] == "1991-03-12"
    assert "place_of_residence" in body["expected_fields"]

    doc = row(rsettings, doc_id)
    assert doc.state == "needs_review" and doc.reviewed_at is None
    assert doc.doc_type == "residence_confirmation"
    assert doc.results["corrections"]["fields"]["personal_id"] == PID
    status = api.get(f"/v1/documents/{doc_id}").json()
    assert status["doc_type"] == "residence_confirmation"
    assert status["fields"]["full_name"] == {"value": "Phạm Quốc Việt", "confidence": 1.0}
    assert "review.correct" in actions(rsettings, doc_id)
    with session_scope(rsettings.db.url) as session:
        details = session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "review.correct")
        ).all()
    assert PID not in str(details)


def test_issue_date_follows_the_review_and_is_searchable(rsettings: Settings) -> None:
    """``documents.issued_on`` holds the paper's issue date as extracted, then as
    corrected and approved; clerks search by it (``issued_from`` / ``issued_to``)."""
    api = staff(rsettings, "approver")
    doc_id = residence(rsettings, api, 0)
    drain(rsettings)
    before = row(rsettings, doc_id)
    extracted = (before.results["fields"].get("issue_date") or {}).get("value")
    assert before.issued_on == iso_date(extracted)
    corrected = api.put(
        f"/v1/review/{doc_id}",
        json={"doc_type": "residence_confirmation", "fields": {"issue_date": "2023-03-04"}},
    )
    assert corrected.status_code == 200, corrected.text
    assert row(rsettings, doc_id).issued_on == date(2023, 3, 4)
    approved = api.post(
        f"/v1/review/{doc_id}/approve",
        json={"doc_type": "residence_confirmation", "fields": {"issue_date": "2024-12-10"}},
    )
    assert approved.status_code == 200, approved.text
    assert row(rsettings, doc_id).issued_on == date(2024, 12, 10)

    clerk = staff(rsettings, "clerk")
    day = {"issued_from": "2024-12-10", "issued_to": "2024-12-10"}
    [hit] = clerk.post("/v1/search", json=day).json()["items"]
    assert hit["id"] == doc_id and hit["issued_on"] == "2024-12-10"
    assert clerk.post("/v1/search", json={"issued_from": "2024-12-11"}).json()["items"] == []
    assert clerk.post("/v1/search", json={"issued_to": "2024-12-09"}).json()["items"] == []
    backwards = clerk.post(
        "/v1/search", json={"issued_from": "2024-12-11", "issued_to": "2024-12-10"}
    )
    assert backwards.status_code == 422


def test_approve_records_a_label_and_refuses_other_states(rsettings: Settings) -> None:
    api = staff(rsettings, "approver")
    doc_id = residence(rsettings, api, 0)
    drain(rsettings)
    before = row(rsettings, doc_id)
    response = api.post(
        f"/v1/review/{doc_id}/approve",
        json={"doc_type": "residence_confirmation", "fields": {"valid_until": "2025-12-09"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "approved" and body["corrected"] is True
    assert body["doc_type"] == "residence_confirmation"
    assert body["fields"]["valid_until"] == "2025-12-09"
    assert body["fields"]["personal_id"] == PID

    doc = row(rsettings, doc_id)
    assert doc.state == "approved" and doc.reviewed_at is not None
    assert doc.doc_type == "residence_confirmation" and doc.doc_number == "40/XN-CA"
    assert doc.results["reviewed"]["fields"]["valid_until"] == "2025-12-09"
    with session_scope(rsettings.db.url) as session:
        [label] = session.scalars(select(ReviewLabel)).all()
        reviewer = session.get(ApiKey, doc.reviewed_by)
        assert reviewer is not None and reviewer.prefix == key_id(api)
        assert label.id == body["label_id"]
        assert label.document_id == doc_id and label.doc_type == "residence_confirmation"
        assert label.corrected is True and label.labelled_by == doc.reviewed_by
        assert label.model_version == before.model_version
        assert label.proposed["doc_type"] == before.results["doc_type"]
        assert label.proposed["predicted"] == "residence_confirmation"
        assert "GIẤY XÁC NHẬN NƠI CƯ TRÚ" in label.text
    assert actions(rsettings, doc_id)[-1] == "review.approve"

    again = api.post(f"/v1/review/{doc_id}/approve")
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert api.put(f"/v1/review/{doc_id}", json={"doc_type": "other"}).status_code == 409
    assert api.post(f"/v1/review/{'0' * 32}/approve").status_code == 404


def test_approve_ready_document_without_changes(rsettings: Settings) -> None:
    """A document the pipeline was sure of is approved as proposed: an uncorrected label."""
    api = staff(rsettings)
    doc_id = residence(rsettings, api, 1)
    drain(rsettings)
    with session_scope(rsettings.db.url) as session:
        doc = session.get(Document, doc_id)
        assert doc is not None
        doc.state = "ready"  # as if the office's thresholds had let it through
    response = api.post(f"/v1/review/{doc_id}/approve")
    assert response.status_code == 200, response.text
    assert response.json()["corrected"] is False
    with session_scope(rsettings.db.url) as session:
        [label] = session.scalars(select(ReviewLabel)).all()
        assert label.corrected is False and label.doc_type == row(rsettings, doc_id).doc_type


def test_retraining_learns_a_correction(rsettings: Settings) -> None:
    """GIVEN a wording the model is unsure of WHEN a clerk approves one such document with
    the right type and ``sohoa train`` runs THEN another document of that wording, reprocessed,
    is classified right without review of its type, and records the new model version."""
    api = staff(rsettings)
    first, second = residence(rsettings, api, 0), residence(rsettings, api, 1)
    drain(rsettings)
    old = load_model(rsettings.model_dir).version  # type: ignore[arg-type]
    for doc_id in (first, second):
        doc = row(rsettings, doc_id)
        assert doc.doc_type != "residence_confirmation"  # the premise: the model is wrong
        assert any(r.startswith("type:") for r in doc.results["review"])
    approved = api.post(f"/v1/review/{first}/approve", json={"doc_type": "residence_confirmation"})
    assert approved.status_code == 200, approved.text

    env = {
        **os.environ,
        **settings_env(rsettings),
        "SOHOA_MODEL_DIR": str(rsettings.model_dir),
    }
    result = subprocess.run(
        [sys.executable, "-m", "digitizer.cli", "train", "--per-type", "8"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "1 reviewed documents, 1 of them corrected" in result.stdout
    new = load_model(rsettings.model_dir)  # type: ignore[arg-type]
    assert new.version != old and new.meta["reviewed_labels"] == 1
    text = row(rsettings, first).search_text or ""
    assert Classifier(new).classify(text).type == "residence_confirmation"

    assert api.post(f"/v1/documents/{second}/reprocess").status_code == 202
    drain(rsettings)
    doc = row(rsettings, second)
    assert doc.doc_type == "residence_confirmation"
    assert doc.model_version == new.version
    assert not any(r.startswith("type:") for r in doc.results["review"])
    assert api.get(f"/v1/review/{second}").json()["model_version"] == new.version


@pytest.mark.smoke
def test_review_labels_become_weighted_training_examples(settings: Settings) -> None:
    """The latest label per document, corrected ones weighted, labels without text skipped."""
    from digitizer.services.review import CORRECTED_WEIGHT, labelled_examples

    with session_scope(settings.db.url) as session:
        docs = []
        for n in range(3):
            doc = Document(
                sha256=f"{n:064d}", filename=f"{n}.pdf", media_type="application/pdf", size=1
            )
            session.add(doc)
            docs.append(doc)
        session.flush()
        session.add_all(
            [
                ReviewLabel(document_id=docs[0].id, doc_type="decision", text="QUYẾT ĐỊNH 1"),
                ReviewLabel(
                    document_id=docs[0].id, doc_type="official_letter", text="V/v 1", corrected=True
                ),
                ReviewLabel(document_id=docs[1].id, doc_type="diploma", text="BẰNG TỐT NGHIỆP"),
                ReviewLabel(document_id=docs[2].id, doc_type="other", text="  "),
            ]
        )
        session.flush()
        examples = {e.document_id: e for e in labelled_examples(session)}
        assert set(examples) == {docs[0].id, docs[1].id}
        assert examples[docs[0].id].doc_type == "official_letter"
        assert examples[docs[0].id].weight == CORRECTED_WEIGHT
        assert examples[docs[1].id].weight == 1.0
        assert all(e.source == "clerk" for e in examples.values())
