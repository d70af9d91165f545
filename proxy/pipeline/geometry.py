"""Pure planning: where the output's pixels come from and go, fixed before a pixel is decoded.

Geometry is planned in the *oriented* frame (what the viewer sees), from the size the original's
header declares, so the limits on the result are checked (checks.py) before any work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from .. import libwebp
from ..errors import InvalidParameter
from ..formats import Format
from ..params import ImageParams
from ..probe import SourceInfo

RGBA = tuple[int, int, int, int]


@dataclass(frozen=True)
class Geometry:
    """Output geometry in the oriented frame: cut ``region``, scale to ``size``, then crop or pad."""

    size: tuple[int, int]  # (width, height) the whole image (or region) is resized to
    crop: tuple[int, int, int, int] | None = None  # x, y, width, height within ``size`` (cover)
    canvas: tuple[int, int] | None = None  # (width, height) to pad to (contain)
    region: tuple[int, int, int, int] | None = None  # rect=: x, y, w, h of the original, cut first
    smart: str | None = None  # entropy or attention: ``crop``'s offset is found in the pixels (gravity.py)
    anchor: tuple[float, float] = (0.5, 0.5)  # where contain places the image on its canvas


@dataclass(frozen=True)
class Mark:
    """A watermark as the step draws it: its pixels (BGRA, 8-bit, upright, sRGB) and placement."""

    image: np.ndarray
    place: str  # a compass point, or "tile"
    scale: float  # its width, as a fraction of the result's
    opacity: float  # 0..1, times its own alpha
    pad: int  # pixels from the edges, or between tiles


@dataclass(frozen=True)
class Plan:
    """Everything the steps need, fixed before the first one runs."""

    geometry: Geometry
    orientation: int
    output: Format
    background: RGBA
    profile: bytes | None = None  # the original's ICC profile, when its pixels are not yet sRGB
    source: tuple[int, int] = (0, 0)  # the original's oriented (width, height), which ``region`` is in
    rgb: bool = False  # the decoded channels are in RGB(A) order, until the ``bgr`` step
    blur: float | None = None  # sigma, output pixels (edits.py)
    sharpen: float | None = None  # sigma, output pixels
    pixelate: int | None = None  # block side, output pixels
    mark: Mark | None = None  # a watermark over the result (watermark.py)

    @classmethod
    def of(
        cls,
        geometry: Geometry,
        orientation: int,
        output: Format,
        params: ImageParams,
        profile: bytes | None,
        source: tuple[int, int],
        rgb: bool = False,
        overlay: np.ndarray | None = None,
    ) -> Plan:
        """The plan of ``params`` once the geometry is known; ``overlay``: the watermark's pixels."""
        mark = None
        if overlay is not None and params.marked:
            mark = Mark(
                overlay, params.mark_pos, float(params.mark_scale), params.mark_alpha / 100, params.mark_pad
            )
        return cls(
            geometry,
            orientation,
            output,
            params.background,
            profile,
            source,
            rgb,
            blur=None if params.blur is None else float(params.blur),
            sharpen=None if params.sharpen is None else float(params.sharpen),
            pixelate=params.pixelate,
            mark=mark,
        )


def plan_geometry(width: int, height: int, params: ImageParams) -> Geometry:
    """Where a ``width`` x ``height`` source (or its ``rect``) ends up; never larger than that
    unless ``enlarge``."""
    full = (width, height)
    region = _region(width, height, params.rect)
    origin = (0, 0)
    if region is not None:
        origin, (width, height) = region[:2], region[2:]
    w, h = params.width, params.height
    if w is None and h is None:
        return Geometry((width, height), region=region)
    ceiling = math.inf if params.enlarge else 1.0  # enlarge=1 lifts the never-enlarge rule
    if w is None or h is None or params.fit == "inside":
        scale = min(ceiling, w / width if w else math.inf, h / height if h else math.inf)
        return Geometry(_scaled(width, height, scale), region=region)
    # A box larger than the source shrinks in proportion until it fits (unless enlarging).
    box = (w, h) if params.enlarge else _scaled(w, h, min(1.0, width / w, height / h))
    anchor = ANCHORS.get(params.gravity, (0.5, 0.5))
    if params.fit == "fill":
        return Geometry(box, region=region)
    if params.fit == "cover":
        size = _scaled(width, height, max(box[0] / width, box[1] / height))
        size = (max(size[0], box[0]), max(size[1], box[1]))
        slack = (size[0] - box[0], size[1] - box[1])
        if params.focal is not None:  # centre the window on the point, as far as the image allows
            fx, fy = params.focal  # fractions of the whole oriented original
            px = (float(fx) * full[0] - origin[0]) * size[0] / width  # the point in the resized region
            py = (float(fy) * full[1] - origin[1]) * size[1] / height
            x = min(max(round(px - box[0] / 2), 0), slack[0])
            y = min(max(round(py - box[1] / 2), 0), slack[1])
        else:
            x, y = int(slack[0] * anchor[0]), int(slack[1] * anchor[1])
        smart = params.gravity if params.gravity in ("entropy", "attention") else None
        return Geometry(size, crop=(x, y, *box), region=region, smart=smart)
    size = _scaled(width, height, min(box[0] / width, box[1] / height))
    return Geometry(size, canvas=box, region=region, anchor=anchor)


