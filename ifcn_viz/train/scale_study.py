"""Would a ResNet handle scale better?  The ``tiny`` backbone against ResNet-18, trained at an equal budget, and
their recall against object size -- with the image pyramid and with one scale.

    python -m ifcn_viz.train.scale_study --out docs/SCALE.md      # also writes docs/SCALE.json

Both models have the paper's heads at the tiny preset's width (128-d, k = 5, m = 21, stride 8) and differ only in
the backbone: ``tiny`` (0.9M parameters, ours) or torchvision's ResNet-18 with layer3 / layer4 dilated to stride 8
(11.9M; the ``resnet18`` preset, not in the paper), both randomly initialised (no ImageNet weights offline).  They
are trained with the same recipe (``train_config``: AdamW, warm-up + cosine), the same iterations, batch, seed and
synthetic scenes -- so any difference is the backbone's, at this budget.  Each is evaluated with the same
Predictor (the tiny preset's adaptive pyramid) on

* held-out synthetic scenes of the training style (seeds disjoint from training), and
* the independent yardstick (:mod:`ifcn_viz.data.independent`: shapes, textures and backgrounds training never
  uses),

by recall at IoU 0.5 and AR (IoU 0.5:0.95), both with 100 proposals, in bins of object size
(:func:`ifcn_viz.evaluate.recall_by_size`), for the whole pyramid and for the one scale nearest the image's own
size (:func:`native_scale`).  Training runs are kept under ``--runs`` and reused when rerun with the same settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ifcn_viz.train.recipe import TrainConfig, train_config

BACKBONES: tuple[tuple[str, str], ...] = (("tiny", "tiny"), ("ResNet-18", "resnet18"))  # (label, preset)
SCALE_SETS = ("pyramid", "one scale")


def native_scale(predictor: Any) -> int:
    """The index of the pyramid scale whose resize factor is nearest 1 (the image at its own size)."""
    import math

    return min(range(len(predictor.scales)), key=lambda i: abs(math.log(predictor.scales[i].factor)))


def study_configs(runs: str | Path, iters: int, batch: int, seed: int) -> list[tuple[str, TrainConfig]]:
    """One :class:`TrainConfig` per backbone, identical but for the preset (hence the backbone)."""
    same = dict(dataset="synthetic", iters=iters, batch_size=batch, seed=seed, eval_images=0, ckpt_every=iters,
                warmup=max(1, iters // 10), progress=False, train_scenes=iters * batch)  # fmt: skip
    return [(label, train_config(preset, **same, out=str(Path(runs) / preset))) for label, preset in BACKBONES]


def _trained(cfg: TrainConfig, label: str, stop_at: int | None = None) -> tuple[Any, float]:
    """The trained model (at step ``stop_at`` of the ``cfg.iters``-step schedule, or at its end) and its training
    wall time: from a run that got there with the same settings, else trained now."""
    from ifcn_viz.checkpoints import load_checkpoint
    from ifcn_viz.train.loop import train

    ckpt = Path(cfg.out) / "checkpoint.safetensors"
    card_file = Path(cfg.out) / "checkpoint.json"
    if ckpt.is_file() and card_file.is_file():
        card = json.loads(card_file.read_text())
        if card.get("train_config") == cfg.to_dict() and int(card.get("step", -1)) == (stop_at or cfg.iters):
            model, _ = load_checkpoint(ckpt, device="cpu")
            return model, float(card.get("wall_time_s", float("nan")))
    res = train(cfg, command=f"python -m ifcn_viz.train.scale_study ({label})", stop_at=stop_at)
    return res.model, res.wall_time_s


def evaluate_sets(
    model: Any, preset: str, sets: dict[str, tuple[Path, Path]], top_n: int = 100, max_images: int | None = None
) -> dict[str, Any]:
    """``{set: {scale set: {"AR@100", "recall50@100", "by_size": [...]}}}`` for one model, on the first
    ``max_images`` images (by id) of each set (the ground truth restricted to them too)."""
    from ifcn_viz.config import get_preset
    from ifcn_viz.evaluate import _as_coco, _restrict, evaluate_results, recall_by_size, results_by_scales
    from ifcn_viz.inference.predictor import Predictor

    predictor = Predictor(model.eval(), infer=get_preset(preset).infer, device="cpu")
    choose = {"pyramid": lambda p: None, "one scale": lambda p: [native_scale(p)]}
    out: dict[str, Any] = {}
    for name, (ann, images) in sets.items():
        gt = _as_coco(ann)
        if max_images is not None:
            gt = _restrict(gt, set(sorted(gt.getImgIds())[:max_images]))
        results = results_by_scales(predictor, gt, images, choose, top_n=top_n)
        out[name] = {}
        for scale_set, res in results.items():
            metrics = evaluate_results(gt, res)
            out[name][scale_set] = {"AR@100": round(metrics["AR@100"], 4),
                                    "recall50@100": round(metrics["recall50@100"], 4),
                                    "by_size": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                                                for r in recall_by_size(gt, res)]}  # fmt: skip
    return out


def run_study(
    out_md: str | Path,
    runs: str | Path,
    iters: int = 200,
    batch: int = 8,
    seed: int = 0,
    eval_images: int = 30,
    stop_at: int | None = None,
    independent_images: int | None = None,
    only: str | None = None,
) -> dict[str, Any]:
    """Train both backbones (or reuse finished runs), evaluate them, write ``out_md`` and its ``.json``.

    ``only`` (a preset, e.g. ``"resnet18"``): train and evaluate that backbone alone into its run folder's cache and
    write nothing else -- to run the two in parallel; a later run without it reuses both."""
    import tempfile

    import torch

    from ifcn_viz.data.commands import write_synthetic_coco
    from ifcn_viz.data.independent import independent_set
    from ifcn_viz.train.loop import cpu_name

    configs = study_configs(runs, iters, batch, seed)
    base = configs[0][1]
    models: dict[str, Any] = {}
    t0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        val = Path(tmp) / "val"
        write_synthetic_coco(val, eval_images, seed=base.eval_seed, size=(base.image_size, base.image_size))
        sets = {"held-out synthetic": (val / "instances.json", val / "images"),
                "independent": tuple(reversed(independent_set()))}  # fmt: skip
        for label, cfg in configs:
            if only is not None and cfg.preset != only:
                continue
            model, wall = _trained(cfg, label, stop_at)
            tag = f"{stop_at or cfg.iters}-{eval_images}-{independent_images or 'all'}"
            cached = Path(cfg.out) / f"scale_eval-{tag}.json"  # reused with the run (same settings)
            if cached.is_file() and json.loads(cached.read_text()).get("train_config") == cfg.to_dict():
                results = json.loads(cached.read_text())["results"]
            else:
                print(f"{label}: trained ({wall:.0f} s); evaluating ...", file=sys.stderr)
                results = {"held-out synthetic": evaluate_sets(model, cfg.preset, {k: sets[k] for k in sets if k !=
                           "independent"})["held-out synthetic"],
                           "independent": evaluate_sets(model, cfg.preset, {"independent": sets["independent"]},
                                                        max_images=independent_images)["independent"]}  # fmt: skip
                cached.write_text(json.dumps({"train_config": cfg.to_dict(), "results": results}))
            models[label] = {
                "preset": cfg.preset,
                "parameters": sum(p.numel() for p in model.parameters()),
                "train_wall_s": round(wall, 1),
                "results": results,
            }
    if only is not None:
        return models
    result = {
        "command": "python -m ifcn_viz.train.scale_study " + " ".join(sys.argv[1:]),
        "budget": {"iters": stop_at or iters, "schedule_iters": iters, "batch_size": batch, "seed": seed,
                   "train_scenes": base.train_scenes,
                   "recipe": {k: base.to_dict()[k] for k in ("optimizer", "lr", "schedule", "warmup", "short_sides")}},
        "eval": {"held-out synthetic": f"{eval_images} scenes, seed {base.eval_seed}, {base.image_size} px",
                 "independent": f"ifcn_viz/data/yardsticks/independent ({independent_images or 32} of its 32 "
                                "scenes, 288 px)", "top_n": 100},
        "hardware": f"CPU ({cpu_name()}), {torch.get_num_threads()} torch threads, {os.cpu_count()} cores (shared)",
        "process_cpu_s_this_invocation": round(time.process_time() - t0, 1),  # reused runs / evaluations not counted
        "models": models,
    }  # fmt: skip
    out_md = Path(out_md)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out_md.write_text(markdown(result))
    return result


def _schedule(b: dict[str, Any]) -> str:
    n = b.get("schedule_iters", b["iters"])
    return "" if n == b["iters"] else f" (both stopped at step {b['iters']} of a {n}-step schedule)"


def _fmt(v: float | None) -> str:
    return "--" if v is None else f"{v:.3f}"


def markdown(result: dict[str, Any]) -> str:
    """The study as a markdown page: the budget, then recall by object size per evaluation set."""
    b = result["budget"]
    lines = [
        "# Would a ResNet handle scale better? tiny vs ResNet-18 at an equal training budget",
        "",
        f"Command: `{result['command'].strip()}` (numbers also in `SCALE.json`; module docstring of "
        "`ifcn_viz/train/scale_study.py` for the set-up). Not in the paper: its backbone is VGG-16 only.",
        "",
        f"Both backbones randomly initialised, paper heads at 128-d (k = 5, m = 21, stride 8), trained with the same "
        f"recipe ({b['recipe']['optimizer']}, lr {b['recipe']['lr']}, {b['recipe']['schedule']}), **{b['iters']} "
        f"iterations of {b['batch_size']} images**{_schedule(b)}, seed {b['seed']}, the same {b['train_scenes']} "
        "synthetic scenes. "
        f"Evaluated with the tiny preset's adaptive pyramid, 100 proposals; *one scale* is the pyramid level nearest "
        f"the image's own size. Hardware: {result['hardware']}.",
        "",
        "| backbone | parameters | training wall time |",
        "|---|---:|---:|",
    ]
    for label, m in result["models"].items():
        lines.append(f"| {label} | {m['parameters']:,} | {m['train_wall_s']:.0f} s |")
    sets = list(next(iter(result["models"].values()))["results"])
    for name in sets:
        lines += ["", f"## {name}: {result['eval'][name]}", ""]
        first = next(iter(result["models"].values()))["results"][name]["pyramid"]["by_size"]
        bins = [f"{r['lo']:g}-{r['hi']:g} px ({r['instances']})" if r["hi"] < 1e4 else f">= {r['lo']:g} px "
                f"({r['instances']})" for r in first]  # fmt: skip
        lines.append("| backbone | scales | AR@100 | recall@0.5 | " + " | ".join(bins) + " |")
        lines.append("|---|---|---:|---:|" + "---:|" * len(bins))
        for label, m in result["models"].items():
            for scale_set in SCALE_SETS:
                r = m["results"][name][scale_set]
                cells = " | ".join(_fmt(row["recall50"]) for row in r["by_size"])
                lines.append(f"| {label} | {scale_set} | {r['AR@100']:.3f} | {r['recall50@100']:.3f} | {cells} |")
    lines += ["", "Size bins: sqrt(mask area) in pixels (instances in the bin); cells: recall at IoU 0.5 with 100 "
              "proposals (`ifcn_viz.evaluate.recall_by_size`; AR per bin in the JSON).", ""]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ifcn_viz.train.scale_study", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/SCALE.md", help="markdown table (and the same name .json)")
    ap.add_argument("--runs", default="runs/scale_study", help="training runs (reused when settings match)")
    ap.add_argument("--iters", type=int, default=200, help="training iterations, equal for both (default 200)")
    ap.add_argument("--batch", type=int, default=8, help="images per step (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-images", type=int, default=30, help="held-out synthetic scenes (default 30)")
    ap.add_argument("--independent-images", type=int, default=None, help="first N of the independent set (all 32)")
    ap.add_argument("--stop-at", type=int, default=None, help="evaluate both at this step of the --iters schedule")
    ap.add_argument("--only", choices=[p for _, p in BACKBONES], help="train + evaluate one backbone (cached), no doc")
    args = ap.parse_args(argv)
    try:
        run_study(args.out, args.runs, args.iters, args.batch, args.seed, args.eval_images, args.stop_at,
                  args.independent_images, args.only)  # fmt: skip
        if args.only:
            return 0
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(Path(args.out).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
