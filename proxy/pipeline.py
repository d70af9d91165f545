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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

from .color import cmyk_to_bgr, converts, to_srgb
from .errors import InvalidParameter, SourceTooLarge, UnsupportedImage
from .formats import FORMATS, SOURCE, Format, pick
from .limits import Limits
from .params import ImageParams
from .probe import SourceInfo, probe

Image = npt.NDArray[np.integer[Any] | np.floating[Any]]
RGBA = tuple[int, int, int, int]

DEFAULT_LIMITS = Limits()

# Bump whenever the bytes produced for the same request change, so caches miss.
PIPELINE_VERSION = "6"

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
    """Output geometry in the oriented frame: scale to ``size``, then crop or pad."""

    size: tuple[int, int]  # (width, height) the whole image is resized to
    crop: tuple[int, int, int, int] | None = None  # x, y, width, height within ``size`` (cover)
    canvas: tuple[int, int] | None = None  # (width, height) to pad to, centred (contain)


@dataclass(frozen=True)
class Plan:
    """Everything the steps need, fixed before the first one runs."""

    geometry: Geometry
    orientation: int
    output: Format
    background: RGBA
    profile: bytes | None = None  # the original's ICC profile, when its pixels are not yet sRGB


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
    animated = animated_output(info, params, target)
    if animated is not None:
        return render_animation(path, info, params, animated, limits)
    declared = oriented_size(info)
    reduction = 1
    if declared:
        geometry = plan_geometry(*declared, params)
        check_output(geometry, limits)
        reduction = jpeg_shrink_factor(declared, geometry) if info.format == "jpeg" else 1
    image = decode(path, info, reduction) if not params.frame else decode_frame(path, info, params.frame)
    limits.check_deadline()
    height, width = image.shape[:2]
    source_size = declared if reduction > 1 and declared else _orient_size(width, height, info)
    return finish(image, info.format, source_size, info.orientation, params, target, limits, info.profile)


def finish(
    image: Image,
    source_format: str,
    source_size: tuple[int, int],
    orientation: int,
    params: ImageParams,
    target: str,
    limits: Limits = DEFAULT_LIMITS,
    profile: bytes | None = None,
) -> Rendered:
    """Plan on the original's oriented size, run STEPS on ``image`` and encode.

    ``image`` is the decoded original, possibly shrunk on decode, or a reduced copy of it
    (intermediate.py): the plan, and so the result's size, depends only on the original.
    """
    plan = Plan(
        geometry=plan_geometry(*source_size, params),
        orientation=orientation,
        output=pick(target, source_format, has_alpha(image)),
        background=params.background,
        profile=profile,
    )
    check_output(plan.geometry, limits)
    for step in STEPS:
        image = step(image, plan)
        limits.check_deadline()
    return Rendered(encode(image, plan.output, params.quality), plan.output)


def animated_output(info: SourceInfo, params: ImageParams, target: str) -> Format | None:
    """The format an animated original is served in as an animation, or None for a still.

    WebP and AVIF animate; asked for nothing in particular, an animation is served as WebP.
    JPEG and PNG (and ``?frame=N``) take one frame.
    """
    if info.frames < 2 or params.frame is not None:
        return None
    if target == SOURCE:
        return FORMATS.get("webp")
    return FORMATS[target] if target in ("webp", "avif") else None


def render_animation(
    path: str, info: SourceInfo, params: ImageParams, output: Format, limits: Limits = DEFAULT_LIMITS
) -> Rendered:
    """Every frame through STEPS, planned once; durations and loop count kept."""
    declared = oriented_size(info)
    if declared is None:
        raise UnsupportedImage(f"the {info.format.upper()} animation declares no size")
    plan = Plan(plan_geometry(*declared, params), info.orientation, output, params.background, info.profile)
    check_output(plan.geometry, limits, info.frames)
    with open(path, "rb") as file:
        data = np.frombuffer(file.read(), np.uint8)
    try:
        ok, animation = cv2.imdecodeanimation(data, 0, limits.max_animation_frames + 1)
    except (cv2.error, MemoryError):
        ok = False
    if not ok or not animation.frames:
        raise UnsupportedImage(f"could not decode the {info.format.upper()} animation")
    if len(animation.frames) > limits.max_animation_frames:  # the header said fewer
        raise SourceTooLarge(f"the original has over {limits.max_animation_frames} frames")
    frames = []
    for frame in animation.frames:
        for step in STEPS:
            frame = step(frame, plan)
        frames.append(_with_channels(frame, 4))  # one layout for every frame
        limits.check_deadline()
    result = cv2.Animation()
    result.frames = frames
    result.durations = animation.durations
    result.loop_count = animation.loop_count
    try:
        ok, buffer = cv2.imencodeanimation(output.extension, result, output.encoder_flags(params.quality))
    except cv2.error:
        ok = False
    if not ok:
        raise InvalidParameter("fmt", f"cannot encode this animation as {output.name}")
    return Rendered(buffer.tobytes(), output)


def decode_frame(path: str, info: SourceInfo, frame: int) -> Image:
    """Frame ``frame`` of an animation (0-based), composed as a viewer shows it, as a still."""
    if frame >= info.frames:
        raise InvalidParameter("frame", f"the original has {info.frames} frame{'s' * (info.frames > 1)}")
    with open(path, "rb") as file:
        data = np.frombuffer(file.read(), np.uint8)
    try:
        ok, animation = cv2.imdecodeanimation(data, frame, 1)
    except (cv2.error, MemoryError):
        ok = False
    if not ok or not animation.frames:
        raise UnsupportedImage(f"could not decode frame {frame} of the {info.format.upper()} source")
    image: Image = animation.frames[0]
    return image if has_alpha(image) else image[..., :3]


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


