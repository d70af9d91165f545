"""Fixtures: apps built from the factory on temporary image roots and cache dirs, and
images the tests encode themselves with OpenCV."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from proxy import create_app
from proxy.settings import Settings

from .images import encode, photo, quadrants


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    (root / "photo.jpg").write_bytes(encode(photo(600, 400), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 92))
    (root / "quadrants.png").write_bytes(encode(quadrants(300, 200), ".png"))
    alpha = np.zeros((200, 300, 4), np.uint8)
    alpha[..., :3] = (0, 0, 255)  # red
    alpha[:, 150:, 3] = 255  # left half transparent, right half opaque
    (root / "alpha.png").write_bytes(encode(alpha, ".png"))
    (root / "nested").mkdir()
    (root / "nested" / "deep.webp").write_bytes(encode(photo(320, 240), ".webp"))
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_bytes(b"this is not an image\n" * 10)
    return root


@pytest.fixture
def settings(image_root: Path, tmp_path: Path) -> Settings:
    return Settings(image_root=image_root, cache_dir=tmp_path / "cache", max_age=3600)


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        yield client
