"""Ideal maps put to work: assemble them at each instance centre and paste back (paper, Sec. 3.1 and Fig. 1).

:func:`ifcn_viz.model.ideal.ideal_score_maps` builds what a perfect InstanceFCN would output for known masks.
Here we close the loop: assembling those maps at every instance's centre cell and pasting the m x m window back
at image resolution gives each instance back -- with k^2 relative-position maps.  With k = 1 (one map, i.e. a
semantic FCN) the same window copies *every* foreground cell it covers, so touching instances merge.

Windows come from :class:`ifcn_viz.inference.window.WindowGrid` and are pasted with its nearest-cell paste
(:func:`~ifcn_viz.inference.window.paste_window_cells`: each window cell becomes the ``stride x stride`` pixels it
stands for), the exact inverse of the ideal maps' cell quantisation.  Learned windows are pasted bilinearly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ifcn_viz.config import IDEAL_LOGIT, WINDOW_THRESHOLD
from ifcn_viz.inference.window import WindowGrid, paste_window_cells
from ifcn_viz.model.ideal import IdealMaps, ideal_score_maps


class IdealReassembly(NamedTuple):
    maps: IdealMaps  # the ideal score maps / objectness / centres / owners
    windows: Tensor  # (N, m, m) assembled logits at each instance's centre cell
    pasted: np.ndarray  # (N, H, W) bool: each window pasted back at image resolution, thresholded
    ious: np.ndarray  # (N,) float: IoU of pasted[n] with masks[n]


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _ideal_maps_cropped(masks: np.ndarray, k: int, m: int, stride: int, logit: float = IDEAL_LOGIT) -> IdealMaps:
    """``ideal_score_maps`` computed on the stride-aligned box around all instances, then embedded in the full
    grid: identical values (cells are whole s x s blocks either way; cells without instance pixels are "off"
    everywhere), at a fraction of the cost for small objects in a large image."""
    n, h, w = masks.shape
    hf, wf = -(-h // stride), -(-w // stride)
    any_px = masks.any(0)
    if n == 0 or not any_px.any():
        return ideal_score_maps(masks, k, m, stride, logit)
    ys, xs = np.nonzero(any_px.any(1))[0], np.nonzero(any_px.any(0))[0]
    y0, x0 = (ys[0] // stride) * stride, (xs[0] // stride) * stride
    y1, x1 = min(h, -(-(ys[-1] + 1) // stride) * stride), min(w, -(-(xs[-1] + 1) // stride) * stride)
    sub = ideal_score_maps(masks[:, y0:y1, x0:x1], k, m, stride, logit)
    cy0, cx0 = y0 // stride, x0 // stride
    ch, cw = sub.owner.shape
    score_maps = torch.full((k * k, hf, wf), -logit)
    score_maps[:, cy0 : cy0 + ch, cx0 : cx0 + cw] = sub.score_maps
    objectness = torch.full((1, hf, wf), -logit)
    objectness[:, cy0 : cy0 + ch, cx0 : cx0 + cw] = sub.objectness
    owner = torch.full((hf, wf), -1, dtype=torch.long)
    owner[cy0 : cy0 + ch, cx0 : cx0 + cw] = sub.owner
    centers = torch.where(sub.centers >= 0, sub.centers + torch.tensor([cy0, cx0]), sub.centers)
    return IdealMaps(score_maps, objectness, centers, owner)


def ideal_reassembly(
    masks: Tensor | np.ndarray, k: int, m: int, stride: int, threshold: float = WINDOW_THRESHOLD
) -> IdealReassembly:
    """Build ideal maps for ``masks`` ``[N, H, W]``, assemble at each instance centre, paste, and score."""
    masks_np = masks.detach().cpu().numpy() if isinstance(masks, Tensor) else np.asarray(masks)
    if masks_np.ndim != 3:
        raise ValueError(f"masks must be [N, H, W], got shape {masks_np.shape}")
    masks_np = masks_np.astype(bool)
    maps = _ideal_maps_cropped(masks_np, k, m, stride)
    n, h, w = masks_np.shape
    valid = (maps.centers[:, 0] >= 0).nonzero().flatten()
    grid = WindowGrid.from_maps(maps.score_maps, m, stride, maps.objectness, image_hw=(h, w))
    centers = maps.centers.clamp(min=0)
    windows = grid.logits(centers[:, 0], centers[:, 1])  # (N, m, m)
    pasted = np.zeros((n, h, w), dtype=bool)
    logit_thr = float(np.log(threshold / (1.0 - threshold)))
    for i in valid.tolist():
        vals = paste_window_cells(grid.window(*maps.centers[i].tolist()), (h, w))
        pasted[i] = np.nan_to_num(vals, nan=-np.inf) >= logit_thr
    ious = np.array([mask_iou(pasted[i], masks_np[i]) for i in range(n)], dtype=np.float32)
    return IdealReassembly(maps, windows, pasted, ious)
