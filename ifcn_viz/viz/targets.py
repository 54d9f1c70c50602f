"""Training targets: the sampled positive and negative windows and the ground-truth m x m masks of the positives.

The paper samples 256 windows per image, positives : negatives = 1 : 1 (Sec. 3.3; the sampler's tolerances are
not given -- see docs/PAPER_NOTES.md, Sec. 2).  Each positive window's target is the ground-truth mask of its
object cut to the window and reduced to m x m cells; negatives only train objectness.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

from ifcn_viz.viz.palette import (
    INK,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    PROB_CMAP,
    apply_colormap,
    as_numpy,
    draw_label,
    pad,
    stack,
    title_panel,
    to_rgb_uint8,
    upsample,
)


def _cells(arr: object, name: str) -> np.ndarray:
    a = np.asarray(arr.detach().cpu() if isinstance(arr, Tensor) else arr)
    if a.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"{name} must be [N, 2] feature cells (cy, cx), got shape {a.shape}")
    return a.astype(np.int64)


def training_targets_view(
    image: object,
    positives: Tensor | np.ndarray,
    negatives: Tensor | np.ndarray,
    stride: int,
    m: int,
    gt_masks: Tensor | np.ndarray,
    max_masks: int = 12,
    outlined: int = 3,
    cell_px: int = 5,
) -> np.ndarray:
    """The sampled windows on the image and the targets of the positives.

    Args:
        image: the training image (the pixel grid the feature cells refer to).
        positives, negatives: ``[P, 2]`` / ``[Q, 2]`` window centres as feature cells (cy, cx).
        stride: pixels per feature cell.  m: window size in cells.
        gt_masks: ``[P, m, m]`` targets of the positives (bool or probabilities in [0, 1]).
        max_masks: how many positive targets to show; ``outlined``: how many positive windows to outline.

    Positive centres are blue squares, negative centres vermillion crosses (Okabe-Ito: distinguishable under
    colour-vision deficiencies, and by shape); the first ``outlined`` positives' windows are outlined and
    numbered, matching the numbered m x m targets on the right.
    """
    img = to_rgb_uint8(image)
    pos, neg = _cells(positives, "positives"), _cells(negatives, "negatives")
    gt = as_numpy(gt_masks, "gt_masks") if len(pos) else np.zeros((0, m, m), np.float32)
    if gt.ndim != 3 or gt.shape[0] != len(pos) or gt.shape[1:] != (m, m):
        raise ValueError(f"gt_masks must be [P={len(pos)}, m={m}, m={m}], got shape {gt.shape}")
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    s, r = stride, m // 2
    for cy, cx in neg:
        x, y = (cx + 0.5) * s, (cy + 0.5) * s
        draw.line((x - 3, y - 3, x + 3, y + 3), fill=NEGATIVE_COLOR, width=2)
        draw.line((x - 3, y + 3, x + 3, y - 3), fill=NEGATIVE_COLOR, width=2)
    for n, (cy, cx) in enumerate(pos):
        draw.rectangle((cx * s, cy * s, (cx + 1) * s - 1, (cy + 1) * s - 1), outline=POSITIVE_COLOR, width=2)
        if n < outlined:
            draw.rectangle(
                ((cx - r) * s, (cy - r) * s, (cx + r + 1) * s - 1, (cy + r + 1) * s - 1),
                outline=POSITIVE_COLOR,
                width=2,
            )
            draw_label(
                draw, ((cx - r) * s + 2, (cy - r) * s + 2), f"+{n}", size=11, fill=(255, 255, 255), bg=POSITIVE_COLOR
            )
    left = title_panel(np.asarray(pil), f"{len(pos)} positive (blue) / {len(neg)} negative (vermillion x) windows")
    tiles = []
    for n in range(min(max_masks, len(pos))):
        tile = upsample(apply_colormap(np.clip(gt[n], 0, 1), PROB_CMAP, 0.0, 1.0), cell_px)
        tp = Image.fromarray(tile)
        d = ImageDraw.Draw(tp)
        d.rectangle((0, 0, tp.width - 1, tp.height - 1), outline=INK)
        draw_label(d, (2, 2), f"+{n}", size=10)
        tiles.append(np.asarray(tp))
    if not tiles:
        return pad(left)
    per_row = 4
    rows = [stack(tiles[i : i + per_row], axis=1, gap=4) for i in range(0, len(tiles), per_row)]
    right = title_panel(stack(rows, axis=0, gap=4), f"targets: GT {m}x{m} masks of the positives")
    return pad(stack([left, right], axis=1, gap=12))
