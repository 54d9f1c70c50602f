"""The views of known instances, as pure functions (no Gradio): the Draw tab's ideal maps of drawn instances (and the
model's learned maps beside them, with each instance's IoU) and the Inspect tab's proposal funnel and NMS steps.

They read the session's maps like :mod:`ifcn_viz.app.views`, whose parameter checks and window numbers they share.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ifcn_viz.app.session import ImageSession
from ifcn_viz.app.views import EXPLORE_PRE_NMS_TOP_K, check_pixel, check_proposal_params, resolve_scale, window_data
from ifcn_viz.config import FOUND_IOU, IDEAL_LOGIT, MASK_THRESHOLD, NMS_IOU, NMS_MAX_STEPS, TOP_N, WINDOW_THRESHOLD
from ifcn_viz.inference.types import Proposals
from ifcn_viz.inference.window import WindowGrid

# ---------------------------------------------------------------------------------------------- Draw


def check_masks(session: ImageSession, masks: Any) -> np.ndarray:
    """``masks`` as ``[N, H, W]`` bool at the session's image size, at least one instance, within the limits."""
    from ifcn_viz.limits import check_instance_count

    ms = np.asarray(masks, dtype=bool)
    if ms.ndim == 2:
        ms = ms[None]
    if ms.ndim != 3 or ms.shape[1:] != session.hw:
        raise ValueError(f"instance masks must be [N, H, W] at the image's size {session.hw}, got shape {ms.shape}")
    if len(ms) == 0 or not ms.any():
        raise ValueError("no instance drawn yet: paint an object with the brush (one colour per instance)")
    check_instance_count(len(ms), "the drawing", session.hw)
    return ms


def best_scale_for(session: ImageSession, masks: np.ndarray) -> int:
    """The scale whose windows best fit the drawn objects: the one whose served object sizes
    (``session.levels``, the sides inside the window's positive band) are centred nearest, in log size, on the
    median object side (the longer side of each mask's tight box).  The paper runs every scale and lets objectness
    choose (Sec. 3.3); for ideal maps we need one, and this is ours."""
    sides = []
    for m in masks:
        ys, xs = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
        if ys.size:
            sides.append(max(ys[-1] - ys[0] + 1, xs[-1] - xs[0] + 1))
    if not sides:
        return session.default_scale
    s = float(np.median(sides))
    levels = session.levels
    return int(
        min(range(len(levels)), key=lambda i: abs(math.log(s / math.sqrt(levels[i].objects[0] * levels[i].objects[1]))))
    )


@dataclass
class IdealAtScale:
    """The drawn instances' ideal maps at one scale of the session's image, on the same grid as the model's."""

    scale: int
    grid: WindowGrid  # ideal score maps / objectness, same geometry as predictor.grid(scale)
    centers: np.ndarray  # (N, 2) (cy, cx) centre cell of each instance at this scale (-1 for none)
    masks_scaled: np.ndarray  # (N, h, w) the masks at this scale's resized size
    image_scaled: np.ndarray  # (h, w, 3) the image at that size


def ideal_at_scale(session: ImageSession, masks: np.ndarray, scale: int | None = None) -> IdealAtScale:
    """Ideal k^2 maps (``ifcn_viz.model.ideal``) for ``masks`` at the model's stride and m, computed on the image
    as the model sees it at ``scale`` (default: :func:`best_scale_for`), cropped to the model's map size."""
    from ifcn_viz.app.instances import resize_masks_nearest
    from ifcn_viz.model.ideal import ideal_score_maps
    from ifcn_viz.viz.palette import resize

    p = session.predictor
    si = best_scale_for(session, masks) if scale is None or scale == -1 else resolve_scale(session, scale)
    sm = session.scales[si]
    rh, rw = sm.resized_hw
    scaled = resize_masks_nearest(masks, (rh, rw))  # one mask at a time (ifcn_viz.app.instances)
    ideal = ideal_score_maps(scaled, p.k, p.m, sm.stride)
    hf, wf = sm.feature_hw
    maps = torch.full((p.k * p.k, hf, wf), -IDEAL_LOGIT)
    obj = torch.full((hf, wf), -IDEAL_LOGIT)
    ch, cw = min(hf, ideal.score_maps.shape[1]), min(wf, ideal.score_maps.shape[2])
    maps[:, :ch, :cw] = ideal.score_maps[:, :ch, :cw]
    obj[:ch, :cw] = ideal.objectness[0, :ch, :cw]
    grid = WindowGrid(dataclasses.replace(sm, score_maps=maps, objectness=obj), p.m, -IDEAL_LOGIT)
    centers = ideal.centers.numpy().copy()
    ok = centers[:, 0] >= 0
    centers[ok, 0] = np.minimum(centers[ok, 0], hf - 1)
    centers[ok, 1] = np.minimum(centers[ok, 1], wf - 1)
    return IdealAtScale(si, grid, centers, scaled, resize(session.image, (rh, rw)))


