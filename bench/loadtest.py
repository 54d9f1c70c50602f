"""Many users at once: N ``gradio_client`` clients, each with its own image, sending mixed requests to a server.

Used by ``bench/bench_app.py`` and ``tests/test_app_concurrency.py``.  Each client uploads a different image
(different size and pixels), then sends ``requests - 1`` more requests cycling through window, provenance,
proposals and a re-upload; every answer must carry the client's own image fingerprint and size.  Errors and
mismatches are counted, not raised, so one run reports them all.
"""

from __future__ import annotations

import base64
import io
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("window", "provenance", "proposals", "window", "upload")


def client_image(i: int) -> np.ndarray:
    """A distinct image per client: size ``(160 + 8 i) x (200 + 12 i)`` and its own colour ramps."""
    h, w = 160 + 8 * i, 200 + 12 * i
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * (1 + i) + yy * 3) % 256, (yy * (2 + i)) % 256, (xx + yy * i) % 256], -1)
    return img.astype(np.uint8)


def _png_b64(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class LoadResult:
    clients: int
    requests_per_client: int
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        lat = {
            k: {
                "n": len(v),
                "median_ms": round(1000 * statistics.median(v), 1),
                "p95_ms": round(1000 * sorted(v)[max(0, int(0.95 * len(v)) - 1)], 1),
            }  # fmt: skip
            for k, v in self.latencies.items()
            if v
        }
        return {"clients": self.clients, "requests_per_client": self.requests_per_client, "ok": self.ok,
                "errors": len(self.errors), "mismatches": len(self.mismatches), "wall_s": round(self.wall_s, 2),
                "latency": lat, "first_errors": (self.errors + self.mismatches)[:5]}  # fmt: skip


def run_load(
    url: str, clients: int = 8, requests: int = 25, image_fn: Callable[[int], np.ndarray] = client_image
) -> LoadResult:
    """Run the mixed load against the server at ``url``; returns counts and per-kind latencies."""
    from gradio_client import Client

    result = LoadResult(clients, requests)
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def record(kind: str, dt: float) -> None:
        with lock:
            result.ok += 1
            result.latencies.setdefault(kind, []).append(dt)

    def worker(i: int) -> None:
        try:
            client = Client(url, verbose=False)
        except Exception as err:  # noqa: BLE001 -- counted
            with lock:
                result.errors.append(f"client {i}: connect: {err}")
            return
        img = image_fn(i)
        h, w = img.shape[:2]
        data = _png_b64(img)
        own: dict[str, Any] = {}

        def check(kind: str, answer: dict[str, Any]) -> None:
            got = (answer.get("fingerprint"), answer.get("width"), answer.get("height"))
            if "fingerprint" not in own:
                own["fingerprint"] = got[0]
            if got != (own["fingerprint"], w, h):
                with lock:
                    result.mismatches.append(f"client {i} {kind}: got {got}, expected {(own['fingerprint'], w, h)}")

        barrier.wait()
        rng = np.random.default_rng(i)
        session = None
        for r in range(requests):
            kind = "upload" if r == 0 else KINDS[(r - 1) % len(KINDS)]
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            t0 = time.perf_counter()
            try:
                if kind == "upload":
                    answer = client.predict(data, f"client{i}.png", 5, api_name="/upload")
                    session = answer["session"]
                elif kind == "window":
                    answer = client.predict(session, x, y, api_name="/window")
                elif kind == "provenance":
                    answer = client.predict(session, x, y, api_name="/provenance")
                else:
                    answer = client.predict(session, 5, api_name="/proposals")
            except Exception as err:  # noqa: BLE001 -- counted
                with lock:
                    result.errors.append(f"client {i} {kind}: {type(err).__name__}: {err}")
                continue
            record(kind, time.perf_counter() - t0)
            check(kind, answer)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    result.wall_s = time.perf_counter() - t0
    return result


def process_rss(pid: int) -> int:
    """Resident memory of a process and its children, in bytes (psutil)."""
    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


_SERVE = (
    "import sys; from ifcn_viz.app import build_demo, launch; from ifcn_viz.inference.predictor import Predictor; "
    "launch(build_demo(Predictor.from_checkpoint(sys.argv[1], device='cpu')), port=int(sys.argv[2]), quiet=True)"
)


def start_server(checkpoint: str, port: int, timeout: float = 120.0):
    """Serve the app in a subprocess (so its memory can be measured) and wait until it answers."""
    import os
    import subprocess
    import sys
    import urllib.request

    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(checkpoint), str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise TimeoutError(f"the server did not answer on port {port} within {timeout} s")
