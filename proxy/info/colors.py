"""An image's average and dominant colour, as ``#rrggbb``, from its thumbnail's pixels.

Both count a pixel by its alpha: transparent pixels are no part of the picture.

- **average**: the mean in linear light, weighted by alpha, back to sRGB. What the picture looks
  like from afar (an sRGB mean is darker: a black and white checkerboard averages to #bcbcbc,
  not #808080), and the colour BlurHash's DC term gives.
- **dominant**: OpenCV's k-means with five clusters over the pixels that are at least half
  opaque, in sRGB; the centre of the largest cluster. Seeded (k-means++ draws its first centres
  from OpenCV's generator, per thread), so an original always gets the same answer.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from .placeholders import linear_to_srgb, srgb_to_linear

CLUSTERS = 5
SEED = 29  # any fixed number: k-means++ is then the same on every run, worker and machine
# At most 20 rounds, or until no centre moves by half a level.
_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
_ATTEMPTS = 2


def hex_color(rgb: npt.ArrayLike) -> str:
    red, green, blue = (int(v) for v in np.clip(np.rint(np.asarray(rgb, np.float64)), 0, 255))
    return f"#{red:02x}{green:02x}{blue:02x}"


def average(rgba: npt.NDArray[np.uint8]) -> str | None:
    """The alpha-weighted mean of ``rgba`` (height x width x 4, sRGB) in linear light; None when
    every pixel is transparent."""
    pixels = rgba.reshape(-1, 4).astype(np.float64) / 255
    weights = pixels[:, 3]
    total = float(weights.sum())
    if total == 0:
        return None
    mean = (srgb_to_linear(pixels[:, :3]) * weights[:, None]).sum(axis=0) / total
    return hex_color(linear_to_srgb(mean) * 255)


def dominant(rgba: npt.NDArray[np.uint8]) -> str | None:
    """The centre of the largest k-means cluster of ``rgba``'s mostly opaque pixels; None when
    there are none."""
    pixels = rgba.reshape(-1, 4)
    colors = pixels[pixels[:, 3] >= 128, :3].astype(np.float32)
    if not len(colors):
        return None
    clusters = min(CLUSTERS, len(colors))
    cv2.setRNGSeed(SEED)  # this thread's generator, which k-means++ draws from
    given = np.zeros((len(colors), 1), np.int32)  # an output here: k-means++ chooses the first centres
    _, labels, centres = cv2.kmeans(colors, clusters, given, _CRITERIA, _ATTEMPTS, cv2.KMEANS_PP_CENTERS)
    counts = np.bincount(np.asarray(labels, np.int64).ravel(), minlength=clusters)
    return hex_color(centres[int(np.argmax(counts))])  # ties: the lowest label, as argmax picks
