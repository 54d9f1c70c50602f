"""The per-image window sampler as it was before the batched one (ifcn_viz/train/targets.py at 533258f), kept
verbatim as the reference that ``tests/test_targets_batched.py`` compares the batched sampler against: one image
at a time, in Python, with ``torch.unique``, ``masks_to_boxes`` and ``randperm`` per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import masks_to_boxes

from ifcn_viz.train.targets import WindowLabels, WindowRule, WindowTargets


def label_windows_reference(
    masks: Tensor,
    feat_hw: tuple[int, int],
    m: int,
    stride: int,
    rule: WindowRule,
    valid_hw: tuple[int, int] | None = None,
) -> WindowLabels:
    """Label every window of one image.  ``masks``: ``[N, H, W]`` bool at the input resolution."""
    if masks.dim() != 3:
        raise ValueError(f"masks must be [N, H, W], got shape {tuple(masks.shape)}")
    hf, wf = feat_hw
    dev = masks.device
    valid_h, valid_w = valid_hw if valid_hw is not None else masks.shape[1:]
    ys = (torch.arange(hf, device=dev) + 0.5) * stride  # window centres in pixels
    xs = (torch.arange(wf, device=dev) + 0.5) * stride
    inside = (ys[:, None] < valid_h) & (xs[None, :] < valid_w)  # (H', W')
    keep = masks.flatten(1).any(1)
    if not bool(keep.any()):
        return WindowLabels(torch.zeros_like(inside), inside, torch.full((hf, wf), -1, dtype=torch.long, device=dev))
    idx = torch.nonzero(keep).squeeze(1)
    boxes = masks_to_boxes(masks[idx]).float()  # (n, 4) inclusive x0 y0 x1 y1
    cx = (boxes[:, 0] + boxes[:, 2] + 1) / 2
    cy = (boxes[:, 1] + boxes[:, 3] + 1) / 2
    side = torch.maximum(boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1)
    k = stride / 8.0
    ref = rule.ref_fraction * m * stride
    dscale = torch.log2(side / ref).abs()  # (n,)
    dy = (ys[None, :, None] - cy[:, None, None]).abs()  # (n, H', 1)
    dx = (xs[None, None, :] - cx[:, None, None]).abs()  # (n, 1, W')
    cheb = torch.maximum(dy, dx)  # (n, H', W')
    pos_n = (cheb <= rule.centre_tol * k) & (dscale[:, None, None] <= rule.pos_scale_tol)
    near_n = (cheb < rule.neg_centre * k) & (dscale[:, None, None] < rule.neg_scale_tol)
    positive = pos_n.any(0) & inside
    negative = ~near_n.any(0) & inside
    dist = torch.where(pos_n, torch.hypot(dy.expand_as(cheb), dx.expand_as(cheb)), torch.full_like(cheb, float("inf")))
    owner = torch.where(positive, idx[dist.argmin(0)], torch.full((hf, wf), -1, dtype=torch.long, device=dev))
    return WindowLabels(positive, negative, owner)


def window_mask_targets_reference(
    masks: Tensor, owners: Tensor, yx: Tensor, feat_hw: tuple[int, int], m: int, stride: int
) -> Tensor:
    """Ground-truth ``[P, m, m]`` masks: instance ``owners[p]`` cropped to the window at cell ``yx[p]``, area-resized.

    Because the window box is aligned to the cell grid (m*s pixels), area-resizing to m x m is the mean over each
    cell's s x s pixels, i.e. an average pool of the mask at the output stride.
    """
    hf, wf = feat_hw
    r = m // 2
    if owners.numel() == 0:
        return torch.zeros((0, m, m), dtype=torch.float32, device=masks.device)
    used, inverse = torch.unique(owners, return_inverse=True)  # pool each instance once, not once per window
    H, W = hf * stride, wf * stride
    sub = masks[used, :H, :W].float()  # (U, <=H, <=W)
    sub = F.pad(sub, (0, W - sub.shape[2], 0, H - sub.shape[1]))  # (U, H, W)
    cover = F.avg_pool2d(sub[:, None], stride)[:, 0]  # (U, H', W'): fraction of each cell covered
    cover = F.pad(cover, (r, r, r, r))  # zero outside the image
    offs = torch.arange(m, device=masks.device)
    iy = yx[:, 0, None, None] + offs[None, :, None]  # (P, m, 1) rows in the padded map
    ix = yx[:, 1, None, None] + offs[None, None, :]  # (P, 1, m)
    return cover[inverse[:, None, None], iy, ix]  # (P, m, m)


def sample_windows_reference(
    masks_list: list[Tensor],
    feat_hw: tuple[int, int],
    m: int,
    stride: int,
    rule: WindowRule | None = None,
    generator: torch.Generator | None = None,
    valid_sizes: Tensor | None = None,
) -> WindowTargets:
    """Sample ``rule.windows_per_image`` windows per image and build their targets (see the module doc).

    ``masks_list[b]``: ``[N_b, H, W]`` bool masks of image b (N_b may be 0).  ``valid_sizes``: ``[B, 2]`` true
    (h, w) of each image inside the padded batch.  ``generator`` (CPU) makes the draw reproducible.
    """
    rule = rule or WindowRule()
    centers, labels, pos_centers, pos_masks = [], [], [], []
    n_pos_max = int(round(rule.windows_per_image * rule.positive_fraction))
    for b, masks in enumerate(masks_list):
        valid = tuple(int(v) for v in valid_sizes[b]) if valid_sizes is not None else None
        lab = label_windows_reference(masks, feat_hw, m, stride, rule, valid)
        pos = torch.nonzero(lab.positive).cpu()  # (P_all, 2)
        neg = torch.nonzero(lab.negative).cpu()
        pos = pos[torch.randperm(len(pos), generator=generator)[:n_pos_max]]
        neg = neg[torch.randperm(len(neg), generator=generator)[: rule.windows_per_image - len(pos)]]
        yx = torch.cat([pos, neg]).to(masks.device)
        bcol = torch.full((len(yx), 1), b, dtype=torch.long, device=masks.device)
        centers.append(torch.cat([bcol, yx], 1))
        labels.append(torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).to(masks.device))
        pyx = yx[: len(pos)]
        pos_centers.append(centers[-1][: len(pos)])
        pos_masks.append(window_mask_targets_reference(masks, lab.owner[pyx[:, 0], pyx[:, 1]], pyx, feat_hw, m, stride))
    dev = masks_list[0].device if masks_list else torch.device("cpu")
    if not centers:
        z = torch.zeros((0, 3), dtype=torch.long, device=dev)
        return WindowTargets(z, torch.zeros(0, device=dev), z, torch.zeros((0, m, m), device=dev))
    return WindowTargets(torch.cat(centers), torch.cat(labels), torch.cat(pos_centers), torch.cat(pos_masks))
