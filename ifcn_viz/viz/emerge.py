"""Score maps over training: the same held-out scene's maps at several snapshots, legibly.

Each map is drawn as logits on a diverging scale (white = 0, i.e. p = 0.5) whose range comes from the values of
*that row* (:func:`row_range`, the 98th percentile of |logit|): an untrained network's
logits are near 0 and a trained one's several units, so one shared range would wash one of them out.  The instances are
drawn as outlines of the cells they cover (one colour per instance, legend underneath), never as an image under the
colours, so a colour always reads as a value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ifcn_viz.viz.palette import (
    INK,
    LOGIT_CMAP,
    apply_colormap,
    as_numpy,
    colorbar,
    draw_label,
    font,
    mask_edges,
    rank_color,
    stack,
    thicken,
    upsample,
)


def instance_cells(masks: object, stride: int, map_hw: tuple[int, int]) -> np.ndarray:
    """``(N, H', W')`` bool: the feature cells whose centre pixel lies inside each instance mask ``(N, H, W)``."""
    mk = as_numpy(masks, "masks").astype(bool)
    if mk.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {mk.shape}")
    ys = np.clip(np.arange(map_hw[0]) * stride + stride // 2, 0, mk.shape[1] - 1)
    xs = np.clip(np.arange(map_hw[1]) * stride + stride // 2, 0, mk.shape[2] - 1)
    return mk[:, ys][:, :, xs]


def row_range(values: np.ndarray, q: float = 98.0) -> float:
    """Half-width of a row's symmetric colour scale: the ``q``-th percentile of |logit| over the row, to two
    significant digits -- no floor, so an untrained network's near-zero logits still show their pattern."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v)]
    hi = float(np.percentile(v, q)) if v.size else 1.0
    if hi <= 0:
        return 1.0
    return float(f"{hi:.2g}")


def _tile(values: np.ndarray, vmax: float, cells: np.ndarray, cell_px: int) -> np.ndarray:
    rgb = upsample(apply_colormap(values, LOGIT_CMAP, -vmax, vmax), cell_px)
    for i, c in enumerate(cells):  # the instance's outline, 2 px, in its colour
        edge = thicken(mask_edges(upsample(c.astype(np.uint8), cell_px).astype(bool)), 1)
        edge &= upsample(c.astype(np.uint8), cell_px).astype(bool)
        rgb[edge] = rank_color(i)
    return rgb


def _map_name(index: int, k: int) -> str:
    by, bx = divmod(index, k)
    return f"map ({by},{bx})"


def maps_over_training(
    rows: Sequence[tuple[str, object]],
    masks: object,
    stride: int,
    k: int,
    maps: Sequence[int] | None = None,
    cell_px: int = 5,
) -> np.ndarray:
    """One row per ``(title, score maps (k*k, H', W') logits)`` -- e.g. the ideal maps, then the model at each
    snapshot -- and one column per chosen map (default for k = 5: maps (1,1), (1,3), (2,2), (3,1), (3,3), the bins that
    cover an object's top-left, top-right, middle, bottom-left and bottom-right when it has the window's reference
    size, 128/224 of the window: the outer ring of bins lies outside such an object).  Every row has its own
    symmetric logit range (:func:`row_range`, printed at its left); instance outlines in rank colours with a
    legend."""
    if not rows:
        raise ValueError("rows must hold at least one (title, score maps) pair")
    arrays = [as_numpy(v, "score maps").astype(np.float32) for _, v in rows]
    if any(a.ndim != 3 or a.shape[0] != k * k for a in arrays) or len({a.shape for a in arrays}) != 1:
        raise ValueError(f"every row needs score maps of one shape (k*k = {k * k}, H', W')")
    if maps is None:  # the corners of the inner (k-2) x (k-2) bins, and the centre: on an object of the reference size
        lo, hi = (1, k - 2) if k >= 3 else (0, k - 1)
        maps = [lo * k + lo, lo * k + hi, (k * k) // 2, hi * k + lo, hi * k + hi]
    maps = list(maps)
    if any(not 0 <= i < k * k for i in maps):
        raise ValueError(f"map indices must be in 0..{k * k - 1}, got {maps}")
    cells = instance_cells(masks, stride, arrays[0].shape[1:])
    lines = []
    for (title, _), a in zip(rows, arrays):
        vmax = row_range(a[maps])
        tiles = [_tile(a[i], vmax, cells, cell_px) for i in maps]
        pil = Image.new("RGB", (150, tiles[0].shape[0]), (255, 255, 255))
        draw = ImageDraw.Draw(pil)
        draw.text((4, pil.height // 2 - 18), title, font=font(13), fill=INK)
        draw.text((4, pil.height // 2 + 2), f"logits \u00b1{vmax:g}", font=font(12), fill=INK)
        lines.append(stack([np.asarray(pil), *tiles], axis=1, gap=6))
    width = lines[0].shape[1]
    tile_w = cell_px * arrays[0].shape[2]
    header = np.full((20, width, 3), 255, np.uint8)
    pil = Image.fromarray(header)
    draw = ImageDraw.Draw(pil)
    x0 = lines[0].shape[1] - len(maps) * (tile_w + 6) + 6
    for j, i in enumerate(maps):
        draw.text((x0 + j * (tile_w + 6) + 2, 3), _map_name(i, k), font=font(12), fill=INK)
    legend = np.full((22, width, 3), 255, np.uint8)
    pil_l = Image.fromarray(legend)
    draw_l = ImageDraw.Draw(pil_l)
    draw_l.text((4, 4), "outlines:", font=font(12), fill=INK)
    x = 70
    for i in range(len(cells)):
        draw_label(draw_l, (x, 3), f"instance {i + 1}", size=11, bg=rank_color(i))
        x += 90
    bar = colorbar(min(width, 360), LOGIT_CMAP, -1.0, 1.0, "logit / the row's range (white = 0: p = 0.5)",
                   ticks=[-1.0, 0.0, 1.0])  # fmt: skip
    return stack([np.asarray(pil), *lines, np.asarray(pil_l), bar], axis=0, gap=6)


def map_mosaic_outlined(score_maps: object, masks: object, stride: int, k: int, cell_px: int = 3) -> np.ndarray:
    """All k*k maps of one snapshot as a k x k mosaic (map (i, j) where the bin (i, j) of a window is read), on one
    symmetric logit range from these values, with the instances outlined."""
    a = as_numpy(score_maps, "score maps").astype(np.float32)
    if a.ndim != 3 or a.shape[0] != k * k:
        raise ValueError(f"score maps must be (k*k = {k * k}, H', W'), got {a.shape}")
    vmax = row_range(a)
    cells = instance_cells(masks, stride, a.shape[1:])
    tiles = [_tile(a[i], vmax, cells, cell_px) for i in range(k * k)]
    grid = stack([stack(tiles[r * k : (r + 1) * k], axis=1, gap=3) for r in range(k)], axis=0, gap=3)
    bar = colorbar(min(grid.shape[1], 360), LOGIT_CMAP, -vmax, vmax, "score-map logit (white = 0: p = 0.5)")
    return stack([grid, bar], axis=0, gap=4, align="center")
