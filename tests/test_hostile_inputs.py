"""Hostile-but-tiny inputs are refused (or handled cheaply) with one line, within a memory and time budget.

The corpus is generated here (tests/corpus.py): PNGs of 16 x 2,400,000 and 2,400,000 x 16 pixels and a 16-bit
RGBA 40-megapixel PNG, each a few hundred KB; EPS/PostScript and PDF; the smallest valid images; checkpoint cards
edited to build a huge model or a huge pyramid; deflate bombs and archives with too many entries.  Each case runs
in a subprocess whose peak memory (``ru_maxrss``) and wall time are asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from corpus import hostile_checkpoints, hostile_images

from ifcn_viz import limits

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "ifcn_viz" / "weights"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# Run a command, then report the child's peak RSS (this wrapper is fresh, so RUSAGE_CHILDREN is that child alone).
MEASURE = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    t = time.perf_counter()
    try:
        p = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=float(sys.argv[1]))
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        rc, out, err = "timeout", "", ""
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"rc": rc, "peak_mb": peak, "secs": time.perf_counter() - t, "out": out, "err": err}))
    """
)

# The image loader alone: the package's __init__ (which imports torch) is bypassed so the budget is the loader's.
LOAD_IMAGE = textwrap.dedent(
    """
    import sys, types
    pkg = types.ModuleType("ifcn_viz"); pkg.__path__ = [sys.argv[1] + "/ifcn_viz"]; sys.modules["ifcn_viz"] = pkg
    from ifcn_viz.data.io import ImageLoadError, load_image
    try:
        a = load_image(sys.argv[2])
        print("OK", a.shape[0], a.shape[1])
    except ImageLoadError as e:
        print("ERR", e)
    """
)

# Every crafted checkpoint in one process: per case, the growth of the peak RSS and the time.
LOAD_CHECKPOINTS = textwrap.dedent(
    """
    import json, resource, sys, time
    from ifcn_viz.checkpoints import CheckpointError, load_checkpoint
    report = {}
    for path in sys.argv[1:]:
        before, t = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
        try:
            load_checkpoint(path)
            answer = "OK"
        except CheckpointError as e:
            answer = "ERR " + str(e)
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        report[path] = {"answer": answer, "grew_mb": grew, "secs": time.perf_counter() - t}
    print(json.dumps(report))
    """
)


