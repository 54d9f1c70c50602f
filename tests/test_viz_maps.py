import numpy as np
import pytest
import torch
from _viz_helpers import aligned_scene, random_maps, scene_image

from ifcn_viz.inference.window import WindowGrid, copied_region
from ifcn_viz.model.assemble import assemble_at, cell_to_map_index
from ifcn_viz.viz import (
    ideal_reassembly,
    ideal_score_maps,
    ideal_vs_learned,
    k_comparison,
    mosaic_layout,
    objectness_overlay,
    score_map_mosaic,
    top_windows,
)
from ifcn_viz.viz.palette import INK, blend, colormap_lut, mask_edges, rank_color, thicken


def test_mosaic_places_map_a_k_plus_b_at_row_a_column_b():
    k = 3
    values = torch.linspace(-4, 4, k * k)
    maps = values[:, None, None].expand(k * k, 6, 8).clone()  # map c is constant values[c]
    out = score_map_mosaic(maps, k, vmax=4.0, cell_px=4, labels=False, colorbar=False)
    layout = mosaic_layout(maps, cell_px=4)
    lut = colormap_lut("RdBu_r")
    for c in range(k * k):
        a, b = divmod(c, k)
        oy, ox = layout.origin(a, b)
        expected = lut[int(np.clip((float(values[c]) + 4) * 255 / 8 + 0.5, 0, 255))]
        assert (out[oy + 10, ox + 15] == expected).all(), f"map {c} not at ({a}, {b})"
        assert layout.locate(ox + 15, oy + 10) == (c, 10 // 4, 15 // 4)


def test_copied_region_is_exactly_what_the_sub_window_copies():
    k, m, h, w = 5, 21, 24, 30
    maps = random_maps(k, h, w)
    c2m = cell_to_map_index(k, m)
    r = m // 2
    for cy, cx in [(12, 15), (2, 3), (23, 29)]:  # interior and two border windows
        win = assemble_at(maps[None], torch.tensor([[0, cy, cx]]), m)[0]
        for a in range(k):
            for b in range(k):
                # brute force: map cells under window cells whose channel is a*k+b
                cells = {
                    (cy - r + i, cx - r + j)
                    for i in range(m)
                    for j in range(m)
                    if c2m[i, j] == a * k + b and 0 <= cy - r + i < h and 0 <= cx - r + j < w
                }
                reg = copied_region(k, m, cy, cx, a, b, (h, w))
                if not cells:
                    assert reg is None
                    continue
                y0, y1, x0, x1 = reg
                assert cells == {(y, x) for y in range(y0, y1) for x in range(x0, x1)}
                i0, j0 = y0 - cy + r, x0 - cx + r
                sub = win[i0 : i0 + y1 - y0, j0 : j0 + x1 - x0]
                assert torch.equal(sub, maps[a * k + b, y0:y1, x0:x1])


def test_mosaic_outlines_the_copied_cells_in_each_map():
    k, m = 5, 21
    maps = torch.zeros(k * k, 30, 30)  # all white on the diverging scale
    cell = 4
    out = score_map_mosaic(maps, k, window=(15, 15, m), vmax=1.0, cell_px=cell, labels=False, colorbar=False)
    layout = mosaic_layout(maps, cell_px=cell)
    for a, b in [(0, 0), (2, 3), (4, 4)]:
        y0, y1, x0, x1 = copied_region(k, m, 15, 15, a, b, (30, 30))
        oy, ox = layout.origin(a, b)
        assert (out[oy + y0 * cell, ox + x0 * cell] == INK).all()  # top-left corner of the outline
        assert (out[oy + y1 * cell - 1, ox + x1 * cell - 1] == INK).all()  # bottom-right corner
        mid = oy + (y0 + y1) * cell // 2, ox + (x0 + x1) * cell // 2
        assert out[mid].min() > 200  # inside stays the map's colour (white)


def test_top_windows_are_separate_local_maxima_best_first():
    o = torch.full((20, 20), -5.0)
    o[5, 5], o[5, 6], o[14, 12] = 3.0, 2.5, 1.0  # (5, 6) is a neighbour of the (5, 5) peak
    tops = top_windows(o, top=3)
    assert [(y, x) for y, x, _ in tops[:2]] == [(5, 5), (14, 12)]
    assert tops[0][2] == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_objectness_overlay_heat_follows_cells():
    o = torch.full((8, 8), -10.0)
    o[2, 5] = 10.0
    img = np.zeros((64, 64, 3), np.uint8)
    maps = torch.zeros(25, 8, 8)
    out = objectness_overlay(img, WindowGrid.from_maps(maps, 21, 8, o), top=0, alpha=1.0, colorbar=False)
    lut = colormap_lut("viridis")
    assert (out[2 * 8 + 4, 5 * 8 + 4] == lut[255]).all()  # p ~ 1 at the hot cell
    assert (out[2 * 8 + 4, 4 * 8 + 4] == lut[0]).all()  # p ~ 0 next to it
    # a scale with factor 0.5: the same cell covers twice as many original pixels
    half = WindowGrid.from_maps(maps, 21, 8, o, factor=0.5)
    out2 = objectness_overlay(np.zeros((128, 128, 3), np.uint8), half, top=0, alpha=1.0, colorbar=False)
    assert (out2[2 * 16 + 15, 5 * 16 + 15] == lut[255]).all() and (out2[2 * 16 + 15, 5 * 16 + 16] == lut[0]).all()


def test_ideal_maps_reassemble_every_instance():
    # Objects aligned to the 8-px grid: every stride-8 cell is wholly inside or outside each instance, so the
    # cell-level ideal maps lose nothing to quantisation; and each fits in the 168-px window around its centre
    # cell, so the window covers all of it.  Then assembling + nearest pasting gives each instance back exactly.
    masks = aligned_scene()
    for k in (3, 5):
        res = ideal_reassembly(masks, k, 21, 8)
        assert (res.ious >= 0.95).all(), (k, res.ious)
        assert (res.ious == 1.0).all()  # exactly: nothing is lost on the grid
    # off-grid objects lose only border cells to quantisation: still close
    shifted = np.roll(aligned_scene(), (3, 5), axis=(1, 2))
    ious = ideal_reassembly(shifted, 5, 21, 8).ious
    assert (ious >= 0.7).all() and ious.min() < 0.95, ious


def test_k1_merges_touching_objects_k5_separates_them():
    masks = aligned_scene()[:2]  # two touching rectangles, same colour in the image
    one = ideal_reassembly(masks, 1, 21, 8)
    five = ideal_reassembly(masks, 5, 21, 8)
    assert (five.ious >= 0.95).all()
    assert (one.ious < 0.75).all(), one.ious  # k = 1 (semantic FCN): each window also takes its neighbour
    for n in range(2):  # the k = 1 mask contains most of the other instance too
        other = masks[1 - n]
        assert (one.pasted[n] & other).sum() > 0.5 * other.sum()
        assert (five.pasted[n] & other).sum() == 0
    view = k_comparison(masks, 8, 21, image=scene_image(masks))
    # one row per k, each with the maps and one panel per instance: the k = 5 row is taller (25 maps)
    assert view.dtype == np.uint8 and view.shape[0] > 2 * masks.shape[1] and view.shape[1] > 3 * masks.shape[2]
    # each instance panel draws the instance's pasted mask in its rank colour
    for n in range(2):
        assert (view == np.array(rank_color(n), np.uint8)).all(-1).sum() == 0  # blended, never the pure colour
    blended = blend(
        scene_image(masks), np.broadcast_to(np.array(rank_color(0), np.uint8), (*masks.shape[1:], 3)).copy(), 0.55
    )
    assert (view == blended[masks[0] & ~thicken(mask_edges(masks[0]), 1)][0]).all(-1).sum() >= 0.5 * masks[0].sum()


def test_ideal_vs_learned_checks_shapes():
    ideal = ideal_score_maps(aligned_scene(), 5, 21, 8).score_maps
    grid = WindowGrid.from_maps(ideal, 21, 8)
    out = ideal_vs_learned(grid, WindowGrid.from_maps(ideal + 1.0, 21, 8), center=(12, 8))
    assert out.shape[1] > 2 * out.shape[0] // 3
    with pytest.raises(ValueError, match="same shape"):
        ideal_vs_learned(grid, WindowGrid.from_maps(ideal[:, :10], 21, 8))
    with pytest.raises(ValueError, match="k\\*k"):
        score_map_mosaic(torch.zeros(24, 5, 5))


def test_cropped_ideal_maps_equal_the_full_computation():
    from ifcn_viz.viz.ideal import _ideal_maps_cropped

    masks = np.roll(aligned_scene(320, 300), (21, 13), axis=(1, 2))  # off-grid, away from the origin
    full, crop = ideal_score_maps(masks, 5, 21, 8), _ideal_maps_cropped(masks, 5, 21, 8)
    for a, b in zip(full, crop):
        assert torch.equal(a, b)
