"""A DeepMask-style fully connected mask head: the baseline of the paper's ablation (Sec. 4.1, Table 1).

The paper compares its instance-sensitive score maps with a "DeepMask-like" head: features of the window ->
fc 512 -> fc m^2 -> the m x m mask, slid over every window.  Its fc layers (about 53M parameters for VGG-16,
14 x 14 x 512 -> 512 -> 56^2) predict each mask pixel with its own weights, so neighbouring windows share
nothing; InstanceFCN's k^2 maps are shared by all windows ("local coherence").

Ours, at the scale of the ``tiny`` preset: backbone features ``[C, H', W']`` -> 1x1 conv to ``reduce``
channels + ReLU -> 3x3 average pooling, sampled on a 7 x 7 grid of 3-cell steps covering the 21-cell window
(DeepMask pools its 224-px window to 14 x 14 at stride 16; the grid is our choice) -> fc ``hidden`` + ReLU ->
fc m^2 logits.  Computed densely for every window with ``F.unfold`` (a sliding fc layer), then re-indexed so
that the standard assembler reproduces it exactly:

    InstanceFCN with k = m is a per-window prediction: window cell (i, j) copies map ``i*m + j`` at
    ``(y - r + i, x - r + j)``.  Storing window (y, x)'s cell (i, j) there turns the fc output into
    m^2 "score maps", so the same loss, Predictor and evaluation run unchanged (``config.k == m``).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ifcn_viz.config import ModelConfig
from ifcn_viz.model.heads import register_head
from ifcn_viz.model.instance_fcn import InstanceFCN

GRID, STEP = 7, 3  # 7 x 7 samples, 3 cells apart: 21 cells


class FCMaskHead(nn.Module):
    """Dense sliding fc head: ``[B, C, H', W']`` -> window-indexed logits ``[B, m*m, H', W']``."""

    def __init__(self, in_channels: int, m: int, reduce: int = 32, hidden: int = 512) -> None:
        super().__init__()
        if m != GRID * STEP:
            raise ValueError(
                f"the fc baseline samples a {GRID}x{GRID} grid of {STEP}-cell steps: m must be 21, got {m}"
            )
        self.m = m
        self.reduce = nn.Conv2d(in_channels, reduce, kernel_size=1)
        self.fc1 = nn.Linear(reduce * GRID * GRID, hidden)
        self.fc2 = nn.Linear(hidden, m * m)

    def forward(self, feats: Tensor) -> Tensor:
        B, _, H, W = feats.shape
        x = F.relu(self.reduce(feats))
        x = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)  # (B, reduce, H', W')
        r = self.m // 2
        # samples at offsets -9, -6, ..., 9 cells around each centre; zero outside the map
        cols = F.unfold(x, kernel_size=GRID, dilation=STEP, padding=r - 1)  # (B, reduce*49, H'*W')
        h = F.relu(self.fc1(cols.transpose(1, 2)))  # (B, H'*W', hidden)
        out = self.fc2(h)  # (B, H'*W', m*m)
        return out.transpose(1, 2).reshape(B, self.m * self.m, H, W)  # (B, m*m, H', W')

    def fc_parameters(self) -> int:
        return sum(p.numel() for p in (*self.fc1.parameters(), *self.fc2.parameters()))


def window_to_position_maps(window_logits: Tensor, m: int, fill: float) -> Tensor:
    """Re-index ``[B, m*m, H', W']`` per-window logits into the m^2 maps that assembling (k = m) reads back.

    ``S[c = i*m + j, y, x] = window_logits[c, y - i + r, x - j + r]`` (``fill`` where that window is off the map).
    """
    B, C, H, W = window_logits.shape
    r = m // 2
    padded = F.pad(window_logits, (r, r, r, r), value=fill)  # (B, m*m, H'+2r, W'+2r)
    ij = torch.arange(m, device=window_logits.device)
    i, j = ij.repeat_interleave(m), ij.repeat(m)  # (m*m,) each
    rows = torch.arange(H, device=window_logits.device)[None, :] - i[:, None] + 2 * r  # (m*m, H')
    cols = torch.arange(W, device=window_logits.device)[None, :] - j[:, None] + 2 * r  # (m*m, W')
    chan = torch.arange(C, device=window_logits.device)
    return padded[:, chan[:, None, None], rows[:, :, None], cols[:, None, :]]  # (B, m*m, H', W')


class FCPositionBranch(nn.Module):
    """:class:`FCMaskHead` followed by :func:`window_to_position_maps`: features -> m^2 "score maps" (k = m)."""

    def __init__(self, in_channels: int, m: int, fill: float, reduce: int = 32, hidden: int = 512) -> None:
        super().__init__()
        self.head = FCMaskHead(in_channels, m, reduce, hidden)
        self.m, self.fill = m, fill

    def forward(self, feats: Tensor) -> Tensor:
        return window_to_position_maps(self.head(feats), self.m, self.fill)  # (B, m*m, H', W')


@register_head("fc")
class FCBaselineModel(InstanceFCN):
    """InstanceFCN with its instance branch replaced by the sliding fc head (``config.k`` becomes m).

    Backbone, objectness branch, normalisation and output are InstanceFCN's; only the mask predictor differs.
    Its config says ``head="fc"`` and ``k == m``, so its checkpoints load back through ``build_model``.
    """

    REDUCE, HIDDEN = 32, 512

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(dataclasses.replace(config, k=config.m, head="fc"))

    def build_instance_branch(self, in_channels: int, config: ModelConfig) -> nn.Module:
        return FCPositionBranch(in_channels, config.m, config.fill_logit, self.REDUCE, self.HIDDEN)

    def fc_parameters(self) -> int:
        return self.instance.head.fc_parameters()
