"""The Predictor: cached maps, windows and provenance vs assemble_at, proposals, and the ideal-maps end-to-end proof."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils
from torch import nn

from ifcn_viz.checkpoints import save_checkpoint
from ifcn_viz.config import PRESETS, InferConfig
from ifcn_viz.data.io import ImageLoadError
from ifcn_viz.inference import Predictor
from ifcn_viz.inference.postprocess import masks_to_boxes_exclusive, paste_window_probs
from ifcn_viz.model import assemble_at, build_model, cell_to_map_index
from ifcn_viz.model.geometry import window_box
from ifcn_viz.model.ideal import ideal_score_maps

SMALL = InferConfig(scales=(64, 96), pre_nms_top_k=300, top_n=50)


@pytest.fixture(scope="module")
def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return build_model("tiny").eval()


@pytest.fixture()
def predictor(tiny_model) -> Predictor:
    p = Predictor(tiny_model, SMALL)
    rng = np.random.default_rng(0)
    p.set_image((rng.random((100, 150, 3)) * 255).astype(np.uint8))
    return p


def test_defaults_and_scale_sizes(tiny_model):
    p = Predictor(tiny_model)
    assert p.infer == PRESETS["tiny"].infer  # a tiny model gets the tiny preset's inference settings
    assert (p.k, p.m, p.stride) == (5, 21, 8)
    (h, w), f = p.scale_size((300, 450), 192)
    assert (h, w) == (192, 288) and f == pytest.approx(0.64)
    p2 = Predictor(tiny_model, InferConfig(scales=(100,), max_side=120))
    assert p2.scale_size((100, 400), 100)[0] == (30, 120)  # the longer side is capped


def test_set_image_runs_backbone_once_per_scale_and_never_again(tiny_model):
    calls = []
    handle = tiny_model.backbone.register_forward_hook(lambda mod, inp, out: calls.append(tuple(inp[0].shape)))
    try:
        p = Predictor(tiny_model, SMALL)
        p.set_image(np.zeros((100, 150, 3), np.uint8))
        assert calls == [(1, 3, 64, 96), (1, 3, 96, 144)]
        assert [s.resized_hw for s in p.scales] == [(64, 96), (96, 144)]
        assert [s.score_maps.shape for s in p.scales] == [(25, 8, 12), (25, 12, 18)]
        assert all(s.score_maps.dtype == torch.float32 and s.score_maps.device.type == "cpu" for s in p.scales)
        p.window(10, 10)
        p.provenance(10, 10, scale=0)
        p.proposals(top_n=5)
        assert len(calls) == 2
    finally:
        handle.remove()


def test_encode_returns_frozen_maps_and_changes_nothing(tiny_model, predictor):
    import dataclasses

    from ifcn_viz.inference.types import ImageMaps

    shared = Predictor(tiny_model, SMALL)
    rng = np.random.default_rng(0)
    maps = shared.encode((rng.random((100, 150, 3)) * 255).astype(np.uint8))  # the fixture's image
    assert isinstance(maps, ImageMaps) and shared.maps is None and shared.image is None and shared.scales == []
    assert maps.hw == (100, 150) and len(maps.scales) == 2 and maps.default_scale == predictor.default_scale
    with pytest.raises(dataclasses.FrozenInstanceError):
        maps.image = None
    # every query answers about the maps it is given exactly as set_image's convenience does
    assert torch.equal(shared.window(70, 40, maps=maps).logits, predictor.window(70, 40).logits)
    assert shared.provenance(70, 40, 0, maps=maps).entries == predictor.provenance(70, 40, 0).entries
    a, b = shared.proposals(top_n=5, maps=maps), predictor.proposals(top_n=5)
    assert np.array_equal(a.masks, b.masks) and np.array_equal(a.scores, b.scores)
    assert shared.levels_of(maps) == predictor.levels
    with pytest.raises(RuntimeError, match="no image set"):
        shared.window(70, 40)


def test_model_mode_is_restored(tiny_model):
    tiny_model.train()
    try:
        p = Predictor(tiny_model, SMALL)
        before = tiny_model.backbone.features[0][1].running_mean.clone()
        p.set_image(np.full((40, 40, 3), 200, np.uint8))
        assert tiny_model.training  # still in training mode for the caller
        assert torch.equal(before, tiny_model.backbone.features[0][1].running_mean)  # BN stats untouched
    finally:
        tiny_model.eval()


def test_window_equals_assemble_at(predictor):
    for scale in (0, 1):
        sm = predictor.scales[scale]
        fy, fx = sm.resized_hw[0] / 100, sm.resized_hw[1] / 150
        for x, y in ((0, 0), (149, 99), (75.7, 40.2), (3, 97)):
            w = predictor.window(x, y, scale=scale)
            cy, cx = int((int(y) + 0.5) * fy // 8), int((int(x) + 0.5) * fx // 8)
            assert w.center == (cy, cx)
            ref = assemble_at(sm.score_maps[None], torch.tensor([[0, cy, cx]]), 21)[0]
            assert torch.equal(w.logits, ref)
            torch.testing.assert_close(w.probs, torch.sigmoid(ref))
            x0, y0, x1, y1 = window_box(cy, cx, 21, 8)
            assert w.box == pytest.approx((x0 / fx, y0 / fy, x1 / fx, y1 / fy))
            assert w.objectness == pytest.approx(float(torch.sigmoid(sm.objectness[cy, cx])))
            assert torch.equal(w.cell_to_map, cell_to_map_index(5, 21))
            # the window box contains the clicked pixel
            assert w.box[0] <= x < w.box[2] and w.box[1] <= y < w.box[3]
    assert predictor.window(10, 10).scale_index == predictor.default_scale == 1


@pytest.mark.parametrize(("x", "y"), [(75, 50), (0, 0), (149, 99), (5, 60)])
def test_provenance_consistent_with_assemble_at(predictor, x, y):
    for scale in (0, 1):
        sm = predictor.scales[scale]
        prov = predictor.provenance(x, y, scale=scale)
        fy, fx = prov.feature_cell
        hf, wf = sm.feature_hw
        r = 10
        expected = {
            (cy, cx)
            for cy in range(fy - r, fy + r + 1)
            for cx in range(fx - r, fx + r + 1)
            if 0 <= cy < hf and 0 <= cx < wf
        }
        assert {e.center for e in prov.entries} == expected and len(prov.entries) == len(expected)
        centers = torch.tensor([[0, *e.center] for e in prov.entries])
        windows = assemble_at(sm.score_maps[None], centers, 21)  # (n, 21, 21)
        c2m = cell_to_map_index(5, 21)
        for e, win in zip(prov.entries, windows):
            i, j = e.cell
            assert (i, j) == (fy - e.center[0] + r, fx - e.center[1] + r)
            assert e.channel == int(c2m[i, j])
            assert e.value == float(win[i, j]) == float(sm.score_maps[e.channel, fy, fx])
        grid = prov.value_grid()
        assert np.isfinite(grid).sum() == len(expected)


def test_errors(tiny_model, predictor):
    p = Predictor(tiny_model, SMALL)
    for call in (lambda: p.window(1, 1), lambda: p.provenance(1, 1), lambda: p.proposals()):
        with pytest.raises(RuntimeError, match="set_image"):
            call()
    with pytest.raises(ValueError, match="outside the image"):
        predictor.window(150, 10)
    with pytest.raises(ValueError, match="outside the image"):
        predictor.provenance(-1, 10)
    with pytest.raises(ValueError, match="out of range"):
        predictor.window(1, 1, scale=2)
    with pytest.raises(TypeError, match="scale"):
        predictor.window(1, 1, scale=1.0)
    with pytest.raises(ValueError, match="mask_threshold"):
        predictor.proposals(mask_threshold=1.5)
    with pytest.raises(ValueError, match="nms_iou"):
        predictor.proposals(nms_iou=0)
    with pytest.raises(ImageLoadError):
        p.set_image(np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(TypeError, match="nn.Module"):
        Predictor("not a model")


def test_proposals_structure(predictor):
    props = predictor.proposals(top_n=20, trace_nms=True)
    n = len(props)
    assert 0 < n <= 20
    assert props.masks.shape == (n, 100, 150) and props.masks.dtype == bool
    assert props.masks.reshape(n, -1).any(1).all()  # no empty masks
    assert np.all(np.diff(props.scores) <= 0)  # best first
    np.testing.assert_array_equal(props.boxes, masks_to_boxes_exclusive(torch.from_numpy(props.masks)).numpy())
    for i in range(n):
        sm = predictor.scales[props.scale_index[i]]
        cy, cx = props.centers[i]
        assert props.scores[i] == pytest.approx(float(torch.sigmoid(sm.objectness[cy, cx])))
        fy, fx = sm.resized_hw[0] / 100, sm.resized_hw[1] / 150
        x0, y0, x1, y1 = window_box(int(cy), int(cx), 21, 8)
        np.testing.assert_allclose(props.window_boxes[i], [x0 / fx, y0 / fy, x1 / fx, y1 / fy], rtol=1e-5)
        # the mask is the window's assembled probabilities pasted and binarised
        logits = assemble_at(sm.score_maps[None], torch.tensor([[0, int(cy), int(cx)]]), 21)
        pasted = paste_window_probs(torch.sigmoid(logits), torch.from_numpy(props.window_boxes[[i]]), (100, 150))
        assert np.array_equal(props.masks[i], pasted[0].numpy() >= predictor.infer.mask_threshold)
    kept = [s for s in props.nms_trace if s.kept]
    assert len(kept) >= n
    np.testing.assert_allclose([s.box for s in kept[:n]], props.boxes)  # NMS saw exactly the final masks' boxes
    # pre-NMS top-K bounds the candidates; top_n bounds the output
    assert len(predictor.proposals(top_n=20, pre_nms_top_k=7, trace_nms=True).nms_trace) <= 7
    assert len(predictor.proposals(top_n=3)) == 3
    assert set(predictor.proposals(top_n=20, scales=[1]).scale_index) == {1}


def test_proposals_edge_cases_are_empty_not_errors(predictor):
    for kw in ({"pre_nms_top_k": 0}, {"top_n": 0}, {"mask_threshold": 0.999999}):
        props = predictor.proposals(**kw)
        assert len(props) == 0 and props.masks.shape == (0, 100, 150)
        assert props.boxes.shape == (0, 4) and props.centers.shape == (0, 2) and props.window_boxes.shape == (0, 4)


def test_from_checkpoint_reads_card(tmp_path, tiny_model):
    path = save_checkpoint(tiny_model, tmp_path / "m", {"preset": "tiny"})
    p = Predictor.from_checkpoint(path, device="cpu")
    assert p.infer == PRESETS["tiny"].infer and p.card["preset"] == "tiny"
    path2 = save_checkpoint(
        tiny_model, tmp_path / "m2", {"preset": "tiny", "infer_config": {"scales": [64], "top_n": 7}}
    )
    p2 = Predictor.from_checkpoint(path2, device="cpu")
    assert p2.infer.scales == (64,) and p2.infer.top_n == 7
    p3 = Predictor.from_checkpoint(path, device="cpu", infer=SMALL)
    assert p3.infer == SMALL
    img = np.random.default_rng(1).integers(0, 256, (80, 90, 3), dtype=np.uint8)
    p3.set_image(img)
    ref = Predictor(tiny_model, SMALL)
    ref.set_image(img)
    torch.testing.assert_close(p3.scales[1].score_maps, ref.scales[1].score_maps)


# ------------------------------------------------------------------ the ideal-maps end-to-end proof


class IdealOracle(nn.Module):
    """Returns the ideal score maps and objectness (ifcn_viz.model.ideal) of known masks, at any input size."""

    def __init__(self, masks: np.ndarray, k: int = 5, m: int = 21, stride: int = 8) -> None:
        super().__init__()
        self.masks = torch.from_numpy(masks).float()  # (N, H, W)
        self.config = SimpleNamespace(k=k, m=m, fill_logit=-20.0)
        self.stride = stride

    def forward(self, images: torch.Tensor):
        h, w = images.shape[-2:]
        masks = F.interpolate(self.masks[None], size=(h, w), mode="bilinear", antialias=True)[0] >= 0.5
        ideal = ideal_score_maps(masks, self.config.k, self.config.m, self.stride)
        return SimpleNamespace(score_maps=ideal.score_maps[None], objectness=ideal.objectness[None], stride=self.stride)


def make_scene(h: int = 240, w: int = 320) -> np.ndarray:
    """Ellipses and rectangles 24..110 px, touching pairs, and objects cut by every border."""
    yy, xx = np.mgrid[:h, :w]
    shapes = [
        ("e", 60, 70, 30, 40),  # (kind, cy, cx, ry, rx)
        ("r", 40, 130, 25, 18),  # touches the ellipse's neighbour below
        ("r", 91, 130, 25, 18),
        ("e", 170, 240, 45, 55),
        ("e", 4, 300, 30, 40),  # cut by the top and right borders (centre 4 px from the top)
        ("r", 230, 20, 25, 35),  # cut by the bottom and left borders
        ("e", 190, 100, 14, 12),  # small
        ("r", 120, 312, 30, 20),  # cut by the right border
    ]
    masks = []
    for kind, cy, cx, ry, rx in shapes:
        if kind == "e":
            masks.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1)
        else:
            masks.append((abs(yy - cy) <= ry) & (abs(xx - cx) <= rx))
    return np.stack(masks)


def iou_matrix(props, gt: np.ndarray) -> np.ndarray:
    """``(n_proposals, n_gt)`` mask IoUs (pycocotools)."""
    enc = lambda ms: mask_utils.encode(np.asfortranarray(ms.transpose(1, 2, 0).astype(np.uint8)))  # noqa: E731
    return mask_utils.iou(enc(props.masks), enc(gt), [0] * len(gt))


def test_ideal_maps_recover_every_object_multiscale():
    """No training: ideal maps of known masks through set_image, assembling, scoring, pasting and NMS."""
    from ifcn_viz.evaluate import coco_gt_from_masks, evaluate_results, proposals_to_coco_results

    gt = make_scene()
    image = np.full((*gt.shape[1:], 3), 128, np.uint8)
    p = Predictor(IdealOracle(gt), InferConfig(scales=(240, 160), pre_nms_top_k=2000, mask_threshold=0.4))
    p.set_image(image)
    props = p.proposals(top_n=100)
    ious = iou_matrix(props, gt)
    best = ious.max(0)
    assert (best >= 0.5).all(), best  # AR@100 = 1.0 at IoU 0.5: every object, border ones included
    coco = coco_gt_from_masks([gt])
    metrics = evaluate_results(coco, proposals_to_coco_results(props, 1))
    print("ideal maps: best IoU per object", np.round(best, 3), "COCO metrics", metrics)
    assert metrics["AR@100"] >= 0.75 and metrics["AR@1000"] == metrics["AR@100"]
    # windows crossing the border were needed: the border objects' best proposals have windows outside the image
    wb = props.window_boxes
    crossing = (wb[:, 0] < 0) | (wb[:, 1] < 0) | (wb[:, 2] > 320) | (wb[:, 3] > 240)
    for g in (4, 5, 7):
        assert crossing[ious[:, g].argmax()], g


def test_paper_preset_model_through_the_predictor():
    """The paper's dilated VGG-16 (random init) through every query, at two small scales (the paper's six reach
    900 px, too slow for a unit test); default inference settings come from the preset."""
    from ifcn_viz.config import PRESETS, InferConfig
    from ifcn_viz.inference.predictor import Predictor
    from ifcn_viz.model import build_model

    torch.manual_seed(0)
    model = build_model("paper").eval()
    assert Predictor(model).infer == PRESETS["paper"].infer
    pred = Predictor(model, InferConfig(scales=(96, 128), pre_nms_top_k=50))
    image = (np.random.default_rng(0).random((100, 140, 3)) * 255).astype(np.uint8)
    pred.set_image(image)
    assert [s.feature_hw for s in pred.scales] == [(12, 16), (16, 22)]  # vgg16 floors: H' = H // 8
    props = pred.proposals(top_n=10)
    assert len(props) <= 10 and props.masks.shape[1:] == (100, 140)
    w = pred.window(70, 50)
    assert w.logits.shape == (21, 21) and w.k == 5 and w.stride == 8
