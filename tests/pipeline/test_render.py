"""Skew estimation and deskew on generated pages turned by known angles."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from digitizer.pipeline import render
from fixtures import generator


def _page(seed: int) -> Image.Image:
    page = generator.generate_page(seed)
    image: Image.Image = page.image if hasattr(page, "image") else page[0]
    return image.convert("L")


@pytest.mark.smoke
@pytest.mark.parametrize(("seed", "turn"), [(9101, 3.0), (9102, -2.0), (9103, 4.5), (9104, 0.0)])
def test_skew_is_measured_and_removed(seed: int, turn: float) -> None:
    turned = _page(seed).rotate(turn, resample=Image.Resampling.BILINEAR, fillcolor=255)
    measured = render.estimate_skew(np.asarray(turned))
    assert abs(abs(measured) - abs(turn)) <= 0.2, measured
    fixed = render.deskew(render.RenderedPage(turned, 300))
    assert abs(render.estimate_skew(np.asarray(fixed.image))) <= 0.2
    if turn == 0.0:
        assert fixed.image is turned  # nothing to do, nothing done
