"""Clerks' search: office-scoped, filters, full text (accent-insensitive on PostgreSQL), audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from digitizer.api.app import create_app
from digitizer.config import Settings
from digitizer.services.keys import create_key
from digitizer.services.search import fold, snippet
from storage.db import AuditEvent, get_engine, session_scope
from tests.conftest import DB_KIND
from tests.digitizer import rows

PID = "079198001234"
OTHER_PID = "001203004567"
OFFICE = "ubnd-phuong-ba-dinh"

BIRTH_TEXT = (
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM Độc lập - Tự do - Hạnh phúc GIẤY KHAI SINH "
    "Họ, chữ đệm, tên: NGUYỄN VĂN ĐỨC Ngày, tháng, năm sinh: 12/03/2019 "
    "Nơi sinh: Bệnh viện Phụ sản Hà Nội Số: 123/2024"
)
DECISION_TEXT = (
    "QUYẾT ĐỊNH về việc cấp bản sao điện tử từ sổ gốc Chủ tịch Ủy ban nhân dân phường "
    "Ba Đình quyết định Điều 1 Số: 45/QĐ-UBND"
)


def _staff(settings: Settings, role: str = "clerk", office: str | None = OFFICE) -> TestClient:
    with session_scope(settings.db.url) as session:
        _, key = create_key(session, name="Trần Thị Lan", role=role, office=office)
    test_client = TestClient(create_app(settings), raise_server_exceptions=False)
    test_client.headers["X-API-Key"] = key
    return test_client


def _seed(settings: Settings) -> dict[str, str]:
    now = datetime.now(UTC)
    with session_scope(settings.db.url) as session:
        person = rows.citizen(session, settings, PID)
        other = rows.citizen(session, settings, OTHER_PID)
        ids = {
            "birth": rows.document(
                session,
                citizen_id=person.id,
                text=BIRTH_TEXT,
                doc_number="123/2024",
                created_at=now - timedelta(days=10),
            ).id,
            "decision": rows.document(
                session,
                citizen_id=other.id,
                doc_type="decision",
                doc_number="45/QĐ-UBND",
                text=DECISION_TEXT,
                filename="quyet-dinh.pdf",
                created_at=now - timedelta(days=2),
            ).id,
            "id_card": rows.document(
                session,
                citizen_id=person.id,
                doc_type="citizen_id",
                doc_number=None,
                text="CĂN CƯỚC CÔNG DÂN Họ và tên NGUYỄN VĂN ĐỨC",
                created_at=now - timedelta(days=1),
            ).id,
            "elsewhere": rows.document(
                session,
                citizen_id=person.id,
                office="ubnd-xa-dong-anh",
                text=BIRTH_TEXT,
                created_at=now,
            ).id,
        }
    return ids


def _ids(answer: object) -> list[str]:
    return [item["id"] for item in answer.json()["items"]]  # type: ignore[attr-defined]


@pytest.mark.smoke
def test_filters_within_the_office_newest_first(settings: Settings) -> None:
    ids = _seed(settings)
    clerk = _staff(settings)
    everything = clerk.post("/v1/search", json={})
    assert everything.status_code == 200, everything.text
    # the other office's copy of the same paper is never found
    assert _ids(everything) == [ids["id_card"], ids["decision"], ids["birth"]]

    by_citizen = clerk.post("/v1/search", json={"citizen_pid": PID})
    assert _ids(by_citizen) == [ids["id_card"], ids["birth"]]
    assert PID not in str(by_citizen.request.url)
    assert _ids(clerk.post("/v1/search", json={"citizen_pid": "001099000001"})) == []
    bad_pid = clerk.post("/v1/search", json={"citizen_pid": "12345"})
    assert bad_pid.status_code == 422 and "12345" not in bad_pid.text

    assert _ids(clerk.post("/v1/search", json={"doc_type": "decision"})) == [ids["decision"]]
    found = clerk.post("/v1/search", json={"doc_number": "123/2024"}).json()["items"]
    assert [i["id"] for i in found] == [ids["birth"]]
    assert found[0]["doc_type"] == "birth_certificate" and found[0]["state"] == "issued"
    assert found[0]["filename"] == "giay-khai-sinh.pdf" and found[0]["snippet"] is None

    today = datetime.now(UTC).date()
    recent = clerk.post(
        "/v1/search", json={"date_from": str(today - timedelta(days=3)), "date_to": str(today)}
    )
    assert _ids(recent) == [ids["id_card"], ids["decision"]]
    old = clerk.post("/v1/search", json={"date_to": str(today - timedelta(days=5))})
    assert _ids(old) == [ids["birth"]]
    reversed_dates = clerk.post(
        "/v1/search", json={"date_from": str(today), "date_to": str(today - timedelta(days=1))}
    )
    assert reversed_dates.status_code == 422

    # the other office sees only its own document
    assert _ids(_staff(settings, office="ubnd-xa-dong-anh").post("/v1/search", json={})) == [
        ids["elsewhere"]
    ]


@pytest.mark.smoke
def test_full_text_with_snippet(settings: Settings) -> None:
    ids = _seed(settings)
    clerk = _staff(settings, role="approver")
    answer = clerk.post("/v1/search", json={"q": "KHAI SINH"})
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [i["id"] for i in items] == [ids["birth"]]
    assert "KHAI SINH" in items[0]["snippet"]
    two_words = clerk.post("/v1/search", json={"q": "NGUYỄN ĐỨC"})
    assert _ids(two_words) == [ids["id_card"], ids["birth"]]
    assert _ids(clerk.post("/v1/search", json={"q": "NGUYỄN", "doc_type": "citizen_id"})) == [
        ids["id_card"]
    ]
    assert _ids(clerk.post("/v1/search", json={"q": "không-có-từ-này"})) == []


@pytest.mark.skipif(DB_KIND != "postgresql", reason="full-text search is PostgreSQL's")
def test_full_text_is_accent_insensitive_with_phrases_and_exclusions(settings: Settings) -> None:
    ids = _seed(settings)
    clerk = _staff(settings)

    def found(q: str) -> list[str]:
        answer = clerk.post("/v1/search", json={"q": q})
        assert answer.status_code == 200, answer.text
        return _ids(answer)

    assert found("nguyen van duc") == [ids["id_card"], ids["birth"]]
    assert found("quyet dinh") == [ids["decision"]]
    assert found('"khai sinh"') == [ids["birth"]]
    assert found('"sinh khai"') == []
    assert found("nguyen -khai") == [ids["id_card"]]
    assert found("123/2024") == [ids["birth"]]
    hit = clerk.post("/v1/search", json={"q": "benh vien"}).json()["items"][0]
    assert "Bệnh viện" in hit["snippet"]  # shown as written


@pytest.mark.skipif(DB_KIND != "postgresql", reason="the GIN index is PostgreSQL's")
def test_full_text_uses_the_gin_index(settings: Settings) -> None:
    with get_engine(settings.db.url).connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                text(
                    "EXPLAIN SELECT id FROM documents WHERE "
                    "sohoa_search_vector(search_text) @@ sohoa_search_query('khai sinh')"
                )
            )
        )
    assert "ix_documents_search" in plan


@pytest.mark.smoke
def test_pages_with_cursor(settings: Settings) -> None:
    now = datetime.now(UTC)
    with session_scope(settings.db.url) as session:
        made = [
            rows.document(session, citizen_id=None, created_at=now - timedelta(minutes=n)).id
            for n in range(5)
        ]
    clerk = _staff(settings)
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page = clerk.post("/v1/search", json={"limit": 2, "cursor": cursor}).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made and cursor is None
    assert clerk.post("/v1/search", json={"cursor": "garbage!"}).status_code == 422
    assert clerk.post("/v1/search", json={"limit": 0}).status_code == 422
    assert clerk.post("/v1/search", json={"limit": 101}).status_code == 422


@pytest.mark.smoke
def test_search_is_audited_without_the_personal_id(settings: Settings) -> None:
    _seed(settings)
    clerk = _staff(settings)
    assert clerk.post("/v1/search", json={"citizen_pid": PID, "q": "khai"}).status_code == 200
    with session_scope(settings.db.url) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "search.query")).one()
        assert event.detail["filters"] == ["citizen_pid", "q"]
        assert event.citizen_id is not None and event.office == OFFICE
        assert PID not in str(event.detail) and "khai" not in str(event.detail)


@pytest.mark.smoke
def test_only_clerks_and_approvers(settings: Settings) -> None:
    for role in ("portal", "verifier"):
        office = None if role == "portal" else OFFICE
        answer = _staff(settings, role=role, office=office).post("/v1/search", json={})
        assert answer.status_code == 403
    anonymous = TestClient(create_app(settings), raise_server_exceptions=False)
    assert anonymous.post("/v1/search", json={}).status_code == 401


def test_snippet_and_fold() -> None:
    assert fold("Nguyễn Văn Đức") == "nguyen van duc"
    assert len(fold("Ủy ban nhân dân")) == len("Ủy ban nhân dân")
    long = "mở đầu " * 40 + "GIẤY KHAI SINH của NGUYỄN VĂN ĐỨC" + " kết thúc" * 40
    cut = snippet(long, ["khai"])
    assert cut is not None and "KHAI SINH" in cut and cut.startswith("…") and cut.endswith("…")
    assert len(cut) <= 170
    assert snippet(None, ["x"]) is None
    assert snippet("ngắn", ["không"]) == "ngắn"
