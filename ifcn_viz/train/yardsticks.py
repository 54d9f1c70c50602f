"""A checkpoint measured on the three yardsticks: its own validation scenes, the independent synthetic set, and the
real photographs (docs/TRAINING.md, "Yardsticks").

    python -m ifcn_viz.train.yardsticks shipped small              # print the table
    python -m ifcn_viz.train.yardsticks shipped small --update-cards  # and record it in each shipped card
    python -m ifcn_viz.train.yardsticks shipped --funnel     # and where each missed object is lost

* **validation**: held-out scenes of the training generator's own style (seeds disjoint from training: the card's
  ``train_config.eval_seed``) -- what the training run optimises for;
* **independent**: :mod:`ifcn_viz.data.independent`, scenes from generator settings training never uses;
* **real_photos**: :mod:`ifcn_viz.data.real_photos`, hand-drawn instances on photographs that are never textures.

Each reports AR@10, AR@100 (COCO, IoU 0.5:0.95) and ``recall50@100`` (recall at IoU 0.5 with 100 proposals).
``ifcn-viz train --shipped`` runs this on the model it installs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from ifcn_viz.config import YARDSTICK_METRICS, YARDSTICKS

KEYS = YARDSTICK_METRICS
NAMES = {name: label for name, (label, _) in YARDSTICKS.items()}


def _predictor(checkpoint: str | Path, precision: str | None = None, device: str = "cpu"):
    import dataclasses

    from ifcn_viz.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(checkpoint, device=device)
    if precision is not None:
        predictor.infer = dataclasses.replace(predictor.infer, precision=precision)
    return predictor


def yardsticks(
    checkpoint: str | Path,
    validation_images: int = 50,
    progress: bool = False,
    precision: str | None = None,
    funnel: bool = False,
    device: str = "cpu",
) -> dict[str, Any]:
    """``{"validation": {...}, "independent": {...}, "real_photos": {...}}``, each ``{AR@10, AR@100, recall50@100,
    "images", "instances"}``, for one checkpoint (a shipped name or a ``.safetensors`` path).  ``precision``
    overrides the card's ``InferConfig.precision`` (``auto`` / ``fp32`` / ``bf16``); with ``funnel`` each also gets
    ``"lost"``: :func:`funnel_losses` (where the objects not found were lost).  ``device``: where the network runs
    (``cuda`` on a GPU machine; the recorded cards are measured on the CPU, where students run the app)."""
    from ifcn_viz.data.commands import write_synthetic_coco
    from ifcn_viz.data.independent import independent_set
    from ifcn_viz.data.real_photos import write_real_photo_set
    from ifcn_viz.evaluate import evaluate_predictor

    predictor = _predictor(checkpoint, precision, device)
    card = predictor.card or {}
    seed = int((card.get("train_config") or {}).get("eval_seed", 1_000_000))
    size = int((card.get("train_config") or {}).get("image_size", 256))
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sets = {
            "validation": (write_synthetic_coco(Path(tmp) / "val", validation_images, seed=seed, size=(size, size)),
                           Path(tmp) / "val" / "images"),
            "independent": tuple(reversed(independent_set())),
            "real_photos": tuple(reversed(write_real_photo_set(Path(tmp) / "real"))),
        }  # fmt: skip
        for name, (ann, image_dir) in sets.items():
            metrics, _ = evaluate_predictor(predictor, ann, image_dir, top_n=100, progress=progress)
            gt = json.loads(Path(ann).read_text())
            out[name] = {k: round(float(metrics[k]), 4) for k in KEYS}
            out[name].update(images=len(gt["images"]), instances=len(gt["annotations"]))
            if funnel:
                out[name]["lost"] = funnel_losses(predictor, ann, image_dir)
    return out


def funnel_losses(predictor: Any, ann: str | Path, image_dir: str | Path) -> dict[str, int]:
    """Where each ground-truth object of a COCO set is lost (:func:`ifcn_viz.inference.funnel.proposal_funnel`,
    recall at IoU 0.5, 100 proposals): ``{"found": n, "every window": n, "top-k by objectness": n, ...}``.
    "every window" counts objects no window of any scale segments at IoU >= 0.5 (the masks are not good enough);
    the later stages count objects some window segments but the ranking drops."""
    import numpy as np
    from pycocotools.coco import COCO

    from ifcn_viz.inference.funnel import STAGES, proposal_funnel

    coco = COCO(str(ann))
    counts = {"found": 0, **{stage: 0 for stage in STAGES}}
    for img_id in sorted(coco.getImgIds()):
        info = coco.loadImgs(img_id)[0]
        predictor.set_image(Path(image_dir) / info["file_name"])
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=False))
        if not anns:
            continue
        gt = np.stack([coco.annToMask(a) for a in anns]).astype(bool)
        funnel = proposal_funnel(predictor, gt, iou=0.5, every_window=True, top_n=100)
        for g in range(len(anns)):
            counts[funnel.lost_at(g) or "found"] += 1
    return counts


def table(rows: dict[str, dict[str, Any]]) -> str:
    """A markdown table: one row per (model, yardstick)."""
    lines = [
        "| model | yardstick | images | instances | AR@10 | AR@100 | recall@0.5 (100) |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, ys in rows.items():
        for name, m in ys.items():
            lines.append(
                f"| {model} | {NAMES.get(name, name)} | {m['images']} | {m['instances']} | {m['AR@10']:.3f} | "
                f"{m['AR@100']:.3f} | {m['recall50@100']:.3f} |"
            )
    return "\n".join(lines)


def funnel_table(rows: dict[str, dict[str, Any]]) -> str:
    """A markdown table: for each (model, yardstick), how many objects are found and where the others are lost."""
    from ifcn_viz.inference.funnel import STAGES

    lines = ["| model | yardstick | found | " + " | ".join(f"lost: {s}" for s in STAGES) + " |",
             "|---|---|---" + "|---" * len(STAGES) + "|"]  # fmt: skip
    for model, ys in rows.items():
        for name, m in ys.items():
            lost = m.get("lost") or {}
            lines.append(f"| {model} | {NAMES.get(name, name)} | {lost.get('found', 0)} | "
                         + " | ".join(str(lost.get(s, 0)) for s in STAGES) + " |")  # fmt: skip
    return "\n".join(lines)


def record_in_card(name: str, result: dict[str, Any]) -> Path:
    """Write ``result`` as the ``yardsticks`` of the shipped checkpoint ``name`` (its JSON card and the card inside
    its safetensors file, so both stay one card)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from ifcn_viz.checkpoints import CARD_KEY, WEIGHTS_DIR, card_path
    from ifcn_viz.fileio import atomic_write, atomic_write_json

    weights = WEIGHTS_DIR / f"{name}.safetensors"
    card = json.loads(card_path(weights).read_text())
    card["yardsticks"] = result
    atomic_write_json(card_path(weights), card)
    with safe_open(str(weights), framework="pt") as fh:
        meta = dict(fh.metadata() or {})
    meta[CARD_KEY] = json.dumps(card)
    state = load_file(str(weights))
    atomic_write(weights, lambda tmp: save_file(state, tmp, metadata=meta))
    return weights


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ifcn_viz.train.yardsticks", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="shipped names (shipped, small) or .safetensors paths")
    ap.add_argument("--update-cards", action="store_true", help="record the results in each shipped model's card")
    ap.add_argument("--validation-images", type=int, default=50, help="own-style validation scenes (default 50)")
    from ifcn_viz.config import PRECISIONS

    ap.add_argument("--precision", choices=PRECISIONS, help="the backbone's float type (default: the card's)")
    ap.add_argument("--funnel", action="store_true", help="also say at which stage each missed object is lost")
    ap.add_argument("--device", default="cpu", help="where the network runs (cpu, cuda; default cpu)")
    args = ap.parse_args(argv)
    rows = {}
    for ckpt in args.checkpoints:
        rows[ckpt] = yardsticks(ckpt, args.validation_images, False, args.precision, args.funnel, args.device)
        if args.update_cards:
            print(f"recorded in {record_in_card(ckpt, rows[ckpt])}", file=sys.stderr)
    print(table(rows))
    if args.funnel:
        print(funnel_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
