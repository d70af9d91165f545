"""The query string, parsed once into a frozen ``ImageParams``.

This is the only module that reads request arguments. Parsing normalises as it
validates (``w=0300`` is ``w=300``, ``dpr`` is folded into ``w`` and ``h``,
a ``fit`` that cannot matter is reset), so equivalent requests compare equal
and share one ``canonical()`` string, which is what the cache key is built from.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple
from urllib.parse import parse_qsl, quote

from werkzeug.datastructures import MultiDict

from .errors import InvalidParameter
from .formats import REQUESTABLE
from .settings import Settings, SettingsError

KNOWN = (
    "w",
    "h",
    "fit",
    "gravity",
    "fp",
    "rect",
    "enlarge",
    "trim",
    "rot",
    "flip",
    "blur",
    "sharpen",
    "pixelate",
    "mark",
    "mark_text",
    "mark_pos",
    "mark_scale",
    "mark_alpha",
    "mark_pad",
    "maxbytes",
    "dpr",
    "fmt",
    "q",
    "bg",
    "frame",
    "preset",
    "v",
    "sig",
)
FITS = ("inside", "cover", "fill", "contain")
COMPASS = ("center", "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest")
GRAVITIES = (*COMPASS, "entropy", "attention")
PLACEMENT = ("gravity", "fp")  # either one says where the window goes: an explicit one replaces a preset's
DEFAULT_QUALITY = 82
WHITE = (255, 255, 255, 255)
ROTATIONS = ("0", "90", "180", "270")  # clockwise
FLIPS = ("h", "v", "hv")  # h: left and right swap (a mirror); v: top and bottom
BLUR = (Decimal("0.3"), Decimal(100))  # sigma, in output pixels
SHARPEN = (Decimal("0.3"), Decimal(10))
PIXELATE = (2, 100)  # block side, in output pixels
TRIM = (1, 100)  # the most a border's pixels may differ from the top-left one, per channel (0..255)
MARK_PLACES = (*COMPASS, "tile")
MARK_SCALE = Decimal("0.25")  # the default: a mark a quarter of the result's width
MARK_PAD = (0, 1000)  # pixels between the mark and the edges (or between tiles)
MARK_TEXT = 100  # characters at most
MARKING = ("mark_pos", "mark_scale", "mark_alpha", "mark_pad")  # what only a mark or a text can use
MAXBYTES = (100, 100_000_000)  # a byte budget's bounds

_DIGITS = re.compile(r"[0-9]+")  # ASCII only: int() would also take "٣", " 3" or "3_0"
_HUGE = 10**9
_DPR = re.compile(r"[0-9](?:\.[0-9]{1,2}0*)?")  # trailing zeros change nothing
_FRACTION = re.compile(r"0(?:\.[0-9]{1,4})?|1(?:\.0{1,4})?|\.[0-9]{1,4}")
_HEX = re.compile(r"[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8}")
_VERSION = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SIGMA = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,2})?")


@dataclass(frozen=True)
class ImageParams:
    """A canonical transform request. ``width``/``height`` are device pixels (dpr applied)."""

    width: int | None = None
    height: int | None = None
    fit: str = "inside"
    fmt: str | None = None  # None: the source's own format; "auto": negotiated from Accept
    quality: int = DEFAULT_QUALITY
    background: tuple[int, int, int, int] = WHITE  # RGBA
    frame: int | None = None  # one frame of an animation, 0-based, as a still; None: all of it
    gravity: str = "center"  # where a cover crop's window (or contain's image) goes; "focal": at ``focal``
    focal: tuple[Decimal, Decimal] | None = None  # fp=x,y, fractions of the oriented original
    rect: tuple[int, int, int, int] | None = None  # x, y, w, h of the oriented original, cut first
    enlarge: bool = False  # enlarge=1: w and h may exceed the original (never, by default)
    trim: int | None = None  # trim=T: cut a uniform border (within T of the top-left pixel) first
    rotate: int = 0  # rot=: degrees clockwise, after EXIF orientation (0, 90, 180, 270)
    flip: str = ""  # flip=h|v|hv, after the rotation
    blur: Decimal | None = None  # blur=sigma: a Gaussian blur of the result
    sharpen: Decimal | None = None  # sharpen=sigma: an unsharp mask of the result
    pixelate: int | None = None  # pixelate=N: the result in N x N blocks
    mark: str | None = None  # mark=<id>: an original of the same sources drawn over the result
    mark_text: str | None = None  # mark_text=: a line of text drawn over it instead
    mark_pos: str = "southeast"  # a compass point, or "tile"
    mark_scale: Decimal = MARK_SCALE  # the mark's width, as a fraction of the result's
    mark_alpha: int = 100  # the mark's opacity, percent (its own alpha kept within it)
    mark_pad: int = 0  # pixels from the edges, or between tiles
    maxbytes: int | None = None  # the answer's bytes at most: lower quality first, then smaller
    auto_quality: bool = False  # q=auto: the lowest quality that looks the same (pipeline/quality.py)

    @property
    def marked(self) -> bool:
        return self.mark is not None or self.mark_text is not None

    @property
    def turns(self) -> bool:
        """Whether rot or flip changes the picture's frame (pipeline/geometry.turned)."""
        return bool(self.rotate or self.flip)

    @property
    def effects(self) -> bool:
        """Whether an effect runs on the result (pipeline/steps.effects)."""
        return self.blur is not None or self.sharpen is not None or self.pixelate is not None

    def canonical(self) -> str:
        """A stable text form: equal for equivalent requests, different otherwise."""
        return f"{self.transform}&fmt={self.fmt or ''}"

    @functools.cached_property  # the parser hands out one instance per query: built once
    def transform(self) -> str:
        """The canonical form without the requested format, which the cache key replaces by the
        negotiated one (``fmt=webp`` and ``fmt=auto`` answered with WebP are one variant)."""
        r, g, b, a = self.background
        frame = "" if self.frame is None else f"&frame={self.frame}"
        # Absent when default, so that keys made before these parameters existed still match.
        gravity = "" if self.gravity in ("center", "focal") else f"&gravity={self.gravity}"
        focal = "" if self.focal is None else f"&fp={self.focal[0]},{self.focal[1]}"
        rect = "" if self.rect is None else "&rect=" + ",".join(map(str, self.rect))
        enlarge = "&enlarge=1" if self.enlarge else ""
        edits = "".join(  # in the order they apply, each only when asked for
            f"&{name}={value}"
            for name, value in (
                ("trim", self.trim),
                ("rot", self.rotate or None),
                ("flip", self.flip or None),
                ("blur", self.blur),
                ("sharpen", self.sharpen),
                ("pixelate", self.pixelate),
            )
            if value is not None
        )
        if self.marked:
            what = (
                f"mark={quote(self.mark, safe='/')}"
                if self.mark
                else f"mark_text={quote(self.mark_text or '')}"
            )
            edits += (
                f"&{what}&mark_pos={self.mark_pos}&mark_scale={self.mark_scale}"
                f"&mark_alpha={self.mark_alpha}&mark_pad={self.mark_pad}"
            )
        if self.maxbytes is not None:
            edits += f"&maxbytes={self.maxbytes}"
        return (
            f"w={self.width or ''}&h={self.height or ''}&fit={self.fit}"
            f"&q={'auto' if self.auto_quality else self.quality}"
            f"&bg={r:02x}{g:02x}{b:02x}{a:02x}{frame}{gravity}{focal}{rect}{enlarge}{edits}"
        )


