"""The assembling window (paper, Sec. 3.1, Fig. 2): the m x m window on the image, its k x k sub-windows and the
map each copies from, the assembled mask and the mask pasted back.

Geometry (ifcn_viz.model.geometry): window cell (i, j) of the window centred at feature cell (cy, cx) covers
original pixels ``[(cy - r + i) * s / f, (cy - r + i + 1) * s / f)`` (s = stride, f = resized / original).
Sub-window (a, b) spans cells ``bin_edges[a] .. bin_edges[a + 1]`` (5, 4, 4, 4, 4 for k = 5, m = 21).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor

from ifcn_viz.inference.types import WindowResult
from ifcn_viz.model.assemble import bin_edges
from ifcn_viz.viz.maps import score_map_mosaic
from ifcn_viz.viz.palette import (
    INK,
    PROB_CMAP,
    apply_colormap,
    blend,
    colormap_lut,
    draw_label,
    map_color,
    mask_edges,
    prob_colorbar,
    rank_color,
    stack,
    thicken,
    title_panel,
    to_rgb_uint8,
    upsample,
)

GRID_COLOR = (255, 255, 255)
OUTLINE_COLOR = INK


@dataclass(frozen=True)
class SubWindow:
    a: int  # sub-window row
    b: int  # sub-window column
    channel: int  # the score map it copies from (a * k + b)
    cells: tuple[int, int, int, int]  # (i0, i1, j0, j1) window cells, exclusive ends
    box: tuple[float, float, float, float]  # (x0, y0, x1, y1) original-image pixels, exclusive ends


def _check_window(window: object) -> WindowResult:
    if not isinstance(window, WindowResult):
        raise TypeError(f"window must be an ifcn_viz.inference.types.WindowResult, got {type(window).__name__}")
    return window


def subwindow_layout(window: WindowResult) -> list[SubWindow]:
    """The k x k sub-windows of ``window`` in raster order, with their source map and pixel extents."""
    w = _check_window(window)
    e = bin_edges(w.k, w.m)
    cell = w.stride / w.factor
    x0, y0 = w.box[0], w.box[1]
    out = []
    for a in range(w.k):
        for b in range(w.k):
            i0, i1, j0, j1 = e[a], e[a + 1], e[b], e[b + 1]
            channel = int(w.cell_to_map[i0, j0])  # the map the window's own cell_to_map says this block reads
            box = (x0 + j0 * cell, y0 + i0 * cell, x0 + j1 * cell, y0 + i1 * cell)
            out.append(SubWindow(a, b, channel, (i0, i1, j0, j1), box))
    return out


def window_grid_lines(window: WindowResult, display_scale: float = 1.0) -> tuple[list[int], list[int]]:
    """Pixel columns and rows (in the displayed image) on which the sub-window grid is drawn.

    Edge e of the bins lies at ``box_x0 + bin_edges[e] * stride / factor`` original pixels; interior edges are
    drawn on the first pixel of the next sub-window, the closing edge on the window's last pixel.
    """
    w = _check_window(window)
    cell = w.stride / w.factor * display_scale
    x0, y0 = w.box[0] * display_scale, w.box[1] * display_scale
    e = bin_edges(w.k, w.m)
    xs = [int(np.floor(x0 + p * cell + 1e-6)) for p in e[:-1]] + [int(np.ceil(x0 + e[-1] * cell - 1e-6)) - 1]
    ys = [int(np.floor(y0 + p * cell + 1e-6)) for p in e[:-1]] + [int(np.ceil(y0 + e[-1] * cell - 1e-6)) - 1]
    return xs, ys


def _display_scale(hw: tuple[int, int], max_side: int | None) -> float:
    return 1.0 if max_side is None or max(hw) <= max_side else max_side / max(hw)


def window_on_image(
    image: object, window: WindowResult, tint_alpha: float = 0.3, labels: bool = True, max_side: int | None = None
) -> np.ndarray:
    """The image with the window, its k x k grid, each sub-window tinted in its source map's colour
    (:func:`map_color`) and labelled with the map index; the centre cell is outlined."""
    w = _check_window(window)
    img = to_rgb_uint8(image)
    sc = _display_scale(img.shape[:2], max_side)
    if sc != 1.0:
        img = np.asarray(Image.fromarray(img).resize((round(img.shape[1] * sc), round(img.shape[0] * sc))))
    out = img.copy()
    H, W = out.shape[:2]
    xs, ys = window_grid_lines(w, sc)
    for sw in subwindow_layout(w):
        a, b = sw.a, sw.b
        x0, x1 = max(0, xs[b]), min(W, xs[b + 1] if b + 1 < w.k else xs[-1] + 1)
        y0, y1 = max(0, ys[a]), min(H, ys[a + 1] if a + 1 < w.k else ys[-1] + 1)
        if x0 < x1 and y0 < y1:
            region = out[y0:y1, x0:x1]
            out[y0:y1, x0:x1] = blend(
                region, np.broadcast_to(np.array(map_color(sw.channel), np.uint8), region.shape), tint_alpha
            )
    pil = Image.fromarray(out)
    draw = ImageDraw.Draw(pil)
    for x in xs:
        draw.line((x, ys[0], x, ys[-1]), fill=GRID_COLOR)
    for y in ys:
        draw.line((xs[0], y, xs[-1], y), fill=GRID_COLOR)
    draw.rectangle((xs[0] - 1, ys[0] - 1, xs[-1] + 1, ys[-1] + 1), outline=OUTLINE_COLOR)
    cell = w.stride / w.factor * sc
    r = w.m // 2
    cx0, cy0 = w.box[0] * sc + r * cell, w.box[1] * sc + r * cell
    draw.rectangle((cx0, cy0, cx0 + cell - 1, cy0 + cell - 1), outline=rank_color(0), width=2)
    if labels:
        size = 10 if cell * 4 < 40 else 12
        for sw in subwindow_layout(w):
            draw_label(draw, (xs[sw.b] + 2, ys[sw.a] + 2), str(sw.channel), size=size, bg=None, fill=INK)
    return np.asarray(pil)


def assembled_mask_view(window: WindowResult, cell_px: int = 12, labels: bool = True) -> np.ndarray:
    """The assembled m x m window as probabilities (viridis), the k x k grid and each block's map index."""
    w = _check_window(window)
    tile = upsample(apply_colormap(w.probs, PROB_CMAP, 0.0, 1.0), cell_px)
    pil = Image.fromarray(tile)
    draw = ImageDraw.Draw(pil)
    e = bin_edges(w.k, w.m)
    side = w.m * cell_px
    for p in e[1:-1]:
        draw.line((p * cell_px, 0, p * cell_px, side), fill=GRID_COLOR)
        draw.line((0, p * cell_px, side, p * cell_px), fill=GRID_COLOR)
    if labels:
        for sw in subwindow_layout(w):
            draw_label(draw, (sw.cells[2] * cell_px + 2, sw.cells[0] * cell_px + 1), str(sw.channel), size=10)
    return stack([np.asarray(pil), prob_colorbar(max(160, side), "assembled probability")], axis=0, gap=4)


