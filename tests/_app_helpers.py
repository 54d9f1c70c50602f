"""Shared pieces of the app tests: a small random model and a free port (the bad-input corpus is in corpus.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import torch
from corpus import Case, bad_input_corpus, png_bytes, png_header_only, sample_image  # noqa: F401 (re-exported)

from ifcn_viz.checkpoints import save_checkpoint
from ifcn_viz.config import ModelConfig


def small_model(seed: int = 0, k: int = 5):
    """A random-init tiny InstanceFCN (narrow, fast on CPU); deterministic for ``seed``."""
    from ifcn_viz.model.instance_fcn import InstanceFCN

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = InstanceFCN(ModelConfig(backbone="tiny", k=k, m=21, head_channels=32, backbone_width=16))
    return model.eval()


def small_checkpoint(directory: Path, seed: int = 0, name: str = "small") -> Path:
    return save_checkpoint(small_model(seed), directory / name, {"name": f"test model {seed}", "preset": "tiny"})


def small_predictor(seed: int = 0):
    from ifcn_viz.config import InferConfig
    from ifcn_viz.inference.predictor import Predictor

    return Predictor(small_model(seed), InferConfig(scales=(96, 160), pre_nms_top_k=200))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def paint(page, box: dict, x0: float, x1: float, y0: float, y1: float, step: float = 16.0, steps: int = 2) -> None:
    """One zigzag brush stroke filling [x0, x1] x [y0, y1] (fractions of ``box``): a single stroke is a single
    change of the editor (each change sends the layer to the server)."""
    left, right = box["x"] + x0 * box["width"], box["x"] + x1 * box["width"]
    y, end, at_left = box["y"] + y0 * box["height"], box["y"] + y1 * box["height"], True
    page.mouse.move(left, y)
    page.mouse.down()
    while y <= end:
        page.mouse.move(right if at_left else left, y, steps=steps)
        at_left = not at_left
        y += step
        page.mouse.move(left if at_left else right, y, steps=1)
    page.mouse.up()
