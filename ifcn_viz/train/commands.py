"""`ifcn-viz train ...` and `ifcn-viz ablation ...` (see docs/TRAINING.md and docs/ABLATION.md)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from ifcn_viz import cliargs as T
from ifcn_viz.config import AMP, ASSEMBLER_INITS, DATASETS, HEADS, PRESETS, SHIPPED_WHERE


def _config_from_args(args: argparse.Namespace):
    from ifcn_viz.train.recipe import train_config

    explicit = {
        "dataset": args.dataset, "out": args.out, "iters": args.iters, "batch_size": args.batch_size, "lr": args.lr,
        "amp": args.amp, "device": args.device, "seed": args.seed, "eval_every": args.eval_every,
        "eval_images": args.eval_images, "k": args.k, "head": args.head,
        "assembler_init": args.assembler_init, "coco_ann": args.coco_ann,
        "image_dir": args.image_dir, "voc_root": args.voc_root, "voc_split": args.voc_split,
        "ckpt_every": args.ckpt_every, "max_bad_steps": args.max_bad_steps, "num_workers": args.num_workers,
        "image_size": args.image_size, "synthetic_style": args.scene_style,
        "backbone_weights": args.backbone_weights, "log_every": args.log_every,
        "ckpt_minutes": args.ckpt_minutes, "val_ann": args.val_ann, "val_dir": args.val_dir,
        "tensorboard": bool(args.tensorboard), "progress": not args.no_progress, "train_scenes": args.train_scenes,
    }  # fmt: skip
    explicit = {k: str(v) if hasattr(v, "__fspath__") else v for k, v in explicit.items()}
    return train_config(args.preset, shipped=args.shipped, **explicit)


# Data paths are checked when the command runs (still before any model is built) rather than while parsing, so
# that a command line can be parsed on a machine without the data (notebook 07 checks the lines it builds).
_DATA_PATHS = {"coco_ann": T.json_file, "image_dir": T.existing_dir, "voc_root": T.existing_dir,
               "val_ann": T.json_file, "val_dir": T.existing_dir}  # fmt: skip


def _check_data_paths(args: argparse.Namespace) -> None:
    for dest, check in _DATA_PATHS.items():
        value = getattr(args, dest, None)
        if value is not None:
            try:
                path = check(value)
            except argparse.ArgumentTypeError as err:
                raise ValueError(f"argument --{dest.replace('_', '-')}: {err}") from None
            if check is T.json_file and path.stat().st_size <= 64 * 1024**2:  # small enough to read twice
                from ifcn_viz.evaluate import read_coco_json

                read_coco_json(path)  # a broken or non-COCO JSON: one line naming the file


def _train(args: argparse.Namespace) -> int:
    import torch

    from ifcn_viz.train.loop import train

    _check_data_paths(args)  # before any model is built; a ValueError becomes one line (ifcn_viz.cli)
    for flag, env in (("emoji_font", "IFCN_EMOJI_FONT"), ("symbol_font", "IFCN_SYMBOL_FONT")):
        value = getattr(args, flag, None)
        if value:  # the environment reaches the scene generator's worker processes too
            if not Path(value).is_file():
                raise ValueError(f"argument --{flag.replace('_', '-')}: {value} is not a file")
            os.environ[env] = str(Path(value).resolve())
    cfg = _config_from_args(args)
    if args.resume and not (Path(cfg.out) / "train_state.pt").is_file():
        raise ValueError(
            f"--resume: no complete checkpoint in {cfg.out} (train_state.pt not found; was the run started with "
            "this --out?)"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "ifcn-viz " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        result = train(cfg, command=command, resume=args.resume)
    except (FloatingPointError, RuntimeError) as err:  # a diverged run, a missing optional package
        if isinstance(err, torch.OutOfMemoryError):
            raise
        print(f"ifcn-viz train: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    if result.checkpoint is not None:
        print(f"trained {result.step} steps in {result.wall_time_s:.0f} s -> {result.checkpoint}")
        for key, val in result.metrics.items():
            print(f"  {key}: {val:.4f}")
        if args.shipped:
            from ifcn_viz.train.recipe import SHIPPED_NAMES
            from ifcn_viz.train.shipped import install_shipped
            from ifcn_viz.train.yardsticks import record_in_card, table, yardsticks

            name = SHIPPED_NAMES[args.preset]
            print(f"installed the shipped model {name!r}: {install_shipped(result.checkpoint, name)}")
            print("measuring it on the yardsticks (own validation, independent synthetic, real photographs) ...")
            measured = yardsticks(name, device=next(result.model.parameters()).device.type)
            record_in_card(name, measured)
            print(table({name: measured}))
    return 0


def _ablation(args: argparse.Namespace) -> int:
    from ifcn_viz.train.ablation import run_ablation

    run_ablation(args.out, args.runs, iters=args.iters, seeds=tuple(args.seeds), eval_images=args.eval_images,
                 train_scenes=args.train_scenes)  # fmt: skip
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train InstanceFCN (CPU, GPU, or torchrun for several)",
        description="Train InstanceFCN. A checkpoint is written every --ckpt-every steps, at least 10 times per run "
        "and at least every --ckpt-minutes, each one complete before it replaces the last; --resume continues "
        "from the newest (and a larger --iters extends a finished run).",
    )
    p.add_argument("--preset", choices=list(PRESETS), default="tiny", help="model + recipe")
    p.add_argument("--dataset", choices=DATASETS, default="synthetic", help="training data")
    p.add_argument("--coco-ann", help="COCO instances JSON (with --dataset coco)")
    p.add_argument("--image-dir", help="COCO image folder (with --dataset coco)")
    p.add_argument("--voc-root", help="the VOC2012 folder (with --dataset voc)")
    p.add_argument("--voc-split", choices=("train", "val", "trainval"), help="ImageSets/Segmentation split "
                   "(default train)")  # fmt: skip
    val_help = "your COCO-format validation JSON: AR on it every --eval-every steps and at the end (at most "
    p.add_argument("--val-ann", help=val_help + "--eval-images images), not synthetic scenes")
    p.add_argument("--val-dir", help="the image folder of --val-ann")
    p.add_argument("--iters", type=T.positive_int, help="training iterations (default: the preset's recipe)")
    p.add_argument("--out", type=T.writable_dir, help="run folder: checkpoint, train_state.pt, metrics.jsonl "
                   "(default runs/<preset>)")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--shipped", nargs="?", const="cpu", choices=SHIPPED_WHERE,
                   help="a shipped model's recorded recipe (--preset tiny: 'shipped', --preset small: 'small'): gpu "
                   "(what the shipped weights were trained with) or cpu (the default: the 2-core fallback); "
                   "installs the result in ifcn_viz/weights/")  # fmt: skip
    p.add_argument("--batch-size", type=T.positive_int, help="images per process (default: the preset's recipe)")
    p.add_argument("--lr", type=T.positive_float, help="base learning rate (default: the preset's recipe)")
    p.add_argument("--amp", choices=AMP, help="mixed precision (default auto)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    p.add_argument("--seed", type=T.nonneg_int, help="seed of the model init, data order, augmentation and sampling "
                   "(default 0)")  # fmt: skip
    p.add_argument("--eval-every", type=T.nonneg_int, help="AR evaluation every N steps and at the end (default 0: "
                   "only at the end)")  # fmt: skip
    p.add_argument("--eval-images", type=T.nonneg_int, help="images for AR (0 disables; default 50)")
    p.add_argument("--ckpt-every", type=T.positive_int, help="checkpoint every N steps (default 500; at most a "
                   "tenth of --iters)")  # fmt: skip
    p.add_argument("--ckpt-minutes", type=T.positive_float, help="checkpoint at least every N minutes (default 5)")
    p.add_argument("--k", type=T.int_range(1, 15), help="override the preset's k (the ablation; default 5)")
    p.add_argument("--head", choices=list(HEADS), help="ifcn (default), the DeepMask-style fc baseline, or learned "
                   "(a learned assembler)")  # fmt: skip
    p.add_argument("--assembler-init", choices=list(ASSEMBLER_INITS), help="--head learned: start at the paper's "
                   "one-hot assembler (default) or at random")  # fmt: skip
    p.add_argument(
        "--train-scenes",
        type=T.int_range(1, 1_000_000),
        help="synthetic training scenes (default: the "
        "recipe's; up to 20,000 are generated once, before the first step, and kept in memory)",
    )
    p.add_argument("--image-size", type=T.int_range(32, 4096), help="side of the synthetic scenes (default 256)")
    p.add_argument("--scene-style", help="synthetic scenes: train (default: geometric shapes), emoji (half of the "
                   "groups copies of one emoji: people, animals, food, objects; needs fonts-noto-color-emoji and/or "
                   "fonts-symbola, else falls back to the shapes) or emoji:F for a share F of the groups")  # fmt: skip
    p.add_argument("--emoji-font", help="Noto Color Emoji font file (sets IFCN_EMOJI_FONT; default: the usual paths)")
    p.add_argument("--symbol-font", help="Symbola font file (sets IFCN_SYMBOL_FONT; default: the usual paths)")
    p.add_argument("--backbone-weights", help="imagenet or a local torchvision .pth/.safetensors for vgg16/resnet "
                   "(default: random)")  # fmt: skip
    p.add_argument("--max-bad-steps", type=T.positive_int, help="stop after this many non-finite losses (default 20)")
    p.add_argument("--num-workers", type=T.nonneg_int, help="DataLoader worker processes (default 0; unused on a GPU "
                   "with cached synthetic scenes: their batches are made on the GPU)")  # fmt: skip
    p.add_argument("--threads", type=T.threads, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--log-every", type=T.positive_int, help="log metrics every N steps (default 10)")
    p.add_argument("--tensorboard", action="store_true", help="also log to TensorBoard (pip install tensorboard)")
    p.add_argument("--no-progress", action="store_true", help="plain log lines instead of a progress bar (also "
                   "when stdout is not a terminal)")  # fmt: skip
    p.set_defaults(func=_train)

    a = subparsers.add_parser("ablation", help="train k = 1, 3, 5, 7, an fc head and a learned assembler on the same "
                              "budget, several seeds; AR table")  # fmt: skip
    a.add_argument("--out", type=T.writable_file, default="docs/ABLATION.md", help="the Markdown table to write")
    a.add_argument("--runs", type=T.writable_dir, default="runs/ablation", help="folder for the runs")
    a.add_argument("--iters", type=T.positive_int, default=300, help="iterations of 4 images per variant")
    a.add_argument("--seeds", type=T.nonneg_int, nargs="+", default=[0, 1, 2], help="seeds each variant is trained "
                   "with (default 0 1 2; the table gives mean +- std)")  # fmt: skip
    a.add_argument("--eval-images", type=T.nonneg_int, default=20, help="held-out synthetic images for AR")
    a.add_argument("--train-scenes", type=T.positive_int, help="synthetic training scenes per seed (default: the "
                   "recipe's 2000)")  # fmt: skip
    a.set_defaults(func=_ablation)
