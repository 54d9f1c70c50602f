"""The Predictor: run the backbone once per image and scale, then answer many cheap questions.

Like segment-anything's predictor: ``encode(image)`` runs the network once per inference scale and returns the
score maps and objectness (CPU, float32) as a frozen :class:`~ifcn_viz.inference.types.ImageMaps`;
``proposals``, ``window`` and ``provenance`` only read one (``maps=``), so a click in the app never reruns the
backbone, and one Predictor serves many images.  ``set_image`` is the thin convenience: it encodes the image and
keeps its maps as the default of every query.

Multi-scale inference (paper, Sec. 3.3): the image is resized so that its shorter side is each of
``infer.scales`` (the paper's six, about 119 ... 900 px, are uncertain; the longer side is capped at
``infer.max_side``), with antialiased bilinear resizing.  A window at a scale with factor f covers
``m * stride / f`` original pixels: small scales propose large objects, large scales small ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ifcn_viz.config import PRESETS, InferConfig
from ifcn_viz.inference.postprocess import (
    nms_with_trace,
    paste_window_masks,
    top_k_windows,
    window_mask_boxes,
)
from ifcn_viz.inference.pyramid import PyramidLevel, adaptive_shorter_sides, level, scale_factor
from ifcn_viz.inference.types import Candidates, ImageMaps, Proposals, Provenance, ScaleMaps, WindowResult
from ifcn_viz.inference.window import WindowGrid
from ifcn_viz.limits import check_mask_budget, check_pyramid
from ifcn_viz.model.assemble import OUTSIDE_LOGIT, cell_to_map_index
from ifcn_viz.precision import inference_autocast


def default_infer_config(model: nn.Module, card: dict[str, Any] | None = None) -> InferConfig:
    """The card's ``infer_config``, else its ``preset``'s, else the preset whose model config matches, else defaults."""
    if card and isinstance(card.get("infer_config"), dict):
        d = dict(card["infer_config"])
        if "scales" in d:
            d["scales"] = tuple(int(s) for s in d["scales"])
        try:
            return InferConfig(**d)
        except TypeError as err:
            raise ValueError(f"the model card's infer_config is invalid: {err}") from err
    if card and card.get("preset") in PRESETS:
        return PRESETS[card["preset"]].infer
    config = getattr(model, "config", None)
    for preset in PRESETS.values():
        if preset.model == config:
            return preset.infer
    return InferConfig()


class Predictor:
    """Segment proposals, windows and provenance for one image at a time (see the module docstring).

    Args:
        model: an :class:`~ifcn_viz.model.InstanceFCN` (or any module with ``config.k``, ``config.m``,
            ``stride`` and a forward returning ``score_maps`` ``[1, k*k, H', W']`` and ``objectness``
            ``[1, 1, H', W']``).
        infer: inference settings; default: the matching preset's (``tiny`` for a tiny model), else
            :class:`InferConfig` (the paper's).
        device: where the backbone runs; default: where the model's parameters already are.  The Predictor
            never changes the model's train/eval mode for longer than one ``set_image`` call.
    """

    def __init__(self, model: nn.Module, infer: InferConfig | None = None, device: str | torch.device | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module (an InstanceFCN), got {type(model).__name__}")
        self.model = model
        self.infer = infer if infer is not None else default_infer_config(model)
        if device is None:
            param = next(model.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
        self.device = torch.device(device)
        self.model.to(self.device)
        self.k: int = int(model.config.k)
        self.m: int = int(model.config.m)
        self.stride: int = int(model.stride)
        self.fill: float = float(getattr(model.config, "fill_logit", OUTSIDE_LOGIT))
        self.cell_to_map = cell_to_map_index(self.k, self.m)  # (m, m) long
        self.maps: ImageMaps | None = None  # set_image's image: the default of every query
        self.card: dict[str, Any] | None = None  # the model card, when loaded with from_checkpoint

    @classmethod
    def from_checkpoint(
        cls,
        name_or_path: str | Path = "shipped",
        device: str | torch.device | None = None,
        infer: InferConfig | None = None,
    ) -> Predictor:
        """Load a checkpoint (``"shipped"`` or a ``.safetensors`` path) with ``ifcn_viz.checkpoints``."""
        from ifcn_viz.checkpoints import load_checkpoint

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model, card = load_checkpoint(name_or_path, device=device)
        predictor = cls(model, infer if infer is not None else default_infer_config(model, card), device)
        predictor.card = card
        return predictor

    # ------------------------------------------------------------------ set_image

    def scale_size(self, image_hw: tuple[int, int], shorter_side: int) -> tuple[tuple[int, int], float]:
        """``((h, w), factor)`` of the image resized so its shorter side is ``shorter_side`` (longer side capped)."""
        h, w = image_hw
        factor = scale_factor(image_hw, shorter_side, self.infer.max_side)
        return (max(1, round(h * factor)), max(1, round(w * factor))), factor

    def shorter_sides(self, image_hw: tuple[int, int]) -> list[int]:
        """The shorter side of every scale an image of ``image_hw`` is run at: ``infer.scales`` for the fixed
        pyramid, else the image-adaptive pyramid (:mod:`ifcn_viz.inference.pyramid`)."""
        if self.infer.pyramid == "fixed":
            return list(self.infer.scales)
        return adaptive_shorter_sides(
            image_hw,
            self.m * self.stride,
            min_object=self.infer.min_object,
            scale_step=self.infer.scale_step,
            max_pixels=self.infer.max_pixels,
            max_side=self.infer.max_side,
        )

    @property
    def image(self) -> np.ndarray | None:
        """``set_image``'s image (``(H, W, 3)`` uint8), or None."""
        return None if self.maps is None else self.maps.image

    @property
    def scales(self) -> list[ScaleMaps]:
        """``set_image``'s maps, one :class:`ScaleMaps` per scale (empty before ``set_image``)."""
        return [] if self.maps is None else list(self.maps.scales)

    @property
    def levels(self) -> list[PyramidLevel]:
        """For each scale of the current image: its shorter side, factor and the object sizes it serves."""
        return self.levels_of(self._maps(None))

    def levels_of(self, maps: ImageMaps) -> list[PyramidLevel]:
        """For each scale of ``maps``: its shorter side, factor and the object sizes it serves."""
        window_px = self.m * self.stride
        return [level(maps.hw, sm.shorter_side, window_px, self.infer.max_side) for sm in maps.scales]

    def set_image(self, image: Any) -> None:
        """Encode ``image`` (:meth:`encode`) and keep its maps as the default of every query."""
        self.maps = self.encode(image)

    def encode(self, image: Any) -> ImageMaps:
        """Load ``image`` (see :func:`ifcn_viz.data.io.load_image`) and run the backbone once per scale: the
        frozen :class:`ImageMaps` every query reads.  The Predictor itself is not changed."""
        from ifcn_viz.data.io import load_image

        rgb = load_image(image)  # (H, W, 3) uint8; raises ImageLoadError with the reason
        h, w = rgb.shape[:2]
        sides = self.shorter_sides((h, w))
        check_pyramid(h, w, sides, self.infer.max_side, self.m * self.stride)  # before anything is resized
        x = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1)[None].float().div_(255.0)  # (1, 3, H, W)
        scales: list[ScaleMaps] = []
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), inference_autocast(self.infer.precision, self.device) as dtype:
                for i, shorter in enumerate(sides):
                    (rh, rw), factor = self.scale_size((h, w), shorter)
                    xi = x if (rh, rw) == (h, w) else F.interpolate(x, (rh, rw), mode="bilinear", antialias=True)
                    xi = xi.clamp_(0.0, 1.0)
                    if dtype is not None:  # the fast path: channels_last convolutions (fp32 stays the exact output)
                        xi = xi.contiguous(memory_format=torch.channels_last)
                    out = self.model(xi)
                    score_maps = out.score_maps[0].float().cpu().contiguous()  # (k*k, H', W')
                    objectness = out.objectness[0, 0].float().cpu().contiguous()  # (H', W')
                    scales.append(
                        ScaleMaps(i, int(shorter), (rh, rw), factor, int(out.stride), score_maps, objectness, (h, w))
                    )
        finally:
            self.model.train(was_training)
        return ImageMaps(rgb, tuple(scales))

    # ------------------------------------------------------------------ helpers

    def _maps(self, maps: ImageMaps | None) -> ImageMaps:
        """``maps``, else ``set_image``'s."""
        if maps is not None:
            return maps
        if self.maps is None:
            raise RuntimeError(
                "no image set: call predictor.set_image(image) first (or pass maps=predictor.encode(image))"
            )
        return self.maps

    def _require_image(self, maps: ImageMaps | None = None) -> np.ndarray:
        return self._maps(maps).image

    def _scale(self, scale: int | None, maps: ImageMaps | None = None) -> ScaleMaps:
        maps = self._maps(maps)
        if scale is None:
            scale = maps.default_scale
        if not isinstance(scale, (int, np.integer)) or isinstance(scale, bool):
            raise TypeError(f"scale must be an int index into predictor.scales, got {type(scale).__name__}")
        if not 0 <= scale < len(maps.scales):
            raise ValueError(f"scale index {scale} is out of range: this predictor has {len(maps.scales)} scales")
        return maps.scales[int(scale)]

    @property
    def default_scale(self) -> int:
        """The middle scale (index ``len(scales) // 2``): its windows are mid-sized among the scales' windows."""
        return self.maps.default_scale if self.maps is not None else len(self.infer.scales) // 2

    def grid(self, scale: int | None = None, *, maps: ImageMaps | None = None) -> WindowGrid:
        """Every window of one scale (:class:`~ifcn_viz.inference.window.WindowGrid`), with this model's m and fill."""
        return WindowGrid(self._scale(scale, maps), self.m, self.fill)

    def pixel_to_cell(self, x: float, y: float, sm: ScaleMaps) -> tuple[int, int]:
        """The feature cell (cy, cx) at scale ``sm`` under original pixel (x, y) (its centre, resized)."""
        return WindowGrid(sm, self.m, self.fill).cell_of_pixel(x, y)

    # ------------------------------------------------------------------ queries

    def window(self, x: float, y: float, scale: int | None = None, *, maps: ImageMaps | None = None) -> WindowResult:
        """The m x m window centred at the feature cell under original pixel (x, y); no backbone run."""
        return self.grid(scale, maps=maps).window_at_pixel(x, y)

    def window_at(self, cy: int, cx: int, scale: int | None = None, *, maps: ImageMaps | None = None) -> WindowResult:
        """The m x m window centred at feature cell (cy, cx) of ``scale`` (e.g. a proposal's ``centers[i]``)."""
        return self.grid(scale, maps=maps).window(cy, cx)

    def provenance(self, x: float, y: float, scale: int | None = None, *, maps: ImageMaps | None = None) -> Provenance:
        """Every window (at one scale) whose m x m extent covers the feature cell under (x, y), and what it reads
        (:meth:`WindowGrid.provenance <ifcn_viz.inference.window.WindowGrid.provenance>`)."""
        return self.grid(scale, maps=maps).provenance(x, y)

    def candidates(
        self,
        top_n: int | None = None,
        nms_iou: float | None = None,
        mask_threshold: float | None = None,
        scales: Sequence[int] | None = None,
        pre_nms_top_k: int | None = None,
        trace_nms: bool = False,
        *,
        maps: ImageMaps | None = None,
    ) -> Candidates:
        """Every stage of :meth:`proposals` before the final paste (:class:`~ifcn_viz.inference.types.Candidates`):
        the windows scored, the best ``pre_nms_top_k`` assembled, their masks' tight boxes, NMS.  ``proposals``
        pastes ``candidates(...).final``; :func:`ifcn_viz.inference.funnel.proposal_funnel` counts the stages."""
        maps = self._maps(maps)
        img = maps.image
        cfg = self.infer
        top_n = cfg.top_n if top_n is None else top_n
        nms_iou = cfg.nms_iou if nms_iou is None else nms_iou
        thr = cfg.mask_threshold if mask_threshold is None else mask_threshold
        pre_k = cfg.pre_nms_top_k if pre_nms_top_k is None else pre_nms_top_k
        for name, v in (("top_n", top_n), ("pre_nms_top_k", pre_k)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be an int >= 0, got {v!r}")
        if not 0.0 < thr < 1.0:
            raise ValueError(f"mask_threshold must be in (0, 1), got {thr}")
        if not 0.0 < nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou}")
        chosen = list(range(len(maps.scales))) if scales is None else [self._scale(s, maps).index for s in scales]
        hw = img.shape[:2]
        check_mask_budget(hw[0], hw[1], top_n)  # the masks come back at full resolution

        # 1. score every window at every chosen scale; keep the best pre_k (ranks = score order)
        scores, s_local, cy, cx = top_k_windows([maps.scales[i].objectness for i in chosen], pre_k)
        s_idx = torch.tensor(chosen, dtype=torch.long)[s_local] if len(chosen) else s_local
        n = scores.numel()
        logits = torch.empty(n, self.m, self.m)
        wboxes = torch.empty(n, 4)
        for i in chosen:
            sel = (s_idx == i).nonzero()[:, 0]
            if sel.numel():
                grid = self.grid(i, maps=maps)
                logits[sel] = grid.logits(cy[sel], cx[sel])  # (n_i, m, m)
                wboxes[sel] = grid.boxes(cy[sel], cx[sel])
        probs = torch.sigmoid(logits)  # (n, m, m)

        # 2. the masks' tight boxes; drop empty masks; NMS on the boxes
        tight, nonempty = window_mask_boxes(probs, wboxes, hw, thr)
        cand = nonempty.nonzero()[:, 0]  # candidate ranks, still in score order
        keep, steps = nms_with_trace(tight[cand], nms_iou, trace=trace_nms, scores=scores[cand])
        final = cand[keep[:top_n]]

        return Candidates(
            scale_index=s_idx, cy=cy, cx=cx, scores=scores, probs=probs, window_boxes=wboxes, tight=tight,
            nonempty=nonempty, after_nms=cand[keep], final=final, nms_trace=steps, windows_per_scale=tuple(
                int(maps.scales[i].objectness.numel()) if i in chosen else 0 for i in range(len(maps.scales))),
            image_hw=(int(hw[0]), int(hw[1])), threshold=float(thr), nms_iou=float(nms_iou), top_n=int(top_n),
        )  # fmt: skip

    def proposals(
        self,
        top_n: int | None = None,
        nms_iou: float | None = None,
        mask_threshold: float | None = None,
        scales: Sequence[int] | None = None,
        pre_nms_top_k: int | None = None,
        trace_nms: bool = False,
        *,
        maps: ImageMaps | None = None,
    ) -> Proposals:
        """Segment proposals for the current image, best first (paper, Sec. 3.3).

        Every window at every chosen scale (``scales``: indices into ``self.scales``; default all) is scored
        by sigmoid(objectness); the best ``pre_nms_top_k`` are assembled, their masks' tight boxes found
        (exactly, without full-resolution pasting), empty masks dropped, NMS on the boxes at ``nms_iou``,
        and the best ``top_n`` pasted at image resolution and binarised at ``mask_threshold``.
        With ``trace_nms`` the result's ``nms_trace`` has one :class:`NMSStep` per non-empty candidate, in score
        order; ``NMSStep.candidate`` / ``suppressed_by`` are ranks in that order, and the kept ones' first
        ``len(proposals)`` steps are the returned proposals.
        """
        c = self.candidates(top_n, nms_iou, mask_threshold, scales, pre_nms_top_k, trace_nms, maps=maps)
        final = c.final

        # 3. paste the survivors at full resolution
        # (N, H, W) bool; only inside each mask's tight box, which is known exactly already
        masks, boxes = paste_window_masks(c.probs[final], c.window_boxes[final], c.image_hw, c.threshold,
                                          within=c.tight[final])  # fmt: skip
        return Proposals(
            masks=masks.numpy(),
            boxes=boxes.numpy(),
            scores=c.scores[final].numpy().astype(np.float32),
            scale_index=c.scale_index[final].numpy(),
            centers=torch.stack([c.cy[final], c.cx[final]], 1).numpy() if final.numel() else np.zeros((0, 2), np.int64),
            window_boxes=c.window_boxes[final].numpy(),
            nms_trace=c.nms_trace,
        )
