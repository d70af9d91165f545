"""The origin: what serves an image request, for the views and the CLI alike.

``Origin.serve`` is the whole life of a request, one line per step: parse, resolve, the format
produced, the key and the headers, 304, fetch or render, the answer. It takes an
``ImageRequest`` (what the view read from HTTP: the query, Accept, Origin, the conditional
headers) and returns an ``ImageAnswer`` (a status, its ready headers, the variant), which the
view turns into a response; ``python -m proxy warm`` asks it the same way.

A variant's headers are built once per worker (http.VariantHeaders, remembered here by variant
and by what of the request changes them), so that a hit and a 304 build none: a hit is look-ups
of what this worker remembers (the query parsed, fmt=auto's answer for the Accept header, the
original's kind, the headers), a ``stat`` of the original, a key, and a memory or disk read.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from . import keys
from . import purge as purging
from .cache import HIT, MISS, SHARED, Variant, VariantCache
from .errors import InvalidParameter, NotFound, UnsupportedImage
from .formats import BEST, LEGACY, SOURCE, WEBP_EFFORT, Format, format_named, negotiate, resolve
from .gate import TransformGate, gate_directory
from .http import Cors, Header, VariantHeaders, cache_control, etag_for
from .keys import original_tag, tag_headers, tags_for
from .limits import Limits
from .metadata import credit_of, credited
from .metrics import (
    CACHE_HITS,
    CACHE_MISSES,
    CACHE_SHARED,
    IN_FLIGHT,
    RENDERS,
    SOURCE_BYTES,
    SOURCE_PIXELS,
    TRANSFORM_SECONDS,
)
from .params import Hints, ImageParams, hint_reader, query_parser
from .pipeline import Image, Rendered, load_mark, render_reduced, text_mark
from .probe import Kind, probe
from .results import ResultTier, open_tier
from .settings import Settings
from .sources import Source, SourceStore, open_store
from .sources.urls import UrlStore

KINDS = 65536  # original versions whose header kind (probe.Kind) each worker remembers
HEADERS = 4096  # variants (by kind of request) whose headers each worker keeps built
ACCEPTS = 256  # Accept headers whose fmt=auto answer each worker remembers
MARKS = 16  # watermark originals whose decoded pixels each worker keeps
COUNTED = {HIT: CACHE_HITS, MISS: CACHE_MISSES, SHARED: CACHE_SHARED}


class ImageRequest(NamedTuple):  # a tuple: made on every request, and cheaply
    """What an image request asks, read from HTTP by the view (or made up by the CLI)."""

    store: SourceStore  # the one that resolves ``image_id``: the mounts, or /url/'s
    image_id: str
    query: str = ""  # as sent, ``sig`` included (checked before)
    accept: str = ""
    origin: str | None = None  # the page's, for CORS
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_match: str | None = None
    noted: Callable[[str], None] | None = None  # told the transform once known, whatever follows
    hints: Hints | None = None  # the client hints sent, when PROXY_CLIENT_HINTS=1


class ImageAnswer(NamedTuple):
    status: int  # 200, or 304
    headers: tuple[Header, ...]  # ready, shared: never changed
    variant: Variant | None  # the image (bytes, or an open file of them); None for a 304


@dataclass(frozen=True)
class Origin:
    """The per-app services of image requests, kept in ``app.extensions["proxy"]``."""

    settings: Settings
    store: SourceStore
    cache: VariantCache
    urls: UrlStore | None  # /url/, when PROXY_URL_HOSTS allows any host
    gate: TransformGate
    parse: Callable[[str], ImageParams]  # a query string -> its parameters, remembered per worker
    hinted: Callable[[str, Hints], tuple[str, tuple[str, ...]]]  # (query, hints) -> (query', Vary)
    results: ResultTier | None = None  # the shared result tier, when PROXY_RESULT_STORE names one
    _kinds: dict[tuple[str, str], Kind | str] = field(default_factory=dict)  # (id, version): kind or refusal
    _marks: dict[tuple[str, str], Image] = field(default_factory=dict)  # (id, version): a mark's pixels

    def serve(self, request: ImageRequest) -> ImageAnswer:
        """The life of an image request, once its signature is checked."""
        store = request.store
        query, vary = (
            (request.query, ()) if request.hints is None else self.hinted(request.query, request.hints)
        )
        params = self.parse(query)  # 1. parse once (remembered per query), client hints as parameters
        source = store.resolve(request.image_id)  # 2. locate: metadata only
        mark = self.mark(params)  # and the watermark's original, when mark= names one
        output = self.output(store, source, params, request.accept)  # the format produced, named once
        if request.noted is not None:
            request.noted(f"{params.transform}&fmt={output}")  # for the access log, whatever follows
        key = self.variant_key(source, params, output, mark)  # 3. the key, before any pixel
        negotiated = params.fmt in ("auto", "best")
        headers = self.headers(key, source, negotiated, request.origin, vary)  # ETag...: built once
        if headers.is_not_modified(request.if_none_match, request.if_modified_since, request.if_match):  # 4.
            self.kind(store, source)  # only an image gets a 304; anything else its 415 (remembered)
            return ImageAnswer(304, headers.not_modified, None)
        variant = self.cache.fetch(  # 5. a hit decodes nothing; a miss renders once across workers,
            key,  # unless another instance has (the shared result tier, when there is one)
            produce=lambda: self.render(
                store, source, params, format_named(output), mark
            ),  # as the key names it
            keep=lambda: _unchanged(store, source) and (mark is None or _unchanged(self.store, mark)),
            tag=original_tag(source.id),
            second=self.results,
        )
        COUNTED[variant.outcome].inc()
        return ImageAnswer(200, headers.ok(variant.mime, variant.length, variant.outcome), variant)  # 6.

    def output(self, store: SourceStore, source: Source, params: ImageParams, accept: str) -> str:
        """The name of the format produced: asked for, negotiated from ``accept``, or named by the
        original's header (a look-up: remembered)."""
        target = self._auto(accept) if params.fmt == "auto" else negotiate(params.fmt, accept)
        if target in (SOURCE, LEGACY) or target.startswith(BEST):
            return resolve(target, self.kind(store, source), params.frame)
        return target

    def kind(self, store: SourceStore, source: Source) -> Kind:
        """What the original's header declares that decides the output format, remembered per
        original version by this worker (a dict look-up on the hot path; see ``declared_kind``).
        Raises UnsupportedImage, remembered alike, for what is not an image we decode."""
        known = self._kinds.get((source.id, source.version))
        if known is None:
            try:
                known = declared_kind(self.cache, store, source)
            except UnsupportedImage as error:
                known = error.message
            if len(self._kinds) >= KINDS:
                self._kinds.clear()  # a crude bound: refilled from the cache, one look-up each
            self._kinds[source.id, source.version] = known
        if isinstance(known, str):
            raise UnsupportedImage(known)
        return known

    def mark(self, params: ImageParams) -> Source | None:
        """The original ``mark=`` names, on the mounts whatever the image's store (a watermark is
        the deployer's); None without one. An id that names none is the parameter's fault: 400."""
        if params.mark is None:
            return None
        try:
            return self.store.resolve(params.mark)
        except NotFound:
            raise InvalidParameter("mark", "no original has this id") from None

    def variant_key(
        self, source: Source, params: ImageParams, target: str, mark: Source | None = None
    ) -> str:
        """The cache key of a request's variant, which its ETag derives from: a watermark's
        version is part of it, so a new mark is a new variant."""
        key = variant_key(source, params, target, self.settings.webp_effort, mark)
        return key + "|credits" if self.settings.keep_copyright else key  # other bytes: another ETag

    def headers(
        self, key: str, source: Source, vary_accept: bool, origin: str | None, hints: tuple[str, ...] = ()
    ) -> VariantHeaders:
        """The variant's headers for this kind of request, built once by this worker: ``hints``
        are the client hints the answer varies on."""
        vary = ("Accept", *hints) if vary_accept else hints
        return self._built(key, source.id, source.last_modified, vary, self.cors.page(origin))

    def tag_headers(self, image_id: str, mount: bool = True) -> dict[str, str]:
        """The cache tag headers for an original: its tag, and its mount's unless ``mount`` is off."""
        names = self.settings.tag_headers
        if not names:
            return {}
        return tag_headers(tags_for(image_id, self._prefixes if mount else ()), names)

    def render(
        self,
        store: SourceStore,
        source: Source,
        params: ImageParams,
        output: Format,
        mark: Source | None = None,
    ) -> Rendered:
        """Run the pipeline in a transform slot, under the deadline, through a reduced copy of
        the original when that pays (pipeline/reduced.py), producing ``output``, the format
        resolved, with the watermark ``mark`` or ``mark_text`` asks for. The originals are local
        before the slot is taken: a remote one fetched again must not hold a slot while its
        upstream is slow."""
        with store.local(source) as path, self._overlay(params, mark) as overlay:
            with self.gate.slot(), IN_FLIGHT.track_inprogress():
                started = time.monotonic()
                info = probe(path)  # read once: the pipeline plans with it, the histograms count it
                limits = Limits.from_settings(self.settings, started + self.settings.transform_deadline)
                tag = original_tag(source.id)
                reduced = keys.reduced_key(source.id, source.version)
                rendered = render_reduced(
                    self.cache, reduced, path, params, output, limits, info, tag, overlay()
                )
                if self.settings.keep_copyright:  # the original's credits, in the answer's own format
                    rendered = Rendered(credited(rendered.data, credit_of(path)), rendered.format)
                RENDERS.inc()
                TRANSFORM_SECONDS.labels(rendered.format.name).observe(time.monotonic() - started)
                SOURCE_BYTES.observe(info.bytes)
                SOURCE_PIXELS.observe((info.width or 0) * (info.height or 0))
                return rendered

    @contextmanager
    def _overlay(self, params: ImageParams, mark: Source | None) -> Iterator[Callable[[], Image | None]]:
        """The watermark's pixels, to ask for in the transform slot: text drawn once per worker
        (pipeline.text_mark), an original's decoded once per version and kept (MARKS of them);
        its file is local (fetched if remote) before the slot, as the image's is."""
        if params.mark_text is not None:
            text = params.mark_text
            yield lambda: text_mark(text)
            return
        if mark is None:
            yield lambda: None
            return
        known = self._marks.get((mark.id, mark.version))
        if known is not None:
            yield lambda: known
            return
        with self.store.local(mark) as path:

            def load() -> Image:
                limits = Limits.from_settings(
                    self.settings, time.monotonic() + self.settings.transform_deadline
                )
                pixels = load_mark(path, limits)
                if len(self._marks) >= MARKS:
                    self._marks.clear()
                self._marks[mark.id, mark.version] = pixels
                return pixels

            yield load

    def purge(self, image_id: str) -> int:
        """Drop every variant of one original from this instance and from the shared result
        tier, and what every store remembers of it (purge.py); the number of entries removed."""
        return purging.purge(image_id, self.cache, self.stores, self.results)

    @functools.cached_property
    def stores(self) -> tuple[SourceStore, ...]:
        """Every store ids resolve in: the mounts, and /url/'s when it is on."""
        return (self.store,) if self.urls is None else (self.store, self.urls)

    @functools.cached_property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.settings.secret, self.settings.secret_previous) if s)

    @functools.cached_property
    def cors(self) -> Cors:
        return Cors(self.settings.cors_origins)

    @functools.cached_property
    def cache_control(self) -> str:
        s = self.settings
        return cache_control(s.max_age, s.stale_while_revalidate, s.stale_if_error)

    @functools.cached_property
    def _prefixes(self) -> tuple[str, ...]:
        """The mount prefixes, longest first (settings.mounts sorts them on every call)."""
        return tuple(mount.prefix for mount in self.settings.mounts)

    @functools.cached_property
    def _auto(self) -> Callable[[str], str]:
        """What ``fmt=auto`` gives for an Accept header, remembered: browsers send a few, and
        parsing one costs a hit ~12 us."""
        order = self.settings.auto_formats
        return functools.lru_cache(maxsize=ACCEPTS)(lambda accept: negotiate("auto", accept, order))

    @functools.cached_property
    def _built(self) -> Callable[[str, str, datetime, tuple[str, ...], str | None], VariantHeaders]:
        @functools.lru_cache(maxsize=HEADERS)
        def build(
            key: str, image_id: str, last_modified: datetime, vary: tuple[str, ...], page: str | None
        ) -> VariantHeaders:
            return VariantHeaders(
                etag_for(key),
                last_modified,
                self.cache_control,
                vary,
                self.tag_headers(image_id),
                self.cors.headers(page),
            )

        return build


