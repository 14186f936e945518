"""Dotted form leaders ("Họ và tên: ..........") taken off a page image before OCR.

Blank and filled forms draw a row of dots where the citizen writes. Tesseract reads such a row as
dots, dashes and letters ("......- ---‹-«<s+2"), and the dots beside a label spoil the label
itself ("Giới tÍnh"). They carry no words: they are erased from the image (painted with the
paper's grey) before recognition, so the text holds the labels and what was written on the
dots, and nothing for the dots themselves. The benchmark's ground-truth policy matches this:
``fixtures.metrics.strip_leaders`` removes leader runs from the truth and from every engine's
text alike.

A leader is a run of at least :data:`MIN_DOTS` small blobs (each at most :data:`MAX_DOT` of the
page's median glyph height across) on one baseline, each within :data:`MAX_PITCH` glyph heights
of the next. Diacritics (the dot of ``ị``, ``ọ``, ``ạ``) are as small, but one word or more apart,
and a sentence's full stop or an ellipsis has fewer dots.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

#: Dots in a row that make a leader (an ellipsis has three).
MIN_DOTS = 5
#: A dot is at most this share of the median glyph height wide and tall.
MAX_DOT = 0.4
#: Consecutive dots are at most this many glyph heights apart (centre to centre).
MAX_PITCH = 1.0
#: A leader's dots keep to one baseline: within this share of the glyph height.
BASELINE_TOLERANCE = 0.3


def _glyph_height(
    heights: np.ndarray, widths: np.ndarray, areas: np.ndarray, page: tuple[int, int]
) -> float | None:
    """Typical letter height: the area-weighted median height of the blobs that are neither
    specks nor rules nor pictures (weighted, so that hundreds of leader dots do not count as the
    typical glyph of a blank form)."""
    letters = (areas >= 12) & (heights >= 6) & (heights <= page[0] / 10) & (widths <= page[1] / 10)
    letters &= widths <= 4 * heights
    if np.count_nonzero(letters) < 20:
        return None
    order = np.argsort(heights[letters])
    cumulative = np.cumsum(areas[letters][order])
    middle = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    return float(heights[letters][order][middle])


def find_leaders(gray: np.ndarray) -> np.ndarray | None:
    """Mask (uint8, 1 = leader ink) of the dotted leaders of a grayscale page; None if none."""
    if gray.size == 0 or min(gray.shape) < 16:
        return None
    _, ink = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if count < MIN_DOTS + 1:
        return None
    widths = stats[1:, cv2.CC_STAT_WIDTH]
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    areas = stats[1:, cv2.CC_STAT_AREA]
    glyph = _glyph_height(heights, widths, areas, gray.shape)
    if glyph is None:
        return None
    limit = max(2.0, MAX_DOT * glyph)
    small = (widths <= limit) & (heights <= limit) & (areas >= 2)
    small &= (2 * widths <= 3 * heights) & (2 * heights <= 3 * widths)  # round, not a comma
    dots = np.flatnonzero(small)
    if dots.size < MIN_DOTS:
        return None
    # Join neighbouring dots into runs: two dots are in one run when a chain of dots links
    # them, each within ``pitch`` across and ``band`` up or down of the next (what dilating
    # each centre by a ``band`` x ``pitch`` bar and labelling the bars 8-connected would
    # give, at a fraction of a full-page pass).
    pitch = round(MAX_PITCH * glyph)
    band = max(1, round(BASELINE_TOLERANCE * glyph / 2))
    cx = np.clip(np.rint(centroids[1:, 0][dots]).astype(int), 0, gray.shape[1] - 1)
    cy = np.clip(np.rint(centroids[1:, 1][dots]).astype(int), 0, gray.shape[0] - 1)
    run_of = _runs(cx, cy, pitch, band)
    in_leader = (np.bincount(run_of) >= MIN_DOTS)[run_of]
    # The lower dot of a colon ends the label beside a leader: a dot with another dot above it
    # (within a glyph height) is punctuation, not part of the leader.
    centres = np.zeros(gray.shape, np.uint8)
    centres[cy, cx] = 1
    reach, half = max(2, round(glyph)), max(1, round(limit / 2))
    for index in np.flatnonzero(in_leader):
        x, y = int(cx[index]), int(cy[index])
        above = centres[max(0, y - reach) : max(0, y - band), max(0, x - half) : x + half + 1]
        if above.any():
            in_leader[index] = False
    chosen = dots[in_leader] + 1
    if chosen.size == 0:
        return None
    # Paint each chosen dot's own pixels, box by box (a lookup over the whole label image
    # costs as much as the labelling).
    mask = np.zeros(gray.shape, np.uint8)
    for label in chosen.tolist():
        x, y, w, h = (int(v) for v in stats[label, :4])
        mask[y : y + h, x : x + w] |= labels[y : y + h, x : x + w] == label
    return mask


def _runs(cx: np.ndarray, cy: np.ndarray, pitch: int, band: int) -> np.ndarray:
    """Run number of each point: points linked by chains of neighbours within ``pitch``
    across and ``band`` up or down (Chebyshev distance on coordinates scaled so both
    limits are one integer, compared exactly)."""
    points = np.column_stack((cx * band, cy * pitch)).astype(np.float64)
    pairs = cKDTree(points).query_pairs(r=float(pitch * band), p=np.inf, output_type="ndarray")
    n = len(cx)
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, run_of = connected_components(graph, directed=False)
    return np.asarray(run_of)


def erase_leaders(image: Image.Image) -> Image.Image:
    """``image`` (grayscale) with its dotted leaders painted over in the paper's grey.

    Returns the same object when the page has no leader, so callers pay one pass only.
    """
    gray = np.asarray(image if image.mode == "L" else image.convert("L"))
    mask = find_leaders(gray)
    if mask is None:
        return image
    # A blurred dot has a halo the threshold left out: grow the mask by a pixel or two.
    grown = cv2.dilate(mask, np.ones((5, 5), np.uint8)).astype(bool)
    paper = np.median(gray[::8, ::8])
    cleaned = gray.copy()
    cleaned[grown] = paper
    return Image.fromarray(cleaned, "L")
