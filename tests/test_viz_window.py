import numpy as np
import pytest
import torch
from _viz_helpers import aligned_scene, random_maps

from ifcn_viz.inference.window import WindowGrid, paste_window, window_covered
from ifcn_viz.model.assemble import assemble_at, bin_edges, cell_to_map_index
from ifcn_viz.model.geometry import window_box
from ifcn_viz.viz import (
    assembly_frames,
    ideal_score_maps,
    slide_frames,
    subwindow_layout,
    window_grid_lines,
    window_on_image,
    window_view,
)
from ifcn_viz.viz.animate import EMPTY
from ifcn_viz.viz.palette import blend, map_color
from ifcn_viz.viz.window import GRID_COLOR


def _window(cy=20, cx=16, factor=1.0, k=5, m=21):
    return WindowGrid.from_maps(random_maps(k, 40, 40), m, 8, factor=factor).window(cy, cx)


def test_grid_window_matches_geometry_and_assembler():
    maps = random_maps(5, 40, 40)
    w = WindowGrid.from_maps(maps, 21, 8).window(20, 16)
    assert w.box == tuple(float(v) for v in window_box(20, 16, 21, 8))
    assert torch.equal(w.logits, assemble_at(maps[None], torch.tensor([[0, 20, 16]]), 21)[0])
    assert w.fill == -20.0 and w.cell_size == (8.0, 8.0)


@pytest.mark.parametrize("factor", [1.0, 0.5])
def test_grid_lines_fall_on_the_right_pixels(factor):
    w = _window(factor=factor)
    xs, ys = window_grid_lines(w)
    # by hand: the window at cell (20, 16) starts at cell 16 - 10 = 6 -> pixel 6 * 8 / factor; the bins of
    # k = 5, m = 21 start at cells 0, 5, 9, 13, 17 and the window ends at cell 21
    cell = 8 / factor
    assert xs == [round(6 * cell + e * cell) for e in (0, 5, 9, 13, 17)] + [round(6 * cell + 21 * cell) - 1]
    assert ys == [round(10 * cell + e * cell) for e in (0, 5, 9, 13, 17)] + [round(10 * cell + 21 * cell) - 1]
    size = int(40 * cell)
    out = window_on_image(np.zeros((size, size, 3), np.uint8), w, tint_alpha=0.0, labels=False)
    for x in xs[1:-1]:
        assert (out[ys[0] + 1 : ys[-1], x] == GRID_COLOR).all(), f"no grid line at x = {x}"
        mids = [(ys[a] + ys[a + 1]) // 2 for a in range(5)]
        assert (out[mids, x + 2] == 0).all()  # beside the line: the (black) image
    for y in ys[1:-1]:
        assert (out[y, xs[0] + 1 : xs[-1]] == GRID_COLOR).all(), f"no grid line at y = {y}"


def test_each_sub_window_is_labelled_and_tinted_by_its_source_map():
    w = _window()
    c2m = cell_to_map_index(5, 21)
    layout = subwindow_layout(w)
    assert [s.channel for s in layout] == list(range(25))
    for s in layout:
        i0, i1, j0, j1 = s.cells
        assert (c2m[i0:i1, j0:j1] == s.channel).all()  # every cell of the block reads that map
        assert s.channel == s.a * 5 + s.b
    grey = np.full((320, 320, 3), 128, np.uint8)
    alpha = 0.4
    out = window_on_image(grey, w, tint_alpha=alpha, labels=True)
    for s in layout:
        x1, y1 = int(s.box[2]) - 3, int(s.box[3]) - 3  # bottom-right of the block, away from the label
        expected = blend(grey[:1, :1], np.array([[map_color(s.channel)]], np.uint8), alpha)[0, 0]
        assert (out[y1, x1] == expected).all(), s
    e = bin_edges(5, 21)
    assert [s.cells[0] for s in layout[::5]] == e[:-1]


def test_paste_places_the_window_and_clips_at_the_border():
    w = _window(cy=2, cx=3)  # crosses the top-left border
    pasted, covered = paste_window(w, (320, 320)), window_covered(w, (320, 320))
    x0, y0, x1, y1 = (int(v) for v in w.box)
    assert x0 < 0 and y0 < 0
    assert not covered[y1:, :].any() and not covered[:, x1:].any() and covered[:y1, :x1].all()
    assert (pasted[~covered] == 0).all() and pasted[covered].min() > 0 and pasted.max() <= 1


def test_window_view_adds_the_source_maps_when_given():
    maps = random_maps(5, 40, 40)
    w = WindowGrid.from_maps(maps, 21, 8).window(20, 16)
    img = np.zeros((320, 320, 3), np.uint8)
    small, big = window_view(img, w), window_view(img, w, maps)
    assert big.shape[0] > small.shape[0] and small.dtype == np.uint8
    with pytest.raises(TypeError, match="WindowResult"):
        window_view(img, (20, 16))


def test_assembly_frames_fill_one_sub_window_at_a_time():
    k, m, cell_px = 5, 21, 10
    ideal = ideal_score_maps(aligned_scene(), k, m, 8)
    frames = assembly_frames(WindowGrid.from_maps(ideal.score_maps, m, 8), (12, 8), cell_px=cell_px)
    assert len(frames) == k * k + 2 and len({f.shape for f in frames}) == 1
    empty = [int((f == EMPTY).all(-1).sum()) for f in frames[1 : k * k + 1]]
    drops = -np.diff(empty)
    assert (drops > 0).all()  # each step fills more of the window
    e = bin_edges(k, m)
    sizes = [(e[a + 1] - e[a]) * (e[b + 1] - e[b]) for a in range(k) for b in range(k)][1:]
    # pixels filled at each step are proportional to the block's area in cells (minus its grid lines)
    ratio = drops / np.array(sizes)
    assert ratio.max() / ratio.min() < 1.3


def test_slide_frames_follow_the_row():
    grid = WindowGrid.from_maps(random_maps(5, 30, 30), 21, 8)
    frames = slide_frames(grid, 15, cols=[5, 6, 7])
    assert len(frames) == 3 and not np.array_equal(frames[0], frames[1])
    with pytest.raises(ValueError, match="row"):
        slide_frames(grid, 30)
    with pytest.raises(TypeError, match="WindowGrid"):
        slide_frames(random_maps(5, 30, 30), 15)
