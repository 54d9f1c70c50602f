"""Experiments on a Predictor's windows: how objectness and the assembled masks combine, and what the network sees.

Used by notebook 5 (reader question 4 and the Mask R-CNN-style inspection); the drawings are in
:mod:`ifcn_viz.viz.inspection_plots`.

* :func:`score_windows` -- every window of every scale at once: objectness logit, assembled probabilities, the
  pasted mask's tight box, and (with ground truth) its exact mask IoU with each object (the funnel's
  :func:`~ifcn_viz.inference.funnel.window_mask_ious`, so the IoUs are those of the proposals' own paste);
* :func:`ranking_recall` -- recall@IoU against the number of proposals when windows are ranked by another rule
  than objectness (mask confidence, their product, at random), each followed by the same box NMS as
  :meth:`Predictor.proposals <ifcn_viz.inference.predictor.Predictor.proposals>`;
* :func:`touching_pairs` and :func:`window_sweep` -- a window slid across two touching objects: objectness and
  the mask's IoU with each object at every step;
* :func:`layer_activations` -- forward hooks on named modules of the model for one image.

The paper (Sec. 3.3) scores a window by objectness alone and takes its mask from the assembled score maps; it
does not rank by mask confidence or by a product -- those rules are ours, for the experiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ifcn_viz.config import FOUND_IOU, NMS_IOU
from ifcn_viz.inference.funnel import as_gt_masks, window_mask_ious
from ifcn_viz.inference.postprocess import nms_with_trace, window_mask_boxes
from ifcn_viz.model.geometry import REFERENCE_FRACTION

RANKING_RULES = ("objectness", "mask confidence", "objectness x mask confidence", "random")


@dataclass(frozen=True)
class ScoredWindows:
    """Every window of the chosen scales of the Predictor's current image (one row per window)."""

    scale_index: Tensor  # (N,) long
    cy: Tensor  # (N,) long
    cx: Tensor  # (N,) long
    objectness: Tensor  # (N,) float: the objectness *logit* (ranking by it has no ties where sigmoid saturates)
    probs: Tensor  # (N, m, m) float: assembled window probabilities
    window_boxes: Tensor  # (N, 4) float xyxy, original pixels
    tight: Tensor  # (N, 4) float: tight boxes of the binarised pasted masks (0 if empty)
    nonempty: Tensor  # (N,) bool
    ious: np.ndarray | None  # (N, G) exact mask IoU with each object (0 where it cannot reach ``min_iou``)
    threshold: float
    random: Tensor  # (N,) float: a uniform random score per window (the "random" ranking rule)

    def __len__(self) -> int:
        return int(self.objectness.numel())


def mask_confidence(probs: Tensor) -> Tensor:
    """``(N,)`` how decided each window's mask is: the mean of ``|2p - 1|`` over its m x m cells (0: every cell at
    p = 0.5, 1: every cell at 0 or 1).  Ours -- the paper does not score masks."""
    return (2 * probs - 1).abs().flatten(1).mean(1)


def score_windows(
    predictor: Any,
    gt_masks: Any = None,
    scales: Sequence[int] | None = None,
    mask_threshold: float | None = None,
    min_iou: float = 0.5,
    top_k: int | None = None,
    rules: Sequence[str] = RANKING_RULES,
    seed: int = 0,
) -> ScoredWindows:
    """The windows of ``scales`` (default all) of ``predictor``'s current image, assembled and measured.

    ``top_k``: keep only the union of the best ``top_k`` windows under each of ``rules`` (what those rules'
    first proposals can be drawn from, as the Predictor assembles only its ``pre_nms_top_k`` best); the masks'
    boxes and IoUs -- the costly part -- are computed for those alone.  None: every window.
    """
    img = predictor._require_image()
    hw = tuple(img.shape[:2])
    thr = predictor.infer.mask_threshold if mask_threshold is None else float(mask_threshold)
    chosen = range(len(predictor.scales)) if scales is None else [predictor._scale(s).index for s in scales]
    parts: dict[str, list[Tensor]] = {k: [] for k in ("s", "cy", "cx", "obj", "probs", "boxes")}
    for i in chosen:
        grid = predictor.grid(i)
        hf, wf = grid.feature_hw
        cy, cx = (t.flatten() for t in torch.meshgrid(torch.arange(hf), torch.arange(wf), indexing="ij"))
        parts["s"].append(torch.full_like(cy, i))
        parts["cy"].append(cy)
        parts["cx"].append(cx)
        parts["obj"].append(grid.maps.objectness[cy, cx].float())
        parts["probs"].append(torch.sigmoid(grid.logits(cy, cx)))
        parts["boxes"].append(grid.boxes(cy, cx))
    cat = {k: torch.cat(v) for k, v in parts.items()}
    cat["random"] = torch.rand(len(cat["obj"]), generator=torch.Generator().manual_seed(seed))
    if top_k is not None:
        every = ScoredWindows(
            cat["s"],
            cat["cy"],
            cat["cx"],
            cat["obj"],
            cat["probs"],
            cat["boxes"],
            cat["boxes"],
            torch.ones(len(cat["obj"]), dtype=torch.bool),
            None,
            thr,
            cat["random"],
        )
        pool = torch.zeros(len(cat["obj"]), dtype=torch.bool)
        for rule in rules:
            score = ranking_scores(every, rule)
            pool[torch.sort(score, descending=True, stable=True).indices[:top_k]] = True
        cat = {k: v[pool] for k, v in cat.items()}
    tight, nonempty = window_mask_boxes(cat["probs"], cat["boxes"], hw, thr)
    ious = None
    if gt_masks is not None:
        gt = as_gt_masks(gt_masks, hw)
        ious = np.zeros((len(tight), gt.shape[0]), dtype=np.float32)
        keep = nonempty.nonzero()[:, 0]
        if keep.numel():
            ious[keep.numpy()] = window_mask_ious(cat["probs"][keep], cat["boxes"][keep], tight[keep], gt, thr, min_iou)
    return ScoredWindows(cat["s"], cat["cy"], cat["cx"], cat["obj"], cat["probs"], cat["boxes"], tight, nonempty,
                         ious, thr, cat["random"])  # fmt: skip


