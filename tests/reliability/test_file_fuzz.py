"""File fuzzer: mutated PDFs, images and ZIPs against the parsers that face uploads.

Targets (each run in a watchdog process, one example at a time, with a time limit):
- preflight (``digitizer.pipeline.preflight.inspect_file``): may only raise the documented
  ``BadInputError`` subclasses (they become 4xx problems);
- ZIP extraction (``digitizer.services.archive.read_zip``, then preflight of each member):
  the same;
- the signature validator (``digitizer.services.verify.VerifyService.verify``, then the
  JSON report the API sends): never raises; an unreadable file is the ``unreadable`` verdict.

Inputs are hypothesis-driven byte-level mutations (bit flips, truncation, insertion,
deletion, duplicated chunks, changed digits: lengths and offsets in PDFs, sizes in ZIP
headers) of valid seeds: image-only and born-digital PDFs, a signed PAdES e-copy, PNG,
JPEG, TIFF and ZIP batches. A worker process that takes longer than ``LIMIT_S`` on one
example is a hang: killed, reported, and the test fails. Bounded (``SOHOA_FUZZ_FILE_EXAMPLES``
per target, default 100) so the module runs in well under 90 s.
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import multiprocessing
import os
import secrets
import traceback
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests import samples
from tests.signing.conftest import SigningEnv, env, make_sample_pdf

__all__ = ["env"]

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(300)]

EXAMPLES = int(os.environ.get("SOHOA_FUZZ_FILE_EXAMPLES", "100"))
LIMIT_S = 20.0  # one example; the slowest valid seed takes well under a second


# -- the watchdog process ------------------------------------------------------------------
_verifier: Any = None


def _init(trust_dir: str) -> None:
    """Worker start: build the verification service once (no network: fetching off)."""
    global _verifier
    from digitizer.config import Settings, SigningSettings
    from digitizer.services.verify import VerifyService

    settings = Settings(
        signing=SigningSettings(
            trust_store_dir=Path(trust_dir), revocation="soft-fail", allow_fetching=False
        ),
        secret_key=secrets.token_hex(32),
    )
    _verifier = VerifyService(settings)


def _run(target: str, data: bytes) -> tuple[str, str]:
    """Run one target on one input; ("ok" | "rejected" | "crash", detail)."""
    from digitizer.errors import BadInputError
    from digitizer.pipeline.preflight import Limits, inspect_file
    from digitizer.services.archive import ArchiveLimits, read_zip
    from signing import report as reports

    limits = Limits(max_bytes=20 * 1024 * 1024, max_pages=50, max_pixels=40_000_000)
    try:
        if target == "preflight":
            info = inspect_file(data, limits)
            return "ok", info.kind
        if target == "archive":
            members = read_zip(
                data,
                ArchiveLimits(
                    max_entries=50,
                    max_total_bytes=50 * 1024 * 1024,
                    max_member_bytes=20 * 1024 * 1024,
                    max_ratio=1000,
                ),
            )
            rejected = 0
            for member in members:
                try:
                    inspect_file(member.data, limits)
                except BadInputError:
                    rejected += 1
            return "ok", f"{len(members)} members, {rejected} refused"
        if target == "validator":
            report = _verifier.verify(data)
            reports.to_json(report, detailed=True)
            return "ok", str(report.verdict)
        raise ValueError(target)
    except BadInputError as exc:
        if target == "validator":
            return "crash", f"{type(exc).__name__}: {exc}"
        return "rejected", type(exc).__name__
    except Exception:
        return "crash", traceback.format_exc(limit=12)


class Watchdog:
    """One spawned worker process; an example over the limit kills and replaces it."""

    def __init__(self, trust_dir: Path) -> None:
        self.trust_dir = str(trust_dir)
        self.pool = self._new()
        self.hangs: list[str] = []

    def _new(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(self.trust_dir,),
        )

    def run(self, target: str, data: bytes) -> tuple[str, str]:
        future = self.pool.submit(_run, target, data)
        try:
            return future.result(timeout=LIMIT_S)
        except cf.TimeoutError:
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.kill()
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new()
            self.hangs.append(f"{target}: {len(data)} bytes, head {data[:16]!r}")
            return "hang", f"over {LIMIT_S}s"

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def watchdog(env: SigningEnv) -> Iterator[Watchdog]:
    dog = Watchdog(env.trust_dir)
    assert dog.run("preflight", samples.png())[0] == "ok"  # warm: the spawn costs seconds
    yield dog
    dog.close()


# -- seeds and mutations -------------------------------------------------------------------
def _tiff() -> bytes:
    out = io.BytesIO()
    Image.new("L", (300, 200), 255).save(out, format="TIFF", compression="tiff_deflate")
    return out.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.fixture(scope="module")
def seeds(env: SigningEnv) -> dict[str, list[bytes]]:
    from signing.signer import PadesLevel, SignOptions, StampSpec, sign_pdf

    signed = sign_pdf(
        make_sample_pdf(1),
        env.keys["ubnd-tinh-ninh-binh"],
        SignOptions(level=PadesLevel.B_B, stamp=StampSpec("https://sohoa.example.vn/v1/verify/x")),
    )
    pdfs = [samples.image_pdf(1), samples.text_pdf(), signed]
    images = [samples.png(["Giấy khai sinh"]), samples.jpeg(), _tiff()]
    zips = [
        _zip({"a.png": images[0], "b.pdf": pdfs[1]}),
        _zip({"scans/c.jpg": images[1], "d.tif": images[2]}),
    ]
    return {
        "preflight": pdfs + images,
        "archive": zips,
        "validator": [signed, signed, pdfs[1]],  # mostly the signed one
    }


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        size = len(data)
        at = draw(st.integers(0, size - 1))
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "dup", "digit"]))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 256))]
        elif op == "dup":
            chunk = data[at : at + draw(st.integers(1, 2048))]
            where = draw(st.integers(0, size))
            data[where:where] = chunk
        else:  # a digit (PDF lengths, offsets, counts) or a byte of a ZIP size field
            digits = [
                i for i in range(max(0, at - 4096), min(size, at + 4096)) if 48 <= data[i] <= 57
            ]
            if digits:
                data[draw(st.sampled_from(digits))] = draw(st.sampled_from(b"0123456789"))
            else:
                data[at] = draw(st.integers(0, 255))
    return bytes(data)


def _fuzz(watchdog: Watchdog, target: str, corpus: list[bytes]) -> None:
    outcomes: dict[str, int] = {}
    crashes: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=mutated(corpus))
    def run(data: bytes) -> None:
        outcome, detail = watchdog.run(target, data)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome in ("crash", "hang"):
            crashes.append(f"{outcome} on {len(data)} bytes {data[:12]!r}:\n{detail}")

    for seed in corpus:  # the seeds themselves are fine
        assert watchdog.run(target, seed)[0] == "ok"
    run()
    print(f"\n{target}: {outcomes}")
    assert not crashes, "\n".join(crashes[:5])
    assert sum(outcomes.values()) >= EXAMPLES


def test_preflight_survives_mutated_files(
    watchdog: Watchdog, seeds: dict[str, list[bytes]]
) -> None:
    _fuzz(watchdog, "preflight", seeds["preflight"])


@pytest.mark.smoke
def test_zip_extraction_survives_mutated_archives(
    watchdog: Watchdog, seeds: dict[str, list[bytes]]
) -> None:
    _fuzz(watchdog, "archive", seeds["archive"])


def test_validator_survives_mutated_signed_pdfs(
    watchdog: Watchdog, seeds: dict[str, list[bytes]]
) -> None:
    _fuzz(watchdog, "validator", seeds["validator"])
