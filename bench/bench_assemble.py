"""Dense assembling speed and memory (issue: model).

Compares, in one run on the same input (``[1, 25, 64, 64]`` float32, m = 21):
  * ``assemble_dense`` (k^2 strided block copies),
  * the slow reference loop (``assemble_reference``, the definition written out),
  * the one-hot grouped convolution (``assemble_dense_conv``),
  * a plain contiguous tensor copy of the same output size (memory speed),
and the peak extra memory of the dense and the chunked forms on a ``[1, 25, 128, 128]`` map (the rise of the
process's resident-set high-water mark, reset through /proc/self/clear_refs: Linux only).

Usage: python bench/bench_assemble.py [--runs 15] [--out bench/results/assemble.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from ifcn_viz.model.assemble import assemble_dense, assemble_dense_conv, assemble_reference, iter_assemble_dense

SHAPE = (1, 25, 64, 64)
M = 21


def timed(fn, runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _hwm_kib() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


def peak_extra_mib(fn) -> float:
    """Peak resident memory above the level before ``fn`` ran (Linux: reset VmHWM via /proc/self/clear_refs)."""
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the resident-set high-water mark
    before = _hwm_kib()
    keep = fn()
    peak = _hwm_kib()
    del keep
    return (peak - before) / 1024


def dense_peak(s: torch.Tensor):
    out = assemble_dense(s, M)
    return float(out.amax())  # consume the whole output while it is alive


def chunked_peak(s: torch.Tensor):
    return max(float(w.amax()) for _, _, w in iter_assemble_dense(s, M, rows_per_chunk=4))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--out", default="bench/results/assemble.json")
    ap.add_argument("--skip-reference", action="store_true", help="skip the slow loop (about a minute)")
    ap.add_argument(
        "--threads", type=int, default=1, help="intra-op threads (1: robust on a shared machine, and fair to both)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    s = torch.randn(SHAPE)
    h, w = SHAPE[2], SHAPE[3]
    n_out = SHAPE[0] * h * w * M * M
    src = torch.randn(n_out)
    dst = torch.empty(n_out)

    results: dict[str, float] = {}
    results["dense_s"] = statistics.median(timed(lambda: assemble_dense(s, M), args.runs))
    results["dense_contiguous_s"] = statistics.median(timed(lambda: assemble_dense(s, M).contiguous(), args.runs))
    results["copy_s"] = statistics.median(timed(lambda: dst.copy_(src), args.runs))
    results["chunked_s"] = statistics.median(
        timed(lambda: [None for _ in iter_assemble_dense(s, M, rows_per_chunk=8)], args.runs)
    )
    results["conv_s"] = statistics.median(timed(lambda: assemble_dense_conv(s, M), max(3, args.runs // 5)))
    if not args.skip_reference:
        t0 = time.perf_counter()
        ref = assemble_reference(s, M)
        results["reference_s"] = time.perf_counter() - t0
        assert torch.equal(ref, assemble_dense(s, M))
        results["speedup_vs_reference"] = results["reference_s"] / results["dense_s"]
    results["ratio_to_copy"] = results["dense_s"] / results["copy_s"]
    results["ratio_contiguous_to_copy"] = results["dense_contiguous_s"] / results["copy_s"]
    results["output_mib"] = n_out * 4 / 2**20

    big = torch.randn(1, 25, 128, 128)  # 4x the pixels, so the difference is clear of allocator noise
    results["peak_extra_mib_dense_128"] = peak_extra_mib(lambda: dense_peak(big))
    results["peak_extra_mib_chunked_128"] = peak_extra_mib(lambda: chunked_peak(big))

    rows = [
        ("assemble_dense (permuted view)", results["dense_s"]),
        ("assemble_dense + .contiguous()", results["dense_contiguous_s"]),
        ("iter_assemble_dense (8 rows/chunk)", results["chunked_s"]),
        ("plain tensor copy, same size", results["copy_s"]),
        ("one-hot grouped conv", results["conv_s"]),
    ]
    if "reference_s" in results:
        rows.append(("reference loop (once)", results["reference_s"]))
    print(f"input {list(SHAPE)}, m = {M}, output {results['output_mib']:.1f} MiB, torch {torch.__version__}")
    print(f"{'implementation':40s} {'median ms':>10s}")
    for name, t in rows:
        print(f"{name:40s} {t * 1e3:10.2f}")
    if "speedup_vs_reference" in results:
        print(f"speed-up over the reference loop: {results['speedup_vs_reference']:.0f}x (goal >= 100x)")
    print(
        f"dense / copy: {results['ratio_to_copy']:.2f}x (goal <= 3x); "
        f"contiguous: {results['ratio_contiguous_to_copy']:.2f}x"
    )
    print(
        f"peak extra memory on [1, 25, 128, 128]: dense {results['peak_extra_mib_dense_128']:.1f} MiB, "
        f"chunked (4 rows) {results['peak_extra_mib_chunked_128']:.1f} MiB"
    )

    results["machine"] = {
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
