"""SVG originals (probe/svg.py, pipeline/svg.py, pipeline/drawing.py): the declared size, drawing at
the planned size (no upscaling blur), every geometry and edit on the drawn picture, the formats
served, the limits checked before drawing, each hostile document, and no file or URL ever read.

The unit tests draw in process (tests/conftest.py); those marked integration draw as a worker
does, in a forked child bounded in time and memory, and through a real gunicorn.
"""

from __future__ import annotations

import errno
import http.server
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient

from proxy import create_app
from proxy.errors import InvalidParameter, Overloaded, SourceTooLarge, UnsupportedImage
from proxy.formats import LEGACY, SOURCE, resolve
from proxy.limits import Limits
from proxy.params import ImageParams
from proxy.pipeline import decode as decode_original
from proxy.pipeline import drawing, render
from proxy.pipeline import svg as documents
from proxy.pipeline.reduced import kept_copy
from proxy.probe import Kind, probe
from proxy.settings import Settings

from .support import vectors
from .support.images import CUTS, cut, decode, encode, write
from .support.servers import Server, start_gunicorn
from .support.vectors import NS, data_uri, red_rect, svg

RED, GREEN, BLUE, WHITE = (0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255)  # BGR


def quadrants() -> bytes:
    """200x100: red, green on top; blue, white below (opaque)."""
    return svg(
        '<rect width="100" height="50" fill="red"/>'
        '<rect x="100" width="100" height="50" fill="lime"/>'
        '<rect y="50" width="100" height="50" fill="blue"/>'
        '<rect x="100" y="50" width="100" height="50" fill="#fff"/>'
    )


def rendered(path: str, output: str = "png", limits: Limits | None = None, **params: object) -> np.ndarray:
    return decode(render(path, ImageParams(**params), output, limits or Limits()).data)  # type: ignore[arg-type]


def near(pixel: np.ndarray, colour: tuple[int, ...], tolerance: int = 8) -> bool:
    return bool(np.abs(pixel[: len(colour)].astype(int) - colour).max() <= tolerance)


@pytest.fixture
def never_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    """resvg must not be reached: what the test asks is refused before drawing."""

    def refused(*args: object) -> bytes:
        raise AssertionError("drawn, when it should have been refused before drawing")

    monkeypatch.setattr(drawing, "_png", refused)
    monkeypatch.setattr(drawing, "_isolated", refused)


# --- the header: sniffing and the declared size --------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        red_rect(),
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- made by hand -->\n' + red_rect(),
        b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">' + red_rect(),  # never fetched
        b"\xef\xbb\xbf  \n" + red_rect(),  # a byte order mark, whitespace
        b'<s:svg xmlns:s="http://www.w3.org/2000/svg" width="200" height="100">'
        b'<s:rect width="9" height="9"/></s:svg>',
    ],
    ids=["bare", "declaration-comment", "external-dtd", "bom", "prefixed"],
)
def test_an_svg_is_sniffed_with_its_declared_size(tmp_path: Path, data: bytes) -> None:
    info = probe(write(tmp_path, "a.svg", data))
    assert (info.format, info.width, info.height, info.alpha, info.vector) == ("svg", 200, 100, True, True)
    assert info.kind == Kind("svg", False, True)


