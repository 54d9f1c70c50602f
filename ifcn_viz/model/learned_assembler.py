"""A *learned* assembler: the control experiment for "why is the assembler parameter-free?" (paper, Sec. 3.1).

The paper's assembler has no parameters: window cell (i, j) copies score map ``g(i) * k + g(j)`` at its own
pixel (:mod:`ifcn_viz.model.assemble`).  Here that fixed choice becomes a learned layer: every window cell reads a
learned weighted sum of *all* k^2 maps at its own pixel, plus a bias,

    window[i, j] = sum_c  W[i*m + j, c] * score_maps[c, y - r + i, x - r + j]  +  b[i*m + j],

a 1 x 1 convolution from the k^2 score maps to m^2 "cell maps" (``W`` is ``[m^2, k^2]``: 441 x 25 for the paper's
k = 5, m = 21), after which cell (i, j) of the window centred at (y, x) copies cell map ``i*m + j`` at
``(y - r + i, x - r + j)`` -- the paper's assembler with k = m.  Cells outside the map still read the model's
``fill`` (as for the parameter-free assembler), so:

* ``init="onehot"``: ``W[i*m + j, g(i)*k + g(j)] = 1``, everything else 0: the model starts *exactly* equal to the
  parameter-free assembler (tests/test_learned_assembler.py checks it against a float64 reference);
* ``init="random"``: PyTorch's default init of the 1 x 1 conv: no cell knows which relative position it is.

Which one we chose and why (the paper is silent on any learned variant): the fully general layer -- a linear map
from the window's whole m x m x k^2 crop to its m x m logits, a conv with m x m kernels -- has m^4 k^2 = 4.9M
weights (170x the k = 5 mask layer of ``tiny``, 5x the fc baseline) and costs ~5 GMAC per 256-px image and pass:
too slow to train in the ablation's budget or in a notebook on 2 CPU cores.  The per-cell mix keeps exactly the
question the parameter-free design answers -- *which map should each window cell read?* -- with the paper's
answer as one point of its parameter space, for 11,466 extra parameters.

The model presents the m^2 cell maps to everything downstream as "score maps" with ``config.k == m`` (as the
fc baseline does, :mod:`ifcn_viz.model.fc_baseline`), so the loss, the Predictor, proposals and evaluation run
unchanged; ``config.learned_k`` keeps the k of the k^2 maps it learns, and :meth:`LearnedAssemblerModel.score_maps`
returns them.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from ifcn_viz.config import ASSEMBLER_INITS, ModelConfig
from ifcn_viz.model.assemble import cell_to_map_index
from ifcn_viz.model.heads import InstanceBranch, register_head
from ifcn_viz.model.instance_fcn import InstanceFCN, check_images

_SEED_OFFSET = 1_000_003  # the random init's stream: the global initial seed plus this


def onehot_assembler_weight(k: int, m: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``[m*m, k*k]``: row ``i*m + j`` is one-hot at the map ``g(i)*k + g(j)`` the paper's cell (i, j) copies."""
    idx = cell_to_map_index(k, m).flatten()  # (m*m,)
    w = torch.zeros(m * m, k * k, dtype=dtype)
    w[torch.arange(m * m), idx] = 1
    return w


class LearnedAssembler(nn.Module):
    """k^2 score maps ``[B, k*k, H', W']`` -> m^2 cell maps ``[B, m*m, H', W']`` (a learned 1 x 1 conv)."""

    def __init__(self, k: int, m: int, init: str = "onehot") -> None:
        super().__init__()
        if init not in ASSEMBLER_INITS:
            raise ValueError(f"assembler init must be one of {', '.join(ASSEMBLER_INITS)}, got {init!r}")
        self.k, self.m = k, m
        # Built aside from the global random stream, so that the rest of a model seeded like the parameter-free one
        # starts with exactly its weights (a fair comparison); the random init draws from its own stream, derived
        # from the global seed.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch.initial_seed() + _SEED_OFFSET)
            self.mix = nn.Conv2d(k * k, m * m, kernel_size=1)
        if init == "onehot":
            with torch.no_grad():
                self.mix.weight.copy_(onehot_assembler_weight(k, m).view(m * m, k * k, 1, 1))
                self.mix.bias.zero_()

    def forward(self, score_maps: Tensor) -> Tensor:
        return self.mix(score_maps)  # (B, m*m, H', W')

    def weight_grid(self) -> Tensor:
        """``[k*k, m, m]``: how much window cell (i, j) reads from each of the k^2 maps (one-hot init: the bins)."""
        return self.mix.weight.detach()[:, :, 0, 0].T.reshape(self.k * self.k, self.m, self.m)

    def extra_repr(self) -> str:
        return f"k={self.k}, m={self.m}"