def open_origin(settings: Settings, cache: VariantCache, copies: VariantCache | None) -> Origin:
    """The origin of ``settings`` over ``cache``; remote originals keep their copies in ``copies``."""
    return Origin(
        settings=settings,
        store=open_store(settings, copies),
        cache=cache,
        urls=UrlStore(copies, settings) if copies is not None and settings.url_hosts else None,
        gate=TransformGate(
            gate_directory(settings.cache_dir),
            settings.max_transforms,
            settings.transform_queue,
            settings.transform_wait,
        ),
        parse=query_parser(settings),
        hinted=hint_reader(settings),
        results=open_tier(settings.result_store, settings.result_timeout, settings.result_ttl),
    )


def variant_key(
    source: Source,
    params: ImageParams,
    target: str,
    webp_effort: int = WEBP_EFFORT,
    mark: Source | None = None,
) -> str:
    """keys.variant_key of a request: ``target`` the format produced (formats.resolve); a WebP
    effort is named only when it is not the encoder's default, so the default's keys stand; the
    watermark original's version joins the image's."""
    effort = None if webp_effort == WEBP_EFFORT else webp_effort
    version = source.version if mark is None else f"{source.version}+{mark.version}"
    return keys.variant_key(source.id, version, params.transform, target, effort)


def declared_kind(cache: VariantCache, store: SourceStore, source: Source) -> Kind:
    """The original's header kind, shared by the workers through the cache (a worker started
    later, or recycled, reads no header again, and a remote original's evicted copy is not
    fetched again for a hit); read from the header the first time. Raises UnsupportedImage.

    Kept as text ("png 0 1", or "!" and the refusal), which a damaged index cannot turn into
    anything but a string that does not parse, and then the header is read again."""
    key = keys.kind_key(source.id, source.version)
    known = cache.get_value(key)
    if isinstance(known, str) and known.startswith("!"):
        raise UnsupportedImage(known[1:])
    fields = known.split(" ") if isinstance(known, str) else []
    if len(fields) == 3 and fields[1] in ("0", "1") and fields[2] in ("0", "1"):
        return Kind(fields[0], fields[1] == "1", fields[2] == "1")
    try:
        with store.local(source) as path:
            kind = probe(path).kind
    except UnsupportedImage as error:
        cache.set_value(key, "!" + error.message)
        raise
    cache.set_value(key, f"{kind.format} {kind.animated:d} {kind.alpha:d}")
    return kind


def _unchanged(store: SourceStore, source: Source) -> bool:
    """Whether the original is still the version we rendered: a replaced one must not be cached."""
    try:
        return store.resolve(source.id).version == source.version
    except NotFound:
        return False
