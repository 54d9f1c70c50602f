"""The resumable training state: one file, written atomically, holding only tensors and plain Python values.

``train_state.pt`` = {model, optimizer, scaler, step, rng, config, bad_steps}; written with ``torch.save`` of
plain containers and read back with ``torch.load(weights_only=True)``, which never runs code.  The weights are
also published as ``checkpoint.safetensors`` + card (:func:`ifcn_viz.checkpoints.save_checkpoint`); resuming
needs only ``train_state.pt``, so the two files can never disagree about the step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ifcn_viz.checkpoints import CheckpointError
from ifcn_viz.fileio import atomic_write

STATE_NAME = "train_state.pt"
# Settings a resumed run must share with the run it continues (they fix the schedule and the data order).
# ``iters`` may grow: a finished (or interrupted) run can be extended with a larger --iters.
RESUME_KEYS = ("preset", "dataset", "batch_size", "optimizer", "lr", "schedule", "warmup", "step_at",
               "seed", "k", "head", "assembler_init", "image_size", "train_scenes", "short_sides",
               "windows_per_image")  # fmt: skip
# Settings added after states were first written: what a state saved without them ran with.
RESUME_DEFAULTS = {"assembler_init": "onehot"}


def save_train_state(path: str | Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_train_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"cannot resume: no complete checkpoint in {path.parent} ({path.name} not found; a run writes its "
            "first one within a tenth of its steps or 5 minutes)"
        )
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable training state (torch.load weights_only=True): {err}") from err
    if not isinstance(state, dict) or not {"model", "optimizer", "step", "config"} <= set(state):
        raise CheckpointError(f"{path} lacks model/optimizer/step/config entries")
    return state


def check_resumable(saved: dict[str, Any], current: dict[str, Any], step: int | None = None) -> None:
    """Refuse a resume whose settings differ from the saved run's, or whose ``iters`` is below the saved step."""
    if step is not None and current.get("iters", 0) < step:
        raise ValueError(
            f"--resume: the run in --out is already at step {step}; --iters {current.get('iters')} is below it "
            f"(give --iters above {step} to extend it)"
        )
    diffs = [
        f"{k}: saved {saved.get(k, RESUME_DEFAULTS.get(k))!r} vs now {current.get(k)!r}"
        for k in RESUME_KEYS
        if saved.get(k, RESUME_DEFAULTS.get(k)) != current.get(k)
    ]
    if diffs:
        raise ValueError(
            "--resume needs the same training settings as the interrupted run; differs in " + "; ".join(diffs)
        )
