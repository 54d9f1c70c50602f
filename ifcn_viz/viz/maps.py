"""The k^2 score maps as a mosaic, objectness over the image, ideal vs learned maps, and k = 1 vs k = 5.

The mosaic lays map ``a * k + b`` at grid row a, column b -- the relative position it encodes (paper, Fig. 1:
the top-left map answers "is this pixel at the top-left of an instance?").  With a window given, each map shows
the window's outline and, solid, exactly the cells its sub-window (a, b) copies (rows/cols from ``bin_edges``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from ifcn_viz.config import WINDOW_THRESHOLD
from ifcn_viz.inference.window import WindowGrid, copied_region
from ifcn_viz.viz.ideal import ideal_reassembly
from ifcn_viz.viz.palette import (
    INK,
    LOGIT_CMAP,
    PROB_CMAP,
    LogitScale,
    apply_colormap,
    as_numpy,
    blend,
    colormap_lut,
    draw_bin_grid,
    draw_label,
    draw_window_frame,
    logit_colorbar,
    logit_range,
    mask_edges,
    pad,
    place_label,
    prob_colorbar,
    rank_color,
    resize,
    stack,
    thicken,
    title_panel,
    to_rgb_uint8,
    upsample,
)


def _maps_k(score_maps: object, k: int | None) -> tuple[np.ndarray, int]:
    s = as_numpy(score_maps, "score_maps")
    if s.ndim == 4 and s.shape[0] == 1:
        s = s[0]
    if s.ndim != 3:
        raise ValueError(f"score_maps must be (k*k, H', W') (or (1, k*k, H', W')), got shape {s.shape}")
    kk = round(s.shape[0] ** 0.5)
    if kk * kk != s.shape[0] or (k is not None and k != kk):
        raise ValueError(f"score_maps has {s.shape[0]} channels; expected k*k (k={k if k is not None else '?'})")
    return s, kk


@dataclass(frozen=True)
class MosaicLayout:
    """Where each map sits in a mosaic image: map ``c`` occupies ``origins[c] + (y * cell_px, x * cell_px)``."""

    k: int
    map_hw: tuple[int, int]
    cell_px: int
    gap: int
    top: int  # the mosaic's grid starts this many pixels down (title strip)

    def origin(self, a: int, b: int) -> tuple[int, int]:
        h, w = self.map_hw
        return self.top + a * (h * self.cell_px + self.gap), b * (w * self.cell_px + self.gap)

    def locate(self, x: int, y: int) -> tuple[int, int, int] | None:
        """A click (x, y) on the mosaic -> (channel, cy, cx), or None between maps."""
        h, w = self.map_hw
        for a in range(self.k):
            for b in range(self.k):
                oy, ox = self.origin(a, b)
                cy, cx = (y - oy) // self.cell_px, (x - ox) // self.cell_px
                if 0 <= cy < h and 0 <= cx < w and y >= oy and x >= ox:
                    return a * self.k + b, cy, cx
        return None


def _default_cell_px(map_hw: tuple[int, int], target: int = 150) -> int:
    return max(1, round(target / max(map_hw)))


def _image_under_maps(image: object, map_hw: tuple[int, int], cell_px: int, stride: int, factor: float) -> np.ndarray:
    """The image in map-cell coordinates: cell (y, x) of the map covers original pixels ``[y s / f, (y+1) s / f)``."""
    img = to_rgb_uint8(image)
    h, w = map_hw
    py = np.minimum(((np.arange(h * cell_px) + 0.5) / cell_px * stride / factor).astype(int), img.shape[0] - 1)
    px = np.minimum(((np.arange(w * cell_px) + 0.5) / cell_px * stride / factor).astype(int), img.shape[1] - 1)
    grey = img.mean(axis=2).astype(np.uint8)[np.ix_(py, px)]
    return np.repeat(grey[:, :, None], 3, axis=2)


def score_map_mosaic(
    score_maps: Tensor | np.ndarray,
    k: int | None = None,
    image: object | None = None,
    window: tuple[int, int, int] | None = None,
    probs: bool = False,
    vmax: float | None = None,
    cell_px: int | None = None,
    stride: int = 8,
    factor: float = 1.0,
    image_alpha: float = 0.35,
    gap: int = 4,
    labels: bool = True,
    colorbar: bool = True,
    title: str | None = None,
    logit_scale: LogitScale | None = None,
) -> np.ndarray:
    """The k x k mosaic of score maps ``(k*k, H', W')``: map ``a*k + b`` at row a, column b; RGB uint8.

    ``probs=False`` shows logits on a diverging scale from the maps' own values (:func:`logit_range`: white at 0,
    each side to its own 99th percentile; ``vmax`` fixes it to ``[-vmax, vmax]``); ``probs=True`` shows sigmoid
    probabilities on viridis [0, 1].  One colour bar is shared by all maps.
    ``image`` (original resolution; ``stride`` / ``factor`` place it) is shown in grey under the maps.
    ``window=(cy, cx, m)`` outlines the whole window in every map and, thicker, the cells sub-window (a, b) copies
    in map (a, b).  Use :func:`mosaic_layout` for the pixel position of each map (e.g. to resolve clicks).
    ``logit_scale``: a given :class:`~ifcn_viz.viz.palette.LogitScale` (e.g. one shared by two mosaics).
    """
    s, k = _maps_k(score_maps, k)
    h, w = s.shape[1:]
    cell_px = cell_px or _default_cell_px((h, w))
    if probs:
        lut, lo, hi = colormap_lut(PROB_CMAP), 0.0, 1.0
        s = 1.0 / (1.0 + np.exp(-np.clip(s, -60, 60)))
        idx = np.clip((s - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)  # (k*k, H', W')
    else:
        lut = colormap_lut(LOGIT_CMAP)
        scale = logit_scale if logit_scale is not None else logit_range(s, vmax=vmax)
        idx = scale.index(s)  # (k*k, H', W')
    under = _image_under_maps(image, (h, w), cell_px, stride, factor) if image is not None else None
    mh, mw = h * cell_px, w * cell_px
    grid = np.full((k * mh + (k - 1) * gap, k * mw + (k - 1) * gap, 3), 255, dtype=np.uint8)
    for c in range(k * k):
        a, b = divmod(c, k)
        tile = upsample(lut[idx[c]], cell_px)
        if under is not None:
            tile = blend(tile, under, image_alpha)
        oy, ox = a * (mh + gap), b * (mw + gap)
        grid[oy : oy + mh, ox : ox + mw] = tile
    pil = Image.fromarray(grid)
    draw = ImageDraw.Draw(pil)
    if window is not None:
        cy, cx, m = window
        r = m // 2
        for c in range(k * k):
            a, b = divmod(c, k)
            oy, ox = a * (mh + gap), b * (mw + gap)
            wy0, wx0 = max(0, cy - r), max(0, cx - r)
            wy1, wx1 = min(h, cy + r + 1), min(w, cx + r + 1)
            if wy0 < wy1 and wx0 < wx1:
                box = (ox + wx0 * cell_px, oy + wy0 * cell_px, ox + wx1 * cell_px, oy + wy1 * cell_px)
                draw_window_frame(draw, box, (110, 110, 110))
            reg = copied_region(k, m, cy, cx, a, b, (h, w))
            if reg is not None:
                y0, y1, x0, x1 = reg
                box = (ox + x0 * cell_px, oy + y0 * cell_px, ox + x1 * cell_px, oy + y1 * cell_px)
                draw_window_frame(draw, box, INK, width=2 if cell_px >= 3 else 1)
    if labels:
        for c in range(k * k):
            a, b = divmod(c, k)
            draw_label(draw, (b * (mw + gap) + 2, a * (mh + gap) + 1), f"{c}", size=10)
    out = np.asarray(pil)
    if title:
        out = title_panel(out, title)
    if colorbar:
        width = max(160, min(out.shape[1], 360))
        bar = prob_colorbar(width) if probs else logit_colorbar(width, scale)
        out = stack([out, bar], axis=0, gap=4, align="center")
    return out


def mosaic_layout(
    score_maps: Tensor | np.ndarray, cell_px: int | None = None, gap: int = 4, title: str | None = None
) -> MosaicLayout:
    """The layout :func:`score_map_mosaic` uses for the same arguments (to map mosaic pixels back to cells)."""
    s, k = _maps_k(score_maps, None)
    hw = (int(s.shape[1]), int(s.shape[2]))
    from ifcn_viz.viz.palette import text_size

    top = text_size(title, 14)[1] + 8 if title else 0
    return MosaicLayout(k, hw, cell_px or _default_cell_px(hw), gap, top)


def top_windows(objectness: Tensor | np.ndarray, top: int = 5, radius: int = 2) -> list[tuple[int, int, float]]:
    """The ``top`` local maxima of an objectness map ``(H', W')`` (logits): ``[(cy, cx, probability)]``, best
    first.  A cell counts if it is the maximum of its ``(2 radius + 1)^2`` neighbourhood (so the marks spread over
    different objects instead of piling up on one peak)."""
    o = as_numpy(objectness, "objectness")
    if o.ndim == 3 and o.shape[0] == 1:
        o = o[0]
    if o.ndim != 2:
        raise ValueError(f"objectness must be (H', W'), got shape {o.shape}")
    t = torch.from_numpy(np.ascontiguousarray(o))[None, None]
    pooled = torch.nn.functional.max_pool2d(t, 2 * radius + 1, stride=1, padding=radius)[0, 0].numpy()
    ys, xs = np.nonzero(o >= pooled)
    order = np.argsort(-o[ys, xs], kind="stable")[:top]
    return [(int(ys[i]), int(xs[i]), float(1.0 / (1.0 + np.exp(-o[ys[i], xs[i]])))) for i in order]


def objectness_overlay(
    image: object,
    grid: WindowGrid,
    top: int = 5,
    windows: bool = True,
    alpha: float = 0.55,
    colorbar: bool = True,
) -> np.ndarray:
    """Objectness probability of one scale (``grid``, e.g. ``predictor.grid(scale)``) as a viridis heat map over
    the image (original resolution), with a colour bar.

    Each pixel shows the objectness of the feature cell under it (:meth:`WindowGrid.cell_of_pixel`'s rule).  The
    ``top`` local maxima are marked in the rank palette with their probability; with ``windows``, their m x m
    windows are outlined too (boxes from :meth:`WindowGrid.boxes`).
    """
    if not isinstance(grid, WindowGrid):
        raise TypeError(f"grid must be an ifcn_viz.inference.window.WindowGrid, got {type(grid).__name__}")
    img = to_rgb_uint8(image)
    o = grid.maps.objectness.numpy()
    H, W = img.shape[:2]
    if (H, W) != tuple(grid.image_hw):
        raise ValueError(
            f"image is {H}x{W} but the maps were computed for a {grid.image_hw[0]}x{grid.image_hw[1]} image"
        )
    p = 1.0 / (1.0 + np.exp(-np.clip(o, -60, 60)))
    fy, fx = grid.factors
    rows = np.minimum(((np.arange(H) + 0.5) * fy // grid.stride).astype(int), o.shape[0] - 1)
    cols = np.minimum(((np.arange(W) + 0.5) * fx // grid.stride).astype(int), o.shape[1] - 1)
    heat = colormap_lut(PROB_CMAP)[(p * 255 + 0.5).astype(np.uint8)[np.ix_(rows, cols)]]
    out = Image.fromarray(blend(img, heat, alpha))
    draw = ImageDraw.Draw(out)
    ch, cw = grid.cell_size
    placed: list[tuple[int, int, int, int]] = []
    for rank, (cy, cx, prob) in enumerate(top_windows(o, top)):
        col = rank_color(rank)
        if windows:
            box = grid.boxes(torch.tensor([cy]), torch.tensor([cx]))[0].tolist()
            draw_window_frame(draw, tuple(box), col)
        draw_window_frame(draw, (cx * cw, cy * ch, (cx + 1) * cw, (cy + 1) * ch), col, width=2)
        placed.append(place_label(draw, (cx * cw, cy * ch - 2), f"#{rank + 1} {prob:.3f}", placed, (W, H), size=11))
    arr = np.asarray(out)
    if not colorbar:
        return arr
    bar = prob_colorbar(max(160, min(W, 360)), "objectness: P(an instance is centred in the window)")
    return stack([arr, bar], axis=0, gap=4, align="center")


def _window_probs_panel(window_logits: Tensor, k: int, m: int, cell_px: int = 8) -> np.ndarray:
    p = torch.sigmoid(window_logits.float()).numpy()
    tile = upsample(apply_colormap(p, PROB_CMAP, 0.0, 1.0), cell_px)
    pil = Image.fromarray(tile)
    draw_bin_grid(ImageDraw.Draw(pil), (0, 0), (cell_px, cell_px), k, m, interior_only=True)
    return np.asarray(pil)


def ideal_vs_learned(
    ideal: WindowGrid,
    learned: WindowGrid,
    center: tuple[int, int] | None = None,
    image: object | None = None,
    cell_px: int | None = None,
) -> np.ndarray:
    """Ideal maps (from ground truth, :func:`ideal_score_maps`) beside the learned ones, both as probabilities on
    one viridis scale; with ``center=(cy, cx)``, the windows both grids assemble there (each with its own fill) are
    shown under them.  Both grids must cover the same feature map (``WindowGrid.from_maps`` for plain maps)."""
    for name, g in (("ideal", ideal), ("learned", learned)):
        if not isinstance(g, WindowGrid):
            raise TypeError(f"{name} must be an ifcn_viz.inference.window.WindowGrid, got {type(g).__name__}")
    if ideal.maps.score_maps.shape != learned.maps.score_maps.shape or ideal.m != learned.m:
        raise ValueError(
            f"ideal and learned maps must have the same shape and m, got {tuple(ideal.maps.score_maps.shape)} "
            f"(m={ideal.m}) vs {tuple(learned.maps.score_maps.shape)} (m={learned.m})"
        )
    k, m = learned.k, learned.m
    cols = []
    for name, g in (("ideal (from ground truth)", ideal), ("learned (the model)", learned)):
        window = (center[0], center[1], m) if center is not None else None
        mosaic = score_map_mosaic(
            g.maps.score_maps, k, image, window, probs=True, cell_px=cell_px, stride=learned.stride,
            factor=learned.maps.factor, colorbar=False,
        )  # fmt: skip
        panel = title_panel(mosaic, name)
        if center is not None:
            win = g.window(*center)
            asm = title_panel(_window_probs_panel(win.logits, k, m), f"assembled at (cy={win.center[0]}, "
                              f"cx={win.center[1]})", size=12)  # fmt: skip
            panel = stack([panel, asm], axis=0, gap=6)
        cols.append(panel)
    out = stack(cols, axis=1, gap=16)
    return stack([out, prob_colorbar(max(200, min(out.shape[1], 360)))], axis=0, gap=4, align="center")


def k_comparison(
    masks: Tensor | np.ndarray,
    stride: int,
    m: int,
    ks: tuple[int, ...] = (1, 5),
    image: object | None = None,
    threshold: float = WINDOW_THRESHOLD,
) -> np.ndarray:
    """For each k in ``ks``: ideal maps from the GT ``masks`` ``[N, H, W]`` assembled at each instance centre and
    pasted back, drawn in the rank palette with each instance's IoU.  k = 1 is a semantic FCN (one map): a window
    copies every foreground cell it covers, so touching instances merge; k^2 relative-position maps keep them
    apart (paper, Sec. 3 and Fig. 1)."""
    masks_np = masks.detach().cpu().numpy() if isinstance(masks, Tensor) else np.asarray(masks)
    if masks_np.ndim != 3:
        raise ValueError(f"masks must be [N, H, W], got shape {masks_np.shape}")
    masks_np = masks_np.astype(bool)
    h, w = masks_np.shape[1:]
    base = to_rgb_uint8(image) if image is not None else np.full((h, w, 3), 235, dtype=np.uint8)
    if base.shape[:2] != (h, w):
        base = resize(base, (h, w))
    rows = []
    for k in ks:
        res = ideal_reassembly(masks_np, k, m, stride, threshold)
        maps = score_map_mosaic(res.maps.score_maps, k, probs=True, colorbar=False, labels=k > 1, cell_px=None)
        maps = resize(maps, (h, max(1, round(maps.shape[1] * h / maps.shape[0]))), nearest=True)
        panels = [title_panel(maps, f"k = {k}: {k * k} ideal map{'s' if k > 1 else ''}")]
        for n in range(len(masks_np)):
            col = rank_color(n)
            over = blend(base, np.broadcast_to(np.array(col, np.uint8), base.shape).copy(), 0.55, res.pasted[n])
            gt_edge = thicken(mask_edges(masks_np[n]), 1)
            over[gt_edge] = INK
            pil = Image.fromarray(over)
            cy, cx = res.maps.centers[n].tolist()
            draw = ImageDraw.Draw(pil)
            draw.rectangle(
                (cx * stride, cy * stride, (cx + 1) * stride - 1, (cy + 1) * stride - 1), outline=INK, width=2
            )
            draw_label(draw, (4, 4), f"instance {n}: IoU {res.ious[n]:.2f}", size=12)
            panels.append(title_panel(np.asarray(pil), f"window at instance {n}'s centre"))
        rows.append(stack(panels, axis=1, gap=8))
    return pad(stack(rows, axis=0, gap=12))
