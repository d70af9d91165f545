"""Animated originals: served as animations in WebP and AVIF, one frame in JPEG, PNG or ?frame=N."""

from __future__ import annotations

import io
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image

from proxy.errors import InvalidParameter, SourceTooLarge
from proxy.formats import FORMATS
from proxy.params import ImageParams
from proxy.pipeline import render
from proxy.probe import isobmff_boxes, probe

from .support.images import decode, write

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]  # RGB, one per frame
DURATIONS = [100, 200, 300, 400]


def animation(fmt: str, size: tuple[int, int] = (240, 160), frames: int = 4, loop: int = 2) -> bytes:
    """Solid frames of COLOURS, each with its own duration, saved by Pillow."""
    images = [Image.new("RGB", size, COLOURS[n % len(COLOURS)]) for n in range(frames)]
    durations = [DURATIONS[n % len(DURATIONS)] for n in range(frames)]
    buffer = io.BytesIO()
    options = {"lossless": True} if fmt == "WEBP" else {}
    images[0].save(
        buffer, fmt, save_all=True, append_images=images[1:], duration=durations, loop=loop, **options
    )
    return buffer.getvalue()


def frames_of(data: bytes) -> tuple[list[np.ndarray], list[int], int]:
    ok, decoded = cv2.imdecodeanimation(np.frombuffer(data, np.uint8))
    assert ok
    return list(decoded.frames), [int(d) for d in decoded.durations], int(decoded.loop_count)


@pytest.mark.parametrize(
    ("source", "name"), [("GIF", "a.gif"), ("WEBP", "a.webp"), ("PNG", "a.png"), ("AVIF", "a.avif")]
)
@pytest.mark.parametrize("target", ["source", "webp", "avif"])
def test_animations_stay_animated(tmp_path: Path, source: str, name: str, target: str) -> None:
    if target == "avif" and "avif" not in FORMATS:
        pytest.skip("this OpenCV build cannot write AVIF")
    original = animation(source)
    path = write(tmp_path, name, original)
    assert probe(path).frames == 4
    rendered = render(path, ImageParams(width=120), target)
    assert rendered.format.name == ("webp" if target == "source" else target)
    frames, durations, loop = frames_of(rendered.data)
    # Plays as OpenCV reads them (GIF stores repeats, WebP plays), or for AVIF, which OpenCV does
    # not read, from the header (Pillow writes every AVIF as looping for ever: 0).
    plays = probe(path).plays if source == "AVIF" else frames_of(original)[2]
    if rendered.format.name == "avif":
        loop = probe(write(tmp_path, "out.avif", rendered.data)).plays
    assert len(frames) == 4 and durations == DURATIONS
    assert loop == plays and (plays > 0 or source == "AVIF")
    for frame, (r, g, b) in zip(frames, COLOURS, strict=True):
        assert frame.shape[:2] == (80, 120)
        assert np.abs(frame[40, 60, :3].astype(int) - (b, g, r)).max() <= 12  # lossy, but that colour


def test_an_avif_plays_as_often_as_its_original(tmp_path: Path) -> None:
    """GIF (3 plays) -> AVIF keeps 3 in libavif's form; that AVIF -> WebP keeps them too, as
    OpenCV and Pillow read the WebP; and what OpenCV writes by default reads as for ever."""
    if "avif" not in FORMATS:
        pytest.skip("this OpenCV build cannot write AVIF")
    gif = write(tmp_path, "a.gif", animation("GIF", loop=2))  # two repeats: three plays
    avif = write(tmp_path, "a.avif", render(gif, ImageParams(width=120), "avif").data)
    assert probe(avif).plays == 3
    webp = render(avif, ImageParams(width=60), "webp").data
    assert frames_of(webp)[2] == 3 and Image.open(io.BytesIO(webp)).info["loop"] == 3
    forever = cv2.Animation()
    forever.frames = [np.full((8, 8, 4), 255, np.uint8), np.zeros((8, 8, 4), np.uint8)]
    forever.durations = [100, 100]
    ok, data = cv2.imencodeanimation(".avif", forever)
    assert ok and probe(write(tmp_path, "forever.avif", data.tobytes())).plays == 0


