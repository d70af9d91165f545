"""``Settings``: every variable a deployer can set, each described once, with its field.

A field's ``setting(...)`` gives its default, parser, bound, section and doc; ``from_env`` parses
with the parser, ``validate`` checks the bounds in field order, and ``reference.py`` renders
docs/configuration.md and config/proxy.env.example from the same fields. A doc is written for
deployers: what the variable does, its unit, what its values mean; the bound's rule follows it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .base import (
    BYTES,
    CACHE_BYTES,
    POSITIVE_SECONDS,
    PREFIX,
    SECONDS,
    TOKEN,
    Bound,
    Mount,
    Presets,
    SettingsError,
    at_least,
    env_name,
    setting,
    spec_of,
    within,
)
from .parsers import (
    NEGOTIABLE,
    parse_auto_formats,
    parse_bool,
    parse_header_names,
    parse_hosts,
    parse_int,
    parse_origins,
    parse_path,
    parse_presets,
    parse_result_store,
    parse_seconds,
    parse_size,
    parse_source,
    parse_text,
)

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples"


def _missing_directory(mounts: tuple[Mount, ...]) -> str | None:
    missing = [
        mount.location for mount in mounts if mount.scheme == "file" and not Path(mount.location).is_dir()
    ]
    return f"{missing[0]} is not a directory" if missing else None


_FILE_MOUNTS = Bound(_missing_directory, "A `file://` mount's directory must exist.")


@dataclass(frozen=True)
class Settings:
    """Everything a deployer can set, with its unit and default. Bounds are checked in this order."""

    image_root: Path = setting(
        SAMPLES_DIR,
        parse=parse_path,
        group="sources",
        default_doc="the bundled `samples/` of the checkout",
        example="/srv/images",
        doc="""Directory holding the originals, when `PROXY_SOURCE` is not set; it must exist. Image ids
        are paths relative to it; nothing outside it is ever served (no `..`, no absolute paths, no
        symlinks leading out, no dotfiles).""",
    )
    source: tuple[Mount, ...] = setting(
        (),
        parse=parse_source,
        group="sources",
        bound=_FILE_MOUNTS,
        example="products/=s3://shop-images/products/,legacy/=https://old.example.com/img/,=file:///srv/images",
        doc="""Where originals live, by id prefix: one URL, or `prefix=URL` pairs separated by commas; the
        longest matching prefix wins. `file://dir`; `s3://bucket/prefix` (boto3 reads
        `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and `AWS_ENDPOINT_URL` for MinIO,
        R2 and the like); `http(s)://host/base/`. Replaces `PROXY_IMAGE_ROOT`.""",
    )
    source_ttl: float = setting(
        60.0,
        parse=parse_seconds,
        group="sources",
        bound=POSITIVE_SECONDS,
        doc="""Seconds a remote original's version is trusted; after that one conditional GET
        revalidates it.""",
    )
    source_cache_size: int = setting(
        2**30,
        parse=parse_size,
        group="sources",
        bound=CACHE_BYTES,
        doc="""Bound of the local copies of remote originals, kept in `PROXY_CACHE_DIR/sources`: bytes,
        or with a unit, as `PROXY_CACHE_SIZE`.""",
    )
    fetch_timeout: float = setting(
        10.0,
        parse=parse_seconds,
        group="sources",
        bound=POSITIVE_SECONDS,
        doc="Seconds to connect to an upstream, and for a whole download.",
    )
    url_hosts: tuple[str, ...] = setting(
        (),
        parse=parse_hosts,
        group="sources",
        default_doc="unset (`/url/` off)",
        doc="""Hosts whose URLs `/url/<base64url of a URL>` fetches: `images.example.com`,
        `*.example.com` for subdomains, or `*` for any, separated by commas; unset: `/url/` is off.
        Internal addresses (loopback, private, link-local, CGNAT, ...) are refused unless
        `PROXY_ALLOW_PRIVATE_ADDRESSES` is `1`.""",
    )
    allow_private_addresses: bool = setting(
        False,
        parse=parse_bool,
        group="sources",
        doc="`1`: fetches may reach loopback and private addresses (private networks, tests).",
    )
    cache_dir: Path = setting(
        Path("cache_dir"),
        parse=parse_path,
        group="cache",
        doc="""Directory of the disk cache of rendered variants, shared by all workers of one instance.
        Relative paths are relative to the working directory gunicorn starts in.""",
    )
    cache_size: int = setting(
        2**30,
        parse=parse_size,
        group="cache",
        bound=CACHE_BYTES,
        doc="""Upper bound of the cache directory (SQLite index and log included), in bytes or with a
        unit: `500MB`, `2GiB` (SI and IEC). Remote originals' copies under `sources/` have their own
        bound (`PROXY_SOURCE_CACHE_SIZE`). On a smaller disk the cache holds what fits, and says so
        ([a full disk](caching.md#a-full-disk)).""",
    )
    memory_cache_size: int = setting(
        32 << 20,
        parse=parse_size,
        group="cache",
        bound=BYTES,
        doc="""Memory each worker keeps for hot variants of up to 256 KB, on top of the disk cache; `0`
        turns it off. Budget workers x this (4 x 32 MiB by default on 2 cores: two workers per
        core).""",
    )
    result_store: str = setting(
        "",
        parse=parse_result_store,
        group="cache",
        example="s3://renders/origin/",
        doc="""A result tier shared by instances: `s3://bucket/prefix/` (boto3, with the same credentials
        and `AWS_ENDPOINT_URL` as S3 sources) or `file:///path/` (a filesystem every instance mounts).
        A local miss looks there before rendering, and every render is written there off the request
        path, so that a new or emptied instance renders nothing another has
        ([the shared result tier](caching.md#the-shared-result-tier)). Empty: none.""",
    )
    result_timeout: float = setting(
        1.0,
        parse=parse_seconds,
        group="cache",
        bound=POSITIVE_SECONDS,
        doc="""Seconds a look in the result tier may take; past it, or on any failure of the tier, the
        request renders. After 3 failures in a row a worker leaves the tier alone for 30 s.""",
    )
    result_ttl: float = setting(
        0.0,
        parse=parse_seconds,
        group="cache",
        bound=SECONDS,
        doc="""Seconds a render in the result tier is good for, checked on read; `0`: until the
        bucket's lifecycle rule removes it.""",
    )
    max_age: int = setting(
        86400,
        parse=parse_int,
        group="http",
        bound=SECONDS,
        doc="Seconds clients and CDNs may reuse an image without revalidating (`Cache-Control: max-age`).",
    )
    stale_while_revalidate: int = setting(
        60,
        parse=parse_int,
        group="http",
        bound=SECONDS,
        doc="""Seconds, for `Cache-Control: stale-while-revalidate` (RFC 5861): a cache may answer from a
        stale copy while it revalidates; `0` leaves it out. The Varnish front uses it.""",
    )
    stale_if_error: int = setting(
        86400,
        parse=parse_int,
        group="http",
        bound=SECONDS,
        doc="""Seconds, for `Cache-Control: stale-if-error` (RFC 5861): a cache may answer from a stale
        copy while the origin fails; `0` leaves it out. The Varnish front uses it.""",
    )
    tag_headers: tuple[str, ...] = setting(
        ("Surrogate-Key", "Cache-Tag"),
        parse=parse_header_names,
        group="http",
        empty=True,
        doc="""Headers that carry an image's cache tags (its original's, and its mount prefix's), which
        CDNs purge by: `Surrogate-Key` (Fastly, Varnish xkey), `Cache-Tag` (Cloudflare),
        `Edge-Cache-Tag` (Akamai). `none` (or empty): no tags.""",
    )
    cors_origins: tuple[str, ...] = setting(
        ("*",),
        parse=parse_origins,
        group="http",
        empty=True,
        doc="""Pages allowed to read images (canvas, WebGL, fetch) and their timings
        (`Access-Control-Allow-Origin`, `Timing-Allow-Origin`): `*` for any, or a list of origins
        (`https://www.example.com,https://shop.example.com`); empty (or `none`) for no CORS headers
        at all.""",
    )
    # Secrets before the output settings and limits: a set but guessable one is named first.
    secret: str | None = setting(
        None,
        parse=parse_text,
        group="security",
        bound=TOKEN,
        empty=True,
        secret=True,
        doc="""HMAC-SHA256 key for signed URLs; when set, every URL must be signed. Set it (or use
        presets only) on any public deployment: without it anybody can make the origin render
        unlimited variants. Unset: `sig` is ignored.""",
    )
    secret_previous: str | None = setting(
        None,
        parse=parse_text,
        group="security",
        bound=TOKEN,
        empty=True,
        secret=True,
        doc="""A second accepted key while you rotate: new key in `PROXY_SECRET`, old one here, then remove
        it. Only together with `PROXY_SECRET`.""",
    )
    purge_token: str | None = setting(
        None,
        parse=parse_text,
        group="security",
        bound=TOKEN,
        empty=True,
        secret=True,
        default_doc="unset (PURGE off)",
        doc="""Bearer token for `PURGE /image/<id>` (drops every variant of one original:
        [purging](caching.md#purging-an-original-everywhere)). Unset: `PURGE` does not exist (405).""",
    )
    auto_formats: tuple[str, ...] = setting(
        ("avif", "webp"),
        parse=parse_auto_formats,
        group="output",
        doc=f"""What `fmt=auto` prefers, in order, among the types a client's `Accept` names: some of
        {", ".join(f"`{name}`" for name in NEGOTIABLE)}; one this build cannot write is skipped. AVIF
        is smaller and much slower to encode than WebP (`bench/formats.py`); `webp,avif` puts speed
        first. `jxl` (JPEG XL, which Safari accepts) is negotiated only when listed, e.g.
        `jxl,avif,webp`.""",
    )
    client_hints: bool = setting(
        False,
        parse=parse_bool,
        group="output",
        doc="""`1`: a URL without `w` takes its width from the `Sec-CH-Width` request header (rounded up
        to `PROXY_WIDTH_STEP`), one without `dpr` its density from `Sec-CH-DPR` (rounded up to a
        half), and one without `q` sent with `Save-Data: on` gets `PROXY_SAVE_DATA_QUALITY`; the
        answer names those headers in `Vary`, and has the ETag of the explicit URL it equals
        ([client hints](url.md#client-hints)).""",
    )
    width_step: int = setting(
        100,
        parse=parse_int,
        group="output",
        bound=within(1, 1000),
        doc="""Pixels a `Sec-CH-Width` is rounded up to a multiple of: fewer variants for caches to
        hold, at the cost of a few pixels more than the slot. The fronts' maps round to 100: change
        them too.""",
    )
    save_data_quality: int = setting(
        50,
        parse=parse_int,
        group="output",
        bound=within(1, 100),
        doc="The quality of a lossy answer to `Save-Data: on`, when the URL names none.",
    )
    keep_copyright: bool = setting(
        False,
        parse=parse_bool,
        group="output",
        doc="""`1`: JPEG, WebP and AVIF answers keep the original's copyright and artist (from its EXIF,
        or its XMP's `dc:rights` and `dc:creator`), as EXIF, and XMP where the format has a place
        for it; every other tag is stripped, as by default, orientation included (the pixels are
        upright).""",
    )
    webp_effort: int = setting(
        4,
        parse=parse_int,
        group="output",
        bound=within(0, 6),
        doc="""libwebp's method for WebP stills: lower encodes faster, into more bytes (`0` is fastest
        and largest). `2` encodes in about half the time of the default `4` for ~4% more bytes
        (`bench/transform.py --seen-only`,
        [timings](performance.md#a-new-size-of-an-original-already-seen)). Part of the cache key.""",
    )
    max_dimension: int = setting(
        8192,
        parse=parse_int,
        group="limits",
        bound=within(1, 65500),
        doc="Largest width or height (`w`, `h`) a request may ask for, in pixels, after `dpr` is applied.",
    )
    max_source_pixels: int = setting(
        50_000_000,
        parse=parse_int,
        group="limits",
        bound=at_least(1),
        doc="""Pixels an original may declare in its header (width x height; imgproxy's default too);
        more is 413, before decoding. OpenCV's own `OPENCV_IO_MAX_IMAGE_PIXELS` is set to the same
        value at startup.""",
    )
    max_source_bytes: int = setting(
        50_000_000,
        parse=parse_size,
        group="limits",
        bound=at_least(1),
        doc="Bytes an original file may have (or with a unit: `50MB`); more is 413.",
    )
    max_output_pixels: int = setting(
        50_000_000,
        parse=parse_int,
        group="limits",
        bound=at_least(1),
        doc="""Pixels a result may have, every frame of an animation counted; more is 400. Lower it to
        refuse full-size PNGs of large originals.""",
    )
    max_animation_frames: int = setting(
        100,
        parse=parse_int,
        group="limits",
        bound=at_least(1),
        doc="""Frames an animated original (GIF, WebP, APNG, AVIF) may declare; more is 413. Every frame
        also counts against `PROXY_MAX_SOURCE_PIXELS` and `PROXY_MAX_OUTPUT_PIXELS`.""",
    )
    presets: Presets = setting(
        parse=parse_presets,
        group="security",
        factory=lambda: MappingProxyType({}),
        example="thumb=w:200,h:200,fit:cover,fmt:webp;hero=w:1600,q:75",
        doc="""Named parameter sets, `name=key:value,...;name=...`, used as `?preset=<name>`; explicit
        parameters override them.""",
    )
    presets_only: bool = setting(
        False,
        parse=parse_bool,
        group="security",
        doc="`1`: accept nothing but `?preset=<name>` (400 otherwise). Needs `PROXY_PRESETS`.",
    )
    playground: bool = setting(
        False,
        parse=parse_bool,
        group="security",
        default_doc="`0` (`make serve`: `1`)",
        doc="`1`: the playground page at `/` (`make serve` turns it on); keep it off behind a CDN.",
    )
    playground_sign: bool = setting(
        False,
        parse=parse_bool,
        group="security",
        doc="""`1`: with `PROXY_SECRET` set, the playground signs the URLs it builds, for anyone who can
        open it, with any parameters ([SECURITY.md](../SECURITY.md)). `0`: it signs nothing, and says so.""",
    )
    info_gps: bool = setting(
        False,
        parse=parse_bool,
        group="security",
        doc="""`1`: `/info/<id>` includes the position an original's EXIF records (`gps`: latitude,
        longitude, altitude). Off by default: a phone's photo records where it was taken, often
        someone's home, and many sites publish originals without stripping it.""",
    )
    error_image: bool = setting(
        False,
        parse=parse_bool,
        group="http",
        doc="""`1`: an error answered to a browser's image request is a small placeholder image with the
        same status (and the reason in `X-Error`) instead of JSON, which browsers drop without a
        word.""",
    )
    max_transforms: int = setting(
        parse=parse_int,
        group="transforms",
        bound=at_least(1),
        factory=lambda: os.cpu_count() or 1,
        default_doc="the number of cores",
        example="2",
        doc="""Transforms running at once on this instance. Other misses wait for a slot, holding a
        thread and no CPU; more than the number of cores only makes each transform slower.""",
    )
    transform_queue: int = setting(
        48,
        parse=parse_int,
        group="transforms",
        bound=at_least(0),
        doc="""Misses waiting for a slot in one worker, at most; more are answered 503. A safeguard that
        keeps threads free for hits: keep `GUNICORN_THREADS` above it plus `PROXY_MAX_TRANSFORMS`
        (gunicorn.conf.py).""",
    )
    transform_wait: float = setting(
        10.0,
        parse=parse_seconds,
        group="transforms",
        bound=POSITIVE_SECONDS,
        doc="""Seconds a miss may wait for a slot, expected or actual: it is answered 503 with
        `Retry-After` at once when the queue's expected wait (misses waiting x recent median
        transform time / slots) exceeds it, or once it has waited that long. Shorten it behind a CDN
        that retries elsewhere, lengthen it for batch clients.""",
    )
    transform_deadline: float = setting(
        20.0,
        parse=parse_seconds,
        group="transforms",
        bound=POSITIVE_SECONDS,
        doc="Seconds after which a transform still running stops between stages (503).",
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``SettingsError`` naming the first field that is out of range."""
        if not self.source and not self.image_root.is_dir():
            raise SettingsError(f"{PREFIX}IMAGE_ROOT: {self.image_root} is not a directory")
        for known in fields(self):
            bound = spec_of(known).bound
            problem = bound.problem(getattr(self, known.name)) if bound else None
            if problem:
                raise SettingsError(f"{env_name(known)}: {problem}")
        if self.secret_previous and not self.secret:
            raise SettingsError(f"{PREFIX}SECRET_PREVIOUS: set only together with {PREFIX}SECRET")
        if self.presets_only and not self.presets:
            raise SettingsError(f"{PREFIX}PRESETS_ONLY: needs {PREFIX}PRESETS to define at least one preset")

    @property
    def mounts(self) -> tuple[Mount, ...]:
        """The source's mounts, longest prefix first; without PROXY_SOURCE, the image root."""
        mounts = self.source or (Mount("", "file", str(self.image_root)),)
        return tuple(sorted(mounts, key=lambda mount: len(mount.prefix), reverse=True))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults, overridden by ``PROXY_<FIELD>`` variables, then validated."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for known in fields(cls):
            spec, name = spec_of(known), env_name(known)
            raw = env.get(name)
            if raw is None or raw.strip() == "" and not spec.empty:
                continue
            values[known.name] = spec.parse(name, raw.strip())
        return cls(**values)
