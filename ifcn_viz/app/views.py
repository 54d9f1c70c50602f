"""The app's views as pure functions: session + parameters in, RGB uint8 pictures and JSON-ready dicts out.

No Gradio here.  The page's event handlers (``handlers.py``, adding gr.State, gr.Warning and the click's
``evt.index``) and the API endpoints (``api.py``, for ``gradio_client``) both call these; tests call them directly.
Coordinates are original-image pixels ``(x, y)``; arrays index ``[y, x]``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ifcn_viz.app.session import DISPLAY_MAX_SIDE, ImageSession
from ifcn_viz.inference.predictor import Predictor
from ifcn_viz.inference.types import Proposals, WindowResult
from ifcn_viz.inference.window import WindowGrid

EXPLORE_PRE_NMS_TOP_K = 300
"""Candidates kept before NMS in the explorer (ours; the Predictor's default is the preset's, e.g. 1000): the
top-N shown (at most 50) come from the best few hundred windows, and the page stays interactive on a CPU."""

MAX_TOP_N = 50

_SKIMAGE_EXAMPLES = {"coins": "coins", "astronaut": "astronaut", "coffee": "coffee", "chelsea (cat)": "chelsea"}
SYNTHETIC_SEEDS = (1, 2, 3)


def example_names() -> list[str]:
    """Offline examples: synthetic scenes with touching objects, then scikit-image's bundled photographs."""
    return [f"synthetic scene {s} (touching objects)" for s in SYNTHETIC_SEEDS] + [
        f"photo: {n}" for n in _SKIMAGE_EXAMPLES
    ]


def example_image(name: str) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 image of an example from :func:`example_names`."""
    if name.startswith("synthetic scene "):
        from ifcn_viz.data.synthetic import generate_scene

        seed = int(name.split()[2])
        return generate_scene(seed, size=(320, 384))[0]
    if name.startswith("photo: ") and name[7:] in _SKIMAGE_EXAMPLES:
        import skimage.data

        img = np.asarray(getattr(skimage.data, _SKIMAGE_EXAMPLES[name[7:]])())
        return np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img[:, :, :3])
    raise ValueError(f"unknown example {name!r}; choose one of {example_names()}")


def example_masks(name: str) -> np.ndarray | None:
    """The true instance masks ``[N, H, W]`` of a synthetic example (its ground truth), None for a photograph."""
    if name.startswith("synthetic scene "):
        from ifcn_viz.data.synthetic import generate_scene

        return np.asarray(generate_scene(int(name.split()[2]), size=(320, 384))[1], dtype=bool)
    example_image(name)  # an unknown name raises
    return None


# ---------------------------------------------------------------------------------------------- parameters


def resolve_scale(predictor: Predictor, scale: int | None) -> int:
    """``None`` or ``-1`` -> the predictor's default (middle) scale; otherwise a checked index."""
    n = len(predictor.scales) or len(predictor.infer.scales)
    if scale is None or scale == -1:
        return predictor.default_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or not 0 <= scale < n:
        raise ValueError(f"scale must be -1 (default) or an index 0..{n - 1}, got {scale!r}")
    return int(scale)


def scale_choices(predictor: Predictor) -> list[tuple[str, int]]:
    """Dropdown choices: ``(label, index)`` per scale of the current image, each with the object sizes it serves
    (``predictor.levels``: objects whose side lands in the window's positive band at that scale).  Before an image
    is set, the fixed pyramid's sides; an adaptive pyramid's scales depend on the image, so none are listed yet."""
    if predictor.image is not None and predictor.scales:
        return [
            (f"{i}: shorter side {lv.shorter_side} px, serves objects ~{lv.objects[0]:.0f}-{lv.objects[1]:.0f} px", i)
            for i, lv in enumerate(predictor.levels)
        ]
    if predictor.infer.pyramid != "fixed":
        return []
    win = predictor.m * predictor.stride
    return [
        (f"{i}: shorter side {s} px (windows ~{win} px at that size)", i) for i, s in enumerate(predictor.infer.scales)
    ]


def check_proposal_params(top_n: int, mask_threshold: float, nms_iou: float) -> tuple[int, float, float]:
    if isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer, float)) or not 1 <= top_n <= MAX_TOP_N:
        raise ValueError(f"top_n must be an integer in 1..{MAX_TOP_N}, got {top_n!r}")
    if not isinstance(mask_threshold, (int, float)) or not 0.0 < float(mask_threshold) < 1.0:
        raise ValueError(f"mask_threshold must be in (0, 1), got {mask_threshold!r}")
    if not isinstance(nms_iou, (int, float)) or not 0.0 < float(nms_iou) <= 1.0:
        raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou!r}")
    return int(top_n), float(mask_threshold), float(nms_iou)


