"""Configuration: one frozen dataclass per concern, and named presets.

Settings marked *(paper)* are the paper's; *(uncertain)* come from secondary summaries (../shared/PAPER.md)
and are configurable; *(ours)* are choices the paper does not make.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "vgg16"  # (paper) vgg16 | resnet18 | resnet50 | tiny
    k: int = 5  # (paper) k x k relative positions -> k^2 score maps; the final model uses 5
    m: int = 21  # (paper) window size in feature cells: 21 cells = 168 px at stride 8
    output_stride: int = 8  # (paper) 8; ResNets also allow 16
    head_channels: int = 512  # (paper) width of both branches' hidden conv
    backbone_width: int = 32  # (ours) only for the tiny backbone
    backbone_weights: str | None = None  # None (random) | "imagenet" | a local file path
    # (ours) window cells outside the map: sigmoid(-20) ~ 2e-9, "not object" (= assemble.OUTSIDE_LOGIT)
    fill_logit: float = -20.0

    def __post_init__(self) -> None:
        from ifcn_viz.model.assemble import _check_km
        from ifcn_viz.model.backbones import BACKBONES

        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}")
        _check_km(self.k, self.m)
        if self.output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {self.output_stride}")
        if self.head_channels < 1:
            raise ValueError(f"head_channels must be >= 1, got {self.head_channels}")

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
    nms_iou: float = 0.8  # (paper) NMS on the masks' tight boxes at IoU 0.8
    mask_threshold: float = 0.4  # (uncertain) not stated; FCIS uses 0.4, DeepMask 0.2
    top_n: int = 100  # (paper) 10 / 100 / 1000 for AR


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
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
