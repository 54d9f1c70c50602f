"""The assembly animated: sub-windows copied one at a time, and the window sliding along a feature row.

Each function returns a list of equally sized RGB uint8 frames (the app plays them; :func:`save_gif` writes a
GIF).  Frames draw the windows a :class:`~ifcn_viz.inference.window.WindowGrid` assembles -- with the model's own
out-of-map fill -- so hand-made, ideal and learned maps all work (``WindowGrid.from_maps``) and the animation shows
exactly the window the proposals use.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from ifcn_viz.inference.window import WindowGrid
from ifcn_viz.model.assemble import bin_edges
from ifcn_viz.viz.maps import _image_under_maps
from ifcn_viz.viz.palette import (
    INK,
    PROB_CMAP,
    apply_colormap,
    blend,
    draw_bin_grid,
    draw_label,
    draw_window_frame,
    map_color,
    pad,
    prob_colorbar,
    rank_color,
    same_size,
    stack,
    title_panel,
    upsample,
)

EMPTY = (225, 225, 225)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _cells_box(y0: int, y1: int, x0: int, x1: int, cell_px: int) -> tuple[int, int, int, int]:
    """Map cells ``[y0, y1) x [x0, x1)`` drawn at ``cell_px`` pixels a cell: an exclusive-end pixel box."""
    return x0 * cell_px, y0 * cell_px, x1 * cell_px, y1 * cell_px


def _check_grid(grid: object) -> WindowGrid:
    if not isinstance(grid, WindowGrid):
        raise TypeError(
            f"grid must be an ifcn_viz.inference.window.WindowGrid (e.g. predictor.grid(scale) or "
            f"WindowGrid.from_maps(score_maps, m)), got {type(grid).__name__}"
        )
    return grid


def _window_tile(probs: np.ndarray, filled: np.ndarray, k: int, m: int, cell_px: int) -> Image.Image:
    """The m x m window: filled cells in viridis, the rest grey, with the k x k grid."""
    rgb = apply_colormap(probs, PROB_CMAP, 0.0, 1.0)
    rgb[~filled] = EMPTY
    pil = Image.fromarray(upsample(rgb, cell_px))
    draw_bin_grid(ImageDraw.Draw(pil), (0, 0), (cell_px, cell_px), k, m, interior_only=True)
    return pil


def assembly_frames(
    grid: WindowGrid,
    center: tuple[int, int],
    cell_px: int = 10,
    map_cell_px: int | None = None,
) -> list[np.ndarray]:
    """k^2 + 2 frames of the window at ``center`` = (cy, cx) being assembled (paper, Fig. 2).

    Frame 0 shows the empty window; frame t (1..k^2) copies sub-window (a, b) = divmod(t - 1, k) from score map
    a*k + b -- the source map is shown on the left with the copied cells outlined, the growing window on the
    right; the last frame shows the finished window.  All frames have the same size.
    """
    grid = _check_grid(grid)
    window = grid.window(*center)  # raises for a centre outside the map
    s, k, m = grid.maps.score_maps.numpy(), grid.k, grid.m
    h, w = s.shape[1:]
    cy, cx = window.center
    probs = window.probs.numpy()
    e = bin_edges(k, m)
    map_cell_px = map_cell_px or max(1, round(m * cell_px / max(h, w)))
    filled = np.zeros((m, m), dtype=bool)
    frames = []
    bar = prob_colorbar(max(160, m * cell_px), "probability (sigmoid of the logit)")
    r = m // 2
    for t in range(k * k + 2):
        step = t - 1
        if 0 <= step < k * k:
            a, b = divmod(step, k)
            filled[e[a] : e[a + 1], e[b] : e[b + 1]] = True
            src = step
            caption = f"sub-window ({a}, {b}) <- score map {src}"
        else:
            a = b = src = -1
            caption = "empty window" if t == 0 else f"assembled window at (cy={cy}, cx={cx})"
        # left: the source map (or a blank of the same size) with the window and the copied cells
        if src >= 0:
            left = Image.fromarray(upsample(apply_colormap(_sigmoid(s[src]), PROB_CMAP, 0, 1), map_cell_px))
        else:
            left = Image.new("RGB", (w * map_cell_px, h * map_cell_px), EMPTY)
        dl = ImageDraw.Draw(left)
        draw_window_frame(dl, _cells_box(cy - r, cy + r + 1, cx - r, cx + r + 1, map_cell_px), (110, 110, 110))
        if src >= 0:
            reg = grid.copied_region(cy, cx, a, b)
            if reg is not None:
                box = _cells_box(*reg, map_cell_px)
                draw_window_frame(dl, box, map_color(src), width=3)
                draw_window_frame(dl, box, INK)
        right = _window_tile(probs, filled, k, m, cell_px)
        if src >= 0:
            dr = ImageDraw.Draw(right)
            box = _cells_box(e[a], e[a + 1], e[b], e[b + 1], cell_px)
            draw_window_frame(dr, box, map_color(src), width=3)
            draw_window_frame(dr, box, INK)
        left_title = f"score map {src} (row {a}, col {b})" if src >= 0 else "source map"
        panels = [title_panel(np.asarray(left), left_title), title_panel(np.asarray(right), f"window {m}x{m}")]
        body = stack(panels, axis=1, gap=12)
        frame = stack([title_panel(body, caption), bar], axis=0, gap=4)
        frames.append(pad(frame))
    return same_size(frames)


def slide_frames(
    grid: WindowGrid,
    row: int,
    cols: list[int] | None = None,
    image: object | None = None,
    cell_px: int = 8,
    map_cell_px: int | None = None,
) -> list[np.ndarray]:
    """Frames of the window sliding along feature row ``row``: the window's box over the image (or over the
    strongest map value when no image is given) and the window it assembles there.  Neighbouring windows read
    the *same* map pixels through *different* maps, which is why their masks differ (paper, Sec. 3.1)."""
    grid = _check_grid(grid)
    s, k, m = grid.maps.score_maps.numpy(), grid.k, grid.m
    h, w = s.shape[1:]
    if not 0 <= row < h:
        raise ValueError(f"row {row} is outside the map's {h} rows")
    if cols is None:
        cols = list(range(0, w, max(1, w // 16)))
    if not cols or any(not 0 <= c < w for c in cols):
        raise ValueError(f"cols must be non-empty and within [0, {w}), got {cols}")
    map_cell_px = map_cell_px or max(1, round(240 / max(h, w)))
    if image is not None:
        base = _image_under_maps(image, (h, w), map_cell_px, grid.stride, grid.maps.factor)
    else:
        base = upsample(apply_colormap(_sigmoid(s.max(axis=0)), PROB_CMAP, 0, 1), map_cell_px)
        base = blend(base, np.full_like(base, 255), 0.4)
    wins = grid.logits(torch.full((len(cols),), row), torch.tensor(cols)).numpy()  # (len(cols), m, m)
    r = m // 2
    frames = []
    for n, c in enumerate(cols):
        left = Image.fromarray(base)
        dl = ImageDraw.Draw(left)
        draw_bin_grid(dl, ((c - r) * map_cell_px, (row - r) * map_cell_px), (map_cell_px, map_cell_px), k, m)
        draw_window_frame(dl, _cells_box(row - r, row + r + 1, c - r, c + r + 1, map_cell_px), INK, width=2)
        cx0, cy0, cx1, cy1 = _cells_box(row, row + 1, c, c + 1, map_cell_px)
        dl.rectangle((cx0, cy0, cx1 - 1, cy1 - 1), fill=rank_color(0))
        right = _window_tile(_sigmoid(wins[n]), np.ones((m, m), bool), k, m, cell_px)
        draw_label(ImageDraw.Draw(right), (2, 2), f"cx = {c}", size=11)
        body = stack(
            [
                title_panel(np.asarray(left), f"window centre (cy={row}, cx={c})"),
                title_panel(np.asarray(right), "assembled"),
            ],
            axis=1,
            gap=12,
        )
        frames.append(pad(body))
    return same_size(frames)
