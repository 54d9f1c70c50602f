"""Which scales an image is run at: the paper's fixed shorter sides, or an image-adaptive pyramid.

The model proposes an object well when, at some scale, the object's larger side is near the window's *reference
size* ``R = REFERENCE_FRACTION * m * stride`` (96 px for the 168-px window) -- within the positive band of
training, ``R * 2^(+-POSITIVE_SCALE_TOLERANCE)`` (68..136 px; see :mod:`ifcn_viz.train.targets` and
docs/INFERENCE.md).  The paper (Sec. 3.3) runs fixed shorter sides (about 119 ... 900 px for 600-px COCO images,
uncertain); fixed absolute sides suit one image size, not a 300-px photo or a 4000-px one.

**The adaptive rule** (ours; the paper is silent).  For an image whose shorter side is S, the object sizes to
cover run from ``min_object`` (default 32 px) up to S.  The factor (resized / original) that brings an object of
size o to R is ``R / o``; the pyramid spans the factors from ``R / S`` (the whole image fills a window) to
``R_lo / min_object`` (the smallest object reaches the lower edge of the positive band, ``R_lo`` = 68 px), in
equal steps of at most ``scale_step`` (default ``2^0.5``, half the positive band): every size in the range lands in
the positive band at some scale, and every size from ``R / R_lo * min_object`` up to S within a quarter octave of
R (DeepMask's arrangement).  Under a ``max_pixels`` budget the
finest scales (those for the smallest objects) are dropped first and the smallest size actually served is
reported; the longer side at any scale stays under ``max_side``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ifcn_viz import limits
from ifcn_viz.model.geometry import POSITIVE_SCALE_TOLERANCE, REFERENCE_FRACTION


@dataclass(frozen=True)
class PyramidLevel:
    """One scale: its shorter side in pixels, its factor, and the original object sizes it serves."""

    shorter_side: int
    factor: float  # resized / original
    objects: tuple[float, float]  # (smallest, largest) object side in original px inside the positive band


def reference_size(window_px: int) -> float:
    """``R``: the object side (in the resized image) the window is trained to propose."""
    return REFERENCE_FRACTION * window_px


def positive_band(window_px: int) -> tuple[float, float]:
    """``(R_lo, R_hi)``: the object sides that training counts as positive for the window."""
    r = reference_size(window_px)
    return r * 2.0**-POSITIVE_SCALE_TOLERANCE, r * 2.0**POSITIVE_SCALE_TOLERANCE


def scale_factor(image_hw: tuple[int, int], shorter_side: int, max_side: int) -> float:
    """resized / original for ``shorter_side``, capped so the longer side stays within ``max_side``."""
    return limits.scale_factor(int(image_hw[0]), int(image_hw[1]), shorter_side, max_side)


def level(image_hw: tuple[int, int], shorter_side: int, window_px: int, max_side: int) -> PyramidLevel:
    """The :class:`PyramidLevel` of a shorter side (fixed or adaptive)."""
    f = scale_factor(image_hw, shorter_side, max_side)
    lo, hi = positive_band(window_px)
    return PyramidLevel(int(shorter_side), f, (lo / f, hi / f))


def adaptive_shorter_sides(
    image_hw: tuple[int, int],
    window_px: int,
    min_object: int = 32,
    scale_step: float = 2.0**0.5,
    max_pixels: int = 2_500_000,
    max_side: int = 2000,
    min_shorter_side: int = limits.MIN_SIDE,
    max_scales: int = limits.MAX_SCALES,
) -> list[int]:
    """The shorter sides of the adaptive pyramid for an image of ``image_hw`` (see the module docstring),
    smallest first.  Always at least one scale; duplicates (after rounding) are dropped; at most ``max_scales``
    (one backbone run each), the finest dropped first like the pixel budget's."""
    h, w = int(image_hw[0]), int(image_hw[1])
    if h < 1 or w < 1:
        raise ValueError(f"image_hw must be positive, got {image_hw}")
    if min_object < 1:
        raise ValueError(f"min_object must be >= 1 px, got {min_object}")
    if not 1.0 < scale_step <= 2.0:
        raise ValueError(f"scale_step must be in (1, 2], got {scale_step}")
    s = min(h, w)
    lo_band, _ = positive_band(window_px)
    f_lo = reference_size(window_px) / s  # the whole image's side meets R
    f_hi = max(f_lo, lo_band / min(min_object, s))  # the smallest object reaches the positive band
    n = 1 if f_hi <= f_lo * (1 + 1e-9) else math.ceil(math.log(f_hi / f_lo) / math.log(scale_step) - 1e-9) + 1
    factors = [f_lo * (f_hi / f_lo) ** (i / (n - 1)) for i in range(n)] if n > 1 else [f_lo]
    sides: list[int] = []
    pixels = 0.0
    for f in factors:  # coarse to fine: the budget drops the finest scales first
        side = max(min_shorter_side, math.ceil(s * f - 1e-6))  # up: the finest scale must reach min_object
        fac = scale_factor((h, w), side, max_side)
        cost = h * fac * w * fac
        if sides and (pixels + cost > max_pixels or len(sides) >= max_scales):
            break
        if not sides or side > sides[-1]:
            sides.append(side)
            pixels += cost
    return sides
