"""The independent synthetic yardstick, committed inside the package.

:func:`independent_set` returns the image folder and COCO JSON of 32 synthetic scenes of 288 x 288 px drawn only
from generator settings that training never uses (:data:`ifcn_viz.data.synthetic.INDEPENDENT_STYLE`: crescents,
crosses and hearts; dot, ring and two held-out photographic textures; Voronoi-tile and bokeh backgrounds): PNG
images + one COCO instances JSON (RLE masks), 161 instances.  Regenerate it, byte for byte, with::

    ifcn-viz make-dataset independent --out ifcn_viz/data/yardsticks/independent

and evaluate a model on it with::

    ifcn-viz eval --checkpoint shipped --coco-gt ifcn_viz/data/yardsticks/independent/instances.json \\
        --image-dir ifcn_viz/data/yardsticks/independent/images --top-n 100 --out results.json
    python -m ifcn_viz.data.independent recall --coco-gt ifcn_viz/data/yardsticks/independent/instances.json \\
        --results results.json

``ifcn-viz eval`` reports ``recall50@100`` (recall at IoU 0.5 with 100 proposals) beside AR; the ``recall`` command
here gives the recall at any one of COCO's IoU thresholds (:func:`ifcn_viz.evaluate.recall_at_iou`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

YARDSTICKS_DIR = Path(__file__).parent / "yardsticks"
INDEPENDENT: dict[str, Any] = {"n": 32, "seed": 20261125, "size": (288, 288)}
REGENERATE_INDEPENDENT = "ifcn-viz make-dataset independent --out ifcn_viz/data/yardsticks/independent"


def independent_set() -> tuple[Path, Path]:
    """``(image dir, COCO instances JSON)`` of the committed independent synthetic yardstick."""
    root = YARDSTICKS_DIR / "independent"
    images, ann = root / "images", root / "instances.json"
    if not ann.is_file() or not images.is_dir():
        raise FileNotFoundError(
            f"the independent yardstick is missing from {root}; regenerate it: {REGENERATE_INDEPENDENT}"
        )
    return images, ann


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ifcn_viz.data.independent")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recall", help="recall at one IoU of a COCO results JSON (e.g. from ifcn-viz eval --out)")
    r.add_argument("--coco-gt", required=True, type=Path)
    r.add_argument("--results", required=True, type=Path)
    r.add_argument("--iou", type=float, default=0.5)
    r.add_argument("--max-dets", type=int, default=100)
    args = ap.parse_args(argv)
    results = json.loads(args.results.read_text())
    from ifcn_viz.evaluate import recall_at_iou

    value = recall_at_iou(args.coco_gt, results, args.iou, args.max_dets)
    print(json.dumps({f"recall@{args.iou:g}@{args.max_dets}": round(value, 4)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
