"""Model checkpoints: weights as safetensors (never pickle) plus a JSON model card, written atomically.

A checkpoint is ``NAME.safetensors``, with its model card both inside it (the safetensors metadata key
``"card"``, a JSON string) and beside it as ``NAME.json`` for people to read.  A lone ``.safetensors`` file is
therefore a complete checkpoint; when the JSON beside it exists, it is the card used (so an edited card wins).
The card holds ``model_config`` (the :class:`~ifcn_viz.config.ModelConfig` fields, including the mask ``head``;
cards without ``head`` load as ``"ifcn"``) and whatever the writer adds (data, seed, command, metrics...).
``load_checkpoint`` accepts the shipped model's name (``"shipped"``), a ``.safetensors`` path,
or an imported ``.pt`` / ``.pth`` file read with ``torch.load(weights_only=True)``, which refuses pickles
that would run code.  Tensors that do not fit the card's model get a :class:`CheckpointError` naming them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ifcn_viz.config import ModelConfig
from ifcn_viz.fileio import atomic_write, atomic_write_json

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED = "shipped"
CARD_FORMAT = "ifcn_viz-checkpoint/1"
CARD_KEY = "card"  # the safetensors metadata entry holding the model card as a JSON string


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, unsafe, malformed, or not fitting its card."""


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
    metadata = {"format": CARD_FORMAT, CARD_KEY: json.dumps(full_card)}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata))
    atomic_write_json(card_path(path), full_card)
    return path


def shipped_names() -> list[str]:
    """The checkpoints shipped in ``ifcn_viz/weights`` (``--checkpoint NAME``), the default (``shipped``) first."""
    names = sorted(q.stem for q in WEIGHTS_DIR.glob("*.safetensors"))
    return sorted(names, key=lambda n: n != SHIPPED)


def resolve(name_or_path: str | Path) -> Path:
    """Map ``"shipped"`` (or another name under ifcn_viz/weights) or a path to a weights file."""
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        candidate = WEIGHTS_DIR / f"{name_or_path}.safetensors"
        if candidate.exists():
            return candidate
        raise CheckpointError(
            f"no checkpoint named {str(name_or_path)!r}; shipped names: {shipped_names() or 'none'}; "
            "or give a path to a .safetensors file"
        )
    if not p.is_file():
        raise CheckpointError(f"checkpoint file not found: {p}")
    return p


def _parse_card(text: str, where: str) -> dict[str, Any]:
    try:
        card = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"model card {where} is not valid JSON: {err}") from err
    if not isinstance(card, dict) or not isinstance(card.get("model_config"), dict):
        raise CheckpointError(f"model card {where} has no 'model_config' object")
    return card


def read_card(weights_path: str | Path) -> dict[str, Any]:
    """The model card of a weights file: the JSON beside it, else the one stored inside a ``.safetensors``."""
    cp = card_path(weights_path)
    if cp.is_file():
        from ifcn_viz.limits import MAX_CARD_BYTES

        if cp.stat().st_size > MAX_CARD_BYTES:
            raise CheckpointError(f"model card {cp.name} is {cp.stat().st_size:,} bytes; at most {MAX_CARD_BYTES:,}")
        return _parse_card(cp.read_text(), str(cp))
    embedded = _embedded_card(Path(weights_path)) if Path(weights_path).suffix == ".safetensors" else None
    if embedded is None:
        raise CheckpointError(
            f"{weights_path} has no model card: none inside the file and no {cp} beside it (JSON with 'model_config')"
        )
    return embedded


def _embedded_card(path: Path) -> dict[str, Any] | None:
    """The card stored in a ``.safetensors`` file's metadata, or None for files written without one."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            text = (fh.metadata() or {}).get(CARD_KEY)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
    return None if text is None else _parse_card(text, f"inside {path}")


def _read_tensors(path: Path) -> tuple[dict[str, Tensor], dict[str, Any] | None]:
    """The tensors of a weights file, and an embedded card for imported .pt files (a .safetensors file's card is
    read by :func:`read_card`, which prefers the JSON beside it)."""
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
    """Return ``(model, card)``: the card's model (an :class:`InstanceFCN`, or the fc baseline for
    ``head="fc"``) in eval mode on ``device``, and its card (the JSON beside the file wins over the embedded one)."""
    from ifcn_viz.model.build import build_model

    path = resolve(name_or_path)
    state, embedded = _read_tensors(path)
    card = embedded if embedded is not None and not card_path(path).is_file() else read_card(path)
    from ifcn_viz.limits import LimitError, check_card, check_parameter_count

    try:
        check_card(card, where=f"the card of {path.name}")  # bound widths, k, m and scales before building
    except LimitError as err:
        raise CheckpointError(str(err)) from err
    try:
        config = ModelConfig.from_dict({**card["model_config"], "backbone_weights": None})
        with torch.device("meta"):  # the card's model without memory: its size and shapes, nothing allocated
            shapes = build_model(config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"the card of {path} has an invalid model_config: {err}") from err
    try:
        check_parameter_count(sum(p.numel() for p in shapes.parameters()), where=f"the card of {path.name}")
    except LimitError as err:
        raise CheckpointError(str(err)) from err
    expected = shapes.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        desc = f"backbone={config.backbone}, head={config.head}, k={config.k}, m={config.m}"
        parts = [f"{len(missing)} missing (e.g. {missing[:3]})"] if missing else []
        parts += [f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"] if unexpected else []
        parts += [f"{len(wrong)} of the wrong shape (e.g. {wrong[:2]})"] if wrong else []
        raise CheckpointError(f"{path.name} does not fit its card ({desc}): tensors " + "; ".join(parts))
    del shapes
    model = build_model(config)  # the file fits the card: now build it for real
    model.load_state_dict(state)
    return model.to(device).eval(), card
