import numpy as np
import pytest
import torch

from ifcn_viz.model.ideal import ideal_score_maps
from ifcn_viz.viz.emerge import instance_cells, map_mosaic_outlined, maps_over_training
from ifcn_viz.viz.palette import rank_color


def _masks():
    m = np.zeros((2, 64, 64), bool)
    m[0, 8:40, 8:30] = True
    m[1, 8:40, 30:56] = True  # touching the first
    return m


def test_instance_cells_samples_cell_centres():
    cells = instance_cells(_masks(), 8, (8, 8))
    assert cells.shape == (2, 8, 8)
    assert cells[0, 1:5, 1:4].all() and not cells[0, :, 4:].any() and cells[1, 1:5, 4:7].all()


def test_maps_over_training_draws_outlines_and_a_row_per_snapshot():
    masks = _masks()
    ideal = ideal_score_maps(masks, 3, 5, 8).score_maps
    noise = torch.randn_like(ideal) * 0.01  # an untrained network: logits near 0
    one = maps_over_training([("ideal", ideal)], masks, 8, k=3, cell_px=5)
    two = maps_over_training([("ideal", ideal), ("step 0", noise)], masks, 8, k=3, cell_px=5)
    assert two.shape[0] > one.shape[0] and two.dtype == np.uint8
    for i in range(2):  # every instance is outlined in its colour
        assert (two == np.array(rank_color(i), np.uint8)).all(-1).any()
    # the near-zero row gets its own range: its tiles are not all white (as they would be on the ideal's range)
    assert (two[:, :, 0].astype(int) - two[:, :, 2].astype(int)).std() > 0
    with pytest.raises(ValueError, match="k\\*k"):
        maps_over_training([("x", ideal[:4])], masks, 8, k=3)
    with pytest.raises(ValueError, match="map indices"):
        maps_over_training([("x", ideal)], masks, 8, k=3, maps=[9])


def test_map_mosaic_outlined_shape():
    masks = _masks()
    maps = ideal_score_maps(masks, 3, 5, 8).score_maps
    out = map_mosaic_outlined(maps, masks, 8, k=3, cell_px=3)
    assert out.ndim == 3 and out.shape[1] >= 3 * 8 * 3
