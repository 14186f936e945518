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

import numpy as np

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
_A = np.array([a for a, _ in _COEFFS], dtype=np.uint64)[:, None]
_B = np.array([b for _, b in _COEFFS], dtype=np.uint64)[:, None]
_M = np.uint64(_MASK)
_LOW32 = np.uint64(0xFFFFFFFF)


def _mod_m(x: np.ndarray) -> np.ndarray:
    """``x mod (2**61 - 1)`` for values below 2**64 (2**61 = 1 mod M)."""
    x = (x >> np.uint64(61)) + (x & _M)
    return np.where(x >= _M, x - _M, x)


def _universal_hashes(hashed: np.ndarray) -> np.ndarray:
    """``(a * h + b) mod (2**61 - 1)`` for every coefficient pair (rows) and 64-bit value
    (columns), exactly, in 64-bit arithmetic: ``h`` reduced first, then the product from
    32-bit halves (``2**64 = 8``, ``2**61 = 1`` mod M), no term above 2**63."""
    r = _mod_m(hashed)[None, :]
    a1, a0 = _A >> np.uint64(32), _A & _LOW32
    r1, r0 = r >> np.uint64(32), r & _LOW32
    high = np.uint64(8) * (a1 * r1)  # a1 * r1 * 2**64: below 2**61
    mid = a1 * r0 + a0 * r1  # below 2**62; times 2**32:
    mid = (mid >> np.uint64(29)) + ((mid & np.uint64((1 << 29) - 1)) << np.uint64(32))
    low = _mod_m(a0 * r0)  # below 2**64 before reduction
    return _mod_m(_mod_m(high + mid + low) + _B)


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
    hashed = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big")
            for s in shingles
        ),
        dtype=np.uint64,
        count=len(shingles),
    )
    # The MinHash: per coefficient pair, the least (a * h + b) mod M over the shingles.
    signature = tuple(int(v) for v in _universal_hashes(hashed).min(axis=1))
    return Fingerprint(signature, frozenset(_NUMBER.findall(norm)))


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """Estimated text overlap (Jaccard of 5-grams), capped by the overlap of numbers."""
    text = sum(1 for x, y in zip(a.minhash, b.minhash, strict=True) if x == y) / PERMUTATIONS
    if a.numbers or b.numbers:
        numbers = len(a.numbers & b.numbers) / len(a.numbers | b.numbers)
        return min(text, numbers)
    return text
