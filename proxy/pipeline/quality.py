"""``q=auto``: the lowest quality whose result still looks like the result's own pixels.

Looks are measured by SSIM (Wang et al. 2004: an 11-tap Gaussian window of sigma 1.5, on luma) of
the decoded encoding against the pixels encoded, the resized, cropped and edited result; a
quality is kept when its SSIM is at least ``TARGET``. The quality is bisected within ``LOWEST``..
``HIGHEST``: about six encodes, decodes and comparisons at the result's size. SSIM was chosen
over SSIMULACRA2 and DSSIM by what is at hand: OpenCV computes it in a millisecond at thumbnail
sizes, the others are separate native tools; ``TARGET`` was chosen on bench/quality.py's mix of
photos and graphics, where every answer stays at SSIM 0.95 or more against the exact reduction of
the original while JPEG, WebP and AVIF save well over 15% of q=82's bytes (docs/performance.md).
"""

from __future__ import annotations

import cv2
import imagecodecs
import numpy as np

from ..formats import Format
from ..limits import Limits
from .encode import encode
from .pixels import Image

TARGET = 0.955  # SSIM against the result's pixels a quality must reach
LOWEST, HIGHEST = 30, 90  # the qualities searched


def perceptual(image: Image, output: Format, limits: Limits) -> tuple[int, bytes]:
    """The lowest quality within LOWEST..HIGHEST whose ``output`` encoding of ``image`` reaches
    TARGET, and its bytes; HIGHEST's when none does."""
    reference = luma(image)
    found: dict[int, bytes] = {}

    def encoded(quality: int) -> bytes:
        limits.check_deadline()
        found[quality] = encode(image, output, quality, limits.webp_effort)
        return found[quality]

    def looks_the_same(quality: int) -> bool:
        seen = decoded_luma(encoded(quality), output)
        return seen is not None and ssim(reference, seen) >= TARGET

    low, high, chosen = LOWEST, HIGHEST, HIGHEST
    while low <= high:  # the lowest passing quality: SSIM grows with quality
        middle = (low + high) // 2
        if looks_the_same(middle):
            chosen, high = middle, middle - 1
        else:
            low = middle + 1
    return chosen, found.get(chosen) or encoded(chosen)


def luma(image: Image) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float32)
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code).astype(np.float32)


def decoded_luma(data: bytes, output: Format) -> np.ndarray | None:
    """The luma of an encoding (None if it does not decode): OpenCV reads JPEG, WebP and AVIF,
    libjxl through imagecodecs JPEG XL."""
    if output.name == "jxl":
        pixels = imagecodecs.jpegxl_decode(data)
        if pixels.ndim == 3:
            pixels = cv2.cvtColor(pixels[..., :3], cv2.COLOR_RGB2GRAY)
        return np.asarray(pixels, np.float32)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    return None if decoded is None else decoded.astype(np.float32)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """The mean SSIM of two luma planes of one size (float32, 0..255)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    mean_a, mean_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mean_a * mean_a, blur(b * b) - mean_b * mean_b
    covariance = blur(a * b) - mean_a * mean_b
    numerator = (2 * mean_a * mean_b + c1) * (2 * covariance + c2)
    denominator = (mean_a * mean_a + mean_b * mean_b + c1) * (var_a + var_b + c2)
    return float((numerator / denominator).mean())
