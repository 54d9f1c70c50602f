"""The training loop: CPU, one GPU, or several processes under torchrun (DistributedDataParallel).

One step (paper, Sec. 3.3): one forward pass over a batch of images -> score maps + objectness; sample 256
windows per image (:mod:`ifcn_viz.train.targets`); assemble masks only at the sampled positives; logistic losses
(:mod:`ifcn_viz.train.loss`); one optimiser step.  Everything random is a pure function of ``(seed, step,
rank)``, so ``--resume`` after a crash (even SIGKILL) continues bit-for-bit like an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import platform
import shlex
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ifcn_viz.checkpoints import save_checkpoint
from ifcn_viz.config import get_preset
from ifcn_viz.data.transforms import JointTransform, pad_collate
from ifcn_viz.fileio import atomic_write
from ifcn_viz.limits import checkpoint_interval
from ifcn_viz.precision import dtype_name, training_dtype
from ifcn_viz.train import distributed as D
from ifcn_viz.train.data import Augmented, StepBatchSampler, build_dataset, mix_seed
from ifcn_viz.train.loss import instance_fcn_loss
from ifcn_viz.train.recipe import TrainConfig, lr_at
from ifcn_viz.train.state import STATE_NAME, check_resumable, load_train_state, save_train_state
from ifcn_viz.train.targets import InstanceBatch, WindowRule, sample_windows


class DiskFullError(OSError):
    """The disk filled up while a checkpoint was written; the previous complete checkpoint is kept."""


class TrainResult(NamedTuple):
    model: nn.Module
    step: int
    metrics: dict[str, float]
    checkpoint: Path | None
    wall_time_s: float


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--amp amp`` on ``device``: :func:`ifcn_viz.precision.training_dtype` (``auto``: bf16
    only where the device computes it natively, fp16 + GradScaler on a CUDA GPU without bf16, else fp32)."""
    return training_dtype(amp, device)


def build_train_model(cfg: TrainConfig) -> nn.Module:
    """The preset's model with the run's head, ``k`` and backbone weights; seeded by ``cfg.seed`` alone."""
    from ifcn_viz.model.build import build_model

    given = {"k": cfg.k, "backbone_weights": cfg.backbone_weights}
    mcfg = dataclasses.replace(
        get_preset(cfg.preset).model, head=cfg.head, **{name: v for name, v in given.items() if v is not None}
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return build_model(mcfg, assembler_init=cfg.assembler_init)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_string(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        return f"{world} x {torch.cuda.get_device_name(device)}"
    cores = os.cpu_count()
    return f"{world} process(es) on CPU ({cpu_name()}, {cores} cores, {torch.get_num_threads()} torch threads)"


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]  # biases and BN: no weight decay (ours)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def make_loader(
    cfg: TrainConfig,
    rank: int = 0,
    world_size: int = 1,
    start_step: int = 0,
    pin: bool = False,
    base: Any = None,
    device: torch.device | None = None,
):
    """The training batches: ``(images, masks, sizes)`` in the order fixed by ``(seed, step, rank)``.

    ``base``: the dataset when already built (default: :func:`build_dataset`).  With a ``device`` and cached
    synthetic scenes, the batches are made on that device from compact scene tensors
    (:class:`~ifcn_viz.train.scenes.SceneBatches`; ``masks`` an ``InstanceBatch``); otherwise by a DataLoader
    (per-sample transforms in its workers; ``masks`` a list of ``[N_b, H, W]``).
    """
    base = build_dataset(cfg) if base is None else base
    if device is not None and getattr(base, "is_filled", lambda: False)():
        from ifcn_viz.train.scenes import SceneBatches, scene_tensors

        return SceneBatches(scene_tensors(base, device), cfg, rank, world_size, start_step)
    sampler = StepBatchSampler(len(base), cfg.batch_size, cfg.seed, rank, world_size, start_step=start_step)
    return torch.utils.data.DataLoader(
        Augmented(base, JointTransform(cfg.short_sides)),
        batch_sampler=sampler,
        collate_fn=pad_collate,
        num_workers=cfg.num_workers,
        pin_memory=pin,
    )


