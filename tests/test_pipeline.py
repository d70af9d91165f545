"""The transform on real encoded images: dimensions and pixels, format by format."""

import struct
from decimal import Decimal
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import pytest

from proxy import libwebp, pipeline
from proxy.errors import InvalidParameter, UnsupportedImage
from proxy.formats import FORMATS, LEGACY, SOURCE
from proxy.params import ImageParams
from proxy.pipeline import Geometry, plan_geometry, render, shrink_factor
from proxy.probe import SourceInfo, probe

from .support.images import (
    decode,
    encode,
    exif_orientation_segment,
    photo,
    quadrants,
    with_chunk,
    with_exif_orientation,
    write,
)

MAGIC = {
    "png": b"\x89PNG",
    "jpeg": b"\xff\xd8\xff",
    "webp": b"RIFF",
    "avif": b"ftyp",
    "jxl": b"\xff\x0a",  # a bare codestream
}
JPEG_6000 = SourceInfo("jpeg", 6000, 4000)
RED, GREEN, BLUE, WHITE = (0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255)


def close(pixel: np.ndarray, expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(expected)) <= tolerance))


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp", ".bmp", ".tiff", ".gif"])
def test_every_source_format_decodes_and_resizes(tmp_path: Path, extension: str) -> None:
    path = write(tmp_path, "q" + extension, encode(quadrants(200, 100), extension))
    out = decode(render(path, ImageParams(width=50), "png").data)
    assert out.shape[:2] == (25, 50)
    assert close(out[5, 5], RED, 40) and close(out[5, 45], GREEN, 40)
    assert close(out[20, 5], BLUE, 40) and close(out[20, 45], WHITE, 40)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_output_format_matches_its_bytes(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, "p.jpg", encode(photo(300, 200), ".jpg"))
    rendered = render(path, ImageParams(width=120, quality=80), name)
    assert rendered.format.name == name
    assert MAGIC[name] in rendered.data[:12]
    pixels = (
        imagecodecs.jpegxl_decode(rendered.data) if name == "jxl" else decode(rendered.data)
    )  # not OpenCV's
    assert pixels.shape[:2] == (80, 120)


def test_source_format_is_kept_when_servable(tmp_path: Path) -> None:
    for extension, expected in [
        (".webp", "webp"),
        (".jpg", "jpeg"),
        (".png", "png"),
        (".bmp", "png"),
        (".tiff", "png"),
    ]:
        path = write(tmp_path, "s" + extension, encode(photo(40, 30), extension))
        assert render(path, ImageParams(), SOURCE).format.name == expected


def rgba_half_transparent() -> np.ndarray:
    image = np.zeros((100, 200, 4), np.uint8)
    image[..., :3] = RED
    image[:, 100:, 3] = 255
    return image


@pytest.mark.parametrize("name", [n for n in ("png", "webp", "avif") if n in FORMATS])
def test_alpha_is_kept_where_the_format_carries_it(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, "a.png", encode(rgba_half_transparent(), ".png"))
    out = decode(render(path, ImageParams(width=100, quality=95), name).data)
    assert out.shape == (50, 100, 4)
    assert out[25, 10, 3] < 10 and out[25, 90, 3] > 245
    assert close(out[25, 90, :3], RED, 20)


def test_alpha_is_flattened_onto_bg_for_jpeg(tmp_path: Path) -> None:
    path = write(tmp_path, "a.png", encode(rgba_half_transparent(), ".png"))
    out = decode(render(path, ImageParams(width=100, background=(0, 0, 255, 255)), "jpeg").data)
    assert out.shape == (50, 100, 3)
    assert close(out[25, 10], BLUE)  # transparent half shows the background
    assert close(out[25, 90], RED)


def test_auto_without_modern_formats_picks_png_for_alpha_and_jpeg_otherwise(tmp_path: Path) -> None:
    alpha = write(tmp_path, "a.png", encode(rgba_half_transparent(), ".png"))
    opaque = write(tmp_path, "o.png", encode(photo(50, 50), ".png"))
    assert render(alpha, ImageParams(fmt="auto"), LEGACY).format.name == "png"
    assert render(opaque, ImageParams(fmt="auto"), LEGACY).format.name == "jpeg"


