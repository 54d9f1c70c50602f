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

:func:`recall_at_iou` gives the recall at one IoU threshold with a proposal budget (the issue's "recall at IoU 0.5
with 100 proposals"), which ``ifcn-viz eval``'s COCO AR summary does not print.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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


def recall_at_iou(coco_gt: Any, results: list[dict[str, Any]], iou: float = 0.5, max_dets: int = 100) -> float:
    """Class-agnostic mask recall: the fraction of ground-truth instances matched at IoU >= ``iou`` by one of the
    ``max_dets`` highest-scoring proposals of their image (COCOeval's matching, as ``ifcn_viz.evaluate``)."""
    import numpy as np
    from pycocotools.cocoeval import COCOeval

    from ifcn_viz.evaluate import _as_coco, _sanitised_gt

    gt = _sanitised_gt(_as_coco(coco_gt))
    if not results:
        return 0.0
    cat = sorted(gt.getCatIds())[0]
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes([{**r, "category_id": cat} for r in results])
        ev = COCOeval(gt, dt, "segm")
        ev.params.useCats = 0
        ev.params.iouThrs = np.array([float(iou)])
        ev.params.maxDets = [1, 10, int(max_dets)]
        ev.evaluate()
        ev.accumulate()
    recall = ev.eval["recall"][0, 0, 0, 2]  # [T, K, A, M]: the one threshold, all areas, max_dets
    return max(0.0, float(recall))


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
    value = recall_at_iou(args.coco_gt, results, args.iou, args.max_dets)
    print(json.dumps({f"recall@{args.iou:g}@{args.max_dets}": round(value, 4)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
