"""The committed independent yardstick: loads, is what its command regenerates, and scores with recall@IoU."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ifcn_viz.data.independent import INDEPENDENT, independent_set
from ifcn_viz.data.synthetic import HELD_OUT_SHAPES, INDEPENDENT_STYLE, TRAIN_STYLE, generate_scene
from ifcn_viz.evaluate import recall_at_iou


def test_the_committed_set_loads_and_is_small():
    images, ann = independent_set()
    data = json.loads(ann.read_text())
    assert len(data["images"]) == INDEPENDENT["n"] and len(data["annotations"]) >= 100
    assert all((images / im["file_name"]).is_file() for im in data["images"])
    assert all((im["height"], im["width"]) == tuple(INDEPENDENT["size"]) for im in data["images"])
    total = ann.stat().st_size + sum(p.stat().st_size for p in images.iterdir())
    assert total <= 3_000_000, total
    assert "'independent'" in data["info"]["description"]


@pytest.mark.parametrize("i", [0, 13, 31])
def test_the_committed_scenes_are_what_the_generator_makes(i):
    from pycocotools.coco import COCO

    images, ann = independent_set()
    coco = COCO(str(ann))
    image, masks = generate_scene((INDEPENDENT["seed"], i), INDEPENDENT["size"], style="independent")
    assert np.array_equal(np.asarray(Image.open(images / f"{i:06d}.png").convert("RGB")), image)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[i + 1]))
    assert len(anns) == len(masks)
    for a, mk in zip(anns, masks):
        assert np.array_equal(coco.annToMask(a).astype(bool), mk)


def test_make_dataset_independent_regenerates_the_committed_files(tmp_path):
    from ifcn_viz.cli import main

    assert main(["make-dataset", "independent", "--out", str(tmp_path), "--n", "2"]) == 0
    images, _ = independent_set()
    for name in ("000000.png", "000001.png"):
        a = np.asarray(Image.open(tmp_path / "images" / name))
        assert np.array_equal(a, np.asarray(Image.open(images / name)))


def test_independent_settings_are_never_training_settings():
    assert set(INDEPENDENT_STYLE.shapes) <= set(HELD_OUT_SHAPES)
    assert not set(INDEPENDENT_STYLE.shapes) & set(TRAIN_STYLE.shapes)


def test_recall_at_iou_counts_matched_instances():
    from ifcn_viz.evaluate import encode_mask

    _, ann = independent_set()
    data = json.loads(ann.read_text())
    first = [im["id"] for im in data["images"][:4]]
    gt = {**data, "images": [im for im in data["images"] if im["id"] in first],
          "annotations": [a for a in data["annotations"] if a["image_id"] in first]}  # fmt: skip
    from pycocotools import mask as mask_utils

    perfect, shifted = [], []
    for a in gt["annotations"]:
        mk = mask_utils.decode(a["segmentation"]).astype(bool)
        perfect.append({"image_id": a["image_id"], "segmentation": encode_mask(mk), "score": 1.0})
        ys, xs = np.nonzero(mk)
        far = np.roll(mk, int(max(np.ptp(ys), np.ptp(xs))) + 1, axis=1)  # moved by its own width: IoU 0
        shifted.append({"image_id": a["image_id"], "segmentation": encode_mask(far), "score": 1.0})
    assert recall_at_iou(gt, perfect) == pytest.approx(1.0)
    assert recall_at_iou(gt, []) == 0.0
    assert recall_at_iou(gt, shifted) < 0.2
    half = perfect[::2]
    assert recall_at_iou(gt, half) == pytest.approx(len(half) / len(perfect))