ANCHORS = {  # compass gravities as fractions of the slack: 0 at the left or top edge, 1 at the other
    "north": (0.5, 0.0),
    "south": (0.5, 1.0),
    "east": (1.0, 0.5),
    "west": (0.0, 0.5),
    "northeast": (1.0, 0.0),
    "northwest": (0.0, 0.0),
    "southeast": (1.0, 1.0),
    "southwest": (0.0, 1.0),
}


def _region(
    width: int, height: int, rect: tuple[int, int, int, int] | None
) -> tuple[int, int, int, int] | None:
    """``rect`` checked against the image; None when absent or the whole image."""
    if rect is None or rect == (0, 0, width, height):
        return None
    x, y, w, h = rect
    if x + w > width or y + h > height:
        raise InvalidParameter("rect", f"{x},{y},{w},{h} is not inside the image, which is {width}x{height}")
    return rect


def _scaled(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))


# --- the original's frames: stored (as decoded) and oriented (as viewed) ---------------------


def oriented_size(info: SourceInfo) -> tuple[int, int] | None:
    """The (width, height) the header declares, as viewed; None when it declares none."""
    if not info.width or not info.height:
        return None
    return orient_size(info.width, info.height, info)


def orient_size(width: int, height: int, info: SourceInfo) -> tuple[int, int]:
    return (height, width) if info.transposed else (width, height)


# How each EXIF orientation turns the stored pixels into the viewed ones (steps._ORIENT does the
# same with OpenCV), and what rot= and flip= then do, as NumPy views of a small array: the table
# TURNED is found by trying every combination once, at import.
_VIEWS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: np.transpose,
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(np.transpose(a), 2),
    8: lambda a: np.rot90(a, 1),
}
_FLIPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "": lambda a: a,
    "h": np.fliplr,
    "v": np.flipud,
    "hv": lambda a: np.rot90(a, 2),
}


