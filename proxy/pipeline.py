"""decode -> STEPS -> encode: pure functions over NumPy arrays.

``render`` is the whole transform. It probes the header, plans the output
geometry from the declared size, decodes (JPEG shrunk on decode by the largest
factor that still leaves at least the target size), then runs each step of
``STEPS`` and encodes. Geometry is planned in the *oriented* frame (what the
viewer sees) but resizing happens before rotation, so the rotation is applied
to the small image rather than the large one.

OpenCV reports failure by return value (``None``, ``False``) or by ``cv2.error``;
this module turns both into ``ProxyError``s and nobody else checks.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import cv2
import imagecodecs
import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

from . import libwebp
from .color import cmyk_to_bgr, converts, to_srgb
from .errors import InvalidParameter, SourceTooLarge, UnsupportedImage
from .formats import AVIF_SPEED, FORMATS, JXL_EFFORT, WEBP_EFFORT, Format, resolve
from .gravity import window
from .keys import PIPELINE_VERSION as PIPELINE_VERSION  # re-exported: bump it in keys.py
from .limits import Limits
from .params import ImageParams
from .probe import SourceInfo, isobmff_boxes, probe

Image = npt.NDArray[np.integer[Any] | np.floating[Any]]
RGBA = tuple[int, int, int, int]

DEFAULT_LIMITS = Limits()


_REDUCED = {
    (False, 2): cv2.IMREAD_REDUCED_COLOR_2,
    (False, 4): cv2.IMREAD_REDUCED_COLOR_4,
    (False, 8): cv2.IMREAD_REDUCED_COLOR_8,
    (True, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (True, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
    (True, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


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
class Plan:
    """Everything the steps need, fixed before the first one runs."""

    geometry: Geometry
    orientation: int
    output: Format
    background: RGBA
    profile: bytes | None = None  # the original's ICC profile, when its pixels are not yet sRGB
    source: tuple[int, int] = (0, 0)  # the original's oriented (width, height), which ``region`` is in
    rgb: bool = False  # the decoded channels are in RGB(A) order, until the ``bgr`` step


class Decoded(NamedTuple):
    """A decoder's pixels, and whether their channels are in RGB(A) order, as imagecodecs hands
    them over. They stay so through ``cut`` and ``resize``, which do not care, and the ``bgr`` step
    swaps them for OpenCV once the image is small: for a 6 MP 16-bit PNG, a 36 MB pass saved."""

    image: Image
    rgb: bool = False


@dataclass(frozen=True)
class Rendered:
    data: bytes
    format: Format


def render(
    path: str,
    params: ImageParams,
    target: str,
    limits: Limits = DEFAULT_LIMITS,
    info: SourceInfo | None = None,
) -> Rendered:
    """The transform: original file at ``path`` -> encoded bytes in the chosen format.

    ``info`` is the original's probed header, when the caller has read it already.
    """
    info = info or probe(path)
    check_source(info, limits)  # before a single pixel is allocated
    output = FORMATS[resolve(target, info.kind, params.frame)]
    if animates(info, params, output):
        return render_animation(path, info, params, output, limits)
    declared = oriented_size(info)
    reduction = 1
    if declared:
        geometry = plan_geometry(*declared, params)
        check_output(geometry, limits, params=params)
        reduction = shrink_factor(info, declared, geometry)
    image, rgb = decode(path, info, reduction) if not params.frame else decode_frame(path, info, params.frame)
    limits.check_deadline()
    height, width = image.shape[:2]
    source_size = declared if reduction > 1 and declared else _orient_size(width, height, info)
    return finish(image, source_size, info.orientation, params, output, limits, info.profile, rgb)


def finish(
    image: Image,
    source_size: tuple[int, int],
    orientation: int,
    params: ImageParams,
    output: Format,
    limits: Limits = DEFAULT_LIMITS,
    profile: bytes | None = None,
    rgb: bool = False,
) -> Rendered:
    """Plan on the original's oriented size, run STEPS on ``image`` and encode.

    ``image`` is the decoded original, possibly shrunk on decode, or a reduced copy of it
    (intermediate.py): the plan, and so the result's size, depends only on the original.
    """
    plan = Plan(
        geometry=plan_geometry(*source_size, params),
        orientation=orientation,
        output=output,
        background=params.background,
        profile=profile,
        source=source_size,
        rgb=rgb,
    )
    check_output(plan.geometry, limits, params=params)
    for step in STEPS:
        image = step(image, plan)
        limits.check_deadline()
    return Rendered(encode(image, plan.output, params.quality, limits.webp_effort), plan.output)


def animates(info: SourceInfo, params: ImageParams, output: Format) -> bool:
    """Whether an original is served as an animation: WebP and AVIF animate; JPEG and PNG
    (and ``?frame=N``) take one frame."""
    return info.frames > 1 and params.frame is None and output.name in ("webp", "avif")


def render_animation(
    path: str, info: SourceInfo, params: ImageParams, output: Format, limits: Limits = DEFAULT_LIMITS
) -> Rendered:
    """Every frame through STEPS, planned once; durations and loop count kept."""
    declared = oriented_size(info)
    if declared is None:
        raise UnsupportedImage(f"the {info.format.upper()} animation declares no size")
    geometry = plan_geometry(*declared, params)
    plan = Plan(geometry, info.orientation, output, params.background, info.profile, declared)
    check_output(plan.geometry, limits, info.frames, params)
    data = np.frombuffer(_read(path), np.uint8)
    try:
        ok, animation = cv2.imdecodeanimation(data, 0, limits.max_animation_frames + 1)
    except (cv2.error, MemoryError):
        ok = False
    if not ok or not animation.frames:
        raise UnsupportedImage(f"could not decode the {info.format.upper()} animation")
    if len(animation.frames) > limits.max_animation_frames:  # the header said fewer
        raise SourceTooLarge(f"the original has over {limits.max_animation_frames} frames")
    if geometry.smart:  # one window for every frame, found in the first, so the subject holds still
        first = orient(resize(cut(animation.frames[0], plan), plan), plan)
        plan = replace(plan, geometry=replace(geometry, crop=smart_crop(first, geometry), smart=None))
    frames = []
    for frame in animation.frames:
        for step in STEPS:
            frame = step(frame, plan)
        # One layout for every frame, and contiguous: the animation encoder ignores a crop's strides.
        frames.append(np.ascontiguousarray(_with_channels(frame, 4)))
        limits.check_deadline()
    result = cv2.Animation()
    result.frames = frames
    result.durations = animation.durations
    plays = info.plays if info.plays is not None else animation.loop_count  # OpenCV reads no AVIF's
    result.loop_count = plays
    try:
        ok, buffer = cv2.imencodeanimation(output.extension, result, output.encoder_flags(params.quality))
    except cv2.error:
        ok = False
    if not ok:
        raise InvalidParameter("fmt", f"cannot encode this animation as {output.name}")
    encoded = buffer.tobytes()
    if output.name == "avif":
        encoded = timeless(with_avif_plays(encoded, plays) if plays else encoded)
    return Rendered(encoded, output)


def timeless(data: bytes) -> bytes:
    """An AVIF sequence with its creation and modification times (mvhd, tkhd, mdhd) at zero, as
    ISOBMFF allows: OpenCV's writer stamps the clock, so every render of one variant differed,
    and one ETag named many byte strings."""
    patched = bytearray(data)
    for kind in (b"mvhd", b"tkhd", b"mdhd"):
        for at in isobmff_boxes(data, 0, len(data), kind):
            width = 8 if data[at] == 1 else 4  # version 1: 64-bit times
            patched[at + 4 : at + 4 + 2 * width] = bytes(2 * width)
    return bytes(patched)


def with_avif_plays(data: bytes, plays: int) -> bytes:
    """An AVIF sequence from OpenCV (which writes every one as looping for ever) made to play
    ``plays`` times, as libavif marks it: movie and track durations of plays x the edit list's
    repeated segment."""
    edits = isobmff_boxes(data, 0, len(data), b"elst")
    if not edits:
        return data
    patched = bytearray(data)
    segment = struct.unpack_from(">Q" if data[edits[0]] == 1 else ">I", data, edits[0] + 8)[0]
    for kind, long_at, short_at in ((b"mvhd", 24, 16), (b"tkhd", 28, 20)):
        for at in isobmff_boxes(data, 0, len(data), kind):
            if data[at] == 1:
                struct.pack_into(">Q", patched, at + long_at, segment * plays)
            else:
                struct.pack_into(">I", patched, at + short_at, min(segment * plays, (1 << 32) - 2))
    return bytes(patched)


def decode_frame(path: str, info: SourceInfo, frame: int) -> Decoded:
    """Frame ``frame`` of an animation (0-based), composed as a viewer shows it, as a still."""
    if frame >= info.frames:
        raise InvalidParameter("frame", f"the original has {info.frames} frame{'s' * (info.frames > 1)}")
    data = np.frombuffer(_read(path), np.uint8)
    try:
        ok, animation = cv2.imdecodeanimation(data, frame, 1)
    except (cv2.error, MemoryError):
        ok = False
    if not ok or not animation.frames:
        raise UnsupportedImage(f"could not decode frame {frame} of the {info.format.upper()} source")
    image: Image = animation.frames[0]
    return Decoded(image if has_alpha(image) else image[..., :3])


def check_source(info: SourceInfo, limits: Limits) -> None:
    """413 for an original over the byte or declared-pixel limits (a decompression bomb)."""
    if info.frames > limits.max_animation_frames:
        raise SourceTooLarge(
            f"the original declares {info.frames} frames, over the limit of {limits.max_animation_frames}"
        )
    if info.width and info.height and info.width * info.height * info.frames > limits.max_source_pixels:
        raise SourceTooLarge(
            f"the original declares {info.frames} frame(s) of {info.width}x{info.height} pixels, "
            f"over the limit of {limits.max_source_pixels}"
        )
    if info.bytes > limits.max_source_bytes:
        raise SourceTooLarge(
            f"the original has {info.bytes} bytes, over the limit of {limits.max_source_bytes}"
        )


def check_output(
    geometry: Geometry, limits: Limits, frames: int = 1, params: ImageParams | None = None
) -> None:
    """400 for a result over PROXY_MAX_OUTPUT_PIXELS, naming the size parameter that was sent."""
    width, height = geometry.canvas or (geometry.crop[2:] if geometry.crop else geometry.size)
    if width * height * frames > limits.max_output_pixels:
        size = f"{width}x{height}" + (f" x {frames} frames" if frames > 1 else "")
        asked = params is not None and (params.width is not None or params.height is not None)
        name = "h" if params is not None and params.width is None and params.height is not None else "w"
        advice = "ask for less" if asked else "no w or h was given, so it is the original's size: ask for one"
        raise InvalidParameter(
            name, f"the result would be {size}, over {limits.max_output_pixels} pixels; {advice}"
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


def decode(path: str, info: SourceInfo, reduction: int = 1) -> Decoded:
    """Read the file with OpenCV, or a second library where it is faster; orientation is left to
    the ``orient`` step."""
    if info.format == "jpeg":
        gray = info.channels == 1
        base = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
        flags = (_REDUCED[gray, reduction] if reduction > 1 else base) | cv2.IMREAD_IGNORE_ORIENTATION
    elif (
        info.format == "png"
        and info.depth == 16
        and info.channels in (1, 3)
        and not converts(info.profile, info.channels == 1)
    ):
        # Opaque 16-bit that imagecodecs does not take (grey, interlaced): libpng scales to 8 bits
        # while decoding (rounding, as to_8bit does), 13% sooner than decoding 16 bits, and every
        # later step then runs on a third less. Not when a profile is to be applied: that starts
        # from all 16 bits.
        base = cv2.IMREAD_GRAYSCALE if info.channels == 1 else cv2.IMREAD_COLOR
        flags = base | cv2.IMREAD_IGNORE_ORIENTATION
    else:
        flags = cv2.IMREAD_UNCHANGED  # keeps alpha and 16 bits
    if info.format == "jpeg" and info.channels == 4:
        return Decoded(_decode_cmyk(path, info, reduction))
    try:
        # None: OpenCV's turn, as for every other file
        image, rgb = _decode_faster(path, info, reduction) or (None, False)
        if image is None and info.format == "jpeg":  # shrink-on-decode ran 1-1.5 ms (~5%) faster from memory
            image = cv2.imdecode(np.frombuffer(_read(path), np.uint8), flags)  # whole: probe checked its end
        elif image is None:  # no such gain for the others, and BMP decoded 5x slower that way
            image = cv2.imread(path, flags)
    except (cv2.error, imagecodecs.PngError, MemoryError, OSError):  # a decoder's refusal, a file gone
        image = None
    if image is None or image.size == 0:
        raise UnsupportedImage(f"could not decode the {info.format.upper()} source")
    if info.transparent is not None and image.ndim == 2:  # grey + tRNS, which OpenCV ignores
        image = _keyed_alpha(image, info.transparent, info.depth)
    if image.ndim == 3 and image.shape[2] == 2:  # gray + alpha
        image = np.dstack((image[..., 0], image[..., 0], image[..., 0], image[..., 1]))
    if image.ndim == 3 and image.shape[2] == 4 and not has_alpha(image):
        image = image[..., :3]
    return Decoded(image, rgb)


def _decode_faster(path: str, info: SourceInfo, reduction: int) -> Decoded | None:
    """The second libraries, where they beat OpenCV's decoders; None when the file is not theirs or
    they refuse it (a one-frame animated WebP, say), and OpenCV, the fallback for all, decodes it."""
    if _inflates_faster(info):
        image, rgb = _decode_png(path), True  # imagecodecs' order
    elif _scales_webp(info):
        image, rgb = _decode_webp(path, info, reduction), False
    else:
        return None
    return Decoded(image, rgb) if image is not None else None


def _inflates_faster(info: SourceInfo) -> bool:
    """Colour PNGs (RGB, RGBA, palette; 8 or 16 bits; not interlaced): imagecodecs' libpng inflates
    with zlib-ng, OpenCV's with the system zlib. The 6 MP RGBA decode took 0.72-0.85 of the time in
    three runs, the same pixels (bench/codecs.py); 16 bits, kept until after the resize, 0.92-0.97.
    They come in RGB order (``Decoded``). Grey and grey + alpha gain nothing, and interlaced files
    make that libpng warn on stderr: those stay with OpenCV."""
    return info.format == "png" and info.depth in (8, 16) and info.channels in (3, 4) and not info.interlaced


def _scales_webp(info: SourceInfo) -> bool:
    """WebP stills, which libwebp.py decodes (scaled, when asked); animations stay with OpenCV."""
    return info.format == "webp" and info.frames == 1 and libwebp.AVAILABLE


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def _decode_png(path: str) -> Image | None:
    try:
        image = imagecodecs.png_decode(_read(path))
    except ValueError:  # not the colour layout it was declared to be
        return None
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        return None
    return image


def _decode_webp(path: str, info: SourceInfo, reduction: int) -> Image | None:
    """A still WebP through libwebp.py, with a reduction scaled while decoding to the size libjpeg
    would give for the same one (rounded up), so that the steps treat both alike."""
    if reduction > 1 and info.width and info.height:
        return libwebp.decode(_read(path), (-(-info.width // reduction), -(-info.height // reduction)))
    return libwebp.decode(_read(path))


def _decode_cmyk(path: str, info: SourceInfo, reduction: int) -> Image:
    """A CMYK or YCCK JPEG, through Pillow (OpenCV would drop the ink values' meaning), shrunk on
    decode as libjpeg allows, then from its profile, or a press profile, to sRGB."""
    try:
        with PILImage.open(path) as original:
            if reduction > 1 and original.width and original.height:
                original.draft("CMYK", (-(-original.width // reduction), -(-original.height // reduction)))
            original.load()
            if original.mode != "CMYK":
                raise UnsupportedImage("a four-channel JPEG that is not CMYK")
            return cmyk_to_bgr(original, info.profile)
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError):
        raise UnsupportedImage("could not decode the CMYK JPEG source") from None


def _keyed_alpha(image: Image, value: int, depth: int) -> Image:
    """Grey + tRNS -> BGRA: pixels of the transparent sample ``value`` get alpha 0.

    libpng hands low bit depths over expanded to 8 bits (a 4-bit v as v x 17), so the value is
    expanded the same way; 16-bit samples are compared as they are.
    """
    top = 65535 if image.dtype == np.uint16 else 255
    key = value if depth == 16 else value * (255 // ((1 << depth) - 1))
    alpha = np.where(image == key, 0, top).astype(image.dtype)
    keyed: Image = cv2.merge([image, image, image, alpha])
    return keyed


def has_alpha(image: Image) -> bool:
    """A fourth channel that is not fully opaque."""
    if image.ndim != 3 or image.shape[2] != 4:
        return False
    opaque = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(image.dtype, 1.0)
    return bool(image[..., 3].min() < opaque)


def encode(image: Image, output: Format, quality: int, webp_effort: int = WEBP_EFFORT) -> bytes:
    """OpenCV's encoders, but for JPEG XL (OpenCV's wheels have no libjxl), WebP at another
    effort than the method OpenCV fixes (PROXY_WEBP_EFFORT) and colour AVIF: those through
    imagecodecs."""
    try:
        if output.name == "avif" and image.ndim == 3 and image.shape[2] == 3:
            return _avif(image, quality)
        if output.name == "jxl":
            # libjxl on OpenCV's thread count: the same bytes, 0.8 of the time at 400 px, 0.56-0.85 at
            # 1600 (bench/formats.py, two runs)
            return bytes(
                imagecodecs.jpegxl_encode(
                    swap_red_blue(image), level=quality, effort=JXL_EFFORT, numthreads=cv2.getNumThreads()
                )
            )
        if output.name == "webp" and webp_effort != WEBP_EFFORT:
            colour = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)  # libwebp: colour
            rgb = swap_red_blue(colour)
            return bytes(imagecodecs.webp_encode(rgb, level=quality, lossless=False, method=webp_effort))
        ok, buffer = cv2.imencode(output.extension, image, output.encoder_flags(quality))
    except (cv2.error, imagecodecs.AvifError, imagecodecs.JpegxlError, imagecodecs.WebpError, ValueError):
        ok = False
    if not ok:
        height, width = image.shape[:2]
        raise InvalidParameter("fmt", f"cannot encode a {width}x{height} image as {output.name}")
    return buffer.tobytes()


def _avif(image: Image, quality: int) -> bytes:
    """A colour AVIF as OpenCV writes one (libavif at AVIF_SPEED, 4:2:0, tagged sRGB with BT.601
    coefficients, full range) but with libaom's threads, which OpenCV's writer leaves at one:
    0.62-0.68 of the time at 400 and 1600 px, bytes within 0.1% and the same PSNR
    (bench/formats.py, two runs). Grey and alpha stay with OpenCV, whose bytes imagecodecs does not match."""
    return bytes(
        imagecodecs.avif_encode(
            swap_red_blue(image),
            level=quality,
            speed=AVIF_SPEED,
            numthreads=cv2.getNumThreads(),  # as many as OpenCV's own steps use
            pixelformat=imagecodecs.AVIF.PIXEL_FORMAT.YUV420,
            primaries=1,  # BT.709, sRGB's
            transfer=13,  # sRGB
            matrix=6,  # BT.601
        )
    )


def swap_red_blue(image: Image) -> Image:
    """BGR(A) <-> RGB(A): OpenCV's order, which the steps use, and imagecodecs'; grey stays grey."""
    if image.ndim == 2:
        return image
    converted: Image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return converted


# --- steps: each (image, plan) -> image, applied in order -------------------------------


def resize(image: Image, plan: Plan) -> Image:
    width, height = plan.geometry.size
    if plan.orientation >= 5:  # still in the stored frame: the axes are swapped
        width, height = height, width
    if image.shape[1] == width and image.shape[0] == height:
        return image
    # Area averaging to shrink; to enlarge (enlarge=1) it would repeat pixels: bicubic instead.
    shrinking = width <= image.shape[1] and height <= image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


_ORIENT: dict[int, Callable[[Image], Image]] = {
    2: lambda im: cv2.flip(im, 1),
    3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda im: cv2.flip(im, 0),
    5: lambda im: cv2.transpose(im),
    6: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
    7: lambda im: cv2.flip(cv2.transpose(im), -1),
    8: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def bgr(image: Image, plan: Plan) -> Image:
    """OpenCV's channel order, from the decoder's RGB once the image is small (``Decoded``)."""
    return swap_red_blue(image) if plan.rgb else image


def orient(image: Image, plan: Plan) -> Image:
    """Apply EXIF orientation, so the pixels are upright and the tag can be dropped."""
    return upright(image, plan.orientation)


def upright(image: Image, orientation: int) -> Image:
    transform = _ORIENT.get(orientation)
    return transform(image) if transform else image


def crop(image: Image, plan: Plan) -> Image:
    """``cover``: keep the planned window, or the one gravity.py finds for entropy or attention."""
    if plan.geometry.crop is None:
        return image
    x, y, width, height = smart_crop(image, plan.geometry) if plan.geometry.smart else plan.geometry.crop
    return image[y : y + height, x : x + width]


def smart_crop(image: Image, geometry: Geometry) -> tuple[int, int, int, int]:
    assert geometry.crop is not None and geometry.smart is not None
    width, height = geometry.crop[2:]
    x, y = window(to_8bit_array(image), (width, height), geometry.smart)
    return x, y, width, height


def cut(image: Image, plan: Plan) -> Image:
    """``rect``: the region of the original, before anything else. ``image`` is the original in its
    stored frame (or an upright copy, orientation 1), possibly reduced: the region is mapped to it."""
    if plan.geometry.region is None:
        return image
    x, y, width, height = stored_rect(plan.geometry.region, plan.source, plan.orientation)
    stored_w, stored_h = plan.source[::-1] if plan.orientation >= 5 else plan.source
    scale_x, scale_y = image.shape[1] / stored_w, image.shape[0] / stored_h
    left, top = round(x * scale_x), round(y * scale_y)
    right = max(round((x + width) * scale_x), left + 1)
    bottom = max(round((y + height) * scale_y), top + 1)
    return image[top:bottom, left:right]


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


def to_8bit(image: Image, plan: Plan) -> Image:
    return to_8bit_array(image)


def to_8bit_array(image: Image) -> Image:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        converted: Image = cv2.convertScaleAbs(image, alpha=255 / 65535)  # rounds; >> 8 truncates
        return converted
    if image.dtype.kind == "f":  # float TIFF: 0..1 nominal range
        scaled: Image = np.clip(image.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return scaled
    raise UnsupportedImage(f"unsupported sample type {image.dtype}")


def colour(image: Image, plan: Plan) -> Image:
    """Embedded ICC profile -> sRGB (color.py), on the resized and cropped image, before
    16-bit samples are rounded to 8 so that the conversion starts from all their precision."""
    if plan.profile is None:
        return image
    return to_srgb(image if image.dtype == np.uint16 else to_8bit_array(image), plan.profile)


def flatten(image: Image, plan: Plan) -> Image:
    """Composite alpha onto the background when the output format cannot carry it."""
    if plan.output.alpha or image.ndim != 3 or image.shape[2] != 4:
        return image
    alpha = image[..., 3:4].astype(np.uint16)
    background = np.array(_bgr(plan.background), np.uint16)
    blended = (image[..., :3] * alpha + background * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


def pad(image: Image, plan: Plan) -> Image:
    """``contain``: place the image on a canvas of the background colour, centred or by gravity."""
    if plan.geometry.canvas is None:
        return image
    width, height = plan.geometry.canvas
    r, g, b, a = plan.background
    keep_alpha = plan.output.alpha and (a < 255 or image.ndim == 3 and image.shape[2] == 4)
    fill: tuple[int, ...]
    if keep_alpha:
        channels, fill = 4, (b, g, r, a)
    elif image.ndim == 2 and r == g == b:
        channels, fill = 1, (r,)
    else:
        channels, fill = 3, (b, g, r)
    image = _with_channels(image, channels)
    canvas = np.empty((height, width, channels) if channels > 1 else (height, width), np.uint8)
    canvas[...] = fill if channels > 1 else fill[0]
    anchor_x, anchor_y = plan.geometry.anchor
    x, y = int((width - image.shape[1]) * anchor_x), int((height - image.shape[0]) * anchor_y)
    canvas[y : y + image.shape[0], x : x + image.shape[1]] = image
    return canvas


STEPS: tuple[Callable[[Image, Plan], Image], ...] = (
    cut,
    resize,
    bgr,
    orient,
    crop,
    colour,
    to_8bit,
    flatten,
    pad,
)


# --- helpers ------------------------------------------------------------------------------


def _scaled(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))


def oriented_size(info: SourceInfo) -> tuple[int, int] | None:
    if not info.width or not info.height:
        return None
    return _orient_size(info.width, info.height, info)


def _orient_size(width: int, height: int, info: SourceInfo) -> tuple[int, int]:
    return (height, width) if info.transposed else (width, height)


def shrink_factor(info: SourceInfo, source: tuple[int, int], geometry: Geometry) -> int:
    """How many times smaller the decoder can hand the original over, still leaving at least
    ``geometry.size``: libjpeg scales by 1/2, 1/4 or 1/8 (its DCT), libwebp still images by any
    whole factor (_decode_webp), keeping twice the size. Other formats decode whole: 1.

    The margin: libwebp's rescaler is an area average, but one to just over the size leaves the
    area-averaging resize a few percent to take off, which blurs: a 3000 px WebP to 400 px
    through 1/7 (429 px) was 38.6 dB from the exact reduction, through 1/3 49.4, libvips' 50.5,
    and the decode takes the same time at either scale."""
    if info.format == "jpeg":
        factors: Iterable[int] = (8, 4, 2)
        margin = 1
    elif _scales_webp(info):
        width, height = geometry.region[2:] if geometry.region else source
        factors = range(min(width // geometry.size[0], height // geometry.size[1]) // 2 + 1, 1, -1)
        margin = 2
    else:
        return 1
    return next((f for f in factors if _fits(source, geometry, f, margin)), 1)


def _fits(source: tuple[int, int], geometry: Geometry, factor: int, margin: int) -> bool:
    """Whether the original, decoded ``factor`` times smaller, still holds ``margin`` times
    ``geometry.size`` (from the region, when there is one: a large ``rect`` still decodes shrunk)."""
    target_w, target_h = geometry.size[0] * margin, geometry.size[1] * margin
    if geometry.region is not None:  # cut from the shrunk image, so count whole pixels only
        width, height = geometry.region[2:]
        return width // factor >= target_w and height // factor >= target_h
    width, height = source
    return -(-width // factor) >= target_w and -(-height // factor) >= target_h


def _bgr(rgba: RGBA) -> tuple[int, int, int]:
    return rgba[2], rgba[1], rgba[0]


def _with_channels(image: Image, channels: int) -> Image:
    current = 1 if image.ndim == 2 else image.shape[2]
    if current == channels:
        return image
    code = {
        (1, 3): cv2.COLOR_GRAY2BGR,
        (1, 4): cv2.COLOR_GRAY2BGRA,
        (3, 4): cv2.COLOR_BGR2BGRA,
        (4, 3): cv2.COLOR_BGRA2BGR,
    }[current, channels]
    return cv2.cvtColor(image, code)