class StepOutput(NamedTuple):
    terms: Any  # ifcn_viz.train.loss.LossTerms: total, objectness, mask
    targets: Any  # ifcn_viz.train.targets sampled windows
    finite: bool  # False: the loss was NaN/inf and no update was made


def train_step(
    train_model: nn.Module,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: tuple,
    cfg: TrainConfig,
    step: int,
    rule: WindowRule,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    dist: D.DistInfo | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> StepOutput:
    """One optimiser step (paper, Sec. 3.3): forward, sample 256 windows per image, losses, backward, update.

    ``train_model`` is what runs forward (``model`` or its DDP wrapper); ``model`` the unwrapped network.
    A non-finite loss (on any rank) skips the update and returns ``finite=False``.  ``on_phase(name)``, when
    given, is called as each phase ends: ``inputs`` (the batch on the device), ``forward``, ``sample``, ``loss``,
    ``update`` (``bench/bench_train.py --step-split`` times the phases with it).
    """
    mark = on_phase or _no_phase
    images, masks_list, sizes = batch
    lr = lr_at(cfg, step)
    for group in optimizer.param_groups:
        group["lr"] = lr
    images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    if not isinstance(masks_list, InstanceBatch):  # a DataLoader's batch: the masks image by image
        masks_list = [mk.to(device, non_blocking=True) for mk in masks_list]
    mark("inputs")
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    with autocast:
        output = train_model(images)
    mark("forward")
    rank = dist.rank if dist is not None else 0
    gen = torch.Generator().manual_seed(mix_seed(cfg.seed, step, rank, 7))
    m, fill = model.config.m, model.config.fill_logit
    targets = sample_windows(masks_list, tuple(output.score_maps.shape[-2:]), m, model.stride, rule, gen, sizes)
    mark("sample")
    terms = instance_fcn_loss(
        output.score_maps, output.objectness, targets, m, fill, cfg.objectness_weight, cfg.mask_weight
    )
    mark("loss")
    optimizer.zero_grad(set_to_none=True)
    finite = bool(torch.isfinite(terms.total))
    if dist is not None:
        finite = D.all_true(finite, dist)
    if not finite:
        return StepOutput(terms, targets, False)
    if scaler is None:  # no fp16 loss scaling
        terms.total.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        mark("update")
        return StepOutput(terms, targets, True)
    scaler.scale(terms.total).backward()
    if cfg.grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    mark("update")
    return StepOutput(terms, targets, True)


def _no_phase(name: str) -> None:
    pass


class _Logger:
    """JSONL metrics (+ optional TensorBoard), rank 0 only."""

    def __init__(self, out: Path, tensorboard: bool, enabled: bool) -> None:
        self.enabled, self.path, self.tb = enabled, out / "metrics.jsonl", None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ValueError(
                    "--tensorboard needs the tensorboard package (pip install tensorboard; in a clone also "
                    "pip install -e '.[tensorboard]')"
                ) from err
            self.tb = SummaryWriter(str(out / "tensorboard"))

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for key, val in record.items():
                if key != "step" and isinstance(val, (int, float)):
                    self.tb.add_scalar(key, val, record["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def evaluate_model(
    model: nn.Module, cfg: TrainConfig, out: Path, top_n: int = 100, say: Any = None, bar: bool = False
) -> dict[str, float]:
    """AR with the project's Predictor + COCOeval: on the user's ``val_ann``/``val_dir`` (at most ``eval_images``
    images) when given, else on a held-out synthetic set (seeds disjoint from training).

    ``say(line)``: where progress lines go (one before, one every ~10 %, one after); ``bar``: a tqdm bar instead.
    """
    from ifcn_viz.evaluate import evaluate_predictor
    from ifcn_viz.inference.predictor import Predictor

    if cfg.val_ann:
        ann, images, what = cfg.val_ann, cfg.val_dir, f"validation set {Path(cfg.val_ann).name}"
    else:
        from ifcn_viz.data.commands import write_synthetic_coco

        val_dir = out / f"val-{cfg.eval_seed}-{cfg.eval_images}x{cfg.image_size}"
        if not (val_dir / "instances.json").is_file():
            write_synthetic_coco(val_dir, cfg.eval_images, seed=cfg.eval_seed, size=(cfg.image_size, cfg.image_size))
        ann, images, what = str(val_dir / "instances.json"), str(val_dir / "images"), "held-out synthetic images"
    t0 = time.perf_counter()
    if say is not None and not bar:
        say(f"evaluating AR on up to {cfg.eval_images} {what} ...")

    def tick(done: int, total: int) -> None:
        if say is not None and not bar and total and (done == total or done % max(1, total // 10) == 0):
            say(f"  evaluated {done}/{total} images ({time.perf_counter() - t0:.0f} s)")

    was_training = model.training
    try:
        # the fc / learned heads present their windows as k = m "score maps" (ifcn_viz.model.fc_baseline,
        # .learned_assembler): same Predictor
        predictor = Predictor(model, infer=get_preset(cfg.preset).infer, device=next(model.parameters()).device)
        metrics, _ = evaluate_predictor(
            predictor, ann, images, top_n=top_n, progress=bar, max_images=cfg.eval_images, on_progress=tick
        )
    finally:
        model.train(was_training)
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def check_out_writable(out: Path) -> None:
    """Refuse an ``--out`` that cannot be created or written, before any model is built (one-line OSError)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise OSError(err.errno, f"cannot write to the run folder {out}: {reason} (give a writable --out)") from None


def _clean_partial_files(out: Path) -> None:
    """Remove temporary files left by a write that was killed (the complete files they would replace remain)."""
    for tmp in out.glob(".*.tmp"):
        try:
            tmp.unlink()
        except OSError:
            pass


def train(
    cfg: TrainConfig, command: str | None = None, resume: bool = False, stop_at: int | None = None
) -> TrainResult:
    """Run (or, with ``resume``, continue) a training run into ``cfg.out``; returns the trained (unwrapped) model.

    ``stop_at`` ends the run early after that step (with a checkpoint), as an interruption would; the schedule
    still follows ``cfg.iters``, so ``resume`` later continues exactly.
    """
    info = D.setup_distributed(cfg.device)
    dev, out = info.device, Path(cfg.out)
    t_start = time.perf_counter()
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    # a progress bar only on a terminal (both streams) and without --no-progress; plain log lines otherwise
    say = _Say(cfg.progress and info.is_main and sys.stdout.isatty() and sys.stderr.isatty(), info.is_main)
    try:
        if info.is_main:
            check_out_writable(out)
            _clean_partial_files(out)
        model = build_train_model(cfg).to(dev, memory_format=torch.channels_last)
        optimizer = make_optimizer(cfg, model)
        amp_dtype = resolve_amp(cfg.amp, dev)
        say(f"precision: {dtype_name(amp_dtype)} (--amp {cfg.amp} on {hardware_string(dev, info.world_size)})")
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        step, bad_steps, elapsed_before, metrics = 0, 0, 0.0, {}
        state_path = out / STATE_NAME
        if resume:
            state = load_train_state(state_path)
            check_resumable(state["config"], cfg.to_dict(), int(state["step"]))
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if "scaler" in state and state["scaler"]:
                scaler.load_state_dict(state["scaler"])
            torch.set_rng_state(state["rng"]["torch"])
            step, bad_steps = int(state["step"]), int(state.get("bad_steps", 0))
            elapsed_before = float(state.get("wall_time_s", 0.0))
            if info.is_main:
                _truncate_log(out / "metrics.jsonl", step)
                saved_iters = int(state["config"].get("iters", cfg.iters))
                extended = f"; extended from {saved_iters} to {cfg.iters} iterations" * (saved_iters != cfg.iters)
                say(f"resumed from step {step} of {cfg.iters} ({state_path}){extended}")
        elif info.is_main:
            (out / "metrics.jsonl").unlink(missing_ok=True)  # a fresh run starts a fresh log
        train_model: nn.Module = model
        if info.enabled:
            ids = [dev.index] if dev.type == "cuda" else None
            train_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        model.train()

        # batches made on a GPU from scene tensors; on a CPU the per-sample uint8 path measured faster (the same
        # pixels and masks either way: docs/PERFORMANCE.md, "Training step split")
        on_device = dev if dev.type == "cuda" else None
        loader = make_loader(cfg, info.rank, info.world_size, start_step=step, pin=dev.type == "cuda", device=on_device)
        rule = WindowRule(windows_per_image=cfg.windows_per_image)
        logger = _Logger(out, cfg.tensorboard, info.is_main)
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.iters, initial=step, disable=not say.bar, dynamic_ncols=True)
        say.bar_obj = bar
        ckpt_path: Path | None = None
        data_iter = iter(loader)
        t_last, imgs_since = time.perf_counter(), 0
        end = cfg.iters if stop_at is None else min(cfg.iters, stop_at)
        # checkpoints: every ckpt_every steps, at least MIN_CKPTS_PER_RUN per run, and every ckpt_minutes
        interval, ckpt_seconds = checkpoint_interval(cfg.iters, cfg.ckpt_every), cfg.ckpt_minutes * 60
        t_ckpt = time.monotonic()
        while step < end:
            batch = next(data_iter)
            lr = lr_at(cfg, step)
            res = train_step(train_model, model, optimizer, batch, cfg, step, rule, dev, amp_dtype, scaler, info)
            terms, targets = res.terms, res.targets
            if not res.finite:
                bad_steps += 1
                warnings.warn(
                    f"step {step}: non-finite loss ({terms.total.item()}); skipped ({bad_steps}/{cfg.max_bad_steps})",
                    stacklevel=1,
                )
                if bad_steps >= cfg.max_bad_steps:
                    raise FloatingPointError(
                        f"stopped: {bad_steps} steps with a non-finite loss (--max-bad-steps {cfg.max_bad_steps})"
                    )
                step += 1
                continue
            step += 1
            imgs_since += batch[0].shape[0] * info.world_size
            if step % cfg.log_every == 0 or step == cfg.iters:
                now = time.perf_counter()
                ips = imgs_since / max(now - t_last, 1e-9)
                t_last, imgs_since = now, 0
                rec = {"step": step, "loss": float(terms.total.detach()), "loss_objectness": float(terms.objectness),
                       "loss_mask": float(terms.mask), "lr": lr, "images_per_s": ips,
                       "positives": len(targets.pos_centers), "windows": len(targets.centers)}  # fmt: skip
                logger.log(rec)
                bar.set_postfix(loss=f"{rec['loss']:.3f}", lr=f"{lr:.2e}", img_s=f"{ips:.1f}")
                if not say.bar:
                    say(f"step {step}/{cfg.iters}  loss {rec['loss']:.4f}  lr {lr:.2e}  {ips:.1f} img/s")
            bar.update(1)
            is_last = step == end
            evaluate = (info.is_main and cfg.eval_images > 0
                        and ((cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.iters))  # fmt: skip
            due = step % interval == 0 or time.monotonic() - t_ckpt >= ckpt_seconds
            # the last step's weights are written before its evaluation (which can take minutes) and again after
            # it with the metrics, so a run stopped during the final evaluation keeps its trained weights
            for when in ("before", "after") if is_last and evaluate else ("after",):
                if when == "after" and evaluate:
                    metrics = evaluate_model(model, cfg, out, say=say, bar=say.bar)
                    logger.log({"step": step, **{f"eval/{k}": v for k, v in metrics.items()}})
                    say(f"step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k.startswith("AR")))
                if info.is_main and (due or is_last):
                    wall = elapsed_before + time.perf_counter() - t_start
                    ckpt_path = _write_checkpoint(
                        model, optimizer, scaler, cfg, step, bad_steps, wall, metrics, command, info, out
                    )
                    t_ckpt = time.monotonic()
        bar.close()
        logger.close()
        D.barrier(info)
        return TrainResult(model, step, metrics, ckpt_path, elapsed_before + time.perf_counter() - t_start)
    finally:
        D.cleanup(info)


def _write_checkpoint(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    cfg: TrainConfig,
    step: int,
    bad_steps: int,
    wall: float,
    metrics: dict[str, float],
    command: str,
    info: D.DistInfo,
    out: Path,
) -> Path:
    """Publish ``checkpoint.safetensors`` + card, then the resumable ``train_state.pt`` (both atomic)."""
    preset = get_preset(cfg.preset)
    card = {
        "preset": cfg.preset,
        "head": cfg.head,
        "k": model.config.k,
        "m": model.config.m,
        "stride": model.stride,
        "data": _data_description(cfg),
        "seed": cfg.seed,
        "command": command,
        "hardware": hardware_string(info.device, info.world_size),
        "amp": str(resolve_amp(cfg.amp, info.device)).replace("torch.", ""),  # the dtype ("None": fp32)
        "precision": dtype_name(resolve_amp(cfg.amp, info.device)),
        "step": step,
        "iters": cfg.iters,
        "images_seen": step * cfg.batch_size * info.world_size,
        "wall_time_s": round(wall, 1),
        "metrics": metrics,
        "infer_config": dataclasses.asdict(preset.infer),
        "train_config": cfg.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    state = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else {},
        "step": step,
        "bad_steps": bad_steps,
        "wall_time_s": wall,
        "rng": {"torch": torch.get_rng_state()},
        "config": cfg.to_dict(),
    }
    try:
        path = save_checkpoint(model, out / "checkpoint.safetensors", card)
        save_train_state(out / STATE_NAME, state)
    except (OSError, RuntimeError) as err:
        if not _is_disk_full(err):
            raise
        need = _tensor_bytes(state) + _tensor_bytes(state["model"])  # train_state.pt + checkpoint.safetensors
        free = shutil.disk_usage(out).free
        raise DiskFullError(
            errno.ENOSPC,
            f"the disk is full: writing the step-{step} checkpoint to {out} needs about {need / 1e6:,.0f} MB "
            f"({free / 1e6:,.0f} MB free); the previous checkpoint is kept, free some space and use --resume",
        ) from None
    return path


def _is_disk_full(err: BaseException) -> bool:
    """ENOSPC / EDQUOT, or torch's zip writer's 'unexpected pos' / 'file write failed' (its ENOSPC)."""
    for _ in range(10):  # follow at most a few causes
        if err is None:
            return False
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return True
        text = str(err)
        if "unexpected pos" in text or "file write failed" in text or "No space left" in text:
            return True
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return False


def _tensor_bytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


class _Say:
    """Progress lines: through the tqdm bar when one is shown (a terminal), else plain lines on stdout."""

    def __init__(self, bar: bool, enabled: bool) -> None:
        self.bar, self.enabled, self.bar_obj = bar, enabled, None

    def __call__(self, line: str) -> None:
        if not self.enabled:
            return
        if self.bar and self.bar_obj is not None:
            self.bar_obj.write(line)
        else:
            print(line, flush=True)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (the run died before its next checkpoint)."""
    if path.is_file():
        keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(line + "\n" for line in keep)))


def _data_description(cfg: TrainConfig) -> dict[str, Any]:
    if cfg.dataset == "synthetic":
        return {"dataset": "synthetic", "scenes": cfg.train_scenes, "scene_seeds": f"({cfg.seed}, i)",
                "image_size": cfg.image_size, "short_sides": list(cfg.short_sides),
                "eval": {"images": cfg.eval_images, "scene_seeds": f"({cfg.eval_seed}, i)"}}  # fmt: skip
    if cfg.dataset == "coco":
        return {
            "dataset": "coco",
            "annotations": cfg.coco_ann,
            "images": cfg.image_dir,
            "short_sides": list(cfg.short_sides),
        }
    return {"dataset": "voc", "root": cfg.voc_root, "split": cfg.voc_split, "short_sides": list(cfg.short_sides)}
