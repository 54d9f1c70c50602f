"""The assembly animated: sub-windows copied one at a time, and the window sliding along a feature row.

Each function returns a list of equally sized RGB uint8 frames (the app plays them; :func:`save_gif` writes a
GIF).  Frames are built from plain score maps ``(k*k, H', W')`` so hand-made, ideal and learned maps all work.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from ifcn_viz.model.assemble import assemble_at, bin_edges
from ifcn_viz.viz.maps import _image_under_maps, _maps_k, copied_region
from ifcn_viz.viz.palette import (
    INK,
    PROB_CMAP,
    apply_colormap,
    blend,
    draw_label,
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


def _window_tile(probs: np.ndarray, filled: np.ndarray, k: int, m: int, cell_px: int) -> Image.Image:
    """The m x m window: filled cells in viridis, the rest grey, with the k x k grid."""
    rgb = apply_colormap(probs, PROB_CMAP, 0.0, 1.0)
    rgb[~filled] = EMPTY
    pil = Image.fromarray(upsample(rgb, cell_px))
    draw = ImageDraw.Draw(pil)
    side = m * cell_px
    for p in bin_edges(k, m)[1:-1]:
        draw.line((p * cell_px, 0, p * cell_px, side), fill=(255, 255, 255))
        draw.line((0, p * cell_px, side, p * cell_px), fill=(255, 255, 255))
    return pil


def assembly_frames(
    score_maps: Tensor | np.ndarray,
    center: tuple[int, int],
    m: int,
    cell_px: int = 10,
    map_cell_px: int | None = None,
) -> list[np.ndarray]:
    """k^2 + 2 frames of the window at ``center`` = (cy, cx) being assembled (paper, Fig. 2).

    Frame 0 shows the empty window; frame t (1..k^2) copies sub-window (a, b) = divmod(t - 1, k) from score map
    a*k + b -- the source map is shown on the left with the copied cells outlined, the growing window on the
    right; the last frame shows the finished window.  All frames have the same size.
    """
    s, k = _maps_k(score_maps, None)
    h, w = s.shape[1:]
    cy, cx = center
    if not (0 <= cy < h and 0 <= cx < w):
        raise ValueError(f"center (cy={cy}, cx={cx}) is outside the {h}x{w} map")
    win = assemble_at(torch.from_numpy(np.ascontiguousarray(s))[None], torch.tensor([[0, cy, cx]]), m)[0].numpy()
    probs = _sigmoid(win)
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
        dl.rectangle(
            (
                (cx - r) * map_cell_px,
                (cy - r) * map_cell_px,
                (cx + r + 1) * map_cell_px - 1,
                (cy + r + 1) * map_cell_px - 1,
            ),
            outline=(110, 110, 110),
        )
        if src >= 0:
            reg = copied_region(k, m, cy, cx, a, b, (h, w))
            if reg is not None:
                y0, y1, x0, x1 = reg
                box = (x0 * map_cell_px, y0 * map_cell_px, x1 * map_cell_px - 1, y1 * map_cell_px - 1)
                dl.rectangle(box, outline=map_color(src), width=3)
                dl.rectangle(box, outline=INK, width=1)
        right = _window_tile(probs, filled, k, m, cell_px)
        if src >= 0:
            dr = ImageDraw.Draw(right)
            box = (e[b] * cell_px, e[a] * cell_px, e[b + 1] * cell_px - 1, e[a + 1] * cell_px - 1)
            dr.rectangle(box, outline=map_color(src), width=3)
            dr.rectangle(box, outline=INK, width=1)
        left_title = f"score map {src} (row {a}, col {b})" if src >= 0 else "source map"
        panels = [title_panel(np.asarray(left), left_title), title_panel(np.asarray(right), f"window {m}x{m}")]
        body = stack(panels, axis=1, gap=12)
        frame = stack([title_panel(body, caption), bar], axis=0, gap=4)
        frames.append(pad(frame))
    return same_size(frames)


def slide_frames(
    score_maps: Tensor | np.ndarray,
    row: int,
    m: int,
    cols: list[int] | None = None,
    image: object | None = None,
    stride: int = 8,
    factor: float = 1.0,
    cell_px: int = 8,
    map_cell_px: int | None = None,
) -> list[np.ndarray]:
    """Frames of the window sliding along feature row ``row``: the window's box over the image (or over the
    strongest map value when no image is given) and the window it assembles there.  Neighbouring windows read
    the *same* map pixels through *different* maps, which is why their masks differ (paper, Sec. 3.1)."""
    s, k = _maps_k(score_maps, None)
    h, w = s.shape[1:]
    if not 0 <= row < h:
        raise ValueError(f"row {row} is outside the map's {h} rows")
    if cols is None:
        cols = list(range(0, w, max(1, w // 16)))
    if not cols or any(not 0 <= c < w for c in cols):
        raise ValueError(f"cols must be non-empty and within [0, {w}), got {cols}")
    map_cell_px = map_cell_px or max(1, round(240 / max(h, w)))
    if image is not None:
        base = _image_under_maps(image, (h, w), map_cell_px, stride, factor)
    else:
        base = upsample(apply_colormap(_sigmoid(s.max(axis=0)), PROB_CMAP, 0, 1), map_cell_px)
        base = blend(base, np.full_like(base, 255), 0.4)
    wins = assemble_at(
        torch.from_numpy(np.ascontiguousarray(s))[None], torch.tensor([[0, row, c] for c in cols]), m
    ).numpy()  # (len(cols), m, m)
    e = bin_edges(k, m)
    r = m // 2
    frames = []
    for n, c in enumerate(cols):
        left = Image.fromarray(base)
        dl = ImageDraw.Draw(left)
        for a in range(k):
            for b in range(k):
                x0, y0 = (c - r + e[b]) * map_cell_px, (row - r + e[a]) * map_cell_px
                x1, y1 = (c - r + e[b + 1]) * map_cell_px - 1, (row - r + e[a + 1]) * map_cell_px - 1
                dl.rectangle((x0, y0, x1, y1), outline=(255, 255, 255))
        dl.rectangle(
            (
                (c - r) * map_cell_px,
                (row - r) * map_cell_px,
                (c + r + 1) * map_cell_px - 1,
                (row + r + 1) * map_cell_px - 1,
            ),
            outline=INK,
            width=2,
        )
        dl.rectangle(
            (c * map_cell_px, row * map_cell_px, (c + 1) * map_cell_px - 1, (row + 1) * map_cell_px - 1),
            fill=rank_color(0),
        )
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
