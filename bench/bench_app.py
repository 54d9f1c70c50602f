"""The explorer app's speed and its behaviour under 8 concurrent users.

Measures, with the shipped model (or a random-init ``tiny`` model of the same architecture when the shipped
weights are absent -- the speed is the same):
  * upload -> all Explore views, server side, for a 512 x 512 image: load + backbone at every scale + mosaic +
    objectness + top-10 proposals (what the upload handler does); goal <= 1 s;
  * click -> updated window: assemble the window from the cached maps and draw it with its source maps
    (the Explore click); also the Assemble click (+ the k^2 + 2 frames) and the Provenance click; goal <= 150 ms;
  * the browser (Playwright + /usr/bin/chromium): page load to interactive (the upload input attached), and a
    click to the new window picture on the page (end to end, through the queue);
  * 8 gradio_client clients x 25 mixed requests against a server in a subprocess: errors, mismatches, latency,
    and the server's RSS growth.

Usage: python bench/bench_app.py [--runs 7] [--no-browser] [--no-load] [--out bench/results/app.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from ifcn_viz.app import views as cb  # noqa: E402
from ifcn_viz.app.session import open_session  # noqa: E402
from ifcn_viz.inference.predictor import Predictor  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


def ms(xs: list[float]) -> dict[str, float]:
    return {"median_ms": round(1000 * statistics.median(xs), 1), "min_ms": round(1000 * min(xs), 1), "runs": len(xs)}


def model_checkpoint(tmp: Path) -> tuple[str, str]:
    from ifcn_viz.checkpoints import WEIGHTS_DIR, save_checkpoint
    from ifcn_viz.model import build_model

    if (WEIGHTS_DIR / "shipped.safetensors").exists():
        return "shipped", "shipped"
    torch.manual_seed(0)
    path = save_checkpoint(build_model("tiny"), tmp / "tiny_random", {"preset": "tiny", "name": "random tiny"})
    return str(path), "random-init tiny (shipped weights absent; same architecture and speed)"


def photo_512() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(cb.example_image("photo: astronaut")).resize((512, 512)))


def bench_server_side(predictor: Predictor, runs: int) -> dict:
    img = photo_512()
    upload, parts = [], {"set_image (backbone, every scale)": [], "explore (proposals + drawing)": [],
                         "of which proposals": []}  # fmt: skip
    for _ in range(runs):
        t0 = time.perf_counter()
        s = open_session(predictor, img, "bench")
        t1 = time.perf_counter()
        cb.explore(s, 10)
        t2 = time.perf_counter()
        cb.proposals(s, 10)
        t3 = time.perf_counter()
        upload.append(t2 - t0)
        parts["set_image (backbone, every scale)"].append(t1 - t0)
        parts["explore (proposals + drawing)"].append(t2 - t1)
        parts["of which proposals"].append(t3 - t2)
    rng = np.random.default_rng(0)
    pts = [(float(rng.integers(0, 512)), float(rng.integers(0, 512))) for _ in range(max(15, runs * 3))]
    clicks = {"explore_window": [], "assemble_window_and_frames": [], "provenance": [], "window_assembly_only": []}
    for x, y in pts:
        t0 = time.perf_counter()
        cb.window_at(s, x, y)
        t1 = time.perf_counter()
        cb.window_at(s, x, y)
        cb.assembly_frames(s, x, y)
        t2 = time.perf_counter()
        cb.provenance_at(s, x, y)
        t3 = time.perf_counter()
        s.grid().window_at_pixel(x, y)
        t4 = time.perf_counter()
        clicks["explore_window"].append(t1 - t0)
        clicks["assemble_window_and_frames"].append(t2 - t1)
        clicks["provenance"].append(t3 - t2)
        clicks["window_assembly_only"].append(t4 - t3)
    return {
        "image": "512x512 (skimage astronaut, resized)",
        "scales": list(predictor.infer.scales),
        "upload_to_all_views": ms(upload),
        "upload_parts": {k: ms(v) for k, v in parts.items()},
        "click": {k: ms(v) for k, v in clicks.items()},
        "goals": {"upload_to_all_views_ms": 1000, "click_to_window_ms": 150},
    }


def bench_browser(predictor: Predictor, runs: int) -> dict:
    from playwright.sync_api import sync_playwright

    from ifcn_viz.app import build_demo, launch

    demo = build_demo(predictor)
    with tempfile.TemporaryDirectory() as tmp:
        from PIL import Image

        img_path = Path(tmp) / "photo512.png"
        Image.fromarray(photo_512()).save(img_path)
        _, url, _ = launch(demo, port=0, prevent_thread_lock=True, quiet=True)
        loads, uploads, clicks = [], [], []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                for _ in range(runs):
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    t0 = time.perf_counter()
                    page.goto(url)
                    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=60_000)
                    loads.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    page.set_input_files("#upload input[type=file]", str(img_path))
                    page.wait_for_selector("#proposals img", timeout=60_000)
                    page.wait_for_selector("#mosaic img", timeout=60_000)
                    uploads.append(time.perf_counter() - t0)
                    img = page.locator("#ex_image img").first
                    box = img.bounding_box()
                    for fx in (0.3, 0.6):
                        old = page.locator("#ex_window img").first.get_attribute("src") if page.locator(
                            "#ex_window img").count() else None  # fmt: skip
                        t0 = time.perf_counter()
                        img.click(position={"x": box["width"] * fx, "y": box["height"] * 0.5})
                        page.wait_for_function(
                            "(old) => { const i = document.querySelector('#ex_window img');"
                            " return i && i.complete && i.src !== old; }", arg=old, timeout=30_000)  # fmt: skip
                        clicks.append(time.perf_counter() - t0)
                    page.close()
                browser.close()
        finally:
            demo.close()
    return {"page_load_to_interactive": ms(loads), "upload_to_views_in_page": ms(uploads),
            "click_to_window_in_page": ms(clicks)}  # fmt: skip


def bench_load(checkpoint: str) -> dict:
    import socket

    from loadtest import process_rss, run_load, start_server

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = start_server(checkpoint, port)
    try:
        url = f"http://127.0.0.1:{port}/"
        run_load(url, clients=1, requests=3)
        rss0 = process_rss(proc.pid)
        result = run_load(url, clients=8, requests=25)
        rss1 = process_rss(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {**result.summary(), "rss_before_mb": round(rss0 / 2**20, 1), "rss_after_mb": round(rss1 / 2**20, 1),
            "rss_growth_mb": round((rss1 - rss0) / 2**20, 1)}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--out", default="bench/results/app.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, model_desc = model_checkpoint(Path(tmp))
        predictor = Predictor.from_checkpoint(ckpt, device="cpu")
        results: dict = {
            "model": model_desc,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), "
            f"torch {torch.__version__} threads={torch.get_num_threads()}",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
        }
        results["server_side"] = bench_server_side(predictor, args.runs)
        if not args.no_browser and Path(CHROMIUM).exists():
            results["browser"] = bench_browser(predictor, max(3, args.runs // 2))
        if not args.no_load:
            results["concurrency"] = bench_load(ckpt)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")

    ss = results["server_side"]
    print(f"model: {results['model']}")
    print(f"{'measure':48s} {'median ms':>10s} {'min ms':>8s}")
    rows = [("upload -> all views (512x512, server)", ss["upload_to_all_views"])]
    rows += [(f"  {k}", v) for k, v in ss["upload_parts"].items()]
    rows += [(f"click: {k}", v) for k, v in ss["click"].items()]
    rows += [(f"browser: {k}", v) for k, v in results.get("browser", {}).items()]
    for name, v in rows:
        print(f"{name:48s} {v['median_ms']:10.1f} {v['min_ms']:8.1f}")
    if "concurrency" in results:
        c = results["concurrency"]
        print(f"8 clients x 25 requests: ok {c['ok']}, errors {c['errors']}, mismatches {c['mismatches']}, "
              f"wall {c['wall_s']} s, RSS growth {c['rss_growth_mb']} MB")  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
