"""SVG documents for the tests and the benchmarks: plain ones of every kind a site serves (an
icon, an illustration, text, a filter), and hostile ones, each named for what it attacks."""

from __future__ import annotations

import base64
import random
import struct
import zlib

NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'


def svg(body: str, size: str = 'width="200" height="100"') -> bytes:
    """``body`` in an svg root of ``size`` (its attributes), with the SVG and XLink namespaces."""
    return f"<svg {NS} {size}>{body}</svg>".encode()


def red_rect() -> bytes:
    """A red rectangle on transparent: 200x100, the rectangle at 50,25 to 150,75."""
    return svg('<rect x="50" y="25" width="100" height="50" fill="red"/>')


def png(width: int, height: int, rgb: tuple[int, int, int] = (0, 0, 255)) -> bytes:
    """A small opaque PNG of one colour (written here, so that a document can embed it)."""
    row = b"\0" + bytes(rgb) * width
    return _png(width, height, zlib.compress(row * height))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (a bomb's header), its data a stub."""
    return _png(width, height, zlib.compress(b"\0" * 64))


def _png(width: int, height: int, data: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def data_uri(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


# --- what a site serves: the benchmark's sources ---------------------------------------------


def icon() -> bytes:
    """A 24-unit icon (strokes, a circle) declared 64x64: the commonest SVG there is."""
    return svg(
        '<path fill="none" stroke="#1a73e8" stroke-width="2" stroke-linecap="round" d="M3 12h18M12 3v18"/>'
        '<circle cx="12" cy="12" r="9" fill="none" stroke="#333" stroke-width="1.5"/>',
        'width="64" height="64" viewBox="0 0 24 24"',
    )


def illustration(shapes: int = 400, seed: int = 1) -> bytes:
    """An 800x600 illustration: a gradient, ``shapes`` translucent Bezier shapes, a glow."""
    rng = random.Random(seed)
    parts = [
        '<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#f80"/>'
        '<stop offset="1" stop-color="#08f"/></linearGradient><radialGradient id="r">'
        '<stop offset="0" stop-color="#fff" stop-opacity="0.9"/><stop offset="1" stop-color="#fff" '
        'stop-opacity="0"/></radialGradient></defs><rect width="800" height="600" fill="url(#g)"/>'
    ]
    for _ in range(shapes):
        points = [f"{rng.uniform(0, 800):.1f},{rng.uniform(0, 600):.1f}" for _ in range(7)]
        parts.append(
            f'<path d="M{points[0]} C{" ".join(points[1:4])} S{" ".join(points[4:6])} Z" '
            f'fill="hsl({rng.randint(0, 359)},70%,50%)" fill-opacity="0.5" stroke="#222"/>'
        )
    parts.append('<circle cx="400" cy="300" r="250" fill="url(#r)"/>')
    return svg("".join(parts), 'width="800" height="600" viewBox="0 0 800 600"')


def text() -> bytes:
    """Two lines of text, one in a family no machine here has (drawn in the bundled font)."""
    return svg(
        '<rect width="600" height="200" fill="#fff"/>'
        '<text x="20" y="80" font-family="DejaVu Sans" font-size="48" fill="#123">Hello, vector world</text>'
        '<text x="20" y="160" font-family="Helvetica, sans-serif" font-size="32" fill="#c00">'
        "Any family</text>",
        'width="600" height="200"',
    )


def blurred() -> bytes:
    """A Gaussian blur filter over two shapes: resvg's costliest common feature."""
    return svg(
        '<filter id="f"><feGaussianBlur stdDeviation="8"/></filter><g filter="url(#f)">'
        '<circle cx="200" cy="150" r="100" fill="#06c"/>'
        '<rect x="50" y="50" width="100" height="60" fill="#c60"/>'
        "</g>",
        'width="400" height="300"',
    )


def sources() -> dict[str, bytes]:
    """The benchmark's SVG sources, by name (bench/transform.py)."""
    return {"icon.svg": icon(), "illustration.svg": illustration(), "text.svg": text(), "blur.svg": blurred()}


# --- hostile documents -------------------------------------------------------------------------


def billion_laughs() -> bytes:
    """Ten entities of ten references each, 10^9 characters from 1 KB, in the DOCTYPE."""
    entities = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    return f'<?xml version="1.0"?><!DOCTYPE svg [{entities}]>'.encode() + svg("<text>&a9;</text>")


def use_bomb(levels: int = 10, fan: int = 10) -> bytes:
    """``levels`` groups of ``fan`` <use> of the one before: fan^levels rectangles from 2 KB."""
    groups = "".join(
        f'<g id="l{i}">' + f'<use xlink:href="#l{i - 1}"/>' * fan + "</g>" for i in range(1, levels + 1)
    )
    return svg(f'<defs><rect id="l0" width="1" height="1"/>{groups}</defs><use href="#l{levels}"/>')


def pattern_bomb(levels: int = 8, fan: int = 8) -> bytes:
    """Patterns filled with patterns, ``fan`` per level: no <use>, the same explosion."""
    tile = 'width="10" height="10" patternUnits="userSpaceOnUse"'
    patterns = f'<pattern id="p0" {tile}><rect width="5" height="5"/></pattern>'
    for i in range(1, levels + 1):
        rects = "".join(f'<rect x="{j}" width="1" height="10" fill="url(#p{i - 1})"/>' for j in range(fan))
        patterns += (
            f'<pattern id="p{i}" width="10" height="10" patternUnits="userSpaceOnUse">{rects}</pattern>'
        )
    return svg(f'{patterns}<rect width="200" height="100" fill="url(#p{levels})"/>')


def deep(depth: int = 100_000) -> bytes:
    """Groups within groups: resvg recurses, and overflows its stack."""
    return svg("<g>" * depth + "</g>" * depth)


def many(elements: int = 300_000) -> bytes:
    return svg('<rect width="1" height="1"/>' * elements)


def huge_path(segments: int = 1_000_000) -> bytes:
    """One self-intersecting path of a million segments across the picture: seconds to fill."""
    data = "M0 0 " + " ".join(f"L{(i * 7) % 200} {(i * 13) % 100}" for i in range(segments))
    return svg(f'<path d="{data}" stroke="black" fill="black"/>')


def huge_pattern_tile() -> bytes:
    """A pattern tile of 10^5 x 10^5 user units: resvg allocates it, and aborts when it cannot."""
    return svg(
        '<pattern id="p" width="100000" height="100000" patternUnits="userSpaceOnUse">'
        '<rect width="100000" height="100000" fill="red"/></pattern>'
        '<rect width="200" height="100" fill="url(#p)"/>'
    )


def huge_blur() -> bytes:
    """A blur of a million pixels' deviation over a filter region a thousand times the picture."""
    return svg(
        '<filter id="f" x="-1000" y="-1000" width="2000" height="2000"><feGaussianBlur stdDeviation="1e6"/>'
        '</filter><rect width="200" height="100" filter="url(#f)"/>'
    )


def embedded_bomb() -> bytes:
    """An <image> whose data: PNG declares 50000 x 50000 pixels (7.5 GB decoded)."""
    return svg(f'<image width="200" height="100" href="{data_uri(png_declaring(50_000, 50_000))}"/>')


def declared(attributes: str) -> bytes:
    """A red rectangle filling a document whose root has these ``attributes`` (its size)."""
    return f'<svg {NS} {attributes}><rect width="100%" height="100%" fill="red"/></svg>'.encode()
