"""The ``sohoa`` command.

Errors end the command with one line on stderr and a non-zero exit code, never a
traceback: ``sohoa: error: <what went wrong>``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from digitizer.config import Settings, get_settings
from digitizer.errors import SohoaError

SUPPORTED_SUFFIXES = {".pdf", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".zip"}

log = logging.getLogger("digitizer")


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"sohoa: error: {message}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """Turns domain and OS errors into one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SohoaError as exc:
            _fail(exc.detail, 2)
        except (OSError, RuntimeError) as exc:
            _fail(str(exc) or type(exc).__name__)
        return None


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """sohoa: digitize once, sign once, reuse everywhere."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# -- services ----------------------------------------------------------------------------
@main.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from storage import migrate as mig

    settings = get_settings()
    mig.upgrade(settings.db.url)
    click.echo("database schema is up to date")


@main.command()
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--fork", is_flag=True, help="Fork a process per job (rq's work horse).")
@click.option("--no-fork", is_flag=True, help="Run jobs in this process, unsupervised.")
def worker(burst: bool, fork: bool, no_fork: bool) -> None:
    """Run a worker: loads the OCR model once, then processes queued documents.

    By default a supervisor runs the jobs in a child process that it replaces when it
    crashes, hangs or overruns a job's time limit.
    """
    from workers.worker import WorkerMode, run_worker

    if fork and no_fork:
        raise click.UsageError("--fork and --no-fork exclude each other")
    mode: WorkerMode = "fork" if fork else "inline" if no_fork else "supervised"
    run_worker(get_settings(), burst=burst, mode=mode)


@main.command()
@click.option("--host", default=None, help="Bind address (default from settings).")
@click.option("--port", default=None, type=int, help="Port (default from settings).")
@click.option(
    "--workers",
    "api_workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="API processes sharing the port (supervised: a dead one is replaced).",
)
def api(host: str | None, port: int | None, api_workers: int) -> None:
    """Serve the HTTP API."""
    from digitizer.api.serve import serve

    settings = get_settings()
    serve(
        host or settings.embedded.api_host,
        port or settings.embedded.api_port,
        workers=api_workers,
    )


@main.command()
@click.option("--workers", "worker_count", default=1, show_default=True, help="Worker processes.")
def up(worker_count: int) -> None:
    """Bring the embedded stack up: Redis, S3, database, workers and the API. Ctrl-C stops it."""
    import uvicorn

    from digitizer.api.app import create_app
    from digitizer.stack import EmbeddedStack

    stack = EmbeddedStack(get_settings())
    try:
        settings = stack.start()
        stack.start_workers(worker_count)
        host, port = settings.embedded.api_host, settings.embedded.api_port
        for note in stack.notes:
            click.echo(note)
        click.echo(f"API:     http://{host}:{port}/v1  (OpenAPI: http://{host}:{port}/docs)")
        click.echo("Create a key: sohoa keys create --role clerk --name 'Your Name'")
        click.echo("Press Ctrl-C to stop.")
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
    finally:
        stack.stop()
        click.echo("stopped what sohoa up started", err=True)


@main.command()
def sweep() -> None:
    """Relay the outbox and queue again work that was lost (also runs inside workers)."""
    from workers.sweeper import relay_outbox
    from workers.sweeper import sweep as run_sweep

    settings = get_settings()
    relayed = relay_outbox(settings)
    report = run_sweep(settings)
    click.echo(f"relayed {relayed}, requeued {len(report.requeued)}, failed {len(report.failed)}")


@main.command()
@click.argument("document_ids", nargs=-1)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(["failed", "needs_review", "ready", "queued", "uploaded"]),
    help="Reprocess every document in this state (repeatable).",
)
def reprocess(document_ids: tuple[str, ...], states: tuple[str, ...]) -> None:
    """Run documents through the pipeline again, e.g. after changing the OCR engine."""
    from digitizer.services import documents as docs
    from storage.db import session_scope
    from workers.sweeper import relay_outbox

    if not document_ids and not states:
        _fail("name document ids or --state")
    settings = get_settings()
    with session_scope(settings.db.url) as session:
        ids = [docs.reprocess(session, d).id for d in document_ids]
        ids += docs.reprocess_where(session, list(states))
    try:
        relay_outbox(settings)
    except Exception:
        pass  # the workers' relay picks them up
    click.echo(f"queued {len(ids)} documents for reprocessing")


# -- keys -----------------------------------------------------------------------------
@main.group()
def keys() -> None:
    """Personal and client API keys."""


@keys.command("create")
@click.option(
    "--role", required=True, type=click.Choice(["clerk", "approver", "verifier", "portal", "admin"])
)
@click.option("--name", required=True, help="Whose key this is.")
@click.option(
    "--office",
    default=None,
    help="Code of the office the holder works for (staff); portals have none.",
)
@click.option(
    "--expires-days",
    type=click.IntRange(min=1),
    default=None,
    help="Days until the key stops working (default: until revoked).",
)
def keys_create(role: str, name: str, office: str | None, expires_days: int | None) -> None:
    """Create a key and print it once (it is stored hashed)."""
    from datetime import timedelta

    from digitizer.services.keys import STAFF_ROLES, create_key
    from storage.db import session_scope, utcnow

    settings = get_settings()
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days else None
    try:
        with session_scope(settings.db.url) as session:
            row, key = create_key(
                session, name=name, role=role, office=office, expires_at=expires_at
            )
            key_id = row.id
    except ValueError as exc:
        _fail(str(exc))
    click.echo(key)
    click.echo(f"key id {key_id}: shown once, keep it safe", err=True)
    if role in STAFF_ROLES and not office:
        click.echo("note: no --office: this key sees only documents without an office", err=True)


@keys.command("list")
def keys_list() -> None:
    """List keys (never the keys themselves)."""
    from datetime import datetime

    from digitizer.services.keys import list_keys
    from storage.db import session_scope, utcnow

    def day(value: datetime | None) -> str:
        return value.date().isoformat() if value else "-"

    now = utcnow()
    with session_scope(get_settings().db.url) as session:
        header = f"{'id':<32}  {'role':<9} {'status':<8} {'office':<16} expires    last used  name"
        click.echo(header, err=True)  # stdout stays one key per line
        for row in list_keys(session):
            if row.revoked_at:
                status = "revoked"
            elif row.expires_at is not None and row.expires_at <= now:
                status = "expired"
            else:
                status = "active"
            click.echo(
                f"{row.id:<32}  {row.role:<9} {status:<8} {row.office or '-':<16} "
                f"{day(row.expires_at):<10} {day(row.last_used_at):<10} {row.name}"
            )


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id."""
    from digitizer.services.keys import revoke_key
    from storage.db import session_scope

    with session_scope(get_settings().db.url) as session:
        if not revoke_key(session, key_id):
            _fail(f"no key with id {key_id}")
    click.echo("revoked")


