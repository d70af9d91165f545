"""An on-the-fly image origin: resize and convert originals with OpenCV, cache them, serve them."""

from .app import create_app

__all__ = ["create_app"]
