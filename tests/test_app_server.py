"""The app served the way Gradio apps are deployed: ``python app.py`` in a subprocess on ``GRADIO_SERVER_PORT``,
reached over HTTP and through ``gradio_client.handle_file``; the request-body guard, ``model_info`` without
server details, uploads removed at start and on SIGTERM, and one-line answers for an unusable port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _app_helpers import free_port, png_bytes, sample_image

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_SERVER")}
    env.update(GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(ROOT), **extra)
    return env


def _wait_up(proc: subprocess.Popen, url: str, timeout: float = 180.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "config", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"no answer from {url} within {timeout} s")


def _rss(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def _claim_huge_body(port: int, claimed: int = 300_000_000, send: int = 64 * 2**20) -> tuple[str, float, int]:
    """POST to the queue with ``Content-Length: claimed`` and try to send ``send`` bytes of it; returns the
    status line, the seconds until it came, and how many body bytes went out before the server answered."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (f"POST /gradio_api/queue/join HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {claimed}\r\n\r\n")  # fmt: skip
    t0 = time.perf_counter()
    s.sendall(head.encode())
    chunk = b'{"data": ["' + b"A" * (2**20 - 11)
    sent = 0
    s.setblocking(False)
    answer = b""
    try:
        while sent < send and b"\r\n" not in answer:
            try:
                answer += s.recv(4096)
                break
            except BlockingIOError:
                pass
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        s.setblocking(True)
        s.settimeout(30)
        while b"\r\n" not in answer:
            more = s.recv(4096)
            if not more:
                break
            answer += more
    finally:
        dt = time.perf_counter() - t0
        s.close()
    return answer.split(b"\r\n", 1)[0].decode(errors="replace"), dt, sent


def _strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(obj, (list, tuple)):
        return [s for v in obj for s in _strings(v)]
    return []


def test_python_app_py_on_gradio_server_port(tmp_path):
    from gradio_client import Client, handle_file

    uploads = tmp_path / "uploads"
    stale = uploads / "ifcn_viz-run-stale0001" / "0123abcd"
    stale.mkdir(parents=True)
    (stale / "left_from_a_killed_run.png").write_bytes(png_bytes(sample_image(2)))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=_env(GRADIO_SERVER_PORT=str(port),
                            IFCN_UPLOAD_ROOT=str(uploads)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    report: dict = {}
    try:
        _wait_up(proc, url)
        # reached over plain HTTP on the port from the environment, bound to 127.0.0.1
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200 and b"InstanceFCN explorer" in r.read()
        # the stale run folder is gone (removed at start, never served); this run has its own
        assert not stale.parent.exists()
        runs = [d for d in uploads.iterdir() if d.name.startswith("ifcn_viz-run-")]
        assert len(runs) == 1

        client = Client(url, verbose=False)
        img = tmp_path / "my photo.png"
        img.write_bytes(png_bytes(sample_image(4, 90, 120)))
        up = client.predict(handle_file(str(img)), api_name="/upload")
        assert (up["width"], up["height"]) == (120, 90) and up["name"] == "api: my photo.png" and up["count"] >= 1
        win = client.predict(up["session"], 60, 45, api_name="/window")
        assert win["fingerprint"] == up["fingerprint"]
        assert any(runs[0].rglob("my photo.png"))  # the upload went to this run's folder

        # a refused upload names the user's file, never the server's folder
        bad = tmp_path / "notes.txt"
        bad.write_bytes(b"not a picture\n" * 20)
        from gradio_client.exceptions import AppError

        with pytest.raises(AppError) as info:
            client.predict(handle_file(str(bad)), api_name="/upload")
        msg = str(info.value)
        assert "notes.txt" in msg and str(uploads) not in msg and "/tmp" not in msg, msg

        # model_info: the model's description, nothing about the machine that trained it
        info = client.predict(api_name="/model_info")
        assert info["architecture"] == "InstanceFCN" and info["k"] == 5 and info["m"] == 21
        assert info["training"]["data"]["dataset"] == "synthetic" and "AR@100" in info["metrics"]
        text = json.dumps(info)
        for word in ("command", "hardware", "runs/shipped", "ifcn-viz train", "--out", "x86_64", "out"):
            assert f'"{word}"' not in text and word not in _strings(info), word
        assert not [s for s in _strings(info) if "/" in s or "\\" in s], info

        # a body that claims 300 MB is refused before it is read, fast, without the server's memory growing
        rss0 = _rss(proc.pid)
        status, seconds, sent = _claim_huge_body(port)
        time.sleep(0.5)
        rss1 = _rss(proc.pid)
        report = {"status": status, "seconds": round(seconds, 3), "body_bytes_sent": sent,
                  "rss_before_mb": round(rss0 / 2**20, 1), "rss_after_mb": round(rss1 / 2**20, 1)}  # fmt: skip
        assert " 413 " in status + " ", report
        assert seconds < 5 and rss1 - rss0 < 30 * 2**20, report
        assert client.predict(api_name="/examples")  # still serving

        # SIGTERM: the process ends and takes its uploads with it
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert not runs[0].exists()
        out = proc.stdout.read().decode()
        assert f"Serving the InstanceFCN explorer on http://127.0.0.1:{port}" in out and "share=True" not in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "app_body_limit.json").write_text(json.dumps(report, indent=2))


def test_port_in_use_is_one_line():
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        for cmd, env, hint in (
            ([sys.executable, "-m", "ifcn_viz", "app", "--port", str(port)], {}, "--port"),
            ([sys.executable, "-m", "ifcn_viz", "app"], {"GRADIO_SERVER_PORT": str(port)}, "--port"),
            ([sys.executable, "app.py"], {"GRADIO_SERVER_PORT": str(port)}, "GRADIO_SERVER_PORT"),
        ):
            r = subprocess.run(cmd, cwd=ROOT, env=_env(**env), capture_output=True, text=True, timeout=180)
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 2 and len(lines) == 1, (cmd, r.stderr)
            assert f"port {port}" in lines[0] and hint in lines[0] and "GRADIO_SERVER_PORT" in lines[0], lines
            assert "Traceback" not in r.stderr + r.stdout


def test_a_bad_port_is_one_line():
    r = subprocess.run([sys.executable, "-m", "ifcn_viz", "app", "--port", "99999"], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith("ifcn-viz app: argument --port: 99999 is out of range (an integer in 1..65535)")
