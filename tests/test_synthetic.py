"""Synthetic scenes: reproducible, valid masks, touching same-texture objects, COCO export."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from ifcn_viz.data.commands import write_synthetic_coco
from ifcn_viz.data.synthetic import SyntheticDataset, generate_scene


def test_scene_is_a_pure_function_of_its_seed():
    a_img, a_masks = generate_scene((3, 7))
    b_img, b_masks = generate_scene((3, 7))
    c_img, _ = generate_scene((3, 8))
    assert np.array_equal(a_img, b_img) and np.array_equal(a_masks, b_masks)
    assert not np.array_equal(a_img, c_img)


@pytest.mark.parametrize("seed", range(6))
def test_masks_are_visible_disjoint_and_nonempty(seed):
    image, masks = generate_scene(seed, size=(200, 240))
    assert image.shape == (200, 240, 3) and image.dtype == np.uint8
    assert masks.dtype == bool and masks.ndim == 3 and masks.shape[1:] == (200, 240)
    assert 1 <= len(masks) <= 7
    assert (masks.sum(0) <= 1).all(), "visible masks must not overlap"
    assert (masks.reshape(len(masks), -1).sum(1) >= 64).all()


def test_sizes_span_the_window_scale():
    sides = []
    for seed in range(30):
        _, masks = generate_scene(seed)
        for mk in masks:
            ys, xs = np.nonzero(mk)
            sides.append(max(np.ptp(ys) + 1, np.ptp(xs) + 1))
    # the positive band at one scale is about 68..136 px (ifcn_viz.train.targets); objects fall on both sides
    assert min(sides) < 60 and max(sides) > 150


def test_many_scenes_have_touching_objects_of_the_same_texture():
    touching_same_texture = 0
    for seed in range(20):
        image, masks = generate_scene(seed)
        for i in range(len(masks)):
            grown = ndimage.binary_dilation(masks[i], iterations=1)
            for j in range(len(masks)):
                if i != j and (grown & masks[j]).any():
                    # same texture crop: pixels across the shared border look alike (no painted edge)
                    border_i = masks[i] & ndimage.binary_dilation(masks[j], iterations=2)
                    border_j = masks[j] & ndimage.binary_dilation(masks[i], iterations=2)
                    diff = np.abs(image[border_i].mean(0) - image[border_j].mean(0)).max()
                    touching_same_texture += int(diff < 40)
    assert touching_same_texture >= 10


def test_dataset_items_match_generate_scene():
    ds = SyntheticDataset(5, seed=11, size=(64, 96))
    img, masks = ds[2]
    ref_img, ref_masks = generate_scene((11, 2), (64, 96))
    assert img.shape == (3, 64, 96) and np.array_equal(img.permute(1, 2, 0).numpy(), ref_img)
    assert np.array_equal(masks.numpy(), ref_masks)
    with pytest.raises(IndexError):
        ds[5]


def test_make_dataset_writes_coco_that_decodes_to_the_scene(tmp_path):
    from pycocotools.coco import COCO

    path = write_synthetic_coco(tmp_path, 3, seed=5, size=(96, 128))
    data = json.loads(path.read_text())
    assert [im["id"] for im in data["images"]] == [1, 2, 3]
    assert min(a["id"] for a in data["annotations"]) == 1
    assert data["categories"] == [{"id": 1, "name": "object", "supercategory": "object"}]
    coco = COCO(str(path))
    _, masks = generate_scene((5, 1), (96, 128))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[2]))
    assert len(anns) == len(masks)
    for ann, mk in zip(anns, masks):
        assert ann["iscrowd"] == 0 and ann["area"] == mk.sum()
        assert np.array_equal(coco.annToMask(ann).astype(bool), mk)
    assert (tmp_path / "images" / "000002.png").is_file()


def test_bad_size_is_rejected():
    with pytest.raises(ValueError, match="size"):
        generate_scene(0, size=(10, 10))


def test_cached_dataset_returns_the_same_items():
    plain, cached = SyntheticDataset(4, seed=2, size=(64, 64)), SyntheticDataset(4, seed=2, size=(64, 64), cache=True)
    for i in (1, 3, 1):
        a, b = plain[i], cached[i]
        assert np.array_equal(a[0].numpy(), b[0].numpy()) and np.array_equal(a[1].numpy(), b[1].numpy())
