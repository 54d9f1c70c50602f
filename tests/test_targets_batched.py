"""The batched window sampler (ifcn_viz/train/targets.py) against the per-image one it replaced
(tests/_targets_reference.py).

The random draw changed (random keys cut by ``topk`` instead of one ``randperm`` per image), so the sampled *sets*
cannot equal the old ones.  What is checked instead, on random batches (several seeds, paddings, strides, images
without instances, tiny and empty instances, overlapping masks): every window's label and owner equal the
reference's exactly; every sampled positive's mask target equals the reference's for that window and owner; the
draw obeys the rule (counts, 1:1 ratio, eligible windows only, no repeats) and is uniform; same seed, same draw;
CPU and CUDA give the same draw from the same CPU generator.
"""

from __future__ import annotations

import pytest
import torch

from ifcn_viz.train.targets import (
    WindowLabels,
    WindowRule,
    draw_windows,
    drawn_centers,
    label_instance_batch,
    label_windows,
    sample_windows,
    stack_instances,
    window_keys,
)
from tests._targets_reference import label_windows_reference, window_mask_targets_reference

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_instances(g: torch.Generator, n: int, h: int, w: int) -> torch.Tensor:
    """``[n, h, w]`` bool: rectangles and discs, sides from 1 px to 1.5x the reference size (96 px), around a third
    near it; some touch or overlap; now and then an empty mask or a single pixel."""
    masks = torch.zeros(n, h, w, dtype=torch.bool)
    yy, xx = torch.arange(h)[:, None], torch.arange(w)[None, :]
    for i in range(n):
        kind = int(torch.randint(6, (1,), generator=g))
        side = (
            int(torch.randint(68, 137, (1,), generator=g))
            if kind < 2
            else int(torch.randint(1, 150, (1,), generator=g))
        )
        cy, cx = (int(torch.randint(-side // 3, s + side // 3, (1,), generator=g)) for s in (h, w))
        if kind == 5 and i % 2:
            continue  # an empty mask
        if kind in (0, 3):  # a disc
            masks[i] = (yy - cy) ** 2 + (xx - cx) ** 2 <= (side / 2) ** 2
        elif kind == 4:  # a single pixel
            masks[i, min(max(cy, 0), h - 1), min(max(cx, 0), w - 1)] = True
        else:  # a rectangle, sometimes thin
            hh = side if kind != 2 else max(1, side // 5)
            masks[
                i,
                max(0, cy - hh // 2) : max(0, cy + (hh + 1) // 2),
                max(0, cx - side // 2) : max(0, cx + (side + 1) // 2),
            ] = True
    return masks


def random_batch(seed: int, stride: int = 8, b: int = 5):
    """A padded batch as ``pad_collate`` makes it: masks ``[N_b, H, W]`` (some images empty), true sizes."""
    g = torch.Generator().manual_seed(seed)
    sizes = torch.stack([torch.randint(64, 300, (2,), generator=g) for _ in range(b)])
    H, W = (int(-(-v // stride) * stride) for v in sizes.max(0).values)
    masks_list = []
    for i in range(b):
        n = int(torch.randint(0, 9, (1,), generator=g)) if i != 1 else 0  # image 1: no instance
        h, w = (int(v) for v in sizes[i])
        inner = random_instances(g, n, h, w)
        padded = torch.zeros(n, H, W, dtype=torch.bool)
        padded[:, :h, :w] = inner
        masks_list.append(padded)
    return masks_list, sizes, (H // stride, W // stride)


SETTINGS = [(seed, stride, m) for seed in range(6) for stride, m in ((8, 21), (16, 11))] + [(7, 8, 15)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed,stride,m", SETTINGS)
def test_every_window_is_labelled_and_owned_as_by_the_reference(seed, stride, m, device):
    masks_list, sizes, feat = random_batch(seed, stride)
    masks_list = [mk.to(device) for mk in masks_list]
    rule = WindowRule()
    got = label_instance_batch(stack_instances(masks_list, sizes), feat, m, stride, rule)
    for b, masks in enumerate(masks_list):
        ref = label_windows_reference(masks, feat, m, stride, rule, tuple(int(v) for v in sizes[b]))
        assert torch.equal(got.positive[b], ref.positive), b
        assert torch.equal(got.negative[b], ref.negative), b
        assert torch.equal(got.owner[b], ref.owner), b
        one = label_windows(masks, feat, m, stride, rule, tuple(int(v) for v in sizes[b]))  # the one-image form
        assert all(torch.equal(x, y) for x, y in zip(one, ref))
    assert int(got.positive.sum()) > 0 and int(got.negative.sum()) > 0  # the batches exercise both


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed,stride,m", SETTINGS)
def test_the_draw_obeys_the_rule_and_every_mask_target_equals_the_reference(seed, stride, m, device):
    masks_list, sizes, feat = random_batch(seed, stride)
    masks_list = [mk.to(device) for mk in masks_list]
    rule = WindowRule(windows_per_image=int(torch.randint(8, 300, (1,), generator=torch.Generator().manual_seed(seed))))
    t = sample_windows(masks_list, feat, m, stride, rule, torch.Generator().manual_seed(seed), sizes)
    n_pos = len(t.pos_centers)
    assert torch.equal(t.labels, (torch.arange(len(t.labels), device=device) < n_pos).float())  # positives first
    assert torch.equal(t.pos_centers, t.centers[:n_pos])
    n_pos_max = round(rule.windows_per_image * rule.positive_fraction)
    for b, masks in enumerate(masks_list):
        ref = label_windows_reference(masks, feat, m, stride, rule, tuple(int(v) for v in sizes[b]))
        mine = t.centers[:, 0] == b
        pos, neg = t.centers[mine & (t.labels == 1)][:, 1:], t.centers[mine & (t.labels == 0)][:, 1:]
        assert ref.positive[pos[:, 0], pos[:, 1]].all() and ref.negative[neg[:, 0], neg[:, 1]].all()
        cells = torch.cat([pos, neg])
        assert len(torch.unique(cells[:, 0] * feat[1] + cells[:, 1])) == len(cells), "no window twice"
        n_p, n_n = int(ref.positive.sum()), int(ref.negative.sum())
        assert len(pos) == min(n_p, n_pos_max)
        assert len(neg) == min(n_n, rule.windows_per_image - len(pos))
        # the image's block of positives, in order, with its targets
        rows = torch.nonzero(t.pos_centers[:, 0] == b).squeeze(1)
        owners = ref.owner[pos[:, 0], pos[:, 1]]
        want = window_mask_targets_reference(masks, owners, pos, feat, m, stride)
        assert torch.equal(t.pos_masks[rows], want), b
    assert t.pos_masks.shape == (n_pos, m, m) and t.centers.dtype == torch.long


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_draw_and_a_new_seed_a_new_one(device):
    masks_list, sizes, feat = random_batch(11)
    masks_list = [mk.to(device) for mk in masks_list]
    draws = [sample_windows(masks_list, feat, 21, 8, None, torch.Generator().manual_seed(s), sizes) for s in (3, 3, 4)]
    assert all(torch.equal(x, y) for x, y in zip(draws[0], draws[1]))
    assert not torch.equal(draws[0].centers, draws[2].centers)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_draws_what_the_cpu_draws_from_the_same_cpu_generator():
    masks_list, sizes, feat = random_batch(5)
    cpu = sample_windows(masks_list, feat, 21, 8, None, torch.Generator().manual_seed(0), sizes)
    gpu = sample_windows([mk.cuda() for mk in masks_list], feat, 21, 8, None, torch.Generator().manual_seed(0), sizes)
    assert all(torch.equal(x, y.cpu()) for x, y in zip(cpu, gpu))


def test_each_eligible_window_is_drawn_equally_often():
    """Uniform without replacement: 2,000 images, each with the same 40 positives and 60 negatives of 100 windows;
    16 windows at 1:1 -> each positive drawn with probability 8/40, each negative 8/60."""
    b, rule = 2000, WindowRule(windows_per_image=16)
    positive = torch.zeros(b, 10, 10, dtype=torch.bool)
    positive[:, :4] = True
    labels = WindowLabels(positive, ~positive, torch.full((b, 10, 10), -1))
    take, at = draw_windows(labels, window_keys((b, 100), torch.Generator().manual_seed(0), "cpu"), rule)
    centers, n_pos = drawn_centers(take, at, int(take.sum()), 10), int(take[0].sum())
    assert n_pos == 8 * b and len(centers) == 16 * b
    hits = torch.zeros(100).index_add_(0, centers[:, 1] * 10 + centers[:, 2], torch.ones(len(centers))) / b
    for cells, p in ((slice(0, 40), 8 / 40), (slice(40, 100), 8 / 60)):
        sd = (p * (1 - p) / b) ** 0.5
        assert (hits[cells] - p).abs().max() < 5 * sd, hits[cells]


def test_keys_are_distinct_in_each_row_and_drawn_on_the_generator_device():
    keys = window_keys((3, 1000), torch.Generator().manual_seed(1), torch.device("cpu"))
    assert keys.dtype == torch.int64 and all(len(torch.unique(r)) == 1000 for r in keys)
    again = window_keys((3, 1000), torch.Generator().manual_seed(1), torch.device("cpu"))
    assert torch.equal(keys, again)


def test_an_empty_batch_and_a_batch_without_instances():
    t = sample_windows([], (4, 4), 21, 8)
    assert t.centers.shape == (0, 3) and t.pos_masks.shape == (0, 21, 21)
    none = [torch.zeros(0, 32, 40, dtype=torch.bool)] * 3
    t = sample_windows(none, (4, 5), 21, 8, WindowRule(windows_per_image=8), torch.Generator().manual_seed(0))
    assert len(t.centers) == 24 and not t.labels.any() and len(t.pos_centers) == 0
