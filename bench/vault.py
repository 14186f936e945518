"""Vault read benchmark: portal list and fetch calls under load, with auditing on.

Seeds a fresh PostgreSQL database (created for the run, dropped after it) with
10,000 citizens and 50,000 issued e-copies (bulk inserts; object keys are made up:
presigned links are computed locally by the minio SDK, nothing is downloaded), one
portal client with a consent grant from every citizen, then serves the API with
``sohoa api`` (a child process, ``--api-workers`` processes, loopback, free port) and
runs ``--clients`` concurrent portal clients (asyncio, one kept-alive connection each,
``bench.httpclient``: lean, so the load generator takes little CPU from the server) for
``--duration`` seconds. Each client loops: list a random citizen's current documents
(``GET /v1/portal/citizens/{ref}/documents``), then fetch one of them with its
presigned link (``GET .../documents/{ecopy_id}``). Every call writes an audit event.

Printed and written as JSON (``bench/results/vault.json``): reads per second, p50 /
p99 latency of the list call (target p99 <= 50 ms) and of the fetch, the error rate,
the API's peak memory (PSS of the uvicorn process tree, so pages shared by the
forked workers count once), the CPU seconds of the measured window spent by the API,
PostgreSQL, the load generator and the rest of the machine (``cpu_s``,
``cpu_ms_per_call``), and the median latencies of one client alone first
(``solo_*``: the service time of a call, without queueing behind 15 others), and the
lowest and highest of the clients' mean list latencies (``list_ms_mean_by_client``: far
apart when the clients are not served alike), and the three tables most read by
sequential scans (``most_scanned_tables``: a hot table among them is a plan gone wrong).

    python -m bench.vault [--duration 30] [--clients 16] [--api-workers 2]
                          [--citizens 10000] [--ecopies 50000] [--pg-url URL]

The load generator runs on the same machine as the API and the database: on a small
machine the three compete for the CPU, so the figures are a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import random
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from bench.cpu import cpu_seconds, delta, named, tree_member
from bench.httpclient import KeepAliveClient
from bench.memory import PeakSampler
from bench.pgstats import most_scanned_tables
from digitizer.config import DatabaseSettings, EmbeddedSettings, S3Settings, Settings
from digitizer.doctypes import DOC_TYPES
from digitizer.services.keys import create_key
from digitizer.services.wiring import citizen_registry
from digitizer.stack import settings_env
from storage import migrate
from storage.db import (
    Citizen,
    ConsentGrant,
    Document,
    ECopy,
    get_engine,
    new_id,
    session_scope,
    utcnow,
)
from storage.embedded import free_port

PG_ADMIN_URL = os.environ.get(
    "SOHOA_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
OFFICES = [
    ("ubnd-phuong-ba-dinh", "Ủy ban nhân dân phường Ba Đình"),
    ("ubnd-tinh-ninh-binh", "Ủy ban nhân dân tỉnh Ninh Bình"),
    ("ubnd-xa-dong-anh", "Ủy ban nhân dân xã Đông Anh"),
]
NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Minh Châu", "Phạm Thu Hà", "Đỗ Quang Dũng"]
PROVINCES = ["001", "079", "037", "031", "048", "092"]


# -- seeding ------------------------------------------------------------------------------
def _pid(n: int) -> str:
    """A valid-looking, unique 12-digit personal id for citizen ``n``."""
    return f"{PROVINCES[n % len(PROVINCES)]}{2 + n % 2}{(n // 2) % 100:02d}{n:06d}"


def seed(settings: Settings, citizens: int, ecopies: int) -> dict[str, Any]:
    """Bulk-insert citizens, documents, e-copies and one portal client's grants."""
    registry = citizen_registry(settings)
    engine = get_engine(settings.db.url)
    started = time.perf_counter()
    now = utcnow()
    rng = random.Random(20260101)
    citizen_ids = [new_id() for _ in range(citizens)]
    with session_scope(settings.db.url) as session:
        client_row, portal_key = create_key(
            session, name="Cổng dịch vụ công (bench)", role="portal"
        )
        session.flush()
        client_id = client_row.id
    batch = 5000
    with engine.begin() as conn:
        for start in range(0, citizens, batch):
            conn.execute(
                insert(Citizen),
                [
                    {
                        "id": cid,
                        "pid_hash": registry.lookup_hash(_pid(n)),
                        "pid_encrypted": registry.encrypt(_pid(n), cid),
                        "created_at": now,
                    }
                    for n, cid in enumerate(citizen_ids[start : start + batch], start=start)
                ],
            )
        conn.execute(
            insert(ConsentGrant),
            [
                {
                    "id": new_id(),
                    "citizen_id": cid,
                    "client_id": client_id,
                    "doc_types": list(DOC_TYPES),
                    "purpose": "Giải quyết thủ tục hành chính",
                    "created_at": now,
                    "expires_at": now + timedelta(days=365),
                }
                for cid in citizen_ids
            ],
        )
        # Each citizen gets ecopies/citizens e-copies of distinct types; about one in ten
        # is an older version (superseded by the next), one in fifty revoked.
        per = max(1, ecopies // citizens)
        made = 0
        docs: list[dict[str, Any]] = []
        copies: list[dict[str, Any]] = []

        def flush() -> None:
            if docs:
                conn.execute(insert(Document), docs)
                conn.execute(insert(ECopy), copies)
                docs.clear()
                copies.clear()

        for n, cid in enumerate(citizen_ids):
            types = rng.sample(DOC_TYPES[:-1], k=min(per, len(DOC_TYPES) - 1))
            previous: str | None = None
            for k, doc_type in enumerate(types):
                if made >= ecopies:
                    break
                office, issuer = OFFICES[(n + k) % len(OFFICES)]
                doc_id, ecopy_id = new_id(), new_id()
                digest = hashlib.sha256(f"{n}/{k}".encode()).hexdigest()
                issued = now - timedelta(days=rng.randint(1, 3000), seconds=k)
                status, superseded_by = "valid", None
                roll = rng.random()
                if roll < 0.1 and previous is not None:
                    # this one is an older version of the previous type's paper
                    status, superseded_by = "superseded", previous
                elif roll < 0.12:
                    status = "revoked"
                docs.append(
                    {
                        "id": doc_id,
                        "sha256": digest,
                        "filename": f"{doc_type}-{n}.pdf",
                        "media_type": "application/pdf",
                        "size": 60_000,
                        "state": "issued",
                        "citizen_id": cid,
                        "office": office,
                        "doc_type": doc_type,
                        "doc_number": f"{n}/{k}",
                        "results": {},
                        "failures": [],
                        "attempts": 1,
                        "has_signatures": False,
                        "created_at": issued,
                        "updated_at": issued,
                    }
                )
                copies.append(
                    {
                        "id": ecopy_id,
                        "document_id": doc_id,
                        "code": secrets.token_urlsafe(16),
                        "office_code": office,
                        "issuer": issuer,
                        "doc_type": doc_type,
                        "object_key": f"ecopies/{doc_id}/{digest}.pdf",
                        "sha256": digest,
                        "status": status,
                        "issued_at": issued,
                        "previous_sha256": [],
                        "citizen_id": cid,
                        "fields": {
                            "full_name": NAMES[n % len(NAMES)],
                            "document_number": f"{n}/{k}",
                            "issuer": issuer,
                        },
                        "doc_number": f"{n}/{k}",
                        "superseded_by": superseded_by,
                        "revoked_at": issued if status == "revoked" else None,
                        "updated_at": issued,
                    }
                )
                previous = ecopy_id
                made += 1
            if len(docs) >= batch:
                flush()
        flush()
    # Vacuumed as well as analysed: otherwise autovacuum, woken by the bulk insert, works
    # through the new tables during the measured window (seen: PostgreSQL's CPU per call
    # doubled in such a run).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE)"))
    return {
        "portal_key": portal_key,
        "citizen_ids": citizen_ids,
        "ecopies": made,
        "seed_s": round(time.perf_counter() - started, 1),
    }


# -- load ---------------------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class Getter(Protocol):
    """What a portal round needs of an HTTP client (httpx's, or :mod:`bench.httpclient`)."""

    async def get(self, url: str) -> Any: ...


#: What a failed call raises: httpx's errors, or the lean client's.
CALL_ERRORS = (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError)


async def _timed_get(http: Getter, path: str, stats: dict[str, Any], key: str, name: str) -> Any:
    """GET ``path``; its latency (ms) to ``stats[key]``; None (and an error) when it failed."""
    started = time.perf_counter()
    try:
        answer = await http.get(path)
    except CALL_ERRORS as exc:
        stats["errors"].append(f"{name} {type(exc).__name__}")
        return None
    stats[key].append((time.perf_counter() - started) * 1000)
    return answer


async def portal_round(
    http: Getter,
    citizen_ids: list[str],
    deadline: float,
    rng: random.Random,
    stats: dict[str, Any],
    list_key: str = "list_ms",
    fetch_key: str = "fetch_ms",
) -> None:
    """One portal read: list a random citizen's documents, then fetch a valid one.

    Latencies (ms) go to ``stats[list_key]`` / ``stats[fetch_key]``, failures to
    ``stats["errors"]``; no fetch is started after ``deadline``.
    """
    ref = rng.choice(citizen_ids)
    path = f"/v1/portal/citizens/{ref}/documents"
    answer = await _timed_get(http, path, stats, list_key, "list")
    if answer is None:
        return
    if answer.status_code != 200:
        stats["errors"].append(f"list HTTP {answer.status_code}")
        return
    valid = [d["id"] for d in answer.json()["documents"] if d["status"] == "valid"]
    if not valid or time.perf_counter() >= deadline:
        return
    answer = await _timed_get(http, f"{path}/{rng.choice(valid)}", stats, fetch_key, "fetch")
    if answer is None:
        return
    if answer.status_code != 200 or not answer.json().get("download_url"):
        stats["errors"].append(f"fetch HTTP {answer.status_code}")


async def _client(
    http: Getter,
    citizen_ids: list[str],
    deadline: float,
    rng: random.Random,
    stats: dict[str, Any],
) -> None:
    while time.perf_counter() < deadline:
        await portal_round(http, citizen_ids, deadline, rng, stats)


async def run_load(
    base: str,
    key: str,
    citizen_ids: list[str],
    clients: int,
    duration: float,
    warmup: float,
    solo: float,
    cpu_groups: dict[str, Any] | None = None,
) -> dict[str, Any]:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    # One kept-alive connection per client, as a portal's pool would hold.
    pool = [KeepAliveClient(host, int(port), {"X-API-Key": key}) for _ in range(clients + 1)]
    try:
        # warm-up: connections, the workers' first queries and caches (not measured)
        scratch: dict[str, Any] = {"list_ms": [], "fetch_ms": [], "errors": []}
        end = time.perf_counter() + warmup
        await asyncio.gather(
            *(_client(pool[i], citizen_ids, end, random.Random(i), scratch) for i in range(clients))
        )
        # one client alone: the service time of a call, without queueing behind others
        alone: dict[str, Any] = {"list_ms": [], "fetch_ms": [], "errors": []}
        await _client(pool[-1], citizen_ids, time.perf_counter() + solo, random.Random(99), alone)
        stats: dict[str, Any] = {"list_ms": [], "fetch_ms": [], "errors": [], "solo": alone}
        cpu_before = cpu_seconds(cpu_groups or {})
        started = time.perf_counter()
        deadline = started + duration
        # one record per client, merged after: the spread of their means shows whether
        # the clients were served alike (a worker holding more of them makes it wide)
        own: list[dict[str, Any]] = [{"list_ms": [], "fetch_ms": [], "errors": []} for _ in pool]
        await asyncio.gather(
            *(
                _client(pool[i], citizen_ids, deadline, random.Random(1000 + i), own[i])
                for i in range(clients)
            )
        )
        for record in own[:clients]:
            for name in ("list_ms", "fetch_ms", "errors"):
                stats[name].extend(record[name])
        stats["list_means"] = [sum(r["list_ms"]) / len(r["list_ms"]) for r in own if r["list_ms"]]
        stats["elapsed_s"] = time.perf_counter() - started
        stats["cpu_s"] = delta(cpu_before, cpu_seconds(cpu_groups or {}))
    finally:
        for client in pool:
            await client.close()
    return stats


def _wait_http(url: str, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--citizens", type=int, default=10_000)
    parser.add_argument("--ecopies", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0, help="Measured seconds.")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--solo", type=float, default=5.0, help="Seconds of one client alone (service time)."
    )
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="Admin URL (a database is made).")
    parser.add_argument("--keep-db", action="store_true", help="Do not drop the database.")
    parser.add_argument("--json-out", type=Path, default=Path("bench/results/vault.json"))
    args = parser.parse_args()

    name = f"sohoa_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
    api: subprocess.Popen[bytes] | None = None
    home = Path(tempfile.mkdtemp(prefix="sohoa-bench-vault-"))
    try:
        settings = Settings(
            db=DatabaseSettings(url=url),
            # Nothing listens there: presigned links are signed locally (region given),
            # and nothing is downloaded.
            s3=S3Settings(endpoint=f"127.0.0.1:{free_port()}", bucket="bench", region="us-east-1"),
            embedded=EmbeddedSettings(home=home),
            secret_key=secrets.token_hex(32),
        )
        migrate.upgrade(url)
        print(f"seeding {args.citizens} citizens and {args.ecopies} e-copies ...", flush=True)
        seeded = seed(settings, args.citizens, args.ecopies)
        get_engine(url).dispose()
        print(f"seeded in {seeded['seed_s']} s", flush=True)

        port = free_port()
        env = {**os.environ, **settings_env(settings)}
        api = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("sohoa")),
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.api_workers),
            ],
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/healthz")
        sampler = PeakSampler([api.pid], every_s=0.5)
        sampler.start()
        me = os.getpid()
        cpu_groups = {
            "api": tree_member(api.pid),
            "postgres": named("postgres"),
            "load_generator": lambda pid, _name: pid == me,
        }
        stats = asyncio.run(
            run_load(
                base,
                seeded["portal_key"],
                seeded["citizen_ids"],
                args.clients,
                args.duration,
                args.warmup,
                args.solo,
                cpu_groups,
            )
        )
        sampler.stop_event.set()
        sampler.join()
        with get_engine(url).connect() as conn:
            audited = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
            scanned = most_scanned_tables(conn)
        get_engine(url).dispose()

        calls = len(stats["list_ms"]) + len(stats["fetch_ms"])
        errors = len(stats["errors"])
        elapsed = stats["elapsed_s"]
        result = {
            "benchmark": "vault",
            "citizens": args.citizens,
            "ecopies": seeded["ecopies"],
            "clients": args.clients,
            "api_workers": args.api_workers,
            "duration_s": round(elapsed, 1),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            },
            "seed_s": seeded["seed_s"],
            "reads": calls,
            "reads_per_s": round((calls - errors) / elapsed, 1),
            "list_calls": len(stats["list_ms"]),
            "list_ms_p50": round(_percentile(stats["list_ms"], 0.50), 1),
            "list_ms_p99": round(_percentile(stats["list_ms"], 0.99), 1),
            "list_p99_target_ms": 50,
            "list_ms_mean_by_client": {
                "min": round(min(stats["list_means"]), 1),
                "max": round(max(stats["list_means"]), 1),
            },
            "fetch_calls": len(stats["fetch_ms"]),
            "fetch_ms_p50": round(_percentile(stats["fetch_ms"], 0.50), 1),
            "fetch_ms_p99": round(_percentile(stats["fetch_ms"], 0.99), 1),
            "solo_list_ms_p50": round(_percentile(stats["solo"]["list_ms"], 0.50), 1),
            "solo_fetch_ms_p50": round(_percentile(stats["solo"]["fetch_ms"], 0.50), 1),
            "errors": errors,
            "error_rate": round(errors / calls, 4) if calls else None,
            "error_kinds": sorted(set(stats["errors"]))[:10],
            "audit_events": audited,
            "most_scanned_tables": scanned,
            "api_peak_pss_mib": round(sampler.peaks[api.pid] / 1024, 1),
            # where the measured window's CPU went (seconds, and ms per call)
            "cpu_s": stats["cpu_s"],
            "cpu_ms_per_call": {
                group: round(seconds * 1000 / max(calls, 1), 2)
                for group, seconds in stats["cpu_s"].items()
            },
        }
        print(json.dumps(result, indent=2, ensure_ascii=False))
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    finally:
        if api is not None:
            api.terminate()
            try:
                api.wait(timeout=20)
            except subprocess.TimeoutExpired:
                api.kill()
                api.wait()
        get_engine(url).dispose()
        if not args.keep_db:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
