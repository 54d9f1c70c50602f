"""Pixel provenance: every window that covers one image pixel, and which score map each reads there.

A feature cell p is covered by the m^2 windows centred at p + (u - r, v - r), u, v in 0..m-1.  The window centred
at c sees p in its cell (i, j) = p - c + (r, r) and so reads map ``g(i) * k + g(j)`` at p: the windows above-left
of p read it through their bottom-right map, those below-right through their top-left map.  The same pixel can
therefore be "in" one window and "out" of its neighbour -- the point of instance-sensitive maps (paper, Sec. 3).

The :class:`~ifcn_viz.inference.types.Provenance` itself comes from inference
(:meth:`ifcn_viz.inference.window.WindowGrid.provenance`, also ``Predictor.provenance``); this module draws it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ifcn_viz.config import WINDOW_THRESHOLD
from ifcn_viz.inference.types import Provenance
from ifcn_viz.viz.palette import (
    INK,
    blend,
    draw_label,
    draw_window_frame,
    logit_colorbar,
    logit_range,
    pad,
    rank_color,
    stack,
    title_panel,
    to_rgb_uint8,
)


def channel_grid(provenance: Provenance) -> np.ndarray:
    """``(m, m)`` int: the map each window (arranged like :meth:`Provenance.value_grid`) reads; -1 where none."""
    grid = np.full((provenance.m, provenance.m), -1, dtype=np.int64)
    r = provenance.m // 2
    fy, fx = provenance.feature_cell
    for e in provenance.entries:
        grid[e.center[0] - fy + r, e.center[1] - fx + r] = e.channel
    return grid


def provenance_view(
    image: object,
    provenance: Provenance,
    cell_px: int = 16,
    threshold: float = WINDOW_THRESHOLD,
    vmax: float | None = None,
) -> np.ndarray:
    """Two linked pictures of one pixel's provenance, on one logit scale:

    * left, on the image: each window centre that covers the pixel, coloured by the logit that window reads at
      the pixel (red "in", blue "out"); the pixel is marked, the window centred on it outlined;
    * right, enlarged: the same m x m grid of window centres, with the map each reads written on its block and
      a dot where the window puts the pixel "in" (p >= threshold).
    """
    if not isinstance(provenance, Provenance):
        raise TypeError(f"provenance must be a Provenance, got {type(provenance).__name__}")
    img = to_rgb_uint8(image)
    m, r = provenance.m, provenance.m // 2
    vals = provenance.value_grid()  # (m, m), NaN where no window
    chans = channel_grid(provenance)
    scale = logit_range(vals, vmax=vmax)  # every value read is in the map: never the out-of-map fill
    fy, fx = provenance.feature_cell
    px, py = provenance.pixel
    ch, cw = provenance.cell_size
    # left: the centres' region (plus half a window around it) cropped from the image
    x0 = int(max(0, (fx - r) * cw - r * cw))
    y0 = int(max(0, (fy - r) * ch - r * ch))
    x1 = int(min(img.shape[1], (fx + r + 1) * cw + r * cw))
    y1 = int(min(img.shape[0], (fy + r + 1) * ch + r * ch))
    crop = img[y0:y1, x0:x1].copy()
    colours = scale.colors(vals)
    hh, ww = crop.shape[:2]
    ys = ((np.arange(hh) + y0 + 0.5) // ch).astype(int) - (fy - r)  # the cell under each pixel's centre
    xs = ((np.arange(ww) + x0 + 0.5) // cw).astype(int) - (fx - r)
    yin, xin = (ys >= 0) & (ys < m), (xs >= 0) & (xs < m)
    over = np.zeros_like(crop)
    covered = np.zeros((hh, ww), dtype=bool)
    if yin.any() and xin.any():
        sub = colours[np.ix_(ys[yin], xs[xin])]
        over[np.ix_(yin, xin)] = sub
        covered[np.ix_(yin, xin)] = ~np.isnan(vals[np.ix_(ys[yin], xs[xin])])
    left = Image.fromarray(blend(crop, over, 0.7, covered))
    dl = ImageDraw.Draw(left)
    wx0, wy0 = (fx - r) * cw - x0, (fy - r) * ch - y0
    draw_window_frame(dl, (wx0, wy0, wx0 + m * cw, wy0 + m * ch), rank_color(0), width=2)
    dl.ellipse((px - x0 - 4, py - y0 - 4, px - x0 + 4, py - y0 + 4), outline=INK, fill=(255, 255, 255), width=2)
    # right: the enlarged grid with channel blocks
    big = np.repeat(np.repeat(colours, cell_px, 0), cell_px, 1)
    right = Image.fromarray(big)
    dr = ImageDraw.Draw(right)
    thr = float(np.log(threshold / (1 - threshold)))
    for u in range(m):
        for v in range(m):
            if u + 1 < m and chans[u, v] != chans[u + 1, v]:
                dr.line((v * cell_px, (u + 1) * cell_px, (v + 1) * cell_px, (u + 1) * cell_px), fill=INK, width=2)
            if v + 1 < m and chans[u, v] != chans[u, v + 1]:
                dr.line(((v + 1) * cell_px, u * cell_px, (v + 1) * cell_px, (u + 1) * cell_px), fill=INK, width=2)
            if chans[u, v] >= 0 and vals[u, v] >= thr:
                c = (v * cell_px + cell_px / 2, u * cell_px + cell_px / 2)
                dr.ellipse((c[0] - 2, c[1] - 2, c[0] + 2, c[1] + 2), fill=(255, 255, 255), outline=INK)
    for ch in np.unique(chans[chans >= 0]):
        us, vs = np.nonzero(chans == ch)
        draw_label(dr, ((vs.min() + 1) * cell_px - cell_px + 3, us.min() * cell_px + 2), str(int(ch)), size=10)
    dr.rectangle(
        (r * cell_px, r * cell_px, (r + 1) * cell_px - 1, (r + 1) * cell_px - 1), outline=rank_color(0), width=2
    )
    n_in = int(np.nansum(vals >= thr))
    caption = f"pixel (x={px}, y={py}) in cell ({fy}, {fx}): read by {len(provenance.entries)} windows, 'in' for {n_in}"
    body = stack(
        [
            title_panel(np.asarray(left), "window centres, coloured by what each reads here"),
            title_panel(np.asarray(right), f"map read by each window (dot: p >= {threshold:.2g})"),
        ],
        axis=1,
        gap=12,
    )
    out = stack([title_panel(body, caption), logit_colorbar(max(200, min(body.shape[1], 360)), scale)], axis=0, gap=4)
    return pad(out)
