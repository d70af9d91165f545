"""The application factory: wires settings, sources, routes and error handling.

Nothing is created at import time, so tests build as many independent apps as
they like, and gunicorn builds one per worker with ``proxy.app:create_app()``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, Response, request

from . import keys
from .access import AccessLog
from .cache import VariantCache
from .errors import UnsupportedImage, register_error_handlers
from .formats import WEBP_EFFORT, Format
from .gate import TransformGate, gate_directory
from .http import cache_control, cors_headers
from .keys import original_tag, tag_headers, tags_for
from .limits import Limits
from .metrics import IN_FLIGHT, RENDERS, SOURCE_BYTES, SOURCE_PIXELS, TRANSFORM_SECONDS, register_metrics
from .ops import ops
from .params import ImageParams, check_presets, query_parser
from .pipeline import Rendered, render_reduced
from .probe import Kind, probe
from .settings import Settings
from .sources import Source, SourceStore, open_copies, open_store
from .sources.urls import UrlStore
from .views import images, purges

KINDS = 65536  # original versions whose header kind (probe.Kind) each worker remembers


@dataclass(frozen=True)
class Origin:
    """The per-app services the views use, kept in ``app.extensions["proxy"]``."""

    settings: Settings
    store: SourceStore
    cache: VariantCache
    urls: UrlStore | None  # /url/, when PROXY_URL_HOSTS allows any host
    gate: TransformGate
    parse: Callable[[str], ImageParams]  # a query string -> its parameters, remembered per worker
    _kinds: dict[tuple[str, str], Kind | str] = field(default_factory=dict)  # (id, version): kind or refusal

    @functools.cached_property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.settings.secret, self.settings.secret_previous) if s)

    @functools.cached_property
    def cache_control(self) -> str:
        s = self.settings
        return cache_control(s.max_age, s.stale_while_revalidate, s.stale_if_error)

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

    def variant_key(self, source: Source, params: ImageParams, target: str) -> str:
        """The cache key of a request's variant, which its ETag derives from."""
        return variant_key(source, params, target, self.settings.webp_effort)

    def tag_headers(self, image_id: str, mount: bool = True) -> dict[str, str]:
        """The cache tag headers for an original: its tag, and its mount's unless ``mount`` is off."""
        names = self.settings.tag_headers
        if not names:
            return {}
        return tag_headers(tags_for(image_id, self._prefixes if mount else ()), names)

    @functools.cached_property
    def _prefixes(self) -> tuple[str, ...]:
        """The mount prefixes, longest first (settings.mounts sorts them on every call)."""
        return tuple(mount.prefix for mount in self.settings.mounts)

    def render(self, store: SourceStore, source: Source, params: ImageParams, output: Format) -> Rendered:
        """Run the pipeline in a transform slot, under the deadline, through a reduced copy of
        the original when that pays (pipeline/reduced.py), producing ``output``, the format the
        view resolved. The original is local before the slot is taken: a remote one fetched again
        must not hold a slot while its upstream is slow."""
        with store.local(source) as path, self.gate.slot(), IN_FLIGHT.track_inprogress():
            started = time.monotonic()
            info = probe(path)  # read once: the pipeline plans with it, the histograms count it
            limits = Limits.from_settings(self.settings, started + self.settings.transform_deadline)
            tag = original_tag(source.id)
            reduced = keys.reduced_key(source.id, source.version)
            rendered = render_reduced(self.cache, reduced, path, params, output, limits, info, tag)
            RENDERS.inc()
            TRANSFORM_SECONDS.labels(rendered.format.name).observe(time.monotonic() - started)
            SOURCE_BYTES.observe(info.bytes)
            SOURCE_PIXELS.observe((info.width or 0) * (info.height or 0))
            return rendered


def variant_key(source: Source, params: ImageParams, target: str, webp_effort: int = WEBP_EFFORT) -> str:
    """keys.variant_key of a request: ``target`` the format produced (formats.resolve); a WebP
    effort is named only when it is not the encoder's default, so the default's keys stand."""
    effort = None if webp_effort == WEBP_EFFORT else webp_effort
    return keys.variant_key(source.id, source.version, params.transform, target, effort)


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


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings if settings is not None else Settings.from_env()
    check_presets(settings)
    app = Flask(__name__, static_folder=None)  # the playground's files are its blueprint's
    copies = open_copies(settings)
    app.extensions["proxy"] = Origin(
        settings=settings,
        store=open_store(settings, copies),
        cache=VariantCache(settings.cache_dir, settings.cache_size, memory=settings.memory_cache_size),
        urls=UrlStore(copies, settings) if copies is not None and settings.url_hosts else None,
        gate=TransformGate(
            gate_directory(settings.cache_dir),
            settings.max_transforms,
            settings.transform_queue,
            settings.transform_wait,
        ),
        parse=query_parser(settings),
    )
    app.register_blueprint(images)
    if settings.purge_token:
        app.register_blueprint(purges)
    if settings.playground:
        from .playground import playground

        app.register_blueprint(playground)
    app.register_blueprint(ops)
    register_metrics(app)
    register_error_handlers(app, error_images=settings.error_image)

    @app.after_request
    def _cors(response: Response) -> Response:
        """On every image answer, errors and 304s included (http.cors_headers)."""
        if settings.cors_origins and request.path.startswith(("/image/", "/url/")):
            for name, value in cors_headers(settings.cors_origins, request.headers.get("Origin")).items():
                if name == "Vary" and "Vary" in response.headers:
                    response.headers["Vary"] += ", " + value
                else:
                    response.headers[name] = value
        return response

    app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
    return app
