"""Joint image / instance-mask transforms for training (torchvision.transforms.v2 functional ops on tv_tensors).

* Scale jitter of the shorter side.  The paper's recipe (docs/PAPER_NOTES.md, Sec. 2, *uncertain*) draws the
  shorter side from ``600 * 1.5^e`` for e in {-4, ..., 1}, i.e. about 119, 178, 267, 400, 600, 900 px, the same
  sizes as its inference pyramid; :data:`PAPER_SHORT_SIDES`.  The ``tiny`` recipe jitters a 256-px synthetic scene's
  shorter side in a small range around it (:data:`TINY_SHORT_SIDES`).
* Horizontal flip with probability 0.5.

Randomness is explicit: every call takes a ``torch.Generator``.  The training loop seeds it from
``(seed, sample position)`` so that a resumed run augments exactly like an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

PAPER_SHORT_SIDES: tuple[int, ...] = tuple(round(600 * 1.5**e) for e in range(-4, 2))  # 119 .. 900 (uncertain)
TINY_SHORT_SIDES: tuple[int, ...] = (224, 240, 256, 272, 288, 304, 320)  # (ours) around the 256-px scenes


class JointTransform:
    """Resize the shorter side to a random choice of ``short_sides`` (longer side capped at ``max_side``), then
    flip horizontally with probability ``flip_p``.  Masks follow the image (nearest-neighbour resize); masks
    that vanish are dropped.

    ``__call__(image uint8 [3, H, W], masks bool [N, H, W], generator) -> (image float [3, H', W'] in [0, 1],
    masks bool [N', H', W'])``.
    """

    def __init__(self, short_sides: Sequence[int], flip_p: float = 0.5, max_side: int = 2000) -> None:
        if not short_sides or any(int(s) < 16 for s in short_sides):
            raise ValueError(f"short_sides must be a non-empty list of sizes >= 16, got {short_sides!r}")
        if not 0.0 <= flip_p <= 1.0:
            raise ValueError(f"flip_p must be in [0, 1], got {flip_p}")
        self.short_sides = tuple(int(s) for s in short_sides)
        self.flip_p, self.max_side = flip_p, int(max_side)

    def choose(self, h: int, w: int, generator: torch.Generator) -> tuple[tuple[int, int], bool]:
        """The random choices for an ``h x w`` image: its new ``(h, w)`` and whether to flip it (what ``__call__``
        does; ``ifcn_viz.train.scenes`` applies the same choices to a whole batch on the device)."""
        short = self.short_sides[int(torch.randint(len(self.short_sides), (1,), generator=generator))]
        scale = min(short / min(h, w), self.max_side / max(h, w))
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        return size, float(torch.rand((), generator=generator)) < self.flip_p

    def __call__(self, image: Tensor, masks: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image must be [3, H, W], got {tuple(image.shape)}")
        if masks.dim() != 3 or masks.shape[1:] != image.shape[1:]:
            raise ValueError(
                f"masks must be [N, H, W] matching the image {tuple(image.shape[1:])}, got {tuple(masks.shape)}"
            )
        new_hw, flip = self.choose(image.shape[1], image.shape[2], generator)
        size = list(new_hw)
        img = TF.resize(tv_tensors.Image(image), size, antialias=True)
        msk = TF.resize(tv_tensors.Mask(masks.to(torch.uint8)), size) if masks.shape[0] else masks.new_zeros((0, *size))
        if flip:
            img, msk = TF.horizontal_flip(img), TF.horizontal_flip(msk) if msk.shape[0] else msk
        out_img = img.as_subclass(Tensor).float().div_(255.0)
        out_masks = msk.as_subclass(Tensor).bool()
        keep = out_masks.flatten(1).any(1) if out_masks.shape[0] else torch.zeros(0, dtype=torch.bool)
        return out_img, out_masks[keep]


def pad_collate(batch: Sequence[tuple[Tensor, Tensor]], multiple: int = 8):
    """Pad a list of ``(image float [3, H, W], masks bool [N, H, W])`` to one ``[B, 3, H*, W*]`` batch.

    ``H*``/``W*`` are the largest sides rounded up to ``multiple`` (the output stride); padding is zero (black
    image, no object) on the bottom/right.  Returns ``(images, masks list of [N_i, H*, W*], sizes [B, 2])``
    where ``sizes`` holds each image's true (h, w), so window sampling can ignore the padding.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    hs = [img.shape[1] for img, _ in batch]
    ws = [img.shape[2] for img, _ in batch]
    H = -(-max(hs) // multiple) * multiple
    W = -(-max(ws) // multiple) * multiple
    images = torch.zeros((len(batch), 3, H, W), dtype=batch[0][0].dtype)
    masks = []
    for i, (img, msk) in enumerate(batch):
        h, w = img.shape[1:]
        images[i, :, :h, :w] = img
        padded = torch.zeros((msk.shape[0], H, W), dtype=torch.bool)
        padded[:, :h, :w] = msk
        masks.append(padded)
    return images, masks, torch.tensor(list(zip(hs, ws)), dtype=torch.long)
