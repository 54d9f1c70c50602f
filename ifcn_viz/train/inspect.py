"""Training's view of one image, for inspection: which windows the training rule calls positive / negative, and the
targets it would sample beside what the network predicts there (notebook 5's Mask R-CNN-style inspection).

Lives in ``train/`` because it runs training's own rules (:mod:`ifcn_viz.train.targets`) on a Predictor's image;
inference never imports training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ifcn_viz.inference.funnel import as_gt_masks


def training_labels(predictor: Any, gt_masks: Any, rule: Any = None) -> tuple[Tensor, Tensor, Tensor]:
    """``(objectness logits, positive, negative)``, each ``(N,)`` over every window of every scale of the current
    image (scale by scale, raster order): the windows the training rule
    (:func:`~ifcn_viz.train.targets.label_windows`, default :class:`~ifcn_viz.train.targets.WindowRule`) would call
    positive / negative at that scale, with the masks resized (nearest) to the scale's input."""
    from ifcn_viz.train.targets import WindowRule, label_windows

    rule = rule or WindowRule()
    gt = as_gt_masks(gt_masks, tuple(predictor._require_image().shape[:2])).float()[:, None]
    logits, pos, neg = [], [], []
    for sm in predictor.scales:
        masks = torch.nn.functional.interpolate(gt, size=sm.resized_hw, mode="nearest")[:, 0] > 0.5
        lab = label_windows(masks, sm.feature_hw, predictor.m, sm.stride, rule)
        logits.append(sm.objectness.flatten())
        pos.append(lab.positive.flatten())
        neg.append(lab.negative.flatten())
    return torch.cat(logits), torch.cat(pos), torch.cat(neg)


@dataclass(frozen=True)
class TargetSample:
    """Windows sampled as in training on one image at its own resolution, with the network's answer for each."""

    image_hw: tuple[int, int]
    stride: int
    positives: Tensor  # (P, 2) long (cy, cx)
    negatives: Tensor  # (Q, 2) long
    targets: Tensor  # (P, m, m) float in [0, 1]: the training targets of the positives
    predicted: Tensor  # (P, m, m) float: the assembled probabilities of the same windows
    objectness: Tensor  # (P + Q,) float: sigmoid(objectness) of positives then negatives


def sample_targets(predictor: Any, image: Any, gt_masks: Any, seed: int = 0, rule: Any = None) -> TargetSample:
    """Sample windows of ``image`` as training does (:func:`~ifcn_viz.train.targets.sample_windows`, at the image's
    own resolution) and assemble the network's windows at the same cells -- the targets beside the predictions.

    Runs the model once, at factor 1, in a Predictor of its own (``predictor``'s image is left alone)."""
    import dataclasses

    from ifcn_viz.train.targets import sample_windows

    rgb = np.asarray(image)
    h, w = rgb.shape[:2]
    infer = dataclasses.replace(predictor.infer, pyramid="fixed", scales=(min(h, w),))
    own = type(predictor)(predictor.model, infer=infer, device=predictor.device)
    own.set_image(rgb)
    grid = own.grid(0)
    gt = as_gt_masks(gt_masks, (h, w))
    t = sample_windows([gt], grid.feature_hw, own.m, grid.stride, rule, torch.Generator().manual_seed(seed))
    pos = t.pos_centers[:, 1:]
    neg = t.centers[t.labels == 0][:, 1:]
    pred = torch.sigmoid(grid.logits(pos[:, 0], pos[:, 1])) if len(pos) else torch.zeros(0, own.m, own.m)
    both = torch.cat([pos, neg])
    obj = torch.sigmoid(grid.maps.objectness[both[:, 0], both[:, 1]])
    return TargetSample((h, w), grid.stride, pos, neg, t.pos_masks, pred, obj)