@pytest.mark.slow
@pytest.mark.parametrize("loop", [0, 2])
def test_an_animated_avif_is_the_same_bytes_whenever_it_is_rendered(tmp_path: Path, loop: int) -> None:
    """One ETag, one byte string: OpenCV's writer stamps the clock into the movie's header boxes."""
    if "avif" not in FORMATS:
        pytest.skip("this OpenCV build cannot write AVIF")
    gif = write(tmp_path, "a.gif", animation("GIF", loop=loop))
    first = render(gif, ImageParams(width=90), "avif").data
    time.sleep(1.1)  # the times are in seconds
    assert render(gif, ImageParams(width=90), "avif").data == first
    for at in isobmff_boxes(first, 0, len(first), b"mvhd"):
        assert first[at + 4 : at + 12] == bytes(8)  # creation and modification times (version 0)


@pytest.mark.parametrize("target", ["png", "jpeg"])
def test_still_formats_take_the_first_frame(tmp_path: Path, target: str) -> None:
    path = write(tmp_path, "a.gif", animation("GIF"))
    image = decode(render(path, ImageParams(width=60), target).data)
    assert image.shape[:2] == (40, 60) and np.abs(image[20, 30, :3].astype(int) - (0, 0, 255)).max() <= 3


def test_one_frame_is_asked_for_by_number(tmp_path: Path) -> None:
    path = write(tmp_path, "a.gif", animation("GIF"))
    for number, (r, g, b) in enumerate(COLOURS):
        rendered = render(path, ImageParams(width=60, frame=number), "source")
        image = decode(rendered.data)
        assert rendered.format.name == "png" and image.ndim == 3  # a still
        assert np.abs(image[20, 30, :3].astype(int) - (b, g, r)).max() <= 3
    with pytest.raises(InvalidParameter, match="4 frames"):
        render(path, ImageParams(frame=4), "png")


def test_too_many_frames_are_refused_before_decoding(tmp_path: Path) -> None:
    path = write(tmp_path, "long.gif", animation("GIF", size=(16, 16), frames=1000))
    assert probe(path).frames == 1000
    started = time.perf_counter()
    with pytest.raises(SourceTooLarge, match="1000 frames"):
        render(path, ImageParams(width=8), "webp")
    assert time.perf_counter() - started < 0.2


def test_frames_count_against_the_pixel_limit(tmp_path: Path) -> None:
    from proxy.limits import Limits

    path = write(tmp_path, "a.gif", animation("GIF", size=(100, 100)))  # 4 x 10,000 pixels
    assert render(path, ImageParams(), "webp", Limits(max_source_pixels=40_000)).data
    with pytest.raises(SourceTooLarge):
        render(path, ImageParams(), "webp", Limits(max_source_pixels=39_999))
    with pytest.raises(InvalidParameter, match="4 frames"):
        render(path, ImageParams(), "webp", Limits(max_output_pixels=39_999))


def test_animations_over_http(client: FlaskClient, image_root: Path) -> None:
    (image_root / "moving.gif").write_bytes(animation("GIF"))
    response = client.get("/image/moving.gif?w=100")
    assert response.status_code == 200 and response.mimetype == "image/webp"
    assert len(frames_of(response.data)[0]) == 4
    still = client.get("/image/moving.gif?w=100&frame=2")
    assert still.status_code == 200 and still.mimetype == "image/png"
    assert client.get("/image/moving.gif?frame=x").get_json()["parameter"] == "frame"
    assert client.get("/image/moving.gif?frame=100").status_code == 400  # over PROXY_MAX_ANIMATION_FRAMES
    assert client.get("/image/moving.gif?frame=7").status_code == 400  # over the original's own


def test_stills_are_one_frame(tmp_path: Path) -> None:
    still = np.full((40, 60, 3), 128, np.uint8)
    for extension in (".avif", ".webp", ".png", ".gif"):
        if extension == ".avif" and "avif" not in FORMATS:
            continue
        ok, data = cv2.imencode(extension, still)
        assert ok
        assert probe(write(tmp_path, f"still{extension}", data.tobytes())).frames == 1, extension
