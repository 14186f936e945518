"""Backup and restore of the database and the object store (``sohoa backup`` / ``restore``).

A backup is one folder, ``sohoa-backup-<UTC time>/``:

- ``database.dump``: ``pg_dump --format=custom`` (PostgreSQL), or ``database.sqlite``
  (an online copy of an SQLite database);
- ``objects/``: every object of the bucket, copied by ``rclone`` (keys become paths);
- ``objects.sha256``: ``sha256sum``-style list of those files;
- ``manifest.json``: format, times, schema revision, row counts per table, the audit
  chain's head, the dump's size and SHA-256, object counts and bytes per prefix, and
  what the backup's own verification found.

The database goes first, the objects after: every object a row refers to was written
before its row (DESIGN.md), so the copy holds at least what the dump needs. Row counts,
the audit head and the list of referenced objects come from the very snapshot pg_dump
dumps (``pg_export_snapshot`` + ``--snapshot``), and the backup is verified against its
own files before it is called complete: every original and e-copy present with its
SHA-256, every derived object the results refer to present.

A restore goes into fresh instances only: an empty (or missing) database and an empty
bucket; ``pg_restore`` into the first, ``rclone copy`` into the second (encrypted by the
bucket default when ``SOHOA_S3__SSE`` is on), after the folder's files were checked
against the manifest. ``sohoa check`` (:mod:`digitizer.services.integrity`) then proves
the result. Credentials reach pg_dump and rclone through their environments
(``PGPASSWORD``, ``RCLONE_CONFIG_<REMOTE>_*``), never their command lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from digitizer.config import Settings
from digitizer.services.integrity import (
    Expected,
    IntegrityReport,
    check_objects,
    expected_objects,
)
from storage.db import AuditEvent, Base, get_engine

FORMAT = "sohoa-backup/1"
MANIFEST = "manifest.json"
OBJECTS = "objects"
OBJECT_LIST = "objects.sha256"
PG_DUMP = "database.dump"
SQLITE_COPY = "database.sqlite"
_CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup or restore that cannot go on (the message says why, without secrets)."""


# -- helpers -------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _tool(name: str) -> str:
    """A PostgreSQL client tool: the newest Debian one, else whatever is on PATH."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return str(candidates[-1])
    found = shutil.which(name)
    if found:
        return found
    raise BackupError(f"{name} not found: apt-get install postgresql-client")


def _rclone() -> str:
    found = shutil.which("rclone")
    if not found:
        raise BackupError("rclone not found: apt-get install rclone")
    return found


def _run(cmd: list[str], env: dict[str, str], what: str, timeout: float | None = None) -> None:
    done = subprocess.run(
        cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise BackupError(f"{what} failed (exit {done.returncode}): {tail}")


def _kind(url: str) -> str:
    name = make_url(url).get_backend_name()
    if name not in {"postgresql", "sqlite"}:
        raise BackupError(f"backups support PostgreSQL and SQLite databases, not {name}")
    return name


def _libpq(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection options for pg_dump / pg_restore, and the environment with the password."""
    args = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432)]
    if url.username:
        args += ["--username", url.username]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    sslmode = url.query.get("sslmode")
    if isinstance(sslmode, str):
        env["PGSSLMODE"] = sslmode
    return args, env


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


@contextlib.contextmanager
def _rclone_env(settings: Settings, *, encrypt: bool = False) -> Iterator[dict[str, str]]:
    """Environment defining the remote ``sohoa:`` (the configured bucket's server)."""
    s3 = settings.s3
    scheme = "https" if s3.secure else "http"
    with tempfile.TemporaryDirectory(prefix="sohoa-rclone-") as tmp:
        config = Path(tmp) / "rclone.conf"
        config.write_text("")  # no user config is read; the remote is defined below
        # The remote is defined here and nowhere else: no RCLONE_* of the caller, and no
        # AWS_* either (the SDK inside rclone would read credentials or AWS_CA_BUNDLE).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RCLONE_", "AWS_"))}
        env.update(
            {
                "RCLONE_CONFIG": str(config),
                "RCLONE_CONFIG_SOHOA_TYPE": "s3",
                "RCLONE_CONFIG_SOHOA_PROVIDER": "Other",
                "RCLONE_CONFIG_SOHOA_ENV_AUTH": "false",
                "RCLONE_CONFIG_SOHOA_ACCESS_KEY_ID": s3.access_key,
                "RCLONE_CONFIG_SOHOA_SECRET_ACCESS_KEY": s3.secret_key,
                "RCLONE_CONFIG_SOHOA_ENDPOINT": f"{scheme}://{s3.endpoint}",
                "RCLONE_CONFIG_SOHOA_REGION": s3.region,
                "RCLONE_CONFIG_SOHOA_FORCE_PATH_STYLE": "true",
            }
        )
        if encrypt:
            env["RCLONE_CONFIG_SOHOA_SERVER_SIDE_ENCRYPTION"] = "AES256"
        yield env