def paste_probs(window: WindowResult, image_hw: tuple[int, int]) -> np.ndarray:
    """The window's probabilities resized (bilinear) to its extent in the original image; NaN outside it."""
    w = _check_window(window)
    H, W = image_hw
    x0, y0, x1, y1 = w.box
    ow, oh = max(1, round(x1 - x0)), max(1, round(y1 - y0))
    up = F.interpolate(w.probs.float()[None, None], size=(oh, ow), mode="bilinear", align_corners=False)[0, 0]
    out = np.full((H, W), np.nan, dtype=np.float32)
    ix0, iy0 = round(x0), round(y0)
    sx0, sy0 = max(0, -ix0), max(0, -iy0)
    dx0, dy0 = max(0, ix0), max(0, iy0)
    dx1, dy1 = min(W, ix0 + ow), min(H, iy0 + oh)
    if dx0 < dx1 and dy0 < dy1:
        out[dy0:dy1, dx0:dx1] = up[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0].numpy()
    return out


def pasted_mask_view(image: object, window: WindowResult, threshold: float = 0.5, alpha: float = 0.55) -> np.ndarray:
    """The window's mask pasted back at image resolution: probabilities (viridis) inside the window's extent and
    the contour of ``p >= threshold`` in the rank-0 colour."""
    img = to_rgb_uint8(image)
    probs = paste_probs(window, img.shape[:2])
    inside = ~np.isnan(probs)
    heat = colormap_lut(PROB_CMAP)[(np.nan_to_num(probs) * 255 + 0.5).astype(np.uint8)]
    out = blend(img, heat, alpha, inside)
    out[thicken(mask_edges(np.nan_to_num(probs) >= threshold), 1)] = rank_color(0)
    pil = Image.fromarray(out)
    draw = ImageDraw.Draw(pil)
    x0, y0, x1, y1 = window.box
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=OUTLINE_COLOR)
    draw_label(draw, (x0 + 2, y0 + 2), f"objectness {window.objectness:.2f}", size=11)
    return np.asarray(pil)