def check_output(geometry: Geometry, limits: Limits, frames: int = 1) -> None:
    width, height = geometry.canvas or (geometry.crop[2:] if geometry.crop else geometry.size)
    if width * height * frames > limits.max_output_pixels:
        size = f"{width}x{height}" + (f" x {frames} frames" if frames > 1 else "")
        raise InvalidParameter(
            "w", f"the result would be {size}, over {limits.max_output_pixels} pixels; ask for less"
        )


def plan_geometry(width: int, height: int, params: ImageParams) -> Geometry:
    """Where a ``width`` x ``height`` source ends up; never larger than the source."""
    w, h = params.width, params.height
    if w is None and h is None:
        return Geometry((width, height))
    if w is None or h is None or params.fit == "inside":
        scale = min(1.0, w / width if w else math.inf, h / height if h else math.inf)
        return Geometry(_scaled(width, height, scale))
    # A box larger than the source shrinks in proportion until it fits.
    box = _scaled(w, h, min(1.0, width / w, height / h))
    if params.fit == "fill":
        return Geometry(box)
    if params.fit == "cover":
        size = _scaled(width, height, max(box[0] / width, box[1] / height))
        size = (max(size[0], box[0]), max(size[1], box[1]))
        x, y = (size[0] - box[0]) // 2, (size[1] - box[1]) // 2
        return Geometry(size, crop=(x, y, *box))
    return Geometry(_scaled(width, height, min(box[0] / width, box[1] / height)), canvas=box)


def decode(path: str, info: SourceInfo, reduction: int = 1) -> Image:
    """Read the file with OpenCV; orientation is left to the ``orient`` step."""
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
        # Opaque 16-bit: libpng scales to 8 bits while decoding (rounding, as to_8bit does),
        # 13% sooner than decoding 16 bits, and every later step then runs on a third less.
        # Not when a profile is to be applied: that starts from all 16 bits.
        base = cv2.IMREAD_GRAYSCALE if info.channels == 1 else cv2.IMREAD_COLOR
        flags = base | cv2.IMREAD_IGNORE_ORIENTATION
    else:
        flags = cv2.IMREAD_UNCHANGED  # keeps alpha and 16 bits
    if info.format == "jpeg" and info.channels == 4:
        return _decode_cmyk(path, info, reduction)
    try:
        if info.format == "jpeg":  # shrink-on-decode ran 1-1.5 ms (~5%) faster from memory
            with open(path, "rb") as file:
                data = file.read()
            if not data.endswith(b"\xff\xd9"):  # truncated: end it as libjpeg's file reader would,
                data += b"\xff\xd9"  # so that what decodes is served, as from a file
            image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        else:  # no such gain for the others, and BMP decoded 5x slower that way
            image = cv2.imread(path, flags)
    except (cv2.error, MemoryError, OSError):  # OpenCV's own limits, a failed allocation, a file gone
        image = None
    if image is None or image.size == 0:
        raise UnsupportedImage(f"could not decode the {info.format.upper()} source")
    if info.transparent is not None and image.ndim == 2:  # grey + tRNS, which OpenCV ignores
        image = _keyed_alpha(image, info.transparent, info.depth)
    if image.ndim == 3 and image.shape[2] == 2:  # gray + alpha
        image = np.dstack((image[..., 0], image[..., 0], image[..., 0], image[..., 1]))
    if image.ndim == 3 and image.shape[2] == 4 and not has_alpha(image):
        image = image[..., :3]
    return image


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


def encode(image: Image, output: Format, quality: int) -> bytes:
    try:
        ok, buffer = cv2.imencode(output.extension, image, output.encoder_flags(quality))
    except cv2.error:
        ok = False
    if not ok:
        height, width = image.shape[:2]
        raise InvalidParameter("fmt", f"cannot encode a {width}x{height} image as {output.name}")
    return buffer.tobytes()


# --- steps: each (image, plan) -> image, applied in order -------------------------------


def resize(image: Image, plan: Plan) -> Image:
    width, height = plan.geometry.size
    if plan.orientation >= 5:  # still in the stored frame: the axes are swapped
        width, height = height, width
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


_ORIENT: dict[int, Callable[[Image], Image]] = {
    2: lambda im: cv2.flip(im, 1),
    3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda im: cv2.flip(im, 0),
    5: lambda im: cv2.transpose(im),
    6: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
    7: lambda im: cv2.flip(cv2.transpose(im), -1),
    8: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def orient(image: Image, plan: Plan) -> Image:
    """Apply EXIF orientation, so the pixels are upright and the tag can be dropped."""
    return upright(image, plan.orientation)


def upright(image: Image, orientation: int) -> Image:
    transform = _ORIENT.get(orientation)
    return transform(image) if transform else image


def crop(image: Image, plan: Plan) -> Image:
    if plan.geometry.crop is None:
        return image
    x, y, width, height = plan.geometry.crop
    return image[y : y + height, x : x + width]


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
    """``contain``: centre the image on a canvas of the background colour."""
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
    x, y = (width - image.shape[1]) // 2, (height - image.shape[0]) // 2
    canvas[y : y + image.shape[0], x : x + image.shape[1]] = image
    return canvas


STEPS: tuple[Callable[[Image, Plan], Image], ...] = (
    resize,
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


def jpeg_shrink_factor(source: tuple[int, int], geometry: Geometry) -> int:
    """The largest libjpeg DCT scaling (1/2, 1/4, 1/8) that still yields at least ``geometry.size``."""
    width, height = source
    target_w, target_h = geometry.size
    for factor in (8, 4, 2):
        if -(-width // factor) >= target_w and -(-height // factor) >= target_h:
            return factor
    return 1


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
