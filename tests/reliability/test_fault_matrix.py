"""Fault matrix: real processes, real faults, a batch of at least 100 documents per fault.

One private deployment for the module (fixtures.stack.PrivateStack): its own PostgreSQL,
Redis and SeaweedFS on free loopback ports, the test PKI, the API under uvicorn and two
``sohoa worker`` processes. Each test injects one fault while a batch of small generated
scans goes through it, lets it recover, and checks what DESIGN.md promises ("Rules that keep
data safe"):

- a worker SIGKILLed mid-OCR: the sweeper takes its document back, it completes once;
- the API SIGKILLed mid-signing (issuing runs in the API request): no half-issued and no
  second e-copy; the client's retry ends with exactly one e-copy per document;
- Redis stopped and restarted empty during uploads: every upload still 202, all complete;
- S3 stopped during uploads: 503 problems for new uploads; during result writes: the
  workers retry, nothing accepted is lost;
- PostgreSQL stopped and restarted: 503 problems while it is down, nothing accepted lost.

After each: every accepted document processed exactly once in effect (one document per
distinct upload, one e-copy per issued document, none lost, none failed, none stuck).
The counts per fault are printed at the end of the run and written as JSON
(``SOHOA_FAULTS_OUT``, default the session's temporary folder).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import func, select

from digitizer.services import audit
from digitizer.services.wiring import object_store
from fixtures.stack import OFFICE, PrivateStack, children, sigkill_tree
from storage.db import SETTLED_STATES, AuditEvent, Document, DocumentState, ECopy, session_scope
from storage.objects import original_key
from tests.conftest import DB_KIND

pytestmark = [
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        DB_KIND == "sqlite", reason="the fault matrix runs its own PostgreSQL (full suite only)"
    ),
]

BATCH = 100
#: E-copies issued under the API-kill fault (B-LT signing costs ~0.5 s of CPU each; the
#: documents come from the first fault's batch).
SIGN_BATCH = 50
#: Longer than the workers' whole retry schedule (1 + 2 + 4 s): an outage that outlasts
#: the retries must still lose nothing.
REDIS_OUTAGE_S = 8.0
S3_OUTAGE_S = float(os.environ.get("SOHOA_FAULTS_S3_OUTAGE_S", "12"))
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"
RESULTS: dict[str, dict[str, Any]] = {}
DONE = {s.value for s in SETTLED_STATES} - {DocumentState.FAILED.value}


def scan(fault: str, n: int) -> bytes:
    """A tiny scan (two short lines, about 0.1 s of OCR), distinct for every (fault, n)."""
    img = Image.new("L", (900, 220), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 40)
    draw.text((40, 40), f"Hồ sơ {fault} số {n:04d}", font=font, fill=0)
    draw.text((40, 120), "Giấy khai sinh", font=font, fill=0)
    out = io.BytesIO()
    img.save(out, format="PNG", dpi=(200, 200))
    return out.getvalue()


@dataclass
class Tally:
    """What one fault did to its batch."""

    fault: str
    attempted: int = 0
    accepted: int = 0
    refused_503: int = 0
    other_errors: list[str] = field(default_factory=list)
    refused_but_stored: int = 0
    completed: int = 0
    failed: int = 0
    stuck: int = 0
    lost: int = 0
    duplicates: int = 0
    recovered: int = 0  # documents that needed more than one run (the fault hit them)
    seconds: float = 0.0
    ids: dict[str, str] = field(default_factory=dict, repr=False)  # sha256 -> document id
    refused: list[str] = field(default_factory=list, repr=False)  # sha256 of refused uploads
    extra: dict[str, Any] = field(default_factory=dict)

    def upload(self, client: httpx.Client, data: bytes, name: str) -> bool:
        """Upload once; True when accepted (202)."""
        self.attempted += 1
        sha = hashlib.sha256(data).hexdigest()
        try:
            response = client.post(
                "/v1/documents", files={"file": (name, data, "image/png")}, timeout=30
            )
        except httpx.HTTPError as exc:
            self.other_errors.append(f"{name}: {type(exc).__name__}")
            return False
        if response.status_code == 202:
            self.accepted += 1
            self.ids[sha] = response.json()["documents"][0]["id"]
            return True
        if response.status_code == 503:
            assert response.headers["content-type"].startswith("application/problem+json")
            self.refused_503 += 1
            self.refused.append(sha)
            return False
        self.other_errors.append(f"{name}: {response.status_code} {response.text[:200]}")
        return False

    def report(self) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if k not in {"ids", "refused"}}
        RESULTS[self.fault] = row
        print(f"\nfault {self.fault}: {json.dumps(row, ensure_ascii=False)}")
        return row


# -- the stack ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack() -> Iterator[PrivateStack]:
    with PrivateStack(workers=2, signing=True) as running:
        yield running
    out = Path(os.environ.get("SOHOA_FAULTS_OUT", "") or running.base.parent / "faults.json")
    if RESULTS:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"benchmark": "faults", "faults": RESULTS}, indent=2) + "\n")
        print(f"\nfault matrix counts written to {out}")


@pytest.fixture(scope="module")
def clerk(stack: PrivateStack) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=stack.base_url, headers={"X-API-Key": stack.make_key("clerk")}
    ) as client:
        yield client


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, stack: PrivateStack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}\n"
        f"workers:\n{stack.tail('workers.log')}\napi:\n{stack.tail('api.log')}"
    )


def states(stack: PrivateStack, ids: list[str]) -> dict[str, str]:
    with session_scope(stack.cfg.db.url) as session:
        rows = session.execute(select(Document.id, Document.state).where(Document.id.in_(ids)))
        return {row.id: row.state for row in rows}


def settle(stack: PrivateStack, tally: Tally, timeout: float = 120) -> None:
    """Wait until every accepted document is settled (or the time is up)."""
    ids = list(tally.ids.values())
    try:
        wait_for(
            lambda: all(s in SETTLED_STATES for s in states(stack, ids).values()),
            timeout,
            f"the {tally.fault} batch to settle",
            stack,
        )
    except AssertionError:
        print(Counter(states(stack, ids).values()))
        proc = stack.redis._proc
        print("redis", stack.redis.port, proc and proc.poll(), stack.redis.log_path)
        if stack.redis.log_path:
            print(stack.redis.log_path.read_text()[-3000:])
        raise


def check(stack: PrivateStack, tally: Tally, done: set[str] = DONE) -> None:
    """Count completed / failed / stuck / lost / duplicates; assert exactly once in effect."""
    store = object_store(stack.cfg)
    shas = set(tally.ids) | set(tally.refused)
    with session_scope(stack.cfg.db.url) as session:
        docs = session.scalars(select(Document).where(Document.sha256.in_(shas))).all()
        per_sha = Counter(d.sha256 for d in docs)
        tally.duplicates += sum(n - 1 for n in per_sha.values())
        tally.refused_but_stored = sum(1 for sha in tally.refused if sha in per_sha)
        by_id = {d.id: d for d in docs}
        # A refused upload whose transaction still committed is a document like the others.
        watched = [*tally.ids.values()] + [d.id for d in docs if d.sha256 in set(tally.refused)]
        created = Counter(
            session.scalars(
                select(AuditEvent.document_id).where(
                    AuditEvent.action == "document.create", AuditEvent.document_id.in_(watched)
                )
            ).all()
        )
        for doc_id in watched:
            doc = by_id.get(doc_id)
            if doc is None or not store.exists(original_key(doc.sha256)):
                tally.lost += 1
                continue
            if created[doc_id] != 1:
                tally.duplicates += 1
            if doc.state in done:
                pdf = (doc.results or {}).get("searchable_pdf")
                if pdf and store.exists(pdf):
                    tally.completed += 1
                else:
                    tally.lost += 1
            elif doc.state == DocumentState.FAILED:
                tally.failed += 1
                tally.extra.setdefault("failures", []).append(doc.error)
            else:
                tally.stuck += 1
            if doc.attempts > 1:
                tally.recovered += 1
    tally.report()
    assert not tally.other_errors, tally.other_errors
    assert tally.lost == 0
    assert tally.duplicates == 0
    assert tally.stuck == 0
    # The workers' log tail carries the traceback of an unexpected failure.
    assert tally.failed == 0, (tally.extra.get("failures"), stack.tail("workers.log", 80))
    assert tally.completed == tally.accepted + tally.refused_but_stored
    assert tally.accepted >= BATCH


def upload_batch(
    client: httpx.Client,
    tally: Tally,
    hooks: dict[int, Callable[[], None]] | None = None,
    until_accepted: int = BATCH,
) -> None:
    """Upload distinct scans until ``until_accepted`` were accepted; ``hooks[n]`` runs
    before the n-th upload attempt (a fault or a recovery)."""
    n = 0
    while tally.accepted < until_accepted:
        if hooks and n in hooks:
            hooks[n]()
        tally.upload(client, scan(tally.fault, n), f"{tally.fault}-{n}.png")
        n += 1
        assert n < until_accepted * 3, "too many refused uploads"


# -- the faults ------------------------------------------------------------------------------
def test_worker_sigkill_mid_ocr(stack: PrivateStack, clerk: httpx.Client) -> None:
    """GIVEN two workers on a batch WHEN a worker (and its horse) is SIGKILLed while
    it runs a job, twice THEN the sweepers take the documents back and all complete once."""
    tally = Tally("worker_sigkill_mid_ocr")
    began = time.monotonic()
    upload_batch(clerk, tally)
    ids = list(tally.ids.values())
    killed = 0
    for threshold in (15, 55):
        wait_for(
            lambda t=threshold: sum(s in DONE for s in states(stack, ids).values()) >= t,
            90,
            f"{threshold} documents",
            stack,
        )
        victim = stack.live_workers()[0]
        # Kill while a horse exists: that worker is inside a job.
        wait_for(lambda v=victim: bool(children(v.pid)), 30, "a busy worker", stack)
        sigkill_tree(victim)
        killed += 1
        stack.start_worker()
    settle(stack, tally)
    tally.seconds = round(time.monotonic() - began, 1)
    tally.extra["workers_killed"] = killed
    check(stack, tally)
    assert tally.recovered >= 1, "no kill hit a running job"


def _ready(stack: PrivateStack) -> list[str]:
    with session_scope(stack.cfg.db.url) as session:
        return list(
            session.scalars(
                select(Document.id)
                .where(Document.state == DocumentState.READY, Document.office == OFFICE)
                .limit(SIGN_BATCH)
            ).all()
        )


def test_api_sigkill_mid_signing(stack: PrivateStack, clerk: httpx.Client) -> None:
    """GIVEN 50 ready documents WHEN an approver issues their e-copies (4 at a time) and
    the API is SIGKILLed twice while signing THEN every document ends with exactly one
    e-copy whose object exists with its hash, and the client's retries issue none twice."""
    ready = _ready(stack)
    if len(ready) < SIGN_BATCH:  # run on its own: process a batch first
        batch = Tally("signing_input")
        upload_batch(clerk, batch)
        settle(stack, batch)
        ready = _ready(stack)
    assert len(ready) == SIGN_BATCH
    tally = Tally("api_sigkill_mid_signing")
    approver_key = stack.make_key("approver")
    outcome: dict[str, int] = {}
    retries = Counter[str]()
    lock = threading.Lock()
    began = time.monotonic()

    def issue(doc_id: str) -> None:
        with httpx.Client(base_url=stack.base_url, headers={"X-API-Key": approver_key}) as c:
            for _ in range(60):
                try:
                    response = c.post(
                        f"/v1/documents/{doc_id}/issue", json={"office": OFFICE}, timeout=60
                    )
                except httpx.HTTPError:
                    with lock:
                        retries["connection"] += 1
                    time.sleep(0.5)  # the API is down: retry, as a client would
                    continue
                if response.status_code in (201, 409):
                    # 409: an earlier attempt committed before the client got the answer.
                    with lock:
                        outcome[doc_id] = response.status_code
                    return
                with lock:
                    retries[str(response.status_code)] += 1
                time.sleep(0.5)
            raise AssertionError(f"issuing {doc_id} never finished")

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(issue, doc_id) for doc_id in ready]
        kills = 0
        for threshold in (10, 30):
            wait_for(lambda t=threshold: len(outcome) >= t, 120, f"{threshold} issues", stack)
            stack.kill_api()
            kills += 1
            time.sleep(0.5)
            stack.start_api()
            stack.wait_api()
        for future in futures:
            future.result()
    tally.seconds = round(time.monotonic() - began, 1)
    tally.attempted = tally.accepted = len(ready)

    store = object_store(stack.cfg)
    with session_scope(stack.cfg.db.url) as session:
        per_doc = Counter(
            session.scalars(select(ECopy.document_id).where(ECopy.document_id.in_(ready))).all()
        )
        ecopies = session.scalars(select(ECopy).where(ECopy.document_id.in_(ready))).all()
        doc_states: dict[str, str] = {
            row.id: row.state
            for row in session.execute(
                select(Document.id, Document.state).where(Document.id.in_(ready))
            )
        }
        issue_events = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "ecopy.issue", AuditEvent.document_id.in_(ready))
        )
    half_issued = 0
    for ecopy in ecopies:
        if store.sha256(ecopy.object_key)[0] != ecopy.sha256:
            half_issued += 1
    referenced = {e.object_key for e in ecopies}
    orphans = [
        k for doc_id in ready for k in store.list_keys(f"ecopies/{doc_id}/") if k not in referenced
    ]
    tally.completed = sum(1 for d in ready if per_doc[d] == 1 and doc_states[d] == "issued")
    tally.duplicates = sum(n - 1 for n in per_doc.values() if n > 1)
    tally.lost = sum(1 for d in ready if per_doc[d] == 0)
    tally.stuck = sum(1 for d in ready if doc_states[d] != "issued")
    tally.recovered = sum(1 for code in outcome.values() if code == 409)
    tally.extra = {
        "api_killed": kills,
        "signature_level": stack.cfg.signing.level,
        "half_issued": half_issued,
        "client_retries": dict(retries),
        "answered_201": sum(1 for c in outcome.values() if c == 201),
        "answered_409_already_issued": tally.recovered,
        # Signed files written by a request that was killed before its commit: never
        # referenced, never served (garbage, not an e-copy).
        "unreferenced_signed_objects": len(orphans),
        "issue_audit_events": issue_events,
    }
    tally.report()
    assert half_issued == 0
    assert tally.duplicates == 0 and tally.lost == 0 and tally.stuck == 0
    assert tally.completed == SIGN_BATCH
    assert issue_events == SIGN_BATCH
    assert sum(retries.values()) > 0, "no kill hit a request"


