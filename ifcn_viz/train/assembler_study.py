"""Q2, "why is the assembler parameter-free?", as an experiment a notebook can run in seconds on a CPU.

Three mask heads, trained with the training loop's own step (:func:`ifcn_viz.train.loop.train_step`) on the same
synthetic scenes, from the same weights, for the same number of steps:

* ``"paper"``: the parameter-free assembler (:mod:`ifcn_viz.model.assemble`);
* ``"onehot"``: the learned assembler (:mod:`ifcn_viz.model.learned_assembler`) started at the paper's wiring;
* ``"random"``: the learned assembler started at random.

``start="shipped"`` starts every head from the shipped ``tiny`` model's backbone, score-map branch and objectness
(its k^2 maps already mean "relative position (a, b)"), so a few dozen steps show whether a learned assembler keeps,
finds or loses the paper's wiring; ``start="scratch"`` starts from the recipe's random initialisation (the seed's).
Each result holds the loss curve, the held-out *window IoU* (the assembled mask of every positive window against
its ground truth, on scenes no run trains on), the parameter counts and the trained model.  The recall of the same
heads trained from scratch for longer, over three seeds, is the ablation (:mod:`ifcn_viz.train.ablation`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

INITS: dict[str, str] = {
    "paper": "parameter-free (the paper)",
    "onehot": "learned, one-hot init",
    "random": "learned, random init",
}
STARTS = ("shipped", "scratch")
EVAL_SEED = 777_000  # held-out scenes (EVAL_SEED, i): no training run draws them


@dataclass
class StudyRun:
    init: str  # a key of INITS
    start: str
    iters: int
    losses: list[tuple[int, float, float]] = field(default_factory=list)  # (step, objectness loss, mask loss)
    iou_before: float = float("nan")  # held-out window IoU at step 0
    iou_after: float = float("nan")
    mask_layer_parameters: int = 0  # the score conv (+ the learned assembler)
    assembler_parameters: int = 0
    seconds: float = 0.0
    model: nn.Module | None = None

    @property
    def label(self) -> str:
        return INITS[self.init]


def study_config(iters: int, seed: int = 0, image_size: int = 256, batch_size: int = 2, init: str = "paper"):
    """The run's :class:`~ifcn_viz.train.recipe.TrainConfig`: the ``tiny`` recipe on synthetic scenes at one scale
    (the middle of the recipe's), CPU, fp32, each training scene seen once."""
    from ifcn_viz.train.recipe import train_config

    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or not 1 <= iters <= 2000:
        raise ValueError(f"iters must be an integer in 1..2000, got {iters!r}")
    head = {"head": "ifcn"} if init == "paper" else {"head": "learned", "assembler_init": init}
    return train_config("tiny", dataset="synthetic", iters=int(iters), batch_size=batch_size, image_size=image_size,
                        warmup=max(1, int(iters) // 10), seed=seed, device="cpu", amp="none", eval_images=0,
                        progress=False, short_sides=(image_size,), train_scenes=int(iters) * batch_size,
                        **head)  # fmt: skip


def start_model(init: str, start: str = "shipped", seed: int = 0) -> nn.Module:
    """The model a run starts from (see the module doc)."""
    from ifcn_viz.train.loop import build_train_model

    if start not in STARTS:
        raise ValueError(f"start must be one of {', '.join(STARTS)}, got {start!r}")
    if start == "scratch":
        return build_train_model(study_config(1, seed, init=init))
    from ifcn_viz.checkpoints import load_checkpoint
    from ifcn_viz.model.learned_assembler import from_parameter_free

    base, _ = load_checkpoint("shipped")
    if init == "paper":
        return base
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return from_parameter_free(base, init)


def held_out_scenes(n: int, size: int = 256) -> list[tuple[np.ndarray, np.ndarray]]:
    from ifcn_viz.data.synthetic import generate_scene

    return [generate_scene((EVAL_SEED, i), size=(size, size)) for i in range(n)]


@torch.no_grad()
def window_iou(model: nn.Module, scenes: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean IoU (p > 0.5) of the assembled mask of every positive window with its ground-truth window mask."""
    from ifcn_viz.model.assemble import assemble_at
    from ifcn_viz.train.targets import WindowRule, sample_windows

    was = model.training
    model.eval()
    ious = []
    for i, (image, masks) in enumerate(scenes):
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255.0)
        out = model(x)
        gen = torch.Generator().manual_seed(EVAL_SEED + i)
        mk = torch.from_numpy(np.asarray(masks, dtype=bool))
        tg = sample_windows([mk], tuple(out.score_maps.shape[-2:]), model.config.m, model.stride, WindowRule(), gen)
        if len(tg.pos_centers) == 0:
            continue
        pred = assemble_at(out.score_maps, tg.pos_centers, model.config.m, model.config.fill_logit) > 0
        gt = tg.pos_masks > 0.5
        inter, union = (pred & gt).flatten(1).sum(1), (pred | gt).flatten(1).sum(1)
        ious.append((inter.float() / union.clamp(min=1).float()).numpy())
    model.train(was)
    return float(np.concatenate(ious).mean()) if ious else float("nan")


def train_head(
    init: str,
    iters: int,
    start: str = "shipped",
    seed: int = 0,
    eval_scenes: list | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> StudyRun:
    """Train one head for ``iters`` steps with the loop's step; window IoU before and after on ``eval_scenes``.

    ``on_step(step, iters, mask_loss)`` is called after every step (a notebook's progress bar)."""
    from ifcn_viz.train.ablation import mask_head_parameters
    from ifcn_viz.train.loop import make_loader, make_optimizer, train_step
    from ifcn_viz.train.targets import WindowRule

    cfg = study_config(iters, seed, init=init)
    model = start_model(init, start, seed)
    run = StudyRun(init, start, int(iters))
    run.mask_layer_parameters = mask_head_parameters(model)
    asm = getattr(model.instance, "assembler", None)
    run.assembler_parameters = sum(p.numel() for p in asm.parameters()) if asm is not None else 0
    if eval_scenes:
        run.iou_before = window_iou(model, eval_scenes)
    optimizer = make_optimizer(cfg, model)
    rule = WindowRule(windows_per_image=cfg.windows_per_image)
    t0 = time.perf_counter()
    model.train()
    data = iter(make_loader(cfg))
    for step in range(cfg.iters):
        terms = train_step(model, model, optimizer, next(data), cfg, step, rule, torch.device("cpu")).terms
        run.losses.append((step + 1, float(terms.objectness), float(terms.mask)))
        if on_step is not None:
            on_step(step + 1, cfg.iters, float(terms.mask))
    run.seconds = time.perf_counter() - t0
    model.eval()
    if eval_scenes:
        run.iou_after = window_iou(model, eval_scenes)
    run.model = copy.deepcopy(model)
    return run


def onehot_agreement(model: nn.Module) -> float:
    """For a learned-assembler model: the fraction of window cells whose largest weight is on the paper's map."""
    from ifcn_viz.model.assemble import cell_to_map_index

    w = model.instance.assembler.weight_grid()  # (k*k, m, m)
    k, m = model.instance.assembler.k, model.instance.assembler.m
    return float((w.argmax(0) == cell_to_map_index(k, m)).float().mean())


__all__ = ["INITS", "STARTS", "StudyRun", "held_out_scenes", "onehot_agreement", "start_model", "study_config",
           "train_head", "window_iou"]  # fmt: skip
