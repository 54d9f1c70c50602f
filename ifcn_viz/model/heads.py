"""The two fully convolutional branches on top of the backbone (paper, Sec. 3 and Fig. 3), and the head registry.

A mask head is a model class registered under a ``ModelConfig.head`` name (:func:`register_head`); the names and
their one-line descriptions are :data:`ifcn_viz.config.HEADS` (torch-free, for the CLI and the cards), and
:func:`ifcn_viz.model.build.build_model` is the one place a head is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import Tensor, nn

from ifcn_viz.config import HEADS

HEAD_CLASSES: dict[str, type[nn.Module]] = {}
"""The registered model classes by ``ModelConfig.head`` name (filled as their modules are imported)."""

_C = TypeVar("_C", bound=type)


def register_head(name: str) -> Callable[[_C], _C]:
    """Class decorator: ``cls`` builds the models whose ``config.head`` is ``name`` (a key of ``config.HEADS``).

    The class is built as ``cls.build(config, assembler_init)``; it records ``head = name``."""

    def decorate(cls: _C) -> _C:
        if name not in HEADS:
            raise ValueError(f"head {name!r} has no entry in ifcn_viz.config.HEADS: add its one-line description there")
        if name in HEAD_CLASSES:
            raise ValueError(f"head {name!r} is already registered (by {HEAD_CLASSES[name].__name__})")
        cls.head = name
        HEAD_CLASSES[name] = cls
        # keep config.HEADS' order whichever head module was imported first (menus and listings read this)
        ordered = {key: HEAD_CLASSES[key] for key in HEADS if key in HEAD_CLASSES}
        HEAD_CLASSES.clear()
        HEAD_CLASSES.update(ordered)
        return cls

    return decorate


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
