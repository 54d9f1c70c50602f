"""Batches made on the device from compact scene tensors (ifcn_viz/train/scenes.py) against the DataLoader path."""

from __future__ import annotations

import pytest
import torch

from ifcn_viz.data.synthetic import SyntheticDataset
from ifcn_viz.data.transforms import JointTransform, pad_collate
from ifcn_viz.train.data import Augmented, StepBatchSampler
from ifcn_viz.train.recipe import train_config
from ifcn_viz.train.scenes import SceneBatches, augment_batch, scene_tensors
from ifcn_viz.train.targets import WindowRule, label_instance_batch, sample_windows, stack_instances

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def dataset():
    ds = SyntheticDataset(12, seed=5, size=(96, 112), cache=True)
    ds.prefill()
    return ds


@pytest.mark.parametrize("device", DEVICES)
def test_a_batch_has_the_dataloader_path_sizes_flips_and_masks(dataset, device):
    """Same scenes, keys and choices as ``Augmented`` + ``pad_collate``: the same padded size, true sizes, window
    labels and owners (the masks, up to the empty ones the DataLoader path drops), the same images (on a GPU within
    a grey level)."""
    tf = JointTransform((64, 80, 96, 120))
    scenes = scene_tensors(dataset, device)
    loader = Augmented(dataset, tf)
    for _, items in zip(range(4), StepBatchSampler(len(dataset), 4, seed=1)):
        images, inst, sizes = augment_batch(scenes, items, tf)
        ref_images, ref_masks, ref_sizes = pad_collate([loader[item] for item in items])
        assert images.shape == ref_images.shape and torch.equal(sizes, ref_sizes)
        if device == "cpu":  # the same uint8 resize kernels
            assert torch.equal(images, ref_images)
        else:
            assert (images.cpu() - ref_images).abs().max() <= 1 / 255 + 1e-6
        assert images.device.type == inst.masks.device.type == device
        feat = (images.shape[2] // 8, images.shape[3] // 8)
        got = label_instance_batch(inst, feat, 21, 8, WindowRule())
        ref = label_instance_batch(stack_instances(ref_masks, ref_sizes), feat, 21, 8, WindowRule())
        assert torch.equal(got.positive.cpu(), ref.positive) and torch.equal(got.negative.cpu(), ref.negative)
        for b in range(len(items)):  # owners: the same instance, whose index differs by the empty masks dropped
            kept = inst.masks[inst.first[b] : inst.first[b] + dataset_count(inst, b)].flatten(1).any(1).cpu()
            renumber = torch.cumsum(kept.long(), 0) - 1
            pos = got.positive[b].cpu()
            assert torch.equal(renumber[got.owner[b].cpu()[pos]], ref.owner[b][pos])


def dataset_count(inst, b: int) -> int:
    nxt = inst.first[b + 1] if b + 1 < len(inst.first) else inst.masks.shape[0]
    return int(nxt - inst.first[b])


def test_same_seed_same_batches_and_resume_at_any_step(dataset):
    cfg = train_config("tiny", batch_size=3, seed=4, short_sides=(80, 96))
    scenes = scene_tensors(dataset, "cpu")
    run = [b for _, b in zip(range(6), SceneBatches(scenes, cfg))]
    again = [b for _, b in zip(range(6), SceneBatches(scenes, cfg))]
    resumed = [b for _, b in zip(range(2), SceneBatches(scenes, cfg, start_step=4))]
    for x, y in zip(run, again):
        assert torch.equal(x[0], y[0]) and torch.equal(x[1].masks, y[1].masks) and torch.equal(x[2], y[2])
    for x, y in zip(run[4:], resumed):
        assert torch.equal(x[0], y[0]) and torch.equal(x[1].masks, y[1].masks)
    assert not torch.equal(run[0][2], run[1][2]) or not torch.equal(run[0][0], run[1][0])


@pytest.mark.parametrize("device", DEVICES)
def test_the_sampler_takes_the_batch_as_it_comes(dataset, device):
    cfg = train_config("tiny", batch_size=4, seed=2, short_sides=(96,))
    images, inst, sizes = next(iter(SceneBatches(scene_tensors(dataset, device), cfg)))
    feat = (images.shape[2] // 8, images.shape[3] // 8)
    t = sample_windows(inst, feat, 21, 8, WindowRule(windows_per_image=32), torch.Generator().manual_seed(0))
    assert len(t.centers) == 4 * 32 and t.pos_masks.shape[0] == int(t.labels.sum())


def test_make_loader_makes_scene_batches_for_a_device_and_cached_scenes(tmp_path):
    from ifcn_viz.train.data import build_dataset
    from ifcn_viz.train.loop import make_loader

    cfg = train_config("tiny", batch_size=2, image_size=64, train_scenes=4, short_sides=(64,), out=str(tmp_path))
    base = build_dataset(cfg)  # cached and filled
    assert isinstance(make_loader(cfg, base=base, device=torch.device("cpu")), SceneBatches)
    assert not isinstance(make_loader(cfg, base=base), SceneBatches)  # the DataLoader path


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_a_gpu_feeds_scene_batches(tmp_path, monkeypatch):
    from ifcn_viz.train import loop
    from ifcn_viz.train.loop import train

    made = []
    real = loop.make_loader
    monkeypatch.setattr(loop, "make_loader", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    cfg = train_config("tiny", out=str(tmp_path), iters=3, batch_size=2, image_size=96, short_sides=(88, 96),
                       train_scenes=8, windows_per_image=64, eval_images=0, progress=False, device="cuda",
                       log_every=1)  # fmt: skip
    res = train(cfg)
    assert res.step == 3 and isinstance(made[0], SceneBatches)
    assert next(res.model.parameters()).device.type == "cuda"
