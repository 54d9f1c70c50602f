"""COCO and VOC loaders read small files written here; joint transforms keep image and masks aligned."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ifcn_viz.data.coco import CocoInstances
from ifcn_viz.data.transforms import JointTransform, pad_collate
from ifcn_viz.data.voc import VOCInstances, instance_masks_from_png


def _write_coco(tmp_path):
    from pycocotools import mask as mask_utils

    (tmp_path / "img").mkdir()
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "img" / "a.jpg", quality=95)
    big = np.zeros((40, 60), np.uint8)
    big[5:25, 10:40] = 1
    rle = mask_utils.encode(np.asfortranarray(big))
    rle["counts"] = rle["counts"].decode()
    ok, crowd = {"iscrowd": 0}, {"iscrowd": 1}
    anns = [
        {"id": 1, "image_id": 7, "category_id": 3, "segmentation": rle, "area": 600.0, "bbox": [10, 5, 30, 20], **ok},
        # a polygon (a 12 x 12 square at x 44..56, y 20..32)
        {"id": 2, "image_id": 7, "category_id": 3, "segmentation": [[44, 20, 56, 20, 56, 32, 44, 32]], "area": 144.0,
         "bbox": [44, 20, 12, 12], "iscrowd": 0},
        {"id": 3, "image_id": 7, "category_id": 3, "segmentation": rle, "area": 600.0, "bbox": [10, 5, 30, 20],
         **crowd},
        {"id": 4, "image_id": 7, "category_id": 3, "segmentation": [[0, 0, 5, 0, 5, 5, 0, 5]], "area": 25.0,
         "bbox": [0, 0, 5, 5], "iscrowd": 0},
    ]  # fmt: skip
    data = {"images": [{"id": 7, "file_name": "a.jpg", "height": 40, "width": 60}], "annotations": anns,
            "categories": [{"id": 3, "name": "thing"}]}  # fmt: skip
    (tmp_path / "ann.json").write_text(json.dumps(data))
    return image, big


def test_coco_loader_skips_crowd_and_tiny_objects(tmp_path):
    image, big = _write_coco(tmp_path)
    ds = CocoInstances(tmp_path / "ann.json", tmp_path / "img")
    img, masks = ds[0]
    assert len(ds) == 1 and img.shape == (3, 40, 60) and img.dtype == torch.uint8
    assert masks.shape == (2, 40, 60), "the crowd and the 25-px annotations are skipped"
    assert torch.equal(masks[0], torch.from_numpy(big.astype(bool)))
    assert masks[1, 21:31, 45:55].all() and not masks[1, :18].any()


def test_coco_loader_reports_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotation"):
        CocoInstances(tmp_path / "nope.json", tmp_path)


def _write_voc(root):
    for sub in ("JPEGImages", "SegmentationObject", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    idx = np.zeros((50, 70), np.uint8)
    idx[5:30, 5:30] = 1
    idx[5:30, 30:60] = 2  # touching instance 1
    idx[4, 5:60] = 255  # void border
    idx[30, 5:60] = 255
    png = Image.fromarray(idx, mode="P")
    png.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (253 * 3 - 3) + [224, 224, 192])
    png.save(root / "SegmentationObject" / "2007_000001.png")
    Image.fromarray(np.full((50, 70, 3), 90, np.uint8)).save(root / "JPEGImages" / "2007_000001.jpg")
    (root / "ImageSets/Segmentation/train.txt").write_text("2007_000001\n")
    return idx


def test_voc_loader_reads_palette_instances_and_ignores_void(tmp_path):
    idx = _write_voc(tmp_path / "VOC2012")
    ds = VOCInstances(tmp_path / "VOC2012", split="train")
    img, masks = ds[0]
    assert img.shape == (3, 50, 70) and masks.shape == (2, 50, 70)
    assert torch.equal(masks[0], torch.from_numpy(idx == 1)) and torch.equal(masks[1], torch.from_numpy(idx == 2))
    assert not masks[:, 4].any(), "255 (void) is not an instance"
    assert instance_masks_from_png(tmp_path / "VOC2012/SegmentationObject/2007_000001.png").shape[0] == 2


def test_voc_loader_names_the_expected_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="ImageSets"):
        VOCInstances(tmp_path, split="val")


def test_joint_transform_keeps_masks_on_the_image_and_is_seeded():
    image = torch.zeros(3, 40, 80, dtype=torch.uint8)
    image[0, :, :20] = 255  # a red band on the left
    masks = torch.zeros(1, 40, 80, dtype=torch.bool)
    masks[0, :, :20] = True
    tr = JointTransform((20,), flip_p=1.0)
    img, msk = tr(image, masks, torch.Generator().manual_seed(0))
    assert img.shape == (3, 20, 40) and msk.shape == (1, 20, 40) and img.dtype == torch.float32
    assert msk[0, :, 30:].all() and not msk[0, :, :28].any(), "flipped to the right"
    assert (img[0][msk[0]] > 0.8).all() and (img[0][~msk[0]] < 0.2).all()
    jit = JointTransform((16, 24, 32, 48))
    draws = {tuple(jit(image, masks, torch.Generator().manual_seed(s))[0].shape) for s in range(20)}
    assert len(draws) > 1
    a = jit(image, masks, torch.Generator().manual_seed(5))[0]
    assert torch.equal(a, jit(image, masks, torch.Generator().manual_seed(5))[0])


def test_pad_collate_pads_to_the_stride():
    batch = [
        (torch.rand(3, 20, 30), torch.ones(2, 20, 30, dtype=torch.bool)),
        (torch.rand(3, 33, 10), torch.zeros(0, 33, 10, dtype=torch.bool)),
    ]
    images, masks, sizes = pad_collate(batch)
    assert images.shape == (2, 3, 40, 32) and masks[0].shape == (2, 40, 32) and masks[1].shape == (0, 40, 32)
    assert sizes.tolist() == [[20, 30], [33, 10]] and not masks[0][:, 20:].any()
