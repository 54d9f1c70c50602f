"""Which floating-point type the network runs in: at inference (``InferConfig.precision``) and in training
(``TrainConfig.amp``), by one rule.

The paper is silent (it ran fp32 Caffe).  Ours: ``"auto"`` runs the backbone under bf16 autocast where the device
computes bf16 natively -- a CUDA GPU that supports it, or a CPU with AVX512-BF16 or AMX -- and in fp32 elsewhere
(on a CPU without those instructions bf16 is emulated: a training step measured 30-40x slower than fp32 on an
AVX2-only laptop CPU).  Training's ``"auto"`` follows the same rule, with one addition: a CUDA GPU without bf16
trains in fp16 with a GradScaler (:func:`training_dtype`).  The shipped models were trained
under bf16 autocast, so their maps in bf16 are what training saw.  Score maps and objectness leave the network as
float32 either way; everything after the backbone (assembling, pasting, NMS) is float32.  ``"fp32"`` gives the
exact float32 maps (the tests that compare against a float64 reference use it); ``"bf16"`` forces bf16.
docs/PERFORMANCE.md has the speed-up and docs/TRAINING.md the yardsticks in both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ifcn_viz.config import AMP, PRECISIONS


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bf16 convolutions natively (so bf16 autocast is faster than fp32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)
    return False


def inference_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (``None``: plain fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32" or (precision == "auto" and not native_bf16(device)):
        return None
    return torch.bfloat16


def training_dtype(amp: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype training uses for ``--amp amp`` on ``device`` (``None``: plain fp32).

    ``auto``: bf16 where :func:`native_bf16` (the inference rule), fp16 (with a GradScaler) on a CUDA GPU without
    bf16, fp32 everywhere else -- a CPU without native bf16 included, where emulated bf16 is many times slower.
    """
    device = torch.device(device)
    if amp not in AMP:
        raise ValueError(f"amp must be one of {', '.join(AMP)}, got {amp!r}")
    if amp == "none":
        return None
    if amp == "auto":
        if native_bf16(device):
            return torch.bfloat16
        return torch.float16 if device.type == "cuda" and torch.cuda.is_available() else None
    if amp == "fp16" and device.type == "cpu":
        raise ValueError("--amp fp16 needs a GPU; on a CPU use --amp bf16 or none")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def dtype_name(dtype: torch.dtype | None) -> str:
    """``bf16`` / ``fp16`` / ``fp32``: how cards, logs and the app name a precision."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


@contextlib.contextmanager
def inference_autocast(precision: str, device: torch.device | str) -> Iterator[torch.dtype | None]:
    """``with inference_autocast(infer.precision, device) as dtype:`` run the backbone in the chosen precision."""
    dtype = inference_dtype(precision, device)
    if dtype is None:
        yield None
        return
    with torch.autocast(torch.device(device).type, dtype=dtype):
        yield dtype
