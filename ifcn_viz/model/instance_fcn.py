"""InstanceFCN: backbone -> {instance-sensitive score maps, objectness} (paper, Sec. 3, Fig. 3).

The model sees only batched float images in [0, 1]; it normalises them with ImageNet statistics itself, so
every caller (training, Predictor, notebooks) feeds the same thing.  ``forward`` returns the same
:class:`InstanceFCNOutput` in training and evaluation; losses live in ``ifcn_viz.train.loss``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from ifcn_viz.config import ModelConfig
from ifcn_viz.model.assemble import assemble_at, assemble_dense, cell_to_map_index
from ifcn_viz.model.backbones import build_backbone
from ifcn_viz.model.heads import InstanceBranch, ObjectnessBranch, register_head

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class InstanceFCNOutput(NamedTuple):
    score_maps: Tensor  # (B, k*k, H', W') instance-sensitive score-map logits
    objectness: Tensor  # (B, 1, H', W') objectness logits: "an instance is centred in the window here"
    features: Tensor  # (B, C, H', W') backbone features (for the viz: receptive fields, activations)
    stride: int  # input pixels per feature cell (8 for the paper)


def check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor [B, 3, H, W], got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape [B, 3, H, W], got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(
            f"images must be floating point in [0, 1], got dtype {images.dtype} "
            "(convert uint8 with images.float() / 255)"
        )


@register_head("ifcn")
class InstanceFCN(nn.Module):
    """The paper's model; ``config.head`` says which mask head it has (``"ifcn"`` here; see
    :func:`ifcn_viz.model.build.build_model`, which builds the class registered for each head)."""

    head: str  # the ModelConfig.head this class builds (set by @register_head)

    @classmethod
    def build(cls, config: ModelConfig, assembler_init: str = "onehot") -> InstanceFCN:
        """A fresh model of this head (``assembler_init`` only matters for a head with a learned assembler)."""
        return cls(config)

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        config = config or ModelConfig()
        if config.head != self.head:
            raise ValueError(
                f"{type(self).__name__} builds head {self.head!r} but config.head is {config.head!r}; "
                "use ifcn_viz.model.build_model(config)"
            )
        self.config = config
        self.backbone = build_backbone(
            config.backbone, config.output_stride, config.backbone_weights, config.backbone_width
        )
        c = self.backbone.out_channels
        self.instance = self.build_instance_branch(c, config)
        self.objectness = ObjectnessBranch(c, config.head_channels)
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def build_instance_branch(self, in_channels: int, config: ModelConfig) -> nn.Module:
        """The module mapping features to the k^2 score maps (the DeepMask-style baseline overrides it)."""
        return InstanceBranch(in_channels, config.k, config.head_channels)

    @property
    def k(self) -> int:
        return self.config.k

    @property
    def m(self) -> int:
        return self.config.m

    @property
    def stride(self) -> int:
        return self.backbone.stride

    def forward(self, images: Tensor) -> InstanceFCNOutput:
        """``images``: ``[B, 3, H, W]`` float in [0, 1]; any H, W (maps are ``H // stride`` x ``W // stride``)."""
        check_images(images)
        x = (images - self.pixel_mean.to(images.dtype)) / self.pixel_std.to(images.dtype)
        feats = self.backbone(x)  # (B, C, H/s, W/s)
        return InstanceFCNOutput(self.instance(feats), self.objectness(feats), feats, self.stride)

    def assemble(self, score_maps: Tensor, centers: Tensor | None = None) -> Tensor:
        """Windows at ``centers`` ``[N, 3]`` -> ``[N, m, m]``, or every window -> ``[B, H', W', m, m]``."""
        if centers is None:
            return assemble_dense(score_maps, self.m, self.config.fill_logit)
        return assemble_at(score_maps, centers, self.m, self.config.fill_logit)

    def cell_to_map_index(self) -> Tensor:
        return cell_to_map_index(self.k, self.m)
