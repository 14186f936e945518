"""Does every stored record still have its bytes? (``sohoa check``, backups, restores)

The database says what the object store must hold:

- each document's original, ``originals/{sha256}``, whose SHA-256 and size are the row's;
- the derived objects its results refer to (searchable PDF, OCR, text): they must exist;
- each e-copy's signed PDF, whose SHA-256 is the row's.

:func:`check_objects` compares those expectations with any source of objects (the S3
bucket, or a backup folder before it is restored), naming every object that is missing
or differs, with the record that needs it. :func:`check` adds the audit chain
(:func:`digitizer.services.audit.verify`) and, after a restore, the audit head the
backup recorded, so that a restore that lost the newest events is caught too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digitizer.config import Settings
from storage.db import Document, ECopy
from storage.errors import ObjectNotFoundError
from storage.objects import ObjectStore, original_key

MAX_FINDINGS = 1000

#: A source of objects: ``key -> (sha256 or None when not hashed, size)``, None if missing.
Lookup = Callable[[str], "tuple[str | None, int] | None"]


@dataclasses.dataclass(frozen=True)
class Expected:
    """One object a row needs."""

    key: str
    owner: str  # "document ID" or "e-copy ID"
    sha256: str | None = None
    size: int | None = None


@dataclasses.dataclass(frozen=True)
class Finding:
    """An object that is missing or not what its row says."""

    owner: str
    key: str
    problem: str

    def line(self) -> str:
        return f"{self.owner}: {self.key}: {self.problem}"


@dataclasses.dataclass
class IntegrityReport:
    """What :func:`check` found."""

    documents: int = 0
    ecopies: int = 0
    objects: int = 0  # distinct keys checked
    hashed: int = 0  # of which the SHA-256 was recomputed
    findings: list[Finding] = dataclasses.field(default_factory=list)
    more_findings: int = 0
    audit: Any = None  # audit.VerifyReport, when the chain was checked
    audit_problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings and not self.more_findings and not self.audit_problems

    def add(self, finding: Finding) -> None:
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)
        else:
            self.more_findings += 1

    def summary(self) -> str:
        """One line: what is wrong first, else what was verified."""
        if self.findings:
            more = len(self.findings) + self.more_findings - 1
            tail = f" (and {more} more)" if more else ""
            return f"integrity check failed: {self.findings[0].line()}{tail}"
        if self.audit_problems:
            return f"integrity check failed: {self.audit_problems[0]}"
        audit = f"; {self.audit.summary()}" if self.audit is not None else ""
        return (
            f"every document verified: {self.documents} documents, {self.ecopies} e-copies, "
            f"{self.objects} objects ({self.hashed} hashed){audit}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "documents": self.documents,
            "ecopies": self.ecopies,
            "objects": self.objects,
            "hashed": self.hashed,
            "findings": [dataclasses.asdict(f) for f in self.findings],
            "more_findings": self.more_findings,
            "audit": self.audit.to_json() if self.audit is not None else None,
            "audit_problems": self.audit_problems,
        }


def _derived_keys(value: Any) -> Iterator[str]:
    """Every ``derived/...`` key anywhere in a document's results."""
    if isinstance(value, str):
        if value.startswith("derived/"):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _derived_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _derived_keys(item)


def expected_objects(session: Session, report: IntegrityReport | None = None) -> list[Expected]:
    """Every object the database refers to, with the hash and size it records."""
    out: list[Expected] = []
    rows = session.execute(
        select(Document.id, Document.sha256, Document.size, Document.results).execution_options(
            yield_per=1000
        )
    )
    for doc_id, sha256, size, results in rows:
        owner = f"document {doc_id}"
        out.append(Expected(original_key(sha256), owner, sha256, int(size)))
        out.extend(Expected(key, owner) for key in dict.fromkeys(_derived_keys(results or {})))
        if report is not None:
            report.documents += 1
    for ecopy_id, key, sha256 in session.execute(
        select(ECopy.id, ECopy.object_key, ECopy.sha256).execution_options(yield_per=1000)
    ):
        out.append(Expected(key, f"e-copy {ecopy_id}", sha256))
        if report is not None:
            report.ecopies += 1
    return out


def check_objects(
    expected: Iterable[Expected],
    lookup: Lookup,
    report: IntegrityReport,
    *,
    workers: int = 8,
) -> IntegrityReport:
    """Look every expected object up once (in parallel) and record what is wrong."""
    wanted = list(expected)
    keys = list(dict.fromkeys(e.key for e in wanted))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = dict(zip(keys, pool.map(lookup, keys), strict=True))
    report.objects += len(keys)
    report.hashed += sum(1 for v in found.values() if v is not None and v[0] is not None)
    for e in wanted:
        got = found[e.key]
        if got is None:
            report.add(Finding(e.owner, e.key, "missing from the object store"))
            continue
        digest, size = got
        if e.sha256 is not None and digest is not None and digest != e.sha256:
            report.add(
                Finding(e.owner, e.key, f"SHA-256 differs (recorded {e.sha256}, stored {digest})")
            )
        elif e.size is not None and size != e.size:
            report.add(
                Finding(e.owner, e.key, f"size differs (recorded {e.size}, stored {size} bytes)")
            )
    return report


def store_lookup(store: ObjectStore, *, quick: bool = False) -> Lookup:
    """Objects in the S3 bucket: hashed as a stream, or with ``quick`` only their size."""

    def lookup(key: str) -> tuple[str | None, int] | None:
        if quick:
            info = store.stat(key)
            return None if info is None else (None, info.size)
        try:
            return store.sha256(key)
        except ObjectNotFoundError:
            return None

    return lookup


def check(
    settings: Settings,
    *,
    quick: bool = False,
    audit: bool = True,
    audit_head: tuple[int, str] | None = None,
) -> IntegrityReport:
    """Every document and e-copy against the configured object store, and the audit chain.

    ``audit_head`` (seq, hash), e.g. from a backup's manifest, must be an event of the
    chain with that hash: a restore that lost events since the backup fails.
    """
    from digitizer.services import audit as audit_trail
    from digitizer.services.wiring import object_store
    from storage.db import AuditEvent, session_scope

    report = IntegrityReport()
    store = object_store(settings)
    with session_scope(settings.db.url) as session:
        expected = expected_objects(session, report)
        check_objects(expected, store_lookup(store, quick=quick), report)
        if audit:
            report.audit = audit_trail.verify(session, settings, store)
            if not report.audit.ok:
                report.audit_problems.append(report.audit.summary())
        if audit_head is not None:
            seq, head_hash = audit_head
            event = session.get(AuditEvent, seq)
            if event is None:
                report.audit_problems.append(
                    f"audit event {seq}, the head when the backup was made, is missing"
                )
            elif event.hash != head_hash:
                report.audit_problems.append(
                    f"audit event {seq} differs from the one in the backup's manifest"
                )
    return report
