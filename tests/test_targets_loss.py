"""Window sampling (positives where objects are centred, none elsewhere), ground-truth masks, the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ifcn_viz.model.geometry import window_box
from ifcn_viz.train.loss import instance_fcn_loss
from ifcn_viz.train.targets import WindowRule, WindowTargets, label_windows, sample_windows, window_mask_targets

M, S = 21, 8


def square(h, w, y0, x0, side):
    mk = torch.zeros(h, w, dtype=torch.bool)
    mk[y0 : y0 + side, x0 : x0 + side] = True
    return mk


def test_positives_are_exactly_the_centred_windows_of_a_matching_object():
    # a 96-px square (the reference size) with its box centre at pixel (100, 140)
    masks = square(256, 256, 52, 92, 96)[None]
    lab = label_windows(masks, (32, 32), M, S, WindowRule())
    ys, xs = torch.nonzero(lab.positive, as_tuple=True)
    cy, cx = (ys.float() + 0.5) * S, (xs.float() + 0.5) * S
    assert len(ys) > 0
    assert ((cy - 100).abs() <= 16).all() and ((cx - 140).abs() <= 16).all()
    # every window centre within +-16 px on both axes is positive
    expected = sum(
        1 for y in range(32) for x in range(32) if abs((y + 0.5) * S - 100) <= 16 and abs((x + 0.5) * S - 140) <= 16
    )
    assert len(ys) == expected
    assert (lab.owner[lab.positive] == 0).all() and (lab.owner[~lab.positive] == -1).all()
    # negatives: >= 48 px away on some axis
    ny, nx = torch.nonzero(lab.negative, as_tuple=True)
    far = torch.maximum(((ny + 0.5) * S - 100).abs(), ((nx + 0.5) * S - 140).abs())
    assert (far >= 48).all() and not (lab.positive & lab.negative).any()


def test_objects_of_the_wrong_scale_give_no_positives_and_small_ones_are_negative():
    small = square(256, 256, 100, 100, 30)[None]  # 30 px: over 1.5 octaves below 96
    lab = label_windows(small, (32, 32), M, S, WindowRule())
    assert not lab.positive.any()
    assert lab.negative.all(), "a factor >= 2 in scale makes every window negative"
    huge = square(256, 256, 0, 0, 250)[None]  # 250 px: 1.4 octaves above
    assert not label_windows(huge, (32, 32), M, S, WindowRule()).positive.any()


def test_padding_is_never_sampled():
    masks = square(256, 256, 52, 92, 96)[None]
    lab = label_windows(masks, (32, 32), M, S, WindowRule(), valid_hw=(128, 256))
    ys, _ = torch.nonzero(lab.positive | lab.negative, as_tuple=True)
    assert ((ys + 0.5) * S < 128).all()


def test_window_mask_target_is_the_area_resized_crop_float64_reference():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(2, 100, 120, generator=g) > 0.6
    feat_hw = (13, 15)
    yx = torch.tensor([[3, 4], [0, 14], [12, 7]])
    owners = torch.tensor([0, 1, 1])
    got = window_mask_targets(masks, owners, yx, feat_hw, M, S)
    m64 = masks.double().numpy()
    for p in range(3):
        x0, y0, x1, y1 = window_box(int(yx[p, 0]), int(yx[p, 1]), M, S)
        ref = np.zeros((M, M))
        for i in range(M):
            for j in range(M):
                acc = 0.0
                for yy in range(y0 + i * S, y0 + (i + 1) * S):
                    for xx in range(x0 + j * S, x0 + (j + 1) * S):
                        if 0 <= yy < 100 and 0 <= xx < 120:
                            acc += m64[int(owners[p]), yy, xx]
                ref[i, j] = acc / (S * S)
        np.testing.assert_allclose(got[p].double().numpy(), ref, atol=1e-6)


def test_sampling_is_one_to_one_with_negative_fill_and_reproducible():
    masks = torch.stack([square(256, 256, 52, 92, 96), square(256, 256, 150, 20, 80)])
    rule = WindowRule(windows_per_image=64)
    t1 = sample_windows([masks, masks[:0]], (32, 32), M, S, rule, torch.Generator().manual_seed(1))
    t2 = sample_windows([masks, masks[:0]], (32, 32), M, S, rule, torch.Generator().manual_seed(1))
    assert torch.equal(t1.centers, t2.centers)
    per_image = [(t1.centers[:, 0] == b).sum().item() for b in (0, 1)]
    assert per_image == [64, 64]
    pos0 = int(((t1.centers[:, 0] == 0) & (t1.labels == 1)).sum())
    assert pos0 == 32, "1:1 when enough positives exist"
    assert int(((t1.centers[:, 0] == 1) & (t1.labels == 1)).sum()) == 0, "no object: all negatives"
    assert len(t1.pos_centers) == pos0 and t1.pos_masks.shape == (pos0, M, M)
    # the centred window's target covers the object's middle
    assert (t1.pos_masks[:, M // 2, M // 2] > 0.99).all()


def test_few_positives_are_filled_with_negatives():
    masks = square(256, 256, 52, 92, 96)[None]
    t = sample_windows([masks], (32, 32), M, S, WindowRule(), torch.Generator().manual_seed(0))
    assert len(t.centers) == 256 and 0 < int(t.labels.sum()) < 128


def _maps(b=1, k=5, h=8, w=8):
    score = torch.randn(b, k * k, h, w, requires_grad=True)
    obj = torch.randn(b, 1, h, w, requires_grad=True)
    return score, obj


def test_loss_is_finite_and_differentiable_with_empty_targets():
    score, obj = _maps()
    z = torch.zeros((0, 3), dtype=torch.long)
    empty = WindowTargets(z, torch.zeros(0), z, torch.zeros(0, M, M))
    terms = instance_fcn_loss(score, obj, empty, M)
    assert torch.isfinite(terms.total) and terms.total.item() == 0.0
    terms.total.backward()
    assert score.grad is not None and obj.grad is not None and score.grad.abs().sum() == 0


def test_loss_with_only_negatives_trains_objectness_only():
    score, obj = _maps()
    masks = torch.zeros(0, 64, 64, dtype=torch.bool)
    t = sample_windows([masks], (8, 8), M, S, WindowRule(windows_per_image=16), torch.Generator().manual_seed(0))
    terms = instance_fcn_loss(score, obj, t, M)
    terms.total.backward()
    assert terms.mask.item() == 0.0 and terms.objectness.item() > 0
    assert obj.grad.abs().sum() > 0 and score.grad.abs().sum() == 0


def test_loss_matches_a_direct_bce_computation():
    score, obj = _maps(h=6, w=6)
    centers = torch.tensor([[0, 2, 3], [0, 5, 0]])
    gt = torch.rand(2, M, M)
    t = WindowTargets(centers, torch.tensor([1.0, 0.0]), centers[:1], gt[:1])
    terms = instance_fcn_loss(score, obj, t, M, objectness_weight=2.0, mask_weight=0.5)
    from ifcn_viz.model.assemble import assemble_at

    p = torch.sigmoid(obj[0, 0, [2, 5], [3, 0]].double())
    obj_ref = -(torch.log(p[0]) + torch.log(1 - p[1])) / 2
    s = torch.sigmoid(assemble_at(score, centers[:1], M).double())
    mask_ref = -(gt[:1] * torch.log(s) + (1 - gt[:1]) * torch.log(1 - s)).mean()
    assert terms.total.item() == pytest.approx((2 * obj_ref + 0.5 * mask_ref).item(), rel=1e-5)
