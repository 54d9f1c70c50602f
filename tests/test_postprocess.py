"""Pasting windows into the image, tight boxes without pasting, and NMS with its trace."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, masks_to_boxes, nms

from ifcn_viz.inference.postprocess import (
    masks_to_boxes_exclusive,
    nms_with_trace,
    paste_window_masks,
    paste_window_probs,
    top_k_windows,
    window_mask_boxes,
)


def paste_reference(probs: torch.Tensor, boxes: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """The definition, literally, in float64: sample each pixel centre bilinearly in the window's cells."""
    n, m, _ = probs.shape
    h, w = hw
    p = probs.double()
    out = torch.zeros(n, h, w, dtype=torch.float64)
    for k in range(n):
        x0, y0, x1, y1 = (float(v) for v in boxes[k])
        for y in range(h):
            cy = y + 0.5
            if not y0 <= cy < y1:
                continue
            v = min(max((cy - y0) / (y1 - y0) * m - 0.5, 0.0), m - 1.0)
            i0 = min(int(math.floor(v)), m - 2)
            fv = v - i0
            for x in range(w):
                cx = x + 0.5
                if not x0 <= cx < x1:
                    continue
                u = min(max((cx - x0) / (x1 - x0) * m - 0.5, 0.0), m - 1.0)
                j0 = min(int(math.floor(u)), m - 2)
                fu = u - j0
                out[k, y, x] = (
                    (1 - fv) * (1 - fu) * p[k, i0, j0]
                    + (1 - fv) * fu * p[k, i0, j0 + 1]
                    + fv * (1 - fu) * p[k, i0 + 1, j0]
                    + fv * fu * p[k, i0 + 1, j0 + 1]
                )
    return out


def _random_windows(n: int, m: int, hw: tuple[int, int], seed: int, size=(8.0, 60.0)):
    g = torch.Generator().manual_seed(seed)
    h, w = hw
    probs = torch.rand(n, m, m, generator=g)
    side = size[0] + (size[1] - size[0]) * torch.rand(n, generator=g)
    x0 = -side / 2 + (w + side / 2) * torch.rand(n, generator=g)  # some cross the left/right border
    y0 = -side / 2 + (h + side / 2) * torch.rand(n, generator=g)
    aspect = 0.6 + 0.8 * torch.rand(n, generator=g)
    return probs, torch.stack([x0, y0, x0 + side, y0 + side * aspect], 1)


def test_paste_matches_float64_reference_loop():
    probs, boxes = _random_windows(6, 5, (23, 31), seed=0, size=(6.0, 40.0))
    fast = paste_window_probs(probs, boxes, (23, 31))
    ref = paste_reference(probs, boxes, (23, 31))
    assert fast.shape == (6, 23, 31) and fast.dtype == torch.float32
    torch.testing.assert_close(fast.double(), ref, atol=2e-6, rtol=0)
    assert (ref == 0).any() and (ref > 0).any()  # the test covers inside and outside the boxes