def parse_params(args: MultiDict[str, str], settings: Settings) -> ImageParams:
    """Validate and normalise the query; raise ``InvalidParameter`` naming the culprit.

    ``sig`` was checked before (see signing.py) and is ignored here. ``preset=<name>``
    supplies a named set of parameters; explicit ones override it, unless the deployment
    accepts presets only.
    """
    raw = _single_values(args)
    raw.pop("sig", None)
    if "v" in raw:  # a version for caches and browsers (proxy.urls); it changes no pixel
        _version("v", raw.pop("v"))
    asked = set(raw)  # what the URL says itself, before a preset fills in
    if settings.presets_only:
        extra = [name for name in raw if name != "preset"]  # in the order sent
        if extra or "preset" not in raw:
            name = extra[0] if extra else "preset"
            raise InvalidParameter(
                name, f"only ?preset=<name> is accepted; presets: {', '.join(settings.presets)}"
            )
    if "preset" in raw:
        name = raw.pop("preset")
        if name not in settings.presets:
            raise InvalidParameter("preset", f"unknown preset {name!r}; known: {', '.join(settings.presets)}")
        preset = dict(settings.presets[name])
        if any(key in raw for key in PLACEMENT):
            preset = {key: value for key, value in preset.items() if key not in PLACEMENT}
        raw = {**preset, **raw}
    max_dimension = settings.max_dimension
    dpr = _dpr("dpr", raw["dpr"]) if "dpr" in raw else Decimal(1)
    params = ImageParams(
        width=_dimension("w", raw.get("w"), dpr, max_dimension),
        height=_dimension("h", raw.get("h"), dpr, max_dimension),
        fit=_choice("fit", raw.get("fit", "inside"), FITS),
        fmt=_choice("fmt", raw["fmt"], REQUESTABLE) if "fmt" in raw else None,
        quality=_quality("q", raw["q"]) if raw.get("q", "auto") != "auto" else DEFAULT_QUALITY,
        auto_quality=raw.get("q") == "auto",
        background=_background("bg", raw.get("bg", "ffffff")),
        frame=_frame("frame", raw["frame"], settings.max_animation_frames) if "frame" in raw else None,
        gravity=_choice("gravity", raw.get("gravity", "center"), GRAVITIES),
        focal=_focal("fp", raw["fp"]) if "fp" in raw else None,
        rect=_rect("rect", raw["rect"]) if "rect" in raw else None,
        enlarge=_flag("enlarge", raw.get("enlarge", "0")),
        trim=_bounded("trim", raw["trim"], *TRIM) if "trim" in raw else None,
        rotate=int(_choice("rot", raw.get("rot", "0"), ROTATIONS)),
        flip=_choice("flip", raw["flip"], FLIPS) if "flip" in raw else "",
        blur=_sigma("blur", raw["blur"], *BLUR) if "blur" in raw else None,
        sharpen=_sigma("sharpen", raw["sharpen"], *SHARPEN) if "sharpen" in raw else None,
        pixelate=_bounded("pixelate", raw["pixelate"], *PIXELATE) if "pixelate" in raw else None,
        mark=_mark("mark", raw["mark"]) if "mark" in raw else None,
        mark_text=_mark_text("mark_text", raw["mark_text"]) if "mark_text" in raw else None,
        mark_pos=_choice("mark_pos", raw.get("mark_pos", "southeast"), MARK_PLACES),
        mark_scale=_scale("mark_scale", raw["mark_scale"]) if "mark_scale" in raw else MARK_SCALE,
        mark_alpha=_bounded("mark_alpha", raw.get("mark_alpha", "100"), 0, 100),
        mark_pad=_bounded("mark_pad", raw.get("mark_pad", "0"), *MARK_PAD),
        maxbytes=_bounded("maxbytes", raw["maxbytes"], *MAXBYTES) if "maxbytes" in raw else None,
    )
    if params.mark is not None and params.mark_text is not None:
        raise InvalidParameter("mark_text", "a watermark is an image (mark) or a text (mark_text), not both")
    unused = next((name for name in MARKING if name in raw), None)
    if unused is not None and not params.marked:
        raise InvalidParameter(unused, "places a watermark: give mark=<id> or mark_text= with it")
    if "fp" in raw and "gravity" in raw:
        raise InvalidParameter("fp", "a focal point is a gravity of its own: give fp or gravity, not both")
    if params.width is None and params.height is None:
        params = replace(params, enlarge=False)  # no size asked for: nothing to enlarge to
    if params.width is None or params.height is None:
        params = replace(params, fit="inside")  # with one side or none there is no box to fill
    if params.focal is not None:
        centre = params.focal == (Decimal("0.5"), Decimal("0.5"))
        params = replace(
            params, gravity="center" if centre else "focal", focal=None if centre else params.focal
        )
    if params.fit == "contain" and params.gravity not in COMPASS and asked.intersection(PLACEMENT):
        raise InvalidParameter(  # it would silently be the centre
            "fp" if params.gravity == "focal" else "gravity",
            "fit=contain shows the whole image, placed by a compass gravity; "
            "entropy, attention and fp choose a crop, which needs fit=cover",
        )
    if params.fit not in ("cover", "contain") or params.fit == "contain" and params.gravity not in COMPASS:
        params = replace(params, gravity="center", focal=None)  # nothing to place, or a preset's crop
    if params.fmt == "png":
        params = replace(params, quality=DEFAULT_QUALITY, auto_quality=False)  # lossless: q changes nothing
    return params