@dataclass
class DrawViews:
    instances: np.ndarray  # the image with the drawn instances, their centres and a legend (click it)
    ideal: np.ndarray  # the ideal k^2 maps, the window at the chosen point outlined
    window: np.ndarray  # the window at the chosen point, assembled from the ideal maps
    k_compare: np.ndarray  # k = 1 vs k = model's k on the drawn instances
    learned: np.ndarray  # ideal vs learned maps and the IoU of each instance
    data: dict[str, Any]


def _cell_px(map_hw: tuple[int, int], target: int) -> int:
    return max(1, round(target / max(map_hw)))


def _instance_ious(
    session: ImageSession, ms: np.ndarray, ia: IdealAtScale, learned: WindowGrid, threshold: float
) -> tuple[list[tuple[str, list[float | None]]], list[dict[str, Any]]]:
    """Per drawn instance: the IoU of the ideal and the learned window at its centre cell, and of the ideal maps
    reassembled with k = 1 and the model's k; as table rows and as numbers."""
    from ifcn_viz.inference.window import window_mask
    from ifcn_viz.viz.ideal import ideal_reassembly, mask_iou

    p, grid, stride = session.predictor, ia.grid, session.scales[ia.scale].stride
    k1 = ideal_reassembly(ia.masks_scaled, 1, p.m, stride, threshold).ious
    kk = ideal_reassembly(ia.masks_scaled, p.k, p.m, stride, threshold).ious
    rows, inst_data = [], []
    for n in range(len(ms)):
        ideal_iou = learned_iou = None
        if ia.centers[n, 0] >= 0:
            c = tuple(int(v) for v in ia.centers[n])
            ideal_iou = mask_iou(window_mask(grid.window(*c), session.hw, threshold), ms[n])
            learned_iou = mask_iou(window_mask(learned.window(*c), session.hw, threshold), ms[n])
        rows.append((f"instance {n}", [ideal_iou, learned_iou, float(k1[n]), float(kk[n])]))
        ys, xs = np.nonzero(ms[n])
        inst_data.append({
            "instance": n, "area": int(ms[n].sum()),
            "box": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
            "center_cell": [int(v) for v in ia.centers[n]],
            "iou_ideal": None if ideal_iou is None else round(ideal_iou, 4),
            "iou_learned": None if learned_iou is None else round(learned_iou, 4),
            "iou_ideal_k1": round(float(k1[n]), 4), f"iou_ideal_k{p.k}": round(float(kk[n]), 4),
        })  # fmt: skip
    return rows, inst_data


