import numpy as np
import pytest
from _viz_helpers import make_proposals

from ifcn_viz.inference.types import Proposals
from ifcn_viz.viz import nms_step_frames, nms_steps_view, proposals_view, rank_color
from ifcn_viz.viz.palette import blend
from ifcn_viz.viz.proposals import SUPPRESSED


def test_proposals_are_filled_and_outlined_in_rank_colour_best_on_top():
    p = make_proposals()
    img = np.full((64, 64, 3), 100, np.uint8)
    out = proposals_view(img, p, top_n=2, alpha=0.5)
    col0, col1 = (np.array([rank_color(r)], np.uint8) for r in (0, 1))
    assert (out[27, 15] == blend(img[:1, :1], col0[None], 0.5)[0, 0]).all()  # interior of #1 (label-free)
    assert (out[34, 45] == blend(img[:1, :1], col1[None], 0.5)[0, 0]).all()  # interior of #2 (above the labels)
    assert (out[29, 15] == col0[0]).all()  # bottom edge of #1, drawn over #2 (best on top)
    assert (out[60, 5] == 100).all()  # background untouched
    only_best = proposals_view(img, p, top_n=1, alpha=0.5)
    assert (only_best[45, 45] == 100).all()


def test_proposals_view_rejects_a_different_image_size():
    with pytest.raises(ValueError, match="not the same image"):
        proposals_view(np.zeros((32, 32, 3), np.uint8), make_proposals(), 2)


def test_nms_steps_show_suppressed_only_once_reached():
    p = make_proposals()
    img = np.zeros((64, 64, 3), np.uint8)
    frames = nms_step_frames(img, p, nms_iou=0.8)
    assert len(frames) == 3 and len({f.shape for f in frames}) == 1
    grey = [int((f == SUPPRESSED).all(-1).sum()) for f in frames]
    assert grey[1] > grey[0] + 40  # candidate 1 is suppressed at step 1: its grey box appears
    last = nms_steps_view(img, p, nms_iou=0.8)
    assert np.array_equal(last, frames[-1][: last.shape[0], : last.shape[1]])  # frames are padded to one size
    with pytest.raises(ValueError, match="step"):
        nms_steps_view(img, p, step=3)
    empty = Proposals(p.masks, p.boxes, p.scores, p.scale_index, p.centers, p.window_boxes, [])
    with pytest.raises(ValueError, match="nms_trace"):
        nms_steps_view(img, empty)


def test_scores_rank_visibly_near_one_and_legend_and_window_frames_are_drawn():
    from ifcn_viz.viz.proposals import score_text

    assert score_text(0.99827) != score_text(0.99781)  # both read "1.00" at two digits
    assert score_text(0.5) == "0.5000 (+0.00)"
    p = make_proposals()
    img = np.full((64, 64, 3), 100, np.uint8)
    plain = proposals_view(img, p, top_n=2)
    framed = proposals_view(img, p, top_n=2, windows=True, legend=True)
    assert framed.shape[0] > plain.shape[0] and framed.shape[1] == plain.shape[1]  # the legend strip below
    assert (framed[0, 10] == rank_color(1)).all() or (framed[10, 10] == rank_color(1)).all()  # window 2's frame