@main.group()
def audit() -> None:
    """The tamper-evident audit trail."""


@audit.command("anchor")
def audit_anchor() -> None:
    """Anchor the chain head now: TSA timestamp (if configured) and object-store copy."""
    from digitizer.services.audit import anchor_now
    from signing.errors import SigningError

    settings = get_settings()
    try:
        result = anchor_now(settings)
    except SigningError as exc:
        _fail(exc.detail, 2)
        return
    if result is None:
        click.echo("nothing new to anchor")
        return
    how = "timestamped by the TSA" if result.timestamped else "not timestamped (no TSA configured)"
    click.echo(f"anchored event {result.seq} ({result.head_hash}), {how}; copy {result.object_key}")


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit_verify(as_json: bool) -> None:
    """Recompute the chain and check its anchors; exit 3 naming the first bad event."""
    from digitizer.services.audit import verify_now

    report = verify_now(get_settings())
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    if not report.ok:
        click.echo(f"sohoa: {report.summary()}", err=True)
        sys.exit(3)
    if not as_json:
        click.echo(report.summary())
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)


# -- documents ---------------------------------------------------------------------------
def _ocr_pages(file: Path, settings: Settings) -> list[Any]:
    """OCR (or read the text layer of) every page of a local file, lines in reading order."""
    from digitizer.pipeline import preflight, render
    from digitizer.pipeline.ocr import create_engine
    from digitizer.pipeline.orientation import OrientationDetector
    from digitizer.pipeline.preflight import limits_from
    from digitizer.pipeline.runner import read_page, text_layer_page

    data = file.read_bytes()
    info = preflight.inspect_file(data, limits_from(settings))
    if info.kind == "zip":
        _fail("this command reads one image or PDF; use sohoa digitize for archives")
    engine = create_engine(settings.ocr) if info.needs_ocr else None
    detector = OrientationDetector(settings.ocr.tessdata) if settings.ocr.orientation else None
    text_pages = frozenset(info.text_pages)
    doc = None
    if info.kind == "pdf" and text_pages:
        import pymupdf

        doc = pymupdf.open(stream=data, filetype="pdf")
    pages = []
    for index, page in enumerate(render.iter_pages(data, info.kind, text_pages)):
        if page is None:
            assert doc is not None
            pages.append(text_layer_page(doc.load_page(index)))
        else:
            assert engine is not None
            pages.append(read_page(engine, page, settings.ocr.deskew, detector)[1])
    return pages


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ocr(file: Path) -> None:
    """Print the recognised text of an image or PDF, lines in reading order."""
    for index, page in enumerate(_ocr_pages(file, get_settings())):
        if index:
            click.echo("\f", nl=False)
        for line in page.lines:
            click.echo(line.text)


