import numpy as np
import pytest

from ifcn_viz.viz import training_targets_view
from ifcn_viz.viz.palette import NEGATIVE_COLOR, POSITIVE_COLOR


def test_targets_view_marks_windows_where_they_are():
    img = np.zeros((256, 256, 3), np.uint8)
    pos = np.array([[16, 16]])  # window cells 6..26 -> pixels 48..215
    neg = np.array([[3, 28]])
    gt = np.zeros((1, 21, 21), np.float32)
    gt[0, 5:15, 5:15] = 1
    out = training_targets_view(img, pos, neg, stride=8, m=21, gt_masks=gt)
    x_off = 6  # the view's padding; the image sits below a title strip of unknown height
    rows = np.nonzero((out[:, x_off + 48] == POSITIVE_COLOR).all(-1))[0]
    assert rows.size and rows.max() - rows.min() == 215 - 48  # the window's left edge spans its 21 cells
    y_off = rows.min() - 48
    assert (out[y_off + 3 * 8 + 4, x_off + 28 * 8 + 4] == NEGATIVE_COLOR).all()  # the cross at the negative
    assert (out[y_off + 100, x_off + 100] == 0).all()  # inside the window: the image


def test_targets_view_checks_mask_count():
    with pytest.raises(ValueError, match="gt_masks"):
        training_targets_view(
            np.zeros((64, 64, 3), np.uint8), np.array([[3, 3]]), np.zeros((0, 2)), 8, 21, np.zeros((2, 21, 21))
        )
