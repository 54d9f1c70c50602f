"""8 concurrent gradio_client clients x 25 mixed requests against a server in a subprocess : zero
errors, every answer about the client's own image, and server memory growth under 300 MB."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from _app_helpers import free_port, small_checkpoint

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
BENCH = Path(__file__).resolve().parent.parent / "bench"  # the load-test tool lives with the benchmarks
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))


def test_eight_clients_mixed_requests(tmp_path):
    from loadtest import process_rss, run_load, start_server

    ckpt = small_checkpoint(tmp_path, seed=1)
    port = free_port()
    proc = start_server(str(ckpt), port)
    try:
        url = f"http://127.0.0.1:{port}/"
        warm = run_load(url, clients=1, requests=3)  # first-use costs (imports, allocator) before measuring
        assert not warm.errors, warm.errors
        rss0 = process_rss(proc.pid)
        result = run_load(url, clients=8, requests=25)
        rss1 = process_rss(proc.pid)
        assert proc.poll() is None  # still serving
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    summary = {**result.summary(), "rss_before_mb": round(rss0 / 2**20, 1), "rss_after_mb": round(rss1 / 2**20, 1),
               "rss_growth_mb": round((rss1 - rss0) / 2**20, 1)}  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "app_concurrency.json").write_text(json.dumps(summary, indent=2))
    assert result.errors == [], result.errors[:5]
    assert result.mismatches == [], result.mismatches[:5]
    assert result.ok == 8 * 25
    assert set(result.latencies) == {"upload", "window", "provenance", "proposals"}
    assert rss1 - rss0 < 300 * 2**20, summary