@pytest.mark.parametrize(
    "data",
    [
        b'<svg width="200" height="100"><rect width="9" height="9"/></svg>',  # no namespace: no SVG
        b"<html><body>hello</body></html>",
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>',
        b"<<<< not xml",
        b"\x1f\x8b\x08\x00" + bytes(40),  # gzip: SVGZ is not sniffed
    ],
    ids=["no-namespace", "html", "atom", "not-xml", "svgz"],
)
def test_what_is_not_an_svg_is_not_a_supported_format(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(UnsupportedImage, match="not an image in a supported format"):
        probe(write(tmp_path, "a.svg", data))


@pytest.mark.parametrize(
    ("attributes", "size"),
    [
        ('width="200" height="100"', (200, 100)),
        ('width="200px" height="100.4px"', (200, 100)),
        ('width="150pt" height="75pt"', (200, 100)),
        ('width="12.5pc" height="6.25pc"', (200, 100)),
        ('width="2in" height="1in"', (192, 96)),
        ('width="50.8mm" height="2.54cm"', (192, 96)),
        ('width="10em" height="10ex"', (160, 80)),
        ('viewBox="0 0 300 150"', (300, 150)),
        ('width="100%" height="100%" viewBox="-10 -10 30,15"', (30, 15)),
        ('width="600" viewBox="0 0 300 150"', (600, 300)),
        ('height="50" viewBox="0 0 300 150"', (100, 50)),
        ('width="auto" height="20" viewBox="0 0 40 10"', (80, 20)),
        ('width="0.2" height="0.2"', (1, 1)),
    ],
)
def test_the_declared_size_in_every_unit(tmp_path: Path, attributes: str, size: tuple[int, int]) -> None:
    info = probe(write(tmp_path, "a.svg", f"<svg {NS} {attributes}/>".encode()))
    assert (info.width, info.height) == size


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        ("", "no size"),
        ('width="200"', "without a viewBox"),
        ('width="0" height="10"', "a size of 0"),
        ('width="-5" height="10"', "a size of -5"),
        ('width="1e999" height="10"', "a size of inf"),
        ('width="10furlongs" height="10"', "the length"),
        ('viewBox="0 0 0 10"', "the viewBox"),
        ('viewBox="0 0 ten 10"', "the viewBox"),
    ],
)
def test_a_size_that_cannot_be_read_is_refused(tmp_path: Path, attributes: str, words: str) -> None:
    with pytest.raises(UnsupportedImage, match=words):
        probe(write(tmp_path, "a.svg", f"<svg {NS} {attributes}/>".encode()))


def test_a_doctype_with_an_internal_subset_is_refused_before_any_entity(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedImage, match="internal subset"):
        probe(write(tmp_path, "lol.svg", vectors.billion_laughs()))


@pytest.mark.parametrize("where", CUTS)
def test_a_cut_svg_is_refused_as_truncated(tmp_path: Path, where: str) -> None:
    path = write(tmp_path, "cut.svg", cut(vectors.illustration(20), where))
    with pytest.raises(UnsupportedImage, match="truncated SVG"):
        render(path, ImageParams(width=40), "png")