def _rclone_copy(source: str, dest: str, env: dict[str, str], what: str) -> None:
    cmd = [
        _rclone(),
        "copy",
        source,
        dest,
        "--transfers", "8",
        "--checkers", "16",
        "--retries", "3",
        "--low-level-retries", "10",
        "--s3-no-check-bucket",
        "--log-level", "ERROR",
    ]  # fmt: skip
    _run(cmd, env, what)


def _hash_tree(folder: Path) -> dict[str, tuple[str, int]]:
    """key -> (sha256, size) of every file under ``folder`` (keys with ``/``)."""
    out: dict[str, tuple[str, int]] = {}
    if not folder.exists():
        return out
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[path.relative_to(folder).as_posix()] = (file_sha256(path), path.stat().st_size)
    return out


def _row_counts(session: Session) -> dict[str, int]:
    bind = session.get_bind()
    present = set(inspect(bind).get_table_names())
    counts: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        if table.name in present:
            counts[table.name] = int(session.scalar(select(func.count()).select_from(table)) or 0)
    return counts


def _schema_revision(session: Session) -> str | None:
    try:
        return session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # no alembic table: an unmigrated database
        return None


def _audit_head(session: Session) -> dict[str, Any] | None:
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return None if row is None else {"seq": int(row[0]), "hash": row[1]}


@dataclasses.dataclass
class _Snapshot:
    rows: dict[str, int]
    revision: str | None
    audit_head: dict[str, Any] | None
    expected: list[Expected]
    report: IntegrityReport


def _read_snapshot(session: Session) -> _Snapshot:
    report = IntegrityReport()
    return _Snapshot(
        rows=_row_counts(session),
        revision=_schema_revision(session),
        audit_head=_audit_head(session),
        expected=expected_objects(session, report),
        report=report,
    )


# -- backup --------------------------------------------------------------------------------
@dataclasses.dataclass
class BackupResult:
    folder: Path
    manifest: dict[str, Any]
    report: IntegrityReport

    @property
    def ok(self) -> bool:
        return self.report.ok


def _dump_postgres(settings: Settings, out: Path) -> _Snapshot:
    url = make_url(settings.db.url)
    args, env = _libpq(url)
    engine: Engine = create_engine(url, isolation_level="REPEATABLE READ", hide_parameters=True)
    try:
        with engine.connect() as conn, conn.begin():
            # The rows counted and the dump are the same snapshot.
            snapshot_id = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            with Session(bind=conn) as session:
                snap = _read_snapshot(session)
            cmd = [
                _tool("pg_dump"),
                *args,
                "--dbname", url.database or "postgres",
                "--format=custom",
                "--snapshot", str(snapshot_id),
                "--file", str(out),
            ]  # fmt: skip
            _run(cmd, env, "pg_dump")
    finally:
        engine.dispose()
    return snap


def _copy_sqlite(settings: Settings, out: Path) -> _Snapshot:
    source = sqlite3.connect(_sqlite_path(settings.db.url))
    try:
        target = sqlite3.connect(out)
        with target:
            source.backup(target)
        target.close()
    finally:
        source.close()
    engine = create_engine(f"sqlite:///{out}")
    try:
        with Session(bind=engine) as session:
            return _read_snapshot(session)
    finally:
        engine.dispose()


def backup(settings: Settings, root: Path, *, name: str | None = None) -> BackupResult:
    """Dump the database, copy the bucket, write the manifest and verify the folder."""
    kind = _kind(settings.db.url)
    started = _now()
    folder = Path(root) / (name or f"sohoa-backup-{started.replace(':', '').replace('-', '')}")
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder} already exists and is not empty")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # scans and personal data: owner only

    db_file = folder / (PG_DUMP if kind == "postgresql" else SQLITE_COPY)
    snap = (
        _dump_postgres(settings, db_file)
        if kind == "postgresql"
        else _copy_sqlite(settings, db_file)
    )
    with _rclone_env(settings) as env:
        _rclone_copy(f"sohoa:{settings.s3.bucket}", str(folder / OBJECTS), env, "rclone copy")
    objects = _hash_tree(folder / OBJECTS)
    listing = "".join(f"{sha}  {key}\n" for key, (sha, _) in sorted(objects.items()))
    (folder / OBJECT_LIST).write_text(listing)

    report = check_objects(snap.expected, objects.get, snap.report)
    by_prefix = Counter(key.split("/", 1)[0] for key in objects)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "started_at": started,
        "finished_at": _now(),
        "schema_revision": snap.revision,
        "database": {
            "kind": kind,
            "file": db_file.name,
            "size": db_file.stat().st_size,
            "sha256": file_sha256(db_file),
            "rows": snap.rows,
        },
        "audit_head": snap.audit_head,
        "objects": {
            "bucket": settings.s3.bucket,
            "folder": OBJECTS,
            "count": len(objects),
            "bytes": sum(size for _, size in objects.values()),
            "by_prefix": dict(sorted(by_prefix.items())),
            "list": OBJECT_LIST,
            "list_sha256": file_sha256(folder / OBJECT_LIST),
        },
        "verified": {
            "ok": report.ok,
            "documents": report.documents,
            "ecopies": report.ecopies,
            "objects_referenced": report.objects,
            "findings": [f.line() for f in report.findings[:50]],
        },
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return BackupResult(folder, manifest, report)


