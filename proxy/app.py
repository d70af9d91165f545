"""The application factory: wires settings, sources, routes and error handling.

Nothing is created at import time, so tests build as many independent apps as
they like, and gunicorn builds one per worker with ``proxy.app:create_app()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from .cache import VariantCache
from .errors import register_error_handlers
from .settings import Settings
from .sources import FileStore, SourceStore
from .views import images


@dataclass(frozen=True)
class Origin:
    """The per-app services the views use, kept in ``app.extensions["proxy"]``."""

    settings: Settings
    store: SourceStore
    cache: VariantCache


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings if settings is not None else Settings.from_env()
    app = Flask(__name__)
    app.extensions["proxy"] = Origin(
        settings=settings,
        store=FileStore(settings.image_root),
        cache=VariantCache(settings.cache_dir, settings.cache_size),
    )
    app.register_blueprint(images)
    register_error_handlers(app)
    return app
