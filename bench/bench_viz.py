"""Time every viz view for a 512 x 512 image (goal: each at most 200 ms on 2 CPU cores, animation excepted).

    .venv/bin/python bench/bench_viz.py [--repeats 7]

Inputs: a synthetic 512 x 512 scene, its ideal k = 5 maps (64 x 64 at stride 8) plus noise as "learned" maps,
10 full-resolution proposal masks with a 30-step NMS trace.  Each view is rendered once to warm up, then
``repeats`` times; the median and the max are reported, and the PNG encoding of the result separately.  Writes
bench/results/viz.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ifcn_viz.data.synthetic import generate_scene
from ifcn_viz.inference.types import NMSStep, Proposals
from ifcn_viz.inference.window import WindowGrid
from ifcn_viz.model import build_model
from ifcn_viz.viz import (
    assembled_mask_view,
    assembly_frames,
    ideal_score_maps,
    ideal_vs_learned,
    k_comparison,
    nms_steps_view,
    objectness_overlay,
    pasted_mask_view,
    proposals_view,
    provenance_view,
    receptive_field_view,
    score_map_layers,
    score_map_mosaic,
    slide_frames,
    theoretical_receptive_field,
    to_png_bytes,
    training_targets_view,
    window_on_image,
    window_view,
)

BUDGET_MS = 200.0


def _inputs():
    image, masks = generate_scene(3, size=(512, 512), min_objects=5, max_objects=7)
    ideal = ideal_score_maps(masks, 5, 21, 8)
    g = torch.Generator().manual_seed(0)
    learned = ideal.score_maps * 0.4 + torch.randn(ideal.score_maps.shape, generator=g) * 2
    obj = ideal.objectness[0] * 0.5 + torch.randn(ideal.objectness.shape[1:], generator=g)
    cy, cx = ideal.centers[0].tolist()
    grid = WindowGrid.from_maps(learned, 21, 8, obj, image_hw=image.shape[:2])
    win = grid.window(cy, cx)
    n = 10
    pm = np.zeros((n, 512, 512), bool)
    boxes = np.zeros((n, 4), np.float32)
    rng = np.random.default_rng(0)
    for i in range(n):
        x0, y0 = rng.integers(0, 352, 2)
        pm[i, y0 : y0 + 160, x0 : x0 + 140] = True
        boxes[i] = (x0, y0, x0 + 140, y0 + 160)
    trace = [
        NMSStep(t, t % 3 != 1, None if t % 3 != 1 else t - 1, None if t % 3 != 1 else 0.85, tuple(boxes[t % n]), 0.9)
        for t in range(30)
    ]
    props = Proposals(
        pm,
        boxes,
        np.linspace(0.9, 0.5, n, dtype=np.float32),
        np.zeros(n, np.int64),
        np.zeros((n, 2), np.int64),
        boxes.copy(),
        trace,
    )
    pos = np.stack([ideal.centers[:, 0], ideal.centers[:, 1]], 1)
    neg = rng.integers(0, 64, (60, 2))
    gt = (torch.rand(len(pos), 21, 21, generator=g) > 0.5).float()
    model = build_model("tiny")
    rf = theoretical_receptive_field(score_map_layers(model))
    grad = np.random.default_rng(1).random((512, 512)).astype(np.float32)
    prov = grid.provenance(cx * 8 + 20, cy * 8 + 4)
    return image, masks, ideal, learned, grid, win, props, pos, neg, gt, rf, grad, prov, (cy, cx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default="bench/results/viz.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    image, masks, ideal, learned, grid, win, props, pos, neg, gt, rf, grad, prov, (cy, cx) = _inputs()
    ideal_grid = WindowGrid.from_maps(ideal.score_maps, 21, 8, image_hw=image.shape[:2])
    touching = masks[:2]
    views = {
        "score_map_mosaic (logits, image, window)": lambda: score_map_mosaic(learned, image=image, window=(cy, cx, 21)),
        "score_map_mosaic (probs, cell_px=3)": lambda: score_map_mosaic(learned, probs=True, cell_px=3),
        "objectness_overlay (top 5 + windows)": lambda: objectness_overlay(image, grid, top=5),
        "window_on_image": lambda: window_on_image(image, win),
        "assembled_mask_view": lambda: assembled_mask_view(win),
        "pasted_mask_view": lambda: pasted_mask_view(image, win),
        "window_view (+ source maps)": lambda: window_view(image, win, learned),
        "WindowGrid.provenance + provenance_view": lambda: provenance_view(
            image, grid.provenance(cx * 8 + 20, cy * 8 + 4)
        ),
        "ideal_vs_learned (+ windows)": lambda: ideal_vs_learned(ideal_grid, grid, (cy, cx), image),
        "k_comparison (k=1, 5; 2 instances)": lambda: k_comparison(touching, 8, 21, image=image),
        "proposals_view (top 10)": lambda: proposals_view(image, props, 10),
        "nms_steps_view (30 steps)": lambda: nms_steps_view(image, props, nms_iou=0.8),
        "training_targets_view": lambda: training_targets_view(image, pos, neg, 8, 21, gt),
        "receptive_field_view": lambda: receptive_field_view(image, grad, (32, 32), rf, 21),
    }
    animations = {
        "assembly_frames (27 frames)": lambda: assembly_frames(grid, (cy, cx)),
        "slide_frames (16 frames)": lambda: slide_frames(grid, cy, image=image),
    }
    rows = []
    for group, table in (("view", views), ("animation", animations)):
        for name, fn in table.items():
            out = fn()  # warm-up (LUTs, fonts)
            times, png = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                out = fn()
                times.append((time.perf_counter() - t0) * 1000)
                if group == "view":
                    t1 = time.perf_counter()
                    to_png_bytes(out, compress_level=1)
                    png.append((time.perf_counter() - t1) * 1000)
            shape = list(out.shape) if group == "view" else [len(out), *out[0].shape]
            row = {
                "name": name,
                "group": group,
                "median_ms": statistics.median(times),
                "max_ms": max(times),
                "png_ms": statistics.median(png) if png else None,
                "shape": shape,
            }
            rows.append(row)
            png_s = f"{row['png_ms']:7.1f}" if png else "      -"
            print(f"{name:45s} {row['median_ms']:8.1f} {row['max_ms']:8.1f} {png_s}  {shape}")
    worst = max(r["median_ms"] for r in rows if r["group"] == "view")
    result = {
        "command": f"python bench/bench_viz.py --repeats {args.repeats}",
        "image": [512, 512],
        "maps": list(learned.shape),
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],  # other processes share these cores: read timings with it
        "machine": platform.machine(),
        "budget_ms": BUDGET_MS,
        "worst_view_median_ms": worst,
        "all_views_within_budget": worst <= BUDGET_MS,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(
        f"worst view median {worst:.1f} ms (budget {BUDGET_MS:.0f} ms), load {os.getloadavg()[0]:.1f}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
