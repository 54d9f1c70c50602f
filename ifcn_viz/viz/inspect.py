"""Why a proposal ranks where it does: the proposal funnel, objectness and logit histograms, and drawn instances.

Pure numpy/PIL drawing (no app, no Gradio), for the app's Inspect and Draw tabs and for notebooks:

* :func:`funnel_chart` -- a :class:`~ifcn_viz.inference.funnel.Funnel` as horizontal bars, one per stage (every
  window -> top-k by objectness -> non-empty masks -> after NMS -> top N), split by scale, with the recall at each
  stage when ground truth was given;
* :func:`missed_objects_view` -- the ground-truth objects on the image, each outlined in the colour of the stage
  that lost it (found ones in the "found" colour), with its best IoU;
* :func:`objectness_histogram` -- sigmoid(objectness) of the ranked windows, positives (a window whose mask matches
  an object, :meth:`Funnel.positive_ranks <ifcn_viz.inference.funnel.Funnel.positive_ranks>`) against negatives;
* :func:`logit_histogram` -- the distribution of one scale's score-map logits, with the mask threshold and the
  out-of-map fill marked (the fill is not in the maps, so it never sets the range);
* :func:`instances_view` -- drawn (or ground-truth) instance masks over the image in the rank palette, each with
  its label and centre cell, and a legend.

Every function returns an RGB ``uint8 (H, W, 3)`` array with its own legend.  Example::

    from ifcn_viz.inference.funnel import proposal_funnel
    from ifcn_viz.viz.inspect import funnel_chart, objectness_histogram

    funnel = proposal_funnel(predictor, gt_masks, every_window=False)
    chart = funnel_chart(funnel)
    hist = objectness_histogram(funnel.candidates.scores.numpy(), funnel.positive_ranks())
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ifcn_viz.config import WINDOW_THRESHOLD
from ifcn_viz.viz.palette import (
    BACKGROUND,
    INK,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    RANK_PALETTE,
    as_numpy,
    blend,
    font,
    mask_edges,
    pad,
    place_label,
    rank_color,
    stack,
    text_size,
    thicken,
    title_panel,
    to_rgb_uint8,
)

FOUND_COLOR = (0, 158, 115)  # Okabe-Ito bluish green
STAGE_COLORS: dict[str, tuple[int, int, int]] = {
    "every window": (120, 120, 120),
    "top-k by objectness": (213, 94, 0),  # vermillion
    "non-empty masks": (204, 121, 167),  # reddish purple
    "after NMS": (230, 159, 0),  # orange
    "top N": (86, 180, 233),  # sky blue
}
"""The colour of the stage that lost an object (:func:`missed_objects_view`)."""
GRID = (225, 225, 225)


def _legend(items: Sequence[tuple[tuple[int, int, int], str]], width: int, size: int = 11) -> np.ndarray:
    """A legend strip: a swatch and a label per item, wrapped to ``width`` pixels."""
    rows: list[list[tuple[tuple[int, int, int], str, int]]] = [[]]
    x = 6
    for col, label in items:
        w = 14 + text_size(label, size)[0] + 14
        if x + w > width and rows[-1]:
            rows.append([])
            x = 6
        rows[-1].append((col, label, x))
        x += w
    line = text_size("Ag", size)[1] + 8
    img = Image.new("RGB", (max(width, 40), line * len(rows) + 4), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for r, row in enumerate(rows):
        y = 4 + r * line
        for col, label, x in row:
            draw.rectangle((x, y + 1, x + 10, y + 11), fill=col, outline=INK)
            draw.text((x + 14, y), label, font=font(size), fill=INK)
    return np.asarray(img)


def _nice_step(span: float, target: int = 5) -> float:
    raw = max(span, 1e-12) / target
    exp = 10.0 ** np.floor(np.log10(raw))
    return float(next(f * exp for f in (1, 2, 5, 10) if f * exp >= raw - 1e-12))


def _fmt(v: float, step: float = 1.0) -> str:
    """A tick label with as many decimals as the tick step needs (so 0.521 and 0.522 read apart)."""
    if abs(v) >= 100 or (float(v).is_integer() and step >= 1):
        return f"{v:,.0f}"
    decimals = max(0, int(-np.floor(np.log10(step) + 1e-9)))
    return f"{v:.{decimals}f}"


class _Plot:
    """A plot area with axes, ticks and labels on a PIL image (``x`` and ``y`` data ranges given)."""

    def __init__(self, width: int, height: int, x_range: tuple[float, float], y_range: tuple[float, float],
                 x_label: str, y_label: str, left: int = 56, bottom: int = 40, top: int = 10,
                 right: int = 16) -> None:  # fmt: skip
        self.img = Image.new("RGB", (width, height), BACKGROUND)
        self.draw = ImageDraw.Draw(self.img)
        self.x0, self.x1 = left, width - right
        self.y0, self.y1 = top, height - bottom
        self.xr, self.yr = x_range, y_range
        d = self.draw
        for v in np.arange(np.ceil(y_range[0] / (s := _nice_step(y_range[1] - y_range[0]))) * s, y_range[1] + 1e-9, s):
            y = self.py(v)
            d.line((self.x0, y, self.x1, y), fill=GRID)
            d.text((self.x0 - 4, y), _fmt(v, s), font=font(10), fill=INK, anchor="rm")
        for v in np.arange(np.ceil(x_range[0] / (s := _nice_step(x_range[1] - x_range[0]))) * s, x_range[1] + 1e-9, s):
            x = self.px(v)
            d.line((x, self.y1, x, self.y1 + 3), fill=INK)
            d.text((x, self.y1 + 5), _fmt(v, s), font=font(10), fill=INK, anchor="ma")
        d.line((self.x0, self.y0, self.x0, self.y1), fill=INK)
        d.line((self.x0, self.y1, self.x1, self.y1), fill=INK)
        d.text(((self.x0 + self.x1) / 2, height - 4), x_label, font=font(11), fill=INK, anchor="md")
        label = Image.new("RGB", text_size(y_label, 11), BACKGROUND)
        ImageDraw.Draw(label).text((0, 0), y_label, font=font(11), fill=INK)
        rot = label.rotate(90, expand=True)
        self.img.paste(rot, (2, max(0, (self.y0 + self.y1) // 2 - rot.height // 2)))

    def px(self, v: float) -> float:
        lo, hi = self.xr
        return self.x0 + (v - lo) / (hi - lo) * (self.x1 - self.x0)

    def py(self, v: float) -> float:
        lo, hi = self.yr
        return self.y1 - (v - lo) / (hi - lo) * (self.y1 - self.y0)

    def array(self) -> np.ndarray:
        return np.asarray(self.img)


def histogram(
    groups: Sequence[tuple[np.ndarray, tuple[int, int, int], str]],
    bins: np.ndarray,
    x_label: str,
    title: str,
    marks: Sequence[tuple[float, str]] = (),
    log: bool = False,
    width: int = 520,
    height: int = 260,
    unit: str = "windows",
) -> np.ndarray:
    """Overlaid step histograms of ``groups`` = ``[(values, colour, label)]`` over the same ``bins`` (edges), with
    vertical ``marks`` = ``[(x, label)]``; ``log``: counts on a log10(1 + count) axis.  RGB uint8, legend below."""
    counts = [np.histogram(as_numpy(v).ravel(), bins=bins)[0] for v, _, _ in groups]
    tf = (lambda c: np.log10(1.0 + c)) if log else (lambda c: c.astype(float))
    top = max([float(tf(c).max()) for c in counts if c.size] + [1.0]) * 1.08
    plot = _Plot(width, height, (float(bins[0]), float(bins[-1])), (0.0, top), x_label,
                 f"log10(1 + {unit})" if log else unit)  # fmt: skip
    d = plot.draw
    for c, (_, col, _) in zip(counts, groups):
        pts = []
        for i, n in enumerate(tf(c)):
            y = plot.py(n)
            pts += [(plot.px(bins[i]), y), (plot.px(bins[i + 1]), y)]
        if pts:
            pts = [(pts[0][0], plot.py(0)), *pts, (pts[-1][0], plot.py(0))]
            d.line(pts, fill=col, width=2)
    placed: list[tuple[int, int, int, int]] = []
    for x, label in marks:
        if bins[0] <= x <= bins[-1]:
            xp = plot.px(x)
            for y in range(plot.y0, plot.y1, 6):
                d.line((xp, y, xp, min(y + 3, plot.y1)), fill=INK)
            placed.append(place_label(d, (xp + 2, plot.y0 + 14), label, placed, plot.img.size, size=10))
    legend = _legend([(col, f"{label} ({len(as_numpy(v).ravel()):,})") for v, col, label in groups], width)
    return pad(title_panel(stack([plot.array(), legend], axis=0, gap=2), title, size=13))


def objectness_histogram(
    scores: np.ndarray,
    positive: np.ndarray | None = None,
    all_scores: np.ndarray | None = None,
    bins: int = 40,
    width: int = 520,
    zoom: bool = False,
) -> np.ndarray:
    """Objectness probabilities of the ranked windows: positives (``positive[i]``: window i's mask matches an
    object) against negatives when ``positive`` is given, else all ranked windows; ``all_scores`` (every window of
    every scale) is drawn in grey on the same log axis for the context of what the top-k cut keeps.  ``zoom``: the
    x axis spans the ranked windows' own scores (``all_scores`` is then ignored), so their ranking can be read."""
    s = as_numpy(scores, "scores").ravel()
    if zoom and s.size:  # the ranked windows' own range: the top-k often all sit within a few hundredths of 1
        lo, hi = float(s.min()), float(s.max())
        pad_ = max(1e-4, (hi - lo) * 0.02)
        edges = np.linspace(max(0.0, lo - pad_), min(1.0, hi + pad_), bins + 1)
        all_scores = None
    else:
        edges = np.linspace(0.0, 1.0, bins + 1)
    groups: list[tuple[np.ndarray, tuple[int, int, int], str]] = []
    if all_scores is not None:
        groups.append((as_numpy(all_scores).ravel(), (170, 170, 170), "every window"))
    if positive is not None:
        pos = np.asarray(positive, dtype=bool).ravel()
        if pos.shape != s.shape:
            raise ValueError(f"positive must have one flag per score ({s.shape[0]}), got {pos.shape[0]}")
        groups += [(s[pos], POSITIVE_COLOR, "ranked, matches an object"),
                   (s[~pos], NEGATIVE_COLOR, "ranked, matches none")]  # fmt: skip
    else:
        groups.append((s, POSITIVE_COLOR, "ranked windows (top-k)"))
    marks = [(float(s.min()), "top-k cut")] if s.size and all_scores is not None else []
    title = "objectness of the ranked windows (zoomed to their range)" if zoom else "objectness of the windows"
    return histogram(groups, edges, "objectness = sigmoid(objectness logit)", title, marks, log=True, width=width)


