"""One visual language for every view: colour maps, fixed palettes, overlays, colour bars, text, PNG.

Everything here works on RGB ``uint8`` numpy arrays ``(H, W, 3)`` indexed ``[y, x]`` and draws with numpy and
PIL only (no matplotlib figure is ever created), so that a view of a 512 x 512 image renders in milliseconds.

* Probabilities use ``viridis`` (perceptually uniform, colour-blind safe) on [0, 1].
* Logits use the diverging ``RdBu_r`` on a symmetric range [-v, v]: white is logit 0 (p = 0.5), red "on",
  blue "off" -- readable under the common colour-vision deficiencies (red/blue, not red/green).
* Ranked things (proposals, top windows) take :data:`RANK_PALETTE` (Okabe & Ito 2008) by rank.
* Score-map indices take :data:`MAP_PALETTE` (Paul Tol's "muted" set + pale grey, 10 colours): map ``c`` is
  drawn in ``MAP_PALETTE[c % 10]`` everywhere, so neighbouring sub-windows (c, c +- 1, c +- k) differ for k = 3, 5, 7.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

PROB_CMAP = "viridis"
LOGIT_CMAP = "RdBu_r"

RANK_PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0),  # orange
    (86, 180, 233),  # sky blue
    (0, 158, 115),  # bluish green
    (240, 228, 66),  # yellow
    (0, 114, 178),  # blue
    (213, 94, 0),  # vermillion
    (204, 121, 167),  # reddish purple
)
"""Okabe-Ito colours (black dropped: it vanishes on dark images), by rank; rank r uses ``RANK_PALETTE[r % 7]``."""

MAP_PALETTE: tuple[tuple[int, int, int], ...] = (
    (204, 102, 119),
    (51, 34, 136),
    (221, 204, 119),
    (17, 119, 51),
    (136, 204, 238),
    (136, 34, 85),
    (68, 170, 153),
    (153, 153, 51),
    (170, 68, 153),
    (221, 221, 221),
)
"""Paul Tol's "muted" qualitative palette plus pale grey: the colour of score map ``c`` is ``MAP_PALETTE[c % 10]``."""

POSITIVE_COLOR = (0, 114, 178)  # Okabe-Ito blue
NEGATIVE_COLOR = (213, 94, 0)  # Okabe-Ito vermillion
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


def rank_color(rank: int) -> tuple[int, int, int]:
    return RANK_PALETTE[rank % len(RANK_PALETTE)]


def map_color(channel: int) -> tuple[int, int, int]:
    return MAP_PALETTE[channel % len(MAP_PALETTE)]


@lru_cache(maxsize=16)
def colormap_lut(name: str) -> np.ndarray:
    """``(256, 3) uint8``: a matplotlib colour map sampled once (matplotlib is only touched here, once per name)."""
    from matplotlib import colormaps

    if name not in colormaps:
        raise ValueError(f"unknown colour map {name!r}; use one of matplotlib's, e.g. 'viridis', 'RdBu_r'")
    lut = (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255.0).round().astype(np.uint8)
    lut.setflags(write=False)
    return lut


def as_numpy(values: object, name: str = "values") -> np.ndarray:
    """A float32 numpy copy-free view of a tensor / array (detached, on CPU)."""
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float32).numpy()
    if isinstance(values, np.ndarray):
        return values.astype(np.float32, copy=False)
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(values).__name__}")


def apply_colormap(values: object, cmap: str, vmin: float, vmax: float) -> np.ndarray:
    """Map a 2-D array to RGB ``uint8 (H, W, 3)`` through a 256-entry LUT; NaN becomes light grey."""
    v = as_numpy(values)
    if v.ndim != 2:
        raise ValueError(f"apply_colormap expects a 2-D array, got shape {v.shape}")
    if not vmax > vmin:
        raise ValueError(f"vmax must be > vmin, got vmin={vmin}, vmax={vmax}")
    nan = np.isnan(v)
    idx = np.clip((np.nan_to_num(v) - vmin) * (255.0 / (vmax - vmin)) + 0.5, 0, 255).astype(np.uint8)
    out = colormap_lut(cmap)[idx]  # (H, W, 3)
    if nan.any():
        out[nan] = (200, 200, 200)
    return out


