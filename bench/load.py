"""Mixed load on a private deployment: uploads and portal reads for a fixed duration.

Starts a whole deployment of its own on loopback (fixtures.stack.PrivateStack: its own
PostgreSQL, Redis and SeaweedFS on free ports, the API under uvicorn and ``--workers``
``sohoa worker`` processes), seeds a portal client with consent grants over
``--citizens`` citizens holding ``--ecopies`` issued e-copies (bench.vault's seeding), then
runs ``--clients`` concurrent asyncio + httpx clients for ``--duration`` seconds. Each
client picks, per call, an upload (probability ``--upload-share``: a small generated scan,
distinct bytes every time, ``POST /v1/documents`` as a clerk) or a portal read (list a
citizen's current documents, then fetch one with its presigned link). After the run the
workers are given ``--drain`` seconds to finish the uploads.

Printed and written as JSON (``bench/results/load.json``): calls and throughput per
operation, p50 / p99 latency per operation, error rate, uploads processed by the workers
(and how many were still waiting when the drain ended), and the peak memory (RSS, and PSS
which counts pages shared with forked job processes once) of the API process tree and of
the workers (parents and their job processes), sampled every 0.2 s.

    python -m bench.load [--duration 30] [--clients 8] [--workers 2] [--upload-share 0.3]

The load generator, the API, the workers and the databases share the machine: on a small
machine they compete for the CPU, so the figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import func, select

from bench.pgstats import most_scanned_tables
from bench.vault import portal_round, seed
from fixtures.stack import PrivateStack, pss_kib, rss_kib, tree
from storage.db import SETTLED_STATES, Document, get_engine, session_scope

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"
OPS = ("upload", "portal_list", "portal_fetch")


def scan(n: int) -> bytes:
    """A small scan with two lines of text, distinct for every ``n``."""
    img = Image.new("L", (900, 220), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 40)
    draw.text((40, 40), f"Hồ sơ tải số {n:06d}", font=font, fill=0)
    draw.text((40, 120), "Giấy xác nhận cư trú", font=font, fill=0)
    out = io.BytesIO()
    img.save(out, format="PNG", dpi=(200, 200))
    return out.getvalue()


class PeakRss(threading.Thread):
    """Peak RSS (KiB) of the API tree and of the workers' trees, sampled until stopped."""

    def __init__(self, stack: PrivateStack, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.stack, self.every_s = stack, every_s
        self.api_kib = self.workers_kib = 0
        self.api_pss_kib = self.workers_pss_kib = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            if self.stack.api is not None:
                api = tree(self.stack.api.pid)
                self.api_kib = max(self.api_kib, rss_kib(api))
                self.api_pss_kib = max(self.api_pss_kib, pss_kib(api))
            pids = [pid for w in self.stack.live_workers() for pid in tree(w.pid)]
            self.workers_kib = max(self.workers_kib, rss_kib(pids))
            self.workers_pss_kib = max(self.workers_pss_kib, pss_kib(pids))
            self.stop_event.wait(self.every_s)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 1)


async def client(
    number: int,
    clerk: httpx.AsyncClient,
    portal: httpx.AsyncClient,
    citizen_ids: list[str],
    deadline: float,
    upload_share: float,
    stats: dict[str, Any],
    scans: list[bytes],
) -> None:
    rng = random.Random(number)
    while time.perf_counter() < deadline:
        if rng.random() < upload_share:
            data = scans.pop() if scans else scan(10_000_000 + rng.randrange(10**6))
            began = time.perf_counter()
            try:
                answer = await clerk.post(
                    "/v1/documents", files={"file": ("scan.png", data, "image/png")}
                )
            except httpx.HTTPError as exc:
                stats["errors"].append(f"upload {type(exc).__name__}")
                continue
            stats["upload"].append((time.perf_counter() - began) * 1000)
            if answer.status_code != 202:
                stats["errors"].append(f"upload HTTP {answer.status_code}")
            else:
                stats["uploaded"].append(answer.json()["documents"][0]["id"])
            continue
        await portal_round(portal, citizen_ids, deadline, rng, stats, "portal_list", "portal_fetch")


