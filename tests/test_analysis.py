"""ifcn_viz.inference.analysis (question 4), ifcn_viz.train.inspect (training's labels and targets) and
evaluate.object_recall (notebook 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ifcn_viz.evaluate import coco_gt_from_masks, encode_mask, evaluate_results, missed_objects, object_recall
from ifcn_viz.inference.analysis import (
    best_touching_pair,
    layer_activations,
    mask_confidence,
    ranked_proposals,
    ranking_recall,
    recall_at_n,
    score_windows,
    touching_pairs,
    window_sweep,
)
from ifcn_viz.train.inspect import sample_targets, training_labels


def _squares() -> np.ndarray:
    gt = np.zeros((3, 64, 96), bool)
    gt[0, 10:40, 10:40] = True
    gt[1, 10:40, 40:70] = True  # touches object 0
    gt[2, 50:60, 85:95] = True  # alone
    return gt


def test_touching_pairs_and_recall_at_n():
    assert touching_pairs(_squares()) == [(0, 1)]
    ious = np.array([[0.2, 0.0], [0.6, 0.1], [0.0, 0.9]])
    assert recall_at_n(ious, [0, 1, 2], [1, 2, 3]).tolist() == [0.0, 0.5, 1.0]
    assert recall_at_n(ious, [2, 1, 0], [1, 2]).tolist() == [0.5, 1.0]
    assert mask_confidence(torch.tensor([[[0.5, 0.5]], [[0.0, 1.0]]])).tolist() == [0.0, 1.0]


def test_object_recall_matches_cocoeval_and_finds_the_missed():
    gt = np.zeros((2, 120, 160), bool)
    gt[0, 20:60, 20:60] = True
    gt[1, 50:110, 90:120] = True
    coco = coco_gt_from_masks([gt])
    shifted = np.roll(gt[0], 6, axis=1)  # IoU 0.739 with object 0
    res = [{"image_id": 1, "category_id": 1, "segmentation": encode_mask(m), "score": s}
           for m, s in ((np.roll(gt[0], 60, axis=1), 0.95), (shifted, 0.9), (gt[1], 0.8))]  # fmt: skip
    rec = object_recall(coco, res, max_dets=(1, 10))
    assert rec.best_iou.shape == (2, 2) and rec.best_iou[0].max() < 0.5  # the first proposal finds neither
    assert np.allclose(rec.best_iou[1], [34 / 46, 1.0], atol=1e-3)
    assert rec.best_rank.tolist() == [1, 2]
    assert abs(rec.average_recall(10) - evaluate_results(coco, res)["AR@10"]) < 1e-6  # (0.5 + 1.0) / 2
    assert rec.recall(0.8, 10) == 0.5 and rec.size_classes()["large"].sum() == 0
    missed = missed_objects(coco, res, rec, iou=0.8, n=10)
    assert [(m["ann_id"], m["rank"]) for m in missed] == [(1, 1)] and (missed[0]["best"] == shifted).all()


@pytest.fixture(scope="module")
def scene_predictor():
    from ifcn_viz.data.synthetic import generate_scene
    from ifcn_viz.inference import Predictor

    torch.set_num_threads(2)
    pred = Predictor.from_checkpoint("shipped", device="cpu")
    image, masks = generate_scene((424_242, 100), (192, 224), min_objects=2, max_objects=2, touching_fraction=1.0)
    pred.set_image(image)
    return pred, image, masks


def test_score_windows_ranks_as_the_predictor_and_measures_exact_ious(scene_predictor):
    pred, image, masks = scene_predictor
    every = score_windows(pred, masks)
    assert len(every) == sum(sm.objectness.numel() for sm in pred.scales)
    c = pred.candidates(pre_nms_top_k=50)
    order = torch.sort(every.objectness, descending=True, stable=True).indices[:50]
    assert torch.equal(every.scale_index[order], c.scale_index) and torch.equal(every.cy[order], c.cy)
    pooled = score_windows(pred, masks, top_k=50)
    assert len(pooled) <= 4 * 50 and pooled.ious.shape[1] == len(masks)
    kept = ranked_proposals(every, "objectness", nms_iou=pred.infer.nms_iou)
    p = pred.proposals(top_n=5)
    firsts = [(int(every.scale_index[i]), int(every.cy[i]), int(every.cx[i])) for i in kept[:5]]
    assert firsts == [(int(s), int(y), int(x)) for s, (y, x) in zip(p.scale_index, p.centers)]  # the same proposals
    rec = ranking_recall(pred, [(image, masks)], ns=(1, 5, 50))
    assert set(rec) == {"objectness", "mask confidence", "objectness x mask confidence", "random"}
    assert all((np.diff(r) >= 0).all() for r in rec.values())


def test_sweep_targets_labels_and_activations(scene_predictor):
    pred, image, masks = scene_predictor
    pair, scale, _ = best_touching_pair(pred, masks)
    sw = window_sweep(pred, masks, pair, scale)
    assert len(sw.cells) == len({tuple(c) for c in sw.cells}) >= 3 and sw.ious.shape == (len(sw.cells), 2)
    assert sw.ious[:, 0].max() > 0.5 and sw.ious[:, 1].max() > 0.5  # the shipped model separates the twins
    logits, pos, neg = training_labels(pred, masks)
    assert len(logits) == len(pos) == len(neg) and pos.any() and not (pos & neg).any()
    ts = sample_targets(pred, image, masks)
    assert ts.targets.shape == ts.predicted.shape and len(ts.positives) > 0
    assert pred.image is image or (pred.image == image).all()  # its own Predictor: the image is left alone
    acts = layer_activations(pred.model, torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255,
                             ["backbone.features.0", "instance.reduce"])  # fmt: skip
    assert acts["backbone.features.0"].shape[0] == pred.model.backbone.features[0][0].out_channels
    assert (acts["instance.reduce"] < 0).any()  # caught before the in-place ReLU that follows it
    with pytest.raises(KeyError):
        layer_activations(pred.model, torch.zeros(1, 3, 32, 32), ["no.such.layer"])
