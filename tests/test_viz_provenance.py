import numpy as np
import pytest
import torch
from _viz_helpers import aligned_scene, random_maps, scene_image

from ifcn_viz.inference.window import WindowGrid
from ifcn_viz.model.assemble import assemble_at, cell_to_map_index
from ifcn_viz.viz import channel_grid, ideal_score_maps, provenance_view


def provenance_from_maps(maps, x, y, stride, m):
    return WindowGrid.from_maps(maps, m, stride).provenance(x, y)


def test_provenance_agrees_with_sparse_assembling_at_every_covering_window():
    maps = random_maps(5, 24, 30)
    prov = provenance_from_maps(maps, x=101.0, y=77.0, stride=8, m=21)
    assert prov.feature_cell == (77 // 8, 101 // 8)
    centers = torch.tensor([[0, *e.center] for e in prov.entries])
    windows = assemble_at(maps[None], centers, 21)  # (N, 21, 21)
    for e, win in zip(prov.entries, windows):
        assert win[e.cell] == pytest.approx(e.value, abs=0)  # the window reads exactly this value here
        cy, cx = e.center
        assert (cy - 10 + e.cell[0], cx - 10 + e.cell[1]) == prov.feature_cell  # and the cell is the pixel's
    # every window whose centre lies in the map and that covers the pixel is listed, once
    fy, fx = prov.feature_cell
    expected = {(cy, cx) for cy in range(24) for cx in range(30) if abs(cy - fy) <= 10 and abs(cx - fx) <= 10}
    assert {e.center for e in prov.entries} == expected and len(prov.entries) == len(expected)


def test_channel_grid_is_the_window_map_index_mirrored():
    maps = random_maps(5, 40, 40)
    prov = provenance_from_maps(maps, 160, 160, 8, 21)  # interior: all 441 windows exist
    grid = channel_grid(prov)
    # the window above-left of the pixel sees it in its bottom-right cell, and so on
    assert np.array_equal(grid, cell_to_map_index(5, 21).numpy()[::-1, ::-1])
    vals = prov.value_grid()
    fy, fx = prov.feature_cell
    assert np.allclose(vals, maps.numpy()[grid, fy, fx])


def test_same_pixel_in_for_one_window_out_for_its_neighbour():
    masks = aligned_scene()[:2]
    ideal = ideal_score_maps(masks, 5, 21, 8)
    cy, cx = ideal.centers[0].tolist()
    x, y = (cx + 3) * 8 + 4, cy * 8 + 4  # a pixel of instance 0, right of its centre
    prov = provenance_from_maps(ideal.score_maps, x, y, 8, 21)
    by_center = {e.center: e.value for e in prov.entries}
    assert by_center[(cy, cx)] > 0  # the window on instance 0 says "in"
    assert by_center[tuple(ideal.centers[1].tolist())] < 0  # the window on instance 1 says "out"
    view = provenance_view(scene_image(masks), prov)
    assert view.dtype == np.uint8 and view.shape[2] == 3


def test_provenance_validates_inputs():
    maps = random_maps(5, 10, 10)
    with pytest.raises(ValueError, match="outside"):
        provenance_from_maps(maps, 500, 5, 8, 21)
    with pytest.raises(TypeError, match="Provenance"):
        provenance_view(np.zeros((80, 80, 3), np.uint8), "not a provenance")