def window_view(
    image: object,
    window: WindowResult,
    score_maps: Tensor | np.ndarray | None = None,
    threshold: float = 0.5,
    cell_px: int = 12,
    max_side: int | None = 512,
) -> np.ndarray:
    """All of the assembling at one window: window on the image | assembled m x m mask | mask pasted back; with
    the scale's ``score_maps`` given, the k^2 maps with the copied regions outlined underneath."""
    w = _check_window(window)
    cy, cx = w.center
    top = stack(
        [
            title_panel(window_on_image(image, w, max_side=max_side), f"window at cell (cy={cy}, cx={cx}), k={w.k}"),
            title_panel(assembled_mask_view(w, cell_px), f"assembled {w.m}x{w.m} window"),
            title_panel(_limit(pasted_mask_view(image, w, threshold), max_side), f"pasted, p >= {threshold:g}"),
        ],
        axis=1,
        gap=10,
    )
    if score_maps is None:
        return top
    mosaic = score_map_mosaic(
        score_maps, w.k, window=(cy, cx, w.m), title="source maps: sub-window (a, b) copies map a*k+b"
    )
    return stack([top, mosaic], axis=0, gap=10)


def _limit(arr: np.ndarray, max_side: int | None) -> np.ndarray:
    sc = _display_scale(arr.shape[:2], max_side)
    if sc == 1.0:
        return arr
    return np.asarray(Image.fromarray(arr).resize((round(arr.shape[1] * sc), round(arr.shape[0] * sc))))


def window_result_from_maps(
    score_maps: Tensor,
    center: tuple[int, int],
    m: int,
    stride: int,
    objectness: Tensor | None = None,
    factor: float = 1.0,
    scale_index: int = 0,
) -> WindowResult:
    """A :class:`WindowResult` from plain maps ``(k*k, H', W')`` (hand-made or ideal maps, no Predictor needed)."""
    from ifcn_viz.model.assemble import assemble_at, cell_to_map_index

    if not isinstance(score_maps, Tensor) or score_maps.dim() != 3:
        raise ValueError("score_maps must be a tensor (k*k, H', W')")
    k = round(score_maps.shape[0] ** 0.5)
    cy, cx = center
    logits = assemble_at(score_maps[None].float(), torch.tensor([[0, cy, cx]]), m)[0]
    r = m // 2
    cell = stride / factor
    obj = (
        float(torch.sigmoid(objectness.reshape(score_maps.shape[1:])[cy, cx]))
        if objectness is not None
        else float("nan")
    )
    box = ((cx - r) * cell, (cy - r) * cell, (cx + r + 1) * cell, (cy + r + 1) * cell)
    return WindowResult(
        scale_index, (cy, cx), logits, torch.sigmoid(logits), box, obj, cell_to_map_index(k, m), k, m, stride, factor
    )