async def run_load(
    base: str,
    clerk_key: str,
    portal_key: str,
    citizen_ids: list[str],
    clients: int,
    duration: float,
    upload_share: float,
) -> dict[str, Any]:
    stats: dict[str, Any] = {op: [] for op in OPS} | {"errors": [], "uploaded": []}
    # Generated before the clock starts (the generator must not compete with the API).
    expected = int(duration * clients * upload_share * 4) + 50
    scans = [scan(n) for n in range(expected)]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with (
        httpx.AsyncClient(
            base_url=base, headers={"X-API-Key": clerk_key}, timeout=60, limits=limits
        ) as clerk,
        httpx.AsyncClient(
            base_url=base, headers={"X-API-Key": portal_key}, timeout=60, limits=limits
        ) as portal,
    ):
        began = time.perf_counter()
        deadline = began + duration
        await asyncio.gather(
            *(
                client(i, clerk, portal, citizen_ids, deadline, upload_share, stats, scans)
                for i in range(clients)
            )
        )
        stats["elapsed_s"] = time.perf_counter() - began
    return stats


def settled(stack: PrivateStack, ids: list[str]) -> int:
    if not ids:
        return 0
    with session_scope(stack.cfg.db.url) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Document)
                .where(Document.id.in_(ids), Document.state.in_([s.value for s in SETTLED_STATES]))
            )
            or 0
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="Measured seconds.")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="sohoa worker processes.")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn processes.")
    parser.add_argument("--upload-share", type=float, default=0.3)
    parser.add_argument("--citizens", type=int, default=500)
    parser.add_argument("--ecopies", type=int, default=2500)
    parser.add_argument("--drain", type=float, default=60.0, help="Seconds to finish uploads.")
    parser.add_argument("--json-out", type=Path, default=Path("bench/results/load.json"))
    args = parser.parse_args()

    with PrivateStack(workers=args.workers, api_workers=args.api_workers) as stack:
        seeded = seed(stack.cfg, args.citizens, args.ecopies)
        get_engine(stack.cfg.db.url).dispose()
        clerk_key = stack.make_key("clerk")
        print(
            f"stack up ({args.workers} workers); seeded {seeded['ecopies']} e-copies "
            f"in {seeded['seed_s']} s; {args.clients} clients for {args.duration:.0f} s ...",
            flush=True,
        )
        sampler = PeakRss(stack)
        sampler.start()
        stats = asyncio.run(
            run_load(
                stack.base_url,
                clerk_key,
                seeded["portal_key"],
                seeded["citizen_ids"],
                args.clients,
                args.duration,
                args.upload_share,
            )
        )
        uploaded: list[str] = stats["uploaded"]
        done_at_end = settled(stack, uploaded)
        drain_began = time.perf_counter()
        while settled(stack, uploaded) < len(uploaded):
            if time.perf_counter() - drain_began > args.drain:
                break
            time.sleep(0.5)
        drain_s = time.perf_counter() - drain_began
        processed = settled(stack, uploaded)
        sampler.stop_event.set()
        sampler.join()
        with get_engine(stack.cfg.db.url).connect() as conn:
            scanned = most_scanned_tables(conn)
        get_engine(stack.cfg.db.url).dispose()

    elapsed = stats["elapsed_s"]
    calls = sum(len(stats[op]) for op in OPS)
    errors = len(stats["errors"])
    result: dict[str, Any] = {
        "benchmark": "load",
        "duration_s": round(elapsed, 1),
        "clients": args.clients,
        "workers": args.workers,
        "api_workers": args.api_workers,
        "upload_share": args.upload_share,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
        "calls": calls,
        "calls_per_s": round(calls / elapsed, 1),
        "errors": errors,
        "error_rate": round(errors / calls, 4) if calls else None,
        "error_kinds": sorted(set(stats["errors"]))[:10],
        "operations": {
            op: {
                "calls": len(stats[op]),
                "per_s": round(len(stats[op]) / elapsed, 1),
                "p50_ms": percentile(stats[op], 0.50),
                "p99_ms": percentile(stats[op], 0.99),
            }
            for op in OPS
        },
        "uploads_accepted": len(uploaded),
        "uploads_processed_during_run": done_at_end,
        "uploads_processed": processed,
        "uploads_waiting_after_drain": len(uploaded) - processed,
        "drain_s": round(drain_s, 1),
        "processed_per_min": round(processed / (elapsed + drain_s) * 60, 1),
        # RSS sums count pages a worker shares with its forked job process twice; PSS
        # counts them once.
        "peak_rss_mib": {
            "api": round(sampler.api_kib / 1024, 1),
            "workers": round(sampler.workers_kib / 1024, 1),
        },
        "most_scanned_tables": scanned,
        "peak_pss_mib": {
            "api": round(sampler.api_pss_kib / 1024, 1),
            "workers": round(sampler.workers_pss_kib / 1024, 1),
        },
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(f"written to {args.json_out}")


if __name__ == "__main__":
    main()
