import io

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from PIL import Image

from ifcn_viz.viz.palette import (
    MAP_PALETTE,
    LogitScale,
    apply_colormap,
    colorbar,
    colormap_lut,
    logit_range,
    map_color,
    mask_edges,
    nice_ceil,
    save_gif,
    to_png_bytes,
    to_rgb_uint8,
)


def test_lut_matches_matplotlib_and_range_ends():
    lut = colormap_lut("viridis")
    ref = (colormaps["viridis"](np.array([0.0, 0.5, 1.0]))[:, :3] * 255).round()
    assert np.abs(lut[[0, 128, 255]].astype(int) - ref).max() <= 2
    out = apply_colormap(np.array([[-3.0, 0.0, 3.0, np.nan]]), "RdBu_r", -3, 3)
    assert (out[0, 0] == colormap_lut("RdBu_r")[0]).all() and (out[0, 2] == colormap_lut("RdBu_r")[255]).all()
    assert out[0, 1].min() > 220  # logit 0 is (almost) white on the diverging scale
    assert (out[0, 3] == 200).all()  # NaN -> light grey


def test_logit_range_follows_each_side_of_the_learned_values_and_errors():
    assert [nice_ceil(x) for x in (0.7, 1.0, 1.2, 5.5, 7.0, 13.0, 22.0)] == [0.8, 1.0, 1.5, 6.0, 8.0, 15.0, 25.0]
    s = logit_range(np.array([-7.0, 2.0]))
    assert (s.lo, s.hi) == (-8.0, 2.0)  # each side its own end: the small positives are not washed out
    # learned maps: mostly confident "out" near -20, "in" up to about +6 -> the positives use the red half fully
    v = np.r_[np.full(900, -20.0), np.linspace(0.5, 5.5, 100)]
    s = logit_range(v)
    assert s.lo == -20.0 and s.hi == 6.0
    assert s.index(np.array([5.5]))[0] > 240 and s.index(np.array([0.0]))[0] in (127, 128)
    assert logit_range(np.r_[np.full(999, 3.0), 400.0]).hi == 3.0  # one outlier does not set the scale
    assert (logit_range(np.zeros(3)).lo, logit_range(np.zeros(3)).hi) == (-1.0, 1.0)
    # the out-of-map fill says nothing about the maps: excluded, it does not set the blue end
    filled = np.r_[np.full(50, -20.0), np.linspace(-3.0, 4.0, 50)]
    assert logit_range(filled, exclude=-20.0).lo == -3.0 and logit_range(filled).lo == -20.0
    assert (logit_range(filled, vmax=5.0).lo, logit_range(filled, vmax=5.0).hi) == (-5.0, 5.0)
    colors = LogitScale(-4.0, 2.0).colors(np.array([[-4.0, 0.0, 2.0, np.nan]]))
    lut = colormap_lut("RdBu_r")
    assert (colors[0, 0] == lut[0]).all() and (colors[0, 2] == lut[255]).all() and (colors[0, 3] == 200).all()
    with pytest.raises(ValueError, match="lo < 0 < hi"):
        LogitScale(1.0, 2.0)
    with pytest.raises(ValueError, match="vmax must be > 0"):
        logit_range(filled, vmax=0.0)
    with pytest.raises(ValueError, match="vmax must be > vmin"):
        apply_colormap(np.zeros((2, 2)), "viridis", 1.0, 1.0)
    with pytest.raises(ValueError, match="unknown colour map"):
        colormap_lut("not-a-cmap")


def test_to_rgb_uint8_layouts_agree():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    as_float = rgb.astype(np.float32) / 255
    chw = torch.from_numpy(as_float).permute(2, 0, 1)
    assert (to_rgb_uint8(chw) == rgb).all()
    assert (to_rgb_uint8(Image.fromarray(rgb)) == rgb).all()
    assert (to_rgb_uint8(np.dstack([rgb, np.full((5, 7), 9, np.uint8)])) == rgb).all()  # RGBA drops alpha
    grey = to_rgb_uint8(rgb[:, :, 0])
    assert (grey[:, :, 1] == rgb[:, :, 0]).all()
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        to_rgb_uint8(np.zeros((2, 2, 5)))


def test_png_round_trip_is_lossless_and_gif_has_all_frames(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    back = np.asarray(Image.open(io.BytesIO(to_png_bytes(arr))))
    assert (back == arr).all()
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 120, 250)]
    path = save_gif(frames, tmp_path / "a.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 3
    with pytest.raises(ValueError, match="same shape"):
        save_gif([frames[0], np.zeros((4, 4, 3), np.uint8)], tmp_path / "b.gif")


def test_mask_edges_is_the_inner_boundary():
    m = np.zeros((10, 10), bool)
    m[2:8, 3:9] = True  # 6 x 6 square: 20 boundary pixels
    e = mask_edges(m)
    assert e.sum() == 20 and not e[3:7, 4:8].any() and (e <= m).all()


def test_colorbar_gradient_runs_low_to_high():
    bar = colorbar(200, "viridis", 0.0, 1.0, "probability")
    lut = colormap_lut("viridis")
    row = bar[6]  # inside the gradient strip
    assert (row[14] == lut[0]).all() and (row[200 - 15] == lut[255]).all()


def test_map_palette_distinguishes_neighbouring_maps():
    for k in (3, 5, 7):
        for c in range(k * k):
            for d in (1, k):
                if c + d < k * k:
                    assert map_color(c) != map_color(c + d)
    assert len(set(MAP_PALETTE)) == len(MAP_PALETTE)


def test_a_long_colorbar_label_wraps_instead_of_being_cut():
    from ifcn_viz.viz.palette import _wrap, font

    label = "objectness: P(an instance is centred in the window)"
    wide, narrow = colorbar(420, "viridis", 0.0, 1.0, label), colorbar(160, "viridis", 0.0, 1.0, label)
    assert wide.shape[0] == colorbar(420, "viridis", 0.0, 1.0, "p").shape[0]  # fits on one line: unchanged
    assert narrow.shape[1] == 160 and narrow.shape[0] > wide.shape[0]  # same width, one more line
    lines = _wrap(label, font(11), 156)
    assert len(lines) == 2 and " ".join(lines) == label and all(font(11).getlength(t) <= 156 for t in lines)
