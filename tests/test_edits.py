"""The edits (pipeline/edits.py, geometry.turned): rot, flip, trim, blur, sharpen, pixelate, each
doing what it says and nothing else, judged on decoded pixels against the same render without
the edit, turned or filtered here with NumPy and OpenCV; and the 400s that name a bad value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from flask.testing import FlaskClient

from proxy import create_app
from proxy.cache import VariantCache
from proxy.formats import FORMATS
from proxy.params import ImageParams, query_parser
from proxy.pipeline import STEPS, render, render_reduced, upright
from proxy.pipeline.edits import blurred, pixelated, sharpened, trimmed
from proxy.pipeline.geometry import TURNED
from proxy.settings import Settings

from .support.images import animation, decode, encode, photo, quadrants, with_exif_orientation, write

PNG = FORMATS["png"]
RED, GREEN, BLUE, WHITE = (0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255)


def parse(query: str) -> ImageParams:
    return query_parser(Settings())(query)


def rendered(path: str, query: str) -> np.ndarray:
    return decode(render(path, parse(query), PNG).data)


@pytest.fixture
def picture(tmp_path: Path) -> str:
    """A 120x80 PNG: red, green / blue, white quadrants, and a photo's texture on the red one."""
    image = quadrants(120, 80)
    image[:40, :60] = photo(60, 40)
    return write(tmp_path, "q.png", encode(image, ".png"))


# --- rot and flip -------------------------------------------------------------------------------