def test_redis_stopped_and_restarted_during_uploads(
    stack: PrivateStack, clerk: httpx.Client
) -> None:
    """GIVEN uploads in progress WHEN Redis stops (and comes back empty on its port)
    THEN every upload still gets 202 and every document completes once."""
    tally = Tally("redis_restart")
    began = time.monotonic()
    down: dict[str, float] = {}

    def stop() -> None:
        down["at"] = time.monotonic()
        stack.redis.stop()

    def restart() -> None:
        # Down longer than a worker's reconnect pause: its reconnect meets the outage.
        time.sleep(max(0.0, REDIS_OUTAGE_S - (time.monotonic() - down["at"])))
        down["for"] = round(time.monotonic() - down["at"], 1)
        stack.redis.start()

    upload_batch(clerk, tally, {30: stop, 70: restart})
    settle(stack, tally)
    tally.seconds = round(time.monotonic() - began, 1)
    tally.extra["redis_down_s"] = down["for"]
    check(stack, tally)
    assert tally.refused_503 == 0
    assert len(stack.live_workers()) == stack.n_workers, "a worker died during the outage"


def test_s3_stopped_during_uploads(stack: PrivateStack, clerk: httpx.Client) -> None:
    """GIVEN uploads in progress WHEN S3 stops THEN new uploads get 503 problems and,
    once it is back, every accepted document completes once."""
    tally = Tally("s3_down_uploads")
    began = time.monotonic()
    upload_batch(clerk, tally, {40: stack.s3.stop, 55: stack.s3.start})
    settle(stack, tally)
    tally.seconds = round(time.monotonic() - began, 1)
    check(stack, tally)
    assert tally.refused_503 >= 10


