"""Server-side latency of the Draw and Inspect tabs' views (and the large single map) with the shipped model.

On scikit-image's astronaut at 512 x 512 with two touching drawn instances (the astronaut's helmet and the
flag beside it, as ellipses), each view is timed as its handler computes it (no browser, no network): the median
of ``--runs`` runs after one warm-up.  Goals (issue 16): each view <= 300 ms; drawing -> ideal maps <= 500 ms.

Usage: PYTHONPATH=. python bench/bench_draw_inspect.py [--runs 7] [--out bench/results/draw_inspect.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn, runs: int) -> dict[str, float]:
    fn()  # warm-up
    xs = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t0)
    return {"median_ms": round(1000 * statistics.median(xs), 1), "min_ms": round(1000 * min(xs), 1), "runs": runs}


def touching_instances(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    a = ((yy - 150) / 110) ** 2 + ((xx - 190) / 90) ** 2 <= 1
    b = (((yy - 170) / 100) ** 2 + ((xx - 340) / 70) ** 2 <= 1) & ~a
    return np.stack([a, b])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import skimage.data

    from ifcn_viz.app import instance_views, views
    from ifcn_viz.app.instances import layer_from_masks, masks_from_layers
    from ifcn_viz.app.session import open_session
    from ifcn_viz.checkpoints import WEIGHTS_DIR
    from ifcn_viz.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(WEIGHTS_DIR / "shipped.safetensors")
    image = np.asarray(skimage.data.astronaut())  # 512 x 512
    s = open_session(predictor, image, "photo: astronaut")
    masks = touching_instances(*s.hw)
    layer = layer_from_masks(masks)
    s.gt_masks, s.gt_source = masks, "drawn"
    cx, cy = 340.0, 170.0
    res = {
        "editor layers -> masks": timed(lambda: masks_from_layers([layer], s.hw), args.runs),
        "stroke -> ideal maps (live preview)": timed(
            lambda: instance_views.draw_views(s, masks, full=False), args.runs
        ),
        "drawing -> all Draw views": timed(lambda: instance_views.draw_views(s, masks), args.runs),
        "click -> window from the ideal maps": timed(
            lambda: (
                instance_views.draw_views(s, masks, cx, cy, full=False),
                instance_views.draw_window_view(s, masks, cx, cy),
            ),
            args.runs,
        ),
        "Inspect (funnel with GT, NMS, histograms)": timed(lambda: instance_views.inspect(s), args.runs),
        "Inspect, no GT": timed(lambda: instance_views.inspect(s, use_gt=False), args.runs),
        "mosaic click -> large single map": timed(lambda: views.map_view(s, 7, None, cx, cy), args.runs),
        "Explore click -> mosaic with the window": timed(
            lambda: views.explore_mosaic(s, predictor.default_scale, (cx, cy)), args.runs
        ),
    }
    ins = instance_views.inspect(s)
    t = timed(lambda: instance_views.nms_view(s, ins.trace, 5, 0.8), args.runs)
    res["NMS step"] = t
    out = {"machine": platform.processor() or platform.machine(), "threads": args.threads, "image": "astronaut 512x512",
           "results": res}  # fmt: skip
    for name, r in res.items():
        print(f"{name:45s} median {r['median_ms']:8.1f} ms   (min {r['min_ms']:.1f}, {r['runs']} runs)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
