"""The training data pipeline stays reproducible however it is fed: prefilled cache, workers, thread count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ifcn_viz.data.synthetic import SyntheticDataset
from ifcn_viz.train.data import build_dataset, single_thread
from ifcn_viz.train.recipe import TrainConfig


def _cfg(**kw) -> TrainConfig:
    base = dict(preset="tiny", dataset="synthetic", out=str(Path("unused")), iters=4, batch_size=2, image_size=64,
                train_scenes=8, short_sides=(56, 64, 72), progress=False)  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def test_prefill_in_worker_processes_gives_the_scenes_made_one_by_one():
    cached = SyntheticDataset(6, seed=3, size=(64, 64), cache=True)
    assert cached.prefill(workers=2, min_parallel=0) == 6
    assert cached.prefill(workers=2, min_parallel=0) == 0  # all there
    plain = SyntheticDataset(6, seed=3, size=(64, 64))
    for i in range(6):
        a, b = cached[i], plain[i]
        assert np.array_equal(a[0].numpy(), b[0].numpy()) and np.array_equal(a[1].numpy(), b[1].numpy())


def test_build_dataset_prefills_the_training_scenes():
    ds = build_dataset(_cfg())
    assert isinstance(ds, SyntheticDataset) and ds.style.name == "train"
    assert ds._cache is not None and len(ds._cache) == 8


def test_dataloader_workers_give_the_same_batches():
    from ifcn_viz.train.loop import make_loader

    batches = {}
    for workers in (0, 2):
        it = iter(make_loader(_cfg(num_workers=workers)))
        batches[workers] = [next(it) for _ in range(5)]  # more than one epoch of 4 batches
    for (ia, ma, sa), (ib, mb, sb) in zip(batches[0], batches[2]):
        assert torch.equal(ia, ib) and torch.equal(sa, sb)
        assert all(torch.equal(x, y) for x, y in zip(ma, mb))


def test_single_thread_restores_the_thread_count_and_changes_no_result():
    from ifcn_viz.data.transforms import JointTransform

    n = torch.get_num_threads()
    img, masks = SyntheticDataset(1, seed=1, size=(96, 96))[0]
    tf = JointTransform((80, 112))
    ref = tf(img, masks, torch.Generator().manual_seed(5))
    with single_thread():
        assert torch.get_num_threads() == 1
        out = tf(img, masks, torch.Generator().manual_seed(5))
    assert torch.get_num_threads() == n
    assert torch.equal(ref[0], out[0]) and torch.equal(ref[1], out[1])


def test_scene_cache_file_is_written_once_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("IFCN_VIZ_SCENE_CACHE", str(tmp_path))
    first = build_dataset(_cfg())
    files = list(tmp_path.glob("scenes-*.npz"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    second = build_dataset(_cfg())
    assert files[0].stat().st_mtime_ns == stamp  # read, not rewritten
    plain = SyntheticDataset(8, seed=0, size=(64, 64))
    for i in range(8):
        for ds in (first, second):
            a, b = ds[i], plain[i]
            assert np.array_equal(a[0].numpy(), b[0].numpy()) and np.array_equal(a[1].numpy(), b[1].numpy())
    build_dataset(_cfg(seed=1))  # other scenes: another file
    assert len(list(tmp_path.glob("scenes-*.npz"))) == 2
