"""What the ``gr.api`` endpoints share -- each tab module registers its own twins (``Tab.register_api``), for
``gradio_client`` and scripts.

``gradio_client`` cannot drive ``.select`` (click) handlers and has no ``gr.State``, so each click / slider
handler of the page has a twin here: ``upload`` takes an image -- an uploaded file
(``gradio_client.handle_file(path)``) or the base64 of its bytes -- and returns a random session token (the server
keeps the last few API sessions of each client), and every later call names it.  Every answer echoes the image's
``fingerprint`` and size, so a client can check that it is about its own image.  Pictures come back as base64 PNG
only when ``images=True``.  Errors raise ``gr.Error`` with the line of :func:`ifcn_viz.app.errors.user_message`,
the same the page shows.
"""

import base64
import math
from typing import Any

import gradio as gr
import torch

from ifcn_viz.app import views as vw
from ifcn_viz.app.errors import guarded, user_message
from ifcn_viz.app.server import AppContext
from ifcn_viz.app.session import ImageSession
from ifcn_viz.config import YARDSTICKS
from ifcn_viz.inference.predictor import Predictor
from ifcn_viz.precision import inference_dtype


def png_b64(arr: Any) -> str:
    from ifcn_viz.viz.palette import to_png_bytes

    return base64.b64encode(to_png_bytes(arr, compress_level=1)).decode("ascii")


def _raise_gr_error(err: BaseException, args: tuple, kwargs: dict) -> Any:
    if isinstance(err, gr.Error):
        raise err
    raise gr.Error(user_message(err), print_exception=False) from None


as_gr_error = guarded(_raise_gr_error)
"""Turn every error of an endpoint into ``gr.Error`` with :func:`user_message`'s line (never a traceback); the page's
twin is :func:`ifcn_viz.app.page.page_errors`."""


def client_of(request: gr.Request | None) -> str:
    """Who is calling: Gradio's session hash (one per ``gradio_client.Client``), else the peer's address."""
    if request is None:
        return ""
    if getattr(request, "session_hash", None):
        return f"session:{request.session_hash}"
    host = getattr(getattr(request, "client", None), "host", None)
    return f"host:{host}" if host else ""


_SAFE_KEYS = {
    "data": ("dataset", "scenes", "image_size", "short_sides", "images", "eval"),
    "train": ("preset", "dataset", "iters", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
              "schedule", "warmup", "grad_clip", "amp", "seed", "windows_per_image", "image_size"),
}  # fmt: skip


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` if it is a small plain number / word (or a list / dict of them), else ``None``: no paths, no
    command lines, no host names."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, str):
        ok = len(value) <= 40 and not any(c in value for c in "/\\:~ ") and not value.startswith(".")
        return value if ok else None
    if isinstance(value, (list, tuple)) and depth < 2 and len(value) <= 32:
        items = [_plain(v, depth + 1) for v in value]
        return items if all(v is not None for v in items) else None
    if isinstance(value, dict) and depth < 2:
        out = {str(k): _plain(v, depth + 1) for k, v in value.items() if _plain(str(k)) is not None}
        return {k: v for k, v in out.items() if v is not None}
    return None


def model_description(p: Predictor) -> dict[str, Any]:
    """What a client may know about a model: its architecture, k, m, stride, scales, a summary of its training
    data and recipe, and its metrics -- never the training machine's paths, folders, hardware or command line.
    Every field is chosen by name (an allowlist) and every value is a plain number or a short word."""
    card = p.card or {}
    cfg = getattr(p.model, "config", None)
    head = _plain(getattr(cfg, "head", None)) or _plain(card.get("head")) or "ifcn"
    data = card.get("data") if isinstance(card.get("data"), dict) else {}
    train = card.get("train_config") if isinstance(card.get("train_config"), dict) else {}
    training = {
        "data": _plain({k: data[k] for k in _SAFE_KEYS["data"] if k in data}),
        "recipe": _plain({k: train[k] for k in _SAFE_KEYS["train"] if k in train}),
        "steps": _plain(card.get("step", card.get("iters"))),
        "seed": _plain(card.get("seed")),
    }
    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    yard = card.get("yardsticks") if isinstance(card.get("yardsticks"), dict) else {}
    yardsticks = {
        name: {k: v for k, v in (_plain(yard.get(name)) or {}).items() if isinstance(v, (int, float))}
        for name in YARDSTICKS
        if isinstance(yard.get(name), dict)
    }
    infer = p.infer
    pyramid = (
        {"kind": "adaptive", "min_object": infer.min_object, "max_pixels": infer.max_pixels}
        if infer.pyramid == "adaptive"
        else {"kind": "fixed", "scales": [int(s) for s in infer.scales]}
    )
    dtype = inference_dtype(infer.precision, p.device)
    precision = {"setting": infer.precision, "backbone": "bf16" if dtype is torch.bfloat16 else "fp32"}
    return {
        "name": _plain(card.get("name")) or _plain(card.get("preset")) or "model",
        "architecture": "InstanceFCN" if head == "ifcn" else f"{head} mask head baseline",
        "backbone": _plain(getattr(cfg, "backbone", None)),
        "head": head,
        "k": p.k,
        "m": p.m,
        "stride": p.stride,
        "head_channels": _plain(getattr(cfg, "head_channels", None)),
        "fill_logit": _plain(getattr(cfg, "fill_logit", None)),
        "parameters": int(sum(t.numel() for t in p.model.parameters())),
        "scales": [int(s) for s in p.infer.scales],
        "pyramid": pyramid,
        "precision": precision,
        "max_side": _plain(getattr(p.infer, "max_side", None)),
        "training": {k: v for k, v in training.items() if v not in (None, {})},
        "metrics": {k: v for k, v in (_plain(metrics) or {}).items() if isinstance(v, (int, float))},
        "yardsticks": yardsticks,
    }


def explore_answer(ctx: AppContext, session: ImageSession, top_n: int, thr: float, iou: float, scale: int,
                    images: bool) -> dict[str, Any]:  # fmt: skip
    if images:
        views = vw.explore(session, top_n, thr, iou, scale)
        data = dict(views.data)
        data["images"] = {n: png_b64(getattr(views, n)) for n in ("mosaic", "objectness", "proposals")}
        return data
    return vw.proposals(session, top_n, thr, iou, scale)[1]