_NICE = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceil(x: float) -> float:
    """The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^n that is >= ``x`` (> 0): a readable colour-bar end."""
    if not x > 0:
        raise ValueError(f"nice_ceil needs x > 0, got {x}")
    exp = 10.0 ** np.floor(np.log10(x))
    return float(next(f * exp for f in _NICE if f * exp >= x * (1 - 1e-9)))


@dataclass(frozen=True)
class LogitScale:
    """A diverging colour scale for logits: ``lo`` (< 0) is full blue, 0 is white (p = 0.5), ``hi`` (> 0) full red.

    The two halves are scaled separately (like matplotlib's ``TwoSlopeNorm``), because learned score maps are
    lopsided -- most cells are confidently "out" (about -20) and the "in" cells reach only +5..+10 -- and one
    symmetric range would wash the positives out to pale pink.
    """

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not (self.lo < 0 < self.hi):
            raise ValueError(f"a logit scale needs lo < 0 < hi, got lo={self.lo}, hi={self.hi}")

    def index(self, values: object) -> np.ndarray:
        """LUT indices ``uint8`` (0 = lo, 127.5 = 0, 255 = hi), clipped; NaN maps to 128 (callers grey it out)."""
        v = np.nan_to_num(as_numpy(values))
        t = np.where(v < 0, 0.5 - 0.5 * v / self.lo, 0.5 + 0.5 * v / self.hi)
        return np.clip(t * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def colors(self, values: object) -> np.ndarray:
        """``(..., 3) uint8`` colours of ``values`` (NaN light grey)."""
        v = as_numpy(values)
        out = colormap_lut(LOGIT_CMAP)[self.index(v)]
        nan = np.isnan(v)
        if nan.any():
            out[nan] = (200, 200, 200)
        return out

    def colorbar(self, width: int, label: str = "score-map logit (white = 0, p = 0.5)") -> np.ndarray:
        """A labelled colour bar: the LUT evenly, ticks at lo, lo/2, 0, hi/2, hi where they fall."""
        ticks = [self.lo, self.lo / 2, 0.0, self.hi / 2, self.hi]
        pos = [float(self.index(np.array([t], np.float32))[0]) / 255.0 for t in ticks]
        return colorbar(width, LOGIT_CMAP, 0.0, 1.0, label, ticks=pos, tick_labels=[f"{t:.3g}" for t in ticks])


def logit_range(
    values: object, exclude: float | None = None, vmax: float | None = None, percentile: float = 1.0
) -> LogitScale:
    """The colour scale of a map of logits, from its own values.

    ``lo`` / ``hi`` are the ``percentile``-th and ``(100 - percentile)``-th percentiles of the negative and
    positive values, rounded outward to a readable 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 x 10^n (at least 1 each), so a
    few extreme logits do not wash out the rest.  ``exclude``: a value to leave out -- the model's out-of-map fill
    logit, which window cells outside the map read and which says nothing about what the model learned.
    ``vmax``: a fixed symmetric scale ``[-vmax, vmax]`` instead (e.g. to compare two pictures).
    """
    if vmax is not None:
        if not vmax > 0:
            raise ValueError(f"vmax must be > 0 for a logit scale, got {vmax}")
        return LogitScale(-float(vmax), float(vmax))
    v = as_numpy(values)
    v = v[np.isfinite(v)]
    if exclude is not None:
        v = v[v != np.float32(exclude)]
    neg, pos = -v[v < 0], v[v > 0]
    lo = nice_ceil(max(1.0, float(np.percentile(neg, 100 - percentile)))) if neg.size else 1.0
    hi = nice_ceil(max(1.0, float(np.percentile(pos, 100 - percentile)))) if pos.size else 1.0
    return LogitScale(-lo, hi)


def to_rgb_uint8(image: object) -> np.ndarray:
    """Any image we accept -> RGB ``uint8 (H, W, 3)``.

    Accepts PIL images, numpy arrays ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` (uint8, or float in [0, 1]) and
    tensors ``(3, H, W)`` float in [0, 1] (the model's input layout) or ``(H, W, 3)``.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() == 3 and t.shape[0] in (1, 3) and t.shape[-1] not in (1, 3):
            t = t.permute(1, 2, 0)  # (H, W, C)
        image = t.numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a PIL image, numpy array or tensor, got {type(image).__name__}")
    a = image
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    a = a[:, :, :3]
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.floating):
        return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.integer):
        top = 65535 if a.max() > 255 else 255
        return (a.astype(np.float32) * (255.0 / top) + 0.5).astype(np.uint8)
    raise TypeError(f"unsupported image dtype {a.dtype}")


def blend(base: np.ndarray, overlay: np.ndarray, alpha: float, where: np.ndarray | None = None) -> np.ndarray:
    """``(1 - alpha) * base + alpha * overlay`` (optionally only where ``where`` is true), uint8."""
    if base.shape != overlay.shape:
        raise ValueError(f"blend: shapes differ, {base.shape} vs {overlay.shape}")
    mixed = (base.astype(np.float32) * (1.0 - alpha) + overlay.astype(np.float32) * alpha + 0.5).astype(np.uint8)
    if where is None:
        return mixed
    return np.where(where[:, :, None], mixed, base)


def upsample(arr: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling of ``(H, W[, C])`` by an integer factor (each cell becomes a block)."""
    if factor == 1:
        return arr
    return np.repeat(np.repeat(arr, factor, axis=0), factor, axis=1)


def resize(arr: np.ndarray, hw: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize an RGB uint8 image to ``(h, w)`` (bilinear, or nearest for maps)."""
    h, w = hw
    if arr.shape[:2] == (h, w):
        return arr
    img = Image.fromarray(arr)
    return np.asarray(img.resize((w, h), Image.NEAREST if nearest else Image.BILINEAR))


def mask_edges(mask: np.ndarray) -> np.ndarray:
    """The inner boundary of a boolean mask (a morphological edge: mask minus its 4-neighbour erosion)."""
    m = mask.astype(bool)
    inner = m.copy()
    inner[1:] &= m[:-1]
    inner[:-1] &= m[1:]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def thicken(mask: np.ndarray, px: int = 1) -> np.ndarray:
    """Dilate a boolean mask by ``px`` pixels (square structuring element)."""
    out = mask.copy()
    for _ in range(px):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


@lru_cache(maxsize=8)
def font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def text_size(text: str, size: int = 12) -> tuple[int, int]:
    x0, y0, x1, y1 = font(size).getbbox(text)
    return int(x1 - min(0, x0)), int(y1 - min(0, y0))


def draw_label(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: int = 12,
    fill: tuple[int, int, int] = INK,
    bg: tuple[int, int, int] | None = (255, 255, 255),
    anchor: str = "la",
) -> None:
    """Text with an optional solid background box (legible over any image)."""
    if bg is not None:
        box = draw.textbbox(xy, text, font=font(size), anchor=anchor)
        draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 1, box[3] + 1), fill=bg)
    draw.text(xy, text, font=font(size), fill=fill, anchor=anchor)


def draw_window_frame(
    draw: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    color: tuple[int, int, int] = INK,
    width: int = 1,
) -> None:
    """The outline of a window (or any cell block) whose extent is ``box`` = (x0, y0, x1, y1), exclusive ends, in
    the drawing's pixels: the frame lies on the first and last pixel rows/columns the box covers."""
    x0, y0, x1, y1 = box
    draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=color, width=width)


def bin_grid_lines(origin: float, cell: float, k: int, m: int) -> list[int]:
    """Pixel positions of the k + 1 sub-window edges of an m-cell window starting at ``origin`` with cells of
    ``cell`` pixels: interior edges on the first pixel of the next sub-window, the closing edge on the last pixel."""
    from ifcn_viz.model.assemble import bin_edges

    e = bin_edges(k, m)
    return [int(np.floor(origin + p * cell + 1e-6)) for p in e[:-1]] + [int(np.ceil(origin + m * cell - 1e-6)) - 1]


def draw_bin_grid(
    draw: ImageDraw.ImageDraw,
    origin: tuple[float, float],
    cell: tuple[float, float],
    k: int,
    m: int,
    color: tuple[int, int, int] = BACKGROUND,
    interior_only: bool = False,
) -> tuple[list[int], list[int]]:
    """The k x k sub-window grid of an m x m window whose top-left is ``origin`` = (x, y) and whose cells are
    ``cell`` = (height, width) pixels; returns the drawn columns and rows (:func:`bin_grid_lines`)."""
    xs = bin_grid_lines(origin[0], cell[1], k, m)
    ys = bin_grid_lines(origin[1], cell[0], k, m)
    cols, rows = (xs[1:-1], ys[1:-1]) if interior_only else (xs, ys)
    for x in cols:
        draw.line((x, ys[0], x, ys[-1]), fill=color)
    for y in rows:
        draw.line((xs[0], y, xs[-1], y), fill=color)
    return xs, ys


def place_label(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    placed: list[tuple[int, int, int, int]],
    bounds: tuple[int, int],
    size: int = 12,
    fill: tuple[int, int, int] = INK,
    bg: tuple[int, int, int] = (255, 255, 255),
) -> tuple[int, int, int, int]:
    """A label near ``xy`` (preferably with its bottom-left there, i.e. just above the point) that overlaps none of
    the ``placed`` label boxes and stays inside ``bounds`` = (width, height); returns its box (append it to
    ``placed``).  Tries above, below, right and left of the point, then further out; when every spot collides, the
    first."""
    gx0, gy0, gx1, gy1 = font(size).getbbox(text)
    tw, th = int(gx1 - gx0) + 4, int(gy1 - gy0) + 2  # a tight box: the glyphs plus a 2 px / 1 px margin
    x, y = xy
    width, height = bounds
    candidates = []
    for step in (0, 1, 2, 3):
        d = step * (th + 2)
        candidates += [(x, y - th - d), (x, y + 3 + d), (x + 5 + d, y - th // 2), (x - tw - 5 - d, y - th // 2)]

    def box_at(px: float, py: float) -> tuple[int, int, int, int]:
        px = min(max(0, px), max(0, width - tw))
        py = min(max(0, py), max(0, height - th))
        return int(px), int(py), int(px) + tw, int(py) + th

    def free(b: tuple[int, int, int, int]) -> bool:
        return all(b[2] <= o[0] or o[2] <= b[0] or b[3] <= o[1] or o[3] <= b[1] for o in placed)

    boxes = [box_at(px, py) for px, py in candidates]
    box = next((b for b in boxes if free(b)), boxes[0])
    draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=bg)
    draw.text((box[0] + 2 - gx0, box[1] + 1 - gy0), text, font=font(size), fill=fill)
    return box


def title_panel(panel: np.ndarray, title: str, size: int = 14) -> np.ndarray:
    """The panel with a title strip above it."""
    tw, th = text_size(title, size)
    width = max(panel.shape[1], tw + 8)  # never clip the title: widen the panel instead
    if width > panel.shape[1]:
        panel = np.pad(panel, ((0, 0), (0, width - panel.shape[1]), (0, 0)), constant_values=255)
    strip = Image.new("RGB", (width, th + 8), BACKGROUND)
    ImageDraw.Draw(strip).text((4, 3), title, font=font(size), fill=INK)
    return np.concatenate([np.asarray(strip), panel], axis=0)


def stack(panels: list[np.ndarray], axis: int = 1, gap: int = 8, align: str = "start") -> np.ndarray:
    """Place panels side by side (``axis=1``) or one above the other (``axis=0``) on a white background."""
    if not panels:
        raise ValueError("stack needs at least one panel")
    other = 1 - axis
    size = max(p.shape[other] for p in panels)
    total = sum(p.shape[axis] for p in panels) + gap * (len(panels) - 1)
    shape = (total, size, 3) if axis == 0 else (size, total, 3)
    out = np.full(shape, 255, dtype=np.uint8)
    pos = 0
    for p in panels:
        off = 0 if align == "start" else (size - p.shape[other]) // 2
        if axis == 1:
            out[off : off + p.shape[0], pos : pos + p.shape[1]] = p
        else:
            out[pos : pos + p.shape[0], off : off + p.shape[1]] = p
        pos += p.shape[axis] + gap
    return out


def same_size(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Pad frames (bottom / right, white) to a common size, as a GIF or a frame slider needs."""
    h = max(f.shape[0] for f in frames)
    w = max(f.shape[1] for f in frames)
    return [np.pad(f, ((0, h - f.shape[0]), (0, w - f.shape[1]), (0, 0)), constant_values=255) for f in frames]


def pad(panel: np.ndarray, px: int = 6) -> np.ndarray:
    return np.pad(panel, ((px, px), (px, px), (0, 0)), constant_values=255)


def colorbar(
    width: int,
    cmap: str,
    vmin: float,
    vmax: float,
    label: str,
    ticks: list[float] | None = None,
    height: int = 12,
    tick_labels: list[str] | None = None,
) -> np.ndarray:
    """A horizontal, labelled colour bar ``(h, width, 3)``: the gradient, tick values (or ``tick_labels``) and a
    label below."""
    if width < 40:
        raise ValueError(f"colorbar width must be >= 40 px, got {width}")
    margin = 14
    bar_w = width - 2 * margin
    ramp = colormap_lut(cmap)[np.linspace(0, 255, bar_w).round().astype(int)]  # (bar_w, 3)
    lines = _wrap(label, font(11), width - 4)  # a label wider than a narrow bar goes on more lines, never cut
    total_h = height + 34 + 13 * (len(lines) - 1)
    img = Image.new("RGB", (width, total_h), BACKGROUND)
    arr = np.asarray(img).copy()
    arr[2 : 2 + height, margin : margin + bar_w] = ramp[None]
    img = Image.fromarray(arr)
    draw = ImageDraw.Draw(img)
    draw.rectangle((margin - 1, 1, margin + bar_w, 2 + height), outline=INK)
    if ticks is None:
        ticks = [vmin, (vmin + vmax) / 2, vmax]
    if tick_labels is not None and len(tick_labels) != len(ticks):
        raise ValueError(f"{len(tick_labels)} tick labels for {len(ticks)} ticks")
    for i, t in enumerate(ticks):
        x = margin + (t - vmin) / (vmax - vmin) * (bar_w - 1)
        draw.line((x, 2 + height, x, 5 + height), fill=INK)
        text = tick_labels[i] if tick_labels is not None else f"{t:.3g}"
        draw.text((x, 6 + height), text, font=font(10), fill=INK, anchor="ma")
    for i, line in enumerate(lines):
        draw.text((width / 2, 19 + height + 13 * i), line, font=font(11), fill=INK, anchor="ma")
    return np.asarray(img)


def _wrap(text: str, fnt: ImageFont.ImageFont, width: int) -> list[str]:
    """``text`` in lines no wider than ``width`` px where word breaks allow (a single long word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and fnt.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def logit_colorbar(
    width: int, scale: LogitScale | float, label: str = "score-map logit (white = 0, p = 0.5)"
) -> np.ndarray:
    """The colour bar of a :class:`LogitScale` (or of the symmetric scale ``[-scale, scale]``)."""
    if not isinstance(scale, LogitScale):
        scale = LogitScale(-float(scale), float(scale))
    return scale.colorbar(width, label)


def prob_colorbar(width: int, label: str = "probability") -> np.ndarray:
    return colorbar(width, PROB_CMAP, 0.0, 1.0, label, ticks=[0.0, 0.5, 1.0])


def check_rgb(arr: np.ndarray) -> np.ndarray:
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        desc = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise ValueError(f"expected an RGB uint8 array (H, W, 3), got {desc}")
    return arr


def to_png_bytes(arr: np.ndarray, compress_level: int = 6) -> bytes:
    """Encode an RGB uint8 view as PNG (lossless: maps must not be smeared by JPEG/WebP)."""
    buf = io.BytesIO()
    Image.fromarray(check_rgb(arr)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def save_png(arr: np.ndarray, path: str | Path, optimize: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(check_rgb(arr)).save(path, format="PNG", optimize=optimize)
    return path


def save_gif(frames: list[np.ndarray], path: str | Path, duration_ms: int = 400, loop: int = 0) -> Path:
    """Write frames as an animated GIF (an adaptive palette per frame; all frames must share one size)."""
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"all frames must have the same shape, got {sorted(shapes)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(check_rgb(f)).convert("P", palette=Image.ADAPTIVE, colors=128) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=loop, optimize=True)
    return path