# -- restore -------------------------------------------------------------------------------
def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder} is not a sohoa backup: no readable {MANIFEST}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{folder}: unknown backup format {manifest.get('format')!r}")
    return manifest


def verify_folder(folder: Path, manifest: dict[str, Any] | None = None) -> list[str]:
    """The backup folder against its manifest: dump, object list, every object file."""
    folder = Path(folder)
    manifest = manifest or read_manifest(folder)
    problems: list[str] = []
    db = manifest["database"]
    db_file = folder / db["file"]
    if not db_file.is_file():
        problems.append(f"{db['file']} is missing")
    elif file_sha256(db_file) != db["sha256"]:
        problems.append(f"{db['file']}: SHA-256 differs from the manifest")
    objects = manifest["objects"]
    listing = folder / objects["list"]
    if not listing.is_file() or file_sha256(listing) != objects["list_sha256"]:
        problems.append(f"{objects['list']} is missing or differs from the manifest")
        return problems
    recorded: dict[str, str] = {}
    for line in listing.read_text().splitlines():
        sha, _, key = line.partition("  ")
        recorded[key] = sha
    found = _hash_tree(folder / objects["folder"])
    for key, sha in recorded.items():
        if key not in found:
            problems.append(f"{objects['folder']}/{key} is missing")
        elif found[key][0] != sha:
            problems.append(f"{objects['folder']}/{key}: SHA-256 differs from {objects['list']}")
    problems += [f"{objects['folder']}/{key} is not listed" for key in found if key not in recorded]
    if len(recorded) != objects["count"]:
        problems.append(f"{objects['list']} lists {len(recorded)} objects, not {objects['count']}")
    return problems


@dataclasses.dataclass
class RestoreResult:
    manifest: dict[str, Any]
    rows: dict[str, int]
    objects: int

    @property
    def audit_head(self) -> tuple[int, str] | None:
        head = self.manifest.get("audit_head")
        return None if not head else (int(head["seq"]), str(head["hash"]))


def _ensure_empty_postgres(url: URL) -> None:
    """Create the database if missing; refuse one that holds tables."""
    admin = create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", hide_parameters=True
    )
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).first()
            if exists is None:
                quoted = conn.dialect.identifier_preparer.quote(url.database or "")
                conn.execute(text(f"CREATE DATABASE {quoted}"))
                return
    finally:
        admin.dispose()
    engine = create_engine(url, hide_parameters=True)
    try:
        tables = inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            f"database {url.database} already holds tables: restore into a new, empty database"
        )


def _restore_postgres(settings: Settings, dump: Path) -> None:
    url = make_url(settings.db.url)
    _ensure_empty_postgres(url)
    args, env = _libpq(url)
    cmd = [
        _tool("pg_restore"),
        *args,
        "--dbname", url.database or "postgres",
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        str(dump),
    ]  # fmt: skip
    _run(cmd, env, "pg_restore")


def _restore_sqlite(settings: Settings, copy: Path) -> None:
    target = _sqlite_path(settings.db.url)
    if target.exists() and target.stat().st_size > 0:
        raise BackupError(f"{target} exists: restore into a new database file")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(copy, target)


def restore(settings: Settings, folder: Path) -> RestoreResult:
    """Check the folder, then load it into the configured (empty) database and bucket."""
    from digitizer.services.wiring import object_store

    folder = Path(folder)
    manifest = read_manifest(folder)
    problems = verify_folder(folder, manifest)
    if problems:
        raise BackupError(f"the backup is damaged: {problems[0]} ({len(problems)} problems)")
    kind = _kind(settings.db.url)
    if kind != manifest["database"]["kind"]:
        raise BackupError(
            f"the backup holds a {manifest['database']['kind']} database; SOHOA_DB__URL is {kind}"
        )
    store = object_store(settings)
    store.ensure_bucket()
    if store.list_keys(""):
        raise BackupError(f"bucket {store.bucket} is not empty: restore into a new bucket")

    db_file = folder / manifest["database"]["file"]
    if kind == "postgresql":
        _restore_postgres(settings, db_file)
    else:
        _restore_sqlite(settings, db_file)
    get_engine(settings.db.url).dispose()  # a cached engine may predate the restore
    with _rclone_env(settings, encrypt=settings.s3.sse) as env:
        source = str(folder / manifest["objects"]["folder"])
        _rclone_copy(source, f"sohoa:{settings.s3.bucket}", env, "rclone copy")

    engine = create_engine(settings.db.url, hide_parameters=True)
    try:
        with Session(bind=engine) as session:
            rows = _row_counts(session)
    finally:
        engine.dispose()
    recorded: dict[str, int] = manifest["database"]["rows"]
    if rows != recorded:
        differ = sorted(t for t in {*recorded, *rows} if rows.get(t) != recorded.get(t))
        raise BackupError(f"restored row counts differ from the manifest in: {', '.join(differ)}")
    count = len(store.list_keys(""))
    if count != manifest["objects"]["count"]:
        expected = manifest["objects"]["count"]
        raise BackupError(f"the bucket holds {count} objects after the restore, not {expected}")
    return RestoreResult(manifest, rows, count)
