"""The Predictor's answers: plain dataclasses of numpy arrays and tensors, shared by viz, app and notebooks.

Coordinates: ``(x, y)`` for image pixels of the *original* image (as set with ``set_image``); feature cells
are ``(cy, cx)`` at one scale; boxes are ``(x0, y0, x1, y1)`` floats in original-image pixels, x1/y1 exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import Tensor


@dataclass(frozen=True)
class ScaleMaps:
    """What the backbone produced for one scale of the current image (cached by ``set_image``)."""

    index: int  # position in the Predictor's scale list
    shorter_side: int  # requested shorter side in pixels
    resized_hw: tuple[int, int]  # (h, w) of the image fed to the model at this scale
    factor: float  # resized / original size (same for both axes up to rounding)
    stride: int  # input pixels per feature cell
    score_maps: Tensor  # (k*k, H', W') float32 logits, on CPU
    objectness: Tensor  # (H', W') float32 logits, on CPU
    image_hw: tuple[int, int]  # (h, w) of the original image

    @property
    def feature_hw(self) -> tuple[int, int]:
        return tuple(self.objectness.shape)  # type: ignore[return-value]


@dataclass(frozen=True)
class ImageMaps:
    """One image and what the backbone produced for it at every scale: :meth:`Predictor.encode`'s frozen result.

    Everything after the backbone -- windows, provenance, proposals -- reads it; a Predictor answers about any
    ``ImageMaps`` it made (``maps=``), so many images (one per user of the app) share one model.
    """

    image: np.ndarray  # (H, W, 3) uint8, the original image
    scales: tuple[ScaleMaps, ...]  # one per scale, in the pyramid's order (ScaleMaps.index is the position)

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])

    @property
    def default_scale(self) -> int:
        """The middle scale (index ``len(scales) // 2``): its windows are mid-sized among the scales' windows."""
        return len(self.scales) // 2

    @property
    def nbytes(self) -> int:
        """Memory held: the image and every scale's score maps and objectness."""
        maps = sum(sm.score_maps.nbytes + sm.objectness.nbytes for sm in self.scales)
        return int(self.image.nbytes + maps)


@dataclass(frozen=True)
class Proposals:
    """Top-N segment proposals, best first."""

    masks: np.ndarray  # (N, H, W) bool at original image resolution
    boxes: np.ndarray  # (N, 4) float32 tight boxes of the masks, xyxy, original pixels
    scores: np.ndarray  # (N,) float32 objectness probabilities
    scale_index: np.ndarray  # (N,) int: which scale each came from
    centers: np.ndarray  # (N, 2) int: window centre (cy, cx) in that scale's feature cells
    window_boxes: np.ndarray  # (N, 4) float32 the windows' extents in original pixels
    nms_trace: list[NMSStep] = field(default_factory=list)  # every candidate's NMS fate, in score order

    def __len__(self) -> int:
        return len(self.scores)


@dataclass(frozen=True)
class Candidates:
    """What :meth:`Predictor.proposals` computes before its final paste, stage by stage (paper, Sec. 3.3).

    Ranks ``0..K-1`` are the best ``pre_nms_top_k`` windows of all chosen scales in objectness order; the
    per-rank tensors below are indexed by them.  ``after_nms`` and ``final`` are ranks too; ``nms_trace`` (when
    traced) numbers candidates among the *non-empty* ones, as :attr:`Proposals.nms_trace` does.
    """

    scale_index: Tensor  # (K,) long: the scale of each ranked window
    cy: Tensor  # (K,) long: its centre cell
    cx: Tensor  # (K,) long
    scores: Tensor  # (K,) float: sigmoid(objectness), descending
    probs: Tensor  # (K, m, m) float: the assembled window probabilities
    window_boxes: Tensor  # (K, 4) float: the windows' extents in original pixels (xyxy)
    tight: Tensor  # (K, 4) float: tight boxes of the binarised pasted masks (0 for empty masks)
    nonempty: Tensor  # (K,) bool: the mask has at least one pixel at the threshold
    after_nms: Tensor  # (L,) long: ranks of the non-empty windows NMS kept, best first
    final: Tensor  # (N,) long: ranks of the top-N proposals (``after_nms[:top_n]``)
    nms_trace: list[NMSStep]
    windows_per_scale: tuple[int, ...]  # windows scored at each scale (0 for scales not chosen)
    image_hw: tuple[int, int]
    threshold: float  # mask threshold (probability)
    nms_iou: float
    top_n: int


@dataclass(frozen=True)
class NMSStep:
    """One candidate in NMS order: kept, or suppressed by an earlier kept one at IoU ``iou``."""

    candidate: int  # rank among the pre-NMS candidates (score order)
    kept: bool
    suppressed_by: int | None  # candidate rank of the kept proposal that suppressed it
    iou: float | None  # the box IoU that decided it (None when kept)
    box: tuple[float, float, float, float]
    score: float


@dataclass(frozen=True)
class WindowResult:
    """The m x m window centred at (the feature cell under) an image pixel."""

    scale_index: int
    center: tuple[int, int]  # (cy, cx) feature cell
    logits: Tensor  # (m, m) assembled logits
    probs: Tensor  # (m, m) sigmoid(logits)
    box: tuple[float, float, float, float]  # window extent in original-image pixels
    objectness: float  # objectness probability at the centre
    cell_to_map: Tensor  # (m, m) long: the score map each cell copies from
    k: int
    m: int
    stride: int
    factor: float  # this scale's resized / original size
    fill: float  # the logit read by cells outside the map (the model's ``fill_logit``)

    @property
    def cell_size(self) -> tuple[float, float]:
        """``(height, width)`` of one window cell in original pixels (the box is m cells a side)."""
        x0, y0, x1, y1 = self.box
        return (y1 - y0) / self.m, (x1 - x0) / self.m


@dataclass(frozen=True)
class ProvenanceEntry:
    center: tuple[int, int]  # (cy, cx) of a window that covers the pixel
    cell: tuple[int, int]  # (i, j): the window cell the pixel falls in
    channel: int  # the score map that cell copies from
    value: float  # the logit read there (== that window's assembled logit at (i, j))


@dataclass(frozen=True)
class Provenance:
    """For one image pixel: every window (at one scale) that covers it, and what each reads there."""

    pixel: tuple[int, int]  # (x, y) in original pixels
    scale_index: int
    feature_cell: tuple[int, int]  # (y, x) feature cell under the pixel
    entries: list[ProvenanceEntry]
    k: int
    m: int
    cell_size: tuple[float, float]  # (height, width) of one feature cell in original pixels

    def value_grid(self) -> np.ndarray:
        """``(H', W')``-free view: an ``m x m`` grid over window centres around the pixel, NaN where none."""
        grid = np.full((self.m, self.m), np.nan, dtype=np.float32)
        r = self.m // 2
        fy, fx = self.feature_cell
        for e in self.entries:
            grid[e.center[0] - fy + r, e.center[1] - fx + r] = e.value
        return grid
