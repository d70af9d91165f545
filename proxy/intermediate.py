"""Moved: reduced copies of large originals are ``proxy/pipeline/reduced.py``, and rendering
through them ``proxy.pipeline.render_reduced``. Kept so that older imports still work."""

from __future__ import annotations

from .pipeline import render_reduced
from .pipeline.reduced import ELIGIBLE, SIDE, BlobStore, Intermediate, build

__all__ = ["ELIGIBLE", "SIDE", "BlobStore", "Intermediate", "build", "render_reduced"]