def logit_histogram(
    score_maps: object,
    mask_threshold: float = WINDOW_THRESHOLD,
    fill: float | None = None,
    bins: int = 50,
    width: int = 520,
    title: str = "score-map logits",
) -> np.ndarray:
    """Every value of the k^2 score maps ``(k*k, H', W')`` (one scale), with the mask threshold's logit and the
    out-of-map ``fill`` marked; the range is set by the maps' own values (1st..99.9th percentile, widened to hold
    the threshold), never by the fill."""
    v = as_numpy(score_maps, "score_maps").ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        raise ValueError("score_maps has no finite values")
    t = float(np.log(mask_threshold / (1.0 - mask_threshold)))
    lo, hi = float(np.percentile(v, 0.1)), float(np.percentile(v, 99.9))
    lo, hi = min(lo, t - 0.5), max(hi, t + 0.5)
    edges = np.linspace(lo, hi, bins + 1)
    marks = [(t, f"threshold p = {mask_threshold:g}")]
    if fill is not None and lo <= fill <= hi:
        marks.append((float(fill), "out-of-map fill"))
    elif fill is not None:
        title += f" (the out-of-map fill, {fill:g}, is outside the maps' range)"
    clipped = np.clip(v, lo, hi)
    return histogram([(clipped, POSITIVE_COLOR, "score-map values")], edges, "logit (values beyond the range are in "
                     "the end bins)", title, marks, log=True, width=width, unit="values")  # fmt: skip


