"""Configuration: one frozen dataclass per concern, and named presets.

Settings marked *(paper)* are the paper's; *(uncertain)* come from secondary summaries (docs/PAPER_NOTES.md)
and are configurable; *(ours)* are choices the paper does not make.

This module is light (no torch): it checks what it can check by arithmetic.  Names that only the model knows --
which backbones exist and which output strides each offers -- are checked against the backbone registry
(``ifcn_viz.model.backbones``) when the model is built, with the same one-line ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

# The mask heads a model can have (``ModelConfig.head``); built by ``ifcn_viz.model.build_model``.
HEADS: dict[str, str] = {
    "ifcn": "InstanceFCN's k^2 instance-sensitive score maps and the parameter-free assembler (the paper)",
    "fc": "the DeepMask-style sliding fc mask head, the paper's ablation baseline (k becomes m)",
    "learned": "k^2 score maps and a learned assembler: each window cell mixes the k^2 maps (k becomes m; ours)",
}
# Training data sources (``TrainConfig.dataset``, ``ifcn-viz train --dataset``) and mixed-precision modes (``--amp``).
DATASETS: tuple[str, ...] = ("synthetic", "coco", "voc")
AMP: tuple[str, ...] = ("auto", "bf16", "fp16", "none")  # TrainConfig.amp, --amp (ifcn_viz/precision.py)
SHIPPED_WHERE: tuple[str, ...] = ("cpu", "gpu")  # --shipped: the recipes of ifcn_viz/train/recipe.py
# How the learned assembler starts (``head="learned"``, ifcn_viz/model/learned_assembler.py).
ASSEMBLER_INITS: tuple[str, ...] = ("onehot", "random")


def check_km(k: int, m: int) -> None:
    """Refuse a grid ``k`` / window ``m`` pair the assembler cannot use (the model and the assembler use it too)."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if not isinstance(m, int) or isinstance(m, bool) or m < 1 or m % 2 == 0:
        raise ValueError(f"m must be an odd integer >= 1 (the window is centred on a cell), got {m!r}")
    if k > m:
        raise ValueError(f"k must be <= m (each of the k x k sub-windows needs at least one cell), got k={k}, m={m}")


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "vgg16"  # (paper) a name registered in ifcn_viz.model.backbones.BACKBONES (checked at build)
    k: int = 5  # (paper) k x k relative positions -> k^2 score maps; the final model uses 5
    m: int = 21  # (paper) window size in feature cells: 21 cells = 168 px at stride 8
    output_stride: int = 8  # (paper) 8; ResNets also allow 16
    head_channels: int = 512  # (paper) width of both branches' hidden conv
    backbone_width: int = 32  # (ours) only for the tiny backbone
    backbone_weights: str | None = None  # None (random) | "imagenet" | a local file path
    # (ours) window cells outside the map: sigmoid(-20) ~ 2e-9, "not object" (= assemble.OUTSIDE_LOGIT)
    fill_logit: float = -20.0
    # the mask head: "ifcn" (the paper) | "fc" (the ablation's baseline); cards written before it existed load as ifcn
    head: str = "ifcn"
    # head="learned" only: the k of the k^2 score maps its learned assembler reads (its ``k`` is m, as for "fc")
    learned_k: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ValueError(f"backbone must be a backbone name, got {self.backbone!r}")
        check_km(self.k, self.m)
        _positive_int("output_stride", self.output_stride)
        _positive_int("head_channels", self.head_channels)
        _positive_int("backbone_width", self.backbone_width)
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; choose one of {', '.join(HEADS)}")
        if self.learned_k is not None:
            if self.head != "learned":
                raise ValueError(f"learned_k is only for head='learned', got head={self.head!r}")
            check_km(self.learned_k, self.m)
        fill = self.fill_logit
        if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not math.isfinite(fill):
            raise ValueError(f"fill_logit must be a finite number, got {fill!r}")

    @property
    def window_pixels(self) -> int:
        """The window's side in input pixels (m * stride; 168 for the paper)."""
        return self.m * self.output_stride

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


# ---------------------------------------------------------------------------------- the numbers a user can move
# One source each: InferConfig's defaults, the app's sliders, the API's defaults, the viz's and the CLI's help read
# them here (a test finds no other literal of them in the app).
MASK_THRESHOLD = 0.4  # (uncertain) proposals' masks: pasted probability >= this; not stated: FCIS 0.4, DeepMask 0.2
WINDOW_THRESHOLD = 0.5  # (ours) one window's mask on its own (a click, the Draw tab, the viz): probability >= this
NMS_IOU = 0.8  # (paper) NMS on the masks' tight boxes at this IoU
IDEAL_LOGIT = 10.0  # (ours) ideal score maps: +this inside an instance's sub-window, -this elsewhere and off the map
FOUND_IOU = 0.5  # (COCO) an object counts as found by a proposal at mask IoU >= this (recall@0.5)
TOP_N = 10  # (ours) the app's and the API's default number of proposals shown (AR uses InferConfig.top_n)
APP_MAX_TOP_N = 50  # (ours) the app's top-N slider and the API stop here (a page shows at most this many masks)
NMS_MAX_STEPS = 30  # (ours) NMS steps the app can step through and draw (the slider runs 0 .. NMS_MAX_STEPS - 1)


@dataclass(frozen=True)
class SliderRange:
    """The range (and step) the app's slider offers for a number; the API and the CLI check their own bounds."""

    lo: float
    hi: float
    step: float


