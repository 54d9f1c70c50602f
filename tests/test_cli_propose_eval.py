"""`ifcn-viz propose` / `ifcn-viz eval` round trip on a small COCO-format set generated here."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn

from ifcn_viz.config import InferConfig
from ifcn_viz.evaluate import METRIC_KEYS, coco_gt_from_masks
from ifcn_viz.inference import commands
from ifcn_viz.inference.predictor import Predictor
from ifcn_viz.model.ideal import ideal_score_maps

PALETTE = np.array([[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240]])
SMALL = InferConfig(scales=(96, 144), pre_nms_top_k=400, top_n=100)


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ifcn-viz")
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


class ColourOracle(nn.Module):
    """Ideal maps of the objects it *sees*: each palette colour in the (resized) input is one instance."""

    def __init__(self) -> None:
        super().__init__()
        self.config = SimpleNamespace(k=5, m=21, fill_logit=-20.0)
        self.stride = 8

    def forward(self, images: torch.Tensor):
        img = images[0].permute(1, 2, 0) * 255  # (H, W, 3)
        pal = torch.tensor(PALETTE, dtype=img.dtype)
        masks = (img[None] - pal[:, None, None]).abs().amax(-1) < 40  # (6, H, W)
        masks = masks[masks.flatten(1).any(1)]
        ideal = ideal_score_maps(masks, 5, 21, 8)
        return SimpleNamespace(score_maps=ideal.score_maps[None], objectness=ideal.objectness[None], stride=8)


def make_dataset(root, n_images: int = 3, seed: int = 0):
    """PNG images of coloured ellipses/rectangles on grey (some cut by the border) + a COCO instances file."""
    rng = np.random.default_rng(seed)
    all_masks, names = [], []
    for i in range(n_images):
        h, w = int(rng.integers(100, 140)), int(rng.integers(120, 170))
        img = np.full((h, w, 3), 110, np.uint8)
        yy, xx = np.mgrid[:h, :w]
        masks = []
        for c in rng.permutation(len(PALETTE))[: int(rng.integers(2, 5))]:
            cy, cx = rng.integers(-5, h + 5), rng.integers(-5, w + 5)
            ry, rx = rng.integers(8, 35, size=2)
            if rng.random() < 0.5:
                m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            else:
                m = (abs(yy - cy) <= ry) & (abs(xx - cx) <= rx)
            m &= ~np.any(masks, axis=0) if masks else True  # later objects lie behind earlier ones
            if m.sum() < 30:
                continue
            img[m] = PALETTE[c]
            masks.append(m)
        name = f"img_{i}.png"
        Image.fromarray(img).save(root / name)
        all_masks.append(np.stack(masks))
        names.append(name)
    dataset = coco_gt_from_masks(all_masks, names)
    (root / "ann.json").write_text(json.dumps(dataset))
    return dataset


@pytest.fixture()
def oracle(monkeypatch):
    monkeypatch.setattr(
        Predictor, "from_checkpoint", classmethod(lambda cls, name, device=None, infer=None: cls(ColourOracle(), SMALL))
    )


def independent_metrics(ann_path, results_path) -> list[float]:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_path))
        dt = gt.loadRes(str(results_path))
        ev = COCOeval(gt, dt, "segm")
        ev.params.useCats = 0
        ev.params.maxDets = [10, 100, 1000]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats[6:12]]


def test_eval_round_trip_matches_pycocotools(tmp_path, oracle, capsys):
    make_dataset(tmp_path)
    out, mout = tmp_path / "res.json", tmp_path / "metrics.json"
    rc = run_cli(
        ["eval", "--coco-gt", str(tmp_path / "ann.json"), "--image-dir", str(tmp_path), "--top-n", "1000"]
        + ["--out", str(out), "--metrics-out", str(mout), "--no-progress"]
    )
    assert rc == 0
    metrics = json.loads(mout.read_text())
    assert list(metrics) == [*METRIC_KEYS, "recall50@10", "recall50@100", "recall50@1000"]
    np.testing.assert_allclose([metrics[k] for k in METRIC_KEYS], independent_metrics(tmp_path / "ann.json", out))
    assert metrics["AR@100"] > 0.5  # the oracle sees every object: proposals are good
    printed = capsys.readouterr().out
    for k in METRIC_KEYS:
        assert f"{k:8s} {metrics[k]:.4f}" in printed
    results = json.loads(out.read_text())
    assert {r["image_id"] for r in results} == {1, 2, 3}
    r0 = results[0]
    assert r0["category_id"] == 1 and isinstance(r0["segmentation"]["counts"], str) and len(r0["bbox"]) == 4


def test_eval_with_a_bad_image_still_writes_and_fails(tmp_path, oracle, capsys):
    make_dataset(tmp_path)
    (tmp_path / "img_1.png").write_bytes(b"")  # listed in the ground truth, but empty
    mout = tmp_path / "metrics.json"
    rc = run_cli(
        ["eval", "--coco-gt", str(tmp_path / "ann.json"), "--image-dir", str(tmp_path)]
        + ["--out", str(tmp_path / "res.json"), "--metrics-out", str(mout), "--no-progress"]
    )
    assert rc == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "img_1.png" in line]
    assert len(err) == 1 and "empty" in err[0]
    results = json.loads((tmp_path / "res.json").read_text())
    assert {r["image_id"] for r in results} == {1, 3}
    metrics = json.loads(mout.read_text())
    np.testing.assert_allclose(
        [metrics[k] for k in METRIC_KEYS], independent_metrics(tmp_path / "ann.json", tmp_path / "res.json")
    )


def test_propose_with_bad_files_and_viz(tmp_path, oracle, capsys):
    make_dataset(tmp_path, n_images=2)
    (tmp_path / "bad.jpg").write_bytes(np.random.default_rng(0).bytes(300))
    (tmp_path / "v.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    images = [tmp_path / "img_0.png", tmp_path / "bad.jpg", tmp_path / "missing.png", tmp_path / "img_1.png"]
    images.append(tmp_path / "v.svg")
    rc = run_cli(
        ["propose", *map(str, images), "--top-n", "5", "--out", str(tmp_path / "p.json")]
        + ["--viz-dir", str(tmp_path / "viz"), "--no-progress"]
    )
    assert rc == 1
    err = capsys.readouterr().err.splitlines()
    skipped = [line for line in err if "skipped" in line]
    assert len(skipped) == 3 and all(line.startswith("ifcn-viz propose: skipped") for line in skipped)
    assert any("not an image" in s for s in skipped) and any("not found" in s for s in skipped)
    assert any("vector" in s for s in skipped)
    results = json.loads((tmp_path / "p.json").read_text())
    assert {r["image_id"] for r in results} == {1, 4}  # positions in the argument list, from 1
    assert sum(r["image_id"] == 1 for r in results) <= 5
    pngs = sorted(p.name for p in (tmp_path / "viz").iterdir())
    assert pngs == ["0001_img_0.png", "0004_img_1.png"]
    assert Image.open(tmp_path / "viz" / pngs[0]).size == Image.open(tmp_path / "img_0.png").size


def test_propose_with_a_real_checkpoint(tmp_path, capsys):
    from ifcn_viz.checkpoints import save_checkpoint
    from ifcn_viz.model import build_model

    torch.manual_seed(0)
    ckpt = save_checkpoint(build_model("tiny"), tmp_path / "rand", {"preset": "tiny", "infer_config": {"scales": [64]}})
    Image.fromarray(np.full((50, 70, 3), 90, np.uint8)).save(tmp_path / "a.png")
    rc = run_cli(
        ["propose", str(tmp_path / "a.png"), "--checkpoint", str(ckpt), "--top-n", "3", "--nms-iou", "0.5"]
        + ["--mask-threshold", "0.3", "--device", "cpu", "--out", str(tmp_path / "p.json"), "--no-progress"]
    )
    assert rc == 0 and len(json.loads((tmp_path / "p.json").read_text())) <= 3
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:  # refused while parsing, before any model is built
        run_cli(
            ["propose", str(tmp_path / "a.png"), "--checkpoint", str(tmp_path / "nope.safetensors")]
            + ["--out", str(tmp_path / "q.json")]
        )
    assert info.value.code == 2 and "checkpoint file not found" in capsys.readouterr().err
    assert not (tmp_path / "q.json").exists()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"junk")
    assert (
        run_cli(["propose", str(tmp_path / "a.png"), "--checkpoint", str(bad), "--out", str(tmp_path / "r.json")]) == 2
    )
    assert "cannot load checkpoint" in capsys.readouterr().err


def test_propose_takes_folders_and_globs_and_writes_an_id_to_file_map(tmp_path, oracle, capsys):
    make_dataset(tmp_path, n_images=3)
    (tmp_path / "sub").mkdir()
    (tmp_path / "img_2.png").rename(tmp_path / "sub" / "img_2.png")
    out = tmp_path / "p.json"
    rc = run_cli(["propose", str(tmp_path / "img_*.png"), str(tmp_path / "sub"), "--top-n", "3", "--out", str(out)])
    assert rc == 0
    names = [str(tmp_path / "img_0.png"), str(tmp_path / "img_1.png"), str(tmp_path / "sub" / "img_2.png")]
    mapping = json.loads((tmp_path / "p.images.json").read_text())
    assert mapping == {"1": names[0], "2": names[1], "3": names[2]}
    results = json.loads(out.read_text())
    assert {(r["image_id"], r["file_name"]) for r in results} == {(1, names[0]), (2, names[1]), (3, names[2])}


def test_propose_keeps_what_it_did_when_a_late_image_fails(tmp_path, oracle, monkeypatch):
    make_dataset(tmp_path, n_images=3)
    calls = []
    orig = Predictor.proposals

    def third_crashes(self, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("out of memory on the last image")
        return orig(self, **kw)

    monkeypatch.setattr(Predictor, "proposals", third_crashes)
    out = tmp_path / "p.json"
    with pytest.raises(MemoryError):
        run_cli(["propose", str(tmp_path / "img_*.png"), "--top-n", "3", "--out", str(out), "--no-progress"])
    results = json.loads(out.read_text())  # still a valid JSON list, holding the first two images' proposals
    assert {r["image_id"] for r in results} == {1, 2}
    assert json.loads((tmp_path / "p.images.json").read_text()) == {
        "1": str(tmp_path / "img_0.png"),
        "2": str(tmp_path / "img_1.png"),
    }
