"""The tamper-evident audit trail: chain, anchors, `sohoa audit verify`, the admin API.

Tampering is done the way an intruder with database access would: plain SQL on
``audit_events`` and ``audit_anchors`` (and, for the anchor copies, the object store).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Connection

from digitizer import cli
from digitizer.config import Settings, SigningSettings
from digitizer.services import audit
from digitizer.services.keys import Actor, create_key
from digitizer.services.wiring import object_store
from fixtures.pki import TestPki, start_test_pki
from storage.asyncdb import AsyncDatabase, dsn
from storage.db import AuditAnchor, AuditEvent, session_scope, utcnow
from tests.conftest import DB_KIND
from tests.helpers import client

CLERK = Actor(key_id="k-clerk", name="Lê Văn Tám", role="clerk", office="ubnd-phuong-ba-dinh")


def write_events(settings: Settings, count: int, *, document_id: str = "doc-1") -> None:
    """``count`` events, each in its own transaction (as requests write them)."""
    for n in range(count):
        with session_scope(settings.db.url) as session:
            audit.record(
                session,
                CLERK,
                "document.read",
                citizen_id=f"cit-{n % 3}",
                document_id=document_id,
                detail={"part": "status", "n": n},
            )


def sql(settings: Settings, statement: str, **params: object) -> None:
    with session_scope(settings.db.url) as session:
        session.execute(text(statement), params)


def run_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    return CliRunner().invoke(cli.main, ["audit", *args])


def assert_broken_at(result: Result, seq: int, words: str) -> None:
    """Exit 3 and one line naming event ``seq`` first, with ``words`` in the reason."""
    assert result.exit_code == 3, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"sohoa: audit trail broken at event {seq}: "), lines[0]
    assert words in lines[0], lines[0]


# -- the chain ----------------------------------------------------------------------------
@pytest.mark.smoke
def test_untouched_log_passes(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN events and an anchor WHEN verified THEN it passes, in text and JSON."""
    write_events(settings, 5)
    assert run_cli(settings, monkeypatch, "anchor").exit_code == 0
    write_events(settings, 2)
    result = run_cli(settings, monkeypatch, "verify")
    assert result.exit_code == 0, result.output
    assert "audit trail intact: 7 events up to 7" in result.stdout
    report = json.loads(run_cli(settings, monkeypatch, "verify", "--json").stdout)
    assert report["ok"] is True and report["events"] == 7
    assert report["anchors"]["database"] == 1 and report["anchors"]["object_store"] == 1
    assert report["first_problem"] is None