MASK_THRESHOLD_SLIDER = SliderRange(0.05, 0.95, 0.05)
NMS_IOU_SLIDER = SliderRange(0.1, 1.0, 0.05)

# The yardsticks a model is measured on (ifcn_viz/train/yardsticks.py; the app's Model tab): name -> (short label
# for tables, what it is for the app's model description); and the numbers reported on each.
YARDSTICKS: dict[str, tuple[str, str]] = {
    "validation": ("own validation", "its own validation scenes"),
    "independent": ("independent synthetic", "independent synthetic scenes (styles it never saw)"),
    "real_photos": ("real photographs", "46 hand-drawn objects on 7 real photographs"),
}
YARDSTICK_METRICS: tuple[str, ...] = ("AR@10", "AR@100", "recall50@100")

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")  # InferConfig.precision (ifcn_viz/precision.py)
PAPER_SCALES: tuple[int, ...] = (119, 178, 267, 400, 600, 900)  # (uncertain) shorter sides at inference


@dataclass(frozen=True)
class InferConfig:
    scales: tuple[int, ...] = PAPER_SCALES  # shorter side of each scale, in pixels (uncertain); pyramid="fixed"
    max_side: int = 2000  # (ours) cap on the longer side at any scale
    # (ours) "fixed": run ``scales``; "adaptive": derive the scales from each image (ifcn_viz/inference/pyramid.py)
    pyramid: str = "fixed"
    min_object: int = 32  # (ours) adaptive: the smallest object side (original px) a scale must serve
    scale_step: float = 2.0**0.5  # (ours) adaptive: ratio between neighbouring scales, at most the training band
    max_pixels: int = 2_500_000  # (ours) adaptive: budget on the pixels of all scales together
    pre_nms_top_k: int = 2000  # (ours) windows kept per image before mask pasting and NMS
    nms_iou: float = NMS_IOU  # (paper) NMS on the masks' tight boxes at IoU 0.8
    mask_threshold: float = MASK_THRESHOLD  # (uncertain) not stated; FCIS uses 0.4, DeepMask 0.2
    top_n: int = 100  # (paper) 10 / 100 / 1000 for AR
    # (ours) the backbone's float type: "auto" = bf16 autocast where the device computes bf16 natively, else fp32;
    # "fp32"; "bf16" (ifcn_viz/precision.py)
    precision: str = "auto"

    def __post_init__(self) -> None:
        scales = self.scales
        if isinstance(scales, list):  # e.g. read back from JSON
            scales = tuple(scales)
            object.__setattr__(self, "scales", scales)
        bad = not isinstance(scales, tuple) or not scales
        if bad or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in scales):
            raise ValueError(
                f"scales must be a non-empty tuple of positive ints (shorter sides in pixels), got {scales!r}"
            )
        _positive_int("max_side", self.max_side)
        for name in ("top_n", "pre_nms_top_k"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if isinstance(self.nms_iou, bool) or not isinstance(self.nms_iou, (int, float)) or not 0 < self.nms_iou <= 1:
            raise ValueError(f"nms_iou must be in (0, 1], got {self.nms_iou!r}")
        thr = self.mask_threshold
        if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 < thr < 1:
            raise ValueError(f"mask_threshold must be in (0, 1), got {thr!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if self.pyramid not in ("fixed", "adaptive"):
            raise ValueError(f"pyramid must be 'fixed' or 'adaptive', got {self.pyramid!r}")
        _positive_int("min_object", self.min_object)
        _positive_int("max_pixels", self.max_pixels)
        step = self.scale_step
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not 1 < step <= 2:
            raise ValueError(f"scale_step must be in (1, 2], got {step!r}")


@dataclass(frozen=True)
class Preset:
    model: ModelConfig
    infer: InferConfig = field(default_factory=InferConfig)
    description: str = ""


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        ModelConfig(backbone="vgg16", k=5, m=21, output_stride=8, head_channels=512),
        InferConfig(),
        "The paper's model: dilated VGG-16 at stride 8, k = 5, m = 21, six inference scales.",
    ),
    "resnet50": Preset(
        ModelConfig(backbone="resnet50", k=5, m=21, output_stride=8, head_channels=512),
        InferConfig(),
        "ResNet-50 with dilated layer3/layer4 (stride 8) under the paper's heads: not in the paper.",
    ),
    "tiny": Preset(
        ModelConfig(backbone="tiny", k=5, m=21, output_stride=8, head_channels=128, backbone_width=32),
        InferConfig(scales=(192, 288, 432), pre_nms_top_k=1000, pyramid="adaptive"),
        "A small stride-8 CNN that trains in minutes on 2 CPU cores (ours), paper heads at 128-d.",
    ),
    "resnet18": Preset(
        ModelConfig(backbone="resnet18", k=5, m=21, output_stride=8, head_channels=128),
        InferConfig(scales=(192, 288, 432), pre_nms_top_k=1000, pyramid="adaptive"),
        "ResNet-18 (layer3/layer4 dilated, stride 8) under the tiny preset's heads and inference: the scale study's "
        "ResNet (not in the paper; python -m ifcn_viz.train.scale_study).",
    ),
    "small": Preset(
        ModelConfig(backbone="tiny", k=5, m=21, output_stride=8, head_channels=256, backbone_width=64),
        InferConfig(scales=(192, 288, 432), pre_nms_top_k=1000, pyramid="adaptive"),
        "The tiny CNN twice as wide (3.6M parameters), paper heads at 256-d, about 3x slower (ours).",
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
