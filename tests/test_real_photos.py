"""The real-photograph yardstick: hand-drawn polygon masks on seven photographs that load offline."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from ifcn_viz.data.real_photos import (
    REAL_PHOTOS,
    load_real_photo,
    real_photo_annotations_path,
    write_real_photo_set,
)


@pytest.fixture(scope="module")
def dataset() -> dict:
    with open(real_photo_annotations_path()) as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: load_real_photo(name) for name in REAL_PHOTOS}


def _decode(ann: dict, h: int, w: int) -> np.ndarray:
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], h, w))).astype(bool)


def test_every_photo_loads_offline_as_rgb_uint8(photos):
    assert len(photos) == 7
    for name, img in photos.items():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
        assert img.shape[0] >= 100 and img.shape[1] >= 100, name
        assert img.std() > 10, f"{name} looks blank"
    with pytest.raises(KeyError):
        load_real_photo("no_such_photo")


def test_annotation_file_is_a_coco_instances_set(dataset):
    assert dataset["categories"] == [{"id": 1, "name": "object"}]
    names = sorted(i["file_name"] for i in dataset["images"])
    assert names == sorted(f"{n}.png" for n in REAL_PHOTOS), "one image entry per photograph"
    assert len({i["id"] for i in dataset["images"]}) == len(dataset["images"])
    assert all(i["source"] for i in dataset["images"])
    anns = dataset["annotations"]
    assert len(anns) >= 40
    assert len({a["id"] for a in anns}) == len(anns) and min(a["id"] for a in anns) >= 1
    image_ids = {i["id"] for i in dataset["images"]}
    per_image = {i: 0 for i in image_ids}
    for a in anns:
        assert a["image_id"] in image_ids
        assert a["category_id"] == 1 and a["iscrowd"] == 0
        assert isinstance(a["name"], str) and a["name"].strip()
        per_image[a["image_id"]] += 1
    assert all(n >= 2 for n in per_image.values()), f"every photograph has instances: {per_image}"
    names_per_image = {}
    for a in anns:
        names_per_image.setdefault(a["image_id"], []).append(a["name"])
    for names in names_per_image.values():
        assert len(set(names)) == len(names), "instance names are distinct within a photo"


def test_image_sizes_match_the_loaded_photos(dataset, photos):
    for info in dataset["images"]:
        img = photos[info["file_name"].removesuffix(".png")]
        assert (info["height"], info["width"]) == img.shape[:2], info["file_name"]


def test_every_polygon_is_valid_and_area_and_bbox_match_the_mask(dataset):
    sizes = {i["id"]: (i["height"], i["width"]) for i in dataset["images"]}
    for a in dataset["annotations"]:
        h, w = sizes[a["image_id"]]
        seg = a["segmentation"]
        assert isinstance(seg, list) and seg, f"{a['name']}: polygons, not RLE"
        for poly in seg:
            assert len(poly) % 2 == 0 and len(poly) >= 6, f"{a['name']}: at least 3 points"
            xy = np.asarray(poly, dtype=float).reshape(-1, 2)
            assert (xy[:, 0] >= 0).all() and (xy[:, 0] <= w).all(), a["name"]
            assert (xy[:, 1] >= 0).all() and (xy[:, 1] <= h).all(), a["name"]
            x, y = xy[:, 0], xy[:, 1]
            assert abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2 > 1.0, f"{a['name']}: zero area"
        mask = _decode(a, h, w)
        assert mask.sum() >= 100, f"{a['name']}: too small to be an object"
        assert a["area"] == int(mask.sum()), f"{a['name']}: area field {a['area']} != mask {mask.sum()}"
        ys, xs = np.nonzero(mask)
        x0, y0, bw, bh = a["bbox"]
        assert abs(x0 - xs.min()) <= 1 and abs(y0 - ys.min()) <= 1, a["name"]
        assert abs(x0 + bw - (xs.max() + 1)) <= 1 and abs(y0 + bh - (ys.max() + 1)) <= 1, a["name"]
        # not a box pretending to be a mask: a drawn outline fills less than its tight box
        if mask.sum() > 2000:
            assert mask.sum() < 0.97 * bw * bh or len(seg[0]) > 8, f"{a['name']}: looks like a box"


def test_written_set_evaluates_with_ground_truth_as_proposals_to_ar_one(tmp_path, dataset):
    from ifcn_viz.evaluate import evaluate_predictor

    image_dir, ann_path = write_real_photo_set(tmp_path / "real")
    assert ann_path.is_file() and json.loads(ann_path.read_text()) == dataset
    for info in dataset["images"]:
        on_disk = np.asarray(Image.open(image_dir / info["file_name"]).convert("RGB"))
        assert on_disk.shape[:2] == (info["height"], info["width"])
        assert np.array_equal(on_disk, load_real_photo(info["file_name"].removesuffix(".png"))), "PNG is lossless"

    by_file = {i["file_name"]: i for i in dataset["images"]}

    class GroundTruthPredictor:
        """Answers every image with its own ground-truth masks: a perfect proposal generator."""

        def set_image(self, path):
            self.info = by_file[path.name]
            self.image = np.asarray(Image.open(path).convert("RGB"))

        def proposals(self, top_n):
            h, w = self.image.shape[:2]
            anns = [a for a in dataset["annotations"] if a["image_id"] == self.info["id"]]
            masks = np.stack([_decode(a, h, w) for a in anns])[:top_n]
            return SimpleNamespace(masks=masks, scores=np.linspace(1.0, 0.5, len(masks)))

    metrics, results = evaluate_predictor(GroundTruthPredictor(), ann_path, image_dir, progress=False)
    assert len(results) == len(dataset["annotations"])
    assert metrics["AR@100"] == pytest.approx(1.0)
    assert metrics["AR@1000"] == pytest.approx(1.0)

    # and a predictor that misses one photo's instances loses exactly their share of recall
    skip = dataset["images"][0]["id"]
    n_skip = sum(a["image_id"] == skip for a in dataset["annotations"])
    kept = [r for r in results if r["image_id"] != skip]
    from ifcn_viz.evaluate import evaluate_results

    partial = evaluate_results(ann_path, kept)
    assert partial["AR@100"] == pytest.approx(1 - n_skip / len(dataset["annotations"]))


def _fingerprints(img: np.ndarray) -> tuple[str, np.ndarray]:
    """An exact content hash and a 32 x 32 grey thumbnail (to catch re-encoded or greyscale copies)."""
    img = np.ascontiguousarray(img)
    digest = hashlib.sha256(img.tobytes() + str(img.shape).encode()).hexdigest()
    grey = Image.fromarray(img).convert("L").resize((32, 32), Image.Resampling.BILINEAR)
    return digest, np.asarray(grey, dtype=np.float32)


def test_no_real_photo_is_a_training_texture(photos):
    """The photographs of this yardstick are never used as textures of the synthetic training scenes.

    Compared by pixel content, not by name: a photo listed under another name (or a greyscale or resized copy of
    it) would be caught as well.
    """
    from ifcn_viz.data import synthetic

    textures = synthetic.load_textures()
    assert len(textures) == len(synthetic.TEXTURE_NAMES)
    ours = {name: _fingerprints(img) for name, img in photos.items()}
    clashes = []
    for tex_name, tex in zip(synthetic.TEXTURE_NAMES, textures):
        digest, thumb = _fingerprints(np.asarray(tex))
        for name, (our_digest, our_thumb) in ours.items():
            same_aspect = abs(tex.shape[0] / tex.shape[1] - photos[name].shape[0] / photos[name].shape[1]) < 0.01
            if digest == our_digest or (same_aspect and np.abs(thumb - our_thumb).mean() < 3.0):
                clashes.append(f"texture {tex_name!r} is the real photo {name!r}")
    assert not clashes, "; ".join(clashes)


def test_fingerprint_catches_a_renamed_or_greyscale_copy(photos):
    """The check above can fail: the same pixels under any name, or a greyscale copy, match."""
    img = photos["coffee"]
    digest, thumb = _fingerprints(img)
    assert _fingerprints(img.copy())[0] == digest
    grey = np.repeat(np.asarray(Image.fromarray(img).convert("L"))[..., None], 3, axis=2)
    assert np.abs(_fingerprints(grey)[1] - thumb).mean() < 3.0
    other = photos["chelsea"]
    assert np.abs(_fingerprints(other)[1] - thumb).mean() >= 3.0


def test_recall_at_iou_reads_the_cocoeval_recall(dataset):
    from ifcn_viz.evaluate import evaluate_results, recall_at_iou

    sizes = {i["id"]: (i["height"], i["width"]) for i in dataset["images"]}
    results = []
    for a in dataset["annotations"]:
        h, w = sizes[a["image_id"]]
        mask = _decode(a, h, w)
        if a["id"] % 2:  # every other instance: a proposal at IoU 0.62-0.7 (its top rows, 62 % of its pixels)
            keep_rows = np.cumsum(mask.sum(1)) <= 0.62 * mask.sum()
            mask = mask & keep_rows[:, None]
            assert 0.55 < mask.sum() / a["area"] <= 0.62
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        results.append({"image_id": a["image_id"], "category_id": 1, "segmentation": rle, "score": 1.0})
    r50 = recall_at_iou(real_photo_annotations_path(), results, iou=0.5)
    r75 = recall_at_iou(real_photo_annotations_path(), results, iou=0.75)
    assert r50 == pytest.approx(1.0)
    n_full = sum(1 - a["id"] % 2 for a in dataset["annotations"])
    assert r75 == pytest.approx(n_full / len(dataset["annotations"]), abs=0.03)
    ar = evaluate_results(real_photo_annotations_path(), results)["AR@100"]
    assert r75 < ar < r50
    assert recall_at_iou(real_photo_annotations_path(), [], iou=0.5) == 0.0
    with pytest.raises(ValueError):
        recall_at_iou(real_photo_annotations_path(), results, iou=0.52)


def test_photos_load_with_the_network_switched_off(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network access attempted while loading a real photo")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for name in REAL_PHOTOS:
        assert load_real_photo(name).ndim == 3