def query_parser(settings: Settings, size: int = 4096) -> Callable[[str], ImageParams]:
    """``parse_params`` on a raw WSGI query string, remembering the last ``size`` it accepted.

    An origin sees the same few queries over and over (one per variant a page links to), and
    parsing one costs a cache hit ~15 us, a tenth of it; refused queries are parsed every time.
    """

    @functools.lru_cache(maxsize=size)
    def parse(query: str) -> ImageParams:
        text = query.encode("latin-1").decode("utf-8", "replace")  # as werkzeug reads it (PEP 3333)
        return parse_params(MultiDict(parse_qsl(text, keep_blank_values=True)), settings)

    return parse


class Hints(NamedTuple):
    """The client hints a request sent, as sent (views.py reads them when PROXY_CLIENT_HINTS=1)."""

    width: str | None = None  # Sec-CH-Width: the slot's width in device pixels
    dpr: str | None = None  # Sec-CH-DPR
    save_data: str | None = None  # Save-Data


HINTED = (("w", "Sec-CH-Width"), ("dpr", "Sec-CH-DPR"), ("q", "Save-Data"))  # parameter, header


def hint_reader(settings: Settings, size: int = 4096) -> Callable[[str, Hints], tuple[str, tuple[str, ...]]]:
    """``(query, hints) -> (query', vary)``: the query with what the hints decide added, as
    parameters (so that a hinted answer is the variant, and has the ETag, of the explicit URL it
    equals), and the headers the answer varies on: those of the parameters the URL leaves to the
    client, whether this client sent them or not (a cache must not give a hinted answer to another).

    ``Sec-CH-Width`` is device pixels, so a width from it takes no ``dpr``; it is rounded up to
    ``PROXY_WIDTH_STEP``, a density up to a half, so that caches hold few variants."""

    @functools.lru_cache(maxsize=size)
    def free(query: str) -> tuple[str, ...]:
        """The parameters of HINTED that neither the query nor its preset sets."""
        if settings.presets_only:
            return ()  # nothing may be added to ?preset=<name>
        names = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
        preset = dict(parse_qsl(query)).get("preset", "")
        names |= {name for name, _ in settings.presets.get(preset, ())}
        return tuple(name for name, _ in HINTED if name not in names)

    headers = dict(HINTED)
    step, ceiling, quality = settings.width_step, settings.max_dimension, settings.save_data_quality

    def read(query: str, hints: Hints) -> tuple[str, tuple[str, ...]]:
        left = free(query)
        if not left:
            return query, ()
        added = []
        width = _hinted_width(hints.width, step, ceiling) if "w" in left else None
        if width is not None:
            added.append(f"w={width}")
        elif "dpr" in left and (dpr := _hinted_dpr(hints.dpr)) is not None:
            added.append(f"dpr={dpr}")
        if "q" in left and (hints.save_data or "").strip().lower() == "on":
            added.append(f"q={quality}")
        hinted = "&".join([query, *added] if query else added)
        return hinted, tuple(headers[name] for name in left)

    return read


