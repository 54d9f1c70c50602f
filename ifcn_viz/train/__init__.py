"""Training: window sampling (targets), the loss, the loop (CPU / GPU / AMP / DDP), recipes, the ablation.

Names load lazily (PEP 562) so that ``ifcn-viz --help`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "TrainConfig": "recipe",
    "train_config": "recipe",
    "RECIPES": "recipe",
    "SHIPPED_RECIPE": "recipe",
    "lr_at": "recipe",
    "train": "loop",
    "TrainResult": "loop",
    "instance_fcn_loss": "loss",
    "LossTerms": "loss",
    "WindowRule": "targets",
    "WindowTargets": "targets",
    "label_windows": "targets",
    "sample_windows": "targets",
    "window_mask_targets": "targets",
    "run_ablation": "ablation",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"ifcn_viz.train.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'ifcn_viz.train' has no attribute {name!r}")
