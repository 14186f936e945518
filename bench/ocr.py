"""OCR benchmark: every engine and two references on the same generated pages.

Pages come from the held-out split of ``fixtures.generator`` (templates/wordings and fonts that
were not used while tuning the engines), each seed rendered clean and degraded
(``generate_page(..., degraded=True)``: rotation, blur, noise, low contrast, 150 dpi, JPEG).

Engines run as the pipeline runs them: ``digitizer.pipeline.render.deskew`` then
``engine.recognize`` (both timed). References, on the same PNG files in the same run:

* ``tesseract-cli``: ``tesseract img.png - -l vie tsv`` (the raw CLI, no deskew), one process
  per page;
* ``ocrmypdf``: ``ocrmypdf --deskew --rotate-pages -l vie --jobs 2`` on one multi-page PDF per
  subset (clean, degraded); the text layer is read back with PyMuPDF. Its text layer says what
  its ``--sidecar`` text says (checked): where OCRmyPDF does badly on a degraded page, it is
  its deskew, which asks Tesseract (``--psm 2``) for the angle and on some pages gets 0 for a
  3 degree skew (seed 9000), so Tesseract then loses whole paragraphs, not this harness.

Each engine runs in its own child process, so peak RSS (``ru_maxrss`` of the child and, for the
references, of the programs it starts) is its own. Reported per engine and subset: CER (NFC,
whitespace collapsed, ``fixtures.metrics.cer``), CER without diacritics, both in the better of
the two reading orders of the ground truth (column by column / row by row, since Tesseract reads
the two-column header row by row), ``aligned_cer`` (order-free, matched by box; boxes of
deskewed pages are mapped back to the scan's frame), seconds per page (model loading excluded,
reported apart), peak RSS.

Ground-truth policy for dotted form leaders ("Họ và tên: ........"): they mark where a citizen
writes and hold no words, so every CER above removes leader runs from the truth and from each
engine's and reference's text alike (``fixtures.metrics.strip_leaders``); what a reader makes of
the dots other than a clean run of dots still counts. ``cer_raw`` keeps them on both sides.

    python -m bench.ocr [--seeds 15] [--engines tesseract,trueocr,ppocr-vie,cascade]
                        [--refs tesseract-cli,ocrmypdf] [--json-out bench/results/ocr.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENGINES = ("tesseract", "trueocr", "ppocr-vie", "cascade")
DEFAULT_REFS = ("tesseract-cli", "ocrmypdf")
DPI = 300


def _engine_modules() -> None:
    """Register the engines (``digitizer.pipeline.ocr`` only imports tesseract itself)."""
    from digitizer.pipeline.ocr import asternet, tesseract, trueocr_engine  # noqa: F401


def build_pages(seeds: int, out: Path, first_seed: int = 9000) -> list[dict[str, Any]]:
    """Render ``seeds`` held-out pages, clean and degraded, as PNGs with ground truth."""
    from fixtures import generator

    variants = generator.document_variants("heldout")
    fonts = generator.split_fonts("heldout")
    pages: list[dict[str, Any]] = []
    for k in range(seeds):
        seed = first_seed + k
        template, wording = variants[k % len(variants)]
        font = fonts[k % len(fonts)]
        for degraded in (False, True):
            page = generator.generate_page(
                seed, template, font, degraded=degraded, dpi=DPI, wording=wording
            )
            name = f"{seed}-{'deg' if degraded else 'clean'}"
            path = out / f"{name}.png"
            page.image.save(path, dpi=(DPI, DPI))
            pages.append(
                {
                    "name": name,
                    "path": str(path),
                    "seed": seed,
                    "template": template,
                    "wording": wording,
                    "font": font,
                    "degraded": degraded,
                    "text": page.text,
                    "row_text": generator.row_major_text(page.lines),
                    "lines": [[ln.text, list(ln.bbox)] for ln in page.lines],
                }
            )
    return pages


# -- workers (run in a child process each) -------------------------------------------------


def _peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def run_engine(name: str, pages: list[dict[str, Any]]) -> dict[str, Any]:
    """Load engine ``name`` once, then deskew + recognise every page."""
    from PIL import Image

    from digitizer.config import OcrSettings
    from digitizer.pipeline import render
    from digitizer.pipeline.ocr import create_engine

    _engine_modules()
    started = time.perf_counter()
    engine = create_engine(OcrSettings(engine=name))
    load_s = time.perf_counter() - started
    results = []
    for page in pages:
        with Image.open(page["path"]) as opened:
            image = opened.convert("L")
        started = time.perf_counter()
        rendered = render.deskew(render.RenderedPage(image, DPI, 0.0, True))
        out = engine.recognize(rendered.image, DPI)
        seconds = time.perf_counter() - started
        results.append(
            {
                "name": page["name"],
                "seconds": seconds,
                "text": out.text,
                "words": [
                    [ln.text, _unrotate(ln.bbox, rendered.skew, image.size)] for ln in out.lines
                ],
                "confidence": out.confidence,
            }
        )
    return {"load_s": load_s, "pages": results, "peak_rss_mb": _peak_rss_mb()}


def _unrotate(box: tuple[int, int, int, int], angle: float, size: tuple[int, int]) -> list[int]:
    """A box found on the deskewed page, back in the scan's frame (for ``aligned_cer``)."""
    import cv2
    import numpy as np

    if abs(angle) < 1e-6:
        return list(box)
    x0, y0, x1, y1 = box
    matrix = cv2.getRotationMatrix2D((size[0] / 2, size[1] / 2), -angle, 1.0)
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], dtype=np.float64)
    moved = corners @ matrix.T
    lo, hi = moved.min(axis=0), moved.max(axis=0)
    return [int(lo[0]), int(lo[1]), int(hi[0] + 0.999), int(hi[1] + 0.999)]


