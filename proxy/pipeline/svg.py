"""SVG originals: the document checked and written anew before resvg sees it (drawing.py draws it).

The document is read once, by expat with the probe's refusals (probe/svg.py: no DOCTYPE internal
subset, no entity, nothing fetched), and written out again from what expat read: resvg parses only
what this module has seen and checked, so no difference between two XML parsers can carry anything
past the checks. On the way:

- its cost is counted, before anything is drawn: its elements, each reference (``href="#id"``,
  ``url(#id)``) counted as a copy of its target's elements, as a ``<use>`` is drawn (an
  over-estimate for gradients and the like, which is what makes it safe for every kind of
  reference), and their nesting, references included. Over ``MAX_ELEMENTS`` or ``MAX_DEPTH`` is
  413: ten levels of ten ``<use>`` each, 10^10 elements from 2 KB, are refused in milliseconds;
- every ``href`` that is not a reference within the document (``#id``) is dropped, except an
  ``<image>``'s base64 ``data:`` URI of a PNG, JPEG, GIF or WebP whose header matches its type and
  declares at most ``PROXY_MAX_SOURCE_PIXELS`` (more is 413). A path, a ``file:`` or ``http:`` URL,
  an SVG in a ``data:`` URI: dropped, drawn as a browser draws an SVG in an ``<img>``, without them;
- comments, processing instructions (``<?xml-stylesheet?>``) and the DOCTYPE are left out;
- each ``font-family`` ends with the one font resvg is given (drawing.FAMILY), so text in any
  family is drawn, in DejaVu Sans Bold, rather than left out;
- the root's ``width`` and ``height`` become the declared size in pixels, so resvg and the plan
  agree on it to the pixel.

``picture`` then draws what a plan needs, at the planned size (geometry.plan_drawing); ``whole``
draws it at its declared size.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from xml.parsers import expat
from xml.sax.saxutils import escape

from ..errors import SourceTooLarge, UnsupportedImage
from ..limits import Limits
from ..probe import probe_bytes, truncated
from ..probe.svg import declared_size, is_svg, parser
from .checks import check_drawn
from .drawing import FAMILY, draw
from .geometry import Drawing, Geometry, plan_drawing
from .pixels import Image

MAX_ELEMENTS = 200_000  # elements, references expanded: a million simple ones take resvg seconds
MAX_DEPTH = 256  # elements within elements, through references too (resvg recurses; so do we here)
_CHUNK = 1 << 20  # bytes parsed between two looks at the deadline

_RASTERS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif"}
_RASTERS |= {"image/webp": "webp"}
_REFERENCE = re.compile(r"url\(\s*[\"']?\s*#([^\"')\s]+)")
_FAMILY = re.compile(r"(font-family\s*:\s*)([^;{}!]*[^;{}!\s])", re.IGNORECASE)
_WHITESPACE = "\t\n\f\r "
_ATTRIBUTE = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}  # kept through normalisation


@dataclass(frozen=True)
class Document:
    text: str  # the document as written anew: what resvg parses
    size: tuple[int, int]  # declared (width, height), whole pixels: the root's width and height in it
    elements: int  # elements, references expanded


def read(path: str, limits: Limits) -> Document:
    """The SVG at ``path``, checked and written anew: 415 for what is not a well-formed SVG or
    refused (probe/svg.py), "truncated" when it ends before its root element does; 413 over
    MAX_ELEMENTS or MAX_DEPTH, or for an embedded image over the pixel limit."""
    writer = _Writer(limits)
    reader = parser()
    reader.buffer_text = True
    reader.ordered_attributes = True
    reader.StartElementHandler = writer.start
    reader.EndElementHandler = writer.end
    reader.CharacterDataHandler = writer.characters
    with open(path, "rb") as file:
        try:
            while chunk := file.read(_CHUNK):
                reader.Parse(chunk, False)
                limits.check_deadline()
        except expat.ExpatError as error:
            raise UnsupportedImage(f"malformed SVG: {_where(error)}") from None
    try:
        reader.Parse(b"", True)
    except expat.ExpatError:  # only what needed more bytes fails here: an element left open
        raise truncated("svg") from None
    assert writer.size is not None  # a root element was read, or Parse failed
    elements, depth = _expanded(writer.children, writer.references, writer.ids)
    if elements > MAX_ELEMENTS:
        raise SourceTooLarge(
            f"the SVG has over {MAX_ELEMENTS} elements once its references are expanded, over the limit"
        )
    if depth > MAX_DEPTH:
        raise SourceTooLarge(f"the SVG nests elements over {MAX_DEPTH} deep through its references")
    return Document("".join(writer.out), writer.size, elements)


def picture(document: Document, drawing: Drawing, limits: Limits) -> Image:
    """What ``drawing`` asks of the document: RGBA, in the stored frame (drawing.draw)."""
    return draw(document.text, drawing.transform, drawing.canvas, limits)


def whole(path: str, limits: Limits, document: Document | None = None, side: int = 0) -> Image:
    """The SVG drawn whole at its declared size (trim's search, any other decode), or larger, its
    longest side ``side`` (a mark, which is scaled down to its place, so stays sharp)."""
    document = document or read(path, limits)
    width, height = document.size
    scale = max(1.0, side / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    drawn = plan_drawing(Geometry(size), document.size, 1)
    check_drawn(drawn.canvas, limits)
    return picture(document, drawn, limits)


def _where(error: expat.ExpatError) -> str:
    return f"{expat.ErrorString(error.code)} at line {error.lineno}, column {error.offset + 1}"


class _Writer:
    """expat's handlers: the document written anew (``out``) and its elements counted."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.out: list[str] = []
        self.size: tuple[int, int] | None = None
        self.children: list[list[int]] = []  # by element, in document order
        self.references: list[list[str]] = []  # the ids each element refers to
        self.ids: dict[str, int] = {}
        self.open: list[int] = []  # the elements open, innermost last
        self.styles: list[bool] = []  # whether each open element is a <style>
        self.css: list[str] = []  # the text of the <style> open

    def start(self, name: str, attributes: list[str]) -> None:
        index = len(self.children)
        if index >= MAX_ELEMENTS:
            raise SourceTooLarge(f"the SVG has over {MAX_ELEMENTS} elements, over the limit")
        if len(self.open) >= MAX_DEPTH:
            raise SourceTooLarge(f"the SVG nests elements over {MAX_DEPTH} deep")
        if self.open:
            self.children[self.open[-1]].append(index)
        self.children.append([])
        self.references.append([])
        element = name.rpartition(":")[2]
        pairs = list(zip(attributes[::2], attributes[1::2], strict=True))
        if index == 0:
            pairs = self._root(name, pairs)
        kept = []
        for key, value in pairs:
            attribute = key.rpartition(":")[2]
            if attribute == "href" and not self._follows(element, value, index):
                continue  # dropped: drawn as if it were not there
            elif attribute == "id":
                self.ids.setdefault(value, index)
            elif attribute == "font-family":
                value = _with_fallback(value)
            elif attribute == "style":
                value = _FAMILY.sub(_fallback, value)
            self.references[index].extend(_REFERENCE.findall(value))
            kept.append(f' {key}="{escape(value, _ATTRIBUTE)}"')
        self.out.append(f"<{name}{''.join(kept)}>")
        self.open.append(index)
        self.styles.append(element == "style")

    def end(self, name: str) -> None:
        if self.styles.pop():
            self.out.append(escape(_FAMILY.sub(_fallback, "".join(self.css))))
            self.css.clear()
        self.open.pop()
        self.out.append(f"</{name}>")

    def characters(self, data: str) -> None:
        if self.styles and self.styles[-1]:
            self.css.append(data)
        else:
            self.out.append(escape(data))

    def _root(self, name: str, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The root's attributes, its width and height in whole pixels (its declared size)."""
        attributes = dict(pairs)
        if not is_svg(name, attributes):
            raise UnsupportedImage("not an SVG: the root element is not svg in the SVG namespace")
        self.size = declared_size(attributes)
        kept = [(key, value) for key, value in pairs if key not in ("width", "height")]
        return [*kept, ("width", str(self.size[0])), ("height", str(self.size[1]))]

    def _follows(self, element: str, href: str, index: int) -> bool:
        """Whether resvg may follow ``href``: a reference within the document, or an image's
        raster data: URI."""
        if href.startswith("#"):
            self.references[index].append(href[1:])
            return True
        return element == "image" and _raster(href, self.limits)


def _raster(value: str, limits: Limits) -> bool:
    """Whether ``value`` is a base64 data: URI of a PNG, JPEG, GIF or WebP that says what it is
    (resvg takes the type's word: one it does not know would be read as an SVG), small enough."""
    header, comma, payload = value.strip(_WHITESPACE).partition(",")
    kind, _, encoding = header.lower().removeprefix("data:").partition(";")
    if not comma or not header.lower().startswith("data:") or encoding != "base64" or kind not in _RASTERS:
        return False
    try:  # percent-escapes, which a browser decodes first, are refused: base64 and whitespace only
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    info = probe_bytes(data)
    if info is None or info.format != _RASTERS[kind]:
        return False
    if info.pixels > limits.max_source_pixels:
        raise SourceTooLarge(
            f"an image in the SVG declares {info.width}x{info.height} pixels, "
            f"over the limit of {limits.max_source_pixels}"
        )
    return True


def _with_fallback(families: str) -> str:
    value = families.strip()
    if not value or value in ("inherit", "initial", "unset") or FAMILY in value:
        return families
    return f"{value}, '{FAMILY}'"


def _fallback(match: re.Match[str]) -> str:
    return match.group(1) + _with_fallback(match.group(2))


def _expanded(children: list[list[int]], references: list[list[str]], ids: dict[str, int]) -> tuple[int, int]:
    """The root's elements with every reference expanded, and how deep they nest (a reference
    to an element being expanded, a cycle, counts nothing: resvg draws nothing for it). Counts
    stop just over MAX_ELEMENTS, so that 10^10 stays a small number."""
    edges = [
        [*kids, *(ids[target] for target in refs if target in ids)]
        for kids, refs in zip(children, references, strict=True)
    ]
    count, depth = [0] * len(edges), [0] * len(edges)
    state = [0] * len(edges)  # 0 not seen, 1 being expanded, 2 done
    stack = [(0, False)]
    while stack:
        node, done = stack.pop()
        if done:
            finished = [edge for edge in edges[node] if state[edge] == 2]
            count[node] = min(MAX_ELEMENTS + 1, 1 + sum(count[edge] for edge in finished))
            depth[node] = min(MAX_DEPTH + 1, 1 + max((depth[edge] for edge in finished), default=0))
            state[node] = 2
        elif state[node] == 0:
            state[node] = 1
            stack.append((node, True))
            stack.extend((edge, False) for edge in edges[node] if state[edge] == 0)
    return count[0], depth[0]
