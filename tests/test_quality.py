"""q=auto (pipeline/quality.py): the lowest quality whose encoding keeps SSIM TARGET against the
result's own pixels, found by bisection; lossless outputs are left as they are."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from flask.testing import FlaskClient

from proxy.formats import FORMATS
from proxy.limits import Limits
from proxy.params import ImageParams
from proxy.pipeline import encode, render
from proxy.pipeline.quality import HIGHEST, LOWEST, TARGET, decoded_luma, luma, perceptual, ssim

from .support.images import encode as encoded_file
from .support.images import photo


def test_ssim_is_one_for_the_same_picture_and_falls_with_damage() -> None:
    picture = luma(photo(200, 150))
    assert ssim(picture, picture) == pytest.approx(1.0)
    noisy = np.clip(picture + np.random.default_rng(1).normal(0, 12, picture.shape), 0, 255).astype(
        np.float32
    )
    assert 0.2 < ssim(picture, noisy) < 0.9


def smooth(width: int, height: int, seed: int) -> np.ndarray:
    """Colour fields without per-pixel noise: a picture some quality below 90 keeps."""
    rng = np.random.default_rng(seed)
    fields = rng.integers(0, 256, (height // 40 + 2, width // 40 + 2, 3), dtype=np.uint8)
    return cv2.resize(fields, (width, height), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_auto_picks_the_lowest_quality_that_looks_the_same(fmt: str) -> None:
    pixels = smooth(400, 300, seed=5)
    output = FORMATS[fmt]
    quality, data = perceptual(pixels, output, Limits())
    assert LOWEST <= quality <= HIGHEST and data == encode(pixels, output, quality)

    def score(q: int) -> float:
        seen = decoded_luma(encode(pixels, output, q), output)
        assert seen is not None
        return ssim(luma(pixels), seen)

    assert quality < HIGHEST and score(quality) >= TARGET
    assert quality == LOWEST or score(quality - 1) < TARGET  # bisection: the lowest passing (monotone here)


def test_a_picture_no_quality_keeps_gets_the_highest() -> None:
    grainy = photo(400, 300, seed=5)  # a sensor's noise in every pixel: JPEG keeps none of it
    quality, data = perceptual(grainy, FORMATS["jpeg"], Limits())
    assert quality == HIGHEST and data == encode(grainy, FORMATS["jpeg"], HIGHEST)


def test_auto_saves_bytes_on_a_photo_and_leaves_png_alone(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    path.write_bytes(encoded_file(smooth(1200, 800, seed=2), ".png"))
    fixed = render(str(path), ImageParams(width=400), FORMATS["jpeg"]).data
    auto = render(str(path), ImageParams(width=400, auto_quality=True), FORMATS["jpeg"]).data
    assert len(auto) < len(fixed)
    lossless = render(str(path), ImageParams(width=400, auto_quality=True), FORMATS["png"]).data
    assert lossless == render(str(path), ImageParams(width=400), FORMATS["png"]).data


def test_q_auto_over_http_is_its_own_variant(client: FlaskClient) -> None:
    auto = client.get("/image/photo.jpg?w=300&q=auto")
    fixed = client.get("/image/photo.jpg?w=300")
    assert auto.status_code == 200 and auto.headers["ETag"] != fixed.headers["ETag"]
    assert cv2.imdecode(np.frombuffer(auto.data, np.uint8), cv2.IMREAD_COLOR).shape[1] == 300
    bad = client.get("/image/photo.jpg?q=high")
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "q"


def test_auto_quality_then_a_budget(client: FlaskClient) -> None:
    auto = client.get("/image/photo.jpg?w=300&q=auto")
    budget = len(auto.data) // 2
    both = client.get(f"/image/photo.jpg?w=300&q=auto&maxbytes={budget}")
    assert both.status_code == 200 and len(both.data) <= budget
