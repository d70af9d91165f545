"""The application factory: wires settings, the origin, routes and error handling.

Nothing is created at import time, so tests build as many independent apps as
they like, and gunicorn builds one per worker with ``proxy.app:create_app()``.
"""

from __future__ import annotations

from flask import Flask

from .access import AccessLog
from .cache import VariantCache
from .errors import register_error_handlers
from .http import use_cors
from .metrics import register_metrics
from .ops import ops
from .origin import Origin, declared_kind, open_origin, variant_key
from .params import check_presets
from .settings import Settings
from .sources import open_copies
from .views import images, purges

# Origin and its key builders lived here before origin.py; tests still import variant_key from here.
__all__ = ["Origin", "create_app", "declared_kind", "variant_key"]


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings if settings is not None else Settings.from_env()
    check_presets(settings)
    app = Flask(__name__, static_folder=None)  # the playground's files are its blueprint's
    copies = open_copies(settings)
    cache = VariantCache(settings.cache_dir, settings.cache_size, memory=settings.memory_cache_size)
    origin = app.extensions["proxy"] = open_origin(settings, cache, copies)
    app.register_blueprint(images)
    if settings.purge_token:
        app.register_blueprint(purges)
    if settings.playground:
        from .playground import playground

        app.register_blueprint(playground)
    app.register_blueprint(ops)
    register_metrics(app)
    register_error_handlers(app, error_images=settings.error_image)
    use_cors(app, origin.cors)  # on every image answer, errors and 304s included (http.py)
    app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
    return app
