"""The proposal funnel: counts that add up to what inference does, exact mask IoUs, recall that only falls."""

import numpy as np
import pytest
import torch

from ifcn_viz.data.synthetic import generate_scene
from ifcn_viz.inference.funnel import STAGES, proposal_funnel, window_mask_ious
from ifcn_viz.inference.postprocess import paste_window_probs, window_mask_boxes
from ifcn_viz.inference.predictor import Predictor

THR = 0.4


@pytest.fixture(scope="module")
def scene():
    predictor = Predictor.from_checkpoint("shipped", device="cpu")
    image, masks = generate_scene(5, size=(256, 256))
    predictor.set_image(image)
    return predictor, image, masks


def _iou64(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum(dtype=np.float64)
    return float(np.logical_and(a, b).sum(dtype=np.float64) / union) if union else 0.0


def test_window_mask_ious_equal_a_brute_force_reference():
    gen = torch.Generator().manual_seed(0)
    n, m, hw = 12, 9, (40, 52)
    probs = torch.rand(n, m, m, generator=gen)
    x0 = torch.rand(n, generator=gen) * 40 - 8
    y0 = torch.rand(n, generator=gen) * 30 - 6
    side = 8 + torch.rand(n, generator=gen) * 30
    boxes = torch.stack([x0, y0, x0 + side, y0 + side * 0.8], 1)
    gt = np.zeros((3, *hw), bool)
    gt[0, 5:25, 4:30] = True
    gt[1, 20:38, 28:50] = True
    gt[2, 0:3, 0:3] = True
    tight, _ = window_mask_boxes(probs, boxes, hw, THR)
    got = window_mask_ious(probs, boxes, tight, torch.from_numpy(gt), THR)
    pasted = paste_window_probs(probs, boxes, hw).numpy() >= THR
    want = np.array([[_iou64(pasted[i], gt[g]) for g in range(3)] for i in range(n)])
    assert (want > 0.05).sum() >= 4, "the reference must have real overlaps to compare"
    np.testing.assert_allclose(got, want, atol=1e-6)
    # with a floor, pairs that could not reach it read 0 and every value at or above it stays exact
    floored = window_mask_ious(probs, boxes, tight, torch.from_numpy(gt), THR, min_iou=0.3)
    np.testing.assert_allclose(floored[want >= 0.3], want[want >= 0.3], atol=1e-6)
    assert ((floored == 0) | np.isclose(floored, want, atol=1e-6)).all()


def test_stage_counts_add_up_to_what_proposals_returns(scene):
    predictor, _, masks = scene
    funnel = proposal_funnel(predictor, masks, top_n=20, mask_threshold=THR)
    assert [st.name for st in funnel.stages] == list(STAGES)
    counts = [st.count for st in funnel.stages]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[1] > counts[-1] > 0
    for st in funnel.stages:
        assert sum(st.per_scale) == st.count and len(st.per_scale) == len(predictor.scales)
    assert funnel.stages[0].per_scale == tuple(sm.objectness.numel() for sm in predictor.scales)
    assert counts[1] == min(predictor.infer.pre_nms_top_k, counts[0])
    props = predictor.proposals(top_n=20, mask_threshold=THR)
    assert counts[-1] == len(props)
    # the funnel's last stage is the proposals: same windows, and its IoUs are the proposals' masks' IoUs
    c = funnel.candidates
    np.testing.assert_array_equal(c.scale_index[c.final].numpy(), props.scale_index)
    want = np.array([[_iou64(props.masks[i], masks[g]) for g in range(len(masks))] for i in range(len(props))])
    got = funnel.rank_iou[c.final.numpy()]
    np.testing.assert_allclose(got[want >= 0.1], want[want >= 0.1], atol=1e-6)


def test_recall_only_falls_along_the_funnel_and_missed_objects_are_named(scene):
    predictor, _, masks = scene
    funnel = proposal_funnel(predictor, masks, top_n=3, mask_threshold=THR)
    recalls = [st.recall for st in funnel.stages]
    assert all(a >= b for a, b in zip(recalls, recalls[1:])), recalls
    for a, b in zip(funnel.stages, funnel.stages[1:]):
        assert (a.best_iou >= b.best_iou - 1e-6).all()
    found = funnel.stages[-1].found
    assert funnel.missed == [g for g in range(len(masks)) if not found[g]]
    for g in funnel.missed:
        assert funnel.lost_at(g) in STAGES
    d = funnel.to_dict()
    assert d["objects"] == len(masks) and len(d["stages"]) == len(STAGES)
    assert d["stages"][-1]["windows"] == funnel.stages[-1].count


def test_the_proposals_own_masks_as_ground_truth_are_all_found(scene):
    predictor, _, _ = scene
    props = predictor.proposals(top_n=5, mask_threshold=THR)
    funnel = proposal_funnel(predictor, props.masks, top_n=5, mask_threshold=THR, every_window=False)
    assert funnel.stages[-1].recall == 1.0 and np.allclose(funnel.stages[-1].best_iou, 1.0)
    assert funnel.stages[0].recall is None  # not measured without every_window


def test_without_ground_truth_only_counts(scene):
    predictor, _, _ = scene
    funnel = proposal_funnel(predictor, top_n=10)
    assert all(st.recall is None and st.found is None for st in funnel.stages)
    assert funnel.missed == [] and funnel.gt_count == 0
    with pytest.raises(ValueError, match="gt_masks"):
        proposal_funnel(predictor, np.zeros((1, 10, 10), bool))


def test_yardstick_funnel_losses_count_every_object_once(tmp_path):
    """`python -m ifcn_viz.train.yardsticks --funnel`: every object is either found or lost at exactly one stage,
    and the found ones are those some proposal segments at IoU >= 0.5 (checked against the proposals themselves)."""
    import json

    from pycocotools.coco import COCO

    from ifcn_viz.data.commands import write_synthetic_coco
    from ifcn_viz.train.yardsticks import funnel_losses, funnel_table

    ann = write_synthetic_coco(tmp_path / "set", 2, seed=77, size=(192, 192))
    predictor = Predictor.from_checkpoint("shipped", device="cpu")
    counts = funnel_losses(predictor, ann, tmp_path / "set" / "images")
    n = len(json.loads(ann.read_text())["annotations"])
    assert set(counts) == {"found", *STAGES} and sum(counts.values()) == n and n > 0
    coco, found = COCO(str(ann)), 0
    for img_id in coco.getImgIds():
        predictor.set_image(tmp_path / "set" / "images" / coco.loadImgs(img_id)[0]["file_name"])
        props = predictor.proposals(top_n=100)
        for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id)):
            g = coco.annToMask(a).astype(bool)
            found += any(_iou64(p, g) >= 0.5 for p in props.masks)
    assert counts["found"] == found
    text = funnel_table({"m": {"independent": {"lost": counts}}})
    assert f"| m | independent synthetic | {counts['found']} |" in text
