"""Dotted form leaders are erased before OCR; letters, diacritics and punctuation stay."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from digitizer.pipeline.ocr import leaders
from fixtures import generator
from fixtures.generator import FONTS

# Training-split font (the benchmark evaluates on held-out fonts).
FONT = "dejavu-sans" if "dejavu-sans" in FONTS else sorted(FONTS)[0]


def _draw(lines: list[str], size: int = 40) -> Image.Image:
    """Lines of text at 300 dpi-ish size, black on white."""
    from fixtures.generator import _font

    image = Image.new("L", (2000, 120 + 90 * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    font = _font(FONT, "regular", size)
    for i, text in enumerate(lines):
        draw.text((60, 100 + 90 * i), text, font=font, fill=0, anchor="ls")
    return image


def _ink(image: Image.Image) -> np.ndarray:
    return np.asarray(image) < 128


def test_leader_dots_go_and_the_label_with_its_colon_stays() -> None:
    title = "TỜ KHAI THAY ĐỔI THÔNG TIN CƯ TRÚ của công dân"
    label = _draw([title, "Họ và tên:"])
    page = _draw([title, "Họ và tên: " + "." * 40])
    cleaned = leaders.erase_leaders(page)
    ink = _ink(cleaned)
    # Exactly the label's ink is left (the colon's lower dot is punctuation, not a leader).
    assert np.array_equal(ink, _ink(label))


def test_text_with_dots_is_left_alone() -> None:
    # Dots below letters (ị ọ ạ ậ), i's dots, full stops, an ellipsis, a dotted number.
    page = _draw(
        [
            "Nghị định số 123/2025/NĐ-CP ngày 01.02.2025 của Chính phủ...",
            "Độc lập - Tự do - Hạnh phúc. Hiện nay, việc thực hiện ị ị ị ọ ọ.",
            "Vốn điều lệ: 7.000.000.000 đồng; mục I.1.2.3 và hiện./.",
        ]
    )
    assert leaders.erase_leaders(page) is page


def test_generated_form_loses_its_leaders_only() -> None:
    # A blank declaration form (training wording), clean and degraded.
    for degraded in (False, True):
        page = generator.generate_page(3, "to-khai", FONT, degraded=degraded, wording=0)
        gray = np.asarray(page.image)
        mask = leaders.find_leaders(gray)
        assert mask is not None
        dotted = [ln for ln in page.lines if "....." in ln.text]
        assert dotted
        # Every erased pixel lies on a line that has a leader in the truth.
        ys = np.flatnonzero(mask.any(axis=1))
        for y in ys:
            assert any(ln.bbox[1] - 5 <= y <= ln.bbox[3] + 5 for ln in dotted), y
        # Most of the dotted lines lost ink.
        hit = [ln for ln in dotted if mask[ln.bbox[1] : ln.bbox[3], ln.bbox[0] : ln.bbox[2]].any()]
        assert len(hit) >= 0.9 * len(dotted)


def test_blank_and_tiny_images() -> None:
    blank = Image.new("L", (800, 1100), 255)
    assert leaders.erase_leaders(blank) is blank
    tiny = Image.new("L", (1, 1), 0)
    assert leaders.erase_leaders(tiny) is tiny


def _runs_by_dilation(cx: np.ndarray, cy: np.ndarray, pitch: int, band: int) -> list[set[int]]:
    """The runs as the definition says: each centre dilated by a band x pitch bar, the bars
    labelled 8-connected (the whole-page pass ``_runs`` replaces)."""
    import cv2

    centres = np.zeros((int(cy.max()) + 1, int(cx.max()) + 1), np.uint8)
    centres[cy, cx] = 1
    joined = cv2.dilate(centres, np.ones((band, pitch), np.uint8))
    _, run_of = cv2.connectedComponents(joined, connectivity=8)
    return _groups(run_of[cy, cx])


def _groups(run_of: np.ndarray) -> list[set[int]]:
    groups: dict[int, set[int]] = {}
    for index, run in enumerate(run_of.tolist()):
        groups.setdefault(run, set()).add(index)
    return sorted(groups.values(), key=min)


def test_runs_join_dots_as_dilated_bars_would() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 120))
        pitch, band = int(rng.integers(2, 30)), int(rng.integers(1, 6))
        # Rows of dots with jittered pitch and baseline, plus strays; duplicates allowed.
        cx = rng.integers(0, 400, n)
        cy = rng.integers(0, 60, n)
        cx[: n // 2] = np.cumsum(rng.integers(0, pitch + 3, n // 2)) % 400
        cy[: n // 2] = 30 + rng.integers(-band, band + 1, n // 2)
        got = _groups(leaders._runs(cx, cy, pitch, band))
        assert got == _runs_by_dilation(cx, cy, pitch, band)
