"""Training throughput of the `tiny` preset on this machine's CPU: fp32 vs bf16 autocast.

For each precision: images/s of full training steps (forward, window sampling, loss, backward, AdamW) on a fixed
batch of synthetic scenes; the FLOPs of one step (forward + backward) counted with
``torch.utils.flop_counter.FlopCounterMode``; the achieved GFLOP/s as a fraction of this machine's matmul peak in
the same precision, measured in the same run with large ``torch.matmul``.  Medians over several runs.

    .venv/bin/python bench/bench_train.py [--runs 5] [--batch 8] [--size 256]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ifcn_viz.data.synthetic import SyntheticDataset
from ifcn_viz.data.transforms import pad_collate
from ifcn_viz.train.loop import build_train_model
from ifcn_viz.train.loss import instance_fcn_loss
from ifcn_viz.train.recipe import TrainConfig
from ifcn_viz.train.targets import WindowRule, sample_windows

OUT = Path(__file__).parent / "results" / "train.json"


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / min(times) / 1e9  # GFLOP/s (best run: the peak)


def make_step(model, opt, images, masks, sizes, amp: torch.dtype | None):
    rule = WindowRule()

    def step(seed: int = 0) -> None:
        ctx = torch.autocast("cpu", dtype=amp) if amp is not None else nullcontext()
        with ctx:
            out = model(images)
        t = sample_windows(
            masks, tuple(out.score_maps.shape[-2:]), 21, 8, rule, torch.Generator().manual_seed(seed), sizes
        )
        loss = instance_fcn_loss(out.score_maps, out.objectness, t, 21).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="steps per timed run")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    ds = SyntheticDataset(args.batch, seed=123, size=(args.size, args.size))
    images, masks, sizes = pad_collate([(img.float() / 255, mk) for img, mk in (ds[i] for i in range(args.batch))])
    images = images.contiguous(memory_format=torch.channels_last)
    results = {"batch": args.batch, "size": args.size, "threads": torch.get_num_threads(), "runs": args.runs}
    for name, amp, mm_dtype in (("fp32", None, torch.float32), ("bf16", torch.bfloat16, torch.bfloat16)):
        model = build_train_model(TrainConfig()).to(memory_format=torch.channels_last).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        step = make_step(model, opt, images, masks, sizes, amp)
        step()  # warm-up (oneDNN primitive creation)
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops()
        rates, peaks = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            for s in range(args.steps):
                step(s)
            rates.append(args.batch * args.steps / (time.perf_counter() - t))
            peaks.append(matmul_peak(mm_dtype))
        ips, peak = statistics.median(rates), statistics.median(peaks)
        achieved = flops / args.batch * ips / 1e9
        results[name] = {"images_per_s": ips, "images_per_s_runs": rates, "gflop_per_step": flops / 1e9,
                         "achieved_gflops": achieved, "matmul_peak_gflops": peak,
                         "fraction_of_peak": achieved / peak}  # fmt: skip
    results["bf16_speedup"] = results["bf16"]["images_per_s"] / results["fp32"]["images_per_s"]
    print(f"tiny preset, batch {args.batch} x {args.size}^2, {results['threads']} threads, median of {args.runs} runs")
    print(
        f"{'precision':>9} | {'img/s':>7} | {'GFLOP/step':>10} | {'GFLOP/s':>8} | {'matmul peak':>11} | {'of peak':>7}"
    )
    for name in ("fp32", "bf16"):
        r = results[name]
        print(f"{name:>9} | {r['images_per_s']:7.1f} | {r['gflop_per_step']:10.1f} | {r['achieved_gflops']:8.1f} | "
              f"{r['matmul_peak_gflops']:11.1f} | {r['fraction_of_peak']:7.1%}")  # fmt: skip
    print(f"bf16 / fp32 speed-up: {results['bf16_speedup']:.2f}x")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
