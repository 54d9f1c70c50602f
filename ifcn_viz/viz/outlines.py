"""Score-map mosaics with instance *outlines* instead of an image under the maps.

In a map whose colour carries a value (a logit or a probability), an image blended under it changes the colours:
grey people under a diverging scale read as "more negative logits".  These views leave the colour to the value
and draw where each instance is as an outline -- a ring just outside it, in its own colour with a dark inner line,
so it stays visible on any colour of the scale -- with a legend.  Pure numpy/PIL, like the rest of ``ifcn_viz.viz``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

from ifcn_viz.viz.maps import mosaic_layout, score_map_mosaic
from ifcn_viz.viz.palette import (
    INK,
    RANK_PALETTE,
    LogitScale,
    as_numpy,
    draw_label,
    logit_colorbar,
    logit_range,
    prob_colorbar,
    stack,
    text_size,
    thicken,
    title_panel,
)

# Okabe-Ito orange, bluish green, reddish purple, vermillion, yellow: distinct from each other and from the red/blue
# logit scale and (with the dark halo) visible on viridis.
OUTLINE_COLORS: tuple[tuple[int, int, int], ...] = tuple(RANK_PALETTE[i] for i in (0, 2, 6, 5, 3))


def outline_color(n: int) -> tuple[int, int, int]:
    return OUTLINE_COLORS[n % len(OUTLINE_COLORS)]


def masks_on_cells(masks: object, map_hw: tuple[int, int], cell_px: int, stride: int = 8, factor: float = 1.0):
    """``[N, H, W]`` masks (original pixels) sampled at the pixel centres of a map drawn ``cell_px`` per cell:
    ``[N, h * cell_px, w * cell_px]`` bool (map cell (y, x) covers original pixels ``[y s / f, (y + 1) s / f)``)."""
    m = as_numpy(masks, "masks").astype(bool)
    if m.ndim != 3:
        raise ValueError(f"masks must be [N, H, W], got shape {m.shape}")
    h, w = map_hw
    py = np.minimum(((np.arange(h * cell_px) + 0.5) / cell_px * stride / factor).astype(int), m.shape[1] - 1)
    px = np.minimum(((np.arange(w * cell_px) + 0.5) / cell_px * stride / factor).astype(int), m.shape[2] - 1)
    return m[:, py][:, :, px]


def draw_outlines(tile: np.ndarray, masks_px: np.ndarray) -> np.ndarray:
    """Each mask's boundary on ``tile`` (RGB): a 2-px ring in its :func:`outline_color` just *outside* the mask, with
    a 1-px dark line inside the ring, so the outline never hides the map's values on the object's own edge cells."""
    out = tile.copy()
    for n, mk in enumerate(masks_px):
        inner = thicken(mk, 1) & ~mk
        out[thicken(mk, 3) & ~thicken(mk, 1)] = outline_color(n)
        out[inner] = INK
    return out


def outline_legend(n: int, names: list[str] | None = None) -> np.ndarray:
    """A one-line legend: a colour swatch and a name per instance."""
    names = names or [f"instance {i}" for i in range(n)]
    parts = []
    for i, name in enumerate(names):
        w, h = text_size(name, 12)
        img = Image.new("RGB", (w + 30, max(h, 12) + 6), (255, 255, 255))
        draw = ImageDraw.Draw(img)
        draw.rectangle((2, 4, 20, 10), fill=outline_color(i), outline=INK)
        draw_label(draw, (26, 2), name, size=12)
        parts.append(np.asarray(img))
    return stack(parts, axis=1, gap=10)


def outlined_mosaic(
    score_maps: Tensor | np.ndarray,
    masks: object,
    k: int | None = None,
    probs: bool = False,
    window: tuple[int, int, int] | None = None,
    cell_px: int | None = None,
    stride: int = 8,
    factor: float = 1.0,
    names: list[str] | None = None,
    title: str | None = None,
    logit_scale: LogitScale | None = None,
) -> np.ndarray:
    """:func:`~ifcn_viz.viz.maps.score_map_mosaic` with no image under the maps, every instance of ``masks``
    ``[N, H, W]`` outlined on every map, a legend and the colour bar (logits: :func:`logit_range` of the maps' own
    values, or ``logit_scale`` when given -- one scale for mosaics that are to be compared)."""
    s = as_numpy(score_maps, "score_maps").astype(np.float32)
    body = score_map_mosaic(s, k, image=None, window=window, probs=probs, cell_px=cell_px, colorbar=False,
                            logit_scale=logit_scale)  # fmt: skip
    layout = mosaic_layout(s, cell_px)
    h, w = s.shape[1:]
    mpx = masks_on_cells(masks, (h, w), layout.cell_px, stride, factor)
    out = body.copy()
    th, tw = h * layout.cell_px, w * layout.cell_px
    for a in range(layout.k):
        for b in range(layout.k):
            oy, ox = layout.origin(a, b)
            out[oy : oy + th, ox : ox + tw] = draw_outlines(out[oy : oy + th, ox : ox + tw], mpx)
    if window is not None or layout.k:  # redraw the labels the outlines may cover
        pil = Image.fromarray(out)
        draw = ImageDraw.Draw(pil)
        for c in range(layout.k * layout.k):
            oy, ox = layout.origin(*divmod(c, layout.k))
            draw_label(draw, (ox + 2, oy + 1), f"{c}", size=10)
        out = np.asarray(pil)
    if title:
        out = title_panel(out, title)
    width = max(160, min(out.shape[1], 360))
    bar = prob_colorbar(width) if probs else logit_colorbar(width, logit_scale or logit_range(s))
    return stack([out, outline_legend(len(mpx), names), bar], axis=0, gap=4, align="center")


__all__ = ["OUTLINE_COLORS", "draw_outlines", "outline_color", "masks_on_cells", "outline_legend", "outlined_mosaic"]
