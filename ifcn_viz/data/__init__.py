"""Data: synthetic touching-object scenes, COCO and VOC instance loaders, joint transforms.

Names load lazily (PEP 562) so that ``ifcn-viz --help`` does not import torch, pycocotools or scikit-image.
"""

from __future__ import annotations

from ifcn_viz._lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