def draw_views(
    session: ImageSession,
    masks: Any,
    x: float | None = None,
    y: float | None = None,
    threshold: float = WINDOW_THRESHOLD,
    scale: int | None = None,
    full: bool = True,
) -> DrawViews:
    """Everything the Draw tab shows for the drawn instance ``masks`` ``[N, H, W]``: their ideal maps, the window at
    pixel (x, y) (default: the first instance's centre) assembled from them, k = 1 against the model's k, and the
    model's learned maps beside the ideal ones with each instance's IoU (paper, Sec. 3 and Fig. 1).  With
    ``full=False`` only the instances and their ideal maps (the editor's live preview, one stroke at a time);
    ``window``, ``k_compare`` and ``learned`` are then None."""
    from ifcn_viz.viz.inspect import instances_view, iou_table
    from ifcn_viz.viz.maps import ideal_vs_learned, k_comparison, score_map_mosaic
    from ifcn_viz.viz.palette import stack, title_panel
    from ifcn_viz.viz.window import window_view

    ms = check_masks(session, masks)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    p = session.predictor
    ia = ideal_at_scale(session, ms, scale)
    grid, sm = ia.grid, session.scales[ia.scale]
    learned = session.grid(ia.scale)
    valid = [n for n in range(len(ms)) if ia.centers[n, 0] >= 0]
    if x is None or y is None:
        cy, cx = (int(v) for v in ia.centers[valid[0]]) if valid else learned.cell_of_pixel(0, 0)
    else:
        x, y = check_pixel(session, x, y)
        cy, cx = grid.cell_of_pixel(x, y)
    win = grid.window(cy, cx)
    ch, cw = grid.cell_size
    centers_px = [((c[1] + 0.5) * cw, (c[0] + 0.5) * ch) if c[0] >= 0 else None for c in ia.centers]
    inst = instances_view(session.image, ms, centers_px)  # the image at (0, 0): a click is an original pixel
    hf, wf = sm.feature_hw
    ideal_img = score_map_mosaic(
        grid.maps.score_maps, p.k, session.image, (cy, cx, p.m), probs=True, cell_px=_cell_px((hf, wf), 220),
        stride=sm.stride, factor=sm.factor,
        title=f"ideal k x k = {p.k * p.k} maps of your instances at scale {ia.scale} (window at cell ({cy}, {cx}) "
        "outlined; thick: the cells each sub-window copies)",
    )  # fmt: skip
    lv = session.levels[ia.scale]
    data = {
        **session.summary(), "scale": ia.scale, "shorter_side": sm.shorter_side,
        "window_px": round(p.m * sm.stride / sm.factor, 1), "serves_objects_px": [round(v, 1) for v in lv.objects],
        "k": p.k, "m": p.m, "stride": sm.stride, "threshold": threshold, "window_center": [cy, cx],
        "pixel": None if x is None else [int(x), int(y)],
        "window": {k_: v_ for k_, v_ in window_data(session, win, 0, 0, threshold).items() if k_ != "pixel"},
    }  # fmt: skip
    if not full:
        return DrawViews(inst, ideal_img, None, None, None, data)  # type: ignore[arg-type]
    window_img = window_view(session.image, win, grid.maps.score_maps, threshold)
    kc = k_comparison(ia.masks_scaled, sm.stride, p.m, ks=(1, p.k) if p.k != 1 else (1, 5), image=ia.image_scaled)
    rows, inst_data = _instance_ious(session, ms, ia, learned, threshold)
    center = (int(ia.centers[valid[0], 0]), int(ia.centers[valid[0], 1])) if valid else (cy, cx)
    ivl = ideal_vs_learned(grid, learned, center=center, image=session.image, cell_px=_cell_px((hf, wf), 110))
    table = iou_table(rows, ["ideal window", "learned window", "ideal, k = 1", f"ideal, k = {p.k}"])
    note = (f"IoU with your drawing of the window at each instance's centre cell, pasted as the proposals are "
            f"(p >= {threshold:g}); last two: the k = 1 / k = {p.k} panels below")  # fmt: skip
    learned_img = stack([ivl, title_panel(table, note, size=12)], axis=0, gap=8)
    data["instances"] = inst_data
    return DrawViews(inst, ideal_img, window_img, kc, learned_img, data)


def draw_window_view(
    session: ImageSession, masks: Any, x: float, y: float, threshold: float = WINDOW_THRESHOLD, scale: int | None = None
) -> np.ndarray:
    """The window under pixel (x, y) assembled from the drawn instances' ideal maps, drawn by the window view
    (on the image | assembled | pasted | its source maps); what a click on *your instances* shows."""
    from ifcn_viz.viz.window import window_view

    ms = check_masks(session, masks)
    x, y = check_pixel(session, x, y)
    grid = ideal_at_scale(session, ms, scale).grid
    return window_view(session.image, grid.window(*grid.cell_of_pixel(x, y)), grid.maps.score_maps, threshold)


# ---------------------------------------------------------------------------------------------- Inspect


@dataclass
class InspectViews:
    funnel: np.ndarray  # the funnel chart
    missed: np.ndarray | None  # the ground truth found / lost (None without ground truth)
    objectness: np.ndarray  # objectness histograms (every window; the ranked ones, positive vs negative)
    logits: np.ndarray  # the score-map logit histogram of one scale
    nms: np.ndarray  # NMS at ``step``
    data: dict[str, Any]
    trace: Proposals  # the candidates' NMS trace (no masks), for stepping


