import io

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from PIL import Image

from ifcn_viz.viz.palette import (
    MAP_PALETTE,
    apply_colormap,
    colorbar,
    colormap_lut,
    map_color,
    mask_edges,
    save_gif,
    symmetric_range,
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


def test_symmetric_range_and_errors():
    assert symmetric_range(np.array([-7.0, 2.0])) == 10.0  # rounded up to 1, 2, 5 x 10^n
    assert symmetric_range(np.array([-1.5, 0.2])) == 2.0
    assert symmetric_range(np.r_[np.full(999, 3.0), 400.0]) == 5.0  # one outlier does not set the scale
    assert symmetric_range(np.zeros(3)) == 1.0
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
