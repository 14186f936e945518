"""Text fingerprints for near-duplicates: the same paper scanned twice.

Two scans of one document differ in bytes (and so in SHA-256) but not in text,
up to OCR noise. A MinHash of character 5-grams estimates the text overlap; the
numbers on the page (document number, dates, identification numbers) must match
too, because two documents of the same template share most of their words.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

PERMUTATIONS = 64
SHINGLE = 5
_MASK = (1 << 61) - 1  # Mersenne prime for the universal hash family
_NUMBER = re.compile(r"\d{2,}")
_SPACE = re.compile(r"\s+")

# Fixed random coefficients (derived from a constant seed, stable across processes).
_COEFFS = [
    (
        int.from_bytes(hashlib.blake2b(f"a{i}".encode(), digest_size=8).digest(), "big") % _MASK
        | 1,
        int.from_bytes(hashlib.blake2b(f"b{i}".encode(), digest_size=8).digest(), "big") % _MASK,
    )
    for i in range(PERMUTATIONS)
]


@dataclass(frozen=True)
class Fingerprint:
    """MinHash signature and the numbers of a text."""

    minhash: tuple[int, ...]
    numbers: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        return {"minhash": list(self.minhash), "numbers": sorted(self.numbers)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        return cls(tuple(int(v) for v in data["minhash"]), frozenset(data["numbers"]))


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text).lower()).strip()


def fingerprint(text: str) -> Fingerprint | None:
    """The fingerprint of a text, or None when there is too little text to judge."""
    norm = _normalise(text)
    if len(norm) < 50:
        return None
    shingles = {norm[i : i + SHINGLE] for i in range(len(norm) - SHINGLE + 1)}
    hashed = [
        int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big") for s in shingles
    ]
    signature = tuple(min((a * h + b) % _MASK for h in hashed) for a, b in _COEFFS)
    return Fingerprint(signature, frozenset(_NUMBER.findall(norm)))


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """Estimated text overlap (Jaccard of 5-grams), capped by the overlap of numbers."""
    text = sum(1 for x, y in zip(a.minhash, b.minhash, strict=True) if x == y) / PERMUTATIONS
    if a.numbers or b.numbers:
        numbers = len(a.numbers & b.numbers) / len(a.numbers | b.numbers)
        return min(text, numbers)
    return text
