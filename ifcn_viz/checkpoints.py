"""Model checkpoints: weights as safetensors (never pickle) plus a JSON model card, written atomically.

A checkpoint is a pair ``NAME.safetensors`` + ``NAME.json``.  The card holds ``model_config`` (the
:class:`~ifcn_viz.config.ModelConfig` fields) and whatever the writer adds (data, seed, command, metrics...).
``load_checkpoint`` accepts the shipped model's name (``"shipped"``), a ``.safetensors`` path (card beside it),
or an imported ``.pt`` / ``.pth`` file read with ``torch.load(weights_only=True)``, which refuses pickles
that would run code.  Tensors that do not fit the card's model get a :class:`CheckpointError` naming them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ifcn_viz.config import ModelConfig

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED = "shipped"
CARD_FORMAT = "ifcn_viz-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, unsafe, malformed, or not fitting its card."""


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=False)
            fh.write("\n")

    atomic_write(path, write)


def card_path(weights_path: str | Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def save_checkpoint(model: torch.nn.Module, path: str | Path, card: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights to ``path`` (``.safetensors`` added if missing) and its card beside it."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    config: ModelConfig = model.config  # type: ignore[assignment]
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    full_card = {"format": CARD_FORMAT, "model_config": config.to_dict(), **(card or {})}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"format": CARD_FORMAT}))
    atomic_write_json(card_path(path), full_card)
    return path


def resolve(name_or_path: str | Path) -> Path:
    """Map ``"shipped"`` (or another name under ifcn_viz/weights) or a path to a weights file."""
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        candidate = WEIGHTS_DIR / f"{name_or_path}.safetensors"
        if candidate.exists():
            return candidate
        names = sorted(q.stem for q in WEIGHTS_DIR.glob("*.safetensors"))
        raise CheckpointError(
            f"no checkpoint named {str(name_or_path)!r}; shipped names: {names or 'none'}; "
            "or give a path to a .safetensors file (with its .json card beside it)"
        )
    if not p.is_file():
        raise CheckpointError(f"checkpoint file not found: {p}")
    return p


def read_card(weights_path: str | Path) -> dict[str, Any]:
    cp = card_path(weights_path)
    if not cp.is_file():
        raise CheckpointError(f"{weights_path} has no model card: expected {cp} (JSON with 'model_config')")
    from ifcn_viz.limits import MAX_CARD_BYTES

    if cp.stat().st_size > MAX_CARD_BYTES:
        raise CheckpointError(f"model card {cp.name} is {cp.stat().st_size:,} bytes; at most {MAX_CARD_BYTES:,}")
    try:
        card = json.loads(cp.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"model card {cp} is not valid JSON: {err}") from err
    if not isinstance(card, dict) or not isinstance(card.get("model_config"), dict):
        raise CheckpointError(f"model card {cp} has no 'model_config' object")
    return card


def _read_tensors(path: Path) -> tuple[dict[str, Tensor], dict[str, Any] | None]:
    """The tensors of a weights file, and an embedded card for imported .pt files."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), None
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
    if path.suffix in (".pt", ".pth", ".bin"):
        from ifcn_viz.limits import LimitError, check_archive

        try:
            check_archive(path)  # entries and unpacked size from the zip directory, before anything is unpacked
        except LimitError as err:
            raise CheckpointError(str(err)) from err
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:  # UnpicklingError for code-running pickles, RuntimeError for junk
            raise CheckpointError(
                f"{path} was refused: it is not a plain tensor file "
                f"(loaded with torch.load(weights_only=True), which never runs code): {err}"
            ) from err
        embedded = None
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            embedded = obj.get("card") if isinstance(obj.get("card"), dict) else None
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
            raise CheckpointError(f"{path} does not hold a state dict of tensors")
        return obj, embedded
    raise CheckpointError(f"unsupported checkpoint type {path.suffix!r}: use .safetensors (or .pt/.pth)")


def load_checkpoint(name_or_path: str | Path = SHIPPED, device: str | torch.device = "cpu"):
    """Return ``(model, card)``: an :class:`InstanceFCN` in eval mode on ``device``, and its card."""
    from ifcn_viz.model.instance_fcn import InstanceFCN

    path = resolve(name_or_path)
    state, embedded = _read_tensors(path)
    card = embedded if embedded is not None and not card_path(path).is_file() else read_card(path)
    from ifcn_viz.limits import LimitError, check_card

    try:
        check_card(card, where=f"the card of {path.name}")  # bound widths, k, m and scales before building
    except LimitError as err:
        raise CheckpointError(str(err)) from err
    try:
        config = ModelConfig.from_dict({**card["model_config"], "backbone_weights": None})
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"the card of {path} has an invalid model_config: {err}") from err
    model = InstanceFCN(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        desc = f"backbone={config.backbone}, k={config.k}, m={config.m}"
        parts = [f"{len(missing)} missing (e.g. {missing[:3]})"] if missing else []
        parts += [f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"] if unexpected else []
        parts += [f"{len(wrong)} of the wrong shape (e.g. {wrong[:2]})"] if wrong else []
        raise CheckpointError(f"{path.name} does not fit its card ({desc}): tensors " + "; ".join(parts))
    model.load_state_dict(state)
    return model.to(device).eval(), card
