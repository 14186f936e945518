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


@pytest.mark.smoke
@pytest.mark.parametrize("orientation", [None, 1, 6, 3])
def test_exif_orientation_is_applied_once(orientation: int | None) -> None:
    """A photo whose EXIF says "turn me" is turned before reading and marked so (its
    stored pixels are not upright); any other image comes out with its pixels as they
    are."""
    import io

    from PIL import ImageOps

    stored = Image.new("L", (300, 200), 255)
    stored.paste(0, (10, 10, 60, 40))  # a mark in the top-left corner
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    stored.save(out, format="PNG", dpi=(300, 300), exif=exif.tobytes())
    [page] = list(render.iter_pages(out.getvalue(), "image"))
    assert page is not None
    turns = orientation not in (None, 1)
    assert page.exif_upright is not turns
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(out.getvalue()))) if turns else stored
    assert page.image.size == expected.size
    assert page.image.tobytes() == expected.convert("L").tobytes()
