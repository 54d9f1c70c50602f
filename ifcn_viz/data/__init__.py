"""Data: synthetic touching-object scenes, COCO and VOC instance loaders, joint transforms.

Names load lazily (PEP 562) so that ``ifcn-viz --help`` does not import torch, pycocotools or scikit-image.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "CocoInstances": "coco",
    "SyntheticDataset": "synthetic",
    "generate_scene": "synthetic",
    "load_textures": "synthetic",
    "JointTransform": "transforms",
    "pad_collate": "transforms",
    "PAPER_SHORT_SIDES": "transforms",
    "TINY_SHORT_SIDES": "transforms",
    "VOCInstances": "voc",
    "instance_masks_from_png": "voc",
    "write_synthetic_coco": "commands",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"ifcn_viz.data.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'ifcn_viz.data' has no attribute {name!r}")
