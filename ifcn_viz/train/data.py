"""The training data pipeline: dataset by name, deterministic per-sample augmentation, and a resumable order.

Order: a :class:`torch.utils.data.DistributedSampler` (one shard per rank; a fresh permutation per epoch seeded
by ``seed + epoch``) cut into batches.  Batch ``t`` of a rank is a pure function of ``(seed, t, rank, world)``,
and each sample's augmentation is drawn from a generator seeded by ``(seed, epoch, position)`` -- so a run
resumed at step t sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from ifcn_viz.data.transforms import JointTransform
from ifcn_viz.train.recipe import TrainConfig


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from several integers (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0] >> 1)


SCENE_CACHE_ENV = "IFCN_VIZ_SCENE_CACHE"


def build_dataset(cfg: TrainConfig) -> Dataset:
    """The base dataset: items are ``(image uint8 [3, H, W], masks bool [N, H, W])``.

    Synthetic scenes (up to 20,000) are generated before the first step on every core; with the environment
    variable ``IFCN_VIZ_SCENE_CACHE=DIR`` they are also written to ``DIR`` and read back by later runs with the
    same scenes (same generator source, style, size, seed and count).
    """
    if cfg.dataset == "synthetic":
        from ifcn_viz.data.synthetic import SyntheticDataset

        size = (cfg.image_size, cfg.image_size)
        style = getattr(cfg, "synthetic_style", "train")  # a TrainConfig field once the recipe names one
        cache = cfg.train_scenes <= 20_000
        ds = SyntheticDataset(cfg.train_scenes, seed=cfg.seed, size=size, cache=cache, style=style)
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if cache and not distributed:  # generate every scene up front, on every core
            cache_dir = os.environ.get(SCENE_CACHE_ENV)
            if cache_dir:  # runs with the same scenes share one file of them
                ds.load_or_prefill(cache_dir)
            else:
                ds.prefill()
        return ds
    if cfg.dataset == "coco":
        from ifcn_viz.data.coco import CocoInstances

        return CocoInstances(cfg.coco_ann, cfg.image_dir)
    from ifcn_viz.data.voc import VOCInstances

    return VOCInstances(cfg.voc_root, split=cfg.voc_split)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block (a no-op where it already does, as in DataLoader workers).

    A sample's transform is a handful of small ops (resize, flip); spread over several OpenMP threads they mostly
    wait for each other, and on a busy machine for a descheduled thread: measured on 2 shared cores, one item
    took 44-53 ms of CPU on 2 threads and 8-9 ms on one (``bench/bench_train.py --split``).  Results do not
    depend on the thread count.
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class Augmented(Dataset):
    """Wrap a base dataset; ``self[(index, key)]`` applies the joint transform with a generator seeded by ``key``.

    Loading and transforming run on one torch thread (:func:`single_thread`).  Every random choice comes from
    ``key`` (and the scene from ``index``), so DataLoader workers need no seeding of their own: any number of
    workers yields the same batches (``tests/test_train_data.py``).
    """

    def __init__(self, base: Dataset, transform: JointTransform) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]):
        index, key = item
        with single_thread():
            image, masks = self.base[index]
            return self.transform(image, masks, torch.Generator().manual_seed(key))


class StepBatchSampler:
    """Yields the batches ``start_step, start_step + 1, ...`` of one rank as lists of ``(index, aug_key)``."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1, start_step: int = 0):
        self.sampler = DistributedSampler(
            range(n), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
        )  # type: ignore[arg-type]
        self.per_epoch = len(self.sampler) // batch_size
        if self.per_epoch < 1:
            raise ValueError(
                f"the dataset ({n} items over {world_size} ranks) is smaller than one batch of {batch_size}"
            )
        self.batch_size, self.seed, self.rank, self.start_step = batch_size, seed, rank, start_step

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while True:
            epoch, offset = divmod(step, self.per_epoch)
            self.sampler.set_epoch(epoch)
            order = list(self.sampler)
            for t in range(offset, self.per_epoch):
                batch = order[t * self.batch_size : (t + 1) * self.batch_size]
                yield [(i, mix_seed(self.seed, epoch, self.rank, t, j)) for j, i in enumerate(batch)]
                step += 1