class LearnedInstanceBranch(nn.Module):
    """The paper's instance branch (k^2 score maps), then :class:`LearnedAssembler` (m^2 cell maps)."""

    def __init__(self, in_channels: int, k: int, m: int, mid_channels: int, init: str) -> None:
        super().__init__()
        self.branch = InstanceBranch(in_channels, k, mid_channels)
        self.assembler = LearnedAssembler(k, m, init)

    def forward(self, feats: Tensor) -> Tensor:
        return self.assembler(self.branch(feats))


@register_head("learned")
class LearnedAssemblerModel(InstanceFCN):
    """InstanceFCN whose assembler is learned (``config.head == "learned"``; ``config.k`` becomes m).

    Built from a preset's config, ``config.k`` is the k of the score maps (stored as ``learned_k``); built from a
    checkpoint's card, ``learned_k`` is read back.  ``init`` only matters for a fresh model.
    """

    def __init__(self, config: ModelConfig, init: str = "onehot") -> None:
        k = config.learned_k if config.head == "learned" and config.learned_k is not None else config.k
        self.init = init
        super().__init__(dataclasses.replace(config, k=config.m, head="learned", learned_k=k))

    @classmethod
    def build(cls, config: ModelConfig, assembler_init: str = "onehot") -> LearnedAssemblerModel:
        return cls(config, init=assembler_init)

    def build_instance_branch(self, in_channels: int, config: ModelConfig) -> nn.Module:
        return LearnedInstanceBranch(in_channels, config.learned_k, config.m, config.head_channels, self.init)

    @property
    def learned_k(self) -> int:
        return self.config.learned_k

    def score_maps(self, images: Tensor) -> Tensor:
        """The k^2 instance-sensitive score maps ``[B, k*k, H', W']`` before the learned assembler."""
        check_images(images)
        x = (images - self.pixel_mean.to(images.dtype)) / self.pixel_std.to(images.dtype)
        return self.instance.branch(self.backbone(x))

    def mask_layer_parameters(self) -> int:
        """The score conv (k^2 outputs) plus the learned assembler: what replaces the paper's mask layer."""
        layers = (self.instance.branch.score, self.instance.assembler)
        return sum(p.numel() for layer in layers for p in layer.parameters())

    def assembler_parameters(self) -> int:
        return sum(p.numel() for p in self.instance.assembler.parameters())


def from_parameter_free(model: InstanceFCN, init: str = "onehot") -> LearnedAssemblerModel:
    """A learned-assembler model with ``model``'s backbone, score-map branch and objectness (e.g. the shipped
    ``tiny`` model's trained weights) and a fresh assembler (``init``): the maps already mean relative positions."""
    if type(model) is not InstanceFCN:
        raise ValueError(f"expected the paper's InstanceFCN (head='ifcn'), got {type(model).__name__}")
    cfg = dataclasses.replace(model.config, backbone_weights=None)
    learned = LearnedAssemblerModel(cfg, init=init)
    state = {(k.replace("instance.", "instance.branch.", 1) if k.startswith("instance.") else k): v
             for k, v in model.state_dict().items()}  # fmt: skip
    state.update({f"instance.assembler.{k}": v for k, v in learned.instance.assembler.state_dict().items()})
    learned.load_state_dict(state)
    return learned.to(next(model.parameters()).device)
