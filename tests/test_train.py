"""The training loop: learning on a fixed batch, checkpoints, exact --resume (also after SIGKILL), NaN guard, bf16."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from ifcn_viz.checkpoints import load_checkpoint
from ifcn_viz.data.synthetic import SyntheticDataset
from ifcn_viz.data.transforms import pad_collate
from ifcn_viz.train import loop as loop_mod
from ifcn_viz.train.loop import build_train_model, train
from ifcn_viz.train.loss import LossTerms, instance_fcn_loss
from ifcn_viz.train.recipe import RECIPES, TrainConfig, lr_at, train_config
from ifcn_viz.train.state import STATE_NAME, load_train_state
from ifcn_viz.train.targets import WindowRule, sample_windows


def small_cfg(out: Path, **kw) -> TrainConfig:
    base = dict(preset="tiny", out=str(out), iters=4, batch_size=2, image_size=96, short_sides=(88, 96),
                train_scenes=16, windows_per_image=64, eval_images=0, ckpt_every=2, progress=False, amp="none",
                warmup=1, lr=2e-3, log_every=1)  # fmt: skip
    base.update(kw)
    return train_config(base.pop("preset"), **base)


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_a_few_iterations_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    cfg = small_cfg(Path("unused"))
    model = build_train_model(cfg).train()
    ds = SyntheticDataset(2, seed=4, size=(128, 128))
    images, masks, sizes = pad_collate([(img.float() / 255, mk) for img, mk in (ds[0], ds[1])])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rule = WindowRule(windows_per_image=64)
    losses = []
    for it in range(12):
        out = model(images)
        t = sample_windows(
            masks, tuple(out.score_maps.shape[-2:]), 21, 8, rule, torch.Generator().manual_seed(it), sizes
        )
        loss = instance_fcn_loss(out.score_maps, out.objectness, t, 21).total
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def test_checkpoint_round_trip_and_card(tmp_path):
    res = train(small_cfg(tmp_path / "run", iters=2), command="ifcn-viz train --test")
    model, card = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    for key, val in res.model.state_dict().items():
        assert torch.equal(model.state_dict()[key], val.cpu()), key
    assert card["preset"] == "tiny" and card["k"] == 5 and card["m"] == 21 and card["stride"] == 8
    assert card["seed"] == 0 and card["step"] == 2 and card["command"] == "ifcn-viz train --test"
    assert card["infer_config"]["scales"] and card["data"]["dataset"] == "synthetic"
    state = torch.load(tmp_path / "run" / STATE_NAME, weights_only=True)  # plain tensors and containers only
    assert state["step"] == 2


def test_a_run_stopped_during_its_final_evaluation_keeps_the_last_steps_weights(tmp_path, monkeypatch):
    """The final evaluation can take minutes (a GPU run was once cut there at a deadline): the last step's weights
    are written before it, and the card gets the metrics after it."""

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop_mod, "evaluate_model", stopped)
    with pytest.raises(KeyboardInterrupt):
        train(small_cfg(tmp_path / "r", iters=3, ckpt_every=100, eval_images=2))
    card = json.loads((tmp_path / "r" / "checkpoint.json").read_text())
    assert (card["step"], card["iters"], card["images_seen"]) == (3, 3, 3 * 2)
    assert int(load_train_state(tmp_path / "r" / STATE_NAME)["step"]) == 3
    monkeypatch.setattr(loop_mod, "evaluate_model", lambda *a, **k: {"AR@100": 0.5})
    train(small_cfg(tmp_path / "s", iters=3, ckpt_every=100, eval_images=2))
    assert json.loads((tmp_path / "s" / "checkpoint.json").read_text())["metrics"] == {"AR@100": 0.5}


def test_resume_continues_step_count_schedule_and_data_exactly(tmp_path):
    straight = train(small_cfg(tmp_path / "a"))
    train(small_cfg(tmp_path / "b"), stop_at=2)
    assert load_train_state(tmp_path / "b" / STATE_NAME)["step"] == 2
    resumed = train(small_cfg(tmp_path / "b"), resume=True)
    assert resumed.step == straight.step == 4
    a, b = params(straight.model), params(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run differs from the uninterrupted one"
    recs = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    assert [r["lr"] for r in recs] == [r["lr"] for r in ref] == [lr_at(small_cfg(tmp_path), s) for s in range(4)]
    assert [r["loss"] for r in recs] == [r["loss"] for r in ref]


def test_resume_refuses_different_settings(tmp_path):
    train(small_cfg(tmp_path / "c", iters=4), stop_at=2)
    with pytest.raises(ValueError, match="seed"):
        train(small_cfg(tmp_path / "c", iters=4, seed=3), resume=True)
    with pytest.raises(ValueError, match="already at step 2"):
        train(small_cfg(tmp_path / "c", iters=1), resume=True)


def test_a_finished_run_can_be_extended_and_says_where_it_resumed(tmp_path, capsys):
    train(small_cfg(tmp_path / "e", iters=2))
    capsys.readouterr()
    res = train(small_cfg(tmp_path / "e", iters=4), resume=True)
    out = capsys.readouterr().out
    assert "resumed from step 2 of 4" in out and "extended from 2 to 4" in out, out
    assert res.step == 4 and load_train_state(tmp_path / "e" / STATE_NAME)["step"] == 4
    logged = [json.loads(line)["step"] for line in (tmp_path / "e" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]
    assert "step 3/4  loss" in out  # plain log lines without a progress bar


def test_non_finite_losses_are_skipped_then_the_run_stops(tmp_path, monkeypatch):
    def nan_loss(*args, **kwargs):
        terms = instance_fcn_loss(*args, **kwargs)
        return LossTerms(terms.total * float("nan"), terms.objectness, terms.mask)

    monkeypatch.setattr(loop_mod, "instance_fcn_loss", nan_loss)
    before = {k: v.detach().clone() for k, v in build_train_model(small_cfg(tmp_path)).named_parameters()}
    built = []
    monkeypatch.setattr(loop_mod, "build_train_model", lambda cfg: built.append(build_train_model(cfg)) or built[-1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(FloatingPointError, match="non-finite"):
            train(small_cfg(tmp_path / "nan", iters=10, max_bad_steps=3))
    assert sum("non-finite loss" in str(w.message) for w in caught) == 3
    after = dict(built[0].named_parameters())  # the weights the run trained (BN statistics move on forward)
    assert set(after) == set(before) and all(torch.equal(before[k], after[k]) for k in before)
    assert not (tmp_path / "nan" / STATE_NAME).exists()  # the stop comes before any checkpoint


def test_bf16_autocast_training_runs_with_finite_losses(tmp_path):
    res = train(small_cfg(tmp_path / "bf16", iters=3, amp="bf16"))
    recs = [json.loads(line) for line in (tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()]
    assert res.step == 3 and all(torch.isfinite(torch.tensor(r["loss"])) for r in recs)
    assert json.loads((tmp_path / "bf16" / "checkpoint.json").read_text())["amp"] == "bfloat16"


_CHILD = """
import sys, time
import torch
torch.set_num_threads({threads})  # the parent's: float sums depend on the thread count
from ifcn_viz.train import loop
from ifcn_viz.train.recipe import TrainConfig
cfg = TrainConfig.from_dict({cfg!r})
orig = loop.instance_fcn_loss
def slow(*a, **k):
    time.sleep(0.3)  # widen the window in which the parent kills us
    return orig(*a, **k)