def test_a_cut_in_the_prolog_is_refused_as_truncated(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedImage, match="truncated SVG"):
        probe(
            write(tmp_path, "cut.svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" wid')
        )


@pytest.mark.parametrize(
    "data",
    [red_rect() + b"<junk/>", red_rect().replace(b"<rect", b"<rect <"), red_rect().replace(b"/>", b">")],
    ids=["junk-after", "bad-tag", "unbalanced"],
)
def test_a_malformed_svg_is_refused(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(UnsupportedImage, match="malformed SVG|truncated SVG"):
        render(write(tmp_path, "bad.svg", data), ImageParams(), "png")


# --- drawn at the planned size --------------------------------------------------------------------


def test_a_200px_svg_asked_at_400_is_drawn_at_400_with_crisp_edges(tmp_path: Path) -> None:
    """Not 200 px scaled up: the edges of the rectangle go from transparent to red in one column
    and one row, where a bicubic enlargement would smear them over four."""
    image = rendered(write(tmp_path, "red.svg", red_rect()), width=400)
    assert image.shape == (200, 400, 4)
    row, column = image[100, :, 3], image[:, 200, 3]
    assert row[99] == 0 and row[100] == 255 and row[299] == 255 and row[300] == 0
    assert column[49] == 0 and column[50] == 255 and column[149] == 255 and column[150] == 0
    assert np.count_nonzero((row > 0) & (row < 255)) == 0
    assert near(image[100, 200], RED) and image[0, 0, 3] == 0  # red on transparent


@pytest.mark.parametrize(
    ("params", "shape"),
    [
        ({}, (100, 200)),  # its declared size
        ({"h": 50}, (50, 100)),
        ({"w": 1000, "h": 1000}, (500, 1000)),  # enlarged without enlarge=1: a drawing loses nothing
        ({"w": 100, "dpr": 2}, (100, 200)),
        ({"w": 400, "rot": 90}, (800, 400)),
    ],
)
def test_sizes_follow_the_plan(tmp_path: Path, params: dict[str, object], shape: tuple[int, int]) -> None:
    path = write(tmp_path, "q.svg", quadrants())
    query = "&".join(f"{key}={value}" for key, value in params.items())
    client = create_app(Settings(image_root=tmp_path, cache_dir=tmp_path / "cache")).test_client()
    response = client.get(f"/image/q.svg?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert decode(response.data).shape[:2] == shape
    assert probe(path).width == 200


def test_a_viewbox_only_svg_is_drawn_at_its_viewbox_size_and_scaled_from_it(tmp_path: Path) -> None:
    data = f'<svg {NS} viewBox="0 0 20 10"><rect x="5" y="2.5" width="10" height="5" fill="red"/></svg>'
    image = rendered(write(tmp_path, "v.svg", data.encode()), width=400)
    assert image.shape == (200, 400, 4)
    assert image[100, 99, 3] == 0 and image[100, 100, 3] == 255


def test_units_scale_the_drawing_with_the_size(tmp_path: Path) -> None:
    """1in x 0.5in is 96 x 48 px: its user units are px, as a browser draws it."""
    data = f'<svg {NS} width="1in" height="0.5in"><rect width="48" height="48" fill="red"/></svg>'
    image = rendered(write(tmp_path, "in.svg", data.encode()), width=192)
    assert image.shape == (96, 192, 4)
    assert image[48, 95, 3] == 255 and image[48, 96, 3] == 0


def raster_quadrants() -> np.ndarray:
    """quadrants() as pixels: what a raster original of the same picture is."""
    image = np.empty((100, 200, 3), np.uint8)
    image[:50, :100], image[:50, 100:], image[50:, :100], image[50:, 100:] = RED, GREEN, BLUE, WHITE
    return image


def corners(image: np.ndarray, inset: int = 3) -> list[np.ndarray]:
    return [image[inset, inset], image[inset, -inset], image[-inset, inset], image[-inset, -inset]]


@pytest.mark.parametrize(
    ("params", "shape"),
    [
        ({"rect": (100, 0, 100, 50), "width": 400}, (200, 400)),
        ({"width": 100, "height": 100, "fit": "cover"}, (100, 100)),
        ({"width": 100, "height": 100, "fit": "cover", "gravity": "west"}, (100, 100)),
        ({"width": 100, "height": 100, "fit": "cover", "gravity": "focal", "focal": (0.9, 0.5)}, (100, 100)),
        ({"width": 100, "height": 200, "fit": "fill"}, (200, 100)),
        ({"width": 100, "rotate": 90}, (200, 100)),
        ({"width": 400, "flip": "h"}, (200, 400)),
        ({"width": 400, "rotate": 270, "flip": "v"}, (800, 400)),
        ({"width": 300, "height": 120, "fit": "cover", "rotate": 90, "gravity": "south"}, (120, 300)),
        ({"rect": (50, 0, 100, 100), "width": 50, "height": 50, "fit": "cover", "flip": "v"}, (50, 50)),
    ],
)
def test_geometry_on_the_drawn_picture_is_a_raster_originals(
    tmp_path: Path, params: dict[str, object], shape: tuple[int, int]
) -> None:
    """Each geometry puts the picture where it puts a raster original of the same picture."""
    drawn = rendered(write(tmp_path, "q.svg", quadrants()), **params)
    png = write(tmp_path, "q.png", encode(raster_quadrants(), ".png"))
    resized = rendered(png, enlarge=True, **params)
    assert drawn.shape[:2] == resized.shape[:2] == shape
    for got, expected in zip(corners(drawn), corners(resized), strict=True):
        assert near(got, tuple(expected)), (got, expected)


def test_a_rect_is_drawn_alone_at_its_scale(tmp_path: Path) -> None:
    """A 20 x 10 region of a 200 x 100 drawing at w=2000: drawn at 2000 x 1000, not the whole
    at 20000 x 10000 cut afterwards; its edge is crisp."""
    image = rendered(write(tmp_path, "red.svg", red_rect()), rect=(40, 20, 20, 10), width=2000)
    assert image.shape == (1000, 2000, 4)
    assert image[500, 999, 3] == 0 and image[500, 1000, 3] == 255  # x = 50 of the drawing
    assert image[499, 1500, 3] == 0 and image[500, 1500, 3] == 255  # y = 25


def test_contain_pads_the_drawing_with_bg(tmp_path: Path) -> None:
    image = rendered(
        write(tmp_path, "q.svg", quadrants()), width=300, height=300, fit="contain", background=(0, 0, 0, 255)
    )
    assert image.shape[:2] == (300, 300)
    assert near(image[10, 150], (0, 0, 0)) and near(image[100, 10], RED) and near(image[290, 150], (0, 0, 0))


def test_a_smart_crop_searches_the_drawn_picture(tmp_path: Path) -> None:
    image = rendered(
        write(tmp_path, "q.svg", quadrants()), width=100, height=100, fit="cover", gravity="entropy"
    )
    assert image.shape[:2] == (100, 100)


def test_trim_finds_the_border_and_draws_what_it_keeps(tmp_path: Path) -> None:
    """The transparent border of red_rect is cut, then the 100 x 50 rectangle drawn at w=400."""
    image = rendered(write(tmp_path, "red.svg", red_rect()), trim=1, width=400)
    assert image.shape[:2] == (200, 400)
    assert (image[..., 2] > 250).all()  # red to every edge, no blur: drawn, not enlarged


def test_effects_and_marks_apply_to_the_drawn_picture(tmp_path: Path) -> None:
    path = write(tmp_path, "q.svg", quadrants())
    for params in ({"blur": 2}, {"sharpen": 1}, {"pixelate": 10}, {"mark_text": "hello"}):
        image = rendered(path, width=400, **params)
        assert image.shape[:2] == (200, 400)


def test_an_svg_is_a_watermark_drawn_at_its_declared_size(tmp_path: Path) -> None:
    (tmp_path / "q.svg").write_bytes(quadrants())
    (tmp_path / "logo.svg").write_bytes(red_rect())
    client = create_app(Settings(image_root=tmp_path, cache_dir=tmp_path / "cache")).test_client()
    response = client.get("/image/q.svg?w=400&mark=logo.svg&mark_scale=0.5&mark_pos=center")
    assert response.status_code == 200, response.get_data(as_text=True)
    image = decode(response.data)
    assert near(image[100, 200], RED) and near(image[10, 10], RED)


def test_text_in_any_family_is_drawn_in_the_bundled_font(tmp_path: Path) -> None:
    image = rendered(write(tmp_path, "text.svg", vectors.text()))
    second_line = image[130:170, :300]
    assert np.count_nonzero((second_line[..., 2] > 150) & (second_line[..., 1] < 80)) > 500  # red letters


def test_a_caller_that_decodes_gets_the_svg_drawn_at_its_declared_size(tmp_path: Path) -> None:
    """The decoder table's row, for callers that decode rather than render (/info's thumbnail)."""
    path = write(tmp_path, "red.svg", red_rect())
    image, rgb = decode_original(path, probe(path))
    assert image.shape == (100, 200, 4) and rgb and tuple(image[50, 100]) == (255, 0, 0, 255)


def test_reduced_copies_are_never_made_of_a_vector(tmp_path: Path) -> None:
    path = write(tmp_path, "big.svg", vectors.declared('width="8000" height="8000"'))

    class Untouched:
        def get_blob(self, key: str) -> bytes | None:
            raise AssertionError("asked")

        put_blob = first_sight = get_blob  # type: ignore[assignment]

    assert kept_copy(Untouched(), "k", path, Limits(), probe(path)) is None  # type: ignore[arg-type]


# --- the format served ---------------------------------------------------------------------------


def test_without_fmt_an_svg_is_png_and_keeps_its_alpha() -> None:
    kind = Kind("svg", False, True)
    assert resolve(SOURCE, kind) == resolve(LEGACY, kind) == "png"


@pytest.mark.parametrize(
    ("query", "accept", "mime", "channels"),
    [
        ("w=400", "*/*", "image/png", 4),
        ("w=400&fmt=auto", "image/webp,*/*", "image/webp", 4),
        ("w=400&fmt=auto", "*/*", "image/png", 4),
        ("w=400&fmt=jpeg", "*/*", "image/jpeg", 3),
    ],
)
def test_formats_through_http(tmp_path: Path, query: str, accept: str, mime: str, channels: int) -> None:
    (tmp_path / "red.svg").write_bytes(red_rect())
    client = create_app(Settings(image_root=tmp_path, cache_dir=tmp_path / "cache")).test_client()
    response = client.get(f"/image/red.svg?{query}", headers={"Accept": accept})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == mime
    image = decode(response.data)
    assert image.shape == (200, 400, channels)
    if channels == 3:  # JPEG: flattened on bg, white
        assert near(image[5, 5], WHITE) and near(image[100, 200], RED, 16)
    assert client.get(f"/image/red.svg?{query}", headers={"Accept": accept}).headers["X-Cache"] == "HIT"


def test_an_opaque_drawing_has_no_alpha(tmp_path: Path) -> None:
    assert rendered(write(tmp_path, "q.svg", quadrants()), width=40).shape == (20, 40, 3)


# --- limits before drawing, and hostile documents refused before drawing --------------------------


def test_the_drawn_size_is_checked_before_drawing(tmp_path: Path, never_drawn: None) -> None:
    path = write(tmp_path, "red.svg", red_rect())
    with pytest.raises(InvalidParameter, match="over 100000 pixels"):  # the result: 400
        render(path, ImageParams(width=1000), "png", Limits(max_output_pixels=100_000))
    with pytest.raises(SourceTooLarge, match="drawn at 1000x500"):  # what is drawn: 413
        render(path, ImageParams(width=1000), "png", Limits(max_source_pixels=100_000))
    with pytest.raises(SourceTooLarge, match="drawn at"):  # an entropy window is found in the whole
        render(
            path,
            ImageParams(width=1000, height=10, fit="cover", gravity="entropy"),
            "png",
            Limits(max_source_pixels=100_000),
        )


def test_a_huge_declared_size_costs_nothing_at_a_small_width(tmp_path: Path) -> None:
    path = write(tmp_path, "huge.svg", vectors.declared('width="1000000" height="500000"'))
    assert rendered(path, width=40).shape[:2] == (20, 40)
    with pytest.raises(InvalidParameter, match="no w or h was given"):
        render(path, ImageParams(), "png")


@pytest.mark.parametrize(
    ("document", "error", "words"),
    [
        (vectors.billion_laughs, UnsupportedImage, "internal subset"),
        (vectors.use_bomb, SourceTooLarge, "references are expanded"),
        (vectors.pattern_bomb, SourceTooLarge, "references are expanded"),
        (vectors.deep, SourceTooLarge, "deep"),
        pytest.param(vectors.many, SourceTooLarge, "elements", marks=pytest.mark.slow),  # about 1 s
        (vectors.embedded_bomb, SourceTooLarge, "declares 50000x50000"),
        (lambda: svg("<text>&custom;</text>"), UnsupportedImage, "malformed SVG|not defined"),
    ],
    ids=["billion-laughs", "use-bomb", "pattern-bomb", "deep", "many", "embedded-bomb", "undefined-entity"],
)
def test_hostile_documents_are_refused_before_drawing(
    tmp_path: Path, never_drawn: None, document: Callable[[], bytes], error: type[Exception], words: str
) -> None:
    path = write(tmp_path, "hostile.svg", document())
    started = time.monotonic()
    with pytest.raises(error, match=words):
        render(path, ImageParams(width=100), "png")
    assert time.monotonic() - started < 5  # about 1 s for 200,000 elements read, the rest at once


def test_a_use_bomb_under_the_limit_is_drawn(tmp_path: Path) -> None:
    image = rendered(write(tmp_path, "uses.svg", vectors.use_bomb(levels=3, fan=10)), width=400)
    assert image.shape == (200, 400, 4) and image[0, 0, 3] == 255


# --- nothing outside the document is read -------------------------------------------------------


def secret_png(directory: Path) -> Path:
    """A blue PNG where a hostile document could name it."""
    path = directory / "secret.png"
    path.write_bytes(vectors.png(20, 20, (0, 0, 255)))
    return path


def with_images(*hrefs: str) -> bytes:
    images = "".join(f'<image x="0" y="0" width="200" height="100" xlink:href="{href}"/>' for href in hrefs)
    return svg(f'<rect x="50" y="25" width="100" height="50" fill="red"/>{images}')


def test_no_file_named_by_an_href_is_drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "images"
    root.mkdir()
    secret = secret_png(tmp_path)
    (root / "secret.png").write_bytes(secret.read_bytes())
    monkeypatch.chdir(root)  # where a relative path would resolve without a resources directory
    hrefs = [
        str(secret),
        f"file://{secret}",
        "../secret.png",
        "secret.png",
        "./secret.png",
        " /" + str(secret)[1:],
    ]
    path = write(root, "hostile.svg", with_images(*hrefs))
    document = documents.read(path, Limits())
    assert "secret" not in document.text
    image = rendered(path, width=200)
    assert near(image[50, 100], RED)  # the rest is drawn
    assert not (image[..., 0] > 200).any()  # and nothing blue


def test_no_file_is_named_to_resvg_in_any_attribute_or_stylesheet(tmp_path: Path) -> None:
    document = svg(
        '<?xml-stylesheet href="/etc/style.css"?><style>@import url("/etc/a.css"); '
        '@font-face { font-family: x; src: url("/etc/font.ttf"); } rect { fill: url(/etc/p.svg#p); }</style>'
        '<use href="/etc/other.svg#a"/><filter id="f"><feImage href="/etc/image.png"/></filter>'
        '<image href="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="/>'
        '<a href="http://127.0.0.1:9/x"><rect width="10" height="10" fill="url(#g)"/></a>'
        '<!-- <image href="/etc/comment.png"/> -->'
    )
    text = documents.read(write(tmp_path, "a.svg", document), Limits()).text
    assert "href=" not in text and "xml-stylesheet" not in text and "comment" not in text
    assert 'fill="url(#g)"' in text  # references within the document stay


def test_a_small_raster_data_uri_is_drawn(tmp_path: Path) -> None:
    image = rendered(
        write(tmp_path, "a.svg", with_images(data_uri(vectors.png(20, 10, (0, 0, 255))))), width=200
    )
    assert near(image[50, 100], (255, 0, 0))  # BGR blue, over the red


@pytest.mark.parametrize(
    "href",
    [
        data_uri(vectors.png(20, 10), "image/jpeg"),  # a type that is not what it holds
        data_uri(vectors.png(20, 10), "text/plain"),  # resvg would read it as an SVG
        data_uri(vectors.png(20, 10)).replace("iVBOR", "%69VBOR"),  # percent-escapes
        data_uri(red_rect(), "image/svg+xml"),
        "data:image/png,not-base64",
    ],
    ids=["mislabelled", "text", "percent", "svg", "not-base64"],
)
def test_other_data_uris_are_dropped(tmp_path: Path, href: str) -> None:
    text = documents.read(write(tmp_path, "a.svg", with_images(href)), Limits()).text
    assert "href" not in text


def test_the_document_resvg_parses_is_the_one_checked(tmp_path: Path) -> None:
    data = (
        b'<?xml version="1.0"?><!-- c --><svg xmlns="http://www.w3.org/2000/svg" width="2in" height="1in" '
        b'viewBox="0 0 20 10"><style>text { font-family: Helvetica; }</style>'
        b'<text font-family="Arial" style="font-family: serif; fill: red">a &lt;&amp;&gt; "b"</text></svg>'
    )
    document = documents.read(write(tmp_path, "a.svg", data), Limits())
    assert document.size == (192, 96) and document.elements == 3
    assert document.text.startswith(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 20 10" width="192" height="96">'
    )
    assert "font-family: Helvetica, 'DejaVu Sans'" in document.text
    assert "font-family=\"Arial, 'DejaVu Sans'\"" in document.text
    assert "font-family: serif, 'DejaVu Sans'; fill: red" in document.text
    assert 'a &lt;&amp;&gt; "b"</text>' in document.text


# --- HTTP -----------------------------------------------------------------------------------------


@pytest.fixture
def svg_client(tmp_path: Path) -> FlaskClient:
    files = {
        "red.svg": red_rect(),
        "lol.svg": vectors.billion_laughs(),
        "uses.svg": vectors.use_bomb(),
        "cut.svg": cut(red_rect(), "half"),
        "embedded.svg": vectors.embedded_bomb(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return create_app(Settings(image_root=tmp_path, cache_dir=tmp_path / "cache")).test_client()


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/image/lol.svg?w=40", 415, "internal subset"),
        ("/image/uses.svg?w=40", 413, "references are expanded"),
        ("/image/cut.svg?w=40", 415, "truncated SVG"),
        ("/image/embedded.svg?w=40", 413, "an image in the SVG"),
        ("/image/red.svg?frame=1", 400, "frame"),
        ("/image/red.svg?fmt=svg", 400, "fmt"),  # served as SVG: not offered
    ],
)
def test_refusals_through_http(svg_client: FlaskClient, url: str, status: int, words: str) -> None:
    response = svg_client.get(url)
    assert response.status_code == status
    assert words in response.get_json()["error"]
    assert response.headers["Cache-Control"] == "no-store"


# --- integration: drawn in a child bounded in time and memory, as a worker draws -----------------


def raw(document: bytes, canvas: tuple[int, int] = (200, 100), seconds: float = 2) -> np.ndarray:
    """``document`` drawn as a worker draws it, past svg.py's checks: what the child's bounds do."""
    limits = Limits(deadline=time.monotonic() + seconds)
    return drawing.draw(document.decode(), (1, 0, 0, 0, 1, 0), canvas, limits)


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drawing, "ISOLATED", True)


@pytest.mark.integration
def test_the_child_draws_what_the_process_draws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "illustration.svg", vectors.illustration(50))
    monkeypatch.setattr(drawing, "ISOLATED", False)
    inside = rendered(path, width=300, height=300, fit="cover")
    monkeypatch.setattr(drawing, "ISOLATED", True)
    assert np.array_equal(rendered(path, width=300, height=300, fit="cover"), inside)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("document", "error", "seconds"),
    [
        (vectors.huge_path, Overloaded, 2.5),  # killed at the deadline
        (vectors.pattern_bomb, Overloaded, 2.5),  # past svg.py's count: the deadline
        (vectors.huge_pattern_tile, SourceTooLarge, 1.5),  # resvg aborts at its allocation
        (vectors.embedded_bomb, SourceTooLarge, 1.5),  # past svg.py's probe: the memory bound
        (vectors.deep, UnsupportedImage, 1.5),  # resvg's own limit, or its stack: the child dies
        (lambda: red_rect().replace(b"/>", b">"), UnsupportedImage, 1.5),  # resvg refuses it (a panic)
    ],
    ids=["huge-path", "pattern-bomb", "huge-tile", "embedded-bomb", "deep", "refused"],
)
def test_the_child_is_bounded_in_time_and_memory(
    isolated: None, document: Callable[[], bytes], error: type[Exception], seconds: float
) -> None:
    data = document()
    started = time.monotonic()
    with pytest.raises(error):
        raw(data)
    assert time.monotonic() - started < seconds
    assert near(raw(red_rect())[50, 100], (255, 0, 0))  # RGBA here: red; and drawing goes on