def _trace_only(c: Any) -> Proposals:
    """The candidates' NMS trace wrapped as (mask-less) Proposals for ``nms_steps_view``, without pasting."""
    h, w = c.image_hw
    z = np.zeros((0, 4), np.float32)
    return Proposals(np.zeros((0, h, w), bool), z, np.zeros(0, np.float32), np.zeros(0, np.int64),
                     np.zeros((0, 2), np.int64), z, list(c.nms_trace))  # fmt: skip


def nms_view(session: ImageSession, trace: Proposals, step: int, nms_iou: float) -> np.ndarray:
    from ifcn_viz.viz.proposals import nms_steps_view

    n = min(NMS_MAX_STEPS, len(trace.nms_trace))
    if n == 0:
        raise ValueError("no candidate has a non-empty mask: lower the mask threshold")
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 0 <= step < n:
        raise ValueError(f"step must be an integer in 0..{n - 1}, got {step!r}")
    return nms_steps_view(session.image, trace, int(step), max_steps=NMS_MAX_STEPS, nms_iou=nms_iou)


def inspect(
    session: ImageSession,
    top_n: int = TOP_N,
    mask_threshold: float = MASK_THRESHOLD,
    nms_iou: float = NMS_IOU,
    scale: int | None = None,
    use_gt: bool = True,
    step: int = 0,
    iou: float = FOUND_IOU,
) -> InspectViews:
    """Why the proposals are what they are: the funnel (paper, Sec. 3.3's stages, counted per scale; with the
    session's known instances, recall at each stage and where each missed object was lost), the NMS steps, and
    histograms of objectness and of the score-map logits (``scale``: which scale's logits; default the middle)."""
    from ifcn_viz.inference.funnel import proposal_funnel
    from ifcn_viz.viz.inspect import funnel_chart, logit_histogram, missed_objects_view, objectness_histogram
    from ifcn_viz.viz.palette import stack

    top_n, thr, nms = check_proposal_params(top_n, mask_threshold, nms_iou)
    p = session.predictor
    gt = session.gt_masks if use_gt else None
    funnel = proposal_funnel(p, gt, iou=iou, every_window=False, top_n=top_n, nms_iou=nms, mask_threshold=thr,
                             pre_nms_top_k=EXPLORE_PRE_NMS_TOP_K, maps=session.maps)  # fmt: skip
    c = funnel.candidates
    labels = [f"{i}: {lv.shorter_side} px, objects ~{lv.objects[0]:.0f}-{lv.objects[1]:.0f} px"
              for i, lv in enumerate(session.levels)]  # fmt: skip
    chart = funnel_chart(funnel, labels)
    missed = missed_objects_view(session.image, gt, funnel) if gt is not None and len(gt) else None
    every = torch.cat([torch.sigmoid(sm.objectness.flatten()) for sm in session.scales]).numpy()
    scores = c.scores.numpy()
    pos = funnel.positive_ranks() if gt is not None else None
    obj = stack([objectness_histogram(scores, pos, every, width=460),
                 objectness_histogram(scores, pos, zoom=True, width=460)], axis=1, gap=8)  # fmt: skip
    si = resolve_scale(session, scale)
    sm = session.scales[si]
    logits = logit_histogram(sm.score_maps, thr, p.fill,
                             title=f"score-map logits at scale {si} ({sm.shorter_side} px)")  # fmt: skip
    trace = _trace_only(c)
    nms_img = nms_view(session, trace, step, nms) if trace.nms_trace else chart
    data = {
        **session.summary(), "funnel": funnel.to_dict(), "ground_truth": session.gt_source if gt is not None else None,
        "scale_labels": labels, "nms_steps": min(NMS_MAX_STEPS, len(trace.nms_trace)),
        "nms": [{"candidate": st.candidate, "kept": st.kept, "suppressed_by": st.suppressed_by,
                 "iou": None if st.iou is None else round(st.iou, 4), "score": round(st.score, 5),
                 "box": [round(v, 1) for v in st.box]} for st in trace.nms_trace[:NMS_MAX_STEPS]],
        "objectness": {"ranked": [round(float(v), 5) for v in scores],
                       "positive": None if pos is None else [bool(v) for v in pos]},
        "logits": {"scale": si, "fill": p.fill, "percentiles": {
            f"p{q}": round(float(np.percentile(sm.score_maps.numpy(), q)), 4) for q in (1, 25, 50, 75, 99)}},
    }  # fmt: skip
    return InspectViews(chart, missed, obj, logits, nms_img, data, trace)
