"""PASCAL VOC 2012 instance masks: ``SegmentationObject/*.png`` palette images (index i = instance i, 0 =
background, 255 = the "void" border, which we treat as background), listed by
``ImageSets/Segmentation/{train,val,trainval}.txt``, with the photographs in ``JPEGImages/``.

SBD (Hariharan et al.'s 10k extra annotations, ``.mat`` files) is not read here: its ``GTinst`` structs need
scipy.io and a second layout; convert SBD to COCO JSON and use :mod:`ifcn_viz.data.coco` instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

VOID = 255


def instance_masks_from_png(path: str | Path, min_area: int = 1) -> np.ndarray:
    """Bool ``[N, H, W]`` masks from a SegmentationObject PNG (palette indices 1..N; 0 and 255 ignored)."""
    with Image.open(path) as im:
        if im.mode not in ("P", "L"):
            raise ValueError(f"{path}: expected a palette (P) or grey (L) PNG of instance indices, got mode {im.mode}")
        idx = np.array(im)
    ids = [int(i) for i in np.unique(idx) if i not in (0, VOID)]
    masks = [idx == i for i in ids]
    masks = [mk for mk in masks if mk.sum() >= min_area]
    return np.stack(masks) if masks else np.zeros((0, *idx.shape), dtype=bool)


class VOCInstances(torch.utils.data.Dataset):
    """Items: ``(image uint8 [3, H, W], masks bool [N, H, W])``; ``root`` is the ``VOC2012`` folder."""

    def __init__(self, root: str | Path, split: str = "train", min_area: int = 100) -> None:
        root = Path(root)
        list_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not list_file.is_file():
            raise FileNotFoundError(
                f"{list_file} not found: --voc-root must be the VOC2012 folder holding JPEGImages/, "
                "SegmentationObject/ and ImageSets/Segmentation/{train,val}.txt"
            )
        self.root, self.min_area = root, int(min_area)
        self.ids = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
        if not self.ids:
            raise ValueError(f"{list_file} lists no images")

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        name = self.ids[index]
        with Image.open(self.root / "JPEGImages" / f"{name}.jpg") as im:
            image = np.array(im.convert("RGB"))  # writable (torch.from_numpy warns on read-only arrays)
        masks = instance_masks_from_png(self.root / "SegmentationObject" / f"{name}.png", self.min_area)
        if masks.shape[1:] != image.shape[:2]:
            raise ValueError(f"{name}: mask size {masks.shape[1:]} differs from image size {image.shape[:2]}")
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(masks)
