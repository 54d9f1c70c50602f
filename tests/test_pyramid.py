"""The image-adaptive pyramid covers the object sizes it promises, in steps no coarser than training's band."""

import math

import numpy as np
import pytest
import torch

from ifcn_viz.config import InferConfig, ModelConfig
from ifcn_viz.inference.predictor import Predictor
from ifcn_viz.inference.pyramid import adaptive_shorter_sides, level, positive_band, reference_size, scale_factor
from ifcn_viz.model import build_model

WINDOW = 168  # m * stride of the paper and the tiny preset


def _serves(hw, sides, size, max_side=2000):
    """The scales at which an object of ``size`` original px lands in the positive band."""
    return [
        s
        for s in sides
        if level(hw, s, WINDOW, max_side).objects[0] <= size <= level(hw, s, WINDOW, max_side).objects[1]
    ]


def test_reference_size_and_band_are_training_s():
    assert reference_size(WINDOW) == pytest.approx(96.0)
    lo, hi = positive_band(WINDOW)
    assert lo == pytest.approx(96 / 2**0.5) and hi == pytest.approx(96 * 2**0.5)  # 68 .. 136 px


@pytest.mark.parametrize("hw", [(512, 512), (300, 400), (240, 960), (1000, 700)])
@pytest.mark.parametrize("min_object", [24, 32])
def test_every_size_from_the_minimum_to_the_whole_image_meets_the_band(hw, min_object):
    big = 10**12  # no pixel budget, no cap on the longer side: the rule alone
    sides = adaptive_shorter_sides(hw, WINDOW, min_object=min_object, max_pixels=big, max_side=big, max_scales=99)
    for size in np.geomspace(min_object, min(hw), 40):
        assert _serves(hw, sides, size, big), f"an object of {size:.1f} px is served by no scale of {sides}"
    # and from min_object * 2^0.5 up, the reference size itself within a quarter octave (steps of at most 2^0.5)
    for size in np.geomspace(min_object * 2**0.5, min(hw), 20):
        best = min(abs(math.log2(size * scale_factor(hw, s, big) / reference_size(WINDOW))) for s in sides)
        assert best <= 0.25 + 1e-6, (size, sides)
    ratios = np.diff(np.log2(sides))
    assert (ratios <= 0.5 + 0.02).all()  # no step coarser than 2^0.5 (up to rounding of the sides)


def test_the_pixel_budget_drops_the_finest_scales_and_says_what_is_served():
    full = adaptive_shorter_sides((512, 512), WINDOW, min_object=24, max_pixels=10**9)
    capped = adaptive_shorter_sides((512, 512), WINDOW, min_object=24, max_pixels=1_000_000)
    assert capped == full[: len(capped)] and len(capped) < len(full)
    assert sum(512 * 512 * scale_factor((512, 512), s, 2000) ** 2 for s in capped) <= 1_000_000
    smallest = level((512, 512), capped[-1], WINDOW, 2000).objects[0]
    assert smallest > 24 and not _serves((512, 512), capped, 24)


def test_the_longer_side_cap_holds_at_every_scale():
    for hw in [(240, 960), (16, 2400), (3000, 4000)]:
        for s in adaptive_shorter_sides(hw, WINDOW, min_object=24, max_side=2000):
            assert max(hw) * scale_factor(hw, s, 2000) <= 2000 + 1e-6


def test_predictor_runs_the_adaptive_pyramid_per_image():
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="tiny", head_channels=8, backbone_width=8))
    predictor = Predictor(model, InferConfig(pyramid="adaptive", min_object=32, pre_nms_top_k=100))
    for hw in [(64, 64), (200, 300)]:
        predictor.set_image(np.zeros((*hw, 3), np.uint8))
        expected = adaptive_shorter_sides(hw, 168, min_object=32)
        assert [sm.shorter_side for sm in predictor.scales] == expected
        assert [lv.shorter_side for lv in predictor.levels] == expected
        assert predictor.default_scale == len(expected) // 2
    with pytest.raises(ValueError, match="pyramid"):
        InferConfig(pyramid="pyramidal")