def _model_root(settings: Settings) -> Path:
    # The same folder the workers load from (SOHOA_MODEL_DIR, else the embedded home's).
    return settings.model_dir or Path(settings.embedded.home) / "models"


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print DESIGN.md's classification JSON.")
def classify(file: Path, as_json: bool) -> None:
    """Document type and fields (with confidence and source) of an image or PDF."""
    from digitizer.pipeline.classify import Classifier
    from digitizer.pipeline.extract import classify_json, extract, review_reasons
    from digitizer.pipeline.training import load_or_train_default

    settings = get_settings()
    pages = _ocr_pages(file, settings)
    classifier = Classifier(load_or_train_default(_model_root(settings)))
    result = classifier.classify(pages)
    fields = extract(pages, result.type)
    if as_json:
        click.echo(json.dumps(classify_json(result, fields), ensure_ascii=False))
        return
    click.echo(f"{result.type} ({result.confidence:.2f})")
    for name, value in fields.items():
        click.echo(f"  {name}: {value.value}  ({value.confidence:.2f})")
    for reason in review_reasons(result, fields):
        click.echo(f"  review: {reason}")


@main.command()
@click.option("--per-type", default=60, show_default=True, help="Generated documents per type.")
@click.option(
    "--labels/--no-labels",
    default=True,
    show_default=True,
    help="Also learn from documents clerks reviewed (review labels in the configured database).",
)
def train(per_type: int, labels: bool) -> None:
    """Train the document-type model from generated documents and clerks' reviewed documents
    (corrections weighted), save it as a new version and make it current."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from digitizer.pipeline.training import train_default
    from digitizer.services.review import labelled_examples
    from storage.db import get_engine, session_scope

    settings = get_settings()
    reviewed = []
    if labels:
        try:
            if inspect(get_engine(settings.db.url)).has_table("review_labels"):
                with session_scope(settings.db.url) as session:
                    reviewed = labelled_examples(session)
            else:  # a fresh installation: nothing reviewed yet
                click.echo("no review labels: the database is not migrated yet", err=True)
        except SQLAlchemyError as exc:
            _fail(
                f"cannot read review labels from the database ({type(exc).__name__}); "
                "check SOHOA_DB__URL, or train with --no-labels"
            )
    model = train_default(_model_root(settings), per_type=per_type, extra=reviewed)
    corrected = sum(1 for e in reviewed if e.weight > 1.0)
    click.echo(
        f"model {model.version} is current "
        f"({len(reviewed)} reviewed documents, {corrected} of them corrected)"
    )


def _issued_status(settings: Settings, data: bytes) -> str | None:
    """The status of an e-copy issued here, or None (not ours, or no database to ask)."""
    import hashlib

    from sqlalchemy.exc import SQLAlchemyError

    from digitizer.services.issuing import status_of_file
    from storage.db import session_scope

    url = settings.db.url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None  # never create an empty database file just to verify
    try:
        with session_scope(url) as session:
            return status_of_file(session, hashlib.sha256(data).hexdigest())
    except SQLAlchemyError:
        return None


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--detailed", is_flag=True, help="Every field of every signature (with --json).")
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the Vietnamese HTML report here.",
)
@click.option(
    "--pdf",
    "pdf_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the Vietnamese PDF report here.",
)
def verify(
    file: Path, as_json: bool, detailed: bool, html_out: Path | None, pdf_out: Path | None
) -> None:
    """Verify the signatures of a PDF. Exit 0 valid, 3 not valid, 2 unreadable.

    For an e-copy issued by this deployment (its database reachable), the report also
    gives its ``document_status`` (valid, superseded, revoked).
    """
    from digitizer.services.verify import VerifyService
    from signing import report as reports
    from signing.validator import Verdict

    settings = get_settings()
    data = file.read_bytes()
    report = VerifyService(settings).verify(data, document_status=_issued_status(settings, data))
    if html_out is not None:
        html_out.write_text(reports.to_html(report, filename=file.name), encoding="utf-8")
    if pdf_out is not None:
        pdf_out.write_bytes(reports.to_pdf(report, filename=file.name))
    if as_json:
        click.echo(json.dumps(reports.to_json(report, detailed=detailed), ensure_ascii=False))
    else:
        click.echo(f"{reports.label(report)} ({report.verdict.value})")
        for sig in report.signatures:
            who = sig.signer_o or sig.signer_cn or "?"
            when = sig.signing_time.isoformat() if sig.signing_time else "?"
            click.echo(f"  {who}  {when}  {sig.indication.value}  {sig.sub_indication or ''}")
    if report.verdict == Verdict.UNREADABLE:
        if not as_json:
            _fail(report.error or "the file is not a readable PDF", 2)
        sys.exit(2)
    sys.exit(0 if report.verdict == Verdict.VALID else 3)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--office", required=True, help="Code of the issuing office (SOHOA_SIGNING__OFFICES)."
)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--level",
    type=click.Choice(["B-B", "B-T", "B-LT", "B-LTA"]),
    default=None,
    help="PAdES level (default from settings).",
)
@click.option("--verify-url", default=None, help="URL put in the stamp's QR code.")
@click.option("--signer", default=None, help="Name of the person signing, shown on the stamp.")
def sign(
    file: Path,
    office: str,
    out: Path,
    level: str | None,
    verify_url: str | None,
    signer: str | None,
) -> None:
    """Sign a PDF for an office (PAdES, visible Vietnamese stamp); the input is not changed."""
    from digitizer.services.signing import SigningService

    service = SigningService(get_settings())
    signed = service.sign(
        file.read_bytes(), office, level=level, verify_url=verify_url, signer=signer
    )
    out.write_bytes(signed)
    click.echo(f"signed by {office}: {out}")


@main.command()
@click.option(
    "--older-than-days",
    default=365,
    show_default=True,
    help="Renew e-copies whose last timestamp is older than this.",
)
def renew(older_than_days: int) -> None:
    """Add B-LTA document timestamps to issued e-copies before their timestamps age out."""
    from datetime import timedelta

    from digitizer.services.issuing import renew_due
    from digitizer.services.signing import SigningService
    from digitizer.services.wiring import object_store
    from storage.db import session_scope

    settings = get_settings()
    with session_scope(settings.db.url) as session:
        renewed = renew_due(
            session,
            object_store(settings),
            SigningService(settings),
            timedelta(days=older_than_days),
        )
    click.echo(f"renewed {len(renewed)} e-copies")


def _collect(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
            )
        else:
            files.append(path)
    return files


def _progress(done: int, total: int, failed: int, started: float) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    bar = "#" * filled + "." * (width - filled)
    line = f"[{bar}] {done}/{total} documents"
    if failed:
        line += f", {failed} failed"
    line += f"  {time.monotonic() - started:5.0f}s"
    if sys.stderr.isatty():
        click.echo(f"\r{line}", nl=False, err=True)
    else:
        click.echo(line, err=True)


def _wait(settings: Settings, ids: list[str], timeout: float) -> Iterator[tuple[int, int]]:
    from sqlalchemy import select

    from storage.db import SETTLED_STATES, Document, session_scope

    deadline = time.monotonic() + timeout
    while True:
        with session_scope(settings.db.url) as session:
            rows = (
                session.execute(select(Document.state).where(Document.id.in_(ids))).scalars().all()
            )
        settled = sum(1 for s in rows if s in SETTLED_STATES)
        failed = sum(1 for s in rows if s == "failed")
        yield settled, failed
        if settled >= len(set(ids)):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"timed out after {timeout:.0f}s; {len(set(ids)) - settled} documents unfinished"
            )
        time.sleep(0.5)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--citizen", "citizen_pid", default=None, help="Personal identification number of the owner."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per document.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also copy the searchable PDFs into this folder.",
)
@click.option(
    "--workers", "worker_count", default=1, show_default=True, help="Worker processes to start."
)
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait for results.")
def digitize(
    paths: tuple[Path, ...],
    citizen_pid: str | None,
    as_json: bool,
    out: Path | None,
    worker_count: int,
    timeout: float,
) -> None:
    """Run files through the pipeline and wait until each is failed, needs_review or ready.

    Uses the configured stack; services that do not answer are started (embedded)
    for the length of the command.
    """
    from digitizer.services import documents as docs
    from digitizer.services.intake import IntakeService, Upload
    from digitizer.services.wiring import citizen_registry, object_store
    from digitizer.stack import EmbeddedStack
    from storage.db import session_scope
    from workers.sweeper import relay_outbox

    files = _collect(paths)
    if not files:
        _fail("no PDF, JPEG, PNG, TIFF or ZIP files found in the given paths")
    stack = EmbeddedStack(get_settings())
    try:
        settings = stack.start()
        store = object_store(settings)
        store.ensure_bucket()
        intake = IntakeService(settings, store, citizen_registry(settings))
        accepted: list[tuple[str, str]] = []
        rejected: list[dict[str, Any]] = []
        for path in files:
            try:
                result = intake.ingest(
                    [Upload(path.name, path.read_bytes())], citizen_pid=citizen_pid
                )
            except SohoaError as exc:
                if citizen_pid is not None and exc.slug == "invalid-personal-id":
                    raise
                rejected.append({"file": str(path), "state": "rejected", "error": exc.detail})
                continue
            accepted.extend((str(path), a.document.id) for a in result.accepted)
            rejected.extend(
                {"file": f"{path}:{r.filename}", "state": "rejected", "error": r.error.detail}
                for r in result.rejected
            )
        relay_outbox(settings)
        ids = [doc_id for _, doc_id in accepted]
        if ids:
            stack.start_workers(worker_count)
            started = time.monotonic()
            shown = None
            for settled, failed in _wait(settings, ids, timeout):
                # On a terminal the bar redraws in place; in a log, only changes are printed.
                if sys.stderr.isatty() or (settled, failed) != shown:
                    _progress(settled, len(set(ids)), failed, started)
                    shown = (settled, failed)
            if sys.stderr.isatty():
                click.echo("", err=True)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        written: set[Path] = set()
        with session_scope(settings.db.url) as session:
            for source, doc_id in accepted:
                doc = docs.get_document(session, doc_id)
                record = _record(doc, source, settings)
                if out is not None and record.get("searchable_pdf"):
                    target = out / f"{Path(doc.filename).stem}.searchable.pdf"
                    if target in written:  # two inputs with the same name stem
                        target = out / f"{Path(doc.filename).stem}-{doc.id[:8]}.searchable.pdf"
                    written.add(target)
                    target.write_bytes(store.get_bytes(doc.results["searchable_pdf"]))
                    record["searchable_pdf_file"] = str(target)
                _emit(record, as_json)
        for record in rejected:
            _emit(record, as_json)
    finally:
        stack.stop()
    if rejected or not accepted:
        sys.exit(1)


def _record(doc: Any, path: str, settings: Settings) -> dict[str, Any]:
    results = doc.results or {}
    pdf = results.get("searchable_pdf")
    return {
        "file": path,
        "id": doc.id,
        "sha256": doc.sha256,
        "state": doc.state,
        "pages": doc.page_count,
        "ocr_confidence": doc.ocr_confidence,
        "error": doc.error,
        "searchable_pdf": f"s3://{settings.s3.bucket}/{pdf}" if pdf else None,
        "text": f"s3://{settings.s3.bucket}/{results['text']}" if results.get("text") else None,
    }


def _emit(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    where = record.get("searchable_pdf_file") or record.get("searchable_pdf") or ""
    detail = f"  {record['error']}" if record.get("error") else ""
    click.echo(f"{record['state']:<13} {record['file']}  {where}{detail}")


# -- vault export and webhooks -----------------------------------------------------------
@main.command("export")
@click.option("--citizen-pid", required=True, help="The citizen's 12-digit personal id.")
@click.option("--office", default=None, help="Office whose key signs (default: the first).")
@click.option(
    "--purpose",
    default="Chuyển kho dữ liệu theo yêu cầu của công dân",
    show_default=True,
    help="Why the vault is exported (audited).",
)
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def export_cmd(citizen_pid: str, office: str | None, purpose: str, out: Path) -> None:
    """Write a citizen's vault as a signed package (ZIP + manifest + CMS signature)."""
    from digitizer.services import export as exp
    from digitizer.services.wiring import object_store
    from storage.db import session_scope

    settings = get_settings()
    with session_scope(settings.db.url) as session:
        citizen = exp.find_citizen(session, settings, citizen_pid)
        package = exp.build_package(
            session,
            settings,
            object_store(settings),
            citizen,
            None,
            purpose=exp.check_purpose(purpose),
            office_code=office,
        )
    out.write_bytes(package.data)
    files = sum(1 for d in package.manifest["documents"] if d["file"])
    click.echo(f"{out}: {len(package.manifest['documents'])} e-copies ({files} files), signed")