@pytest.mark.parametrize("rot", [90, 180, 270])
def test_rot_turns_the_result_clockwise_and_w_h_are_the_results(picture: str, rot: int) -> None:
    turned = rendered(picture, f"rot={rot}")
    assert (turned == np.rot90(rendered(picture, ""), -rot // 90)).all()
    sideways = rot != 180
    sized = rendered(picture, f"w=40&rot={rot}")  # w is the width of what is served
    assert sized.shape[:2] == ((60, 40) if sideways else (27, 40))
    assert (sized == np.rot90(rendered(picture, "h=40" if sideways else "w=40"), -rot // 90)).all()


@pytest.mark.parametrize(
    ("flip", "turn"), [("h", np.fliplr), ("v", np.flipud), ("hv", lambda a: np.rot90(a, 2))]
)
def test_flip_mirrors_the_result(picture: str, flip: str, turn: Any) -> None:
    assert (rendered(picture, f"w=60&flip={flip}") == turn(rendered(picture, "w=60"))).all()


def test_rot_comes_after_exif_orientation_and_flip_after_rot(tmp_path: Path) -> None:
    stored = quadrants(64, 48)
    path = write(
        tmp_path, "o6.jpg", with_exif_orientation(encode(stored, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 100), 6)
    )
    upright_view = rendered(path, "")
    assert upright_view.shape[:2] == (64, 48)  # EXIF 6: turned a quarter clockwise to be viewed
    both = rendered(path, "rot=90&flip=h")
    assert (both == np.fliplr(np.rot90(upright_view, -1))).all()


def test_rect_fp_and_crops_are_in_the_turned_frame(picture: str) -> None:
    top_left = rendered(picture, "rot=90&rect=0,0,40,60")  # the turned picture's top-left quadrant
    assert top_left.shape[:2] == (60, 40)
    assert np.abs(top_left.astype(int) - BLUE).max() < 3  # blue was bottom-left: now top-left
    cover = rendered(picture, "rot=270&w=20&h=20&fit=cover&gravity=northwest")
    assert np.abs(cover[5, 5].astype(int) - GREEN).max() < 3  # green was top-right


def test_the_orientation_table_agrees_with_the_orient_step() -> None:
    stored = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for (orientation, rot, flip), result in TURNED.items():
        flips = {"": lambda a: a, "h": np.fliplr, "v": np.flipud, "hv": lambda a: np.rot90(a, 2)}
        expected = flips[flip](np.rot90(upright(stored, orientation), -rot // 90))
        assert (upright(stored, result) == expected).all(), (orientation, rot, flip)


def test_turns_go_through_a_reduced_copy(tmp_path: Path) -> None:
    path = write(tmp_path, "long.png", encode(quadrants(4200, 300), ".png"))
    direct = rendered(path, "w=100&rot=90")
    assert direct.shape[:2] == (1400, 100)
    cache = VariantCache(tmp_path / "cache", 64 << 20)
    for _ in range(2):  # the copy is made on the second sight, and used from then on
        via = decode(render_reduced(cache, "copy", path, parse("w=100&rot=90"), PNG).data)
    assert cache.get_blob("copy") is not None
    assert via.shape == direct.shape and np.abs(via.astype(int) - direct).mean() < 2


def test_turns_go_through_animations(tmp_path: Path) -> None:
    frames = [quadrants(40, 30), np.roll(quadrants(40, 30), 10, axis=1)]
    path = write(tmp_path, "a.webp", animation(".webp", frames))
    served = render(path, parse("rot=90"), FORMATS["webp"]).data
    ok, result = cv2.imdecodeanimation(np.frombuffer(served, np.uint8))
    assert ok and len(result.frames) == 2
    for frame, original in zip(result.frames, frames, strict=True):
        assert frame.shape[:2] == (40, 30)
        assert np.abs(frame[..., :3].astype(int) - np.rot90(original, -1)).mean() < 12  # lossy WebP


# --- trim ------------------------------------------------------------------------------------------


def bordered(inner: np.ndarray, border: tuple[int, int, int, int], colour: tuple[int, ...]) -> np.ndarray:
    top, right, bottom, left = border
    return cv2.copyMakeBorder(inner, top, bottom, left, right, cv2.BORDER_CONSTANT, value=colour)


def test_trim_cuts_a_uniform_border_before_resizing(tmp_path: Path) -> None:
    inner = photo(100, 60)
    path = write(tmp_path, "b.png", encode(bordered(inner, (7, 11, 13, 5), WHITE), ".png"))
    assert (rendered(path, "trim=10") == inner).all()
    half = rendered(path, "trim=10&w=50")
    assert (
        half.shape[:2] == (30, 50)
        and np.abs(half.astype(int) - cv2.resize(inner, (50, 30), interpolation=cv2.INTER_AREA)).max() <= 1
    )


def test_trim_keeps_a_border_that_differs_more_than_the_threshold(tmp_path: Path) -> None:
    inner = np.zeros((40, 40, 3), np.uint8)
    framed = bordered(inner, (10, 10, 10, 10), (240, 240, 240))
    framed[0:5, :] = (225, 225, 225)  # a band 15 away from the corner's colour
    path = write(tmp_path, "t.png", encode(framed, ".png"))
    assert rendered(path, "trim=20").shape[:2] == (40, 40)  # the band is border within 20
    assert rendered(path, "trim=10").shape[:2] == (55, 60)  # not within 10: kept, with what is below it


def test_trim_within_a_rect_in_the_turned_frame_and_of_a_uniform_image(tmp_path: Path) -> None:
    inner = photo(30, 20)
    image = bordered(inner, (10, 20, 10, 20), WHITE)  # 70 x 40
    path = write(tmp_path, "r.png", encode(image, ".png"))
    turned = rendered(path, "rot=90&trim=5")
    assert (turned == np.rot90(inner, -1)).all()
    part = rendered(path, "rect=0,0,35,40&trim=5")  # the left half: trimmed within it
    assert (part == inner[:, :15]).all()
    flat = write(tmp_path, "f.png", encode(np.full((20, 30, 3), 200, np.uint8), ".png"))
    assert rendered(flat, "trim=5").shape[:2] == (20, 30)  # nothing but border: left whole


def test_trim_finds_the_border_of_16_bit_and_alpha_originals(tmp_path: Path) -> None:
    deep = np.full((50, 60, 3), 65535, np.uint16)
    deep[10:30, 5:45] = 1000
    assert rendered(write(tmp_path, "d.png", encode(deep, ".png")), "trim=3").shape[:2] == (20, 40)
    clear = np.zeros((50, 60, 4), np.uint8)
    clear[20:40, 10:20] = (0, 0, 255, 255)
    assert rendered(write(tmp_path, "a.png", encode(clear, ".png")), "trim=1").shape[:2] == (20, 10)


def test_trimmed_maps_the_border_through_every_orientation() -> None:
    stored = np.full((30, 50, 3), 255, np.uint8)
    stored[5:12, 20:41] = 0  # x 20..40, y 5..11 in the stored frame
    for orientation in range(1, 9):
        view = upright(stored, orientation)
        size = (view.shape[1], view.shape[0])
        x, y, w, h = trimmed(stored, orientation, size, None, 10) or (0, 0, 0, 0)
        assert (view[y : y + h, x : x + w] == 0).all() and w * h == 21 * 7, orientation


def test_trim_of_an_animation_keeps_what_any_frame_needs(tmp_path: Path) -> None:
    first, second = np.full((40, 60, 3), 255, np.uint8), np.full((40, 60, 3), 255, np.uint8)
    first[10:20, 10:20] = 0
    second[15:30, 30:50] = 0
    path = write(tmp_path, "t.gif", animation(".gif", [first, second]))
    ok, result = cv2.imdecodeanimation(
        np.frombuffer(render(path, parse("trim=10"), FORMATS["webp"]).data, np.uint8)
    )
    assert ok and [frame.shape[:2] for frame in result.frames] == [(20, 40), (20, 40)]


# --- blur, sharpen, pixelate --------------------------------------------------------------------


def test_blur_is_a_gaussian_of_the_result(picture: str) -> None:
    plain = rendered(picture, "w=100")
    blurred_result = rendered(picture, "w=100&blur=2.5")
    expected = cv2.GaussianBlur(plain.astype(np.float32), (0, 0), 2.5)
    assert np.abs(blurred_result.astype(np.float32) - expected).max() <= 1
    assert cv2.Laplacian(blurred_result, cv2.CV_64F).var() < cv2.Laplacian(plain, cv2.CV_64F).var() / 4


def test_a_wide_blur_looks_like_the_full_gaussian(tmp_path: Path) -> None:
    picture = write(tmp_path, "large.png", encode(photo(600, 400), ".png"))
    plain = rendered(picture, "w=480").astype(np.float32)
    wide = rendered(picture, "w=480&blur=30").astype(np.float32)
    exact = cv2.GaussianBlur(plain, (0, 0), 30)
    assert np.abs(wide - exact).mean() < 2.5
    assert abs(float(wide.mean()) - float(plain.mean())) < 2


def test_sharpen_is_an_unsharp_mask_of_the_result(picture: str) -> None:
    plain = rendered(picture, "w=100")
    sharp = rendered(picture, "w=100&sharpen=1.5")
    work = plain.astype(np.float32)
    expected = np.clip(2 * work - cv2.GaussianBlur(work, (0, 0), 1.5), 0, 255)
    assert np.abs(sharp.astype(np.float32) - expected).max() <= 1
    assert cv2.Laplacian(sharp, cv2.CV_64F).var() > cv2.Laplacian(plain, cv2.CV_64F).var()


def test_pixelate_makes_blocks_of_the_means(picture: str) -> None:
    plain = rendered(picture, "w=96").astype(np.float32)  # 96 x 64: twelve by eight blocks of 8
    blocks = rendered(picture, "w=96&pixelate=8").astype(np.float32)
    for y in range(0, 64, 8):
        for x in range(0, 96, 8):
            block = blocks[y : y + 8, x : x + 8]
            assert (block == block[0, 0]).all()
            assert np.abs(block[0, 0] - plain[y : y + 8, x : x + 8].mean(axis=(0, 1))).max() <= 1


def test_pixelate_cuts_the_last_blocks_at_the_edge() -> None:
    image = photo(21, 10)
    result = pixelated(image, 8)
    assert result.shape == image.shape and (result[:8, 16:21] == result[0, 16]).all()


def test_effects_do_not_darken_the_edges_of_transparent_shapes() -> None:
    shape = np.zeros((40, 40, 4), np.uint8)  # transparent black around an opaque red square
    shape[10:30, 10:30] = (0, 0, 255, 255)
    for result in (blurred(shape, 3.0), pixelated(shape, 6)):
        seen = result[..., 3] > 8
        assert seen.sum() > 400  # the edge is soft now...
        assert (result[seen][:, 2] >= 250).all() and (result[seen][:, :2] <= 4).all()  # ...and still red
    assert (sharpened(shape, 2.0)[..., 3] == shape[..., 3]).all()


def test_effects_come_before_the_padding_and_the_flattening(picture: str) -> None:
    padded = rendered(picture, "w=60&h=60&fit=contain&bg=00ff00&blur=3")
    assert (padded[:10, :] == GREEN).all()  # the canvas is not blurred into the image
    assert [step.__name__ for step in STEPS][-4:] == ["effects", "watermark", "flatten", "pad"]


# --- parameters, presets, HTTP -------------------------------------------------------------------


def test_edits_are_canonical_and_named_in_the_key() -> None:
    assert parse("blur=1.50&rot=0").transform == parse("blur=1.5").transform
    assert parse("blur=1.5").transform != parse("blur=1.6").transform
    assert parse("w=10").transform == "w=10&h=&fit=inside&q=82&bg=ffffffff"  # no edit: the old key
    keyed = parse("pixelate=4&flip=v&rot=270&trim=3&sharpen=0.5&blur=10.00").transform
    assert keyed.endswith("&trim=3&rot=270&flip=v&blur=10&sharpen=0.5&pixelate=4")


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("rot=45", "rot"),
        ("rot=-90", "rot"),
        ("flip=x", "flip"),
        ("blur=0.2", "blur"),
        ("blur=101", "blur"),
        ("blur=1e2", "blur"),
        ("sharpen=10.5", "sharpen"),
        ("pixelate=1", "pixelate"),
        ("pixelate=101", "pixelate"),
        ("trim=0", "trim"),
        ("trim=abc", "trim"),
    ],
)
def test_a_bad_edit_is_a_400_naming_it(client: FlaskClient, query: str, name: str) -> None:
    answer = client.get(f"/image/photo.jpg?{query}")
    assert answer.status_code == 400 and answer.get_json()["parameter"] == name


def test_presets_carry_edits(settings: Settings) -> None:
    from dataclasses import replace

    from proxy.settings.parsers import parse_presets

    presets = parse_presets("PROXY_PRESETS", "soft=w:100,blur:2,rot:90")
    app = create_app(replace(settings, presets=presets))
    with app.test_client() as client:
        by_preset = client.get("/image/photo.jpg?preset=soft")
        explicit = client.get("/image/photo.jpg?w=100&blur=2&rot=90")
    assert by_preset.status_code == 200 and by_preset.data == explicit.data
    assert by_preset.headers["ETag"] == explicit.headers["ETag"]
    assert decode(by_preset.data).shape[1] == 100


def test_edits_over_http(client: FlaskClient) -> None:
    answer = client.get("/image/quadrants.png?w=100&rot=90&flip=h")
    assert answer.status_code == 200
    image = decode(answer.data)
    assert image.shape[:2] == (150, 100)
    assert np.abs(image[5, 5].astype(int) - RED).max() < 3  # red, top-left, turned then mirrored back