def _turned_table() -> dict[tuple[int, int, str], int]:
    probe = np.arange(6).reshape(2, 3)
    table = {}
    for orientation, view in _VIEWS.items():
        for rotate in (0, 90, 180, 270):
            for flip, mirror in _FLIPS.items():
                seen = mirror(np.rot90(view(probe), -rotate // 90))
                table[orientation, rotate, flip] = next(
                    o
                    for o, other in _VIEWS.items()
                    if other(probe).shape == seen.shape and (other(probe) == seen).all()
                )
    return table


TURNED = _turned_table()


def turned(orientation: int, params: ImageParams) -> int:
    """The one orientation (1..8) that shows the stored pixels as EXIF ``orientation`` does, then
    turned by ``rot`` (clockwise) and ``flip``: the steps then apply it in one move, and the
    geometry, ``rect`` and ``fp`` included, is planned in the frame the viewer sees."""
    return TURNED[orientation, params.rotate, params.flip]


def stored_rect(
    rect: tuple[int, int, int, int], size: tuple[int, int], orientation: int
) -> tuple[int, int, int, int]:
    """A rectangle of the oriented image (``size`` wide and high) in the stored frame's pixels."""
    x, y, w, h = rect
    width, height = size
    return {
        1: (x, y, w, h),
        2: (width - x - w, y, w, h),  # mirrored
        3: (width - x - w, height - y - h, w, h),  # rotated 180
        4: (x, height - y - h, w, h),  # flipped
        5: (y, x, h, w),  # transposed
        6: (y, width - x - w, h, w),  # rotated 90 clockwise to view
        7: (height - y - h, width - x - w, h, w),  # transversed
        8: (height - y - h, x, h, w),  # rotated 90 counter-clockwise to view
    }.get(orientation, (x, y, w, h))


# --- shrink on decode -----------------------------------------------------------------------


def shrink_factor(info: SourceInfo, source: tuple[int, int], geometry: Geometry) -> int:
    """How many times smaller the decoder can hand the original over, still leaving at least
    ``geometry.size``: libjpeg scales by 1/2, 1/4 or 1/8 (its DCT), libwebp still images by any
    whole factor (``scales_webp``), keeping twice the size. Other formats decode whole: 1.

    The margin: libwebp's rescaler is an area average, but one to just over the size leaves the
    area-averaging resize a few percent to take off, which blurs; one to twice the size keeps the
    result about as close to the exact reduction as libvips' is, and the decode takes the same time
    at either scale (figures: docs/performance.md)."""
    if info.format == "jpeg":
        factors: Iterable[int] = (8, 4, 2)
        margin = 1
    elif scales_webp(info):
        width, height = geometry.region[2:] if geometry.region else source
        factors = range(min(width // geometry.size[0], height // geometry.size[1]) // 2 + 1, 1, -1)
        margin = 2
    else:
        return 1
    return next((f for f in factors if _fits(source, geometry, f, margin)), 1)


def scales_webp(info: SourceInfo) -> bool:
    """WebP stills, which libwebp.py decodes (scaled, when asked); animations stay with OpenCV."""
    return info.format == "webp" and info.frames == 1 and libwebp.AVAILABLE


def _fits(source: tuple[int, int], geometry: Geometry, factor: int, margin: int) -> bool:
    """Whether the original, decoded ``factor`` times smaller, still holds ``margin`` times
    ``geometry.size`` (from the region, when there is one: a large ``rect`` still decodes shrunk)."""
    target_w, target_h = geometry.size[0] * margin, geometry.size[1] * margin
    if geometry.region is not None:  # cut from the shrunk image, so count whole pixels only
        width, height = geometry.region[2:]
        return width // factor >= target_w and height // factor >= target_h
    width, height = source
    return -(-width // factor) >= target_w and -(-height // factor) >= target_h


# --- vectors: drawn at the planned size ---------------------------------------------------


@dataclass(frozen=True)
class Drawing:
    """What a vector original's plan draws, and how: the part of the picture that ``cut``,
    ``resize`` and a fixed ``crop`` would leave, drawn at that size rather than resized to it.

    ``transform`` maps the original's own pixels (its declared size, stored frame) onto the
    ``canvas`` (width, height, stored frame): x' = a x + b y + c, y' = d x + e y + f. ``size`` is
    the drawn picture's (width, height) as viewed; what is left to do is ``rebased``'s."""

    transform: tuple[float, float, float, float, float, float]
    canvas: tuple[int, int]
    size: tuple[int, int]


def plan_drawing(geometry: Geometry, source: tuple[int, int], orientation: int) -> Drawing:
    """How to draw ``geometry``, planned on the original's oriented ``source`` size: its region
    scaled to ``geometry.size``, only the crop's window when it is fixed (an entropy or attention
    window is found in the pixels, so the whole is drawn for it)."""
    region = geometry.region or (0, 0, *source)
    size = geometry.size
    fixed = geometry.crop is not None and geometry.smart is None
    window = geometry.crop if fixed and geometry.crop is not None else (0, 0, *size)
    x, y, width, height = stored_rect(region, source, orientation)
    stored_size = size[::-1] if orientation >= 5 else size
    left, top, canvas_w, canvas_h = stored_rect(window, size, orientation)
    scale_x, scale_y = stored_size[0] / width, stored_size[1] / height
    transform = (scale_x, 0.0, -x * scale_x - left, 0.0, scale_y, -y * scale_y - top)
    return Drawing(transform, (canvas_w, canvas_h), (window[2], window[3]))


def rebased(params: ImageParams, geometry: Geometry, drawn: Drawing) -> ImageParams:
    """``params`` as they apply to the drawn picture, which ``plan_geometry`` then plans as what
    is left of ``geometry``: nothing to cut or scale; an entropy or attention window to find,
    or the contain canvas to pad to. The effects, marks and background stay as asked."""
    width, height = drawn.size
    fit, gravity = "fill", "center"
    if geometry.canvas is not None:  # the drawn picture fits the box, one side equal: scale 1
        (width, height), fit, gravity = geometry.canvas, "contain", params.gravity
    elif geometry.smart is not None:  # the whole scaled picture, one side the box's: scale 1
        assert geometry.crop is not None
        (width, height), fit, gravity = geometry.crop[2:], "cover", geometry.smart
    return replace(
        params, width=width, height=height, fit=fit, gravity=gravity, focal=None, rect=None, enlarge=True
    )