def test_opaque_alpha_channel_is_dropped(tmp_path: Path) -> None:
    image = np.dstack((photo(40, 30), np.full((30, 40), 255, np.uint8)))
    path = write(tmp_path, "opaque.png", encode(image, ".png"))
    assert decode(render(path, ImageParams(), "png").data).shape == (30, 40, 3)


def test_16_bit_becomes_correct_8_bit(tmp_path: Path) -> None:
    image = np.zeros((20, 30, 3), np.uint16)
    image[:, :10] = 0x8080  # mid grey: 128 in 8 bits
    image[:, 10:20] = 65535  # full scale: 255, not wrapped to 0 or 127
    image[:, 20:] = (65535, 0, 257 * 60)
    path = write(tmp_path, "deep.png", encode(image, ".png"))
    out = decode(render(path, ImageParams(), "png").data)
    assert out.dtype == np.uint8
    assert tuple(out[10, 5]) == (128, 128, 128)
    assert tuple(out[10, 15]) == (255, 255, 255)
    assert tuple(out[10, 25]) == (255, 0, 60)


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_is_resized_before_it_is_rounded(tmp_path: Path, channels: int) -> None:
    """16-bit RGB(A) is averaged at 16 bits and rounded once, in OpenCV's channel order: the exact
    result, where rounding first would be a level off wherever the low bytes add up."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 65536, (240, 360, channels), dtype=np.uint16)
    if channels == 4:
        image[..., 3] = 65535 - np.arange(360, dtype=np.uint16) * 90  # a gradient of alpha
    path = write(tmp_path, "deep.png", encode(image, ".png"))
    out = decode(render(path, ImageParams(width=90), "png").data)
    expected = cv2.convertScaleAbs(
        cv2.resize(image, (90, 60), interpolation=cv2.INTER_AREA), alpha=255 / 65535
    )
    rounded_first = cv2.resize(
        cv2.convertScaleAbs(image, alpha=255 / 65535), (90, 60), interpolation=cv2.INTER_AREA
    )
    assert not np.array_equal(rounded_first, expected)  # the sample tells the two apart
    assert out.shape == expected.shape and np.array_equal(out, expected)


def test_16_bit_grayscale_with_resize(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (64, 1))
    path = write(tmp_path, "ramp16.png", encode(ramp, ".png"))
    out = decode(render(path, ImageParams(width=128), "png").data)
    assert out.shape == (32, 128) and out.dtype == np.uint8
    assert out[0, 0] <= 2 and out[0, -1] >= 253
    assert np.all(np.diff(out[0].astype(int)) >= 0)  # still a ramp: nothing wrapped


@pytest.mark.parametrize(("extension", "name"), [(".png", "png"), (".jpg", "jpeg"), (".png", "jpeg")])
def test_grayscale_stays_grayscale(tmp_path: Path, extension: str, name: str) -> None:
    gray = np.tile(np.arange(0, 200, 2, dtype=np.uint8), (50, 1))
    path = write(tmp_path, "g" + extension, encode(gray, extension))
    out = decode(render(path, ImageParams(width=50), name).data)
    assert out.shape == (25, 50)


def expected_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation as NumPy: the picture a viewer shows."""
    return {
        1: lambda im: im,
        2: lambda im: im[:, ::-1],
        3: lambda im: im[::-1, ::-1],
        4: lambda im: im[::-1],
        5: lambda im: im.transpose(1, 0, 2),
        6: lambda im: np.rot90(im, -1),
        7: lambda im: im.transpose(1, 0, 2)[::-1, ::-1],  # transverse
        8: lambda im: np.rot90(im, 1),
    }[orientation](image)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    stored = quadrants(120, 80)
    path = write(
        tmp_path,
        "o.jpg",
        with_exif_orientation(encode(stored, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95), orientation),
    )
    out = decode(render(path, ImageParams(width=60 if orientation < 5 else 40), "png").data)
    expected = cv2.resize(
        np.ascontiguousarray(expected_orientation(stored, orientation)),
        (out.shape[1], out.shape[0]),
        interpolation=cv2.INTER_AREA,
    )
    assert out.shape == expected.shape
    h, w = out.shape[:2]
    for y, x in [(h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 4), (3 * h // 4, 3 * w // 4)]:
        assert close(out[y, x], tuple(expected[y, x]), 30), (orientation, y, x)


def test_16_bit_png_is_oriented_once(tmp_path: Path) -> None:
    """A 16-bit PNG's eXIf orientation is ours to apply, after the resize and the channel swap."""
    stored = quadrants(120, 80).astype(np.uint16) * 257
    exif = exif_orientation_segment(6)[4 + 6 :]
    path = write(tmp_path, "o16.png", with_chunk(encode(stored, ".png"), b"eXIf", exif))
    out = decode(render(path, ImageParams(), "png").data)
    expected = expected_orientation(quadrants(120, 80), 6)
    assert out.dtype == np.uint8 and out.shape == expected.shape
    assert np.array_equal(out, expected)


def test_large_jpeg_thumbnail_is_area_averaged(tmp_path: Path) -> None:
    """One-pixel stripes must average to grey; nearest-neighbour would keep them black or white."""
    stripes = np.zeros((4000, 6000), np.uint8)
    stripes[:, ::2] = 255
    path = write(
        tmp_path,
        "big.jpg",
        encode(cv2.cvtColor(stripes, cv2.COLOR_GRAY2BGR), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95),
    )
    assert shrink_factor(JPEG_6000, (6000, 4000), plan_geometry(6000, 4000, ImageParams(width=400))) == 8
    out = decode(render(path, ImageParams(width=400), "png").data)
    assert out.shape == (267, 400, 3)
    assert abs(float(out.mean()) - 127.5) < 12
    assert float(out.std()) < 8


@pytest.mark.slow
def test_large_photo_thumbnail_matches_a_full_decode(tmp_path: Path) -> None:
    original = photo(3000, 2000, seed=3)
    path = write(tmp_path, "p.jpg", encode(original, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95))
    out = decode(render(path, ImageParams(width=300), "png").data)
    reference = cv2.resize(original, (300, 200), interpolation=cv2.INTER_AREA)
    assert out.shape == reference.shape
    assert cv2.PSNR(out, reference) > 35


@pytest.mark.parametrize(
    ("source", "params", "expected"),
    [
        ((6000, 4000), ImageParams(width=400), Geometry((400, 267))),
        ((6000, 4000), ImageParams(height=400), Geometry((600, 400))),
        ((6000, 4000), ImageParams(width=400, height=400), Geometry((400, 267))),
        ((300, 200), ImageParams(width=1000), Geometry((300, 200))),  # never enlarged
        ((300, 200), ImageParams(), Geometry((300, 200))),
        (
            (600, 400),
            ImageParams(width=200, height=200, fit="cover"),
            Geometry((300, 200), crop=(50, 0, 200, 200)),
        ),
        ((600, 400), ImageParams(width=200, height=100, fit="fill"), Geometry((200, 100))),
        (
            (600, 400),
            ImageParams(width=200, height=200, fit="contain"),
            Geometry((200, 133), canvas=(200, 200)),
        ),
        # a box larger than the source shrinks in proportion
        (
            (300, 200),
            ImageParams(width=1000, height=1000, fit="cover"),
            Geometry((300, 200), crop=(50, 0, 200, 200)),
        ),
        ((300, 200), ImageParams(width=600, height=200, fit="fill"), Geometry((300, 100))),
        (
            (300, 200),
            ImageParams(width=1000, height=1000, fit="contain"),
            Geometry((200, 133), canvas=(200, 200)),
        ),
        ((1, 10000), ImageParams(width=100), Geometry((1, 10000))),
        ((10000, 10), ImageParams(width=100), Geometry((100, 1))),
    ],
)
def test_plan_geometry(source: tuple[int, int], params: ImageParams, expected: Geometry) -> None:
    assert plan_geometry(*source, params) == expected


def test_cover_crops_the_centre(tmp_path: Path) -> None:
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 100:200] = GREEN  # only the middle third is green
    path = write(tmp_path, "c.png", encode(image, ".png"))
    out = decode(render(path, ImageParams(width=50, height=50, fit="cover"), "png").data)
    assert out.shape == (50, 50, 3)
    assert close(out[25, 2], GREEN) and close(out[25, 47], GREEN)


def test_contain_pads_with_bg(tmp_path: Path) -> None:
    path = write(tmp_path, "c.png", encode(np.full((100, 200, 3), 255, np.uint8), ".png"))
    out = decode(
        render(
            path, ImageParams(width=100, height=100, fit="contain", background=(255, 0, 0, 255)), "png"
        ).data
    )
    assert out.shape == (100, 100, 3)
    assert close(out[5, 50], RED, 2) and close(out[95, 50], RED, 2)
    assert close(out[50, 50], WHITE, 2)


def test_contain_with_transparent_bg_keeps_alpha(tmp_path: Path) -> None:
    path = write(tmp_path, "c.png", encode(np.full((100, 200, 3), 255, np.uint8), ".png"))
    out = decode(
        render(path, ImageParams(width=100, height=100, fit="contain", background=(0, 0, 0, 0)), "png").data
    )
    assert out.shape == (100, 100, 4)
    assert out[5, 50, 3] == 0 and out[50, 50, 3] == 255


def test_fill_stretches(tmp_path: Path) -> None:
    path = write(tmp_path, "q.png", encode(quadrants(200, 200), ".png"))
    out = decode(render(path, ImageParams(width=100, height=40, fit="fill"), "png").data)
    assert out.shape == (40, 100, 3)
    assert close(out[10, 25], RED) and close(out[30, 75], WHITE)


@pytest.mark.parametrize("content", [b"", b"plain text, named like an image" * 4])
def test_undecodable_sources(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, "bad.jpg", content)
    with pytest.raises(UnsupportedImage):
        render(path, ImageParams(), SOURCE)


def test_corrupt_body_after_a_valid_header(tmp_path: Path) -> None:
    png = encode(photo(64, 64), ".png")
    path = write(tmp_path, "corrupt.png", png[:40] + b"\0" * 200)
    with pytest.raises(UnsupportedImage):
        render(path, ImageParams(), SOURCE)


def test_output_over_the_format_limit_is_a_bad_parameter(tmp_path: Path) -> None:
    path = write(tmp_path, "wide.png", encode(np.zeros((4, 17000, 3), np.uint8), ".png"))
    with pytest.raises(InvalidParameter) as caught:
        render(path, ImageParams(), "webp")
    assert caught.value.parameter == "fmt"


# --- where to crop: compass gravity, focal points, source rectangles ----------------------------

STORE_FOR = {6: 8, 8: 6}  # the stored pixels a viewer sees upright: the inverse of each orientation


def oriented_png(tmp_path: Path, upright: np.ndarray, orientation: int) -> str:
    """A lossless PNG whose stored pixels, turned by its eXIf ``orientation``, show ``upright``."""
    stored = np.ascontiguousarray(expected_orientation(upright, STORE_FOR.get(orientation, orientation)))
    exif = exif_orientation_segment(orientation)[4 + 6 :]
    return write(tmp_path, f"o{orientation}.png", with_chunk(encode(stored, ".png"), b"eXIf", exif))


@pytest.mark.parametrize(
    ("gravity", "left", "right"),
    [("west", RED, RED), ("east", GREEN, GREEN), ("center", RED, GREEN)],
)
def test_compass_gravity_picks_the_side(tmp_path: Path, gravity: str, left: tuple, right: tuple) -> None:
    path = write(tmp_path, "q.png", encode(quadrants(400, 100), ".png"))  # red | green on top
    params = ImageParams(width=100, height=100, fit="cover", gravity=gravity)
    out = decode(render(path, params, "png").data)
    assert out.shape == (100, 100, 3)
    assert close(out[10, 5], left) and close(out[10, 94], right)


def test_vertical_and_corner_gravity(tmp_path: Path) -> None:
    path = write(tmp_path, "q.png", encode(quadrants(100, 400), ".png"))  # red | green over blue | white
    north = decode(render(path, ImageParams(width=100, height=100, fit="cover", gravity="north"), "png").data)
    assert close(north[5, 10], RED) and close(north[94, 90], GREEN)
    corner = decode(
        render(path, ImageParams(width=100, height=100, fit="cover", gravity="southeast"), "png").data
    )
    assert close(corner[94, 90], WHITE) and close(corner[5, 10], BLUE)


def test_contain_places_the_image_by_gravity(tmp_path: Path) -> None:
    path = write(tmp_path, "q.png", encode(quadrants(200, 100), ".png"))
    params = ImageParams(width=100, height=100, fit="contain", background=(0, 0, 0, 255), gravity="north")
    out = decode(render(path, params, "png").data)
    assert close(out[2, 10], RED) and close(out[60, 50], (0, 0, 0))  # image at the top, band below
    south = decode(
        render(path, ImageParams(width=100, height=100, fit="contain", gravity="south"), "png").data
    )
    assert close(south[97, 10], BLUE) and close(south[20, 50], WHITE)


def marker_scene(width: int, height: int, point: tuple[int, int]) -> np.ndarray:
    scene = np.full((height, width, 3), 128, np.uint8)
    x, y = point
    scene[y - 2 : y + 3, x - 2 : x + 3] = RED
    return scene


def found(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero((image[..., 2] > 190) & (image[..., 1] < 90))
    assert len(xs), "the marker is not in the result"
    return float(xs.mean()), float(ys.mean())


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(
    ("box", "focal"), [((100, 200), (0.23, 0.5)), ((300, 60), (0.5, 0.87)), ((50, 50), (0.81, 0.3))]
)
def test_a_focal_point_lands_where_the_maths_says(
    tmp_path: Path, orientation: int, box: tuple[int, int], focal: tuple[float, float]
) -> None:
    """The fraction is of the oriented image, what a viewer sees, whatever the stored frame."""
    width, height = 300, 200
    point = (round(focal[0] * width), round(focal[1] * height))
    path = oriented_png(tmp_path, marker_scene(width, height, point), orientation)
    params = ImageParams(
        width=box[0], height=box[1], fit="cover", gravity="focal", focal=tuple(Decimal(str(f)) for f in focal)
    )
    out = decode(render(path, params, "png").data)
    assert out.shape[:2] == (box[1], box[0])
    scale = max(box[0] / width, box[1] / height)
    resized = (round(width * scale), round(height * scale))
    left = min(max(round(focal[0] * width * scale - box[0] / 2), 0), resized[0] - box[0])
    top = min(max(round(focal[1] * height * scale - box[1] / 2), 0), resized[1] - box[1])
    x, y = found(out)
    assert abs(x - (point[0] * scale - left)) <= 1 and abs(y - (point[1] * scale - top)) <= 1, (x, y)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_rect_is_cut_from_the_oriented_original(tmp_path: Path, orientation: int) -> None:
    upright = photo(300, 200, seed=3)
    path = oriented_png(tmp_path, upright, orientation)
    out = decode(render(path, ImageParams(rect=(40, 30, 120, 90)), "png").data)
    assert np.array_equal(out, upright[30:120, 40:160])


def test_later_sizing_applies_to_the_rect(tmp_path: Path) -> None:
    path = write(tmp_path, "q.png", encode(quadrants(400, 200), ".png"))
    red = ImageParams(width=50, rect=(0, 0, 200, 100))
    out = decode(render(path, red, "png").data)
    assert out.shape == (25, 50, 3) and close(out[12, 25], RED, 2)
    never_enlarged = decode(render(path, ImageParams(width=500, rect=(200, 100, 100, 50)), "png").data)
    assert never_enlarged.shape == (50, 100, 3) and close(never_enlarged[25, 50], WHITE, 2)


@pytest.mark.parametrize("rect", [(0, 0, 401, 10), (350, 0, 51, 10), (0, 199, 10, 2), (400, 0, 1, 1)])
def test_a_rect_outside_the_image_is_a_400_that_gives_its_size(tmp_path: Path, rect: tuple) -> None:
    path = write(tmp_path, "q.png", encode(quadrants(400, 200), ".png"))
    with pytest.raises(InvalidParameter, match="400x200") as caught:
        render(path, ImageParams(rect=rect), "png")
    assert caught.value.parameter == "rect"


def test_a_large_rect_still_shrinks_on_decode() -> None:
    geometry = plan_geometry(6000, 4000, ImageParams(width=400, rect=(1000, 1000, 4000, 2000)))
    assert geometry.size == (400, 200) and geometry.region == (1000, 1000, 4000, 2000)
    assert shrink_factor(JPEG_6000, (6000, 4000), geometry) == 8
    small = plan_geometry(6000, 4000, ImageParams(width=400, rect=(0, 0, 600, 400)))
    assert shrink_factor(JPEG_6000, (6000, 4000), small) == 1  # 600 // 2 is under 400


def test_a_rect_from_a_shrunk_jpeg_matches_the_full_decode(tmp_path: Path) -> None:
    upright = photo(1600, 1200, seed=5)
    path = write(tmp_path, "big.jpg", encode(upright, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95))
    out = decode(render(path, ImageParams(width=100, rect=(800, 400, 800, 600)), "png").data)
    expected = cv2.resize(upright[400:1000, 800:1600], (100, 75), interpolation=cv2.INTER_AREA)
    assert out.shape == expected.shape
    assert cv2.PSNR(out, expected) > 30


PNGSUITE = Path(__file__).parent / "data" / "pngsuite"


@pytest.mark.parametrize(
    ("name", "interlaced"),
    [
        ("rgb", False),
        ("rgba", False),
        ("rgb16", False),
        ("rgba16", False),
        ("basi2c08.png", True),
        ("basi6a08.png", True),
    ],
)
def test_colour_pngs_decode_to_the_pixels_opencv_gives(tmp_path: Path, name: str, interlaced: bool) -> None:
    """8 and 16-bit RGB and RGBA PNGs go through imagecodecs' libpng (zlib-ng), handed over in RGB
    order for the ``bgr`` step to swap; interlaced ones stay with OpenCV. Either way, once in
    OpenCV's order, the pixels, depth and alpha are OpenCV's own."""
    path = tmp_path / "a.png"
    if interlaced:
        path.write_bytes((PNGSUITE / name).read_bytes())
    else:
        alpha = np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (200, 1))
        pixels = np.dstack((photo(300, 200), alpha)) if name.startswith("rgba") else photo(300, 200)
        if name.endswith("16"):  # every 16-bit value apart from v * 257, so a lost low byte shows
            pixels = pixels.astype(np.uint16) * 257 + np.arange(300, dtype=np.uint16)[:, None] % 7
        path.write_bytes(encode(pixels, ".png"))
    info = probe(str(path))
    assert info.interlaced is interlaced and pipeline._inflates_faster(info) is not interlaced
    decoded = pipeline.decode(str(path), info)
    assert decoded.rgb is not interlaced
    in_bgr = pipeline.swap_red_blue(decoded.image) if decoded.rgb else decoded.image
    assert np.array_equal(in_bgr, cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # truncated: refused, as OpenCV refuses it
    with pytest.raises(UnsupportedImage):
        pipeline.decode(str(path), info)


# --- WebP scaled while decoding (libwebp.py) ---------------------------------------------------


def test_the_bindings_layout_is_the_one_declared() -> None:
    """Else OpenCV decodes every WebP whole again, silently: slower, not wrong."""
    assert libwebp.AVAILABLE


def test_webp_stills_shrink_by_any_whole_factor_to_twice_the_size_animations_not() -> None:
    still, animated = SourceInfo("webp", 3000, 2000), SourceInfo("webp", 3000, 2000, frames=5)
    geometry = plan_geometry(3000, 2000, ImageParams(width=400))
    assert shrink_factor(still, (3000, 2000), geometry) == 3  # 1000x667 holds 800x534, 750 would not
    assert shrink_factor(animated, (3000, 2000), geometry) == 1
    assert shrink_factor(still, (3000, 2000), plan_geometry(3000, 2000, ImageParams(width=100))) == 15
    region = plan_geometry(3000, 2000, ImageParams(width=200, rect=(0, 0, 1300, 800)))
    assert shrink_factor(still, (3000, 2000), region) == 3  # 1300 // 3 = 433, 1300 // 4 = 325
    assert shrink_factor(still, (3000, 2000), plan_geometry(3000, 2000, ImageParams(width=1000))) == 1


@pytest.mark.slow
@pytest.mark.parametrize("quality", [90, 101])  # lossy (VP8) and lossless (VP8L)
def test_a_scaled_webp_decode_is_the_area_average_of_the_full_one(tmp_path: Path, quality: int) -> None:
    path = write(tmp_path, "p.webp", encode(photo(1800, 1200), ".webp", cv2.IMWRITE_WEBP_QUALITY, quality))
    info = probe(path)
    scaled = pipeline.decode(path, info, 4).image
    assert scaled.shape == (300, 450, 3)
    full = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert cv2.PSNR(scaled, cv2.resize(full, (450, 300), interpolation=cv2.INTER_AREA)) > 40
    out = decode(render(path, ImageParams(width=200), "png").data)  # through 1/4: 450 px
    assert out.shape == (133, 200, 3)
    assert cv2.PSNR(out, cv2.resize(full, (200, 133), interpolation=cv2.INTER_AREA)) > 45


@pytest.mark.slow
def test_a_scaled_webp_keeps_its_alpha_and_drops_an_opaque_one(tmp_path: Path) -> None:
    image = photo(1200, 800)
    alpha = np.zeros((800, 1200), np.uint8)
    alpha[:, 600:] = 255  # left half clear, right half opaque
    path = write(
        tmp_path, "a.webp", encode(np.dstack((image, alpha)), ".webp", cv2.IMWRITE_WEBP_QUALITY, 101)
    )
    out = decode(render(path, ImageParams(width=300), "png").data)
    assert out.shape == (200, 300, 4)
    assert out[:, :140, 3].max() == 0 and out[:, 160:, 3].min() == 255
    opaque = write(tmp_path, "o.webp", encode(np.dstack((image, np.full_like(alpha, 255))), ".webp"))
    assert decode(render(opaque, ImageParams(width=300), "png").data).shape == (200, 300, 3)


def test_a_truncated_webp_is_refused_when_scaled_as_when_whole(tmp_path: Path) -> None:
    data = encode(photo(1200, 800), ".webp", cv2.IMWRITE_WEBP_QUALITY, 90)
    path = write(tmp_path, "t.webp", data[: len(data) // 2])
    for width in (300, 1000):  # scaled by libwebp, whole by OpenCV
        with pytest.raises(UnsupportedImage):
            render(path, ImageParams(width=width), "png")


def one_frame_animation(image: np.ndarray) -> bytes:
    """A WebP animation of one frame (VP8X with the animation flag, ANIM, one ANMF): a still to
    look at, which libwebp's still decoder refuses."""
    frame = encode(image, ".webp", cv2.IMWRITE_WEBP_QUALITY, 90)[12:]  # the still's VP8 chunk
    height, width = image.shape[:2]

    def u24(value: int) -> bytes:
        return struct.pack("<I", value)[:3]

    def chunk(kind: bytes, body: bytes) -> bytes:
        return kind + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)

    body = (
        chunk(b"VP8X", bytes([0x02, 0, 0, 0]) + u24(width - 1) + u24(height - 1))
        + chunk(b"ANIM", bytes(4) + struct.pack("<H", 0))
        + chunk(b"ANMF", u24(0) + u24(0) + u24(width - 1) + u24(height - 1) + u24(100) + b"\0" + frame)
    )
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def test_what_libwebp_refuses_opencv_still_decodes(tmp_path: Path) -> None:
    image = photo(1200, 800)
    path = write(tmp_path, "one.webp", one_frame_animation(image))
    assert probe(path).frames == 1
    assert libwebp.decode(Path(path).read_bytes()) is None  # not a still to libwebp
    out = decode(render(path, ImageParams(width=200), "png").data)
    assert out.shape == (133, 200, 3)
    assert cv2.PSNR(out, cv2.resize(image, (200, 133), interpolation=cv2.INTER_AREA)) > 35


@pytest.mark.skipif("avif" not in FORMATS, reason="this OpenCV build writes no AVIF")
def test_colour_avif_keeps_opencvs_tags_bytes_and_quality(tmp_path: Path) -> None:
    image = photo(800, 533)
    path = write(tmp_path, "p.png", encode(image, ".png"))
    data = render(path, ImageParams(width=800), "avif").data
    at = data.find(b"colrnclx")
    primaries, transfer, matrix, full_range = struct.unpack(">HHHB", data[at + 8 : at + 15])
    assert (primaries, transfer, matrix, full_range >> 7) == (1, 13, 6, 1)  # sRGB, as OpenCV tags it
    theirs = encode(image, ".avif", cv2.IMWRITE_AVIF_QUALITY, 82, cv2.IMWRITE_AVIF_SPEED, 8)
    assert abs(len(data) - len(theirs)) / len(theirs) < 0.02
    ours_psnr, their_psnr = cv2.PSNR(decode(data), image), cv2.PSNR(decode(theirs), image)
    assert decode(data).shape == image.shape and abs(ours_psnr - their_psnr) < 0.3
