"""Install a trained checkpoint as the shipped model (``ifcn_viz/weights/shipped.*``)."""

from __future__ import annotations

import json
from pathlib import Path

from ifcn_viz.checkpoints import WEIGHTS_DIR, card_path
from ifcn_viz.fileio import atomic_write, atomic_write_json

MAX_BYTES = 20 * 1024 * 1024


def install_shipped(checkpoint: str | Path, name: str = "shipped") -> Path:
    """Copy ``checkpoint`` (.safetensors + card) to ``ifcn_viz/weights/<name>.*`` atomically; must be < 20 MB."""
    src = Path(checkpoint)
    data = src.read_bytes()
    if len(data) > MAX_BYTES:
        raise ValueError(f"{src} is {len(data) / 1e6:.1f} MB; the shipped model must stay under 20 MB")
    card = json.loads(card_path(src).read_text())
    dst = WEIGHTS_DIR / f"{name}.safetensors"
    atomic_write(dst, lambda tmp: Path(tmp).write_bytes(data))
    atomic_write_json(card_path(dst), card)
    return dst
