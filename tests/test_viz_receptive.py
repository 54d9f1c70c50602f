import numpy as np
import pytest
import torch
from torch import nn

from ifcn_viz.model import build_model
from ifcn_viz.model.backbones import TinyBackbone, VGG16Backbone
from ifcn_viz.viz import (
    effective_extent,
    effective_receptive_field,
    receptive_field_view,
    score_map_layers,
    theoretical_receptive_field,
)


def _by_hand(layers):
    """The textbook recurrence, written out: size grows by (k_eff - 1) * jump, jump multiplies by stride."""
    size, jump = 1, 1
    for k, s, d in layers:
        size += d * (k - 1) * jump
        jump *= s
    return size, jump


def test_paper_vgg16_receptive_field_is_204_px_backbone_220_px_score_maps():
    # Dilated VGG-16 at stride 8 (paper, Sec. 4), by hand:
    #   conv1_x: 1 + 2 + 2 = 5;   pool1 2x2/2: +1 -> 6, jump 2
    #   conv2_x: 6 + 4 + 4 = 14;  pool2: +2 -> 16, jump 4
    #   conv3_x: 16 + 3*8 = 40;   pool3: +4 -> 44, jump 8
    #   conv4_x: 44 + 3*16 = 92;  pool4 3x3/1: +2*8 -> 108, jump stays 8
    #   conv5_x 3x3 dilation 2 (effective 5x5): 108 + 3 * 4*8 = 204
    #   instance branch: 1x1 (+0), 3x3 (+2*8) -> 220 px for one score-map cell (> the 168-px window)
    spec = [(3, 1, 1)] * 2 + [(2, 2, 1)] + [(3, 1, 1)] * 2 + [(2, 2, 1)] + [(3, 1, 1)] * 3 + [(2, 2, 1)]
    spec += [(3, 1, 1)] * 3 + [(3, 1, 1)] + [(3, 1, 2)] * 3
    assert _by_hand(spec) == (204, 8)
    bb = VGG16Backbone()
    rf = theoretical_receptive_field(bb.conv_layers())
    assert (rf.size, rf.jump) == (204, 8)
    assert rf.start == pytest.approx(3.5)  # cell 0 is centred on pixels 0..7 (the geometry convention)
    head = theoretical_receptive_field(bb.conv_layers() + [nn.Conv2d(512, 512, 1), nn.Conv2d(512, 25, 3, padding=1)])
    assert head.size == 220


def test_tiny_backbone_receptive_field():
    # 3x3/2, 3x3, 3x3/2, 3x3, 3x3/2, 3x3, then dilations 2, 4, 2:
    # 1+2=3 (j2) +4=7 +4=11 (j4) +8=19 +8=27 (j8) +16=43 +32=75 +64=139 +32=171; + the branch's 3x3: 187
    assert theoretical_receptive_field(TinyBackbone(8).conv_layers()).size == 171
    model = build_model("tiny")
    assert theoretical_receptive_field(score_map_layers(model)).size == 187
    assert theoretical_receptive_field([(3, 1, 2, 2), (2, 2, 1, 0)]).size == 6  # spec tuples work too


def test_gradient_field_lies_inside_the_theoretical_square():
    torch.manual_seed(0)
    model = build_model("tiny")
    rf = theoretical_receptive_field(score_map_layers(model))
    g = torch.Generator().manual_seed(1)
    image = torch.rand(3, 320, 320, generator=g)
    cell = (20, 20)
    grad = effective_receptive_field(model, image, cell)
    assert model.training  # mode restored
    x0, y0, x1, y1 = rf.box(*cell)
    ys, xs = np.nonzero(grad > 0)
    assert ys.min() >= y0 and ys.max() < y1 and xs.min() >= x0 and xs.max() < x1
    assert ys.max() - ys.min() + 1 > 0.6 * rf.size  # and it reaches far: most of the square is live
    eff = effective_extent(grad, rf.center(*cell))
    assert 0 < eff < rf.size  # the effective field is more concentrated than the theoretical one
    view = receptive_field_view((image.permute(1, 2, 0).numpy() * 255).astype(np.uint8), grad, cell, rf, m=21)
    assert view.dtype == np.uint8


def test_effective_extent_of_a_point_and_a_square():
    g = np.zeros((50, 50))
    g[25, 25] = 1
    assert effective_extent(g, (25, 25)) == 1
    g[20:31, 20:31] = 1
    assert effective_extent(g, (25, 25), mass=1.0) == 11


def test_named_layers_and_measured_growth_on_the_tiny_model():
    from ifcn_viz.viz.receptive import measure_layer, named_score_map_layers, receptive_field_growth

    torch.manual_seed(0)
    model = build_model("tiny").eval()
    names = [n for n, _ in named_score_map_layers(model)]
    assert names[0] == "conv1 3x3/2" and names[7] == "conv8 3x3 d4" and names[-2:] == ["inst 1x1", "scores 3x3"]
    paper = [n for n, _ in named_score_map_layers(build_model("paper"))]
    assert paper[:3] == ["conv1_1 3x3", "conv1_2 3x3", "pool1 2x2/2"] and "conv5_3 3x3 d2" in paper
    img = torch.rand(3, 128, 128)
    growth = receptive_field_growth(model, img, (8, 8))
    assert [g.name for g in growth] == names
    assert [g.theoretical for g in growth] == [
        theoretical_receptive_field([m for _, m in named_score_map_layers(model)][: i + 1]).size
        for i in range(len(names))
    ]
    assert growth[0].theoretical == 3 and growth[-1].theoretical == 187
    assert all(g.half <= g.effective <= g.theoretical for g in growth)
    assert growth[-1].effective > 3 * 8  # the last 3x3 layer sees far beyond 3 x 3 cells, let alone pixels
    field, grad, rf = measure_layer(model, img, "conv5 3x3/2", (8, 8))
    assert field.jump == rf.jump == 8 and grad.shape == (128, 128) and field == growth[4]
    with pytest.raises(ValueError, match="unknown layer"):
        measure_layer(model, img, "conv99", (8, 8))