loop.instance_fcn_loss = slow
loop.train(cfg)
"""


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    cfg = small_cfg(tmp_path / "killed", iters=8, ckpt_every=1)
    code = _CHILD.format(cfg=cfg.to_dict(), threads=torch.get_num_threads())  # whatever earlier tests set it to
    child = subprocess.Popen([sys.executable, "-c", code])
    state = tmp_path / "killed" / STATE_NAME
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            if state.exists() and load_train_state(state)["step"] >= 3:
                break
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    killed_at = load_train_state(state)["step"]
    assert 3 <= killed_at < 8, f"the child should be killed mid-run, it reached step {killed_at}"
    resumed = train(cfg, resume=True)
    straight = train(small_cfg(tmp_path / "straight", iters=8, ckpt_every=1))
    a, b = params(straight.model), params(resumed.model)
    assert resumed.step == 8 and all(torch.equal(a[k], b[k]) for k in a)
    logged = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(1, 9)), "lines logged after the last checkpoint are dropped on resume"


def test_fc_baseline_windows_are_reproduced_by_the_assembler_with_k_equal_m():
    from ifcn_viz.config import get_preset
    from ifcn_viz.model.assemble import assemble_at
    from ifcn_viz.model.fc_baseline import FCBaselineModel
    from ifcn_viz.train.ablation import mask_head_parameters

    torch.manual_seed(0)
    model = FCBaselineModel(get_preset("tiny").model).eval()
    out = model(torch.rand(1, 3, 96, 128))
    assert model.config.k == model.config.m == 21 and out.score_maps.shape == (1, 441, 12, 16)
    per_window = model.instance.head(out.features)  # (1, m*m, H', W'): window (y, x)'s 21 x 21 logits
    centers = torch.tensor([[0, 5, 7], [0, 0, 0], [0, 11, 15]])
    got = assemble_at(out.score_maps, centers, 21)
    for n, (_, y, x) in enumerate(centers.tolist()):
        rows, cols = torch.arange(21) - 10 + y, torch.arange(21) - 10 + x
        inside = ((rows >= 0) & (rows < 12))[:, None] & ((cols >= 0) & (cols < 16))[None, :]
        assert torch.allclose(got[n][inside], per_window[0, :, y, x].view(21, 21)[inside])
        assert (got[n][~inside] == -20).all()
    ifcn = build_train_model(small_cfg(Path("unused")))
    assert mask_head_parameters(model) > 30 * mask_head_parameters(ifcn)


@pytest.mark.slow
def test_paper_preset_trains_end_to_end_with_the_papers_sgd_schedule(tmp_path):
    """The paper's model (dilated VGG-16, k = 5) and recipe (SGD, momentum 0.9, wd 5e-4, lr 1e-3 -> 1e-4 at 80 %),
    run for a few small steps on the CPU: the full path, not only the tiny preset."""
    recipe = {**RECIPES["paper"], "short_sides": (96,)}  # the paper's 119..900 px pyramid is too slow for a test
    cfg = small_cfg(tmp_path / "paper", **{**recipe, "preset": "paper", "iters": 3, "ckpt_every": 3, "warmup": 0})
    assert lr_at(cfg, 0) == pytest.approx(1e-3)
    paper_cfg = train_config("paper")
    assert paper_cfg.iters == 40_000 and paper_cfg.optimizer == "sgd" and paper_cfg.batch_size == 1
    assert lr_at(paper_cfg, 31_999) == pytest.approx(1e-3) and lr_at(paper_cfg, 32_000) == pytest.approx(1e-4)
    before = params(build_train_model(cfg))
    result = train(cfg, command="test")
    assert result.step == 3
    opt = load_train_state(tmp_path / "paper" / STATE_NAME)["optimizer"]
    assert opt["param_groups"][0]["momentum"] == 0.9 and opt["param_groups"][0]["weight_decay"] == 5e-4
    model, card = load_checkpoint(result.checkpoint)
    assert card["preset"] == "paper" and model.config.backbone == "vgg16" and model.config.k == 5
    after = model.state_dict()
    changed = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert any(k.startswith("backbone.") for k in changed) and any(k.startswith("instance.") for k in changed)


def test_train_config_layers_recipe_then_shipped_then_explicit_settings():
    assert TrainConfig() == train_config("tiny"), "the dataclass defaults are the tiny recipe: no second default"
    cfg = train_config("paper", iters=10, lr=None, out="runs/x")
    assert (cfg.optimizer, cfg.lr, cfg.iters, cfg.out) == ("sgd", 1e-3, 10, "runs/x")
    assert cfg.short_sides == RECIPES["paper"]["short_sides"]
    assert train_config("resnet50").out == "runs/resnet50"
    shipped = train_config("tiny", shipped=True, seed=None, eval_images=3)
    assert (shipped.iters, shipped.warmup, shipped.seed, shipped.eval_images) == (3000, 100, 0, 3)
    with pytest.raises(ValueError, match="--shipped cpu is the recorded recipe"):
        train_config("tiny", shipped=True, dataset="coco", coco_ann="a.json", image_dir="i")
    with pytest.raises(ValueError, match="unknown preset 'huge'; choose one of paper, resnet50, tiny"):
        train_config("huge")
    with pytest.raises(ValueError, match=r"unknown training settings \['iter'\]"):
        train_config("tiny", iter=3)
    with pytest.raises(ValueError, match="head must be one of ifcn, fc"):
        train_config("tiny", head="mlp")


def test_the_cli_the_ablation_and_the_live_training_build_their_config_with_the_recipe():
    from ifcn_viz.app.live_train import live_config
    from ifcn_viz.cli import build_parser
    from ifcn_viz.train import commands
    from ifcn_viz.train.ablation import ablation_configs
    from ifcn_viz.train.recipe import SHIPPED_RECIPES

    args = build_parser().parse_args(["train", "--preset", "tiny", "--iters", "7", "--no-progress"])
    assert commands._config_from_args(args) == train_config("tiny", iters=7, progress=False)
    args = build_parser().parse_args(["train", "--shipped", "--out", "o"])
    assert commands._config_from_args(args) == train_config("tiny", shipped=True, out="o")
    assert train_config("tiny", shipped=True) == train_config("tiny", shipped="cpu")
    args = build_parser().parse_args(["train", "--preset", "small", "--shipped", "gpu", "--train-scenes", "99"])
    gpu = commands._config_from_args(args)
    assert gpu == train_config("small", shipped="gpu", train_scenes=99)
    assert (gpu.batch_size, gpu.iters) == (SHIPPED_RECIPES["gpu"]["small"]["batch_size"],
                                           SHIPPED_RECIPES["gpu"]["small"]["iters"])  # fmt: skip
    with pytest.raises(ValueError, match="--shipped gpu is the recorded recipe of a shipped model"):
        train_config("resnet18", shipped="gpu")
    live = live_config(20, seed=3)
    assert live.train_scenes == RECIPES["tiny"]["train_scenes"] == 2000  # not 100,000 uncached scenes
    assert (live.optimizer, live.lr, live.iters, live.device, live.amp) == ("adamw", 3e-3, 20, "cpu", "none")
    recipe = {k: v for k, v in RECIPES["tiny"].items() if k not in ("iters", "batch_size")}  # the ablation's budget
    configs = ablation_configs("runs/a", iters=5, seed=0, eval_images=2)
    for _, cfg in configs:
        assert {k: getattr(cfg, k) for k in recipe} == recipe and (cfg.iters, cfg.batch_size) == (5, 4)
    assert [(c.k, c.head, c.assembler_init) for _, c in configs] == [
        (1, "ifcn", "onehot"), (3, "ifcn", "onehot"), (5, "ifcn", "onehot"), (7, "ifcn", "onehot"),
        (None, "fc", "onehot"), (5, "learned", "onehot"), (5, "learned", "random"),
    ]  # fmt: skip
    assert len({c.out for _, c in configs + ablation_configs("runs/a", iters=5, seed=1, eval_images=2)}) == 14


def test_an_fc_head_run_loads_back_through_the_loader_and_the_predictor(tmp_path):
    """`ifcn-viz train --head fc` writes a checkpoint whose card says head=fc; it loads like any other."""
    from ifcn_viz.cli import main
    from ifcn_viz.config import InferConfig
    from ifcn_viz.inference.predictor import Predictor
    from ifcn_viz.model.fc_baseline import FCBaselineModel

    out = tmp_path / "fc"
    argv = ["train", "--head", "fc", "--iters", "2", "--batch-size", "1", "--image-size", "96", "--eval-images", "0",
            "--amp", "none", "--no-progress", "--out", str(out), "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    ckpt = out / "checkpoint.safetensors"
    model, card = load_checkpoint(ckpt)
    assert isinstance(model, FCBaselineModel) and card["model_config"]["head"] == "fc" and model.config.k == 21
    predictor = Predictor.from_checkpoint(ckpt, infer=InferConfig(scales=(96,), pre_nms_top_k=50, top_n=10))
    assert isinstance(predictor.model, FCBaselineModel)
    image = SyntheticDataset(1, seed=2, size=(96, 96)).scene(0)[0]
    predictor.set_image(image)
    props = predictor.proposals()
    assert 0 < len(props.scores) <= 10 and props.masks.shape[1:] == (96, 96)
    from PIL import Image  # and through the CLI, with the inference settings of its card

    Image.fromarray(image).save(tmp_path / "scene.png")
    argv = ["propose", str(tmp_path / "scene.png"), "--checkpoint", str(ckpt), "--out", str(tmp_path / "r.json"),
            "--top-n", "5", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    assert 0 < len(results) <= 5 and all(r["image_id"] == 1 and "segmentation" in r for r in results)


# ---------------------------------------------------------------- training never loses more than a bound


def _count_checkpoints(monkeypatch) -> list[int]:
    steps: list[int] = []
    orig = loop_mod._write_checkpoint

    def counting(model, optimizer, scaler, cfg, step, *a, **k):
        steps.append(step)
        return orig(model, optimizer, scaler, cfg, step, *a, **k)

    monkeypatch.setattr(loop_mod, "_write_checkpoint", counting)
    return steps


def test_checkpoints_at_least_ten_per_run_and_by_time(tmp_path, monkeypatch):
    from ifcn_viz.limits import checkpoint_interval

    assert checkpoint_interval(400, 500) == 40 and checkpoint_interval(3000, 500) == 300
    assert checkpoint_interval(100_000, 500) == 500 and checkpoint_interval(5, 500) == 1
    steps = _count_checkpoints(monkeypatch)
    train(small_cfg(tmp_path / "a", iters=20, ckpt_every=500))  # the default --ckpt-every, far above --iters
    assert steps == list(range(2, 21, 2))  # a tenth of the run at most between two checkpoints
    steps.clear()
    train(small_cfg(tmp_path / "b", iters=6, ckpt_every=500, ckpt_minutes=1e-9))  # every step is "minutes" late
    assert steps == [1, 2, 3, 4, 5, 6]


_KILL_CHILD = """
import sys, time
import torch
torch.set_num_threads({threads})  # the parent's: float sums depend on the thread count
from ifcn_viz.train import loop
from ifcn_viz.train.recipe import TrainConfig
cfg = TrainConfig.from_dict({cfg!r})
orig = loop.instance_fcn_loss
def slow(*a, **k):
    time.sleep(0.1)  # widen the window in which the parent kills us
    return orig(*a, **k)
