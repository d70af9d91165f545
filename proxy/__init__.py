"""An on-the-fly image origin: resize and convert originals with OpenCV, cache them, serve them."""

from .settings import configure_opencv

# OpenCV reads its decoder limits from the environment when cv2 is first imported,
# which the imports below do: export ours first.
configure_opencv()

from .app import create_app  # noqa: E402

__all__ = ["create_app"]
