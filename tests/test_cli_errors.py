"""Every subcommand answers a wrong invocation with exactly one line on stderr and exit status 2.

The line reads ``ifcn-viz <cmd>: <what was wrong> (<what is accepted>)``; there is never a traceback; paths and
numbers are checked while parsing, so none of these builds a model.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import png_bytes, sample_image

from ifcn_viz.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_errors")
    (d / "img.png").write_bytes(png_bytes(sample_image(0, 64, 64)))
    (d / "notes.txt").write_text("not an image\n")
    (d / "not_json.json").write_bytes(png_bytes(sample_image(1, 32, 32)))
    (d / "broken.json").write_text('{"images": [1, 2')
    result = {"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": {"size": [4, 4], "counts": "0@0"}}
    (d / "results.json").write_text(json.dumps([result]))
    gt = {"images": [{"id": 1, "file_name": "elsewhere.png", "height": 64, "width": 64}], "annotations": [],
          "categories": [{"id": 1, "name": "object"}]}  # fmt: skip
    (d / "gt.json").write_text(json.dumps(gt))
    (d / "empty_dir").mkdir()
    (d / "voc").mkdir()
    (d / "a_file").write_text("x")
    (d / "run_without_state").mkdir()
    return d


def _cases(d: Path, busy_port: int) -> list[tuple[str, list[str], str]]:
    """(subcommand, argv, a phrase the line must hold)."""
    img, out = str(d / "img.png"), str(d / "out.json")
    return [
        ("ifcn-viz", ["bogus"], "invalid choice"),
        ("ifcn-viz", [], "required"),
        # train
        ("train", ["train", "--iter", "2"], "unrecognized arguments: --iter 2"),
        ("train", ["train", "--threads", "-3"], "--threads: -3 is out of range"),
        ("train", ["train", "--ckpt-every", "0"], "--ckpt-every: 0 is out of range"),
        ("train", ["train", "--log-every", "0"], "--log-every: 0"),
        ("train", ["train", "--iters", "0"], "--iters: 0"),
        ("train", ["train", "--lr", "-0.1"], "--lr: -0.1 is out of range"),
        ("train", ["train", "--lr", "nan"], "not a finite number"),
        ("train", ["train", "--batch-size", "two"], "'two' is not an integer"),
        ("train", ["train", "--ckpt-minutes", "0"], "--ckpt-minutes"),
        ("train", ["train", "--dataset", "coco"], "--dataset coco needs --coco-ann"),
        ("train", ["train", "--dataset", "coco", "--coco-ann", str(d / "missing.json")], "file not found"),
        (
            "train",
            ["train", "--dataset", "coco", "--coco-ann", str(d / "not_json.json")],
            "not_json.json is not a JSON",
        ),
        ("train", ["train", "--dataset", "voc", "--voc-root", str(d / "no_voc")], "folder not found"),
        ("train", ["train", "--val-ann", str(d / "gt.json")], "--val-ann and --val-dir go together"),
        (
            "train",
            ["train", "--dataset", "coco", "--coco-ann", str(d / "broken.json"), "--image-dir", "."],
            "broken.json is not valid JSON",
        ),
        ("train", ["train", "--val-ann", str(d / "results.json"), "--val-dir", "."], "COCO results list"),
        ("train", ["train", "--out", str(d / "a_file" / "run")], "cannot be created"),
        ("train", ["train", "--resume", "--out", str(d / "run_without_state")], "no complete checkpoint"),
        ("ablation", ["ablation", "--iters", "0"], "--iters: 0"),
        # propose
        ("propose", ["propose", img], "--out"),
        ("propose", ["propose", img, "--out", out, "--top", "5"], "unrecognized arguments: --top"),
        ("propose", ["propose", img, "--out", out, "--top-n", "0"], "--top-n: 0 is out of range"),
        ("propose", ["propose", img, "--out", out, "--nms-iou", "2"], "in [0, 1]"),
        ("propose", ["propose", img, "--out", out, "--mask-threshold", "1"], "between 0 and 1"),
        ("propose", ["propose", img, "--out", str(d)], "is a folder"),
        ("propose", ["propose", img, "--out", str(d / "a_file" / "p.json")], "a_file exists and is not a folder"),
        ("propose", ["propose", img, "--out", out, "--checkpoint", str(d / "m.safetensors")], "checkpoint file not"),
        ("propose", ["propose", str(d / "nothing_*.png"), "--out", out], "matches no file"),
        ("propose", ["propose", str(d / "empty_dir"), "--out", out], "holds no image files"),
        ("propose", ["propose", str(d / "missing.png"), "--out", out], "image not found"),
        ("propose", ["propose", str(d / "notes.txt"), "--out", out, "--no-progress"], "not an image"),
        # eval
        ("eval", ["eval", "--coco-gt", str(d / "missing.json"), "--image-dir", str(d)], "file not found"),
        ("eval", ["eval", "--coco-gt", str(d / "not_json.json"), "--image-dir", str(d)], "is not a JSON file"),
        ("eval", ["eval", "--coco-gt", str(d / "broken.json"), "--image-dir", str(d)], "broken.json is not valid JSON"),
        ("eval", ["eval", "--coco-gt", str(d / "results.json"), "--image-dir", str(d)], "COCO results list"),
        ("eval", ["eval", "--coco-gt", str(d / "gt.json"), "--image-dir", str(d / "nope")], "folder not found"),
        ("eval", ["eval", "--coco-gt", str(d / "gt.json"), "--image-dir", str(d)], "none of the 1 images"),
        ("eval", ["eval", "--coco-gt", str(d / "gt.json"), "--image-dir", str(d), "--max-images", "0"], "0 is out"),
        # make-dataset
        ("make-dataset", ["make-dataset", "synthetic", "--n", "0", "--out", str(d / "ds")], "--n: 0 is out of range"),
        ("make-dataset", ["make-dataset", "synthetic", "--n", "x", "--out", str(d / "ds")], "'x' is not an integer"),
        ("make-dataset", ["make-dataset", "synthetic", "--n", "2", "--out", str(d / "a_file")], "is not a folder"),
        ("make-dataset", ["make-dataset", "synthetic", "--n", "2", "--out", "o", "--size", "0", "9"], "--size"),
        ("make-dataset", ["make-dataset", "mnist", "--n", "2", "--out", "o"], "invalid choice: 'mnist'"),
        # gallery
        ("gallery", ["gallery", "--image", str(d / "missing.png")], "file not found"),
        ("gallery", ["gallery", "--checkpoint", str(d / "m.safetensors")], "checkpoint file not found"),
        ("gallery", ["gallery", "--out", str(d / "a_file")], "is not a folder"),
        # app
        ("app", ["app", "--port", "99999"], "--port: 99999 is out of range (an integer in 1..65535)"),
        ("app", ["app", "--port", "0"], "--port: 0"),
        ("app", ["app", "--concurrency", "0"], "--concurrency"),
        ("app", ["app", "--port", str(busy_port)], f"port {busy_port} on 127.0.0.1 is already in use (pass --port N"),
    ]


def run(argv: list[str], capsys) -> tuple[int, list[str], str]:
    try:
        rc = main(argv)
    except SystemExit as exit_:
        rc = exit_.code
    captured = capsys.readouterr()
    return rc, [ln for ln in captured.err.splitlines() if ln.strip()], captured.err


def test_every_wrong_invocation_gives_one_line_and_status_2(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        cases = _cases(files, busy.getsockname()[1])
        failures = []
        for cmd, argv, phrase in cases:
            rc, lines, err = run(argv, capsys)
            prefix = "ifcn-viz:" if cmd == "ifcn-viz" else f"ifcn-viz {cmd}:"
            ok = rc == 2 and len(lines) == 1 and "Traceback" not in err and lines[0].startswith(prefix)
            if not (ok and phrase in lines[0]):
                failures.append((argv, rc, lines))
    assert not failures, "\n".join(map(str, failures))
    assert len(cases) >= 45


def test_a_mistyped_flag_names_the_subcommands_usage(capsys):
    rc, lines, _ = run(["train", "--iter", "2"], capsys)
    assert rc == 2 and "(usage: ifcn-viz train [-h]" in lines[0] and "--iters ITERS" in lines[0]
    rc, lines, _ = run(["make-dataset", "synthetic", "--n", "2", "--out", "o", "--see", "3"], capsys)  # --seed?
    assert rc == 2 and "unrecognized arguments: --see 3" in lines[0] and "usage: ifcn-viz make-dataset" in lines[0]


def test_every_flag_has_help_and_shows_its_default():
    from ifcn_viz.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        assert not p.allow_abbrev, name
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, (name, action.option_strings)
        text = p.format_help()
        if name == "propose":
            assert "(default: 100)" in text and "(default: shipped)" in text
        if name == "app":
            assert "else 7860)" in " ".join(text.split())  # GRADIO_SERVER_PORT, else 7860


def test_in_a_real_process_there_is_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for argv in (["train", "--iter", "2"], ["make-dataset", "synthetic", "--n", "0", "--out", str(tmp_path)]):
        p = subprocess.run([sys.executable, "-m", "ifcn_viz", *argv], capture_output=True, text=True, env=env)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
