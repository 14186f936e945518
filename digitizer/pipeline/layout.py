"""Reading order: split lines at column gaps, read two-column blocks column by column.

Official Vietnamese documents open with two columns side by side: the issuing
office on the left, the national motto on the right. OCR engines often read
them as single lines ("ỦY BAN NHÂN DÂN  CỘNG HÒA XÃ HỘI ..."), which mixes two
texts. Lines are first split where the gap between words is far wider than a
word space; the segments are grouped into rows; where consecutive rows share a gutter that
leaves at least two segments on each side (the header, the signature block),
they are read column by column, otherwise row by row, left to right. A column block ends at a
row that spans the gutter, at a row with a form field ("Dân tộc: Kinh") right of the gutter
(fields side by side are read row by row), and at a row on the left only that follows a
blank line with nothing on the right after it (the "Kính gửi:" under the header's left
column is not part of it; the signers' names under their titles, after the room for the
signature, are).

Distances are in line heights: the median height of the segments' boxes, which for
Vietnamese includes the stacked marks above capitals (about 1.3 cap heights).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from statistics import median

#: A gap wider than this many line heights separates two segments of a line.
SPLIT_GAP = 1.0
#: Two columns start where a gutter is at least this many line heights wide (the header's
#: office name and motto can be as close as 1.1 line heights)...
MIN_GUTTER = 1.0
#: ...and go on while it stays this wide (a word space is ~0.3 line heights).
KEEP_GUTTER = 0.7
#: A form field ("Quốc tịch: Việt Nam"): a short label in sentence case and a colon. Fields side
#: by side are read row by row; a header's or signature block's right column never starts with
#: one (its titles are capitals: "TM. ỦY BAN", which a recogniser may read as "TM: ỦY BAN").
FIELD = re.compile(r"^[^:\d]{0,40}[a-zà-ỹđ][^:\d]{0,40}:(?!\d)")
#: A row left of the gutter this many line heights below the row above, with nothing right of
#: the gutter after it, is a new paragraph, not the column's continuation (lines of a column
#: are ~0.5 apart).
PARAGRAPH_GAP = 1.0


@dataclass(frozen=True)
class Word:
    """A recognised word with its box (x0, y0, x1, y1) and confidence (0-100)."""

    text: str
    bbox: tuple[int, int, int, int]
    confidence: float


@dataclass(frozen=True)
class Segment:
    """A run of words on one line, read as a unit."""

    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return (
            min(w.bbox[0] for w in self.words),
            min(w.bbox[1] for w in self.words),
            max(w.bbox[2] for w in self.words),
            max(w.bbox[3] for w in self.words),
        )

    @property
    def confidence(self) -> float:
        total = sum(len(w.text) for w in self.words) or 1
        return sum(w.confidence * len(w.text) for w in self.words) / total

    @property
    def height(self) -> int:
        return self.bbox[3] - self.bbox[1]


def split_line(words: Sequence[Word]) -> list[Segment]:
    """Split one line's words (left to right) where a gap is a column gutter."""
    if not words:
        return []
    words = sorted(words, key=lambda w: w.bbox[0])
    height = median(w.bbox[3] - w.bbox[1] for w in words) or 1
    segments: list[list[Word]] = [[words[0]]]
    for prev, word in pairwise(words):
        if word.bbox[0] - prev.bbox[2] > SPLIT_GAP * height:
            segments.append([word])
        else:
            segments[-1].append(word)
    return [Segment(tuple(s)) for s in segments]


