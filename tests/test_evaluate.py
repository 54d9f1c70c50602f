"""COCO-format results and AR: equal to a careful independent pycocotools call, with the known traps handled."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ifcn_viz.evaluate import (
    METRIC_KEYS,
    coco_gt_from_masks,
    evaluate_predictor,
    evaluate_results,
    proposals_to_coco_results,
)
from ifcn_viz.inference.types import Proposals


def _disc(h, w, cy, cx, r):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def _scene():
    """Two images with objects of all three COCO area ranges, and proposals of varied quality."""
    h, w = 120, 160
    gt1 = np.stack(
        [_disc(h, w, 30, 30, 5), _disc(h, w, 60, 100, 12), _rect(h, w, 10, 110, 40, 150)]
    )  # small, medium, large
    gt2 = np.stack([_disc(h, w, 40, 40, 20), _disc(h, w, 90, 120, 25)])
    p1 = np.stack(
        [_disc(h, w, 30, 31, 5), _disc(h, w, 62, 100, 12), _rect(h, w, 14, 110, 48, 150), _disc(h, w, 5, 5, 4)]
    )
    p2 = np.stack([_disc(h, w, 45, 40, 20), _disc(h, w, 0, 0, 10)])
    return [gt1, gt2], [p1, p2]


def _props(masks: np.ndarray, scores) -> Proposals:
    n = len(masks)
    z = np.zeros((n, 4), np.float32)
    return Proposals(masks, z, np.asarray(scores, np.float32), np.zeros(n, int), np.zeros((n, 2), int), z)


def _reference(dataset: dict, results: list[dict]) -> np.ndarray:
    """The recipe of docs/PAPER_NOTES.md (Sec. 5) written out independently."""
    gt = COCO()
    gt.dataset = copy.deepcopy(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), "segm")
        ev.params.useCats = 0
        ev.params.maxDets = [10, 100, 1000]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    recall50 = [ev.eval["recall"][0, 0, 0, m] for m in range(3)]  # IoU 0.5, all areas, 10 / 100 / 1000
    return np.concatenate([ev.stats[6:12], recall50])


def test_results_format():
    gts, props = _scene()
    res = proposals_to_coco_results(_props(props[0], [0.9, 0.8, 0.7, 0.1]), image_id=7)
    assert len(res) == 4
    for r, m, s in zip(res, props[0], [0.9, 0.8, 0.7, 0.1]):
        assert set(r) == {"image_id", "category_id", "segmentation", "score", "bbox"}
        assert r["image_id"] == 7 and r["category_id"] == 1 and r["score"] == pytest.approx(s)
        assert isinstance(r["segmentation"]["counts"], str) and r["segmentation"]["size"] == [120, 160]
        rle = {"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()}
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), m)
        ys, xs = np.nonzero(m)
        assert r["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_metrics_equal_independent_pycocotools():
    gts, props = _scene()
    dataset = coco_gt_from_masks(gts)
    results = proposals_to_coco_results(_props(props[0], [0.9, 0.8, 0.7, 0.1]), 1)
    results += proposals_to_coco_results(_props(props[1], [0.6, 0.5]), 2)
    ours = evaluate_results(dataset, results)
    keys = [*METRIC_KEYS, "recall50@10", "recall50@100", "recall50@1000"]
    assert list(ours) == keys
    np.testing.assert_allclose([ours[k] for k in keys], _reference(dataset, results))
    assert 0 < ours["recall50@100"] <= 1
    assert 0 < ours["AR@10"] < 1 and ours["AR_s"] > 0 and ours["AR_l"] > 0
    # AR@10 counts only the best 10 per image; with one proposal per image it drops
    top1 = [results[0], results[4]]
    assert evaluate_results(dataset, top1)["AR@10"] < ours["AR@10"]


def test_traps_category_ids_and_annotation_id_zero():
    gts, props = _scene()
    dataset = coco_gt_from_masks(gts)
    results = proposals_to_coco_results(_props(props[0], [0.9, 0.8, 0.7, 0.1]), 1)
    results += proposals_to_coco_results(_props(props[1], [0.6, 0.5]), 2)
    expected = evaluate_results(dataset, results)
    # multi-class ground truth with no category 1, and an annotation with id 0
    trapped = copy.deepcopy(dataset)
    trapped["categories"] = [{"id": 3, "name": "cat"}, {"id": 5, "name": "dog"}]
    for i, ann in enumerate(trapped["annotations"]):
        ann["category_id"] = 3 if i % 2 else 5
        ann["id"] = i  # the first one is 0
    assert evaluate_results(trapped, results) == expected
    naive = _reference(trapped, results)  # category 1 unknown -> every result dropped
    assert naive[2] == 0.0 and expected["AR@1000"] > 0
    # COCO object input works too, and is not modified
    coco = COCO()
    coco.dataset = copy.deepcopy(trapped)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    assert evaluate_results(coco, results) == expected
    assert coco.dataset["annotations"][0]["id"] == 0


def test_missing_area_and_iscrowd_filled_in():
    gts, props = _scene()
    dataset = coco_gt_from_masks(gts)
    results = proposals_to_coco_results(_props(props[1], [0.6, 0.5]), 2)
    bare = copy.deepcopy(dataset)
    for ann in bare["annotations"]:
        del ann["area"], ann["iscrowd"]
    assert evaluate_results(bare, results) == evaluate_results(dataset, results)


def test_empty_results_are_zero_not_a_crash():
    gts, _ = _scene()
    m = evaluate_results(coco_gt_from_masks(gts), [])
    assert m == {"AR@10": 0.0, "AR@100": 0.0, "AR@1000": 0.0, "AR_s": 0.0, "AR_m": 0.0, "AR_l": 0.0,
                 "recall50@10": 0.0, "recall50@100": 0.0, "recall50@1000": 0.0}  # fmt: skip
    only_medium = coco_gt_from_masks([gts[1][:1]])
    assert evaluate_results(only_medium, [])["AR_s"] == -1.0  # no small objects at all: pycocotools' -1


def test_validation():
    gts, props = _scene()
    dataset = coco_gt_from_masks(gts)
    res = proposals_to_coco_results(_props(props[0][:1], [0.5]), 99)
    with pytest.raises(ValueError, match="not in the ground truth"):
        evaluate_results(dataset, res)
    with pytest.raises(ValueError, match="three increasing"):
        evaluate_results(dataset, [], max_dets=(10, 100))
    with pytest.raises(FileNotFoundError):
        evaluate_results("/nonexistent/ann.json", [])


class _FakePredictor:
    """Stands in for a Predictor: proposes, for each image file, the masks stored for it."""

    def __init__(self, by_name):
        self.by_name, self.image = by_name, None

    def set_image(self, path):
        from ifcn_viz.data.io import load_image

        self.image = load_image(path)
        self.name = path.name

    def proposals(self, top_n):
        masks = self.by_name[self.name][:top_n]
        return _props(masks, np.linspace(0.9, 0.1, len(masks)))


def test_evaluate_predictor_with_bad_image_and_max_images(tmp_path):
    from PIL import Image

    gts, props = _scene()
    dataset = coco_gt_from_masks(gts, file_names=["a.png", "b.png"])
    import json

    (tmp_path / "ann.json").write_text(json.dumps(dataset))
    Image.new("RGB", (160, 120)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not an image")
    fake = _FakePredictor({"a.png": props[0], "b.png": props[1]})
    with pytest.raises(ValueError, match="not an image"):
        evaluate_predictor(fake, tmp_path / "ann.json", tmp_path, progress=False)
    errors = []
    metrics, results = evaluate_predictor(
        fake, tmp_path / "ann.json", tmp_path, progress=False, on_error=lambda p, e: errors.append(p)
    )
    assert errors == [str(tmp_path / "b.png")] and {r["image_id"] for r in results} == {1}
    assert metrics == evaluate_results(dataset, results)  # image 2's objects count as misses
    m1, r1 = evaluate_predictor(fake, tmp_path / "ann.json", tmp_path, progress=False, max_images=1)
    assert m1 == evaluate_results(coco_gt_from_masks(gts[:1]), r1) and m1["AR@1000"] > metrics["AR@1000"]
    Image.new("RGB", (100, 100)).save(tmp_path / "b.png")  # wrong size for its ground truth
    errors.clear()
    evaluate_predictor(fake, tmp_path / "ann.json", tmp_path, progress=False, on_error=lambda p, e: errors.append(e))
    assert len(errors) == 1 and "ground truth says 160x120" in str(errors[0])


def test_recall_by_size_counts_instances_per_bin_and_matches_by_hand():
    from ifcn_viz.evaluate import recall_by_size

    gts, props = _scene()
    dataset = coco_gt_from_masks(gts)
    # image 1: the small disc (r 5, ~9 px side) and the large rectangle found; the medium disc (r 12) missed
    found = np.stack([gts[0][0], gts[0][2]])
    results = proposals_to_coco_results(_props(found, [0.9, 0.8]), 1)
    results += proposals_to_coco_results(_props(gts[1][:1], [0.7]), 2)  # image 2: r 20 found, r 25 missed
    edges = (0, 16, 30, 40, 200)
    rows = recall_by_size(dataset, results, edges)
    side = [np.sqrt(m.sum()) for g in gts for m in g]  # sqrt(area) of every instance: 9, 21.6, 94.9, 35.6, 44.5
    assert [r["instances"] for r in rows] == [sum(lo <= s < hi for s in side) for lo, hi in zip(edges, edges[1:])]
    assert [r["instances"] for r in rows] == [1, 1, 1, 2]
    assert [r["recall50"] for r in rows] == [1.0, 0.0, 1.0, 0.5]  # exact masks: IoU 1, so AR = recall50
    assert [r["AR"] for r in rows] == [1.0, 0.0, 1.0, 0.5]
    empty = recall_by_size(dataset, results, (0, 5, 16))
    assert empty[0]["instances"] == 0 and empty[0]["recall50"] is None and empty[0]["AR"] is None
    assert recall_by_size(dataset, [], edges)[3]["recall50"] == 0.0
    with pytest.raises(ValueError, match="increasing"):
        recall_by_size(dataset, results, (0, 32, 16))
