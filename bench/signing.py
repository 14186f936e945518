"""Signing and validation benchmark: ms per signature and per validation, batch throughput.

Runs against the test PKI (fixtures/pki) served on loopback in this process, so TSA/OCSP/CRL
round trips are local: the figures are CPU cost plus loopback HTTP, not a real CA's latency.

Measured, N times each (p50/p99 in ms):
- sign with ``signing.signer.sign_pdf`` at B-T, B-LT, B-LTA with the Vietnamese stamp + QR;
- the reference in the same run: pyHanko's own ``signers.sign_pdf`` with default settings and
  no stamp (invisible signature) at the same levels, so our overhead is visible;
- validate a B-LT e-copy with ``signing.validator.validate``: with one context reused for the
  batch (warm: revocation data cached), with a fresh context per file (OCSP/CRL fetched every
  time), and with revocation checking off; reference: pyHanko's ``validate_pdf_signature`` with
  a reused context and the default diff policy;
- validations per second over the batch with the reused context;
- peak RSS of the process.

    python -m bench.signing [--n 20] [--json-out bench/results/signing.json]

Targets (issue 6): signing <= 1 s, validation <= 200 ms per single-signature file with a warm
context.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymupdf
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from fixtures.pki import start_test_pki
from signing.pki import (
    Pkcs12Key,
    RevocationPolicy,
    ValidationConfig,
    build_validation_context,
    load_key,
    load_trust_store,
)
from signing.signer import PadesLevel, SignOptions, StampSpec, TimestampConfig, sign_pdf
from signing.validator import Verdict, validate

VERIFY_URL = "https://sohoa.example.vn/v/3q2d8Yb7kQ0pV5xW1rT9zA"


def sample_pdf(pages: int = 2) -> bytes:
    """A born-digital two-page decision in Vietnamese, like an e-copy before signing."""
    doc = pymupdf.open()
    for n in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_font(fontname="notos", fontbuffer=pymupdf.Font("notos").buffer)
        for i, line in enumerate(
            [
                "ỦY BAN NHÂN DÂN TỈNH NINH BÌNH",
                "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
                f"QUYẾT ĐỊNH số 123/QĐ-UBND (trang {n + 1})",
            ]
            + [f"Điều {k}. Nội dung quyết định dòng {k}." for k in range(1, 25)]
        ):
            page.insert_text((60, 80 + 20 * i), line, fontname="notos", fontsize=11)
    doc.subset_fonts()
    data = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return data


def _stats(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    p99_index = min(len(ms) - 1, round(0.99 * (len(ms) - 1)))
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[p99_index], 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


def _time(n: int, fn: Callable[[], Any]) -> tuple[list[float], Any]:
    samples: list[float] = []
    result = None
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t0)
    return samples, result


def run(n: int) -> dict[str, Any]:
    logging.disable(logging.WARNING)  # pyHanko logs every expected validation failure
    pdf = sample_pdf()
    with tempfile.TemporaryDirectory() as tmp, start_test_pki(Path(tmp)) as (pki, _server):
        keys = pki.write_office_keys(Path(tmp) / "p12", include_special=False)
        kf = keys["ubnd-tinh-ninh-binh"]
        key = load_key(Pkcs12Key(kf.path, kf.passphrase))
        key.office_name = "Ủy ban nhân dân tỉnh Ninh Bình"
        trust_dir = pki.write_trust_store(Path(tmp) / "trust")
        trust = load_trust_store(trust_dir)
        tsa = TimestampConfig(pki.tsa_url)
        stamp = StampSpec(VERIFY_URL, signer="Nguyễn Văn An")

        # warm-up: font decompression, first imports, first TCP connections
        sign_pdf(pdf, key, SignOptions(stamp=stamp), tsa=tsa, trust=trust)

        results: dict[str, Any] = {"sign": {}, "sign_reference_pyhanko": {}, "validate": {}}
        docs: dict[str, bytes] = {}
        for level in (PadesLevel.B_T, PadesLevel.B_LT, PadesLevel.B_LTA):
            samples, out = _time(
                n,
                lambda level=level: sign_pdf(
                    pdf, key, SignOptions(level=level, stamp=stamp), tsa=tsa, trust=trust
                ),
            )
            docs[level.value] = out
            results["sign"][level.value] = {**_stats(samples), "bytes": len(out)}

            def reference(level: PadesLevel = level) -> bytes:
                lt = level in (PadesLevel.B_LT, PadesLevel.B_LTA)
                meta = signers.PdfSignatureMetadata(
                    field_name="Signature",
                    subfilter=fields.SigSeedSubFilter.PADES,
                    embed_validation_info=lt,
                    use_pades_lta=level == PadesLevel.B_LTA,
                    validation_context=(
                        ValidationContext(
                            trust_roots=list(trust.roots),
                            allow_fetching=True,
                            revocation_mode="hard-fail",
                        )
                        if lt
                        else None
                    ),
                )
                out = signers.sign_pdf(
                    IncrementalPdfFileWriter(io.BytesIO(pdf)),
                    meta,
                    signer=key.signer,
                    timestamper=HTTPTimeStamper(pki.tsa_url),
                )
                return bytes(out.getvalue())

            ref_samples, ref_out = _time(n, reference)
            results["sign_reference_pyhanko"][level.value] = {
                **_stats(ref_samples),
                "bytes": len(ref_out),
                "note": "pyHanko defaults, invisible signature, no stamp",
            }

        target = docs["B-LT"]
        shared = build_validation_context(trust)
        assert validate(target, shared).verdict == Verdict.VALID  # also warms the cache
        warm, _ = _time(n, lambda: validate(target, shared))
        cold, _ = _time(n, lambda: validate(target, build_validation_context(trust)))
        no_rev_cfg = ValidationConfig(
            trust_store_dir=trust_dir,
            revocation=RevocationPolicy.SOFT_FAIL,
            allow_fetching=False,
        )
        no_rev, _ = _time(n, lambda: validate(target, build_validation_context(no_rev_cfg)))

        ref_vc = ValidationContext(
            trust_roots=list(trust.roots), allow_fetching=True, revocation_mode="hard-fail"
        )

        def reference_validate() -> bool:
            reader = PdfFileReader(io.BytesIO(target))
            status = validate_pdf_signature(reader.embedded_signatures[0], ref_vc)
            return bool(status.bottom_line)

        assert reference_validate()
        ref_val, _ = _time(n, reference_validate)

        batch = [docs["B-T"], docs["B-LT"], docs["B-LTA"]] * max(1, n // 3)
        batch_context = build_validation_context(trust)
        t0 = time.perf_counter()
        verdicts = [validate(doc, batch_context).verdict for doc in batch]
        batch_s = time.perf_counter() - t0
        assert all(v == Verdict.VALID for v in verdicts)

        results["validate"] = {
            "B-LT_reused_context": _stats(warm),
            "B-LT_fresh_context_fetching_revocation": _stats(cold),
            "B-LT_revocation_off": _stats(no_rev),
            "reference_pyhanko_validate_pdf_signature_reused_context": _stats(ref_val),
            "batch": {
                "files": len(batch),
                "seconds": round(batch_s, 2),
                "validations_per_second": round(len(batch) / batch_s, 2),
            },
        }

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results["peak_rss_mib"] = round(peak_kib / 1024, 1)
    results["input_bytes"] = len(pdf)
    results["meta"] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus_note": "shared 2-core dev machine unless stated otherwise",
        "n": n,
    }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.signing", description=__doc__)
    parser.add_argument("--n", type=int, default=20, help="repetitions per measurement")
    parser.add_argument("--json-out", type=Path, default=Path("bench/results/signing.json"))
    args = parser.parse_args(argv)
    results = run(args.n)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")

    print(f"signing, ms per signature (N={args.n}, p50 / p99):")
    for level, ours in results["sign"].items():
        ref = results["sign_reference_pyhanko"][level]
        print(
            f"  {level:6} ours {ours['p50_ms']:7.1f} / {ours['p99_ms']:7.1f}"
            f"   pyHanko plain {ref['p50_ms']:7.1f} / {ref['p99_ms']:7.1f}"
            f"   ({ours['bytes']} vs {ref['bytes']} bytes)"
        )
    print("validation of a B-LT e-copy, ms (p50 / p99):")
    for name, stats in results["validate"].items():
        if name == "batch":
            continue
        print(f"  {name:56} {stats['p50_ms']:7.1f} / {stats['p99_ms']:7.1f}")
    batch = results["validate"]["batch"]
    print(
        f"batch: {batch['files']} files in {batch['seconds']} s"
        f" = {batch['validations_per_second']} validations/s (one reused context)"
    )
    print(f"peak RSS: {results['peak_rss_mib']} MiB; written to {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
