"""Shared builders for the viz tests: aligned scenes, windows and proposals constructed directly."""

from __future__ import annotations

import numpy as np
import torch

from ifcn_viz.inference.types import NMSStep, Proposals


def aligned_scene(h: int = 256, w: int = 256) -> np.ndarray:
    """Instances whose borders lie on the 8-px grid and that fit in a 168-px window: two touching rectangles
    (same colour in the image), an L-shape and a small square."""
    masks = np.zeros((4, h, w), dtype=bool)
    masks[0, 48:144, 32:96] = True  # 12 x 8 cells
    masks[1, 48:144, 96:160] = True  # touches instance 0 along x = 96
    masks[2, 168:232, 24:120] = True  # an L: a bar ...
    masks[2, 152:168, 24:56] = True  # ... and its upright (clear of instance 0, which ends at y = 144)
    masks[3, 176:216, 176:224] = True
    return masks


def scene_image(masks: np.ndarray) -> np.ndarray:
    img = np.full((*masks.shape[1:], 3), 200, dtype=np.uint8)
    img[masks.any(0)] = (70, 70, 150)
    return img


def make_proposals(h: int = 64, w: int = 64) -> Proposals:
    masks = np.zeros((2, h, w), dtype=bool)
    masks[0, 10:30, 10:30] = True
    masks[1, 20:50, 25:55] = True
    trace = [
        NMSStep(0, True, None, None, (10.0, 10.0, 30.0, 30.0), 0.9),
        NMSStep(1, False, 0, 0.85, (11.0, 10.0, 31.0, 30.0), 0.8),
        NMSStep(2, True, None, None, (25.0, 20.0, 55.0, 50.0), 0.7),
    ]
    return Proposals(
        masks=masks,
        boxes=np.array([[10, 10, 30, 30], [25, 20, 55, 50]], np.float32),
        scores=np.array([0.9, 0.7], np.float32),
        scale_index=np.zeros(2, np.int64),
        centers=np.array([[2, 2], [4, 5]]),
        window_boxes=np.array([[0, 0, 40, 40], [10, 10, 60, 60]], np.float32),
        nms_trace=trace,
    )


def random_maps(k: int = 5, h: int = 24, w: int = 30, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k * k, h, w, generator=g) * 4
