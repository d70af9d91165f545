"""decode -> STEPS -> encode: pure functions over NumPy arrays, one module per job.

``render`` is the whole transform. It checks the original's header against the limits, plans the
output geometry from the declared size, decodes (shrunk on decode by the largest factor that still
leaves at least the target size), then runs each step of ``STEPS`` and encodes.

    geometry.py   pure planning: the output's size, crop and canvas; how far a decoder may shrink
    checks.py     limits before work: the original's declared cost, the planned result's size
    decode.py     DECODERS: one table of decoders by the probed kind, tried in order, OpenCV last
    steps.py      STEPS: each (image, plan) -> image, in order
    encode.py     ENCODERS: one table of encoders by output format, stills and animations
    avif.py       the boxes of the AVIF sequences OpenCV writes, patched
    animation.py  animated originals: every frame through STEPS, or one frame as a still
    budget.py     maxbytes: the quality lowered, then the size, until the answer fits
    quality.py    q=auto: the lowest quality that looks the same, by SSIM
    edits.py      trim (a border found in the pixels), blur, sharpen, pixelate
    watermark.py  marks: an original or a line of text drawn over the result
    reduced.py    reduced copies of large originals, from which later sizes are made
    svg.py        SVG originals: the document checked and written anew, then drawn at the planned size
    drawing.py    resvg, drawing in a child process bounded in time and memory
    pixels.py     the array type, and the channel helpers the others share

The output format is resolved before the pipeline runs (the view, once per request, as the key
names it) and comes in as a ``Format``; only a caller that has not resolved it passes a target
name (formats.SOURCE, LEGACY or a format's), resolved here from the header.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import InvalidParameter
from ..formats import PNG, Format, format_named, resolve
from ..keys import PIPELINE_VERSION as PIPELINE_VERSION  # re-exported: bump it in keys.py
from ..limits import Limits
from ..params import ImageParams
from ..probe import SourceInfo, probe
from . import svg
from .animation import animate, animates, decode_frame
from .budget import within
from .checks import DEFAULT_LIMITS, check_drawn, check_output, check_source
from .decode import DECODERS, Decoded, Decoder, decode
from .decode import _inflates_faster as _inflates_faster  # tests/test_pipeline.py asks it
from .edits import trimmed
from .encode import ENCODERS, Encoder, encode
from .geometry import (
    Geometry,
    Mark,
    Plan,
    orient_size,
    oriented_size,
    plan_drawing,
    plan_geometry,
    rebased,
    shrink_factor,
    turned,
)
from .pixels import Image, has_alpha, swap_red_blue, to_8bit_array, with_channels
from .quality import perceptual
from .reduced import BlobStore, Intermediate, kept_copy
from .steps import STEPS, smart_crop, upright
from .watermark import text_mark

__all__ = [
    "DECODERS",
    "DEFAULT_LIMITS",
    "ENCODERS",
    "PIPELINE_VERSION",
    "STEPS",
    "BlobStore",
    "Decoded",
    "Decoder",
    "Encoder",
    "Geometry",
    "Image",
    "Intermediate",
    "Mark",
    "Plan",
    "Rendered",
    "check_output",
    "check_source",
    "decode",
    "encode",
    "finish",
    "has_alpha",
    "load_mark",
    "oriented_size",
    "plan_geometry",
    "render",
    "render_reduced",
    "shrink_factor",
    "smart_crop",
    "stepped",
    "swap_red_blue",
    "text_mark",
    "to_8bit_array",
    "upright",
]


@dataclass(frozen=True)
class Rendered:
    data: bytes
    format: Format


def render(
    path: str,
    params: ImageParams,
    output: Format | str,
    limits: Limits = DEFAULT_LIMITS,
    info: SourceInfo | None = None,
    overlay: Image | None = None,
) -> Rendered:
    """The transform: original file at ``path`` -> encoded bytes in the ``output`` format.

    ``info`` is the original's probed header, when the caller has read it already; ``overlay``
    the watermark's pixels (``load_mark``, ``text_mark``), when ``params`` asks for one.
    """
    info = info or probe(path)
    check_source(info, limits)  # before a single pixel is allocated
    if params.turns:  # rot= and flip= join the EXIF orientation: one turn, planned in the viewer's frame
        info = replace(info, orientation=turned(info.orientation, params))
    output = _chosen(output, info, params)
    if info.vector:  # drawn at the size asked for, not decoded
        return _drawn(path, info, params, output, limits, overlay)
    if animates(info, params, output):
        return Rendered(animate(path, info, params, output, limits, overlay), output)
    if params.trim is not None:  # the border is found in the pixels: the whole original first
        return _trimmed(path, info, params, output, limits, overlay)
    declared = oriented_size(info)
    reduction = 1
    if declared:
        geometry = plan_geometry(*declared, params)
        check_output(geometry, limits, params=params)
        reduction = shrink_factor(info, declared, geometry)
    image, rgb = decode(path, info, reduction) if not params.frame else decode_frame(path, info, params.frame)
    limits.check_deadline()
    height, width = image.shape[:2]
    source_size = declared if reduction > 1 and declared else orient_size(width, height, info)
    return finish(image, source_size, info.orientation, params, output, limits, info.profile, rgb, overlay)


def render_reduced(
    store: BlobStore,
    key: str,
    path: str,
    params: ImageParams,
    output: Format | str,
    limits: Limits = DEFAULT_LIMITS,
    info: SourceInfo | None = None,
    tag: str | None = None,
    overlay: Image | None = None,
) -> Rendered:
    """``render``, but through the original's reduced copy (reduced.py) when one is kept under
    ``key``, or now worth keeping (under ``tag``), and the result fits within it."""
    info = info or probe(path)  # read once, passed on
    output = _chosen(output, info, params)
    copy = kept_copy(store, key, path, limits, info, tag) if params.trim is None else None
    if copy is not None:
        orientation = turned(1, params)  # the copy is upright: only rot= and flip= turn it
        size = copy.source_size[::-1] if orientation >= 5 else copy.source_size
        if copy.serves(params, size):
            return finish(copy.image, size, orientation, params, output, limits, overlay=overlay)
    return render(path, params, output, limits, info, overlay)


def finish(
    image: Image,
    source_size: tuple[int, int],
    orientation: int,
    params: ImageParams,
    output: Format,
    limits: Limits = DEFAULT_LIMITS,
    profile: bytes | None = None,
    rgb: bool = False,
    overlay: Image | None = None,
) -> Rendered:
    """Plan on the original's oriented size, run STEPS on ``image`` and encode.

    ``image`` is the decoded original, possibly shrunk on decode, or a reduced copy of it
    (reduced.py): the plan, and so the result's size, depends only on the original.
    """
    image = stepped(image, source_size, orientation, params, output, limits, profile, rgb, overlay)
    tried = [_encoded(image, each, params, limits) for each in output.candidates or (output,)]
    return min(tried, key=lambda rendered: len(rendered.data))  # fmt=best: the smallest of them


def _encoded(image: Image, output: Format, params: ImageParams, limits: Limits) -> Rendered:
    """The result's pixels as ``output``: at ``q``, or the lowest that looks the same (q=auto),
    then within ``maxbytes``."""
    quality, data = params.quality, None
    if params.auto_quality and output.lossy:
        quality, data = perceptual(image, output, limits)
    if params.maxbytes is not None and (data is None or len(data) > params.maxbytes):
        data = within(image, output, quality, params.maxbytes, limits)
    if data is None:
        data = encode(image, output, quality, limits.webp_effort)
    return Rendered(data, output)


def stepped(
    image: Image,
    source_size: tuple[int, int],
    orientation: int,
    params: ImageParams,
    output: Format,
    limits: Limits = DEFAULT_LIMITS,
    profile: bytes | None = None,
    rgb: bool = False,
    overlay: Image | None = None,
) -> Image:
    """``finish`` but for the encoding: the pixels the output format would be given."""
    plan = Plan.of(
        plan_geometry(*source_size, params), orientation, output, params, profile, source_size, rgb, overlay
    )
    check_output(plan.geometry, limits, params=params)
    for step in STEPS:
        image = step(image, plan)
        limits.check_deadline()
    return image


MARK_SIDE = 1024  # pixels an SVG mark is drawn at, at least, on its longest side: sharp when scaled down


def load_mark(path: str, limits: Limits = DEFAULT_LIMITS) -> Image:
    """A watermark original's pixels (``mark=<id>``), for ``overlay``: checked against the limits
    like any original, decoded whole (an animation's first frame), upright, sRGB, 8-bit BGRA."""
    info = probe(path)
    check_source(info, limits)
    image, rgb = _whole(path, info, limits, side=MARK_SIDE) if info.vector else decode(path, info, 1)
    size = orient_size(image.shape[1], image.shape[0], info)
    pixels = with_channels(
        stepped(image, size, info.orientation, ImageParams(), PNG, limits, info.profile, rgb), 4
    )
    pixels.setflags(write=False)  # shared by the renders of a worker (origin.py keeps a few)
    return pixels


def _trimmed(
    path: str, info: SourceInfo, params: ImageParams, output: Format, limits: Limits, overlay: Image | None
) -> Rendered:
    """``trim``: the original decoded whole (its border cannot be found in a shrunk one), the
    border cut as a ``rect`` would be (within the one asked for), then planned as usual."""
    declared = oriented_size(info)
    if declared:
        check_output(plan_geometry(*declared, params), limits, params=params)  # the most it can be
    image, rgb = decode(path, info, 1) if not params.frame else decode_frame(path, info, params.frame)
    limits.check_deadline()
    source_size = orient_size(image.shape[1], image.shape[0], info)
    plan_geometry(*source_size, params)  # a rect outside the image is refused before the search
    bounds = trimmed(image, info.orientation, source_size, params.rect, params.trim or 0)
    params = replace(params, trim=None, rect=bounds or params.rect)
    return finish(image, source_size, info.orientation, params, output, limits, info.profile, rgb, overlay)


def _drawn(
    path: str, info: SourceInfo, params: ImageParams, output: Format, limits: Limits, overlay: Image | None
) -> Rendered:
    """An SVG (svg.py): planned on its declared size and as large as asked, ``enlarge`` or not (a
    drawing loses nothing), then drawn at the planned size, only the part the plan keeps; the steps
    do what is left (a window found in the pixels, a canvas, effects, marks) as for any original.
    ``trim`` finds its border in the whole drawn at its declared size, then draws what it keeps."""
    if params.frame:
        raise InvalidParameter("frame", "the original has 1 frame")
    document = svg.read(path, limits)  # 413 and 415 before anything is drawn
    source = orient_size(*document.size, info)
    if params.trim is not None:
        plan_geometry(*source, params)  # a rect outside the image is refused before the search
        whole = _whole(path, info, limits, document).image
        bounds = trimmed(whole, info.orientation, source, params.rect, params.trim)
        params = replace(params, trim=None, rect=bounds or params.rect)
    geometry = plan_geometry(*source, replace(params, enlarge=True))
    check_output(geometry, limits, params=params)
    drawn = plan_drawing(geometry, source, info.orientation)
    check_drawn(drawn.canvas, limits)
    image = svg.picture(document, drawn, limits)
    limits.check_deadline()
    params = rebased(params, geometry, drawn)
    return finish(image, drawn.size, info.orientation, params, output, limits, rgb=True, overlay=overlay)


def _whole(
    path: str, info: SourceInfo, limits: Limits, document: svg.Document | None = None, side: int = 0
) -> Decoded:
    """An SVG drawn whole, within the caller's limits: at its declared size (trim's search), or
    with its longest side at least ``side`` (a mark)."""
    return Decoded(svg.whole(path, limits, document, side), rgb=True)


def _chosen(output: Format | str, info: SourceInfo, params: ImageParams) -> Format:
    """``output`` as the caller resolved it, or a target name resolved from the header."""
    return output if isinstance(output, Format) else format_named(resolve(output, info.kind, params.frame))
