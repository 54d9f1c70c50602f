"""The proposal funnel: how many windows survive each stage of inference, and which objects they still find.

Inference (paper, Sec. 3.3) narrows every window of every scale down to N proposals in four steps; the funnel
counts each stage -- per scale where that means something -- and, when the image's true instance masks are known
(synthetic scenes, drawn instances, a COCO file), the recall at each stage: the fraction of the objects that some
window still in the funnel segments at mask IoU >= ``iou``.  Recall can only fall along the funnel; where it falls
says what lost an object -- never assembled (objectness ranked it below ``pre_nms_top_k``), an empty mask, NMS, or
the top-N cut.  Like Mask R-CNN's ``inspect_model`` notebook, but for InstanceFCN's stages.

Stages (all computed by :meth:`Predictor.candidates <ifcn_viz.inference.predictor.Predictor.candidates>`, the same
code :meth:`~ifcn_viz.inference.predictor.Predictor.proposals` runs):

1. ``every window``: every feature cell of every chosen scale is a window centre;
2. ``top-k by objectness``: the best ``pre_nms_top_k`` by sigmoid(objectness) are assembled (ours: the paper
   scores every window and does not say how many it assembles);
3. ``non-empty masks``: windows whose pasted mask has at least one pixel at the threshold;
4. ``after NMS``: greedy NMS on the masks' tight boxes at ``nms_iou`` (paper: 0.8);
5. ``top N``: the first ``top_n`` survivors -- the proposals.

Mask IoU is exact: every window that could reach a given IoU with an object is pasted at full resolution with the
proposals' own paste (:func:`~ifcn_viz.inference.postprocess.paste_window_masks`).  A window whose tight box
overlaps an object's by less than ``min_iou`` of the object's area cannot reach IoU ``min_iou`` with it
(``IoU <= |M & G| / |G| <= |box(M) & box(G)| / |G|``), so it is not pasted for that object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchvision.ops import box_area

from ifcn_viz.config import FOUND_IOU
from ifcn_viz.inference.postprocess import masks_to_boxes_exclusive, paste_window_masks, window_mask_boxes
from ifcn_viz.inference.types import Candidates

STAGES = ("every window", "top-k by objectness", "non-empty masks", "after NMS", "top N")
_CHUNK = 32  # windows pasted at once: peak memory about _CHUNK * H * W bytes (bool) plus as many floats


@dataclass(frozen=True)
class FunnelStage:
    """One stage of the funnel: how many windows are left, and (with ground truth) which objects they find."""

    name: str
    count: int
    per_scale: tuple[int, ...]  # windows left at each scale of the Predictor
    recall: float | None  # fraction of the objects found at mask IoU >= the funnel's iou; None without GT
    found: np.ndarray | None  # (G,) bool: object g has a window at IoU >= iou at this stage
    best_iou: np.ndarray | None  # (G,) float: the best mask IoU of any window at this stage (0 if < min_iou)


@dataclass(frozen=True)
class Funnel:
    """The stages of one image's inference (see the module docstring); ``stages[-1]`` are the proposals."""

    stages: tuple[FunnelStage, ...]
    candidates: Candidates
    iou: float  # the IoU at which an object counts as found
    gt_count: int  # number of ground-truth objects (0 when none were given)
    rank_iou: np.ndarray | None  # (K, G) mask IoU of each ranked (top-k) window with each object (0 if < min_iou)

    @property
    def missed(self) -> list[int]:
        """Objects no proposal finds (indices into the ground truth), in order."""
        found = self.stages[-1].found
        return [] if found is None else [int(g) for g in np.flatnonzero(~found)]

    def lost_at(self, g: int) -> str | None:
        """The first stage at which object ``g`` is no longer found, or None if a proposal finds it."""
        for st in self.stages:
            if st.found is not None and not st.found[g]:
                return st.name
        return None

    def positive_ranks(self) -> np.ndarray:
        """``(K,)`` bool: the ranked windows whose mask matches some object at IoU >= ``iou``."""
        if self.rank_iou is None or self.rank_iou.shape[1] == 0:
            return np.zeros(len(self.candidates.scores), dtype=bool)
        return self.rank_iou.max(1) >= self.iou

    def to_dict(self) -> dict[str, Any]:
        """The funnel as JSON-able numbers (for the app's API and downloads)."""

        def opt(a: np.ndarray | None, digits: int = 4) -> list | None:
            return None if a is None else [round(float(v), digits) for v in a]

        return {
            "iou": self.iou,
            "objects": self.gt_count,
            "stages": [
                {
                    "stage": st.name,
                    "windows": st.count,
                    "per_scale": list(st.per_scale),
                    "recall": None if st.recall is None else round(st.recall, 4),
                    "best_iou": opt(st.best_iou),
                }
                for st in self.stages
            ],
            "missed": [{"object": g, "lost_at": self.lost_at(g)} for g in self.missed],
        }