def funnel_chart(funnel: object, scale_labels: Sequence[str] | None = None, width: int = 640) -> np.ndarray:
    """The proposal funnel as horizontal bars on a log axis: one bar per stage, split by scale (a colour per
    scale, see the legend), labelled with its count and, with ground truth, the recall at the stage."""
    from ifcn_viz.inference.funnel import Funnel

    if not isinstance(funnel, Funnel):
        raise TypeError(f"funnel must be an ifcn_viz.inference.funnel.Funnel, got {type(funnel).__name__}")
    stages = funnel.stages
    n_scales = len(stages[0].per_scale)
    names = list(scale_labels) if scale_labels is not None else [f"scale {i}" for i in range(n_scales)]
    label_w = max(text_size(st.name, 12)[0] for st in stages) + 12
    right_w = 190
    row_h, top = 30, 8
    height = top + row_h * len(stages) + 30
    img = Image.new("RGB", (width, height), BACKGROUND)
    d = ImageDraw.Draw(img)
    x0, x1 = label_w, width - right_w
    hi = np.log10(max(2, max(st.count for st in stages)) * 1.2)

    def xp(count: float) -> float:
        return x0 + np.log10(max(1.0, count)) / hi * (x1 - x0)

    for e in range(int(np.floor(hi)) + 1):
        x = xp(10**e)
        d.line((x, top, x, top + row_h * len(stages)), fill=GRID)
        d.text((x, top + row_h * len(stages) + 3), f"{10**e:,}", font=font(10), fill=INK, anchor="ma")
    d.text(((x0 + x1) / 2, height - 4), "windows left (log scale)", font=font(11), fill=INK, anchor="md")
    for r, st in enumerate(stages):
        y = top + r * row_h + 4
        d.text((4, y + 5), st.name, font=font(12), fill=INK)
        # the bar's length is the stage's total (log); its segments share it in proportion to each scale's count
        total_x = xp(st.count) - x0
        x = x0
        for s, c in enumerate(st.per_scale):
            w = total_x * c / st.count if st.count else 0
            if w > 0:
                d.rectangle((x, y, x + w, y + row_h - 10), fill=RANK_PALETTE[s % len(RANK_PALETTE)])
            x += w
        d.rectangle((x0, y, max(x0, xp(st.count)), y + row_h - 10), outline=INK)
        text = f"{st.count:,}"
        if st.recall is not None:
            text += f"   recall {st.recall:.2f}"
        d.text((x1 + 8, y + 5), text, font=font(12), fill=INK)
    chart = np.asarray(img)
    legend = _legend([(RANK_PALETTE[s % len(RANK_PALETTE)], names[s]) for s in range(n_scales)], width)
    title = f"proposal funnel: windows left at each stage, by scale (recall at mask IoU >= {funnel.iou:g})"
    if funnel.gt_count == 0:
        title = "proposal funnel: windows left at each stage, by scale (no ground truth: no recall)"
    return pad(title_panel(stack([chart, legend], axis=0, gap=2), title, size=13))


