"""Content-aware crops: where a ``cover`` window keeps the most of what matters.

Both run on the image already resized for the result (a few hundred pixels a side), so they
cost milliseconds, not a decode. A cover crop only ever has room to move along one axis (the
other fits within a rounding), so each is a one-dimensional search over the window's offset,
made with cumulative sums: every candidate offset is scored at once.

- ``entropy`` keeps the window whose luminance histogram has the most Shannon entropy, the
  definition libvips and weserv use: detail over flat background.
- ``attention`` keeps the window with the most saliency, after libvips' idea of what draws
  the eye: edges, saturated colour and skin tones, summed.

Faces are not detected: OpenCV's DNN face detector needs model weights that no package we
depend on ships, and a Haar cascade is a weak substitute (docs/url.md, "Cropping").
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Pixels = npt.NDArray[Any]

SHIFT = 3  # 256 luminance levels >> 3: 32 histogram bins, fine enough for detail, not for noise
BINS = 256 >> SHIFT
SKIN, SATURATION = 2.0, 0.5  # attention's weights; edges count 1 at four times their mean strength


def window(image: Pixels, box: tuple[int, int], how: str) -> tuple[int, int]:
    """The (x, y) of the ``box``-sized window of the 8-bit ``image`` that ``how`` prefers."""
    height, width = image.shape[:2]
    # What each candidate offset is scored on: a saliency map, or the luminance for entropy.
    scored = _saliency(image) if how == "attention" else _gray(image)
    offsets = []
    for axis, (side, size) in enumerate(((box[0], width), (box[1], height))):
        if size <= side:
            offsets.append(0)
        elif how == "attention":
            offsets.append(_best(_sums(scored.sum(axis=axis), side)))
        else:
            offsets.append(_best(_entropies(scored if axis == 0 else scored.T, side)))
    return offsets[0], offsets[1]


def _gray(image: Pixels) -> Pixels:
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY)


def _entropies(gray: Pixels, side: int) -> Pixels:
    """Entropy of every ``side``-column window of ``gray``, from per-column histograms."""
    columns = gray.shape[1]
    index = np.arange(columns, dtype=np.int64) * BINS + (gray >> SHIFT).astype(np.int64)
    histograms = np.bincount(index.ravel(), minlength=columns * BINS).reshape(columns, BINS)
    cumulative = np.vstack((np.zeros((1, BINS), np.int64), np.cumsum(histograms, axis=0)))
    windows = (cumulative[side:] - cumulative[:-side]).astype(np.float64)
    p = windows / windows.sum(axis=1, keepdims=True)
    logs = np.log2(p, out=np.zeros_like(p), where=p > 0)
    entropy: Pixels = -(p * logs).sum(axis=1)
    return entropy


def _saliency(image: Pixels) -> Pixels:
    """Per-pixel attention: edges, saturation and skin, each scaled to about 0..1."""
    gray = _gray(image).astype(np.float32)
    edges = np.abs(cv2.Laplacian(cv2.GaussianBlur(gray, (3, 3), 0), cv2.CV_32F))
    score = edges / max(float(edges.mean()) * 4, 1.0)
    if image.ndim == 3:
        bgr = image[..., :3]
        saturation = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)[..., 1].astype(np.float32) / 255
        score += saturation * saturation * SATURATION  # strong colour counts, pastel hardly
        # Skin: the usual YCrCb box, and a moderate saturation, which orange paint and fabric exceed.
        ycrcb = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
        skin = (
            (cv2.inRange(ycrcb, (40, 138, 77), (250, 173, 127)) > 0)
            & (saturation > 0.15)
            & (saturation < 0.68)
        )
        score += skin.astype(np.float32) * SKIN
    smoothed: Pixels = cv2.blur(score, (9, 9))
    return smoothed


def _sums(profile: Pixels, side: int) -> Pixels:
    """Sum of every ``side``-long window of a 1-D profile."""
    cumulative = np.concatenate(([0.0], np.cumsum(profile, dtype=np.float64)))
    sums: Pixels = cumulative[side:] - cumulative[:-side]
    return sums


def _best(scores: Pixels) -> int:
    """The offset with the top score; among near-equal ones (a subject with room around it on a
    flat background), the middle one, so the subject is centred rather than pushed to an edge."""
    top = float(scores.max())
    candidates = np.flatnonzero(scores >= top - max(abs(top) * 1e-6, 1e-9))
    return int(candidates[len(candidates) // 2])