def ranking_scores(windows: ScoredWindows, rule: str) -> Tensor:
    """``(N,)`` the score each window gets under ``rule`` (one of :data:`RANKING_RULES`); higher ranks first."""
    if rule == "objectness":
        return windows.objectness
    if rule == "mask confidence":
        return mask_confidence(windows.probs)
    if rule == "objectness x mask confidence":
        return torch.sigmoid(windows.objectness.double()).float() * mask_confidence(windows.probs)
    if rule == "random":
        return windows.random
    raise ValueError(f"unknown ranking rule {rule!r}; known: {', '.join(RANKING_RULES)}")


def ranked_proposals(windows: ScoredWindows, rule: str, nms_iou: float = NMS_IOU) -> Tensor:
    """Indices of the windows the proposals would be under ``rule``: non-empty masks in descending score order
    (stable), then greedy NMS on the masks' tight boxes at ``nms_iou`` (as :meth:`Predictor.proposals`)."""
    score = ranking_scores(windows, rule)
    order = torch.sort(score, descending=True, stable=True).indices
    order = order[windows.nonempty[order]]
    keep, _ = nms_with_trace(windows.tight[order], nms_iou)
    return order[keep]


def recall_at_n(ious: np.ndarray, order: Tensor | np.ndarray, ns: Sequence[int], iou: float = FOUND_IOU) -> np.ndarray:
    """``(len(ns),)`` fraction of the objects (columns of ``ious``) matched at IoU >= ``iou`` by the first N of
    ``order`` (window indices), for each N of ``ns``."""
    order = np.asarray(order, dtype=np.int64)
    if ious.shape[1] == 0:
        return np.zeros(len(ns))
    hit = ious[order] >= iou  # (L, G)
    first = np.where(hit.any(0), hit.argmax(0), np.iinfo(np.int64).max)  # rank of each object's first match
    return np.array([(first < n).mean() for n in ns])


def ranking_recall(
    predictor: Any,
    scenes: Sequence[tuple[Any, Any]],
    ns: Sequence[int] = (1, 2, 5, 10, 20, 50, 100),
    rules: Sequence[str] = RANKING_RULES,
    iou: float = FOUND_IOU,
    nms_iou: float | None = None,
    seed: int = 0,
    top_k: int | None = 500,
) -> dict[str, np.ndarray]:
    """Recall@``iou`` against the number of proposals under each ranking rule, pooled over ``scenes``.

    ``scenes``: ``(image, gt_masks)`` pairs (``set_image`` is called on each).  Returns ``{rule: (len(ns),)}``:
    the fraction of all objects of all scenes found by the first N proposals of their own image.  ``top_k``: each
    rule ranks its own best ``top_k`` windows (see :func:`score_windows`); N beyond what survives NMS among them
    counts only those.
    """
    nms_iou = predictor.infer.nms_iou if nms_iou is None else nms_iou
    found = {r: np.zeros(len(ns)) for r in rules}
    total = 0
    for s, (image, gt) in enumerate(scenes):
        predictor.set_image(image)
        w = score_windows(predictor, gt, min_iou=iou, top_k=top_k, rules=rules, seed=seed + s)
        g = w.ious.shape[1]
        total += g
        for r in rules:
            found[r] += g * recall_at_n(w.ious, ranked_proposals(w, r, nms_iou), ns, iou)
    return {r: v / max(total, 1) for r, v in found.items()}


