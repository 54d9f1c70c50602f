"""The assembling window (paper, Sec. 3.1, Fig. 2): the m x m window on the image, its k x k sub-windows and the
map each copies from, the assembled mask and the mask pasted back.

This module only draws: every window, its box, its paste and its mask come from :mod:`ifcn_viz.inference.window`
(the one implementation the proposals use too).  Window cell (i, j) covers ``window.cell_size`` original pixels
from the box's corner; sub-window (a, b) spans cells ``bin_edges[a] .. bin_edges[a + 1]`` (5, 4, 4, 4, 4 for
k = 5, m = 21).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

from ifcn_viz.config import WINDOW_THRESHOLD
from ifcn_viz.inference.types import WindowResult
from ifcn_viz.inference.window import _check_window, paste_window, window_covered, window_mask
from ifcn_viz.model.assemble import bin_edges
from ifcn_viz.viz.maps import score_map_mosaic
from ifcn_viz.viz.palette import (
    INK,
    PROB_CMAP,
    apply_colormap,
    bin_grid_lines,
    blend,
    colormap_lut,
    draw_bin_grid,
    draw_label,
    draw_window_frame,
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


def subwindow_layout(window: WindowResult) -> list[SubWindow]:
    """The k x k sub-windows of ``window`` in raster order, with their source map and pixel extents."""
    w = _check_window(window)
    e = bin_edges(w.k, w.m)
    ch, cw = w.cell_size
    x0, y0 = w.box[0], w.box[1]
    out = []
    for a in range(w.k):
        for b in range(w.k):
            i0, i1, j0, j1 = e[a], e[a + 1], e[b], e[b + 1]
            channel = int(w.cell_to_map[i0, j0])  # the map the window's own cell_to_map says this block reads
            box = (x0 + j0 * cw, y0 + i0 * ch, x0 + j1 * cw, y0 + i1 * ch)
            out.append(SubWindow(a, b, channel, (i0, i1, j0, j1), box))
    return out


def window_grid_lines(window: WindowResult, display_scale: float = 1.0) -> tuple[list[int], list[int]]:
    """Pixel columns and rows (in the displayed image) on which the sub-window grid is drawn
    (:func:`~ifcn_viz.viz.palette.bin_grid_lines` of the window's box)."""
    w = _check_window(window)
    ch, cw = w.cell_size
    xs = bin_grid_lines(w.box[0] * display_scale, cw * display_scale, w.k, w.m)
    ys = bin_grid_lines(w.box[1] * display_scale, ch * display_scale, w.k, w.m)
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
    ch, cw = w.cell_size
    draw_bin_grid(draw, (w.box[0] * sc, w.box[1] * sc), (ch * sc, cw * sc), w.k, w.m, GRID_COLOR)
    draw.rectangle((xs[0] - 1, ys[0] - 1, xs[-1] + 1, ys[-1] + 1), outline=OUTLINE_COLOR)
    r = w.m // 2
    cx0, cy0 = (w.box[0] + r * cw) * sc, (w.box[1] + r * ch) * sc
    draw_window_frame(draw, (cx0, cy0, cx0 + cw * sc, cy0 + ch * sc), rank_color(0), width=2)
    if labels:
        size = 10 if cw * sc * 4 < 40 else 12
        for sw in subwindow_layout(w):
            draw_label(draw, (xs[sw.b] + 2, ys[sw.a] + 2), str(sw.channel), size=size, bg=None, fill=INK)
    return np.asarray(pil)


def assembled_mask_view(window: WindowResult, cell_px: int = 12, labels: bool = True) -> np.ndarray:
    """The assembled m x m window as probabilities (viridis), the k x k grid and each block's map index."""
    w = _check_window(window)
    tile = upsample(apply_colormap(w.probs, PROB_CMAP, 0.0, 1.0), cell_px)
    pil = Image.fromarray(tile)
    draw = ImageDraw.Draw(pil)
    side = w.m * cell_px
    draw_bin_grid(draw, (0, 0), (cell_px, cell_px), w.k, w.m, GRID_COLOR, interior_only=True)
    if labels:
        for sw in subwindow_layout(w):
            draw_label(draw, (sw.cells[2] * cell_px + 2, sw.cells[0] * cell_px + 1), str(sw.channel), size=10)
    return stack([np.asarray(pil), prob_colorbar(max(160, side), "assembled probability")], axis=0, gap=4)


def pasted_mask_view(
    image: object, window: WindowResult, threshold: float = WINDOW_THRESHOLD, alpha: float = 0.55
) -> np.ndarray:
    """The window's mask pasted back at image resolution, exactly as the proposals paste it
    (:func:`~ifcn_viz.inference.window.paste_window`): probabilities (viridis) inside the window's extent and the
    contour of ``p >= threshold`` (:func:`~ifcn_viz.inference.window.window_mask`) in the rank-0 colour."""
    img = to_rgb_uint8(image)
    w = _check_window(window)
    probs = paste_window(w, img.shape[:2])
    inside = window_covered(w, img.shape[:2])
    heat = colormap_lut(PROB_CMAP)[(probs * 255 + 0.5).astype(np.uint8)]
    out = blend(img, heat, alpha, inside)
    out[thicken(mask_edges(window_mask(w, img.shape[:2], threshold)), 1)] = rank_color(0)
    pil = Image.fromarray(out)
    draw = ImageDraw.Draw(pil)
    draw_window_frame(draw, w.box, OUTLINE_COLOR)
    draw_label(draw, (w.box[0] + 2, w.box[1] + 2), f"objectness {w.objectness:.2f}", size=11)
    return np.asarray(pil)


def window_view(
    image: object,
    window: WindowResult,
    score_maps: Tensor | np.ndarray | None = None,
    threshold: float = WINDOW_THRESHOLD,
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
