"""Watermarks (pipeline/watermark.py, origin.py): an original or a line of text drawn over the
result, where and as large as asked, its alpha kept, and nothing else of the picture changed;
the mark's version in the key; a 400 naming a bad parameter."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from flask.testing import FlaskClient

from proxy import create_app
from proxy import origin as origin_module
from proxy.pipeline import Mark, text_mark
from proxy.pipeline.watermark import marked
from proxy.settings import Settings
from proxy.settings.parsers import parse_presets

from .support.images import animation, decode, encode, photo

RED = (0, 0, 255)


@pytest.fixture
def logo(image_root: Path) -> Path:
    """A 40x20 logo: an opaque red left half, a transparent right half."""
    pixels = np.zeros((20, 40, 4), np.uint8)
    pixels[:, :20] = (*RED, 255)
    path = image_root / "brand" / "logo.png"
    path.parent.mkdir()
    path.write_bytes(encode(pixels, ".png"))
    return path


@pytest.fixture
def grey(image_root: Path) -> str:
    (image_root / "grey.png").write_bytes(encode(np.full((100, 200, 3), 128, np.uint8), ".png"))
    return "/image/grey.png?fmt=png"


def get(client: FlaskClient, url: str) -> np.ndarray:
    answer = client.get(url)
    assert answer.status_code == 200, answer.get_json()
    return decode(answer.data)


def changed(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    """The bounding box (x, y, w, h) of the pixels that differ, or None."""
    differs = np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 2
    rows, columns = np.flatnonzero(differs.any(axis=1)), np.flatnonzero(differs.any(axis=0))
    if not len(rows):
        return None
    return int(columns[0]), int(rows[0]), int(columns[-1] - columns[0] + 1), int(rows[-1] - rows[0] + 1)


def test_a_mark_is_drawn_where_and_as_large_as_asked_and_nothing_else_changes(
    client: FlaskClient, logo: Path, grey: str
) -> None:
    plain = get(client, grey)
    result = get(client, f"{grey}&mark=brand/logo.png&mark_scale=0.5&mark_pad=10")
    # 100 px wide (half of 200), 50 high; its opaque left half is what shows: 50 x 50 of red, and
    # a column where the enlarged logo's edge fades
    box = changed(plain, result)
    assert box is not None and box[:2] == (200 - 10 - 100, 100 - 10 - 50) and box[2:] in ((50, 50), (51, 50))
    assert (result[40:90, 90:139] == RED).all()
    assert (result[40:90, 141:190] == 128).all()  # the logo's transparent half shows the picture
    edge = result[40:90, 140].astype(int)
    assert (edge[:, 2] >= 128).all() and (edge[:, :2] <= 128).all()  # red on grey: no dark fringe


@pytest.mark.parametrize(
    ("place", "corner"),
    [
        ("northwest", (0, 0)),
        ("north", (75, 0)),
        ("center", (75, 38)),
        ("southwest", (0, 75)),
        ("east", (150, 38)),
    ],
)
def test_compass_places(
    client: FlaskClient, logo: Path, grey: str, place: str, corner: tuple[int, int]
) -> None:
    result = get(client, f"{grey}&mark=brand/logo.png&mark_pos={place}")  # 50 x 25
    plain = get(client, grey)
    box = changed(plain, result)
    assert box is not None and box[:2] == corner and box[2:] in ((25, 25), (26, 25))  # and the faded edge


def test_opacity_blends_the_mark_with_the_picture(client: FlaskClient, logo: Path, grey: str) -> None:
    result = get(client, f"{grey}&mark=brand/logo.png&mark_alpha=50&mark_pos=northwest")
    assert np.abs(result[10, 10].astype(int) - (64, 64, 192)).max() <= 1  # half red, half grey


def test_tiles_cover_the_picture(client: FlaskClient, logo: Path, grey: str) -> None:
    result = get(client, f"{grey}&mark=brand/logo.png&mark_pos=tile&mark_scale=0.2&mark_pad=10")  # 40 x 20
    red = np.all(result == RED, axis=2)
    for y in range(0, 100, 30):
        for x in range(0, 200, 50):
            assert red[y + 5, x + 5], (x, y)
            assert not red[y + 5, x + 25]  # the transparent half
    assert not red[25, :].any()  # the gaps between rows


def test_a_mark_over_transparency_keeps_its_own_alpha(client: FlaskClient, logo: Path) -> None:
    result = get(client, "/image/alpha.png?fmt=png&mark=brand/logo.png&mark_pos=northwest&mark_scale=0.5")
    assert result.shape[2] == 4
    assert tuple(result[5, 5]) == (*RED, 255)  # drawn on the transparent left half: opaque red
    assert result[5, 100, 3] == 0  # the logo's transparent half leaves it transparent


def test_text_marks_are_drawn_in_white_with_a_dark_outline(client: FlaskClient, grey: str) -> None:
    plain = get(client, grey)
    result = get(client, f"{grey}&mark_text=%C2%A9%20Shop&mark_scale=0.5&mark_pad=4")
    box = changed(plain, result)
    assert box is not None
    x, y, w, h = box
    assert 192 <= x + w <= 196 and y + h <= 96 and 90 <= w <= 100  # about half the width, at the corner
    drawn = result[y : y + h, x : x + w]
    assert (drawn == 255).all(axis=2).any() and (drawn < 40).all(axis=2).any()  # white letters, dark outline
    assert text_mark("© Shop").shape[0] > 0 and not text_mark("© Shop").flags.writeable


def test_the_marks_version_is_in_the_key(client: FlaskClient, logo: Path, grey: str) -> None:
    url = f"{grey}&mark=brand/logo.png&mark_pos=northwest"
    first = client.get(url)
    blue = np.zeros((20, 40, 4), np.uint8)
    blue[:] = (255, 0, 0, 255)
    logo.write_bytes(encode(blue, ".png"))
    second = client.get(url)
    assert first.headers["ETag"] != second.headers["ETag"]
    assert tuple(decode(second.data)[5, 5]) == (255, 0, 0)


def test_a_mark_is_decoded_once_per_version_and_worker(
    client: FlaskClient, logo: Path, grey: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = origin_module.load_mark
    monkeypatch.setattr(origin_module, "load_mark", lambda *args: calls.append(args) or real(*args))
    for width in (100, 120, 140):
        get(client, f"{grey}&w={width}&mark=brand/logo.png")
    assert len(calls) == 1


def test_animations_are_marked_frame_by_frame(client: FlaskClient, logo: Path, image_root: Path) -> None:
    frames = [np.full((60, 80, 3), 128, np.uint8), np.full((60, 80, 3), 200, np.uint8)]
    (image_root / "anim.webp").write_bytes(animation(".webp", frames))
    answer = client.get("/image/anim.webp?mark=brand/logo.png&mark_pos=northwest&mark_scale=0.5")
    ok, result = cv2.imdecodeanimation(np.frombuffer(answer.data, np.uint8))
    assert ok and len(result.frames) == 2
    for frame in result.frames:
        assert np.abs(frame[5, 5, :3].astype(int) - RED).max() < 20  # lossy WebP


def test_marks_survive_flattening_to_jpeg(client: FlaskClient, logo: Path) -> None:
    result = get(client, "/image/alpha.png?fmt=jpeg&mark=brand/logo.png&mark_pos=northwest&mark_scale=0.5")
    assert np.abs(result[5, 5].astype(int) - RED).max() < 12
    assert np.abs(result[5, 100].astype(int) - 255).max() < 12  # transparent: flattened onto white


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("mark=brand/none.png", "mark"),
        ("mark=../etc/passwd", "mark"),
        ("mark_pos=north", "mark_pos"),
        ("mark=brand/logo.png&mark_text=x", "mark_text"),
        ("mark=brand/logo.png&mark_pos=up", "mark_pos"),
        ("mark=brand/logo.png&mark_scale=0", "mark_scale"),
        ("mark=brand/logo.png&mark_scale=2", "mark_scale"),
        ("mark=brand/logo.png&mark_alpha=101", "mark_alpha"),
        ("mark=brand/logo.png&mark_pad=-1", "mark_pad"),
        ("mark_text=%0A", "mark_text"),
        ("mark_text=" + "x" * 101, "mark_text"),
    ],
)
def test_a_bad_mark_is_a_400_naming_it(client: FlaskClient, logo: Path, query: str, name: str) -> None:
    answer = client.get(f"/image/photo.jpg?{query}")
    assert answer.status_code == 400 and answer.get_json()["parameter"] == name


def test_a_mark_that_is_not_an_image_is_refused(client: FlaskClient) -> None:
    answer = client.get("/image/photo.jpg?mark=text.jpg")
    assert answer.status_code == 415


def test_a_tall_mark_is_never_taller_than_the_result() -> None:
    tall = np.zeros((400, 40, 4), np.uint8)
    tall[...] = (*RED, 255)
    result = marked(photo(100, 50), Mark(tall, "center", 1.0, 1.0, 0))
    box = changed(photo(100, 50), result)
    assert box is not None and box[3] == 50 and box[2] == 5


def test_presets_carry_marks(settings: Settings, logo: Path, grey: str) -> None:
    presets = parse_presets("PROXY_PRESETS", "branded=fmt:png,mark:brand/logo.png,mark_pos:northwest")
    app = create_app(replace(settings, presets=presets))
    with app.test_client() as client:
        by_preset = client.get("/image/grey.png?preset=branded")
        explicit = client.get(f"{grey}&mark=brand/logo.png&mark_pos=northwest")
    assert by_preset.status_code == 200 and by_preset.data == explicit.data
    assert by_preset.headers["ETag"] == explicit.headers["ETag"]


def test_an_svg_mark_is_drawn_large_enough_to_stay_sharp(
    client: FlaskClient, image_root: Path, grey: str
) -> None:
    """A 40 x 20 SVG logo used 200 px wide: drawn at 1024 px and scaled down, not at 40 and enlarged."""
    (image_root / "brand").mkdir(exist_ok=True)
    (image_root / "brand" / "logo.svg").write_bytes(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
        b'<rect x="10" y="0" width="20" height="20" fill="red"/></svg>'
    )
    result = get(client, f"{grey}&mark=brand/logo.svg&mark_pos=northwest&mark_scale=1")  # 200 x 100
    row = result[50, :, 2].astype(int)  # red's channel across the middle of the mark
    assert row[60] > 240 and row[40] < 140 and row[140] > 240 and row[160] < 140  # the rect: x 50..150
    edge = np.flatnonzero((row[30:70] > 140) & (row[30:70] < 240))
    assert len(edge) <= 2  # a crisp edge: enlarged from 40 px it would blur over about five