def as_gt_masks(gt_masks: Any, image_hw: tuple[int, int]) -> Tensor:
    """``gt_masks`` as ``[G, H, W]`` bool on CPU, checked against the image's size (one [H, W] mask is G = 1)."""
    gt = torch.as_tensor(np.asarray(gt_masks) if not isinstance(gt_masks, Tensor) else gt_masks).bool().cpu()
    if gt.dim() == 2:
        gt = gt[None]
    if gt.dim() != 3 or tuple(gt.shape[1:]) != tuple(image_hw):
        raise ValueError(
            f"gt_masks must be [G, H, W] bool at the image's size {tuple(image_hw)}, got shape {tuple(gt.shape)}"
        )
    return gt


def window_mask_ious(
    probs: Tensor, window_boxes: Tensor, tight: Tensor, gt: Tensor, threshold: float, min_iou: float = 0.0
) -> np.ndarray:
    """Exact mask IoU ``[N, G]`` of each window's pasted, binarised mask with each ground-truth mask ``gt [G, H, W]``.

    ``tight`` are the masks' tight boxes (:func:`window_mask_boxes`); pairs that cannot reach ``min_iou`` (see the
    module docstring) are not pasted and read 0.  With ``min_iou = 0`` every pair whose boxes overlap is exact.
    """
    n, g = probs.shape[0], gt.shape[0]
    out = np.zeros((n, g), dtype=np.float32)
    if n == 0 or g == 0:
        return out
    hw = tuple(gt.shape[1:])
    gt_area = gt.flatten(1).sum(1).float()  # (G,)
    gt_box = masks_to_boxes_exclusive(gt)  # (G, 4)
    lt = torch.maximum(tight[:, None, :2], gt_box[None, :, :2])
    rb = torch.minimum(tight[:, None, 2:], gt_box[None, :, 2:])
    inter_box = (rb - lt).clamp(min=0).prod(2)  # (N, G)
    possible = (inter_box > 0) & (inter_box >= min_iou * gt_area[None]) & (box_area(tight) > 0)[:, None]
    todo = possible.any(1).nonzero()[:, 0]
    gt_flat = gt.flatten(1).float()  # (G, H*W)
    for idx in todo.split(_CHUNK):
        masks, _ = paste_window_masks(probs[idx], window_boxes[idx], hw, threshold, within=tight[idx])
        flat = masks.flatten(1).float()  # (n', H*W)
        inter = flat @ gt_flat.T  # (n', G)
        union = flat.sum(1, keepdim=True) + gt_area[None] - inter
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))
        out[idx.numpy()] = torch.where(possible[idx], iou, torch.zeros_like(iou)).numpy()
    return out


def _per_scale(scale_index: Tensor, n_scales: int) -> tuple[int, ...]:
    return tuple(int(c) for c in torch.bincount(scale_index, minlength=n_scales)[:n_scales])


def _stage(name: str, ranks: Tensor, c: Candidates, n_scales: int, rank_iou: np.ndarray | None, iou: float):
    if rank_iou is None:
        return FunnelStage(name, int(ranks.numel()), _per_scale(c.scale_index[ranks], n_scales), None, None, None)
    best = rank_iou[ranks.numpy()].max(0) if ranks.numel() else np.zeros(rank_iou.shape[1], dtype=np.float32)
    found = best >= iou
    recall = float(found.mean()) if found.size else 0.0
    return FunnelStage(name, int(ranks.numel()), _per_scale(c.scale_index[ranks], n_scales), recall, found, best)


