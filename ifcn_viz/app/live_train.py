"""Live training for the Train tab: the ``tiny`` model on synthetic scenes, one step at a time, as a generator.

``ifcn_viz.train.loop.train`` runs a whole run to completion (checkpoints, logs, resume); the page instead needs
to show the loss and the emerging score maps *while* training, and to stop when the user presses Stop (Gradio
cancels a generator between two ``yield``s).  So this module drives the loop's own
pieces step by step -- ``build_train_model``, ``make_loader``, ``make_optimizer`` and ``train_step`` (256
windows per image, 1:1 positives:negatives; paper, Sec. 3.3) -- with the same schedule, on the CPU, in fp32,
without writing anything to disk.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

MAX_LIVE_ITERS = 2000


@dataclass
class TrainTick:
    step: int  # optimiser steps done
    iters: int  # steps requested
    losses: list[tuple[int, float, float, float]]  # (step, total, objectness, mask) so far
    model: nn.Module  # a snapshot in eval mode (safe to explore while training goes on)
    seconds: float


def live_config(iters: int, seed: int = 0, batch_size: int = 2, image_size: int = 160):
    """The :class:`~ifcn_viz.train.recipe.TrainConfig` of a live run (CPU, fp32, no evaluation, no files)."""
    from ifcn_viz.train.recipe import train_config

    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or not 1 <= iters <= MAX_LIVE_ITERS:
        raise ValueError(f"iterations must be an integer in 1..{MAX_LIVE_ITERS}, got {iters!r}")
    return train_config(
        "tiny",
        dataset="synthetic",
        iters=int(iters),
        batch_size=batch_size,
        image_size=image_size,
        warmup=min(50, max(1, int(iters) // 10)),
        seed=int(seed),
        device="cpu",
        amp="none",
        eval_images=0,
        progress=False,
        short_sides=(image_size,),
    )


def live_training(iters: int, seed: int = 0, every: int = 5) -> Iterator[TrainTick]:
    """Train a fresh ``tiny`` model for ``iters`` steps, yielding a :class:`TrainTick` every ``every`` steps
    (and after the last).  Deterministic for a given ``seed``; stopping early is just not asking for more."""
    import time

    from ifcn_viz.limits import check_seed

    seed = check_seed(seed)  # before anything is imported or built (seed -1 used to fail after 15 s and 1.5 GB)
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    from ifcn_viz.train.loop import build_train_model, make_loader, make_optimizer, train_step
    from ifcn_viz.train.targets import WindowRule

    cfg = live_config(iters, seed)
    model = build_train_model(cfg)
    optimizer = make_optimizer(cfg, model)
    rule = WindowRule(windows_per_image=cfg.windows_per_image)
    device = torch.device("cpu")
    losses: list[tuple[int, float, float, float]] = []
    t0 = time.perf_counter()
    model.train()
    data = iter(make_loader(cfg))
    for step in range(cfg.iters):
        # the same step as `ifcn-viz train` (a NaN/inf loss skips the update), on the CPU in fp32
        terms = train_step(model, model, optimizer, next(data), cfg, step, rule, device).terms
        losses.append((step + 1, *(float(t.detach()) for t in (terms.total, terms.objectness, terms.mask))))
        if (step + 1) % every == 0 or step + 1 == cfg.iters:
            snapshot = copy.deepcopy(model).eval()
            yield TrainTick(step + 1, cfg.iters, list(losses), snapshot, time.perf_counter() - t0)


def fixed_scene(seed: int = 424242, size: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """The fixed held-out scene whose maps the Train tab redraws as they emerge (seed outside training's)."""
    from ifcn_viz.data.synthetic import generate_scene

    return generate_scene(seed, size=(size, size))


def maps_of(model: nn.Module, image: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(score_maps (k*k, H', W'), objectness (H', W'), stride)`` of ``model`` on one uint8 image."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255.0)  # (1, 3, H, W)
    with torch.inference_mode():
        out = model.eval()(x)
    return out.score_maps[0].float(), out.objectness[0, 0].float(), int(out.stride)


def training_views(tick: TrainTick, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The score-map mosaic (probabilities) and the objectness overlay of ``tick.model`` on ``image``."""
    from ifcn_viz.inference.window import WindowGrid
    from ifcn_viz.viz.maps import objectness_overlay, score_map_mosaic

    maps, obj, stride = maps_of(tick.model, image)
    k = tick.model.config.k
    title = f"score maps after {tick.step} of {tick.iters} steps"
    mosaic = score_map_mosaic(maps, k, image, probs=True, stride=stride, title=title)
    grid = WindowGrid.from_maps(
        maps, tick.model.config.m, stride, obj, image.shape[:2], fill=tick.model.config.fill_logit
    )
    return mosaic, objectness_overlay(image, grid, top=3)