def missed_objects_view(image: object, gt_masks: np.ndarray, funnel: object, alpha: float = 0.35) -> np.ndarray:
    """The ground-truth objects over the image: found ones outlined in green, each missed one filled and outlined
    in the colour of the stage that lost it, each labelled ``g<i> IoU <best>``; legend below."""
    img = to_rgb_uint8(image)
    gt = np.asarray(gt_masks, dtype=bool)
    if gt.ndim != 3 or gt.shape[1:] != img.shape[:2]:
        raise ValueError(f"gt_masks must be [G, H, W] at the image's size {img.shape[:2]}, got {gt.shape}")
    final = funnel.stages[-1]  # type: ignore[attr-defined]
    best = final.best_iou if final.best_iou is not None else np.zeros(len(gt))
    out = img.copy()
    cols = []
    for g in range(len(gt)):
        lost = funnel.lost_at(g)  # type: ignore[attr-defined]
        col = FOUND_COLOR if lost is None else STAGE_COLORS.get(lost, INK)
        cols.append((col, lost))
        if lost is not None:
            out = blend(out, np.broadcast_to(np.array(col, np.uint8), out.shape).copy(), alpha, gt[g])
        out[thicken(mask_edges(gt[g]), 1)] = col
    pil = Image.fromarray(out)
    draw = ImageDraw.Draw(pil)
    placed: list[tuple[int, int, int, int]] = []
    for g in range(len(gt)):
        ys, xs = np.nonzero(gt[g])
        if not ys.size:
            continue
        lost = cols[g][1]
        text = f"g{g} IoU {float(best[g]):.2f}" + (f", lost at {lost}" if lost else "")
        placed.append(place_label(draw, (float(xs.min()), float(ys.min())), text, placed, pil.size, size=11))
    items = [(FOUND_COLOR, "found by a proposal")] + [
        (STAGE_COLORS[s], f"lost at: {s}") for s in STAGE_COLORS if any(lost == s for _, lost in cols)
    ]
    found = sum(lost is None for _, lost in cols)
    body = stack([np.asarray(pil), _legend(items, pil.width)], axis=0, gap=2)
    return pad(title_panel(body, f"ground truth: {found} of {len(gt)} objects found by the top-N proposals", 13))