def run_tesseract_cli(pages: list[dict[str, Any]]) -> dict[str, Any]:
    """``tesseract img.png - -l vie tsv``, one process per page."""
    results = []
    for page in pages:
        started = time.perf_counter()
        proc = subprocess.run(
            ["tesseract", page["path"], "-", "-l", "vie", "tsv"],
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = time.perf_counter() - started
        lines: dict[tuple[str, ...], list[tuple[str, list[int]]]] = {}
        for row in proc.stdout.splitlines()[1:]:
            cols = row.split("\t")
            if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
                continue
            key = tuple(cols[1:5])
            x, y, w, h = (int(v) for v in cols[6:10])
            lines.setdefault(key, []).append((cols[11], [x, y, x + w, y + h]))
        text = "\n".join(" ".join(w for w, _ in words) for words in lines.values())
        words = [[w, box] for ws in lines.values() for w, box in ws]
        results.append({"name": page["name"], "seconds": seconds, "text": text, "words": words})
    return {"load_s": 0.0, "pages": results, "peak_rss_mb": _peak_rss_mb(children=True)}


def run_ocrmypdf(pages: list[dict[str, Any]], workdir: Path) -> dict[str, Any]:
    """OCRmyPDF with deskew and page rotation, one multi-page PDF per subset."""
    import img2pdf
    import pymupdf

    results = []
    for degraded in (False, True):
        subset = [p for p in pages if p["degraded"] == degraded]
        if not subset:
            continue
        source = workdir / f"ocrmypdf-in-{int(degraded)}.pdf"
        target = workdir / f"ocrmypdf-out-{int(degraded)}.pdf"
        source.write_bytes(img2pdf.convert([p["path"] for p in subset]))
        started = time.perf_counter()
        subprocess.run(
            [
                shutil.which("ocrmypdf") or str(Path(sys.executable).parent / "ocrmypdf"),
                "--deskew",
                "--rotate-pages",
                "-l",
                "vie",
                "--jobs",
                "2",
                "--output-type",
                "pdf",
                "--quiet",
                str(source),
                str(target),
            ],
            check=True,
        )
        per_page = (time.perf_counter() - started) / len(subset)
        with pymupdf.open(target) as doc:
            for page, pdf_page in zip(subset, doc, strict=True):
                scale = DPI / 72
                words = [
                    [
                        w[4],
                        [
                            round(w[0] * scale),
                            round(w[1] * scale),
                            round(w[2] * scale),
                            round(w[3] * scale),
                        ],
                    ]
                    for w in pdf_page.get_text("words")
                ]
                results.append(
                    {
                        "name": page["name"],
                        "seconds": per_page,
                        "text": pdf_page.get_text("text"),
                        "words": words,
                    }
                )
    return {"load_s": 0.0, "pages": results, "peak_rss_mb": _peak_rss_mb(children=True)}


# -- parent ---------------------------------------------------------------------------------


def score(pages: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    """Length-weighted CERs and timings, per subset (clean, degraded, all).

    Every CER but ``cer_raw`` applies the leader policy (``fixtures.metrics.strip_leaders``)
    to the truth and to the engine's text alike, and is weighted by the stripped truth's length.
    """
    from fixtures.metrics import aligned_cer, cer, cer_no_diacritics, normalize, strip_leaders

    by_name = {p["name"]: p for p in pages}
    rows = []
    for result in run["pages"]:
        page = by_name[result["name"]]
        hyp = result["text"]
        bare = strip_leaders(hyp)
        column, row = strip_leaders(page["text"]), strip_leaders(page["row_text"])
        ref_lines = [(strip_leaders(t), tuple(b)) for t, b in page["lines"]]
        words = [(strip_leaders(t), tuple(b)) for t, b in result["words"]]
        rows.append(
            {
                "name": page["name"],
                "degraded": page["degraded"],
                "chars": len(normalize(column)),
                "chars_raw": len(normalize(page["text"])),
                "cer_column_order": cer(column, bare),
                "cer_row_order": cer(row, bare),
                "cer_nd": min(cer_no_diacritics(column, bare), cer_no_diacritics(row, bare)),
                "aligned_cer": aligned_cer(ref_lines, words),
                "cer_raw": min(cer(page["text"], hyp), cer(page["row_text"], hyp)),
                "seconds": result["seconds"],
                "text": hyp,
            }
        )
    summary: dict[str, Any] = {}
    for subset, keep in (("clean", False), ("degraded", True), ("all", None)):
        chosen = [r for r in rows if keep is None or r["degraded"] == keep]
        if not chosen:
            continue

        def weighted(
            key: str, chars: str = "chars", chosen: list[dict[str, Any]] = chosen
        ) -> float:
            return sum(r[key] * r[chars] for r in chosen) / max(1, sum(r[chars] for r in chosen))

        for r in chosen:
            r["cer"] = min(r["cer_column_order"], r["cer_row_order"])
        summary[subset] = {
            "pages": len(chosen),
            "cer": weighted("cer"),
            "cer_column_order": weighted("cer_column_order"),
            "cer_row_order": weighted("cer_row_order"),
            "cer_no_diacritics": weighted("cer_nd"),
            "aligned_cer": weighted("aligned_cer"),
            "cer_raw": weighted("cer_raw", "chars_raw"),
            "s_per_page": sum(r["seconds"] for r in chosen) / len(chosen),
        }
    return {
        "summary": summary,
        "load_s": run["load_s"],
        "peak_rss_mb": run["peak_rss_mb"],
        "pages": rows,
    }


def _child(kind: str, manifest: Path, out: Path) -> None:
    pages = json.loads(manifest.read_text(encoding="utf-8"))
    if kind == "tesseract-cli":
        result = run_tesseract_cli(pages)
    elif kind == "ocrmypdf":
        result = run_ocrmypdf(pages, out.parent)
    else:
        result = run_engine(kind, pages)
    out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=15, help="pages per subset (clean/degraded)")
    parser.add_argument("--engines", default=",".join(DEFAULT_ENGINES))
    parser.add_argument("--refs", default=",".join(DEFAULT_REFS))
    parser.add_argument("--json-out", type=Path, default=ROOT / "bench/results/ocr.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.manifest, args.out)
        return 0

    kinds = [k for k in args.engines.split(",") + args.refs.split(",") if k]
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "set": {"split": "heldout", "seeds": args.seeds, "dpi": DPI},
        "engines": {},
    }
    with tempfile.TemporaryDirectory(prefix="sohoa-bench-ocr-") as tmp:
        work = Path(tmp)
        pages = build_pages(args.seeds, work)
        manifest = work / "pages.json"
        manifest.write_text(json.dumps(pages, ensure_ascii=False), encoding="utf-8")
        report["set"]["pages"] = len(pages)
        report["set"]["templates"] = sorted({f"{p['template']}#{p['wording']}" for p in pages})
        report["set"]["fonts"] = sorted({p["font"] for p in pages})
        for kind in kinds:
            out = work / f"{kind}.json"
            cmd = [
                sys.executable,
                "-m",
                "bench.ocr",
                "--child",
                kind,
                "--manifest",
                str(manifest),
                "--out",
                str(out),
            ]
            print(f"running {kind} on {len(pages)} pages ...", file=sys.stderr, flush=True)
            proc = subprocess.run(cmd, cwd=ROOT, check=False)
            if proc.returncode != 0 or not out.exists():
                report["engines"][kind] = {"error": f"exit {proc.returncode}"}
                continue
            report["engines"][kind] = score(pages, json.loads(out.read_text(encoding="utf-8")))
    print_table(report)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


def print_table(report: dict[str, Any]) -> None:
    """Markdown table: one row per engine and subset."""
    print(
        "| engine | subset | CER | CER col order | CER row order | CER no diacritics "
        "| aligned CER | CER raw (leaders kept) | s/page | load s | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, result in report["engines"].items():
        if "error" in result:
            print(f"| {name} | - | {result['error']} |  |  |  |  |  |  |  |")
            continue
        for subset in ("clean", "degraded"):
            s = result["summary"].get(subset)
            if not s:
                continue
            print(
                f"| {name} | {subset} | {s['cer']:.2%} | {s['cer_column_order']:.2%} "
                f"| {s['cer_row_order']:.2%} | {s['cer_no_diacritics']:.2%} "
                f"| {s['aligned_cer']:.2%} | {s['cer_raw']:.2%} "
                f"| {s['s_per_page']:.2f} | {result['load_s']:.1f} "
                f"| {result['peak_rss_mb']:.0f} |"
            )


if __name__ == "__main__":
    sys.exit(main())