def _every_window_ious(predictor: Any, c: Candidates, gt: Tensor, min_iou: float, maps: Any = None) -> np.ndarray:
    """Best IoU ``[G]`` over every window of every chosen scale (assembled here, scale by scale)."""
    best = np.zeros(gt.shape[0], dtype=np.float32)
    gt_box = masks_to_boxes_exclusive(gt)  # (G, 4)
    gt_area = gt.flatten(1).sum(1).float()  # (G,)
    for i, count in enumerate(c.windows_per_scale):
        if count == 0:
            continue
        grid = predictor.grid(i, maps=maps)
        hf, wf = grid.maps.objectness.shape
        cy, cx = (t.flatten() for t in torch.meshgrid(torch.arange(hf), torch.arange(wf), indexing="ij"))
        # a mask lies inside its window, so IoU(M, G) <= |window & box(G)| / |G|: skip windows that cannot reach
        # min_iou with any object before assembling them (most windows of most scales)
        wb = grid.boxes(cy, cx)
        lt = torch.maximum(wb[:, None, :2], gt_box[None, :, :2])
        rb = torch.minimum(wb[:, None, 2:], gt_box[None, :, 2:])
        reach = ((rb - lt).clamp(min=0).prod(2) >= min_iou * gt_area[None]).any(1) if min_iou > 0 else None
        todo = torch.arange(cy.numel()) if reach is None else reach.nonzero()[:, 0]
        for sel in todo.split(4096):
            probs = torch.sigmoid(grid.logits(cy[sel], cx[sel]))
            boxes = wb[sel]
            tight, nonempty = window_mask_boxes(probs, boxes, c.image_hw, c.threshold)
            keep = nonempty.nonzero()[:, 0]
            if keep.numel():
                ious = window_mask_ious(probs[keep], boxes[keep], tight[keep], gt, c.threshold, min_iou)
                best = np.maximum(best, ious.max(0))
    return best


def proposal_funnel(
    predictor: Any,
    gt_masks: Any = None,
    iou: float = FOUND_IOU,
    every_window: bool = True,
    min_iou: float | None = None,
    maps: Any = None,
    **proposal_args: Any,
) -> Funnel:
    """The funnel of ``maps`` (an :class:`~ifcn_viz.inference.types.ImageMaps` from ``predictor.encode``; default:
    the predictor's ``set_image`` image); see the module docstring.

    Args:
        predictor: a :class:`~ifcn_viz.inference.predictor.Predictor` with an image set.
        gt_masks: optional ``[G, H, W]`` bool instance masks at the image's resolution; with them every stage
            reports its recall at mask IoU >= ``iou`` and each object's best IoU.
        iou: the IoU at which an object counts as found (COCO's recall@0.5 by default).
        every_window: also measure recall over every window (stage 1); costs one extra assembling pass.
        min_iou: IoUs below this are not computed exactly and read 0 (default: ``iou`` for stage 1 and 0.1 for
            the ranked windows, so best IoUs of near misses are still exact).
        proposal_args: ``top_n``, ``nms_iou``, ``mask_threshold``, ``scales``, ``pre_nms_top_k`` as for
            :meth:`Predictor.proposals`.
    """
    if not 0.0 < iou <= 1.0:
        raise ValueError(f"iou must be in (0, 1], got {iou}")
    c = predictor.candidates(trace_nms=True, maps=maps, **proposal_args)
    n_scales = len(c.windows_per_scale)
    gt = None if gt_masks is None else as_gt_masks(gt_masks, c.image_hw)
    rank_iou = None
    if gt is not None:
        floor = 0.1 if min_iou is None else min_iou
        rank_iou = window_mask_ious(c.probs, c.window_boxes, c.tight, gt, c.threshold, floor)
    ranks = torch.arange(c.scores.numel())
    stages = [
        _stage("top-k by objectness", ranks, c, n_scales, rank_iou, iou),
        _stage("non-empty masks", c.nonempty.nonzero()[:, 0], c, n_scales, rank_iou, iou),
        _stage("after NMS", c.after_nms, c, n_scales, rank_iou, iou),
        _stage("top N", c.final, c, n_scales, rank_iou, iou),
    ]
    total = sum(c.windows_per_scale)
    if gt is None or not every_window:
        first = FunnelStage(STAGES[0], total, c.windows_per_scale, None, None, None)
    else:
        best = _every_window_ious(predictor, c, gt, iou if min_iou is None else min_iou, maps)
        best = np.maximum(best, stages[0].best_iou)  # the ranked windows are among them (same values)
        found = best >= iou
        first = FunnelStage(STAGES[0], total, c.windows_per_scale, float(found.mean()) if found.size else 0.0,
                            found, best)  # fmt: skip
    return Funnel((first, *stages), c, float(iou), 0 if gt is None else int(gt.shape[0]), rank_iou)
