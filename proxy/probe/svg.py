"""An SVG's declared size, from its root element, read by expat: nothing expanded, nothing fetched.

An SVG is an XML document whose root element is ``svg`` in the SVG namespace, after at most an
XML declaration, comments, processing instructions and a DOCTYPE. A DOCTYPE naming an external
DTD (Illustrator writes one) is allowed and never read; one with an internal subset (``[...]``,
where entities are declared: the billion laughs) is refused before its first declaration is
read, and so is any entity reference XML does not define itself. ``parser`` makes an expat
parser with these refusals; pipeline/svg.py reads the whole document with one. Gzipped SVG
(SVGZ) is not sniffed as SVG: it is refused like any other unknown format.

The declared size (the SVG's intrinsic size, which a browser would give an ``<img>``): ``width``
and ``height`` in px, pt, pc, mm, cm or in (96 px to the inch, as in CSS), em or ex (16 and 8 px:
CSS's default font size); a percentage, or none, takes the ``viewBox``'s, keeping its aspect ratio
when the other is given. Rounded to whole pixels, at least 1. No size at all is refused.
"""

from __future__ import annotations

import math
import re
from typing import BinaryIO, NoReturn
from xml.parsers import expat

from ..errors import UnsupportedImage
from .base import SourceInfo, _truncated

SVG_NAMESPACE = "http://www.w3.org/2000/svg"
HEAD = 1 << 16  # bytes read to find the root element: the prolog must fit in them

_UNITS = {"": 1.0, "px": 1.0, "pt": 96 / 72, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}
_UNITS |= {"em": 16.0, "ex": 8.0}
_LENGTH = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(px|pt|pc|mm|cm|in|em|ex|%)?\s*")
_SEPARATORS = re.compile(r"[\s,]+")


def _refuse(reason: str) -> NoReturn:
    raise UnsupportedImage(f"SVG refused: {reason}")


def parser() -> expat.XMLParserType:
    """An expat parser that refuses what could make a small document large or make it read
    something else: a DOCTYPE's internal subset, entity declarations, and references to entities
    XML does not define (an external DTD's, which is never read)."""

    def doctype(name: str, system: str | None, public: str | None, internal_subset: bool) -> None:
        if internal_subset:
            _refuse("a DOCTYPE with an internal subset (entity declarations)")

    def entity(*_: object) -> None:
        _refuse("entity declarations")

    def skipped(name: str, parameter: bool) -> None:
        _refuse(f"the entity &{name}; is not defined")

    reader = expat.ParserCreate()
    reader.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    reader.StartDoctypeDeclHandler = doctype
    reader.EntityDeclHandler = entity
    reader.UnparsedEntityDeclHandler = entity
    reader.NotationDeclHandler = entity
    reader.SkippedEntityHandler = skipped
    reader.ExternalEntityRefHandler = lambda *_: _refuse("an external entity")
    return reader


class _Root(Exception):
    """The root element's start tag, found: reading stops there."""

    def __init__(self, name: str, attributes: dict[str, str]) -> None:
        super().__init__(name)
        self.name, self.attributes = name, attributes


def _svg(file: BinaryIO) -> SourceInfo | None:
    """The declared size of the SVG in ``file``; None when it is not an SVG (another XML
    document, text that is not XML)."""
    data = file.read(HEAD)
    reader = parser()

    def root(name: str, attributes: dict[str, str]) -> None:
        raise _Root(name, attributes)

    reader.StartElementHandler = root
    try:
        reader.Parse(data, False)  # never final: a prolog cut short waits for more, as below
    except _Root as found:
        if not is_svg(found.name, found.attributes):
            return None
        width, height = declared_size(found.attributes)
        return SourceInfo("svg", width, height, channels=4, alpha=True)  # transparent unless painted
    except expat.ExpatError:
        return None
    if len(data) < HEAD and (b"<svg" in data or b":svg" in data):  # the file ended inside its prolog
        raise _truncated("svg")
    return None


def is_svg(name: str, attributes: dict[str, str]) -> bool:
    """Whether a root element is ``svg`` in the SVG namespace (``svg``, or ``p:svg`` with ``p``
    bound to it): without it, browsers show nothing either."""
    prefix, _, local = name.rpartition(":")
    return local == "svg" and attributes.get(f"xmlns:{prefix}" if prefix else "xmlns") == SVG_NAMESPACE


def declared_size(attributes: dict[str, str]) -> tuple[int, int]:
    """The root element's (width, height) in whole pixels: its own, or its viewBox's."""
    width, height = _length(attributes.get("width")), _length(attributes.get("height"))
    box = _view_box(attributes.get("viewBox"))
    if width is None or height is None:
        if box is None:
            if width is None and height is None:
                _refuse("no size: neither width and height nor a viewBox")
            _refuse("a width or height alone, without a viewBox to take the other from")
        if width is not None:
            height = width * box[1] / box[0]
        elif height is not None:
            width = height * box[0] / box[1]
        else:
            width, height = box
    return _pixels(width), _pixels(height)


def _length(value: str | None) -> float | None:
    """A length in px; None for a percentage (of a viewport an image does not have) or none."""
    if value is None or value.strip() in ("", "auto"):  # SVG 2's auto: 100%
        return None
    match = _LENGTH.fullmatch(value)
    if match is None:
        _refuse(f"the length {value[:40]!r}")
    number, unit = match.groups()
    if unit == "%":
        return None
    return float(number) * _UNITS[unit or ""]


def _view_box(value: str | None) -> tuple[float, float] | None:
    if value is None or not value.strip():
        return None
    try:
        _, _, width, height = (float(part) for part in _SEPARATORS.split(value.strip()))
    except ValueError:
        _refuse(f"the viewBox {value[:60]!r}")
    if not (width > 0 and height > 0 and math.isfinite(width * height)):
        _refuse(f"the viewBox {value[:60]!r}")
    return width, height


def _pixels(length: float) -> int:
    if not (length > 0 and math.isfinite(length)):
        _refuse(f"a size of {length}")
    return max(1, round(length))
