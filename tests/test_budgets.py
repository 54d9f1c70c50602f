"""Issue 25's budgets, each on its own: checked before the work they bound, one line when refused, the paste's
measured peak bounded.  Fast and in-process except where a crash or a peak must be observed (a subprocess).  The
same cases through a live server: tests/test_hostile_server.py."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ifcn_viz import limits

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def coco(segmentation, w: int = 100, h: int = 80) -> dict:
    return {"images": [{"id": 1, "width": w, "height": h}], "categories": [{"id": 1, "name": "object"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": segmentation}]}  # fmt: skip


# ---------------------------------------------------------------------------------------------- 1. COCO


def test_the_245_byte_coco_drawing_is_one_line_not_a_sigsegv(tmp_path):
    """Polygon coordinates of 4e8 killed the server inside pycocotools; now refused before it sees them."""
    path = tmp_path / "kill.json"
    path.write_text(json.dumps(coco([[10, 10, 4e8, 10, 4e8, 4e8, 10, 4e8]]), separators=(",", ":")))
    assert path.stat().st_size < 300
    code = textwrap.dedent(f"""
        from ifcn_viz.app.instances import masks_from_coco
        try:
            masks_from_coco({str(path)!r}, (80, 100), "kill.json")
        except ValueError as e:
            print("ERR", e)
    """)  # fmt: skip
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])  # -11 before: SIGSEGV
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1 and "polygon point (4e+08, 10) outside the image (100 x 80 px)" in lines[0], lines


@pytest.mark.parametrize(
    "seg, words",
    [
        ([[10, 10, 1e7, 10, 50, 60]], "outside the image"),  # 1e7: 1.5 GB inside pycocotools before
        ([[10, 10, float("nan"), 10, 50, 60]], "outside the image"),
        ([[10, 10, 90, 10, 50]], "unpaired"),
        ({"size": [80, 100], "counts": [0, 10**9]}, "covers 1,000,000,000 pixels"),
        ({"size": [80, 100], "counts": [0, -5, 8005]}, "negative run"),
        ({"size": [80, 100], "counts": [0.5, 7999.5]}, "whole numbers"),
        ({"size": [80, 100], "counts": "zzzzzz5"}, "outside COCO's alphabet"),
        ({"size": [80, 100], "counts": "PPPPPPPPPPPPPP0"}, "too large"),
        ({"size": [80, 100], "counts": "_"}, "ends in the middle"),
    ],
)
def test_polygons_and_rle_checked_against_the_image(seg, words):
    from ifcn_viz.app.instances import masks_from_coco

    with pytest.raises(ValueError) as info:
        masks_from_coco(coco(seg), (80, 100))
    assert words in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_rle_decoded_as_pycocotools_does_for_valid_masks():
    from pycocotools import mask as mask_utils

    from ifcn_viz.app.instances import rle_decode

    rng = np.random.default_rng(0)
    for t in range(40):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        m[:] = 0 if t % 7 == 0 else m
        rle = mask_utils.encode(np.asfortranarray(m))
        assert np.array_equal(rle_decode(rle["counts"].decode(), (h, w)), m.astype(bool))
        assert np.array_equal(rle_decode(_runs(m), (h, w)), m > 0)
    big = mask_utils.encode(np.asfortranarray(np.ones((100, 100), np.uint8)))["counts"].decode()
    with pytest.raises(ValueError, match="covers 10,000 pixels, the image 8,000"):
        rle_decode(big, (80, 100))  # a well-formed string whose runs overflow pycocotools' buffer


def _runs(m: np.ndarray) -> list[int]:
    flat, runs, v, i = m.T.ravel(), [], 0, 0
    while i < len(flat):
        j = i
        while j < len(flat) and flat[j] == v:
            j += 1
        runs.append(j - i)
        i, v = j, 1 - v
    return runs


def test_polygon_totals_bounded(monkeypatch):
    from ifcn_viz.app.instances import masks_from_coco

    zigzag = [v for i in range(400) for v in ((0, 0) if i % 2 else (99, 79))]
    monkeypatch.setattr("ifcn_viz.app.instances.MAX_POLYGON_VALUES", 500)
    with pytest.raises(ValueError, match="more than 500 coordinates"):
        masks_from_coco(coco([zigzag]), (80, 100))
    monkeypatch.setattr("ifcn_viz.app.instances.MAX_POLYGON_VALUES", 10_000)
    monkeypatch.setattr("ifcn_viz.app.instances.MAX_POLYGON_LENGTH", 1000)
    with pytest.raises(ValueError, match="more than 1,000 px long"):
        masks_from_coco(coco([zigzag]), (80, 100))


# ---------------------------------------------------------------------------------------------- 2. the paste

PASTE_PEAK = textwrap.dedent(
    """
    import json, resource, sys, time, torch
    from ifcn_viz.inference.postprocess import paste_window_masks
    n, h, w = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    probs = torch.rand(n, 21, 21, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([[-50.0, -40.0, w + 50.0, h + 40.0]] * n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    masks, tight = paste_window_masks(probs, boxes, (h, w), 0.5)
    grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    print(json.dumps({"grew": grew, "out": masks.numel(), "secs": time.perf_counter() - t}))
    """
)


def test_the_paste_peak_is_its_output_plus_the_chunk_budget():
    """Measured, not estimated: 12 full-image windows on a 12-megapixel image grow the peak RSS by the masks'
    bytes plus at most 2.5 chunk budgets (before: about 6x the masks' bytes)."""
    r = subprocess.run([sys.executable, "-c", PASTE_PEAK, "12", "3000", "4000"], capture_output=True, text=True,
                       env=ENV, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads(r.stdout)
    extra = m["grew"] - m["out"]
    print(f"paste 12 x 12 MP: masks {m['out'] / 2**20:.0f} MB, peak grew {m['grew'] / 2**20:.0f} MB, {m['secs']:.1f} s")
    assert extra <= 2.5 * limits.PASTE_CHUNK_BYTES + 64 * 2**20, (m["grew"] / 2**20, m["out"] / 2**20)


def test_the_paste_in_bands_equals_the_paste_at_once(monkeypatch):
    import torch

    from ifcn_viz.inference.postprocess import paste_window_masks, paste_window_probs

    g = torch.Generator().manual_seed(3)
    probs = torch.rand(30, 21, 21, generator=g)
    xy = torch.rand(30, 2, generator=g) * 300 - 50
    boxes = torch.cat([xy, xy + torch.rand(30, 2, generator=g) * 250 + 3], 1)
    masks, tight = paste_window_masks(probs, boxes, (200, 260), 0.5)
    probs_full = paste_window_probs(probs, boxes, (200, 260))
    monkeypatch.setattr(limits, "PASTE_CHUNK_BYTES", 4 * 300)  # a row or two at a time
    masks2, tight2 = paste_window_masks(probs, boxes, (200, 260), 0.5)
    assert torch.equal(masks, masks2) and torch.equal(tight, tight2)
    assert torch.allclose(probs_full, paste_window_probs(probs, boxes, (200, 260)), atol=1e-6)


def test_proposal_pictures_are_drawn_within_the_render_budget():
    from ifcn_viz.inference.types import Proposals
    from ifcn_viz.viz.proposals import proposals_view

    h, w = 3000, 4000
    masks = np.zeros((2, h, w), bool)
    masks[0, 100:2000, 200:3000] = True
    masks[1, 1500:2900, 2000:3900] = True
    boxes = np.array([[200, 100, 3000, 2000], [2000, 1500, 3900, 2900]], np.float32)
    p = Proposals(masks, boxes, np.array([0.9, 0.8], np.float32), np.zeros(2, int), np.zeros((2, 2), int), boxes)
    out = proposals_view(np.zeros((h, w, 3), np.uint8), p, 2)
    assert out.shape[0] * out.shape[1] <= limits.MAX_RENDER_PIXELS and out.shape[0] == math.ceil(h / 2)


# ---------------------------------------------------------------------------------------------- 3. drawing


def test_drawn_instances_bounded_before_any_mask_is_made():
    from ifcn_viz.app.instances import masks_from_coco, masks_from_layers

    with pytest.raises(ValueError, match="at most 12 megapixels"):
        masks_from_coco(coco([[10, 10, 90, 10, 50, 60]], w=8000, h=5000), (5000, 8000))
    anns = coco([[10, 10, 90, 10, 50, 60]], w=4000, h=3000)
    anns["annotations"] *= 20  # 20 x 12 MP = 229 MB of masks
    with pytest.raises(ValueError, match="at most 16 instances at this size"):
        masks_from_coco(anns, (3000, 4000))
    with pytest.raises(ValueError, match="larger than the image"):  # a 6000 x 6000 layer on a 480 x 640 image
        masks_from_layers([np.zeros((6000, 6000, 4), np.uint8)], (480, 640))


def test_layers_read_in_bands_give_the_same_instances():
    from ifcn_viz.app.instances import brush_colors, masks_from_layers

    rgb = [tuple(int(v) for v in c[4:-1].split(", ")) for c in brush_colors()[:3]]
    layer = np.zeros((300, 400, 4), np.uint8)
    layer[10:100, 10:100] = (*rgb[0], 255)
    layer[150:290, 50:390] = (*rgb[2], 255)
    masks = masks_from_layers([layer], (600, 800))
    assert masks.shape == (2, 600, 800) and masks[0, 20:200, 20:200].all() and masks[1, 300:580, 100:780].all()


# ---------------------------------------------------------------------------------------------- TIFF, archives, cards


def test_a_tiff_of_many_pages_is_described_without_counting_them():
    """Multi-page TIFFs are accepted (the first page is used) and their pages are never counted: Pillow's
    ``n_frames`` is quadratic in the pages (3,000: 0.6 s; 200,000: hours)."""
    from corpus import many_page_tiff

    from ifcn_viz.app.uploads import describe_conversion
    from ifcn_viz.data.io import load_image

    data = many_page_tiff(50_000)
    t = time.perf_counter()
    note = describe_conversion(data)
    assert load_image(data).shape == (48, 64, 3)
    assert time.perf_counter() - t < 2.0 and "multi-page TIFF (pages not counted): the first page" in note, note


def test_an_archive_of_many_small_deflated_entries_is_refused(tmp_path):
    """Each entry under the old 1 MB floor, together a bomb: refused from the zip directory."""
    from ifcn_viz.checkpoints import CheckpointError, load_checkpoint

    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(1000):  # each under the per-entry floor (64 KB): only the total gives it away
            zf.writestr(f"bomb/data/{i}", b"\0" * 60 * 1024)
        zf.writestr("bomb/data.pkl", b"x")
    assert path.stat().st_size < 300_000
    with pytest.raises(CheckpointError, match=r"compressed entries expand .*x in all") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_cards_finite_and_sized_before_anything_is_built(tmp_path):
    import shutil

    from ifcn_viz.checkpoints import WEIGHTS_DIR, CheckpointError, load_checkpoint

    card = json.loads((WEIGHTS_DIR / "shipped.json").read_text())
    shutil.copy(WEIGHTS_DIR / "shipped.safetensors", tmp_path / "m.safetensors")
    card["model_config"]["fill_logit"] = float("nan")
    (tmp_path / "m.json").write_text(json.dumps(card))  # writes NaN, which json reads back
    with pytest.raises(CheckpointError, match="fill_logit = nan is not a finite number"):
        load_checkpoint(tmp_path / "m.safetensors")
    card["model_config"].update(fill_logit=-20.0, backbone_width=512, head_channels=4096, k=15, m=63)
    (tmp_path / "m.json").write_text(json.dumps(card))
    t = time.perf_counter()
    with pytest.raises(CheckpointError, match="278,617,826 parameters.*refused before the model is built"):
        load_checkpoint(tmp_path / "m.safetensors")
    assert time.perf_counter() - t < 5


def test_seed_checked_before_training():
    from ifcn_viz.app.live_train import live_training

    for bad in (-1, 2**32, float("nan"), 1.5):
        t = time.perf_counter()
        with pytest.raises(ValueError, match="seed must be"):
            next(live_training(3, bad))
        assert time.perf_counter() - t < 1.0


def test_nan_top_n_refused_by_the_parameter_check():
    from ifcn_viz.app.views import check_proposal_params

    for bad in (float("nan"), float("inf"), 0, 10**6):
        with pytest.raises(ValueError, match="top_n must be"):
            check_proposal_params(bad, 0.4, 0.8)


# ---------------------------------------------------------------------------------------------- state and fairness


def test_api_sessions_expire_when_unused():
    from ifcn_viz.app.session import SessionStore

    class S:
        nbytes = 10

    store = SessionStore(8, per_client=4)
    a, b = store.put(S(), "x"), store.put(S(), "y")
    time.sleep(0.3)
    store.get(b)
    assert store.drop_idle(0.2) == 1 and len(store) == 1
    with pytest.raises(KeyError):
        store.get(a)


def test_upload_files_expire_and_the_folder_is_capped(tmp_path):
    from ifcn_viz.app.budget import remove_stale_temp, sweep_files

    old, new = tmp_path / "a" / "old.png", tmp_path / "b" / "new.png"
    for p in (old, new):
        p.parent.mkdir()
        p.write_bytes(b"x" * 1000)
    os.utime(old, (time.time() - 1000, time.time() - 1000))
    (tmp_path / ".ifcn_viz.lock").write_text("")
    assert sweep_files(tmp_path, max_age=600, cap=10**9) == 1000
    assert not old.exists() and not old.parent.exists() and new.exists() and (tmp_path / ".ifcn_viz.lock").exists()
    (tmp_path / "b" / "newer.png").write_bytes(b"y" * 1000)
    assert sweep_files(tmp_path, max_age=600, cap=1500) <= 1500  # the oldest go first
    assert (tmp_path / "b" / "newer.png").exists() and not new.exists()
    import tempfile

    stale = Path(tempfile.mkdtemp(prefix="ifcn_ckpt_"))
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert stale in remove_stale_temp(600) and not stale.exists()


def _asgi(guard, method: str, path: str, body: bytes, headers: dict[str, str], client: str = "10.0.0.1"):
    """Run one request through an ASGI middleware; returns (status, body, whether the app was reached)."""
    reached, sent = [], []

    async def app(scope, receive, send):
        msg = await receive()
        reached.append(len(msg.get("body", b"")))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard.app = app
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]

    async def receive():
        c = chunks.pop(0)
        return {"type": "http.request", "body": c, "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    hs = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": "http", "method": method, "path": path, "headers": hs, "client": (client, 1)}
    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), bool(reached)


def test_client_guard_refuses_before_reading_or_parsing(tmp_path, monkeypatch):
    from ifcn_viz.app.budget import ClientGuard

    monkeypatch.setenv("IFCN_UPLOAD_QUOTA", str(3 * 2**20))
    monkeypatch.setenv("IFCN_UPLOAD_DISK_CAP", str(10 * 2**20))
    guard = ClientGuard(None, upload_root=str(tmp_path))
    numbers = b'{"data": [' + b"1," * 1_500_000 + b"1]}"  # 3 MB, 1.5 M numbers (0.5 GB at 30 MB)
    monkeypatch.setattr(guard, "max_items", 1_000_000)
    json_headers = {"content-type": "application/json", "content-length": str(len(numbers))}
    status, text, reached = _asgi(guard, "POST", "/gradio_api/queue/join", numbers, json_headers)
    assert status == 413 and not reached and b"JSON items" in text
    b64 = b'{"data": ["' + b"QUFB" * 600_000 + b'"]}'  # a base64 image: one item
    status, _, reached = _asgi(guard, "POST", "/gradio_api/queue/join", b64,
                               {"content-type": "application/json", "content-length": str(len(b64))})  # fmt: skip
    assert status == 200 and reached
    one_mb = {"content-type": "multipart/form-data; boundary=x", "content-length": str(2**20)}
    assert _asgi(guard, "POST", "/gradio_api/upload", b"x" * 2**20, one_mb)[0] == 200
    assert _asgi(guard, "POST", "/gradio_api/upload", b"x" * 2**20, one_mb)[0] == 200
    status, text, reached = _asgi(guard, "POST", "/gradio_api/upload", b"x" * 2**20, {**one_mb,
                                  "content-length": str(2 * 2**20)})  # fmt: skip
    assert status == 429 and not reached and b"at most 3 MB" in text
    assert _asgi(guard, "POST", "/gradio_api/upload", b"", one_mb, client="10.0.0.2")[0] == 200  # another client
    (tmp_path / "big").write_bytes(b"\0" * 10 * 2**20)
    guard._disk = (0.0, 0)
    status, text, _ = _asgi(guard, "POST", "/gradio_api/upload", b"", one_mb, client="10.0.0.3")
    assert status == 507 and b"upload space is full" in text


def test_server_budgets_apply_while_serving_and_are_restored():
    from PIL import Image

    from ifcn_viz.app.budget import SERVER_MASK_BYTES, apply_server_budgets, restore_budgets

    before = (limits.MAX_MASK_BYTES, Image.MAX_IMAGE_PIXELS)
    previous = apply_server_budgets()
    try:
        assert limits.MAX_MASK_BYTES == SERVER_MASK_BYTES and Image.MAX_IMAGE_PIXELS == limits.MAX_PIXELS
        with pytest.raises(limits.LimitError, match="use --top-n 10 or less"):
            limits.check_mask_budget(5000, 8000, 30)
    finally:
        restore_budgets(previous)
    assert (limits.MAX_MASK_BYTES, Image.MAX_IMAGE_PIXELS) == before
