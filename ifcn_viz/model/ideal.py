"""Ideal score maps: what a perfect InstanceFCN would output for known instance masks (no training).

For each instance n with centre cell c_n (the centre of its tight box), a feature cell p that belongs to n is
"on" in exactly one of the k^2 maps: the one for its relative position inside the window centred on n,
``bin(p - c_n + r)`` with ``bin(d) = floor(d * k / m)`` (clamped to 0..k-1 for cells beyond the window).  Every
other value is "off".  Assembling these maps at c_n copies, into each sub-window, the map of that sub-window's
relative position -- so it reads "on" exactly where n is, and "off" on a touching neighbour n' (whose cells are
"on" in the maps of *their* position relative to c_n', not relative to c_n).  The ideal objectness is "on" at
each c_n.  This is the picture the paper's Fig. 1 draws, computed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ifcn_viz.config import IDEAL_LOGIT, check_km


class IdealMaps(NamedTuple):
    score_maps: Tensor  # (k*k, H', W') logits: +logit "on", -logit "off"
    objectness: Tensor  # (1, H', W') logits: +logit at each instance's centre cell
    centers: Tensor  # (N, 2) long: each instance's centre cell (cy, cx); (-1, -1) for an empty mask
    owner: Tensor  # (H', W') long: the instance each feature cell belongs to, -1 for background


def _as_mask_tensor(masks: Tensor | np.ndarray) -> Tensor:
    t = torch.as_tensor(np.asarray(masks) if not isinstance(masks, Tensor) else masks)
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3:
        raise ValueError(f"masks must be [N, H, W] (or one [H, W] mask), got shape {tuple(t.shape)}")
    return t.bool()


def ideal_score_maps(
    masks: Tensor | np.ndarray, k: int, m: int, stride: int, logit: float = IDEAL_LOGIT, min_cover: float = 0.5
) -> IdealMaps:
    """Ideal k^2 score maps and objectness for instance ``masks`` ``[N, H, W]`` (bool) at input resolution.

    A feature cell belongs to the instance covering most of its ``stride x stride`` pixels, if that instance
    covers at least ``min_cover`` of them.  Maps are ``ceil(H / stride) x ceil(W / stride)``.
    """
    check_km(k, m)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    masks = _as_mask_tensor(masks)
    n, h, w = masks.shape
    hf, wf = -(-h // stride), -(-w // stride)
    r = m // 2
    padded = F.pad(masks.float(), (0, wf * stride - w, 0, hf * stride - h))
    cover = F.avg_pool2d(padded[None], stride)[0] if n else torch.zeros(0, hf, wf)  # (N, H', W')
    score_maps = torch.full((k * k, hf, wf), -logit)
    objectness = torch.full((1, hf, wf), -logit)
    centers = torch.full((n, 2), -1, dtype=torch.long)
    owner = torch.full((hf, wf), -1, dtype=torch.long)
    if n == 0:
        return IdealMaps(score_maps, objectness, centers, owner)
    best, arg = cover.max(0)  # (H', W')
    owner = torch.where(best >= min_cover, arg, torch.full_like(arg, -1))
    gy, gx = torch.meshgrid(torch.arange(hf), torch.arange(wf), indexing="ij")  # (H', W') each
    for i in range(n):
        ys, xs = torch.nonzero(masks[i], as_tuple=True)
        if ys.numel() == 0:
            continue
        # centre of the tight box in continuous pixel coordinates -> the cell containing it
        cy = int(((ys.min() + ys.max() + 1).item() / 2) // stride)
        cx = int(((xs.min() + xs.max() + 1).item() / 2) // stride)
        centers[i] = torch.tensor([cy, cx])
        objectness[0, cy, cx] = logit
        sel = owner == i
        by = torch.div((gy[sel] - cy + r) * k, m, rounding_mode="floor").clamp(0, k - 1)
        bx = torch.div((gx[sel] - cx + r) * k, m, rounding_mode="floor").clamp(0, k - 1)
        score_maps[by * k + bx, gy[sel], gx[sel]] = logit
    return IdealMaps(score_maps, objectness, centers, owner)
