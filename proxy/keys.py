"""Every cache key and cache tag, built in one place from plain values.

Imports nothing from the sources or the pipeline, so that the storage layer can name what it
stores without loading either (and OpenCV with it).
"""

from __future__ import annotations

# Bump whenever the bytes produced for the same request change, or an answer once given must not be
# given again (11: truncated originals are refused; 12: animated AVIF without the encoder's clock),
# so caches miss.
PIPELINE_VERSION = "12"
