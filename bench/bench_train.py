"""Training throughput of the `tiny` preset on this machine's CPU: fp32 vs bf16 autocast.

For each precision: images/s of full training steps (forward, window sampling, loss, backward, AdamW) on a fixed
batch of synthetic scenes; the FLOPs of one step (forward + backward) counted with
``torch.utils.flop_counter.FlopCounterMode``; the achieved GFLOP/s as a fraction of this machine's matmul peak in
the same precision, measured in the same run with large ``torch.matmul``.  Medians over several runs.

    .venv/bin/python bench/bench_train.py [--runs 5] [--batch 8] [--size 256]

``--split`` measures instead where a training step's time goes: the real data pipeline of
``ifcn-viz train --preset tiny`` (dataset -> joint transform -> ``StepBatchSampler`` -> ``pad_collate`` in a
DataLoader) feeding the real ``train_step`` (bf16 autocast on a CPU, as ``--amp auto``).  Per step: *data* is
the time spent waiting for the next batch, *compute* the time of ``train_step``.  Data sources:

* ``generated``: synthetic scenes made on the fly (what every step of a first epoch paid before prefilling);
* ``png``: the same scenes saved as PNG + COCO JSON (``write_synthetic_coco``) read by ``CocoInstances``;
* ``prefilled``: the in-memory cache filled up front by ``SyntheticDataset.prefill`` on every core (what
  ``build_dataset`` does now); its one-off fill time is reported and amortised over the shipped recipe
  (1,200 steps of 8 images over 2,000 scenes).

    .venv/bin/python bench/bench_train.py --split [--steps 30] [--batch 8] [--workers 0]

``--step-split`` times the phases of the real ``train_step`` (``on_phase`` marks; ``torch.cuda.synchronize`` at
each mark on a GPU): *loader* (waiting for the batch and moving it to the device), *forward*, *sample* (window
sampling), *loss*, *update* (backward + optimiser step); and images/s of as many free-running steps (no marks,
one sync at the end) after each round's timed ones.  Variants, interleaved round by round in one process so that
the load of a shared machine hits all: ``before`` is the per-image reference sampler
(``tests/_targets_reference.py``) on the DataLoader path, ``sampler`` the batched sampler on that path (what
``ifcn-viz train`` runs on a CPU), ``scenes`` the batched sampler on batches made on the device from compact scene
tensors (what it runs on a GPU).  One JSON line per variant and one per variant with its ratios to ``before``
(also written to ``bench/results/train_step_split_<device>.jsonl``):

    PYTHONPATH=$PWD python bench/bench_train.py --step-split --device cuda --preset tiny --batch 64 --size 256 \
        --steps 20 --rounds 3 [--workers 12] [--scenes 2000] [--variants before,sampler,scenes]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
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
PHASES = ("loader", "forward", "sample", "loss", "update")


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


def split(args: argparse.Namespace) -> None:
    import os
    import tempfile

    from ifcn_viz.data.coco import CocoInstances
    from ifcn_viz.data.commands import write_synthetic_coco
    from ifcn_viz.data.transforms import JointTransform
    from ifcn_viz.train.data import Augmented, StepBatchSampler
    from ifcn_viz.train.loop import resolve_amp, train_step

    cfg = TrainConfig(preset="tiny", batch_size=args.batch, image_size=args.size, amp="auto", progress=False)
    n_scenes = args.batch * (args.steps + 1)
    sources: dict[str, torch.utils.data.Dataset] = {}
    fill_s = None
    sources["generated"] = SyntheticDataset(n_scenes, seed=7, size=(args.size, args.size))
    tmp = tempfile.TemporaryDirectory()
    gt = write_synthetic_coco(tmp.name, n_scenes, seed=7, size=(args.size, args.size))
    sources["png"] = CocoInstances(gt, os.path.join(tmp.name, "images"), min_area=0)
    if hasattr(SyntheticDataset, "prefill"):
        pre = SyntheticDataset(n_scenes, seed=7, size=(args.size, args.size), cache=True)
        t = time.perf_counter()
        pre.prefill()
        fill_s = (time.perf_counter() - t) / n_scenes
        sources["prefilled"] = pre
    dev = torch.device("cpu")
    amp = resolve_amp(cfg.amp, dev)
    rule = WindowRule(windows_per_image=cfg.windows_per_image)
    results: dict = {"batch": args.batch, "size": args.size, "steps": args.steps, "workers": args.workers,
                     "threads": torch.get_num_threads(), "load_avg_start": os.getloadavg()[0]}  # fmt: skip
    for name, base in sources.items():
        model = build_train_model(cfg).to(memory_format=torch.channels_last).train()
        from ifcn_viz.train.loop import make_optimizer

        opt = make_optimizer(cfg, model)
        sampler = StepBatchSampler(len(base), cfg.batch_size, cfg.seed)
        loader = torch.utils.data.DataLoader(Augmented(base, JointTransform(cfg.short_sides)), batch_sampler=sampler,
                                             collate_fn=pad_collate, num_workers=args.workers)  # fmt: skip
        it = iter(loader)
        data_t, comp_t, data_cpu, comp_cpu = [], [], [], []
        for step in range(args.steps + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            batch = next(it)
            t1, c1 = time.perf_counter(), time.process_time()
            train_step(model, model, opt, batch, cfg, step, rule, dev, amp)
            t2, c2 = time.perf_counter(), time.process_time()
            if step > 0:  # the first step builds oneDNN primitives (and starts workers)
                data_t.append(t1 - t0)
                comp_t.append(t2 - t1)
                data_cpu.append(c1 - c0)
                comp_cpu.append(c2 - c1)
        d, c = statistics.median(data_t), statistics.median(comp_t)
        md, mc = statistics.mean(data_t), statistics.mean(comp_t)
        results[name] = {"data_s_median": d, "compute_s_median": c, "data_s_mean": md, "compute_s_mean": mc,
                         "data_fraction": md / (md + mc), "images_per_s": args.batch / (md + mc),
                         "data_cpu_s_mean": statistics.mean(data_cpu), "compute_cpu_s_mean": statistics.mean(comp_cpu),
                         "data_cpu_fraction": sum(data_cpu) / (sum(data_cpu) + sum(comp_cpu))}  # fmt: skip
        del it, loader
    if fill_s is not None:
        # the shipped recipe: 2,000 scenes filled once, then 1,200 steps of 8 images
        fill, r = 2000 * fill_s, results["prefilled"]
        total_data = fill + 1200 * r["data_s_mean"]
        results["prefill_s_per_scene"] = fill_s
        results["shipped_recipe_data_fraction"] = total_data / (total_data + 1200 * r["compute_s_mean"])
    results["load_avg_end"] = os.getloadavg()[0]
    print(f"tiny preset, batch {args.batch} x {args.size}^2, {results['threads']} threads, "
          f"{args.workers} DataLoader workers, mean over {args.steps} steps; "
          f"load average {results['load_avg_start']:.1f} -> {results['load_avg_end']:.1f}")  # fmt: skip
    print(f"{'source':>10} | {'data ms':>8} | {'compute ms':>10} | {'data %':>6} | {'img/s':>6} | "
          f"{'data CPU ms':>11} | {'compute CPU ms':>14} | {'data % of CPU':>13}")  # fmt: skip
    for name in sources:
        r = results[name]
        print(f"{name:>10} | {1000 * r['data_s_mean']:8.1f} | {1000 * r['compute_s_mean']:10.1f} | "
              f"{r['data_fraction']:6.1%} | {r['images_per_s']:6.1f} | {1000 * r['data_cpu_s_mean']:11.1f} | "
              f"{1000 * r['compute_cpu_s_mean']:14.1f} | {r['data_cpu_fraction']:13.1%}")  # fmt: skip
    if fill_s is not None:
        print(f"prefill: {1000 * fill_s:.1f} ms per scene on {os.cpu_count()} cores; data share of the shipped "
              f"recipe including the fill: {results['shipped_recipe_data_fraction']:.1%}")  # fmt: skip
    out = OUT.with_name("train_split.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    tmp.cleanup()


class PhaseClock:
    """``train_step``'s ``on_phase``: the seconds of each phase since the previous mark, synchronised on a GPU."""

    def __init__(self, device: torch.device) -> None:
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.times: dict[str, list[float]] = {p: [] for p in PHASES}
        self.t = 0.0

    def start(self) -> None:
        self.sync()
        self.t = time.perf_counter()

    def __call__(self, name: str) -> None:
        self.sync()
        now = time.perf_counter()
        self.times["loader" if name == "inputs" else name].append(now - self.t)
        self.t = now