@pytest.mark.integration
def test_a_huge_blur_is_cut_by_a_bound_in_time(isolated: None) -> None:
    """Its filter region is a thousand times the picture's. Which bound cuts it depends on the
    process it is forked from: from a small gunicorn worker, the memory bound (413 in 0.7 s,
    tested through one below); from this larger process it has fitted its memory and been stopped
    at the deadline (503), or drawn whole before it. Whichever, the answer comes by the deadline,
    and nothing but the child is at risk."""
    started = time.monotonic()
    try:
        drawn = raw(vectors.huge_blur(), (2000, 1000), seconds=2)
    except SourceTooLarge as error:
        assert "MiB to draw" in error.message
    except Overloaded as error:
        assert error.reason == "deadline"
    else:
        assert drawn.shape[:2] == (1000, 2000)
    assert time.monotonic() - started < 3


@pytest.mark.integration
def test_a_blur_a_site_would_use_is_drawn_at_2000_px(isolated: None) -> None:
    assert raw(vectors.blurred(), (2000, 1500)).shape == (1500, 2000, 4)


def fifo(directory: Path) -> Path:
    path = directory / "fifo.png"
    os.mkfifo(path)
    return path


def unread(path: Path) -> bool:
    """Whether no process holds ``path`` (a FIFO) open for reading: opening it to write without
    blocking fails with ENXIO then (a reader that opened it would still be waiting on it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        return error.errno == errno.ENXIO
    os.close(fd)
    return False


@pytest.mark.integration
def test_no_href_stylesheet_or_font_opens_a_file(
    tmp_path: Path, isolated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every way a document names a file, pointed at a FIFO: a read of it would block the child
    until the deadline (503, and a reader on the FIFO); the drawing is done at once instead.
    /dev/zero would never end."""
    pipe = fifo(tmp_path)
    monkeypatch.chdir(tmp_path)
    document = svg(
        f'<style>@import url("{pipe}"); @font-face {{ font-family: f; src: url("{pipe}"); }}'
        f"text {{ font-family: f; }} circle {{ fill: url({pipe}); }}</style>"
        f'<rect width="200" height="100" fill="red"/><text y="50">x</text>'
        f'<image width="200" height="100" href="{pipe}"/><image width="200" height="100" href="fifo.png"/>'
        f'<image width="200" height="100" href="file://{pipe}"/>'
        '<image width="9" height="9" href="/dev/zero"/>'
        f'<use href="{pipe}#a"/><filter id="f"><feImage href="{pipe}"/></filter>'
        '<rect width="9" height="9" filter="url(#f)"/>'
    )
    path = write(tmp_path, "fifo.svg", b'<?xml-stylesheet href="fifo.png"?>' + document)
    started = time.monotonic()
    image = rendered(path, limits=Limits(deadline=time.monotonic() + 3), width=200)
    assert time.monotonic() - started < 2
    assert near(image[50, 100], RED) and unread(pipe)


class Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        Counting.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        data = vectors.png(20, 20, (0, 0, 255))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    """A server on loopback counting every request it gets (none should come)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def fetching(port: int) -> bytes:
    url = f"http://127.0.0.1:{port}"
    return svg(
        f'<style>@import url("{url}/a.css");'
        f'@font-face {{ font-family: f; src: url("{url}/f.ttf"); }}</style>'
        f'<rect width="200" height="100" fill="red"/><image width="200" height="100" href="{url}/x.png"/>'
        f'<image width="200" height="100" xlink:href="{url}/y.png"/><text font-family="f" y="50">x</text>'
        f'<use href="{url}/u.svg#a"/>'
    )


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, upstream: int) -> Iterator[Server]:
    """One gunicorn worker with a deadline of 2 s, serving every hostile document."""
    base = tmp_path_factory.mktemp("svg-hostile")
    root = base / "images"
    root.mkdir()
    files = {
        "red.svg": red_rect(),
        "lol.svg": vectors.billion_laughs(),
        "uses.svg": vectors.use_bomb(),
        "patterns.svg": vectors.pattern_bomb(levels=4, fan=8),  # under the count: the deadline's
        "deep.svg": vectors.deep(),
        "many.svg": vectors.many(),
        "path.svg": vectors.huge_path(),
        "tile.svg": vectors.huge_pattern_tile(),
        "blur.svg": vectors.huge_blur(),
        "embedded.svg": vectors.embedded_bomb(),
        "fetching.svg": fetching(upstream),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    env = {
        "PROXY_IMAGE_ROOT": str(root),
        "PROXY_CACHE_DIR": str(base / "cache"),
        "PROXY_TRANSFORM_DEADLINE": "2",
    }
    server = start_gunicorn(env, workers=1)
    yield server
    server.stop()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("path", "statuses", "seconds"),
    [
        ("/image/lol.svg?w=400", {415}, 0.5),
        ("/image/uses.svg?w=400", {413}, 0.5),
        ("/image/deep.svg?w=400", {413}, 1),
        ("/image/many.svg?w=400", {413}, 3),
        ("/image/embedded.svg?w=400", {413}, 0.5),
        ("/image/tile.svg?w=400", {413}, 1),  # resvg's allocation refused: the child aborts
        ("/image/path.svg?w=2000", {503}, 3),  # killed at the 2 s deadline
        ("/image/patterns.svg?w=2000", {200, 503}, 3),
        ("/image/blur.svg?w=2000", {413}, 3),  # its filter region: over the memory bound
        ("/image/fetching.svg?w=400", {200}, 1),
    ],
)
def test_each_hostile_svg_gets_its_status_in_time_and_the_worker_answers_the_next(
    hostile: Server, path: str, statuses: set[int], seconds: float
) -> None:
    workers = hostile.workers()
    started = time.monotonic()
    status, _, _ = hostile.request("GET", path)
    elapsed = time.monotonic() - started
    assert status in statuses and elapsed < seconds, (path, status, elapsed)
    next_status, headers, body = hostile.request("GET", "/image/red.svg?w=400&q=" + str(len(path)))
    assert next_status == 200 and decode(body).shape == (200, 400, 4)
    assert hostile.workers() == workers  # the same worker: none was lost


@pytest.mark.integration
def test_no_request_leaves_for_a_url_in_a_document(hostile: Server) -> None:
    Counting.hits.clear()
    status, _, body = hostile.request("GET", "/image/fetching.svg?w=200&fmt=png&v=1")
    assert status == 200 and near(decode(body)[50, 100], RED)
    assert Counting.hits == []