def instance_color(n: int) -> tuple[int, int, int]:
    """The colour of drawn instance ``n`` everywhere (the brush colour, the rank palette)."""
    return rank_color(n)


def instances_view(
    image: object,
    masks: np.ndarray,
    centers: Sequence[tuple[float, float]] | None = None,
    labels: Sequence[str] | None = None,
    alpha: float = 0.45,
    title: str | None = None,
) -> np.ndarray:
    """Instance masks ``[N, H, W]`` over the image, instance n filled and outlined in :func:`instance_color`;
    ``centers`` (x, y) in pixels are marked with a cross (the window centre); ``labels`` (default ``instance n``)
    are placed without overlapping; a legend names every colour.  Without ``title`` the image keeps its top-left
    corner at (0, 0) of the picture (a click on the picture is an image pixel)."""
    img = to_rgb_uint8(image)
    ms = np.asarray(masks, dtype=bool)
    if ms.ndim != 3 or ms.shape[1:] != img.shape[:2]:
        raise ValueError(f"masks must be [N, H, W] at the image's size {img.shape[:2]}, got {ms.shape}")
    names = list(labels) if labels is not None else [f"instance {n}" for n in range(len(ms))]
    out = img.copy()
    for n in range(len(ms)):
        col = np.array(instance_color(n), np.uint8)
        out = blend(out, np.broadcast_to(col, out.shape).copy(), alpha, ms[n])
        out[thicken(mask_edges(ms[n]), 1)] = col
    pil = Image.fromarray(out)
    draw = ImageDraw.Draw(pil)
    placed: list[tuple[int, int, int, int]] = []
    for n in range(len(ms)):
        if centers is not None and n < len(centers) and centers[n] is not None:
            x, y = centers[n]
            r = max(4, min(pil.size) // 80)
            draw.line((x - r, y, x + r, y), fill=INK, width=3)
            draw.line((x, y - r, x, y + r), fill=INK, width=3)
            draw.line((x - r, y, x + r, y), fill=instance_color(n), width=1)
            draw.line((x, y - r, x, y + r), fill=instance_color(n), width=1)
        ys, xs = np.nonzero(ms[n])
        if ys.size:
            placed.append(place_label(draw, (float(xs.min()), float(ys.min())), names[n], placed, pil.size, 11,
                                      bg=instance_color(n)))  # fmt: skip
    items = [(instance_color(n), names[n]) for n in range(len(ms))]
    if centers is not None:
        items.append(((255, 255, 255), "+ : the instance's centre cell (its window's centre)"))
    body = stack([np.asarray(pil), _legend(items, pil.width)], axis=0, gap=2)
    return pad(title_panel(body, title, 13)) if title else body


def iou_table(
    rows: Sequence[tuple[str, Sequence[float | None]]], columns: Sequence[str], width: int = 420
) -> np.ndarray:
    """A small table: one row per instance (label in its colour swatch) and a column per IoU kind."""
    size, line = 12, 20
    col_w = max([text_size(c, size)[0] for c in columns] + [60]) + 16
    label_w = max([text_size(r, size)[0] for r, _ in rows] + [60]) + 26
    w = max(width, label_w + col_w * len(columns) + 8)
    img = Image.new("RGB", (w, line * (len(rows) + 1) + 6), BACKGROUND)
    d = ImageDraw.Draw(img)
    for j, c in enumerate(columns):
        d.text((label_w + j * col_w, 3), c, font=font(size), fill=INK)
    d.line((0, line, w, line), fill=INK)
    for i, (label, vals) in enumerate(rows):
        y = line * (i + 1) + 3
        d.rectangle((4, y + 2, 14, y + 12), fill=instance_color(i), outline=INK)
        d.text((20, y), label, font=font(size), fill=INK)
        for j, v in enumerate(vals):
            d.text((label_w + j * col_w, y), "-" if v is None else f"{v:.3f}", font=font(size), fill=INK)
    return np.asarray(img)


__all__ = [
    "FOUND_COLOR",
    "STAGE_COLORS",
    "funnel_chart",
    "histogram",
    "instance_color",
    "instances_view",
    "iou_table",
    "logit_histogram",
    "missed_objects_view",
    "objectness_histogram",
    "single_map_view",
]


def single_map_view(
    score_maps: object,
    channel: int,
    image: object | None = None,
    window: tuple[int, int, int] | None = None,
    stride: int = 8,
    factor: float = 1.0,
    vmax: float | None = None,
    side: int = 560,
) -> np.ndarray:
    """One score map ``channel`` = a*k + b of ``(k*k, H', W')`` logits, large (about ``side`` px), on a diverging
    scale from this map's own values (``logit_range``; ``vmax`` fixes it to ``[-vmax, vmax]``) over the grey image,
    with ``window=(cy, cx, m)``'s outline and, thick, the cells its sub-window (a, b) copies from this map."""
    from ifcn_viz.inference.window import copied_region
    from ifcn_viz.viz.maps import score_map_mosaic

    s = as_numpy(score_maps, "score_maps")
    kk = round(s.shape[0] ** 0.5)
    if s.ndim != 3 or kk * kk != s.shape[0]:
        raise ValueError(f"score_maps must be (k*k, H', W'), got shape {s.shape}")
    if not 0 <= channel < s.shape[0]:
        raise ValueError(f"channel must be in 0..{s.shape[0] - 1}, got {channel}")
    h, w = s.shape[1:]
    cell = max(1, round(side / max(h, w)))
    a, b = divmod(channel, kk)
    tile = score_map_mosaic(s[channel : channel + 1], 1, image, None, vmax=vmax, cell_px=cell, stride=stride,
                            factor=factor, labels=False, colorbar=True)  # fmt: skip
    pil = Image.fromarray(tile.copy())
    d = ImageDraw.Draw(pil)
    legend = [((110, 110, 110), "the whole window (m x m cells)")]
    if window is not None:
        cy, cx, m = window
        r = m // 2
        y0, x0, y1, x1 = max(0, cy - r), max(0, cx - r), min(h, cy + r + 1), min(w, cx + r + 1)
        if y0 < y1 and x0 < x1:
            d.rectangle((x0 * cell, y0 * cell, x1 * cell - 1, y1 * cell - 1), outline=(110, 110, 110), width=1)
        reg = copied_region(kk, m, cy, cx, a, b, (h, w))
        if reg is not None:
            ry0, ry1, rx0, rx1 = reg
            d.rectangle((rx0 * cell, ry0 * cell, rx1 * cell - 1, ry1 * cell - 1), outline=INK, width=3)
        legend.append((INK, f"the cells sub-window (a={a}, b={b}) copies from this map"))
    body = stack([np.asarray(pil), _legend(legend, pil.width)], axis=0, gap=2)
    return pad(title_panel(body, f"score map {channel} (a={a}, b={b}): 'is this cell at relative position "
                           f"({a}, {b}) of an instance?'", 13))  # fmt: skip
