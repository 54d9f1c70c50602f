"""`ifcn-viz train ...` and `ifcn-viz ablation ...` (see docs/TRAINING.md and docs/ABLATION.md)."""

from __future__ import annotations

import argparse
import shlex
import sys

from ifcn_viz.config import HEADS, PRESETS

DATASETS = ("synthetic", "coco", "voc")  # = ifcn_viz.train.recipe.DATASETS (a test keeps them equal; no torch here)
AMP = ("auto", "bf16", "fp16", "none")


def _config_from_args(args: argparse.Namespace):
    from ifcn_viz.train.recipe import train_config

    explicit = {
        "dataset": args.dataset, "out": args.out, "iters": args.iters, "batch_size": args.batch_size, "lr": args.lr,
        "amp": args.amp, "device": args.device, "seed": args.seed, "eval_every": args.eval_every,
        "eval_images": args.eval_images, "k": args.k, "head": args.head, "coco_ann": args.coco_ann,
        "image_dir": args.image_dir, "voc_root": args.voc_root, "voc_split": args.voc_split,
        "ckpt_every": args.ckpt_every, "max_bad_steps": args.max_bad_steps, "num_workers": args.num_workers,
        "image_size": args.image_size, "backbone_weights": args.backbone_weights, "log_every": args.log_every,
        "tensorboard": bool(args.tensorboard), "progress": not args.no_progress,
    }  # fmt: skip
    return train_config(args.preset, shipped=args.shipped, **explicit)


def _train(args: argparse.Namespace) -> int:
    import torch

    from ifcn_viz.train.loop import train

    try:
        cfg = _config_from_args(args)
    except ValueError as err:
        print(f"ifcn-viz train: {err}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "ifcn-viz " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        result = train(cfg, command=command, resume=args.resume)
    except (ValueError, FloatingPointError, RuntimeError) as err:
        print(f"ifcn-viz train: {err}", file=sys.stderr)
        return 1
    if result.checkpoint is not None:
        print(f"trained {result.step} steps in {result.wall_time_s:.0f} s -> {result.checkpoint}")
        for key, val in result.metrics.items():
            print(f"  {key}: {val:.4f}")
        if args.shipped:
            from ifcn_viz.train.shipped import install_shipped

            print(f"installed the shipped model: {install_shipped(result.checkpoint)}")
    return 0


def _ablation(args: argparse.Namespace) -> int:
    from ifcn_viz.train.ablation import run_ablation

    run_ablation(args.out, args.runs, iters=args.iters, seed=args.seed, eval_images=args.eval_images)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train InstanceFCN (CPU, GPU, or torchrun for several)")
    p.add_argument("--preset", choices=list(PRESETS), default="tiny", help="model + recipe (default tiny)")
    p.add_argument("--dataset", choices=DATASETS, default="synthetic")
    p.add_argument("--coco-ann", help="COCO instances JSON (with --dataset coco)")
    p.add_argument("--image-dir", help="COCO image folder (with --dataset coco)")
    p.add_argument("--voc-root", help="the VOC2012 folder (with --dataset voc)")
    p.add_argument("--voc-split", help="ImageSets/Segmentation split (default train)")
    p.add_argument("--iters", type=int, help="training iterations (the preset's recipe otherwise)")
    p.add_argument("--out", help="run folder: checkpoint, train_state.pt, metrics.jsonl (default runs/<preset>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its train_state.pt")
    p.add_argument("--shipped", action="store_true", help="the shipped model's recorded recipe; installs the result")
    p.add_argument("--batch-size", type=int, help="images per process")
    p.add_argument("--lr", type=float, help="base learning rate")
    p.add_argument("--amp", choices=AMP, help="mixed precision (default auto)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    p.add_argument("--seed", type=int, help="seed of the model init, data order, augmentation and sampling")
    p.add_argument("--eval-every", type=int, help="AR evaluation every N steps (and at the end)")
    p.add_argument("--eval-images", type=int, help="held-out synthetic images for AR (0 disables)")
    p.add_argument("--ckpt-every", type=int, help="checkpoint every N steps (and at the end)")
    p.add_argument("--k", type=int, help="override the preset's k (the ablation)")
    p.add_argument("--head", choices=list(HEADS), help="ifcn (default) or the DeepMask-style fc baseline")
    p.add_argument("--image-size", type=int, help="side of the synthetic scenes (default 256)")
    p.add_argument("--backbone-weights", help="imagenet or a local torchvision .pth/.safetensors for vgg16/resnet")
    p.add_argument("--max-bad-steps", type=int, help="stop after this many non-finite losses (default 20)")
    p.add_argument("--num-workers", type=int, help="DataLoader worker processes (default 0)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--log-every", type=int, help="log metrics every N steps (default 10)")
    p.add_argument("--tensorboard", action="store_true", help="also log to TensorBoard (pip install tensorboard)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    a = subparsers.add_parser("ablation", help="train k = 1, 3, 5, 7 and an fc head on the same budget; AR table")
    a.add_argument("--out", default="docs/ABLATION.md", help="the Markdown table to write")
    a.add_argument("--runs", default="runs/ablation", help="folder for the runs")
    a.add_argument("--iters", type=int, default=300, help="iterations of 4 images per variant")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--eval-images", type=int, default=20)
    a.set_defaults(func=_ablation)
