"""Near-duplicate fingerprints: the vectorised MinHash is the exact universal hash."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest

from digitizer.pipeline import fingerprint as fp
from fixtures import generator

M = fp._MASK


@pytest.mark.smoke
def test_universal_hashes_are_exact_mod_the_mersenne_prime() -> None:
    """Every (a * h + b) mod (2**61 - 1), edge values of h included, equals Python's
    arbitrary-precision result (stored fingerprints must stay comparable)."""
    rng = random.Random(61)
    edges = [0, 1, M - 1, M, M + 1, 2**61, 2**62, 2**63, 2**64 - 1, 2**64 - 2, 7 * 2**61 + M - 1]
    values = edges + [rng.getrandbits(64) for _ in range(2000)]
    got = fp._universal_hashes(np.array(values, dtype=np.uint64))
    for row, (a, b) in enumerate(fp._COEFFS):
        assert [int(v) for v in got[row]] == [(a * h + b) % M for h in values], row


def _reference(text: str) -> dict[str, object] | None:
    norm = fp._normalise(text)
    if len(norm) < 50:
        return None
    shingles = {norm[i : i + fp.SHINGLE] for i in range(len(norm) - fp.SHINGLE + 1)}
    hashed = [
        int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big") for s in shingles
    ]
    minhash = [min((a * h + b) % M for h in hashed) for a, b in fp._COEFFS]
    return {"minhash": minhash, "numbers": sorted(set(fp._NUMBER.findall(norm)))}


@pytest.mark.smoke
@pytest.mark.parametrize("seed", [93001, 93002, 93003])
def test_fingerprint_matches_the_plain_definition(seed: int) -> None:
    text = generator.generate_page(seed).text
    found = fp.fingerprint(text)
    assert found is not None
    assert found.to_dict() == _reference(text)
    assert fp.similarity(found, fp.Fingerprint.from_dict(found.to_dict())) == 1.0


def test_short_text_has_no_fingerprint() -> None:
    assert fp.fingerprint("Số 12") is None
