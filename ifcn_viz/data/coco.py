"""Any COCO-format instances file + image folder (pycocotools) as ``(image, masks)`` items.

Following DeepMask's sampler (docs/PAPER_NOTES.md, Sec. 2): crowd annotations (``iscrowd`` = 1) and tiny
objects (area under ``min_area`` = 100 px) are skipped; images left without any object are kept (they give
negative windows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def annotation_mask(coco, ann: dict, h: int, w: int) -> np.ndarray:
    """One annotation (polygons or RLE) as a bool ``[h, w]`` mask."""
    return coco.annToMask(ann).astype(bool) if ann.get("segmentation") else np.zeros((h, w), dtype=bool)


class CocoInstances(torch.utils.data.Dataset):
    """Items: ``(image uint8 [3, H, W], masks bool [N, H, W])`` for the images of ``ann_file``."""

    def __init__(self, ann_file: str | Path, image_dir: str | Path, min_area: float = 100.0) -> None:
        from pycocotools.coco import COCO

        ann_file, image_dir = Path(ann_file), Path(image_dir)
        if not ann_file.is_file():
            raise FileNotFoundError(f"COCO annotation file not found: {ann_file}")
        if not image_dir.is_dir():
            raise FileNotFoundError(f"COCO image folder not found: {image_dir}")
        self.coco = COCO(str(ann_file))
        self.image_dir, self.min_area = image_dir, float(min_area)
        self.ids = sorted(self.coco.getImgIds())
        if not self.ids:
            raise ValueError(f"{ann_file} lists no images")

    def __len__(self) -> int:
        return len(self.ids)

    def annotations(self, image_id: int) -> list[dict]:
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[image_id]))
        return [a for a in anns if not a.get("iscrowd", 0) and a.get("area", 0) >= self.min_area]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        info = self.coco.loadImgs([self.ids[index]])[0]
        with Image.open(self.image_dir / info["file_name"]) as im:
            image = np.array(im.convert("RGB"))  # writable (torch.from_numpy warns on read-only arrays)
        h, w = image.shape[:2]
        masks = [annotation_mask(self.coco, a, h, w) for a in self.annotations(info["id"])]
        masks = [mk for mk in masks if mk.any()]
        stack = np.stack(masks) if masks else np.zeros((0, h, w), dtype=bool)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(stack)
