"""Content-aware crops on generated scenes with one clear subject: is the subject kept?"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from proxy.gravity import window
from proxy.params import ImageParams
from proxy.pipeline import render

from .support.images import decode, encode, subject_scene

SCENES = range(40)
BOX = 100  # a square window a third of the scenes' long side, once resized to 300x100


def window_of(path: str, gravity: str) -> tuple[int, int]:
    """Where the rendered crop sits within the whole resized scene, found by matching its pixels."""
    crop = decode(render(path, ImageParams(width=BOX, height=BOX, fit="cover", gravity=gravity), "png").data)
    assert crop.shape == (BOX, BOX, 3)
    whole = decode(render(path, ImageParams(width=300, height=300), "png").data)
    scores = cv2.matchTemplate(whole, crop, cv2.TM_SQDIFF)
    _, _, (x, y), _ = cv2.minMaxLoc(scores)
    return x, y


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, tuple[float, float]]]:
    folder = tmp_path_factory.mktemp("scenes")
    made = []
    for seed in SCENES:
        image, (x, y) = subject_scene(seed)
        path = folder / f"{seed}.png"
        path.write_bytes(encode(image, ".png"))
        made.append((str(path), (x / 2, y / 2)))  # the subject's centre once resized by half
    return made


def hit_rate(scenes: list[tuple[str, tuple[float, float]]], gravity: str) -> float:
    hits = 0
    for path, (cx, cy) in scenes:
        x, y = window_of(path, gravity)
        hits += x <= cx < x + BOX and y <= cy < y + BOX
    return hits / len(scenes)


@pytest.mark.slow
def test_content_aware_crops_keep_the_subject(scenes: list[tuple[str, tuple[float, float]]]) -> None:
    """The issue's bar: attention >= 90%, entropy >= 80%, both well above the centre's chance."""
    rates = {gravity: hit_rate(scenes, gravity) for gravity in ("center", "entropy", "attention")}
    assert rates["attention"] >= 0.9, rates
    assert rates["entropy"] >= 0.8, rates
    assert rates["center"] < 0.5, rates  # the scenes do put subjects off centre
    assert min(rates["attention"], rates["entropy"]) > rates["center"] + 0.3, rates


def test_a_flat_image_keeps_the_centre() -> None:
    flat = np.full((100, 300, 3), 90, np.uint8)
    assert window(flat, (100, 100), "entropy") == (100, 0)
    assert window(flat, (100, 100), "attention") == (100, 0)


def test_grey_and_alpha_images_are_searched_too() -> None:
    grey = np.full((300, 100), 200, np.uint8)
    grey[230:260, 40:70] = np.random.default_rng(1).integers(0, 255, (30, 30), dtype=np.uint8)
    for how in ("entropy", "attention"):
        x, y = window(grey, (100, 100), how)
        assert x == 0 and y <= 230 and y + 100 >= 260, how
    rgba = cv2.cvtColor(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), cv2.COLOR_BGR2BGRA)
    assert window(rgba, (100, 100), "attention") == window(grey, (100, 100), "attention")


def test_an_animation_keeps_one_window_found_in_its_first_frame(tmp_path: Path) -> None:
    """Frame 0 has the subject on the right; later frames on the left. Every output frame is cut at
    the same place, so the picture does not jump about: the subject leaves the window."""
    frames = []
    for seed, x in enumerate((250, 50, 60)):
        scene = np.full((100, 300, 3), 120, np.uint8)
        scene[30:70, x - 20 : x + 20] = np.random.default_rng(seed).integers(
            0, 255, (40, 40, 3), dtype=np.uint8
        )
        frames.append(Image.fromarray(scene))
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    path = tmp_path / "moving.webp"
    path.write_bytes(buffer.getvalue())
    rendered = render(str(path), ImageParams(width=100, height=100, fit="cover", gravity="attention"), "webp")
    ok, animation = cv2.imdecodeanimation(np.frombuffer(rendered.data, np.uint8))
    assert ok and sum(animation.durations) == 300  # the two plain frames may be merged into one
    spread = [float(frame[..., :3].std()) for frame in animation.frames]
    assert spread[0] > 10 and len(spread) > 1 and max(spread[1:]) < 5, spread