@main.command("verify-package")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_package_cmd(file: Path, as_json: bool) -> None:
    """Check a vault export: manifest signature, every file's SHA-256, nothing extra."""
    from digitizer.services import export as exp

    check = exp.verify_package(file.read_bytes(), exp.context_from_settings(get_settings()))
    if as_json:
        click.echo(json.dumps(check.as_dict(), ensure_ascii=False))
    else:
        signer = check.signature.signer if check.signature else None
        click.echo(f"{'valid' if check.ok else 'invalid'}  signed by {signer or '-'}")
        for problem in check.problems:
            click.echo(f"  {problem}")
    if not check.ok:
        sys.exit(1)


@main.group()
def webhooks() -> None:
    """Change notifications to subscribers."""


@webhooks.command("deliver")
def webhooks_deliver() -> None:
    """Queue ``expired`` for e-copies whose validity ended, then send the deliveries that
    are due, once (workers do both every few seconds)."""
    from digitizer.services.webhooks import announce_expiries, deliver_due

    settings = get_settings()
    expired = announce_expiries(settings)
    report = deliver_due(settings)
    click.echo(
        f"delivered {len(report.delivered)}, retrying {len(report.retrying)}, "
        f"failed {len(report.failed)}, expiries {expired}"
    )


# -- backup, restore, integrity ----------------------------------------------------------
def _integrity_exit(report: Any, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """Print an integrity report (one line, or JSON) and exit 3 when something is wrong."""
    if as_json:
        click.echo(json.dumps({**(extra or {}), **report.to_json()}, ensure_ascii=False, indent=2))
    if not report.ok:
        click.echo(f"sohoa: {report.summary()}", err=True)
        for finding in report.findings[1:20]:
            click.echo(f"  {finding.line()}", err=True)
        for problem in report.audit_problems[:20]:
            click.echo(f"  {problem}", err=True)
        sys.exit(3)
    if not as_json:
        click.echo(report.summary())


@main.command("backup")
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default=None, help="Folder name (default sohoa-backup-<UTC time>).")
def backup_cmd(root: Path, name: str | None) -> None:
    """pg_dump + rclone copy of the bucket into a new folder under ROOT, with a manifest."""
    from digitizer.services.backup import backup

    result = backup(get_settings(), root, name=name)
    m = result.manifest
    click.echo(
        f"{result.folder}: {m['database']['kind']} dump {m['database']['size']} bytes, "
        f"{m['objects']['count']} objects ({m['objects']['bytes']} bytes), "
        f"{result.report.documents} documents and {result.report.ecopies} e-copies verified"
    )
    if not result.ok:
        _integrity_exit(result.report, False)


@main.command("restore")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--no-check", is_flag=True, help="Skip the integrity check after restoring.")
@click.option("--json", "as_json", is_flag=True, help="Print the check's report as JSON.")
def restore_cmd(folder: Path, no_check: bool, as_json: bool) -> None:
    """Restore a backup into an empty database and bucket, then verify everything."""
    from digitizer.services.backup import restore
    from digitizer.services.integrity import check

    settings = get_settings()
    result = restore(settings, folder)
    rows = sum(result.rows.values())
    click.echo(f"restored {rows} rows and {result.objects} objects from {folder}", err=as_json)
    if no_check:
        return
    report = check(settings, audit_head=result.audit_head)
    _integrity_exit(report, as_json)


@main.command("check")
@click.option("--quick", is_flag=True, help="Existence and size only (no hashing).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_cmd(quick: bool, as_json: bool) -> None:
    """Every document's original, derived objects and e-copies, and the audit chain."""
    from digitizer.services.integrity import check

    _integrity_exit(check(get_settings(), quick=quick), as_json)


if __name__ == "__main__":
    main()
