"""Training settings (one frozen dataclass) and the named recipes per preset.

* ``paper`` / ``resnet50``: the paper's SGD (Sec. 3.3): momentum 0.9, weight decay 5e-4, lr 1e-3 for the first
  80 % of the iterations (32k of 40k) then 1e-4; one image per GPU (8 GPUs in the paper); shorter side drawn
  from 600 * 1.5^{-4..1} (uncertain).  ``--iters`` rescales the 32k/8k split proportionally.
* ``tiny`` (ours): AdamW, lr 3e-3 with a linear warm-up then cosine decay to 1 % -- converges in minutes on a
  CPU where plain SGD from a random initialisation does not.

:func:`train_config` is the one place a :class:`TrainConfig` is built -- by the CLI, the ablation, the app's live
training and the tests: the preset's recipe, then (optionally) the shipped model's recorded recipe, then the
caller's explicit settings.  A preset without an entry in :data:`RECIPES` is an error that names the entry to add.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ifcn_viz.config import AMP, ASSEMBLER_INITS, DATASETS, HEADS, PRESETS, SHIPPED_WHERE
from ifcn_viz.data.transforms import PAPER_SHORT_SIDES, TINY_SHORT_SIDES


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "tiny"
    dataset: str = "synthetic"  # synthetic | coco | voc
    out: str = "runs/tiny"
    iters: int = 3000
    batch_size: int = 8  # images per process (per GPU)
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 3e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine (warm-up + cosine) | step (paper: x0.1 at step_at)
    warmup: int = 100
    step_at: float = 0.8  # (paper) 32k of 40k
    grad_clip: float = 10.0  # (ours) max gradient norm; 0 disables
    amp: str = "auto"  # config.AMP; auto: bf16 where native, else fp32 (fp16 on a GPU without bf16)
    device: str = "auto"
    seed: int = 0
    k: int | None = None  # override the preset's k (ablation)
    head: str = "ifcn"  # ifcn | fc (the DeepMask-style baseline of the ablation) | learned (a learned assembler)
    assembler_init: str = "onehot"  # head="learned": onehot (= the paper's assembler at step 0) | random
    backbone_weights: str | None = None
    short_sides: tuple[int, ...] = TINY_SHORT_SIDES
    # data
    image_size: int = 256  # synthetic scenes' side
    synthetic_style: str = "train"  # synthetic scenes' SceneStyle: train | emoji | emoji:F (ifcn_viz.data.synthetic)
    train_scenes: int = 2000  # synthetic scenes, generated on first use and cached; scene i has seed (seed, i)
    coco_ann: str | None = None
    image_dir: str | None = None
    voc_root: str | None = None
    voc_split: str = "train"
    num_workers: int = 0
    # loss / sampling (see ifcn_viz.train.targets and .loss)
    objectness_weight: float = 1.0
    mask_weight: float = 1.0
    windows_per_image: int = 256
    # bookkeeping
    ckpt_every: int = 500  # also at least MIN_CKPTS_PER_RUN times per run (ifcn_viz.limits.checkpoint_interval)
    ckpt_minutes: float = 5.0  # ... and at least every this many minutes of training
    eval_every: int = 0  # 0: only at the end (when eval_images > 0)
    eval_images: int = 50
    eval_seed: int = 1_000_000  # held-out synthetic scenes: seeds disjoint from training (seed, i)
    val_ann: str | None = None  # the user's own COCO-format validation set (instead of held-out synthetic scenes)
    val_dir: str | None = None
    log_every: int = 10
    max_bad_steps: int = 20
    tensorboard: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.iters < 1 or self.batch_size < 1:
            raise ValueError(f"iters and batch_size must be >= 1, got {self.iters}, {self.batch_size}")
        for name in ("ckpt_every", "log_every", "max_bad_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "eval_images", "num_workers", "warmup"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0 or not self.ckpt_minutes > 0:
            raise ValueError(f"lr and ckpt_minutes must be > 0, got {self.lr}, {self.ckpt_minutes}")
        if bool(self.val_ann) != bool(self.val_dir):
            raise ValueError("--val-ann and --val-dir go together: a COCO instances JSON and its image folder")
        if self.optimizer not in ("adamw", "sgd") or self.schedule not in ("cosine", "step"):
            raise ValueError(
                f"optimizer must be adamw|sgd and schedule cosine|step, got {self.optimizer}, {self.schedule}"
            )
        if self.amp not in AMP:
            raise ValueError(f"amp must be {', '.join(AMP[:-1])} or {AMP[-1]}, got {self.amp!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.assembler_init not in ASSEMBLER_INITS:
            raise ValueError(f"assembler_init must be one of {', '.join(ASSEMBLER_INITS)}, got {self.assembler_init!r}")
        if self.dataset == "coco" and not (self.coco_ann and self.image_dir):
            raise ValueError("--dataset coco needs --coco-ann FILE.json and --image-dir DIR")
        if self.dataset == "voc" and not self.voc_root:
            raise ValueError("--dataset voc needs --voc-root DIR (the VOC2012 folder with JPEGImages/)")
        if self.synthetic_style == "independent":
            raise ValueError("the independent yardstick's scene style is never trained on")
        from ifcn_viz.data.synthetic import get_style

        get_style(self.synthetic_style)  # an unknown name raises, naming the choices

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["short_sides"] = list(self.short_sides)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["short_sides"] = tuple(d.get("short_sides", TINY_SHORT_SIDES))
        return cls(**d)


# Recipe defaults per preset; the CLI's explicit flags override them.
RECIPES: dict[str, dict[str, Any]] = {
    "tiny": dict(optimizer="adamw", lr=3e-3, weight_decay=1e-4, schedule="cosine", batch_size=8, iters=3000,
                 short_sides=TINY_SHORT_SIDES, train_scenes=2000),
    "small": dict(optimizer="adamw", lr=2e-3, weight_decay=1e-4, schedule="cosine", batch_size=8, iters=3000,
                  short_sides=TINY_SHORT_SIDES, train_scenes=2000),
    "resnet18": dict(optimizer="adamw", lr=3e-3, weight_decay=1e-4, schedule="cosine", batch_size=8, iters=3000,
                     short_sides=TINY_SHORT_SIDES, train_scenes=2000),  # the tiny recipe: the scale study compares
    "paper": dict(optimizer="sgd", lr=1e-3, momentum=0.9, weight_decay=5e-4, schedule="step", step_at=0.8,
                  warmup=0, batch_size=1, iters=40_000, short_sides=PAPER_SHORT_SIDES, grad_clip=0.0),
    "resnet50": dict(optimizer="sgd", lr=1e-3, momentum=0.9, weight_decay=5e-4, schedule="step", step_at=0.8,
                     warmup=0, batch_size=1, iters=40_000, short_sides=PAPER_SHORT_SIDES, grad_clip=0.0),
}  # fmt: skip

# The recorded recipes of the shipped models, and the name each is installed under in ifcn_viz/weights/
# (`--checkpoint NAME`).  Two recipes per model: ``gpu`` (`ifcn-viz train --preset tiny|small --shipped gpu`: what
# the shipped weights were trained with, on one GPU) and ``cpu`` (`--shipped` or `--shipped cpu`: the fallback that
# fits 2 CPU cores in about 20 minutes).  docs/TRAINING.md has both commands and their yardsticks.
SHIPPED_RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        "tiny": dict(preset="tiny", dataset="synthetic", seed=0, iters=3000, batch_size=8, warmup=100,
                     eval_images=50, ckpt_every=300, eval_every=0),
        "small": dict(preset="small", dataset="synthetic", seed=0, iters=1500, batch_size=8, warmup=100,
                      eval_images=50, ckpt_every=150, eval_every=0),
    },
    "gpu": {
        "tiny": dict(preset="tiny", dataset="synthetic", seed=0, iters=2556, batch_size=64, lr=3e-3,
                     warmup=200, train_scenes=20_000, synthetic_style="emoji", eval_images=50, eval_every=0,
                     ckpt_minutes=2.0),
        "small": dict(preset="small", dataset="synthetic", seed=0, iters=1595, batch_size=64, lr=3e-3,
                      warmup=200, train_scenes=20_000, synthetic_style="emoji", eval_images=50, eval_every=0,
                      ckpt_minutes=2.0),
    },
}  # fmt: skip
SHIPPED_RECIPE = SHIPPED_RECIPES["cpu"]["tiny"]  # the CPU fallback of the default model
SHIPPED_NAMES: dict[str, str] = {"tiny": "shipped", "small": "small"}


def train_config(preset: str = "tiny", *, shipped: bool | str = False, **settings: Any) -> TrainConfig:
    """The :class:`TrainConfig` of ``preset``: its recipe (:data:`RECIPES`; a preset without one is an error),
    then with ``shipped`` (``"gpu"``, ``"cpu"``; ``True`` is ``"cpu"``) the shipped model's recorded recipe
    (:data:`SHIPPED_RECIPES`), then ``settings`` -- the
    caller's explicit choices, where ``None`` means "not given".  ``out`` defaults to ``runs/<preset>``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown training settings {unknown}; known: {sorted(known)}")
    given = {k: v for k, v in settings.items() if v is not None}
    if preset not in RECIPES:
        raise ValueError(
            f"preset {preset!r} has no training recipe: add RECIPES[{preset!r}] in ifcn_viz/train/recipe.py "
            "(e.g. a copy of RECIPES['paper'] for the paper's SGD, or of RECIPES['tiny'] for AdamW)"
        )
    values: dict[str, Any] = {"preset": preset, "out": f"runs/{preset}", **RECIPES[preset]}
    if shipped:
        where = "cpu" if shipped is True else shipped
        recipes = SHIPPED_RECIPES.get(where, {})
        if preset not in recipes or given.get("dataset", "synthetic") != "synthetic":
            raise ValueError(
                f"--shipped {where} is the recorded recipe of a shipped model: --preset "
                f"{' or '.join(SHIPPED_RECIPES['cpu'])} with --dataset synthetic, on {' or '.join(SHIPPED_WHERE)}"
            )
        values.update(recipes[preset])
    values.update(given)
    if "short_sides" in values:
        values["short_sides"] = tuple(values["short_sides"])
    return TrainConfig(**values)


def lr_at(cfg: TrainConfig, step: int) -> float:
    """The learning rate at ``step`` (0-based): a pure function, so a resumed run follows the same schedule."""
    if cfg.schedule == "step":
        factor = 1.0 if step < int(cfg.step_at * cfg.iters) else 0.1
    else:
        progress = min(1.0, step / max(1, cfg.iters - 1))
        factor = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.warmup > 0 and step < cfg.warmup:
        factor *= (step + 1) / cfg.warmup
    return cfg.lr * factor