@pytest.mark.smoke
def test_empty_log_passes(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli(settings, monkeypatch, "anchor").stdout.strip() == "nothing new to anchor"
    result = run_cli(settings, monkeypatch, "verify")
    assert result.exit_code == 0, result.output


@pytest.mark.smoke
def test_edited_row_is_named(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    write_events(settings, 6)
    sql(settings, "UPDATE audit_events SET document_id = 'doc-other' WHERE seq = 3")
    assert_broken_at(run_cli(settings, monkeypatch, "verify"), 3, "edited")
    report = json.loads(run_cli(settings, monkeypatch, "verify", "--json").stdout)
    assert report["ok"] is False
    assert report["first_problem"]["seq"] == 3
    assert [p["seq"] for p in report["problems"]] == [3]  # the rest of the chain still links


def test_edited_row_with_its_hash_recomputed_is_named(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An intruder who recomputes the edited event's hash breaks the next event's link."""
    write_events(settings, 6)
    with session_scope(settings.db.url) as session:
        event = session.get(AuditEvent, 3)
        assert event is not None
        event.action = "document.create"
        event.hash = audit.event_hash(event, event.prev_hash)
    assert_broken_at(run_cli(settings, monkeypatch, "verify"), 4, "does not link to event 3")


def test_rewritten_tail_is_caught_by_the_anchor(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rewriting every hash from the edit to the head keeps the chain consistent; the
    anchor of the old head (in the database and the object store) still tells."""
    write_events(settings, 6)
    assert run_cli(settings, monkeypatch, "anchor").exit_code == 0
    with session_scope(settings.db.url) as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        events[2].purpose = "support"
        prev = events[1].hash
        for event in events[2:]:
            event.prev_hash = prev
            event.hash = prev = audit.event_hash(event, prev)
    result = run_cli(settings, monkeypatch, "verify", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 3
    assert {p["seq"] for p in report["problems"]} == {6}
    assert any("database anchor" in p["problem"] for p in report["problems"])
    assert any("object store" in p["problem"] for p in report["problems"])


@pytest.mark.smoke
def test_deleted_row_is_named(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    write_events(settings, 6)
    sql(settings, "DELETE FROM audit_events WHERE seq = 4")
    assert_broken_at(run_cli(settings, monkeypatch, "verify"), 4, "deleted")


def test_deleted_first_rows_are_named(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    write_events(settings, 4)
    sql(settings, "DELETE FROM audit_events WHERE seq <= 2")
    assert_broken_at(
        run_cli(settings, monkeypatch, "verify"), 1, "deleted with events up to 2 (the log starts"
    )


@pytest.mark.smoke
def test_deleted_newest_rows_are_named(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN an anchor at event 6 WHEN events 5 and 6 are deleted THEN event 5 is named."""
    write_events(settings, 6)
    assert run_cli(settings, monkeypatch, "anchor").exit_code == 0
    sql(settings, "DELETE FROM audit_events WHERE seq >= 5")
    assert_broken_at(run_cli(settings, monkeypatch, "verify"), 5, "the newest events were deleted")


@pytest.mark.smoke
def test_newest_rows_and_anchors_deleted_together_are_caught_by_the_object_store(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting the newest events and every anchor row still leaves the object-store copy."""
    write_events(settings, 4)
    assert run_cli(settings, monkeypatch, "anchor").exit_code == 0
    write_events(settings, 3)
    assert run_cli(settings, monkeypatch, "anchor").exit_code == 0
    sql(settings, "DELETE FROM audit_events WHERE seq >= 6")
    sql(settings, "DELETE FROM audit_anchors")
    result = run_cli(settings, monkeypatch, "verify")
    assert_broken_at(result, 6, "object store audit/anchors/000000000007.json")
    # the copy itself is intact evidence: its hash is the deleted head's
    copy = json.loads(object_store(settings).get_bytes(audit.anchor_key(7)))
    assert copy["seq"] == 7 and len(copy["head_hash"]) == 64


@pytest.mark.smoke
def test_inserted_row_is_named(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forged event slipped in at 3 (later ones renumbered) breaks the link after it."""
    write_events(settings, 5)
    sql(settings, "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 3")
    sql(settings, "UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000")
    with session_scope(settings.db.url) as session:
        before = session.get(AuditEvent, 2)
        assert before is not None
        forged = AuditEvent(
            seq=3,
            at=utcnow(),
            actor_id="k-admin",
            actor_name="Kẻ mạo danh",
            role="admin",
            action="consent.create",
            detail={},
            prev_hash=before.hash,
        )
        forged.hash = audit.event_hash(forged, before.hash)
        session.add(forged)
    assert_broken_at(run_cli(settings, monkeypatch, "verify"), 4, "does not link to event 3")


@pytest.mark.smoke
def test_reordered_rows_are_named(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    write_events(settings, 6)
    sql(settings, "UPDATE audit_events SET seq = -1 WHERE seq = 3")
    sql(settings, "UPDATE audit_events SET seq = 3 WHERE seq = 4")
    sql(settings, "UPDATE audit_events SET seq = 4 WHERE seq = -1")
    assert_broken_at(run_cli(settings, monkeypatch, "verify"), 3, "does not link to event 2")


def test_anchor_row_for_another_head_is_named(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_events(settings, 3)
    assert run_cli(settings, monkeypatch, "anchor").exit_code == 0
    sql(settings, "UPDATE audit_anchors SET head_hash = :h", h="a" * 64)
    assert_broken_at(run_cli(settings, monkeypatch, "verify"), 3, "differs from the database")


@pytest.mark.smoke
def test_verify_streams_in_chunks(settings: Settings) -> None:
    """A chunk smaller than the log gives the same answer (rows are fetched in chunks)."""
    write_events(settings, 25)
    with session_scope(settings.db.url) as session:
        small = audit.verify(session, settings, object_store(settings), chunk=4)
    assert small.ok and small.events == 25 and small.head_seq == 25
    sql(settings, "UPDATE audit_events SET action = 'x' WHERE seq = 18")
    with session_scope(settings.db.url) as session:
        broken = audit.verify(session, settings, None, chunk=4)
    assert broken.first_problem is not None and broken.first_problem.seq == 18


# -- concurrency ----------------------------------------------------------------------------
@pytest.mark.smoke
def test_concurrent_writers_keep_one_chain(settings: Settings) -> None:
    """GIVEN several threads appending at once WHEN verified THEN one unbroken chain."""
    threads, per_thread = 6, 12
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with session_scope(settings.db.url) as session:
                    # a read before the append, as routes do
                    session.execute(select(AuditEvent.seq).limit(1)).first()
                    audit.record(session, CLERK, "document.read", detail={"t": n, "i": i})
        except BaseException as exc:  # reported below
            errors.append(exc)

    pool = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(120)
    assert not errors, errors
    with session_scope(settings.db.url) as session:
        report = audit.verify(session, settings, object_store(settings))
        seqs = list(session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
    assert report.ok, report.summary()
    assert seqs == list(range(1, threads * per_thread + 1))


@pytest.mark.skipif(DB_KIND != "postgresql", reason="the async read path is PostgreSQL's")
def test_concurrent_async_reads_are_committed_in_batches_in_one_chain(settings: Settings) -> None:
    """GIVEN 40 reads recording their events at once on one event loop (group commit)
    WHEN each call returns THEN its own event is committed, in one unbroken chain, with
    the seq and hash it was given; a failed batch fails its callers, and the next ones
    are written."""
    reads = 40

    async def scenario() -> list[audit.Appended]:
        db = AsyncDatabase(settings.db.url, size=2)
        try:
            appended = await asyncio.gather(
                *(
                    audit.record_read_async(
                        db,
                        CLERK,
                        "portal.documents.list",
                        citizen_id=f"c{n}",
                        detail={"n": n, "lý do": 'Xác minh hồ sơ "một cửa"'},
                    )
                    for n in range(reads)
                )
            )
            # a batch the database refuses (an over-long action) fails its caller only
            with pytest.raises(asyncpg.DataError):
                await audit.record_read_async(db, CLERK, "x" * 200)
            appended.append(await audit.record_read_async(db, CLERK, "portal.ecopy.read"))
            return appended
        finally:
            await db.close()

    appended = asyncio.run(scenario())
    with session_scope(settings.db.url) as session:
        rows = {e.seq: e for e in session.scalars(select(AuditEvent))}
        report = audit.verify(session, settings, object_store(settings))
    assert report.ok, report.summary()
    assert sorted(rows) == list(range(1, reads + 2))
    assert sorted(a.seq for a in appended) == sorted(rows)
    for one in appended:
        assert rows[one.seq].hash == one.hash and rows[one.seq].action == one.action
    assert {rows[a.seq].citizen_id for a in appended[:reads]} == {f"c{n}" for n in range(reads)}
    assert rows[appended[7].seq].detail == {"n": 7, "lý do": 'Xác minh hồ sơ "một cửa"'}


_SEQ_SCANS = "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'audit_events'::regclass"


@pytest.mark.skipif(DB_KIND != "postgresql", reason="the append functions are PostgreSQL's")
def test_appends_read_the_head_by_index_after_an_early_analyze(settings: Settings) -> None:
    """GIVEN a connection whose append functions were planned right after ``audit_events``
    was analyzed with three rows in it (autovacuum does that to a new table, and PL/pgSQL
    keeps a plan for the connection's life) WHEN the chain has grown to thousands of
    events THEN an append, batched or single, still scans no table sequentially
    (bench/vault.py: such scans made every audited read cost PostgreSQL ~1 ms of CPU)."""

    def appends(n: int) -> list[dict[str, object]]:
        return [
            audit._append_params(audit._content(CLERK, "portal.documents.list", detail={"n": i}))
            for i in range(n)
        ]

    async def scenario(single: Connection) -> tuple[int, int]:
        planned = await asyncpg.connect(dsn(settings.db.url))
        filler = await asyncpg.connect(dsn(settings.db.url))
        try:
            await audit._append_many(planned, appends(3))
            await planned.execute("ANALYZE audit_events")
            # both functions planned with the tiny statistics (the plan outlives the
            # rollback; the event does not)
            await audit._append_many(planned, appends(1))
            audit._append(single, audit._event(CLERK, "document.read"))
            single.rollback()
            for _ in range(6):
                await audit._append_many(filler, appends(500))
            async with planned.transaction():
                await audit._append_many(planned, appends(4))
                batched = await planned.fetchval(_SEQ_SCANS)
            audit._append(single, audit._event(CLERK, "document.read"))
            alone = single.execute(text(_SEQ_SCANS)).scalar_one()
            single.commit()
            return batched, alone
        finally:
            await planned.close()
            await filler.close()

    engine = create_engine(settings.db.url)
    try:
        with engine.connect() as single:
            batched, alone = asyncio.run(scenario(single))
    finally:
        engine.dispose()
    assert (batched, alone) == (0, 0)
    with session_scope(settings.db.url) as session:
        report = audit.verify(session, settings, object_store(settings))
    assert report.ok, report.summary()
    assert report.events == 3 + 1 + 3000 + 4 + 1


# -- anchors with the TSA --------------------------------------------------------------------
@dataclass
class Tsa:
    pki: TestPki
    trust_dir: Path


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tsa]:
    work = tmp_path_factory.mktemp("audit-pki")
    with start_test_pki(work) as (pki, _server):
        yield Tsa(pki=pki, trust_dir=pki.write_trust_store(work / "trust"))


def with_tsa(settings: Settings, tsa: Tsa, *, trust: bool = True) -> Settings:
    return settings.model_copy(
        update={
            "signing": SigningSettings(
                tsa_url=tsa.pki.tsa_url, trust_store_dir=tsa.trust_dir if trust else None
            )
        }
    )


def test_anchor_is_timestamped_by_the_tsa(
    settings: Settings, tsa: Tsa, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a TSA and a trust store WHEN the head is anchored THEN the token covers the
    head, its signature validates, and the object-store copy carries the same token."""
    stamped = with_tsa(settings, tsa)
    write_events(stamped, 4)
    result = run_cli(stamped, monkeypatch, "anchor")
    assert result.exit_code == 0, result.output
    assert "anchored event 4" in result.stdout and "timestamped by the TSA" in result.stdout
    with session_scope(stamped.db.url) as session:
        row = session.scalars(select(AuditAnchor)).one()
        assert row.token is not None and row.seq == 4
        token = row.token
    copy = json.loads(object_store(stamped).get_bytes(audit.anchor_key(4)))
    assert base64.b64decode(copy["token"]) == token
    report = json.loads(run_cli(stamped, monkeypatch, "verify", "--json").stdout)
    assert report["ok"], report
    assert report["anchors"]["timestamped"] == 1
    assert report["anchors"]["tsa_signatures_checked"] is True

    # A token taken for another head does not cover this one.
    write_events(stamped, 1)
    assert run_cli(stamped, monkeypatch, "anchor").exit_code == 0
    with session_scope(stamped.db.url) as session:
        rows = list(session.scalars(select(AuditAnchor).order_by(AuditAnchor.seq)))
        rows[1].token = rows[0].token
    assert_broken_at(run_cli(stamped, monkeypatch, "verify"), 5, "covers another head")


def self_made_root(folder: Path) -> Path:
    """A trust store holding only a root that issued nothing we meet."""
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "Gốc không tin cậy")])
    now = utcnow()
    cert = (
        cx509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(cx509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir()
    (folder / "root.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return folder


def test_token_from_an_untrusted_tsa_is_named(
    settings: Settings, tsa: Tsa, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a trust store only the imprint is checked; with one that does not hold the
    TSA's root, the token's signature does not validate and the anchor's event is named."""
    stamped = with_tsa(settings, tsa, trust=False)
    write_events(stamped, 2)
    assert run_cli(stamped, monkeypatch, "anchor").exit_code == 0
    plain = json.loads(run_cli(stamped, monkeypatch, "verify", "--json").stdout)
    assert plain["ok"] and plain["anchors"]["tsa_signatures_checked"] is False
    untrusted = stamped.model_copy(
        update={
            "signing": stamped.signing.model_copy(
                update={"trust_store_dir": self_made_root(tmp_path / "other-trust")}
            )
        }
    )
    assert_broken_at(run_cli(untrusted, monkeypatch, "verify"), 2, "TSA signature")


def test_dead_tsa_writes_no_anchor(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage.embedded import free_port

    dead = settings.model_copy(
        update={"signing": SigningSettings(tsa_url=f"http://127.0.0.1:{free_port()}/tsa")}
    )
    write_events(dead, 2)
    result = run_cli(dead, monkeypatch, "anchor")
    assert result.exit_code == 2 and "TSA" in result.stderr
    with session_scope(dead.db.url) as session:
        assert session.scalars(select(AuditAnchor)).first() is None
    assert object_store(dead).list_keys(audit.ANCHOR_PREFIX) == []


@pytest.mark.smoke
def test_worker_maintenance_anchors_at_intervals(settings: Settings) -> None:
    from workers.sweeper import Maintenance

    periodic = settings.model_copy(
        update={"audit": settings.audit.model_copy(update={"anchor_interval_s": 0.01})}
    )
    write_events(periodic, 3)
    Maintenance(periodic).tick()
    with session_scope(periodic.db.url) as session:
        assert [a.seq for a in session.scalars(select(AuditAnchor))] == [3]
    Maintenance(periodic).tick()  # nothing new: no second anchor
    write_events(periodic, 1)
    Maintenance(periodic).tick()
    with session_scope(periodic.db.url) as session:
        assert [a.seq for a in session.scalars(select(AuditAnchor).order_by(AuditAnchor.seq))] == [
            3,
            4,
        ]
    assert len(object_store(periodic).list_keys(audit.ANCHOR_PREFIX)) == 2


# -- request ids and the admin API -------------------------------------------------------------
@pytest.mark.smoke
def test_request_id_is_kept_or_made_and_recorded(settings: Settings) -> None:
    from tests import samples

    api = client(settings)
    scan = samples.png(["Giấy khai sinh"])
    given = api.post(
        "/v1/documents",
        files={"file": ("a.png", scan, "image/png")},
        headers={"X-Request-ID": "req-123.abc"},
    )
    assert given.status_code == 202, given.text
    assert given.headers["X-Request-ID"] == "req-123.abc"
    doc_id = given.json()["documents"][0]["id"]
    bad = api.get(f"/v1/documents/{doc_id}", headers={"X-Request-ID": "<script>" + "x" * 100})
    made = bad.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client(settings, role=None).get("/v1/documents/x").headers["X-Request-ID"]
    with session_scope(settings.db.url) as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert [(e.action, e.request_id) for e in events] == [
        ("document.create", "req-123.abc"),
        ("document.read", made),
    ]


@pytest.mark.smoke
def test_admin_queries_the_trail_and_the_query_is_audited(settings: Settings) -> None:
    write_events(settings, 3, document_id="doc-a")
    write_events(settings, 2, document_id="doc-b")
    with session_scope(settings.db.url) as session:
        audit.record(session, None, "ecopy.issue", document_id="doc-b", citizen_id="cit-9")
    admin = client(settings, role="admin")

    by_doc = admin.get("/v1/audit", params={"document_id": "doc-b"})
    assert by_doc.status_code == 200, by_doc.text
    assert [e["seq"] for e in by_doc.json()["events"]] == [6, 5, 4]
    assert by_doc.json()["next_cursor"] is None
    assert [e["seq"] for e in admin.get("/v1/audit?citizen_id=cit-9").json()["events"]] == [6]
    assert [
        e["seq"]
        for e in admin.get("/v1/audit?action=ecopy.issue&document_id=doc-b").json()["events"]
    ] == [6]
    assert len(admin.get("/v1/audit", params={"actor_id": "k-clerk"}).json()["events"]) == 5

    page1 = admin.get("/v1/audit", params={"actor_id": "k-clerk", "limit": 2}).json()
    assert [e["seq"] for e in page1["events"]] == [5, 4]
    page2 = admin.get(
        "/v1/audit", params={"actor_id": "k-clerk", "limit": 2, "cursor": page1["next_cursor"]}
    ).json()
    assert [e["seq"] for e in page2["events"]] == [3, 2]
    page3 = admin.get(
        "/v1/audit", params={"actor_id": "k-clerk", "limit": 2, "cursor": page2["next_cursor"]}
    ).json()
    assert [e["seq"] for e in page3["events"]] == [1] and page3["next_cursor"] is None

    with session_scope(settings.db.url) as session:
        third = session.get(AuditEvent, 3)
        assert third is not None
        at3 = third.at
    window = admin.get(
        "/v1/audit",
        params={"since": at3.isoformat(), "until": (at3 + timedelta(microseconds=1)).isoformat()},
    ).json()
    assert [e["seq"] for e in window["events"]] == [3]
    hanoi = timezone(timedelta(hours=7))
    local = admin.get(
        "/v1/audit",
        params={
            "since": at3.astimezone(hanoi).isoformat(),
            "until": (at3 + timedelta(microseconds=1)).astimezone(hanoi).isoformat(),
        },
    ).json()
    assert [e["seq"] for e in local["events"]] == [3]
    assert admin.get("/v1/audit?cursor=abc").status_code == 422

    # the queries themselves are on record, as admin reads
    reads = admin.get("/v1/audit?action=audit.read").json()["events"]
    assert len(reads) >= 8 and all(e["role"] == "admin" for e in reads)
    assert reads[-1]["document_id"] == "doc-b"

    assert client(settings, role="clerk").get("/v1/audit").status_code == 403
    assert client(settings, role="approver").get("/v1/audit").status_code == 403
    assert client(settings, role=None).get("/v1/audit").status_code == 401
    with session_scope(settings.db.url) as session:
        assert audit.verify(session, settings, None).ok


def test_document_trail_for_staff_of_its_office(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from digitizer.api.app import create_app
    from tests import samples

    def key(role: str, office: str | None) -> dict[str, str]:
        with session_scope(settings.db.url) as session:
            _, secret = create_key(session, name="Phạm Thị Hoa", role=role, office=office)
        return {"X-API-Key": secret}

    api = TestClient(create_app(settings), raise_server_exceptions=False)
    own = key("clerk", "ubnd-phuong-ba-dinh")
    scan = samples.png(["Giấy chứng nhận kết hôn"])
    up = api.post("/v1/documents", files={"file": ("k.png", scan, "image/png")}, headers=own)
    assert up.status_code == 202, up.text
    doc_id = up.json()["documents"][0]["id"]
    assert api.get(f"/v1/documents/{doc_id}", headers=own).status_code == 200

    trail = api.get(f"/v1/documents/{doc_id}/audit", headers=own)
    assert trail.status_code == 200, trail.text
    assert [e["action"] for e in trail.json()["events"]] == ["document.read", "document.create"]
    other = key("clerk", "ubnd-xa-khac")
    assert api.get(f"/v1/documents/{doc_id}/audit", headers=other).status_code == 404
    assert api.get(f"/v1/documents/{doc_id}/audit", headers=key("portal", None)).status_code == 403
    again = api.get(f"/v1/documents/{doc_id}/audit", headers=own).json()["events"]
    assert again[0]["action"] == "audit.read"
