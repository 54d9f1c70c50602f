"""The two fully convolutional branches on top of the backbone (paper, Sec. 3 and Fig. 3)."""

from __future__ import annotations

from torch import Tensor, nn


class InstanceBranch(nn.Module):
    """1x1 conv (512-d) + ReLU, then a 3x3 conv with k^2 outputs: the instance-sensitive score maps.

    For the paper's k = 5 and 512 channels the last layer has 3*3*512*25 + 25 = 115,225 parameters
    ("about 0.1M", Sec. 4.1), against ~53M for a DeepMask-style fc mask head.
    """

    def __init__(self, in_channels: int, k: int, mid_channels: int = 512) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, mid_channels, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.score = nn.Conv2d(mid_channels, k * k, kernel_size=3, padding=1)
        self.k = k

    def forward(self, feats: Tensor) -> Tensor:
        return self.score(self.relu(self.reduce(feats)))  # (B, k*k, H', W')


class ObjectnessBranch(nn.Module):
    """3x3 conv (512-d) + ReLU, then a 1x1 conv to one logit: "an instance is centred in this window"."""

    def __init__(self, in_channels: int, mid_channels: int = 512) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.score = nn.Conv2d(mid_channels, 1, kernel_size=1)

    def forward(self, feats: Tensor) -> Tensor:
        return self.score(self.relu(self.conv(feats)))  # (B, 1, H', W')
