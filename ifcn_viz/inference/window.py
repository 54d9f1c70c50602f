"""The window at (cy, cx): the one implementation of InstanceFCN's assembling window in this project.

Everything that shows, pastes or scores a window -- the Predictor's queries and proposals, every view in
:mod:`ifcn_viz.viz`, the app and the notebooks -- gets it from here, so what is drawn is what is proposed.

A :class:`WindowGrid` holds one scale's maps (a :class:`~ifcn_viz.inference.types.ScaleMaps`), the window size
m and the out-of-map fill, and answers, for any centre cell (cy, cx):

* the assembled ``m x m`` logits (paper, Sec. 3.1: sub-window (a, b) copies score map ``a * k + b``; cells outside
  the map read ``fill``, the checkpoint's ``fill_logit``) -- :meth:`WindowGrid.logits`, :meth:`WindowGrid.window`;
* the window's box in *original* image pixels -- :meth:`WindowGrid.boxes`.  In the resized image fed to the model
  the window covers ``[(c - r) s, (c + r + 1) s)`` (``r = m // 2``, ``s`` the stride, see
  :mod:`ifcn_viz.model.geometry`); dividing by the per-axis resize factor ``(fy, fx)`` gives original pixels;
* the feature cell under an original pixel -- :meth:`WindowGrid.cell_of_pixel`: the pixel's *centre*
  ``(x + 0.5, y + 0.5)`` mapped into the resized image, divided by the stride, clamped to the map;
* every window covering a pixel and the map it reads there -- :meth:`WindowGrid.provenance`;
* the cells a sub-window copies -- :meth:`WindowGrid.copied_region`.

The paste at image resolution is :func:`paste_window` (bilinear, the proposals' paste, see
:mod:`ifcn_viz.inference.postprocess`) and its binarised mask :func:`window_mask`; :func:`paste_window_cells`
is the nearest-cell paste used for ideal maps (each window cell becomes the pixels it stands for).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ifcn_viz.config import WINDOW_THRESHOLD
from ifcn_viz.inference.postprocess import paste_window_probs, pixel_span
from ifcn_viz.inference.types import Provenance, ProvenanceEntry, ScaleMaps, WindowResult
from ifcn_viz.model.assemble import OUTSIDE_LOGIT, _check_km, assemble_at, bin_edges, cell_to_map_index
from ifcn_viz.model.geometry import window_box


def _as_tensor(maps: Tensor | np.ndarray, name: str) -> Tensor:
    t = maps.detach().cpu() if isinstance(maps, Tensor) else torch.from_numpy(np.ascontiguousarray(maps))
    if not t.is_floating_point():
        raise TypeError(f"{name} must hold floating-point logits, got dtype {t.dtype}")
    return t.float()


@dataclass(frozen=True)
class WindowGrid:
    """All m x m windows of one scale (see the module docstring)."""

    maps: ScaleMaps
    m: int
    fill: float = OUTSIDE_LOGIT

    def __post_init__(self) -> None:
        if not isinstance(self.maps, ScaleMaps):
            raise TypeError(f"maps must be a ScaleMaps, got {type(self.maps).__name__}")
        _check_km(self.k, self.m)

    @classmethod
    def from_maps(
        cls,
        score_maps: Tensor | np.ndarray,
        m: int,
        stride: int = 8,
        objectness: Tensor | np.ndarray | None = None,
        image_hw: tuple[int, int] | None = None,
        factor: float = 1.0,
        fill: float = OUTSIDE_LOGIT,
        scale_index: int = 0,
    ) -> WindowGrid:
        """A grid over plain maps ``(k*k, H', W')`` (hand-made, ideal or learned), no Predictor needed.

        ``image_hw``: the original image's size (default: the map's extent, ``H' * stride / factor``); ``factor``:
        resized / original size (1 when the maps were computed on the image itself)."""
        s = _as_tensor(score_maps, "score_maps")
        if s.dim() == 4 and s.shape[0] == 1:
            s = s[0]
        if s.dim() != 3:
            raise ValueError(f"score_maps must be (k*k, H', W'), got shape {tuple(s.shape)}")
        kk = round(s.shape[0] ** 0.5)
        if kk * kk != s.shape[0]:
            raise ValueError(f"score_maps has {s.shape[0]} channels; expected k*k (1, 4, 9, 25, ...)")
        hf, wf = int(s.shape[1]), int(s.shape[2])
        if objectness is None:
            obj = torch.full((hf, wf), math.nan)
        else:
            obj = _as_tensor(objectness, "objectness").reshape(hf, wf)
        if not factor > 0:
            raise ValueError(f"factor must be > 0, got {factor}")
        if image_hw is None:
            image_hw = (max(1, round(hf * stride / factor)), max(1, round(wf * stride / factor)))
        resized = (max(1, round(image_hw[0] * factor)), max(1, round(image_hw[1] * factor)))
        sm = ScaleMaps(scale_index, min(resized), resized, float(factor), int(stride), s, obj, tuple(image_hw))
        return cls(sm, int(m), float(fill))

    # ------------------------------------------------------------------ geometry

    @property
    def k(self) -> int:
        return round(self.maps.score_maps.shape[0] ** 0.5)

    @property
    def stride(self) -> int:
        return self.maps.stride

    @property
    def feature_hw(self) -> tuple[int, int]:
        return self.maps.feature_hw

    @property
    def image_hw(self) -> tuple[int, int]:
        return self.maps.image_hw

    @property
    def factors(self) -> tuple[float, float]:
        """``(fy, fx)``: resized / original size per axis (exact for the resize that produced the maps)."""
        (rh, rw), (h, w) = self.maps.resized_hw, self.maps.image_hw
        return rh / h, rw / w

    @property
    def cell_size(self) -> tuple[float, float]:
        """``(height, width)`` of one feature cell in original pixels."""
        fy, fx = self.factors
        return self.stride / fy, self.stride / fx

    def cell_of_pixel(self, x: float, y: float) -> tuple[int, int]:
        """The feature cell (cy, cx) under original pixel (x, y): its centre, resized, divided by the stride."""
        if not (isinstance(x, (int, float, np.number)) and isinstance(y, (int, float, np.number))):
            raise TypeError(f"x and y must be numbers, got {type(x).__name__} and {type(y).__name__}")
        h, w = self.image_hw
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"pixel (x={x}, y={y}) is outside the image (width {w}, height {h})")
        fy, fx = self.factors
        hf, wf = self.feature_hw
        cy = min(int((math.floor(y) + 0.5) * fy // self.stride), hf - 1)
        cx = min(int((math.floor(x) + 0.5) * fx // self.stride), wf - 1)
        return cy, cx

    def _check_center(self, cy: int, cx: int) -> tuple[int, int]:
        hf, wf = self.feature_hw
        if not (0 <= int(cy) < hf and 0 <= int(cx) < wf):
            raise ValueError(f"window centre (cy={cy}, cx={cx}) is outside the {hf}x{wf} feature map")
        return int(cy), int(cx)

    def boxes(self, cy: Tensor, cx: Tensor) -> Tensor:
        """``[N, 4]`` float32 ``(x0, y0, x1, y1)`` in original pixels of the windows centred at cells (cy, cx)."""
        fy, fx = self.factors
        x0, y0, x1, y1 = window_box(cy.float(), cx.float(), self.m, self.stride)
        return torch.stack([x0 / fx, y0 / fy, x1 / fx, y1 / fy], -1).float()

    def copied_region(self, cy: int, cx: int, a: int, b: int) -> tuple[int, int, int, int] | None:
        """Map cells ``(y0, y1, x0, x1)`` (exclusive ends) that sub-window (a, b) of the window at (cy, cx) copies
        from map ``a * k + b``, clipped to the map; None when they lie wholly outside it (then they read ``fill``)."""
        return copied_region(self.k, self.m, cy, cx, a, b, self.feature_hw)

    # ------------------------------------------------------------------ windows

    def logits(self, cy: Tensor, cx: Tensor) -> Tensor:
        """``[N, m, m]`` assembled logits of the windows centred at cells (cy, cx); outside cells read ``fill``."""
        centers = torch.stack([torch.zeros_like(cy), cy, cx], 1).long()
        return assemble_at(self.maps.score_maps[None], centers, self.m, self.fill)

    def window(self, cy: int, cx: int) -> WindowResult:
        """The window centred at feature cell (cy, cx)."""
        cy, cx = self._check_center(cy, cx)
        t_cy, t_cx = torch.tensor([cy]), torch.tensor([cx])
        logits = self.logits(t_cy, t_cx)[0]
        obj = self.maps.objectness[cy, cx]
        return WindowResult(
            scale_index=self.maps.index,
            center=(cy, cx),
            logits=logits,
            probs=torch.sigmoid(logits),
            box=tuple(self.boxes(t_cy, t_cx)[0].tolist()),
            objectness=float(torch.sigmoid(obj)),
            cell_to_map=cell_to_map_index(self.k, self.m),
            k=self.k,
            m=self.m,
            stride=self.stride,
            factor=self.maps.factor,
            fill=self.fill,
        )

    def window_at_pixel(self, x: float, y: float) -> WindowResult:
        """The window centred at the feature cell under original pixel (x, y)."""
        return self.window(*self.cell_of_pixel(x, y))

    def provenance(self, x: float, y: float) -> Provenance:
        """Every window whose m x m extent covers the feature cell under (x, y), and what it reads there.

        A window centred at (cy, cx) covers cell (fy, fx) when ``|fy - cy| <= r`` and ``|fx - cx| <= r``; the cell
        sits at window cell ``(i, j) = (fy - cy + r, fx - cx + r)`` and copies score map ``cell_to_map[i, j]``
        there (Sec. 3.1): the same pixel feeds k x k different maps depending on where the window sits.  Centres
        are restricted to the feature map.
        """
        fy, fx = self.cell_of_pixel(x, y)
        r, (hf, wf) = self.m // 2, self.feature_hw
        column = self.maps.score_maps[:, fy, fx].tolist()  # (k*k,) the values at this cell in every map
        chan = cell_to_map_index(self.k, self.m).tolist()
        entries = []
        for cy in range(max(0, fy - r), min(hf, fy + r + 1)):
            for cx in range(max(0, fx - r), min(wf, fx + r + 1)):
                i, j = fy - cy + r, fx - cx + r
                c = chan[i][j]
                entries.append(ProvenanceEntry((cy, cx), (i, j), c, column[c]))
        return Provenance((int(x), int(y)), self.maps.index, (fy, fx), entries, self.k, self.m, self.cell_size)


def copied_region(
    k: int, m: int, cy: int, cx: int, a: int, b: int, map_hw: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """Map cells ``(y0, y1, x0, x1)`` (exclusive ends) that sub-window (a, b) of the window at (cy, cx) copies
    from map ``a * k + b``, clipped to a map of ``map_hw``; None when they lie wholly outside it."""
    e, r = bin_edges(k, m), m // 2
    y0, y1 = max(0, cy - r + e[a]), min(map_hw[0], cy - r + e[a + 1])
    x0, x1 = max(0, cx - r + e[b]), min(map_hw[1], cx - r + e[b + 1])
    return (y0, y1, x0, x1) if y0 < y1 and x0 < x1 else None


def _check_window(window: object) -> WindowResult:
    if not isinstance(window, WindowResult):
        raise TypeError(f"window must be an ifcn_viz.inference.types.WindowResult, got {type(window).__name__}")
    return window


def window_covered(window: WindowResult, image_hw: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool: the image pixels whose centre lies inside the window's box (those its paste samples)."""
    w = _check_window(window)
    h, wd = int(image_hw[0]), int(image_hw[1])
    box = torch.tensor([w.box], dtype=torch.float32)
    (ya,), (yb,) = (t.tolist() for t in pixel_span(box[:, 1], box[:, 3], h))
    (xa,), (xb,) = (t.tolist() for t in pixel_span(box[:, 0], box[:, 2], wd))
    out = np.zeros((h, wd), dtype=bool)
    out[ya:yb, xa:xb] = True
    return out