def _variant(name: str, cfg, base, dev: torch.device):
    """(model, optimiser, batch iterator, sampler) of one variant: ``before`` the per-image reference sampler on
    the DataLoader path; ``sampler`` the batched sampler on the DataLoader path (what ``ifcn-viz train`` runs on a
    CPU); ``scenes`` the batched sampler on batches made on the device from scene tensors (what it runs on a GPU
    with cached synthetic scenes)."""
    from ifcn_viz.train import loop

    sampler = loop.sample_windows
    if name == "before":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests._targets_reference import sample_windows_reference as sampler
    model = build_train_model(cfg).to(dev, memory_format=torch.channels_last).train()
    on_device = dev if name == "scenes" else None
    batches = iter(loop.make_loader(cfg, pin=dev.type == "cuda", base=base, device=on_device))
    return model, loop.make_optimizer(cfg, model), batches, sampler


def step_split(args: argparse.Namespace) -> None:
    import os
    import tempfile

    from ifcn_viz.train import loop
    from ifcn_viz.train.data import build_dataset
    from ifcn_viz.train.recipe import train_config

    dev = torch.device(args.device)
    cfg = train_config(args.preset, batch_size=args.batch, image_size=args.size, device=args.device, amp=args.amp,
                       train_scenes=args.scenes or args.batch * 8, num_workers=args.workers, eval_images=0,
                       out=tempfile.mkdtemp(), progress=False)  # fmt: skip
    t = time.perf_counter()
    base = build_dataset(cfg)
    fill_s = time.perf_counter() - t
    amp, rule = loop.resolve_amp(cfg.amp, dev), WindowRule(windows_per_image=cfg.windows_per_image)
    names = args.variants.split(",")
    runs = {n: _variant(n, cfg, base, dev) for n in names}
    clocks = {n: PhaseClock(dev) for n in names}
    step = dict.fromkeys(names, 0)

    def run(name: str, n: int, clock: PhaseClock | None) -> None:
        model, opt, batches, sampler = runs[name]
        saved, loop.sample_windows = loop.sample_windows, sampler
        try:
            for _ in range(n):
                if clock is not None:
                    clock.start()
                loop.train_step(model, model, opt, next(batches), cfg, step[name], rule, dev, amp, on_phase=clock)
                step[name] += 1
        finally:
            loop.sample_windows = saved

    for name in names:
        run(name, 2, None)  # warm-up: oneDNN / cuDNN primitives, allocator
    free: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.rounds):
        for name in names:
            run(name, args.steps, clocks[name])
            clocks[name].start()
            run(name, args.steps, None)
            clocks[name].sync()
            free[name].append((time.perf_counter() - clocks[name].t) / args.steps)
    rows = {}
    for name in names:
        ms = {p: 1000 * statistics.median(v) for p, v in clocks[name].times.items()}
        free_s = statistics.median(free[name])
        rows[name] = {"variant": name, "ms_per_step_median": {p: round(v, 2) for p, v in ms.items()},
                      "total_ms": round(sum(ms.values()), 2),
                      "images_per_s_split": round(args.batch * 1000 / sum(ms.values()), 1),
                      "images_per_s_free": round(args.batch / free_s, 1)}  # fmt: skip
    head = {"preset": args.preset, "device": str(dev), "batch": args.batch, "size": args.size, "amp": str(amp),
            "steps": args.steps, "rounds": args.rounds, "workers": args.workers, "scenes": cfg.train_scenes,
            "threads": torch.get_num_threads(), "fill_s": round(fill_s, 1), "load_avg": os.getloadavg()[0]}  # fmt: skip
    if dev.type == "cuda":
        head["gpu"] = torch.cuda.get_device_name(dev)
    lines = [{**head, **rows[name]} for name in names]
    for name in [n for n in names if n != "before" and "before" in rows]:
        b, a = rows["before"], rows[name]
        ratio = {p: round(a["ms_per_step_median"][p] / max(b["ms_per_step_median"][p], 1e-9), 3) for p in PHASES}
        speed = round(a["images_per_s_free"] / b["images_per_s_free"], 3)
        lines.append({**head, "ratio": f"{name}/before", "ms": ratio, "free_speedup": speed,
                      "total_ms_ratio": round(a["total_ms"] / b["total_ms"], 3)})  # fmt: skip
    out = OUT.with_name(f"train_step_split_{dev.type}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    for line in lines:
        print(json.dumps(line), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", action="store_true", help="data vs compute time per step of the training pipeline")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers (with --split)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="steps per timed run")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--step-split", action="store_true", help="the phases of train_step, before vs after")
    ap.add_argument("--device", default="cpu", help="with --step-split: cpu or cuda")
    ap.add_argument("--preset", default="tiny", help="with --step-split")
    ap.add_argument("--amp", default="auto", help="with --step-split: auto, bf16, fp16 or none")
    ap.add_argument("--rounds", type=int, default=3, help="with --step-split: interleaved rounds of --steps steps")
    ap.add_argument("--scenes", type=int, default=0, help="with --step-split: cached scenes (default: 8 batches)")
    ap.add_argument("--variants", default="before,sampler,scenes", help="with --step-split: a comma list")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.step_split:
        step_split(args)
        return
    if args.split:
        args.steps = args.steps if args.steps != 3 else 30
        split(args)
        return
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