def touching_pairs(masks: Any, gap: int = 2) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, i < j, of instance masks ``[G, H, W]`` that touch: within ``gap`` pixels of each other."""
    t = torch.as_tensor(np.asarray(masks)).bool().float()[:, None]
    grown = torch.nn.functional.max_pool2d(t, 2 * gap + 1, stride=1, padding=gap)[:, 0] > 0  # dilated masks
    plain = t[:, 0] > 0
    pairs = []
    for i in range(len(plain)):
        for j in range(i + 1, len(plain)):
            if bool((grown[i] & plain[j]).any()):
                pairs.append((i, j))
    return pairs


def reference_sides(predictor: Any) -> np.ndarray:
    """``(S,)`` the object size (larger side, original pixels) each scale of the current image was trained for:
    :data:`~ifcn_viz.model.geometry.REFERENCE_FRACTION` (4/7, the training rule's reference) of its m x stride
    window, divided by the scale's resize factor."""
    frac = REFERENCE_FRACTION
    return np.array([frac * predictor.m * sm.stride / sm.factor for sm in predictor.scales])


def object_sides(masks: Any) -> np.ndarray:
    """``(G,)`` the larger side of each mask's tight box, in pixels."""
    out = []
    for g in np.asarray(masks).astype(bool):
        ys, xs = np.nonzero(g)
        out.append(max(np.ptp(ys) + 1, np.ptp(xs) + 1) if ys.size else 0)
    return np.array(out)


def best_touching_pair(predictor: Any, gt_masks: Any) -> tuple[tuple[int, int], int, float] | None:
    """The touching pair of objects (:func:`touching_pairs`) and the scale at which both are closest to the
    window's reference size: ``((a, b), scale, misfit)``, misfit the larger ``|log2(side / reference)|`` of the
    two; None when no objects touch."""
    pairs = touching_pairs(gt_masks)
    if not pairs:
        return None
    sides, refs = object_sides(gt_masks), reference_sides(predictor)
    misfit = np.abs(np.log2(sides[:, None] / refs[None]))  # (G, S)
    best = min(((max(misfit[a, s], misfit[b, s]), (a, b), s) for a, b in pairs for s in range(len(refs))))
    return best[1], int(best[2]), float(best[0])


@dataclass(frozen=True)
class Sweep:
    """A window slid along the line between two objects' centres, one feature cell per step, at one scale."""

    scale_index: int
    pair: tuple[int, int]
    cells: np.ndarray  # (S, 2) int (cy, cx): the window centres, from object a's side to object b's
    along: np.ndarray  # (S,) float: position along the line, 0 at a's centre, 1 at b's
    objectness: np.ndarray  # (S,) float: sigmoid(objectness)
    objectness_logit: np.ndarray  # (S,) float
    ious: np.ndarray  # (S, 2): mask IoU with object a and with object b
    confidence: np.ndarray  # (S,) float: :func:`mask_confidence` of each window


def _centre(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2


def window_sweep(
    predictor: Any, gt_masks: Any, pair: tuple[int, int], scale: int | None = None, extend: float = 0.5
) -> Sweep:
    """Slide the window from object ``pair[0]``'s box centre to ``pair[1]``'s (and ``extend`` of that distance
    beyond each end) at ``scale`` (default: the Predictor's default scale), one distinct feature cell per step."""
    gt = np.asarray(gt_masks).astype(bool)
    a, b = int(pair[0]), int(pair[1])
    grid = predictor.grid(scale)
    (xa, ya), (xb, yb) = _centre(gt[a]), _centre(gt[b])
    n = 4 * max(grid.feature_hw)
    ts = np.linspace(-extend, 1 + extend, n)
    h, w = gt.shape[1:]
    cells, along = [], []
    for t in ts:
        x, y = xa + t * (xb - xa), ya + t * (yb - ya)
        if not (0 <= x < w and 0 <= y < h):
            continue
        c = grid.cell_of_pixel(x, y)
        if not cells or cells[-1] != c:
            cells.append(c)
            along.append(t)
    cy, cx = (torch.tensor([c[i] for c in cells]) for i in (0, 1))
    probs = torch.sigmoid(grid.logits(cy, cx))
    boxes = grid.boxes(cy, cx)
    tight, nonempty = window_mask_boxes(probs, boxes, (h, w), predictor.infer.mask_threshold)
    ious = np.zeros((len(cells), 2), dtype=np.float32)
    keep = nonempty.nonzero()[:, 0]
    if keep.numel():
        two = torch.from_numpy(gt[[a, b]])
        ious[keep.numpy()] = window_mask_ious(probs[keep], boxes[keep], tight[keep], two,
                                              predictor.infer.mask_threshold)  # fmt: skip
    logit = grid.maps.objectness[cy, cx].double()
    return Sweep(grid.maps.index, (a, b), np.array(cells), np.array(along), torch.sigmoid(logit).numpy(),
                 logit.numpy(), ious, mask_confidence(probs).numpy())  # fmt: skip


def layer_activations(model: torch.nn.Module, image: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
    """The outputs ``{name: (C, H, W)}`` of the named modules (``model.named_modules()``) for one normalised
    ``image [1, 3, H, W]`` (or ``[3, H, W]``), caught with forward hooks during one forward pass in eval mode."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise KeyError(f"no module named {missing} in the model; see model.named_modules()")
    out: dict[str, Tensor] = {}
    hooks = [modules[n].register_forward_hook(lambda _m, _i, o, n=n: out.__setitem__(n, o[0].detach().cpu().clone()))
             for n in names]  # fmt: skip
    was_training = model.training
    try:
        model.eval()
        x = image if image.dim() == 4 else image[None]
        with torch.no_grad():
            model(x.to(next(model.parameters()).device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return {n: out[n] for n in names}