loop.instance_fcn_loss = slow
loop.train(cfg)
"""


def test_a_run_killed_halfway_with_default_checkpoint_settings_loses_at_most_a_tenth(tmp_path, capsys):
    """SIGKILL at about step 15 of 30 with --ckpt-every left at its default (500): the newest complete state is at
    most 3 steps (a tenth of the run) behind, and --resume continues from it to the end."""
    cfg = small_cfg(tmp_path / "k", iters=30, ckpt_every=TrainConfig.ckpt_every, ckpt_minutes=5.0)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = _KILL_CHILD.format(cfg=cfg.to_dict(), threads=torch.get_num_threads())
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    log = tmp_path / "k" / "metrics.jsonl"
    deadline, logged = time.time() + 120, 0
    try:
        while time.time() < deadline and child.poll() is None:
            if log.is_file():
                lines = [ln for ln in log.read_text().splitlines() if ln.endswith("}")]
                logged = json.loads(lines[-1])["step"] if lines else 0
                if logged >= 15:
                    break
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert 15 <= logged < 30, f"the child should be killed mid-run (last logged step {logged})"
    saved = load_train_state(tmp_path / "k" / STATE_NAME)["step"]
    with capsys.disabled():  # the figure quoted in docs/SECURITY.md
        print(f"\nkilled after logging step {logged}; newest complete state: step {saved}")
    assert 0 < logged - saved + 1 <= 3 + 1, (logged, saved)  # at most 3 steps lost (the step being run aside)
    capsys.readouterr()
    resumed = train(cfg, resume=True)
    assert f"resumed from step {saved} of 30" in capsys.readouterr().out
    assert resumed.step == 30 and not list((tmp_path / "k").glob(".*.tmp"))


def _disk_full(*a, **k):
    raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 4352 vs 4240")


def test_a_full_disk_says_so_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    calls = []
    orig = loop_mod.save_train_state

    def second_fails(path, state):
        calls.append(state["step"])
        if len(calls) > 1:
            _disk_full()  # what torch.save raises when the disk fills up
        orig(path, state)

    monkeypatch.setattr(loop_mod, "save_train_state", second_fails)
    with pytest.raises(loop_mod.DiskFullError, match=r"the disk is full: writing the step-2 checkpoint .* needs about"):
        train(small_cfg(tmp_path / "full", iters=4, ckpt_every=1))
    assert load_train_state(tmp_path / "full" / STATE_NAME)["step"] == 1  # the previous complete state is kept
    assert not list((tmp_path / "full").glob(".*.tmp"))


def test_a_full_disk_through_the_cli_is_one_line(tmp_path, monkeypatch, capsys):
    from ifcn_viz.cli import main

    monkeypatch.setattr(loop_mod, "save_train_state", _disk_full)
    argv = ["train", "--iters", "1", "--batch-size", "1", "--image-size", "64", "--eval-images", "0", "--amp", "none"]
    rc = main([*argv, "--out", str(tmp_path / "run"), "--no-progress", "--log-every", "1"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1 and err[0].startswith("ifcn-viz train: the disk is full"), err
    assert "MB" in err[0] and "--resume" in err[0]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 6 MB tmpfs (root only): room for checkpoint.safetensors (3.7 MB) but not for train_state.pt."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("needs root and mount to make a small tmpfs (the injected ENOSPC tests run everywhere)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_a_really_full_disk(small_tmpfs):
    with pytest.raises(loop_mod.DiskFullError, match="the disk is full"):
        train(small_cfg(small_tmpfs / "run", iters=2, ckpt_every=2))


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody may write: a read-only tmpfs when root (root ignores permissions), else mode 0555."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
        yield ro
        ro.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)]).returncode:
        pytest.skip("running as root without mount: cannot make a read-only folder")
    try:
        yield ro
    finally:
        subprocess.run(["umount", str(ro)], check=False)


def test_a_read_only_out_is_refused_before_training(read_only_dir, capsys, monkeypatch):
    from ifcn_viz.cli import main

    built = []
    monkeypatch.setattr(loop_mod, "build_train_model", lambda cfg: built.append(cfg))
    with pytest.raises(OSError, match="cannot write to the run folder"):
        train(small_cfg(read_only_dir / "run"))
    assert not built  # refused before any model is built
    with pytest.raises(SystemExit) as info:
        main(["train", "--out", str(read_only_dir / "run")])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert info.value.code == 2 and len(err) == 1 and "is not writable" in err[0], err


def test_periodic_ar_on_the_users_own_validation_set_with_progress_lines(tmp_path, capsys):
    from ifcn_viz.data.commands import write_synthetic_coco

    ann = write_synthetic_coco(tmp_path / "val", 2, seed=7, size=(96, 96))
    cfg = small_cfg(
        tmp_path / "v", iters=2, eval_images=2, eval_every=1, val_ann=str(ann), val_dir=str(ann.parent / "images")
    )
    res = train(cfg)
    out = capsys.readouterr().out
    assert out.count("evaluating AR on up to 2 validation set instances.json") == 2, out  # steps 1 and 2
    assert "evaluated 2/2 images" in out and "step 2: AR@10" in out
    assert set(res.metrics) >= {"AR@10", "AR@100"}
    evals = [json.loads(ln) for ln in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines() if "eval/AR@10" in ln]
    assert [r["step"] for r in evals] == [1, 2]
    assert not list((tmp_path / "v").glob("val-*"))  # no synthetic held-out set was made
