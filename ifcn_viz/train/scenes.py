"""Training batches made on the training device from compact cached scenes.

The cached synthetic scenes are held as two tensors on the training device (:class:`SceneTensors`): the images
(uint8 ``[S, 3, H, W]``) and their instance label maps (uint8 ``[S, H, W]``; the visible masks are disjoint),
about 260 kB a 256 x 256 scene.  A batch is then a few batched calls there instead of per-sample work in loader
workers and per-image mask copies: the scenes gathered, each group of samples that drew the same size and flip
resized in one ``interpolate`` (the images bilinear with antialiasing, in uint8 as
:class:`~ifcn_viz.data.transforms.JointTransform` does on a CPU, in float rounded to uint8 on a GPU; the label maps
nearest-neighbour) and flipped, padded into one batch, and the label maps turned into the instance masks the
window sampler takes (:func:`~ifcn_viz.train.targets.instances_from_labels`).

The order and every random choice are those of the DataLoader path: the batches of :class:`StepBatchSampler`
(a pure function of ``(seed, step, rank)``) and, per sample, ``JointTransform.choose`` with the sample's key.  So
the sizes, flips and masks are the same as there, and the images equal (on a GPU to within a grey level;
``tests/test_scenes.py``); a run resumed at step t sees the batches an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ifcn_viz.data.transforms import JointTransform
from ifcn_viz.train.data import StepBatchSampler
from ifcn_viz.train.targets import InstanceBatch, instances_from_labels


class SceneTensors(NamedTuple):
    images: Tensor  # (S, 3, H, W) uint8
    labels: Tensor  # (S, H, W) uint8: 0 background, i the i-th instance
    counts: list[int]  # instances per scene


def scene_tensors(dataset, device: torch.device | str) -> SceneTensors:
    """Every scene of a cached ``SyntheticDataset`` (filled first where needed) as :class:`SceneTensors` on
    ``device``."""
    images, labels, counts = dataset.compact()
    return SceneTensors(
        torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device),
        torch.from_numpy(labels).to(device),
        [int(c) for c in counts],
    )


def _resized(images: Tensor, labels: Tensor, size: tuple[int, int], flip: bool) -> tuple[Tensor, Tensor]:
    """One group of samples that drew the same size and flip: images (uint8, bilinear with antialiasing) and label
    maps (nearest-neighbour) resized, then flipped horizontally if ``flip``.  On a CPU the uint8 kernels run (those
    of ``JointTransform``: the same pixels); elsewhere the resize runs in float, rounded back to uint8."""
    cpu = images.device.type == "cpu"  # torch's uint8 resize kernels are CPU ones
    img = F.interpolate(images if cpu else images.float(), size=size, mode="bilinear", antialias=True)
    lab = F.interpolate(labels[:, None] if cpu else labels[:, None].float(), size=size, mode="nearest")[:, 0]
    if not cpu:
        img, lab = img.round_().clamp_(0, 255).to(torch.uint8), lab.to(labels.dtype)
    return (img.flip(-1), lab.flip(-1)) if flip else (img, lab)


def augment_batch(
    scenes: SceneTensors, items: list[tuple[int, int]], transform: JointTransform, multiple: int = 8
) -> tuple[Tensor, InstanceBatch, Tensor]:
    """The batch of ``items`` (``(scene index, augmentation key)``, as :class:`StepBatchSampler` yields them):
    ``(images float [B, 3, H*, W*] in [0, 1], instances, sizes [B, 2])``, padded at the bottom/right to a
    multiple of ``multiple`` as ``pad_collate`` pads, all on the scenes' device."""
    dev = scenes.images.device
    h, w = scenes.images.shape[2:]
    choices = [transform.choose(h, w, torch.Generator().manual_seed(key)) for _, key in items]
    H = -(-max(s[0] for s, _ in choices) // multiple) * multiple
    W = -(-max(s[1] for s, _ in choices) // multiple) * multiple
    images = torch.zeros((len(items), 3, H, W), dtype=torch.uint8, device=dev)
    labels = torch.zeros((len(items), H, W), dtype=scenes.labels.dtype, device=dev)
    index = torch.tensor([i for i, _ in items]).to(dev, non_blocking=True)
    for size, flip in sorted(set(choices)):
        at = torch.tensor([j for j, c in enumerate(choices) if c == (size, flip)]).to(dev, non_blocking=True)
        img, lab = _resized(scenes.images[index[at]], scenes.labels[index[at]], size, flip)
        images[at, :, : size[0], : size[1]] = img
        labels[at, : size[0], : size[1]] = lab
    sizes = torch.tensor([s for s, _ in choices], dtype=torch.long)
    counts = [scenes.counts[i] for i, _ in items]
    return images.float().div_(255.0), instances_from_labels(labels, counts, sizes), sizes


class SceneBatches:
    """The batches of steps ``start_step, start_step + 1, ...`` of one rank (endless), made by
    :func:`augment_batch` from :class:`SceneTensors`: what ``make_loader`` yields for cached synthetic scenes."""

    def __init__(self, scenes: SceneTensors, cfg, rank: int = 0, world_size: int = 1, start_step: int = 0) -> None:
        self.scenes, self.transform = scenes, JointTransform(cfg.short_sides)
        self.sampler = StepBatchSampler(len(scenes.counts), cfg.batch_size, cfg.seed, rank, world_size, start_step)

    def __iter__(self) -> Iterator[tuple[Tensor, InstanceBatch, Tensor]]:
        for items in self.sampler:
            yield augment_batch(self.scenes, items, self.transform)