def test_paste_equals_interpolate_on_pixel_aligned_box():
    probs = torch.rand(1, 21, 21, generator=torch.Generator().manual_seed(1))
    out = paste_window_probs(probs, torch.tensor([[10.0, 5.0, 94.0, 68.0]]), (80, 120))[0]
    up = F.interpolate(probs[None], size=(63, 84), mode="bilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(out[5:68, 10:94], up, atol=5e-6, rtol=0)
    assert out[:5].abs().max() == 0 and out[:, 94:].abs().max() == 0


def test_paste_validates():
    with pytest.raises(ValueError, match="N, m, m"):
        paste_window_probs(torch.rand(2, 3, 4), torch.zeros(2, 4), (10, 10))
    with pytest.raises(ValueError, match="boxes must be"):
        paste_window_probs(torch.rand(2, 3, 3), torch.zeros(3, 4), (10, 10))
    with pytest.raises(ValueError, match="x1 > x0"):
        paste_window_probs(torch.rand(1, 3, 3), torch.tensor([[5.0, 0.0, 5.0, 4.0]]), (10, 10))


@pytest.mark.parametrize("m", [1, 5, 21])
def test_window_mask_boxes_are_the_pasted_masks_tight_boxes(m):
    hw = (57, 83)
    probs, boxes = _random_windows(300, m, hw, seed=m, size=(10.0, 120.0))
    probs = probs**3  # sparser masks: boxes strictly inside the windows
    for thr in (0.2, 0.4, 0.7):
        tight, nonempty = window_mask_boxes(probs, boxes, hw, thr)
        masks = paste_window_probs(probs, boxes, hw) >= thr
        pasted, pasted_boxes = paste_window_masks(probs, boxes, hw, thr)
        torch.testing.assert_close(masks, pasted)
        within, within_boxes = paste_window_masks(probs, boxes, hw, thr, within=tight)  # computed in the tight box
        torch.testing.assert_close(masks, within)
        torch.testing.assert_close(pasted_boxes, tight, atol=0, rtol=0)
        torch.testing.assert_close(within_boxes, tight, atol=0, rtol=0)
        has = masks.flatten(1).any(1)
        assert torch.equal(nonempty, has)
        ref = masks_to_boxes(masks[has]) + torch.tensor([0.0, 0.0, 1.0, 1.0])  # torchvision: inclusive x1, y1
        torch.testing.assert_close(tight[has], ref, atol=0, rtol=0)
        torch.testing.assert_close(masks_to_boxes_exclusive(masks[has]), ref, atol=0, rtol=0)
        if m > 1 and thr == 0.7:
            assert has.any() and (~has).any()  # both kinds occur, so `nonempty` is really tested


def test_top_k_windows_order_and_positions():
    a = torch.tensor([[0.0, 3.0], [1.0, -1.0]])  # scale 0: 2x2
    b = torch.tensor([[2.0, 3.0, 5.0]])  # scale 1: 1x3
    scores, s, cy, cx = top_k_windows([a, b], 4)
    assert torch.equal(s, torch.tensor([1, 0, 1, 1]))  # 5, 3 (scale 0 first: stable), 3, 2
    assert torch.equal(cy, torch.tensor([0, 0, 0, 0])) and torch.equal(cx, torch.tensor([2, 1, 1, 0]))
    torch.testing.assert_close(scores, torch.sigmoid(torch.tensor([5.0, 3.0, 3.0, 2.0])))
    assert top_k_windows([a], 0)[0].numel() == 0


def test_nms_trace_consistent_with_torchvision():
    g = torch.Generator().manual_seed(0)
    n = 300
    xy = torch.rand(n, 2, generator=g) * 100
    wh = 20 + torch.rand(n, 2, generator=g) * 30
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(n, generator=g).sort(descending=True).values
    for thr in (0.3, 0.5, 0.8):
        keep, steps = nms_with_trace(boxes, thr, trace=True, scores=scores)
        assert torch.equal(keep, nms(boxes, scores, thr))
        assert len(steps) == n and [s.candidate for s in steps] == list(range(n))
        kept = {s.candidate for s in steps if s.kept}
        assert kept == set(keep.tolist())
        for s in steps:
            assert s.score == pytest.approx(float(scores[s.candidate]))
            if s.kept:
                assert s.suppressed_by is None and s.iou is None
                earlier_kept = [k for k in kept if k < s.candidate]
                if earlier_kept:  # nothing kept before it overlaps it above the threshold
                    assert box_iou(boxes[[s.candidate]], boxes[earlier_kept]).max() <= thr
            else:
                j = s.suppressed_by
                assert j in kept and j < s.candidate and s.iou > thr
                assert s.iou == pytest.approx(float(box_iou(boxes[[j]], boxes[[s.candidate]])))
                # the earliest kept one above the threshold is the one greedy NMS suppressed it with
                assert all(box_iou(boxes[[k]], boxes[[s.candidate]]) <= thr for k in kept if k < j)
    keep, steps = nms_with_trace(boxes, 0.5)
    assert steps == [] and keep.numel() > 0


def test_nms_ties_follow_given_order():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    keep, steps = nms_with_trace(boxes, 0.5, trace=True, scores=torch.ones(3))
    assert keep.tolist() == [0] and [s.suppressed_by for s in steps] == [None, 0, 0]
    assert np.isclose(steps[1].iou, 1.0)