def _gaps(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Empty stretches between the union of intervals, as (start, end)."""
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a[1], b[0]) for a, b in pairwise(merged)]


def _bands(segments: Sequence[Segment]) -> list[list[Segment]]:
    """Group segments into rows: segments whose (shrunk) vertical extents overlap."""
    bands: list[tuple[float, float, list[Segment]]] = []
    for seg in sorted(segments, key=lambda s: (s.bbox[1] + s.bbox[3]) / 2):
        _, y0, _, y1 = seg.bbox
        pad = (y1 - y0) * 0.25  # touching ascenders/descenders do not merge rows
        top, bottom = y0 + pad, y1 - pad
        if bands and top <= bands[-1][1]:
            prev_top, prev_bottom, members = bands[-1]
            members.append(seg)
            bands[-1] = (min(prev_top, top), max(prev_bottom, bottom), members)
        else:
            bands.append((top, bottom, [seg]))
    return [sorted(members, key=lambda s: s.bbox[0]) for _, _, members in bands]


def _right_follows(bands: list[list[Segment]], start: int, low: float, high: float) -> bool:
    """Whether a row from ``start`` has a segment right of the gutter before a row spans it."""
    for band in bands[start:]:
        if any(s.bbox[0] < low and s.bbox[2] > high for s in band):
            return False
        if any(s.bbox[0] >= high for s in band):
            return True
    return False


def _column_block(
    bands: list[list[Segment]], start: int, line_height: float
) -> tuple[int, tuple[float, float]] | None:
    """The longest run of bands from ``start`` that a common gutter splits into two
    columns of at least two segments each; returns (end index, gutter).

    The gutter starts as a gap of the first band and narrows as rows join (a
    wider left line, an earlier right line); a row with a segment spanning the
    whole gutter, or that would leave it too narrow, ends the run; so does a row with a form
    field right of the gutter, and a row on the left only after a blank line, unless the right
    column goes on below it.
    """
    best: tuple[int, tuple[float, float]] | None = None
    for gap in _gaps([(s.bbox[0], s.bbox[2]) for s in bands[start]]):
        if gap[1] - gap[0] < MIN_GUTTER * line_height:
            continue
        low, high = gap
        end, left, right = start, 0, 0
        while end < len(bands):
            band = bands[end]
            if any(s.bbox[0] < low and s.bbox[2] > high for s in band):
                break  # a row that spans both columns (a centred title, a paragraph)
            mid = (low + high) / 2
            lefts = [s for s in band if (s.bbox[0] + s.bbox[2]) / 2 < mid]
            rights = [s for s in band if (s.bbox[0] + s.bbox[2]) / 2 >= mid]
            if any(FIELD.match(s.text) for s in rights):
                break  # fields side by side: a form row, read left to right
            if end > start and lefts and not rights:
                above = max(s.bbox[3] for s in bands[end - 1])
                blank = min(s.bbox[1] for s in band) - above
                if blank > PARAGRAPH_GAP * line_height and not _right_follows(
                    bands, end + 1, low, high
                ):
                    break
            new_low = max([low, *(s.bbox[2] for s in lefts)])
            new_high = min([high, *(s.bbox[0] for s in rights)])
            if new_high - new_low < KEEP_GUTTER * line_height:
                break
            low, high = new_low, new_high
            left += len(lefts)
            right += len(rights)
            end += 1
        if left >= 2 and right >= 2 and (best is None or end > best[0]):
            best = (end, (low, high))
    return best


def order(segments: Sequence[Segment], line_height: float | None = None) -> list[Segment]:
    """Segments in reading order: rows top to bottom, left to right, except where
    consecutive rows form two columns (header, signature block): column by column."""
    segments = list(segments)
    if len(segments) <= 1:
        return segments
    if line_height is None:
        line_height = median(s.height for s in segments) or 1
    bands = _bands(segments)
    out: list[Segment] = []
    index = 0
    while index < len(bands):
        block = _column_block(bands, index, line_height)
        if block is None:
            out.extend(bands[index])
            index += 1
            continue
        end, gutter = block
        members = [s for band in bands[index:end] for s in band]
        out.extend(order([s for s in members if s.bbox[2] <= gutter[0]], line_height))
        out.extend(order([s for s in members if s.bbox[0] >= gutter[1]], line_height))
        index = end
    return out


def reading_order(lines: Sequence[Sequence[Word]]) -> list[Segment]:
    """Split every line at column gutters and order all segments for reading."""
    segments = [seg for line in lines for seg in split_line(line)]
    return order(segments)
