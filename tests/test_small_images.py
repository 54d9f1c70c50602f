"""Every valid image works in every view, from 16 px a side (the smallest accepted) up, at every scale."""

import dataclasses

import numpy as np
import pytest

from ifcn_viz.app import views
from ifcn_viz.app.session import open_session
from ifcn_viz.inference.predictor import Predictor


@pytest.fixture(scope="module")
def shipped():
    return Predictor.from_checkpoint("shipped", device="cpu")


@pytest.mark.parametrize("pyramid", ["adaptive", "fixed"])
@pytest.mark.parametrize("hw", [(16, 16), (23, 35), (35, 16), (16, 320)])
def test_every_view_at_every_scale_of_a_small_image(shipped, pyramid, hw):
    predictor = Predictor(shipped.model, dataclasses.replace(shipped.infer, pyramid=pyramid), "cpu")
    image = (np.random.default_rng(sum(hw)).random((*hw, 3)) * 255).astype(np.uint8)
    session = open_session(predictor, image, "small", "shipped")
    h, w = hw
    for scale in [-1, *range(len(session.scales))]:
        ex = views.explore(session, 10, 0.4, 0.8, scale)
        assert ex.mosaic.ndim == 3 and ex.objectness.shape[:2][1] >= w  # the overlay is drawn on the image
        for x, y in [(0, 0), (w - 1, h - 1), (w // 2, h // 2)]:
            win = views.window_at(session, x, y, scale, 0.4, maps=True)
            assert win.marked.shape[:2] == views.display_image(session).shape[:2]
            view, data = views.provenance_at(session, x, y, scale)
            assert view.ndim == 3 and data
            frames = views.assembly_frames(session, x, y, scale)
            assert len(frames) == predictor.k**2 + 2
