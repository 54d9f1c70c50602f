"""Where feature cells and windows sit in the (resized) input image: one convention for the whole project.

Feature cell (y, x) at stride s covers input pixels ``[y*s, (y+1)*s) x [x*s, (x+1)*s)``.  The window of m
cells centred at cell (cy, cx) covers cells ``cy - r .. cy + r`` (r = m // 2), i.e. input pixels
``[(cy - r) * s, (cy + r + 1) * s)`` -- m * s pixels a side (168 for the paper), possibly crossing the image
border.  Boxes are ``(x0, y0, x1, y1)`` with exclusive ends, in the pixel grid of the image fed to the model.
"""

from __future__ import annotations

REFERENCE_FRACTION: float = 128 / 224
"""The object side a window is trained to propose, as a fraction of the window's side (DeepMask's 128 px object in
a 224 px input): 96 px for the paper's 168 px window.  Used by training (positives) and inference (pyramid)."""

POSITIVE_SCALE_TOLERANCE: float = 0.5
"""Octaves around the reference size within which an object counts as positive (68..136 px for R = 96)."""


def pixel_to_cell(x: float, y: float, stride: int) -> tuple[int, int]:
    """The feature cell (cy, cx) whose pixels contain input pixel (x, y)."""
    return int(y // stride), int(x // stride)


def cell_center(cy: int, cx: int, stride: int) -> tuple[float, float]:
    """The centre (x, y) of a feature cell in continuous pixel coordinates (pixel i spans [i, i+1))."""
    return (cx + 0.5) * stride, (cy + 0.5) * stride


def window_box(cy: int, cx: int, m: int, stride: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the input-pixel extent of the m x m window centred at cell (cy, cx)."""
    r = m // 2
    return (cx - r) * stride, (cy - r) * stride, (cx + r + 1) * stride, (cy + r + 1) * stride


def window_cell_of(y: int, x: int, cy: int, cx: int, m: int) -> tuple[int, int] | None:
    """The window cell (i, j) that feature cell (y, x) occupies in the window centred at (cy, cx), or None."""
    r = m // 2
    i, j = y - cy + r, x - cx + r
    return (i, j) if 0 <= i < m and 0 <= j < m else None
