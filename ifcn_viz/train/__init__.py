"""Training: window sampling (targets), the loss, the loop (CPU / GPU / AMP / DDP), recipes, the ablation.

Names load lazily (PEP 562) so that ``ifcn-viz --help`` does not import torch.
"""

from __future__ import annotations

from ifcn_viz._lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
