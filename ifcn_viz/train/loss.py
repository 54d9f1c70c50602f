"""The training loss (paper, Sec. 3.3 "Training"): for the sampled windows i,

    L = sum_i [ L_obj(p_i, p_i*) + sum_j L_mask(S_ij, S_ij*) ]

with L the logistic loss, p_i the objectness logit of window i, S_ij the assembled logit of pixel j of the
window's m x m mask and S* its ground truth; the mask term counts for positive windows only.  The paper gives no
weighting; we use *means* (objectness: mean over all sampled windows; mask: mean over positive windows and their
m x m pixels), each with a weight (default 1.0), so that neither term scales with the window count.  Both terms
are empty-safe: with no sampled window or no positive, the term is ``0 * (sum of the logits)`` -- a finite,
differentiable zero that keeps every parameter in the graph (needed by DDP).
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor

from ifcn_viz.model.assemble import OUTSIDE_LOGIT, assemble_at
from ifcn_viz.train.targets import WindowTargets


class LossTerms(NamedTuple):
    total: Tensor
    objectness: Tensor
    mask: Tensor


def instance_fcn_loss(
    score_maps: Tensor,
    objectness: Tensor,
    targets: WindowTargets,
    m: int,
    fill: float = OUTSIDE_LOGIT,
    objectness_weight: float = 1.0,
    mask_weight: float = 1.0,
) -> LossTerms:
    """``score_maps`` ``[B, k*k, H', W']`` and ``objectness`` ``[B, 1, H', W']`` logits; ``targets`` from
    :func:`ifcn_viz.train.targets.sample_windows`.  Computed in float32 whatever the autocast dtype."""
    if targets.centers.numel():
        c = targets.centers
        obj_logits = objectness[c[:, 0], 0, c[:, 1], c[:, 2]].float()  # (S,)
        obj = F.binary_cross_entropy_with_logits(obj_logits, targets.labels.float())
    else:
        obj = objectness.float().sum() * 0.0
    if targets.pos_centers.numel():
        windows = assemble_at(score_maps, targets.pos_centers, m, fill).float()  # (P, m, m)
        mask = F.binary_cross_entropy_with_logits(windows, targets.pos_masks.float())
    else:
        mask = score_maps.float().sum() * 0.0
    return LossTerms(objectness_weight * obj + mask_weight * mask, obj.detach(), mask.detach())
