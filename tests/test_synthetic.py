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
    assert 1 <= len(masks) <= 30
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


def _digest(seed, style) -> str:
    import hashlib

    image, masks = generate_scene(seed, (160, 192), style=style)
    return hashlib.sha256(image.tobytes() + np.packbits(masks).tobytes() + str(masks.shape).encode()).hexdigest()


@pytest.mark.parametrize("style", ["train", "independent"])
def test_scene_is_byte_identical_in_a_fresh_process(style):
    import subprocess
    import sys

    code = f"from tests.test_synthetic import _digest\nprint(' '.join(_digest((9, i), {style!r}) for i in range(4)))"
    here = " ".join(_digest((9, i), style) for i in range(4))
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert fresh == here
    assert len(set(here.split())) == 4


def test_held_out_photographs_are_never_textures():
    from ifcn_viz.data import synthetic as S

    for name in ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "motorcycle_right",
                 "grace_hopper", "Minduka_Present_Blue_Pack"):  # fmt: skip
        assert name in S.HELD_OUT_PHOTOS
    for style in S.STYLES.values():
        assert not set(style.photos) & set(S.HELD_OUT_PHOTOS), style.name
    assert not set(S.TEXTURE_NAMES) & set(S.HELD_OUT_PHOTOS)
    assert not set(S.INDEPENDENT_PHOTOS) & set(S.HELD_OUT_PHOTOS)
    assert "cat" in S.HELD_OUT_PHOTOS  # scikit-image's alias of chelsea
    with pytest.raises(ValueError, match="real-photograph"):
        S.SceneStyle(photos=("camera", "astronaut"))
    with pytest.raises(ValueError, match="real-photograph"):
        S.load_textures(("coffee",))


def test_training_settings_exclude_the_independent_settings():
    from ifcn_viz.data import synthetic as S

    train, indep = S.TRAIN_STYLE, S.INDEPENDENT_STYLE
    assert not set(train.shapes) & set(indep.shapes)
    assert not set(train.textures) & set(indep.textures)
    assert not set(train.backgrounds) & set(indep.backgrounds)
    assert not set(train.photos) & set(indep.photos) and not set(train.photos) & set(S.INDEPENDENT_PHOTOS)
    assert set(indep.shapes) <= set(S.HELD_OUT_SHAPES) and set(indep.backgrounds) <= set(S.HELD_OUT_BACKGROUNDS)
    assert generate_scene(0, style=None)[0].tobytes() == generate_scene(0, style=train)[0].tobytes()


@pytest.mark.parametrize("family", ["ellipse", "rectangle", "polygon", "blob", "concave", "star", "thin",
                                    "superellipse", "rounded_rect", "crescent", "cross", "heart"])  # fmt: skip
def test_every_shape_family_has_the_requested_size(family):
    from ifcn_viz.data.synthetic import _raster, shape_polygons

    rng = np.random.default_rng(0)
    for size in (20.0, 90.0):
        mask = _raster(shape_polygons(rng, family, size), 100, 100, 200, 200)
        ys, xs = np.nonzero(mask)
        side = max(np.ptp(ys), np.ptp(xs)) + 1
        assert abs(side - size) <= 3, (family, size, side)
        assert 0.15 < mask.sum() / side**2 < 1.01  # a filled shape, not a line


def test_sizes_span_four_octaves_and_scenes_can_be_crowded():
    sides, counts = [], []
    for seed in range(60):
        _, masks = generate_scene((1, seed))
        counts.append(len(masks))
        for mk in masks:
            ys, xs = np.nonzero(mk)
            sides.append(max(np.ptp(ys), np.ptp(xs)) + 1)
    assert max(sides) / min(sides) >= 16, (min(sides), max(sides))
    assert max(counts) >= 18 and min(counts) <= 4, counts


def test_training_scenes_give_positive_windows_at_the_tiny_crop_sizes():
    """The 168-px window's positives are objects of 68..136 px after the recipe's scale jitter."""
    import torch

    from ifcn_viz.data.transforms import TINY_SHORT_SIDES, JointTransform
    from ifcn_viz.train.targets import WindowRule, label_windows

    tf, rule, positives = JointTransform(TINY_SHORT_SIDES), WindowRule(), []
    for i in range(24):
        img, masks = generate_scene((2, i))
        im, ms = tf(torch.from_numpy(img).permute(2, 0, 1), torch.from_numpy(masks), torch.Generator().manual_seed(i))
        h, w = im.shape[1:]
        positives.append(int(label_windows(ms, (-(-h // 8), -(-w // 8)), 21, 8, rule, (h, w)).positive.sum()))
    positives = np.array(positives)
    assert positives.mean() >= 20 and (positives > 0).mean() >= 0.7, positives


def test_effects_vary_the_look():
    """Domain randomisation: image statistics differ widely across scenes (brightness, sharpness, noise)."""
    means, sharp = [], []
    for i in range(30):
        img, _ = generate_scene((3, i), (128, 128))
        g = img.astype(np.float32).mean(-1)
        means.append(g.mean())
        sharp.append(np.abs(np.diff(g, axis=1)).mean())
    assert np.ptp(means) > 60 and max(sharp) > 3 * min(sharp)
