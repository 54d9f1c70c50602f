"""One window, one truth: what the viz draws is what inference proposes, pixel for pixel, at every scale.

The window, its box, its paste, pixel -> cell and provenance, and the out-of-map fill live in
``ifcn_viz.inference.window``; these tests pin the viz, the animation and the proposals to it.
"""

import numpy as np
import pytest
import torch

from ifcn_viz.config import InferConfig, ModelConfig
from ifcn_viz.data.synthetic import generate_scene
from ifcn_viz.inference.postprocess import paste_window_masks, window_mask_boxes
from ifcn_viz.inference.predictor import Predictor
from ifcn_viz.inference.window import WindowGrid, window_mask
from ifcn_viz.model import build_model
from ifcn_viz.viz.animate import assembly_frames
from ifcn_viz.viz.palette import colormap_lut, mask_edges, rank_color, thicken
from ifcn_viz.viz.window import assembled_mask_view, pasted_mask_view

THR = 0.4


@pytest.fixture(scope="module")
def shipped_on_scene():
    predictor = Predictor.from_checkpoint("shipped", device="cpu")
    image, _ = generate_scene(3, size=(320, 320))
    predictor.set_image(image)
    return predictor, image


def _drawn_inside(image_hw, window, threshold):
    """The contour the viz draws for ``window``: pixels in the rank-0 colour on a blank image (alpha 0)."""
    blank = np.full((*image_hw, 3), 127, np.uint8)
    view = pasted_mask_view(blank, window, threshold, alpha=0.0)
    return (view == np.array(rank_color(0), np.uint8)).all(-1)


def test_viz_draws_exactly_the_proposals_masks_at_every_scale(shipped_on_scene):
    predictor, image = shipped_on_scene
    hw = image.shape[:2]
    props = predictor.proposals(top_n=30, mask_threshold=THR)
    assert len(props) >= 10 and len(set(props.scale_index.tolist())) >= 2
    for i in range(len(props)):
        w = predictor.window_at(*props.centers[i].tolist(), scale=int(props.scale_index[i]))
        np.testing.assert_allclose(w.box, props.window_boxes[i], rtol=1e-6)
        mask = window_mask(w, hw, THR)
        assert np.array_equal(mask, props.masks[i]), f"proposal {i}: {np.sum(mask != props.masks[i])} pixels differ"
        drawn = _drawn_inside(hw, w, THR)
        expected = thicken(mask_edges(mask), 1)
        assert not (drawn & ~expected).any(), f"proposal {i}: the view draws a contour where the mask has none"
        # every contour pixel is drawn, except under the window's frame and its label (drawn on top)
        x0, y0 = int(np.floor(w.box[0])), int(np.floor(w.box[1]))
        hidden = np.zeros(hw, bool)
        hidden[max(0, y0) : max(0, y0 + 18), max(0, x0) : max(0, x0 + 130)] = True
        frame = np.zeros(hw, bool)
        fx0, fy0, fx1, fy1 = (int(round(v)) for v in w.box)
        for y in (fy0, fy1 - 1):
            if 0 <= y < hw[0]:
                frame[y, max(0, fx0) : max(0, fx1)] = True
        for x in (fx0, fx1 - 1):
            if 0 <= x < hw[1]:
                frame[max(0, fy0) : max(0, fy1), x] = True
        missing = expected & ~drawn & ~hidden & ~thicken(frame, 1)
        assert not missing.any(), f"proposal {i}: {missing.sum()} contour pixels not drawn"


