"""maxbytes (pipeline/budget.py): the answer fits the budget, at the highest quality that does,
then at the largest size; what cannot fit is a 422 naming maxbytes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from flask.testing import FlaskClient

from proxy.formats import FORMATS
from proxy.params import ImageParams
from proxy.pipeline import render
from proxy.pipeline.budget import FLOOR, highest

from .support.images import animation, decode, encode, photo


def size_at(path: str, fmt: str, **params: object) -> bytes:
    return render(path, ImageParams(**params), FORMATS[fmt]).data  # type: ignore[arg-type]


@pytest.fixture
def picture(tmp_path: Path) -> str:
    path = tmp_path / "p.jpg"
    path.write_bytes(encode(photo(800, 600, seed=3), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95))
    return str(path)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_the_quality_is_lowered_first_to_the_highest_that_fits(picture: str, fmt: str) -> None:
    full = size_at(picture, fmt, width=400)
    floor = size_at(picture, fmt, width=400, quality=FLOOR)
    budget = (len(full) + len(floor)) // 2
    fitted = size_at(picture, fmt, width=400, maxbytes=budget)
    assert len(fitted) <= budget and decode(fitted).shape[1] == 400  # the size kept
    qualities = [q for q in range(FLOOR, 83) if len(size_at(picture, fmt, width=400, quality=q)) <= budget]
    assert fitted == size_at(picture, fmt, width=400, quality=max(qualities))  # the highest that fits


def test_then_the_size_is_reduced(picture: str) -> None:
    floor = size_at(picture, "jpeg", width=400, quality=FLOOR)
    fitted = size_at(picture, "jpeg", width=400, maxbytes=len(floor) // 3)
    assert len(fitted) <= len(floor) // 3
    width = decode(fitted).shape[1]
    assert 100 < width < 400  # smaller, not a postage stamp


def test_png_only_shrinks(picture: str) -> None:
    full = size_at(picture, "png", width=300)
    fitted = size_at(picture, "png", width=300, maxbytes=len(full) // 2)
    assert len(fitted) <= len(full) // 2 and decode(fitted).shape[1] < 300


def test_a_budget_that_nothing_fits_is_a_422_naming_maxbytes(client: FlaskClient) -> None:
    answer = client.get("/image/photo.jpg?fmt=png&maxbytes=100")
    assert answer.status_code == 422 and answer.get_json()["error"].startswith("maxbytes:")
    assert "no-store" in answer.headers["Cache-Control"]
    bad = client.get("/image/photo.jpg?maxbytes=99")
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "maxbytes"


def test_an_answer_already_within_the_budget_is_the_plain_one(client: FlaskClient) -> None:
    plain = client.get("/image/photo.jpg?w=200")
    budgeted = client.get(f"/image/photo.jpg?w=200&maxbytes={len(plain.data) + 1}")
    assert budgeted.data == plain.data and budgeted.headers["ETag"] != plain.headers["ETag"]  # another URL


def test_animations_lower_their_quality(tmp_path: Path) -> None:
    frames = [photo(160, 120, seed=i) for i in range(3)]
    path = tmp_path / "a.webp"
    path.write_bytes(animation(".webp", frames))
    full = size_at(str(path), "webp", quality=95)
    fitted = size_at(str(path), "webp", quality=95, maxbytes=len(full) * 2 // 3)
    ok, result = cv2.imdecodeanimation(np.frombuffer(fitted, np.uint8))
    assert ok and len(result.frames) == 3 and len(fitted) <= len(full) * 2 // 3


def test_highest_bisects_for_the_highest_quality_that_fits() -> None:
    asked: list[int] = []

    def encoded(q: int) -> bytes:
        asked.append(q)
        return b"x" * q

    assert highest(encoded, 30, 82, 57) == b"x" * 57 and len(asked) <= 6
    assert highest(encoded, 30, 82, 10) is None