def paste_window(window: WindowResult, image_hw: tuple[int, int]) -> np.ndarray:
    """The window's probabilities pasted at original resolution (bilinear, exactly as the proposals are): ``(H, W)``
    float32, 0 outside the window's box (see :func:`window_covered` for the box's pixels)."""
    w = _check_window(window)
    return paste_window_probs(w.probs[None].float(), torch.tensor([w.box], dtype=torch.float32), image_hw)[0].numpy()


def window_mask(window: WindowResult, image_hw: tuple[int, int], threshold: float = WINDOW_THRESHOLD) -> np.ndarray:
    """``paste_window(...) >= threshold``: ``(H, W)`` bool -- the proposal this window makes."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"mask threshold must be in (0, 1), got {threshold}")
    return paste_window(window, image_hw) >= threshold


def paste_window_cells(window: WindowResult, image_hw: tuple[int, int], values: Tensor | None = None) -> np.ndarray:
    """Nearest-cell paste: each window cell fills the pixels (centres) of its own cell of the box; NaN outside.

    ``values``: ``(m, m)`` per-cell values to paste (default: the window's logits).  For ideal maps this is the
    exact inverse of their cell quantisation; learned windows are pasted bilinearly (:func:`paste_window`).
    """
    w = _check_window(window)
    vals = (w.logits if values is None else values).detach().cpu().float().numpy()
    if vals.shape != (w.m, w.m):
        raise ValueError(f"values must be ({w.m}, {w.m}), got {vals.shape}")
    h, wd = int(image_hw[0]), int(image_hw[1])
    x0, y0, x1, y1 = w.box
    ys = np.floor((np.arange(h) + 0.5 - y0) / ((y1 - y0) / w.m)).astype(np.int64)  # window row of each pixel row
    xs = np.floor((np.arange(wd) + 0.5 - x0) / ((x1 - x0) / w.m)).astype(np.int64)
    out = np.full((h, wd), np.nan, dtype=np.float32)
    yin, xin = (ys >= 0) & (ys < w.m), (xs >= 0) & (xs < w.m)
    if yin.any() and xin.any():
        out[np.ix_(yin, xin)] = vals[np.ix_(ys[yin], xs[xin])]
    return out