def test_12_windows_at_every_scale_paste_like_the_proposals(shipped_on_scene):
    """The issue's measurement (36 windows at 3 scales): 12 windows per scale, the viz's mask against the
    proposals' paste code path."""
    predictor, image = shipped_on_scene
    hw = image.shape[:2]
    assert len(predictor.scales) >= 3
    gen = torch.Generator().manual_seed(0)
    worst = 0
    for s in range(len(predictor.scales)):
        grid = predictor.grid(s)
        hf, wf = grid.feature_hw
        cy = torch.randint(0, hf, (12,), generator=gen)
        cx = torch.randint(0, wf, (12,), generator=gen)
        probs, boxes = torch.sigmoid(grid.logits(cy, cx)), grid.boxes(cy, cx)
        tight, _ = window_mask_boxes(probs, boxes, hw, THR)
        masks, _ = paste_window_masks(probs, boxes, hw, THR, within=tight)  # exactly what proposals() runs
        for n in range(12):
            w = grid.window(int(cy[n]), int(cx[n]))
            worst = max(worst, int((window_mask(w, hw, THR) != masks[n].numpy()).sum()))
    assert worst == 0


def test_provenance_from_plain_maps_equals_the_predictors():
    """x = 12.3 at scale factor 0.64: one rule maps the pixel to a cell, wherever the maps come from."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="tiny", head_channels=8, backbone_width=8))
    predictor = Predictor(model, InferConfig(scales=(160, 250)))
    image = (np.random.default_rng(0).random((250, 250, 3)) * 255).astype(np.uint8)
    predictor.set_image(image)
    sm = predictor.scales[0]
    assert sm.factor == pytest.approx(0.64)
    plain = WindowGrid.from_maps(sm.score_maps, predictor.m, sm.stride, sm.objectness, image.shape[:2], sm.factor)
    for x, y in [(12.3, 12.3), (12.6, 37.0), (0.0, 0.0), (249.0, 100.5), (125.4, 231.9)]:
        a, b = predictor.provenance(x, y, 0), plain.provenance(x, y)
        assert a == b
        assert a.feature_cell == (int((np.floor(y) + 0.5) * 0.64 // 8), int((np.floor(x) + 0.5) * 0.64 // 8))
        wa, wb = predictor.window(x, y, 0), plain.window_at_pixel(x, y)
        assert wa.box == wb.box and torch.equal(wa.logits, wb.logits)


def _count_colour(view: np.ndarray, rgb: np.ndarray) -> int:
    return int((view == rgb).all(-1).sum())


def test_a_checkpoints_fill_reaches_the_animation_the_window_view_and_the_proposals():
    torch.manual_seed(0)
    fill = -3.0
    model = build_model(ModelConfig(backbone="tiny", head_channels=8, backbone_width=8, fill_logit=fill))
    predictor = Predictor(model, InferConfig(scales=(96,), pre_nms_top_k=50))
    image = (np.random.default_rng(1).random((96, 96, 3)) * 255).astype(np.uint8)
    predictor.set_image(image)
    grid = predictor.grid(0)
    assert grid.fill == fill
    w = grid.window(0, 0)  # the top-left corner: 10 rows and 10 columns of the window lie outside the map
    r = w.m // 2
    outside = np.zeros((w.m, w.m), bool)
    outside[:r, :] = True
    outside[:, :r] = True
    assert (w.logits.numpy()[outside] == fill).all()
    # proposals assemble through the same grid: a proposal's window reads the fill too
    props = predictor.proposals(top_n=50, mask_threshold=0.5, pre_nms_top_k=50)
    for i in range(len(props)):
        wi = predictor.window_at(*props.centers[i].tolist(), scale=0)
        assert np.array_equal(window_mask(wi, image.shape[:2], 0.5), props.masks[i])
    # the animation's finished window and the window view show the fill's colour in the outside cells
    fill_rgb = colormap_lut("viridis")[int(1 / (1 + np.exp(-fill)) * 255 + 0.5)]
    cell_px = 10
    n_out = int(outside.sum()) * cell_px * cell_px
    last = assembly_frames(grid, (0, 0), cell_px=cell_px)[-1]
    view = assembled_mask_view(w, cell_px=cell_px, labels=False)
    for picture in (last, view):
        assert _count_colour(picture, fill_rgb) >= 0.8 * n_out
    default = assembly_frames(WindowGrid(grid.maps, grid.m), (0, 0), cell_px=cell_px)[-1]
    assert _count_colour(default, fill_rgb) < 0.1 * n_out  # with the default fill those cells look different
