"""Where feature cells and windows sit in the (resized) input image: one convention for the whole project.

Feature cell (y, x) at stride s covers input pixels ``[y*s, (y+1)*s) x [x*s, (x+1)*s)``.  The window of m
cells centred at cell (cy, cx) covers cells ``cy - r .. cy + r`` (r = m // 2), i.e. input pixels
``[(cy - r) * s, (cy + r + 1) * s)`` -- m * s pixels a side (168 for the paper), possibly crossing the image
border.  Boxes are ``(x0, y0, x1, y1)`` with exclusive ends, in the pixel grid of the image fed to the model.
Which cell an *original-image* pixel falls in, and everything else about windows, is
:class:`ifcn_viz.inference.window.WindowGrid`'s (one rule: the pixel's centre, resized).
"""

from __future__ import annotations

REFERENCE_FRACTION: float = 128 / 224
"""The object side a window is trained to propose, as a fraction of the window's side (DeepMask's 128 px object in
a 224 px input): 96 px for the paper's 168 px window.  Used by training (positives) and inference (pyramid)."""

POSITIVE_SCALE_TOLERANCE: float = 0.5
"""Octaves around the reference size within which an object counts as positive (68..136 px for R = 96)."""


def window_box(cy: int, cx: int, m: int, stride: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the input-pixel extent of the m x m window centred at cell (cy, cx)."""
    r = m // 2
    return (cx - r) * stride, (cy - r) * stride, (cx + r + 1) * stride, (cy + r + 1) * stride