def _hinted_width(raw: str | None, step: int, ceiling: int) -> int | None:
    """A width hint rounded up to ``step``, within 1..``ceiling``; None when absent or not a number."""
    value = _integer((raw or "").strip())
    if not value:
        return None
    return min(-(-value // step) * step, ceiling)


def _hinted_dpr(raw: str | None) -> str | None:
    """A density hint rounded up to a half, within 1..4, as ``dpr=`` takes it; None if not a number."""
    try:
        value = float((raw or "").strip())
    except ValueError:
        return None
    if value != value or value <= 1:  # NaN, or no denser than CSS pixels
        return None
    return f"{min(math.ceil(value * 2) / 2, 4.0):g}"


def check_presets(settings: Settings) -> None:
    """Fail at startup, naming PROXY_PRESETS, if a preset would not parse as a query."""
    plain = replace(settings, presets_only=False)
    for name, pairs in settings.presets.items():
        keys = [key for key, _ in pairs]
        if {"preset", "sig"} & set(keys):
            raise SettingsError(f"PROXY_PRESETS: preset {name!r} may not set preset or sig")
        try:
            parse_params(MultiDict(list(pairs)), plain)
        except InvalidParameter as error:
            raise SettingsError(f"PROXY_PRESETS: preset {name!r}: {error.message}") from None


def _single_values(args: MultiDict[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, items in args.lists():
        if name not in KNOWN:
            raise InvalidParameter(name, f"unknown parameter; known: {', '.join(KNOWN)}")
        if len(items) > 1:
            raise InvalidParameter(name, "given more than once")
        if items[0] == "":
            raise InvalidParameter(name, "empty value")
        values[name] = items[0]
    return values


def _dimension(name: str, raw: str | None, dpr: Decimal, max_dimension: int) -> int | None:
    if raw is None:
        return None
    value = _integer(raw)
    scaled = None if value is None else int((value * dpr).to_integral_value(ROUND_HALF_UP))
    if scaled is None or not 1 <= scaled <= max_dimension:
        after = f" after dpr={dpr}" if dpr != 1 else ""
        raise InvalidParameter(name, f"expected an integer within 1..{max_dimension}{after}, got {raw!r}")
    return scaled


def _integer(raw: str) -> int | None:
    """ASCII digits to int, saturating, so a 5000-digit value cannot cost a big-int parse."""
    if not _DIGITS.fullmatch(raw):
        return None
    digits = raw.lstrip("0") or "0"
    return int(digits) if len(digits) < 10 else _HUGE


def _dpr(name: str, raw: str) -> Decimal:
    value = Decimal(raw) if _DPR.fullmatch(raw) else None
    if value is None or not 1 <= value <= 4:
        raise InvalidParameter(name, f"expected a number within 1..4 with up to two decimals, got {raw!r}")
    return value


def _choice(name: str, raw: str, options: tuple[str, ...]) -> str:
    if raw not in options:
        raise InvalidParameter(name, f"expected one of {', '.join(options)}, got {raw!r}")
    return raw


def _quality(name: str, raw: str) -> int:
    value = _integer(raw)
    if value is None or not 1 <= value <= 100:
        raise InvalidParameter(name, f"expected an integer within 1..100 or auto, got {raw!r}")
    return value


def _frame(name: str, raw: str, frames: int) -> int:
    value = _integer(raw)
    if value is None or value >= frames:
        raise InvalidParameter(name, f"expected a frame number within 0..{frames - 1}, got {raw!r}")
    return value


def _version(name: str, raw: str) -> str:
    if not _VERSION.fullmatch(raw):
        raise InvalidParameter(name, f"expected 1..64 letters, digits, '.', '_' or '-', got {raw!r}")
    return raw


def _bounded(name: str, raw: str, low: int, high: int) -> int:
    value = _integer(raw)
    if value is None or not low <= value <= high:
        raise InvalidParameter(name, f"expected an integer within {low}..{high}, got {raw!r}")
    return value


def _sigma(name: str, raw: str, low: Decimal, high: Decimal) -> Decimal:
    """A radius in output pixels, up to two decimals, normalised (``1.50`` is ``1.5``)."""
    value = Decimal(raw).normalize() if _SIGMA.fullmatch(raw) else None
    if value is None or not low <= value <= high:
        raise InvalidParameter(
            name, f"expected a number within {low}..{high} with up to two decimals, got {raw!r}"
        )
    return value if value != value.to_integral_value() else value.quantize(Decimal(1))


def _mark(name: str, raw: str) -> str:
    """An image id, checked as ids are when it is resolved (sources.check_id): here only its length."""
    if len(raw) > 1024:
        raise InvalidParameter(name, "expected an image id of at most 1024 characters")
    return raw


def _mark_text(name: str, raw: str) -> str:
    if len(raw) > MARK_TEXT or not raw.isprintable() or not raw.strip():
        raise InvalidParameter(name, f"expected 1..{MARK_TEXT} printable characters, got {raw[:120]!r}")
    return raw


def _scale(name: str, raw: str) -> Decimal:
    value = Decimal(raw).normalize() if _FRACTION.fullmatch(raw) else None
    if value is None or value <= 0:
        raise InvalidParameter(
            name, f"expected a fraction above 0, at most 1, with up to 4 decimals, got {raw!r}"
        )
    return value


def _flag(name: str, raw: str) -> bool:
    if raw not in ("0", "1"):
        raise InvalidParameter(name, f"expected 1 or 0, got {raw!r}")
    return raw == "1"


def _focal(name: str, raw: str) -> tuple[Decimal, Decimal]:
    parts = raw.split(",")
    if len(parts) != 2 or not all(_FRACTION.fullmatch(part) for part in parts):
        raise InvalidParameter(
            name, f"expected x,y: two fractions within 0..1 with up to 4 decimals, got {raw!r}"
        )
    x, y = (Decimal(part).normalize() for part in parts)  # 0.50 -> 0.5, 1.00 -> 1
    return (x, y)


def _rect(name: str, raw: str) -> tuple[int, int, int, int]:
    values = [_integer(part) for part in raw.split(",")]
    if len(values) != 4 or None in values or values[2] == 0 or values[3] == 0:
        raise InvalidParameter(name, f"expected x,y,w,h: four integers, w and h at least 1, got {raw!r}")
    x, y, width, height = values
    return (x, y, width, height)  # type: ignore[return-value]


def _background(name: str, raw: str) -> tuple[int, int, int, int]:
    if not _HEX.fullmatch(raw):
        raise InvalidParameter(name, f"expected 3, 6 or 8 hex digits (RGB, RRGGBB, RRGGBBAA), got {raw!r}")
    digits = "".join(c * 2 for c in raw) if len(raw) == 3 else raw
    digits = digits if len(digits) == 8 else digits + "ff"
    r, g, b, a = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
    return (r, g, b, a)
