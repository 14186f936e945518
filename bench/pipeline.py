"""End-to-end pipeline benchmark: pages/min, overhead over raw OCR, peak worker RSS.

Runs on real parts started for the run, on loopback: SeaweedFS (free ports),
Redis (the machine's, with a queue of its own, or a fresh one with
``--own-redis``), the database (SQLite file, or ``--db-url``), the API served by
uvicorn and N worker processes (``sohoa worker``), all as child processes.

Reference in the same run: the OCR engine's own time on the same page images
(``engine.recognize`` in this process, no deskew, no storage) -> overhead ratio
= end-to-end wall time x workers / raw OCR time (target <= 1.15 for 1 worker).

    python -m bench.pipeline --pages 20 [--workers 1] [--degraded] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.memory import PeakSampler
from digitizer.config import (
    DatabaseSettings,
    EmbeddedSettings,
    RedisSettings,
    S3Settings,
    Settings,
)
from digitizer.pipeline.ocr import create_engine
from digitizer.services.keys import create_key
from digitizer.stack import settings_env
from fixtures import generator
from fixtures.metrics import cer
from storage import migrate
from storage.db import session_scope
from storage.embedded import RedisServer, SeaweedFS, free_port


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def _png(page: generator.GeneratedPage) -> bytes:
    out = io.BytesIO()
    page.image.save(out, format="PNG", dpi=(page.dpi, page.dpi))
    return out.getvalue()


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--degraded", action="store_true", help="scan-degraded pages")
    parser.add_argument("--seed", type=int, default=9000, help="first generator seed")
    parser.add_argument("--db-url", default=None, help="database URL (default: SQLite)")
    parser.add_argument(
        "--no-fork", action="store_true", help="workers run jobs in-process (no crash isolation)"
    )
    parser.add_argument("--own-redis", action="store_true", help="start a Redis on a free port")
    parser.add_argument("--json-out", type=Path, default=Path("bench/results/pipeline.json"))
    args = parser.parse_args()

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    pages = [
        generator.generate_page(args.seed + n, degraded=args.degraded) for n in range(args.pages)
    ]
    blobs = [_png(p) for p in pages]

    work = Path(tempfile.mkdtemp(prefix="sohoa-bench-"))
    s3 = SeaweedFS(data_dir=work / "s3")
    redis_server = RedisServer() if args.own_redis else None
    procs: list[subprocess.Popen[bytes]] = []
    try:
        s3.start()
        redis_url = "redis://127.0.0.1:6379/9"
        if redis_server is not None:
            redis_server.start()
            redis_url = redis_server.url
        db_url = args.db_url or f"sqlite:///{work / 'sohoa.db'}"
        settings = Settings(
            s3=S3Settings(
                endpoint=s3.endpoint,
                access_key=s3.access_key,
                secret_key=s3.secret_key,
                bucket="bench",
            ),
            redis=RedisSettings(url=redis_url, queue=f"bench-{uuid.uuid4().hex[:8]}"),
            db=DatabaseSettings(url=db_url),
            embedded=EmbeddedSettings(home=work / "home"),
            secret_key=secrets.token_hex(32),
        )
        migrate.upgrade(settings.db.url)
        with session_scope(settings.db.url) as session:
            _, key = create_key(session, name="bench", role="clerk")

        # Reference: the engine alone on the same images (model loaded before timing).
        engine = create_engine(settings.ocr)
        engine.recognize(pages[0].image, pages[0].dpi)
        t0 = time.perf_counter()
        raw_texts = [engine.recognize(p.image, p.dpi).text for p in pages]
        raw_ocr_s = time.perf_counter() - t0

        env = {**os.environ, **settings_env(settings), "OMP_THREAD_LIMIT": "1"}
        port = free_port()
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "digitizer.cli",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
        )
        procs.append(api)
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "digitizer.cli", "worker"]
                + (["--no-fork"] if args.no_fork else []),
                env=env,
            )
            for _ in range(args.workers)
        ]
        procs.extend(workers)
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/healthz")
        time.sleep(3)  # let the workers load their models before the clock starts

        sampler = PeakSampler([w.pid for w in workers] + [api.pid])
        sampler.start()
        client = httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60)
        latencies: list[float] = []
        start = time.perf_counter()
        ids = []
        for n, blob in enumerate(blobs):
            t = time.perf_counter()
            response = client.post(
                "/v1/documents", files={"file": (f"p{n}.png", blob, "image/png")}
            )
            latencies.append(time.perf_counter() - t)
            response.raise_for_status()
            ids.append(response.json()["documents"][0]["id"])
        states: dict[str, dict] = {}
        pending = list(ids)
        while pending:
            # One request at a time, oldest first: the harness must not steal the CPU
            # it is measuring (2 cores).
            body = client.get(f"/v1/documents/{pending[0]}").json()
            if body["state"] in {"ready", "needs_review", "failed"}:
                states[pending.pop(0)] = body
            else:
                time.sleep(0.25)
        wall_s = time.perf_counter() - start
        sampler.stop_event.set()
        sampler.join()

        pipeline_cer = []
        for doc_id, page in zip(ids, pages, strict=True):
            link = client.get(f"/v1/documents/{doc_id}/text", follow_redirects=False)
            text = httpx.get(link.headers["location"]).text
            pipeline_cer.append(cer(page.text, text))
        raw_cer = [cer(p.text, t) for p, t in zip(pages, raw_texts, strict=True)]
        latencies.sort()
        result = {
            "benchmark": "pipeline",
            "pages": args.pages,
            "workers": args.workers,
            "fork_per_job": not args.no_fork,
            "degraded": args.degraded,
            "engine": engine.name,
            "engine_version": engine.version,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "end_to_end_s": round(wall_s, 2),
            "pages_per_min": round(args.pages / wall_s * 60, 2),
            "raw_ocr_s": round(raw_ocr_s, 2),
            "raw_ocr_pages_per_min": round(args.pages / raw_ocr_s * 60, 2),
            "overhead_ratio": round(wall_s * args.workers / raw_ocr_s, 3),
            "overhead_ratio_wall": round(wall_s / raw_ocr_s, 3),
            "upload_latency_ms_p50": round(_percentile(latencies, 0.50) * 1000, 1),
            "upload_latency_ms_p99": round(
                latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1
            ),
            "peak_worker_pss_mib": round(max(sampler.peaks[w.pid] for w in workers) / 1024, 1),
            "peak_api_pss_mib": round(sampler.peaks[api.pid] / 1024, 1),
            "states": {
                s: sum(1 for b in states.values() if b["state"] == s)
                for s in {b["state"] for b in states.values()}
            },
            "cer_pipeline_mean": round(sum(pipeline_cer) / len(pipeline_cer), 4),
            "cer_raw_engine_mean": round(sum(raw_cer) / len(raw_cer), 4),
        }
        print(json.dumps(result, indent=2, ensure_ascii=False))
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        s3.stop()
        if redis_server is not None:
            redis_server.stop()


if __name__ == "__main__":
    main()