def test_s3_stopped_during_result_writes(stack: PrivateStack, clerk: httpx.Client) -> None:
    """GIVEN a batch being processed WHEN S3 stops for some seconds THEN the workers'
    writes fail, they retry, and every document completes once."""
    tally = Tally("s3_down_results")
    began = time.monotonic()
    upload_batch(clerk, tally)
    ids = list(tally.ids.values())
    wait_for(
        lambda: sum(s in DONE for s in states(stack, ids).values()) >= 20, 90, "20 done", stack
    )
    stack.s3.stop()
    time.sleep(S3_OUTAGE_S)
    stack.s3.start()
    settle(stack, tally)
    tally.seconds = round(time.monotonic() - began, 1)
    tally.extra["s3_down_s"] = S3_OUTAGE_S
    tally.extra["retry_budget_s"] = sum(stack.cfg.worker.retry_intervals)
    check(stack, tally)
    assert tally.recovered >= 1, "no write met the outage"


def test_postgres_stopped_and_restarted(stack: PrivateStack, clerk: httpx.Client) -> None:
    """GIVEN uploads and processing in progress WHEN PostgreSQL stops THEN new uploads get
    503 problems and, once it is back, every accepted document completes once."""
    tally = Tally("postgres_restart")
    began = time.monotonic()
    upload_batch(clerk, tally, {40: stack.pg.stop, 55: stack.pg.start})
    settle(stack, tally)
    tally.seconds = round(time.monotonic() - began, 1)
    check(stack, tally)
    assert tally.refused_503 >= 10


def test_audit_chain_intact_after_faults(stack: PrivateStack) -> None:
    """Every fault left the hash-chained audit trail whole."""
    report = audit.verify_now(stack.cfg)
    assert report.problems == [], report.problems
    assert report.events >= sum(row["accepted"] for row in RESULTS.values())