def measure(args: list[str], timeout: float = 90) -> dict:
    p = subprocess.run([sys.executable, "-c", MEASURE, str(timeout), *args], capture_output=True, text=True, env=ENV)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return hostile_images(tmp_path_factory.mktemp("hostile_images"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    card = json.loads((WEIGHTS / "shipped.json").read_text())
    return hostile_checkpoints(tmp_path_factory.mktemp("hostile_ckpts"), WEIGHTS / "shipped.safetensors", card)


def test_every_hostile_image_through_the_loader_within_budget(images):
    for name, case in images.items():
        r = measure([sys.executable, "-c", LOAD_IMAGE, str(ROOT), str(case.path)], timeout=30)
        lines = r["out"].strip().splitlines()
        assert r["rc"] == 0 and len(lines) == 1 and "Traceback" not in r["err"], (name, r)
        if case.ok:
            assert lines[0].startswith("OK"), (name, lines)
            budget = 700 if "40mp" in name else 150  # a 40 MP RGBA image: its 160 MB of pixels, about twice
        else:
            assert lines[0].startswith("ERR"), (name, lines)
            assert all(w.lower() in lines[0].lower() for w in case.words), (name, lines[0])
            budget = 150  # refused from the header: nothing is decoded
        assert r["peak_mb"] < budget and r["secs"] < 20, (name, r["peak_mb"], r["secs"])


def test_only_the_advertised_formats_are_ever_decoded(images, monkeypatch):
    """An EPS never reaches Pillow's EPS plugin (which would start Ghostscript), whatever its file name."""
    from PIL import EpsImagePlugin

    from ifcn_viz.data.io import ImageLoadError, load_image

    def boom(*a, **k):
        raise AssertionError("the EPS decoder was called")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", boom)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", boom, raising=False)
    for name in ("eps.eps", "eps_named.png"):
        with pytest.raises(ImageLoadError, match="PostScript"):
            load_image(images[name].path)
        with pytest.raises(ImageLoadError, match="PostScript"):
            load_image(images[name].path.read_bytes())
    assert set(limits.IMAGE_FORMATS) == {"PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"}


def test_crafted_checkpoints_are_refused_before_anything_is_built(checkpoints):
    paths = [str(c.path) for c in checkpoints.values()]
    p = subprocess.run(
        [sys.executable, "-c", LOAD_CHECKPOINTS, *paths], capture_output=True, text=True, env=ENV, timeout=120
    )
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.loads(p.stdout)
    for name, case in checkpoints.items():
        r = report[str(case.path)]
        assert r["answer"].startswith("ERR") and "\n" not in r["answer"], (name, r)
        assert all(w.lower() in r["answer"].lower() for w in case.words), (name, r["answer"])
        # a refused card or archive allocates nothing of note (the weights file itself is 3.7 MB)
        assert r["grew_mb"] < 64 and r["secs"] < 10, (name, r)


def test_archive_limits_are_read_from_the_directory_alone(tmp_path, monkeypatch):
    """The unpacked-total bound, on a small stored archive with the limit lowered (the default is 2 GB)."""
    from corpus import zip_bytes

    from ifcn_viz.checkpoints import CheckpointError, load_checkpoint

    path = tmp_path / "big.pt"
    path.write_bytes(zip_bytes({"a/data/0": (3 * 1024**2, 1024**2), "a/data.pkl": b"x"}, compress=False))
    monkeypatch.setattr(limits, "MAX_ARCHIVE_UNPACKED_BYTES", 2 * 1024**2)
    with pytest.raises(CheckpointError, match=r"would unpack to 3\.0 MB; at most 2\.0 MB"):
        load_checkpoint(path)
    monkeypatch.setattr(limits, "MAX_ARCHIVE_UNPACKED_BYTES", 4 * 1024**2)
    with pytest.raises(CheckpointError, match="not a plain tensor file"):  # within the limit: on to torch.load
        load_checkpoint(path)


def test_hostile_inputs_through_the_cli_give_one_line_within_budget(images, checkpoints, tmp_path):
    cli = [sys.executable, "-m", "ifcn_viz", "propose", "--no-progress", "--out"]
    runs = {
        "tall image": (cli + [str(tmp_path / "a.json"), str(images["tall_16x2400000.png"].path)], "aspect ratio"),
        "huge card": (
            cli + [str(tmp_path / "b.json"), str(images["small_16.png"].path)]
            + ["--checkpoint", str(checkpoints["head_1e6"].path)],
            "head_channels",
        ),
        "16-bit RGBA 40 MP, 100 masks": (
            cli + [str(tmp_path / "c.json"), str(images["rgba16_40mp.png"].path), "--top-n", "100"],
            "full-size masks would take",
        ),
    }  # fmt: skip
    for what, (argv, words) in runs.items():
        r = measure(argv, timeout=90)
        err = [ln for ln in r["err"].splitlines() if ln.strip()]
        assert r["rc"] == 2 and "Traceback" not in r["err"], (what, r)
        assert len(err) == 1 and words in err[0] and err[0].startswith("ifcn-viz propose:"), (what, err)
        assert r["peak_mb"] < 2500 and r["secs"] < 60, (what, r["peak_mb"], r["secs"])  # before: 3.2-7.4 GB
    # the smallest valid images (16..35 px a side) all get proposals
    small = [str(c.path) for n, c in images.items() if n.startswith(("small_", "strip_"))]
    r = measure(cli + [str(tmp_path / "small.json"), *small, "--top-n", "5"], timeout=90)
    assert r["rc"] == 0, r
    results = json.loads((tmp_path / "small.json").read_text())
    assert {res["image_id"] for res in results} == set(range(1, len(small) + 1))
    assert {res["file_name"] for res in results} == set(small)
    assert r["peak_mb"] < 2000 and r["secs"] < 60, (r["peak_mb"], r["secs"])


def test_the_pyramid_and_mask_checks_for_the_predictor():
    """check_pyramid / check_mask_budget: what the Predictor will allocate, bounded from the image size alone."""
    tiny, paper = (192, 288, 432), (119, 178, 267, 400, 600, 900)
    for h, w in ((16, 16), (480, 640), (5000, 8000), (1414, 28_280), (16, 320)):
        limits.check_pyramid(h, w, tiny, 2000, 168)  # every image the loader accepts
        limits.check_pyramid(h, w, paper, 2000, 168)
    with pytest.raises(limits.LimitError, match="shrink the shorter side to 0.0 px"):
        limits.check_pyramid(16, 2_400_000, tiny, 2000, 168)  # what the aspect bound keeps out of the loader
    with pytest.raises(limits.LimitError, match="would resize it to"):
        limits.check_pyramid(2000, 4000, (2000,) * 8, 4000, 168)  # 8 x 8 MP
    limits.check_mask_budget(480, 640, 1000)  # AR@1000 on a COCO-sized image: 0.3 GB
    with pytest.raises(limits.LimitError, match="use --top-n 53 or less"):
        limits.check_mask_budget(5000, 8000, 100)