def check_pixel(session: ImageSession, x: float, y: float) -> tuple[float, float]:
    h, w = session.hw
    for name, v in (("x", x), ("y", y)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(float(v)):
            raise ValueError(f"{name} must be a finite number of pixels, got {v!r}")
    if not (0 <= x < w and 0 <= y < h):
        raise ValueError(f"pixel (x={x}, y={y}) is outside the image ({w} x {h}): click inside it")
    return float(x), float(y)


def display_to_original(session: ImageSession, x: float, y: float) -> tuple[float, float]:
    """A click on the displayed image (possibly downscaled) -> original pixel, clamped into the image."""
    s = session.display_scale
    h, w = session.hw
    return min(max(x / s, 0.0), w - 1.0), min(max(y / s, 0.0), h - 1.0)


def display_image(session: ImageSession) -> np.ndarray:
    """The image as shown on the page (at most :data:`DISPLAY_MAX_SIDE` a side)."""
    s = session.display_scale
    if s == 1.0:
        return session.image
    from ifcn_viz.viz.palette import resize

    h, w = session.hw
    return resize(session.image, (max(1, round(h * s)), max(1, round(w * s))))


# ---------------------------------------------------------------------------------------------- Explore


@dataclass
class ExploreViews:
    mosaic: np.ndarray  # k x k score maps at one scale, under the image
    objectness: np.ndarray  # objectness heat map with the top windows
    proposals: np.ndarray  # the top-N proposals over the image
    data: dict[str, Any] = field(default_factory=dict)


def proposals_data(session: ImageSession, props: Proposals, top_n: int) -> dict[str, Any]:
    n = min(top_n, len(props))
    return {
        **session.summary(),
        "count": n,
        "boxes": props.boxes[:n].round(1).tolist(),
        "scores": [round(float(s), 4) for s in props.scores[:n]],
        "scale_index": [int(s) for s in props.scale_index[:n]],
        "centers": props.centers[:n].tolist(),
        "mask_areas": [int(a) for a in props.masks[:n].sum(axis=(1, 2))],
    }


def proposals(
    session: ImageSession, top_n: int = 10, mask_threshold: float = 0.4, nms_iou: float = 0.8, scale: int | None = None
) -> tuple[Proposals, dict[str, Any]]:
    """Top-N proposals from all scales (``scale`` None / -1) or one scale (paper, Sec. 3.3)."""
    top_n, thr, iou = check_proposal_params(top_n, mask_threshold, nms_iou)
    p = session.predictor
    scales = None if scale is None or scale == -1 else [resolve_scale(p, scale)]
    props = p.proposals(
        top_n=top_n, nms_iou=iou, mask_threshold=thr, scales=scales, pre_nms_top_k=EXPLORE_PRE_NMS_TOP_K
    )
    return props, proposals_data(session, props, top_n)


def explore(
    session: ImageSession, top_n: int = 10, mask_threshold: float = 0.4, nms_iou: float = 0.8, scale: int | None = None
) -> ExploreViews:
    """Everything the Explore tab shows for the session's image: mosaic, objectness, proposals."""
    from ifcn_viz.viz.maps import objectness_overlay
    from ifcn_viz.viz.proposals import proposals_panel

    p = session.predictor
    si = resolve_scale(p, scale)
    sm = p.scales[si]
    props, data = proposals(session, top_n, mask_threshold, nms_iou, scale)
    img = display_image(session)
    mosaic = explore_mosaic(session, si)
    shown = WindowGrid(dataclasses.replace(sm, image_hw=tuple(img.shape[:2])), p.m, p.fill)  # on the shown image
    obj = objectness_overlay(img, shown, top=OBJECTNESS_TOP)
    panel = proposals_panel(session.image, props, top_n)
    fy, fx = sm.feature_hw
    data.update(scale=si, feature_hw=[fy, fx], k=p.k, m=p.m, stride=sm.stride)
    return ExploreViews(mosaic, obj, panel, data)


MOSAIC_MAP_PX = 240
"""Each map of the Explore mosaic is about this many pixels on its longer side: k = 5 maps fill the page's width."""


def _mosaic_args(session: ImageSession, si: int) -> tuple[int, str]:
    p = session.predictor
    sm = p.scales[si]
    cell_px = max(1, round(MOSAIC_MAP_PX / max(sm.feature_hw)))
    title = f"the k x k = {p.k * p.k} instance-sensitive score maps at scale {si} (shorter side {sm.shorter_side} px)"
    return cell_px, title


def explore_mosaic(session: ImageSession, si: int, xy: tuple[float, float] | None = None) -> np.ndarray:
    """The Explore mosaic of scale ``si`` (maps about :data:`MOSAIC_MAP_PX` px each); with ``xy`` (an original
    pixel), the window centred there outlined on every map, thick where its sub-window copies from that map."""
    from ifcn_viz.viz.maps import score_map_mosaic

    p = session.predictor
    sm = p.scales[si]
    img = display_image(session)
    f = sm.factor * session.display_scale**-1  # resized / displayed
    cell_px, title = _mosaic_args(session, si)
    window = None
    if xy is not None:
        cy, cx = p.grid(si).cell_of_pixel(*check_pixel(session, *xy))
        window = (cy, cx, p.m)
    return score_map_mosaic(sm.score_maps, p.k, img, window, stride=sm.stride, factor=f, cell_px=cell_px, title=title)


def mosaic_data(session: ImageSession, si: int) -> dict[str, Any]:
    """The numbers of the mosaic: per map its min / mean / max logit, and the colour scale's ends."""
    from ifcn_viz.viz.palette import logit_range

    p = session.predictor
    s = p.scales[si].score_maps
    rng = logit_range(s)
    return {**session.summary(), "scale": si, "k": p.k, "feature_hw": list(p.scales[si].feature_hw),
            "color_range": [rng.lo, rng.hi],
            "maps": [{"channel": c, "min": round(float(s[c].min()), 4), "mean": round(float(s[c].mean()), 4),
                      "max": round(float(s[c].max()), 4)} for c in range(s.shape[0])]}  # fmt: skip


OBJECTNESS_TOP = 5
"""How many objectness peaks the Explore overlay marks (and its numbers list)."""


def objectness_data(session: ImageSession, si: int, top: int = OBJECTNESS_TOP) -> dict[str, Any]:
    """The numbers of the Explore objectness overlay at scale ``si``: the map's logit and probability range, how
    many windows score >= 0.5, and the ``top`` peaks it marks (same rule, :func:`ifcn_viz.viz.maps.top_windows`)
    with their cells, scores and windows in original pixels."""
    from ifcn_viz.viz.maps import top_windows

    p = session.predictor
    sm = p.scales[si]
    o = sm.objectness
    prob = torch.sigmoid(o)
    grid = p.grid(si)
    peaks = []
    for rank, (cy, cx, pr) in enumerate(top_windows(o, top)):
        box = grid.boxes(torch.tensor([cy]), torch.tensor([cx]))[0]
        peaks.append({"rank": rank + 1, "cell": [int(cy), int(cx)], "objectness": round(float(pr), 5),
                      "logit": round(float(o[cy, cx]), 4),
                      "window_xyxy": [round(float(v), 1) for v in box.tolist()]})  # fmt: skip
    return {**session.summary(), "scale": si, "shorter_side": sm.shorter_side, "feature_hw": list(sm.feature_hw),
            "windows": int(o.numel()), "windows_at_least_0.5": int((prob >= 0.5).sum()),
            "logit_min_max": [round(float(o.min()), 4), round(float(o.max()), 4)],
            "objectness_mean": round(float(prob.mean()), 5),
            "peaks": peaks, "note": "peaks: local maxima (5 x 5 cells) of the objectness, best first; "
            "window_xyxy in original-image pixels (exclusive ends)"}  # fmt: skip


def mosaic_channel_at(session: ImageSession, si: int, mx: float, my: float) -> int | None:
    """The map under a click (mx, my) on :func:`explore_mosaic`'s picture, or None between maps."""
    from ifcn_viz.viz.maps import mosaic_layout

    cell_px, title = _mosaic_args(session, si)
    hit = mosaic_layout(session.predictor.scales[si].score_maps, cell_px, title=title).locate(int(mx), int(my))
    return None if hit is None else int(hit[0])


# ---------------------------------------------------------------------------------------------- windows


@dataclass
class WindowViews:
    marked: np.ndarray  # the displayed image with the window and its k x k grid drawn on it
    view: np.ndarray  # window on image | assembled mask | pasted mask, and the source maps
    data: dict[str, Any]
    window: WindowResult


def window_data(session: ImageSession, w: WindowResult, x: float, y: float, threshold: float) -> dict[str, Any]:
    m = w.m
    return {
        **session.summary(),
        "pixel": [int(x), int(y)],
        "scale": w.scale_index,
        "center": list(w.center),
        "box": [round(float(v), 2) for v in w.box],
        "objectness": round(w.objectness, 5),
        "center_logit": round(float(w.logits[m // 2, m // 2]), 5),
        "mean_prob": round(float(w.probs.mean()), 5),
        "cells_on": int((w.probs >= threshold).sum()),
        "k": w.k,
        "m": m,
    }


def window_at(
    session: ImageSession, x: float, y: float, scale: int | None = None, threshold: float = 0.5, maps: bool = True
) -> WindowViews:
    """The window centred at the feature cell under original pixel (x, y): assembled from the cached maps
    (no backbone run) and drawn: on the image, as an m x m mask, pasted back, and (``maps``) its source maps."""
    from ifcn_viz.viz.window import window_on_image, window_view

    x, y = check_pixel(session, x, y)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    p = session.predictor
    si = resolve_scale(p, scale)
    w = p.window(x, y, si)
    marked = window_on_image(session.image, w, max_side=DISPLAY_MAX_SIDE)
    view = window_view(session.image, w, p.scales[si].score_maps if maps else None, threshold)
    return WindowViews(marked, view, window_data(session, w, x, y, threshold), w)


def assembly_frames(session: ImageSession, x: float, y: float, scale: int | None = None) -> list[np.ndarray]:
    """The k^2 + 2 frames of the window under (x, y) being assembled, one sub-window at a time (Fig. 2)."""
    from ifcn_viz.viz.animate import assembly_frames as frames

    x, y = check_pixel(session, x, y)
    p = session.predictor
    si = resolve_scale(p, scale)
    grid = p.grid(si)
    return frames(grid, grid.cell_of_pixel(x, y))


def frame_caption(k: int, step: int) -> str:
    n = k * k
    if step == 0:
        return "Step 0: the empty m x m window."
    if step <= n:
        a, b = divmod(step - 1, k)
        return (
            f"Step {step} of {n}: sub-window (a={a}, b={b}) copies its cells from score map {a}*{k}+{b} = {step - 1} "
            "at the same positions: no parameters, only copying (Sec. 3.1)."
        )
    return f"Done: all {n} sub-windows copied; the sigmoid of this window is the instance mask."


# ---------------------------------------------------------------------------------------------- provenance


def provenance_at(
    session: ImageSession, x: float, y: float, scale: int | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Every window covering the pixel (x, y) at one scale, and which score map each reads there."""
    from ifcn_viz.viz.provenance import provenance_view

    x, y = check_pixel(session, x, y)
    p = session.predictor
    si = resolve_scale(p, scale)
    prov = p.provenance(x, y, si)
    view = provenance_view(session.image, prov)
    channels = sorted({e.channel for e in prov.entries})
    data = {
        **session.summary(),
        "pixel": list(prov.pixel),
        "scale": si,
        "feature_cell": list(prov.feature_cell),
        "windows": len(prov.entries),
        "channels_read": channels,
        "windows_in": int(sum(e.value >= 0 for e in prov.entries)),
        "entries": [[e.center[0], e.center[1], e.channel, round(e.value, 4)] for e in prov.entries],
    }
    return view, data


# ---------------------------------------------------------------------------------------------- compare


def compare_scene(
    predictor: Predictor, seed: int = 1, size: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """A synthetic scene with ground truth: ``(image, ideal vs learned maps, k = 1 vs k = 5, data)``.

    The learned maps are the model's at the scene's own size (factor 1); the ideal ones are what a perfect
    InstanceFCN would output for the true masks (``ifcn_viz.model.ideal``), shown at the first instance's centre.
    """
    from ifcn_viz.data.synthetic import generate_scene
    from ifcn_viz.model.ideal import ideal_score_maps
    from ifcn_viz.viz.maps import ideal_vs_learned, k_comparison

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**31:
        raise ValueError(f"seed must be an integer in [0, 2^31), got {seed!r}")
    if not isinstance(size, (int, np.integer)) or not 64 <= size <= 512:
        raise ValueError(f"size must be an integer in 64..512, got {size!r}")
    image, masks = generate_scene(int(seed), size=(int(size), int(size)))
    model, k, m = predictor.model, predictor.k, predictor.m
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255.0).to(predictor.device)  # (1, 3, H, W)
    with torch.inference_mode():
        out = model(x)
    learned = out.score_maps[0].float().cpu()  # (k*k, H', W')
    stride = int(out.stride)
    ideal = ideal_score_maps(masks, k, m, stride)
    hw = tuple(learned.shape[1:])
    ideal_maps = ideal.score_maps[:, : hw[0], : hw[1]]  # ideal maps are ceil(H / s); the model's floor(H / s)
    cy, cx = (int(v) for v in ideal.centers[0]) if len(masks) else (hw[0] // 2, hw[1] // 2)
    cy, cx = min(cy, hw[0] - 1), min(cx, hw[1] - 1)
    ivl = ideal_vs_learned(
        WindowGrid.from_maps(ideal_maps, m, stride, image_hw=image.shape[:2]),
        WindowGrid.from_maps(learned, m, stride, image_hw=image.shape[:2], fill=predictor.fill),
        center=(cy, cx),
        image=image,
    )
    kc = k_comparison(masks, stride, m, ks=(1, k) if k != 1 else (1, 5), image=image)
    data = {"seed": int(seed), "size": int(size), "instances": int(len(masks)), "center": [cy, cx], "k": k, "m": m}
    return image, ivl, kc, data


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


def best_scale_for(predictor: Predictor, masks: np.ndarray) -> int:
    """The scale whose windows best fit the drawn objects: the one whose served object sizes
    (``predictor.levels``, the sides inside the window's positive band) are centred nearest, in log size, on the
    median object side (the longer side of each mask's tight box).  The paper runs every scale and lets objectness
    choose (Sec. 3.3); for ideal maps we need one, and this is ours."""
    sides = []
    for m in masks:
        ys, xs = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
        if ys.size:
            sides.append(max(ys[-1] - ys[0] + 1, xs[-1] - xs[0] + 1))
    if not sides:
        return predictor.default_scale
    s = float(np.median(sides))
    levels = predictor.levels
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
    si = best_scale_for(p, masks) if scale is None or scale == -1 else resolve_scale(p, scale)
    sm = p.scales[si]
    rh, rw = sm.resized_hw
    scaled = resize_masks_nearest(masks, (rh, rw))  # one mask at a time (ifcn_viz.app.instances)
    ideal = ideal_score_maps(scaled, p.k, p.m, sm.stride)
    hf, wf = sm.feature_hw
    maps = torch.full((p.k * p.k, hf, wf), -10.0)
    obj = torch.full((hf, wf), -10.0)
    ch, cw = min(hf, ideal.score_maps.shape[1]), min(wf, ideal.score_maps.shape[2])
    maps[:, :ch, :cw] = ideal.score_maps[:, :ch, :cw]
    obj[:ch, :cw] = ideal.objectness[0, :ch, :cw]
    grid = WindowGrid(dataclasses.replace(sm, score_maps=maps, objectness=obj), p.m, -10.0)
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


def draw_views(
    session: ImageSession,
    masks: Any,
    x: float | None = None,
    y: float | None = None,
    threshold: float = 0.5,
    scale: int | None = None,
    full: bool = True,
) -> DrawViews:
    """Everything the Draw tab shows for the drawn instance ``masks`` ``[N, H, W]``: their ideal maps, the window at
    pixel (x, y) (default: the first instance's centre) assembled from them, k = 1 against the model's k, and the
    model's learned maps beside the ideal ones with each instance's IoU (paper, Sec. 3 and Fig. 1).  With
    ``full=False`` only the instances and their ideal maps (the editor's live preview, one stroke at a time);
    ``window``, ``k_compare`` and ``learned`` are then None."""
    from ifcn_viz.inference.window import window_mask
    from ifcn_viz.viz.ideal import ideal_reassembly, mask_iou
    from ifcn_viz.viz.inspect import instances_view, iou_table
    from ifcn_viz.viz.maps import ideal_vs_learned, k_comparison, score_map_mosaic
    from ifcn_viz.viz.palette import stack, title_panel
    from ifcn_viz.viz.window import window_view

    ms = check_masks(session, masks)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    p = session.predictor
    ia = ideal_at_scale(session, ms, scale)
    grid, sm = ia.grid, p.scales[ia.scale]
    learned = p.grid(ia.scale)
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
    lv = p.levels[ia.scale]
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
    k1 = ideal_reassembly(ia.masks_scaled, 1, p.m, sm.stride, threshold).ious
    kk = ideal_reassembly(ia.masks_scaled, p.k, p.m, sm.stride, threshold).ious
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
    center = (int(ia.centers[valid[0], 0]), int(ia.centers[valid[0], 1])) if valid else (cy, cx)
    ivl = ideal_vs_learned(grid, learned, center=center, image=session.image, cell_px=_cell_px((hf, wf), 110))
    table = iou_table(rows, ["ideal window", "learned window", "ideal, k = 1", f"ideal, k = {p.k}"])
    note = (f"IoU with your drawing of the window at each instance's centre cell, pasted as the proposals are "
            f"(p >= {threshold:g}); last two: the k = 1 / k = {p.k} panels below")  # fmt: skip
    learned_img = stack([ivl, title_panel(table, note, size=12)], axis=0, gap=8)
    data["instances"] = inst_data
    return DrawViews(inst, ideal_img, window_img, kc, learned_img, data)


def draw_window_view(
    session: ImageSession, masks: Any, x: float, y: float, threshold: float = 0.5, scale: int | None = None
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


NMS_MAX_STEPS = 30


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
    top_n: int = 10,
    mask_threshold: float = 0.4,
    nms_iou: float = 0.8,
    scale: int | None = None,
    use_gt: bool = True,
    step: int = 0,
    iou: float = 0.5,
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
    funnel = proposal_funnel(p, gt, iou=iou, every_window=False, top_n=top_n, nms_iou=nms,
                             mask_threshold=thr, pre_nms_top_k=EXPLORE_PRE_NMS_TOP_K)  # fmt: skip
    c = funnel.candidates
    labels = [f"{i}: {lv.shorter_side} px, objects ~{lv.objects[0]:.0f}-{lv.objects[1]:.0f} px"
              for i, lv in enumerate(p.levels)]  # fmt: skip
    chart = funnel_chart(funnel, labels)
    missed = missed_objects_view(session.image, gt, funnel) if gt is not None and len(gt) else None
    every = torch.cat([torch.sigmoid(sm.objectness.flatten()) for sm in p.scales]).numpy()
    scores = c.scores.numpy()
    pos = funnel.positive_ranks() if gt is not None else None
    obj = stack([objectness_histogram(scores, pos, every, width=460),
                 objectness_histogram(scores, pos, zoom=True, width=460)], axis=1, gap=8)  # fmt: skip
    si = resolve_scale(p, scale)
    logits = logit_histogram(p.scales[si].score_maps, thr, p.fill,
                             title=f"score-map logits at scale {si} ({p.scales[si].shorter_side} px)")  # fmt: skip
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
            f"p{q}": round(float(np.percentile(p.scales[si].score_maps.numpy(), q)), 4) for q in (1, 25, 50, 75, 99)}},
    }  # fmt: skip
    return InspectViews(chart, missed, obj, logits, nms_img, data, trace)


# ---------------------------------------------------------------------------------------------- one map, large


def map_view(
    session: ImageSession, channel: int, scale: int | None = None, x: float | None = None, y: float | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Score map ``channel`` of one scale, large, with the window under pixel (x, y) (if given) outlined and the
    cells its sub-window copies from this map drawn thick."""
    from ifcn_viz.viz.inspect import single_map_view

    p = session.predictor
    si = resolve_scale(p, scale)
    sm = p.scales[si]
    n = p.k * p.k
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < n:
        raise ValueError(f"channel must be an integer in 0..{n - 1}, got {channel!r}")
    window = None
    if x is not None and y is not None:
        x, y = check_pixel(session, x, y)
        cy, cx = p.grid(si).cell_of_pixel(x, y)
        window = (cy, cx, p.m)
    img = single_map_view(sm.score_maps, int(channel), session.image, window, sm.stride, sm.factor)
    vals = sm.score_maps[int(channel)].numpy()
    a, b = divmod(int(channel), p.k)
    data = {**session.summary(), "scale": si, "channel": int(channel), "a": a, "b": b,
            "window_center": None if window is None else [window[0], window[1]],
            "min": round(float(vals.min()), 4), "max": round(float(vals.max()), 4),
            "mean": round(float(vals.mean()), 4)}  # fmt: skip
    return img, data
