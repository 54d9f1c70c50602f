"""The ``gr.api`` adapter: named API endpoints over the pure views, for ``gradio_client`` and scripts.

``gradio_client`` cannot drive ``.select`` (click) handlers and has no ``gr.State``, so each click / slider
handler of the page has a twin here: ``upload`` takes an image -- an uploaded file
(``gradio_client.handle_file(path)``) or the base64 of its bytes -- and returns a random session token (the server
keeps the last few API sessions of each client), and every later call names it.  Every answer echoes the image's
``fingerprint`` and size, so a client can check that it is about its own image.  Pictures come back as base64 PNG
only when ``images=True``.  Errors raise ``gr.Error`` with the line of :func:`ifcn_viz.app.errors.user_message`,
the same the page shows.
"""

import base64
import functools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import torch
from gradio import FileData

from ifcn_viz.app import views as vw
from ifcn_viz.app.errors import user_message
from ifcn_viz.app.server import AppContext
from ifcn_viz.app.session import ImageSession, open_session
from ifcn_viz.app.uploads import uploaded_file
from ifcn_viz.inference.predictor import Predictor
from ifcn_viz.precision import inference_dtype

HEAVY = "ifcn-backbone"
"""Concurrency group of the events that run the backbone (uploads, examples, compare, model loads)."""


def png_b64(arr: Any) -> str:
    from ifcn_viz.viz.palette import to_png_bytes

    return base64.b64encode(to_png_bytes(arr, compress_level=1)).decode("ascii")


def as_gr_error(fn: Callable) -> Callable:
    """Turn every error of ``fn`` into ``gr.Error`` with :func:`user_message`'s line (never a traceback)."""

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as err:  # noqa: BLE001 -- one line for the client; internal ones are logged
            raise gr.Error(user_message(err), print_exception=False) from None

    return inner


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
        for name in ("validation", "independent", "real_photos")
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


def _explore_answer(ctx: AppContext, session: ImageSession, top_n: int, thr: float, iou: float, scale: int,
                    images: bool) -> dict[str, Any]:  # fmt: skip
    if images:
        views = vw.explore(session, top_n, thr, iou, scale)
        data = dict(views.data)
        data["images"] = {n: png_b64(getattr(views, n)) for n in ("mosaic", "objectness", "proposals")}
        return data
    return vw.proposals(session, top_n, thr, iou, scale)[1]


def register_api(ctx: AppContext) -> None:
    """Define the endpoints inside the current ``gr.Blocks`` context."""

    def upload_root() -> Path:
        from gradio.utils import get_upload_folder

        return Path(get_upload_folder())  # where Gradio stored the files a client uploaded

    @as_gr_error
    def upload(
        image: FileData | str,
        name: str = "",
        top_n: int = 10,
        mask_threshold: float = 0.4,
        nms_iou: float = 0.8,
        scale: int = -1,
        images: bool = False,
        request: gr.Request = None,
    ) -> dict:
        """Upload an image -- a file sent with ``gradio_client.handle_file(path)``, or the base64 of its bytes --:
        runs the backbone once; returns the session token, the image's fingerprint and size, and its top
        proposals.  ``name``: how answers call the image (default: the file's name, or "upload")."""
        vw.check_proposal_params(top_n, mask_threshold, nms_iou)  # before the backbone runs
        names: dict[str, str] = {}
        if isinstance(image, dict):
            path, shown = uploaded_file(image, upload_root(), ctx.max_upload_bytes, str(ctx.max_file_size))
            src: Any = path
            names[str(path)] = shown
        else:
            src, shown = ctx.decode_upload(image), "upload"
        label = name if isinstance(name, str) and name else shown
        try:
            session = open_session(ctx.shared(), src, f"api: {label}", ctx.label_for(None))
        except Exception as err:  # noqa: BLE001 -- named by the user's file, not its server path
            raise gr.Error(user_message(err, names), print_exception=False) from None
        token = ctx.store.put(session, client_of(request))
        return {"session": token, **_explore_answer(ctx, session, top_n, mask_threshold, nms_iou, scale, images)}

    @as_gr_error
    def example(name: str, top_n: int = 10, images: bool = False, request: gr.Request = None) -> dict:
        """Open one of the offline examples (see ``examples``) as a new session."""
        image, masks = vw.example_image(name), vw.example_masks(name)
        session = open_session(ctx.shared(), image, f"example: {name}", ctx.label_for(None), masks,
                               "synthetic scene" if masks is not None else "")  # fmt: skip
        token = ctx.store.put(session, client_of(request))
        return {"session": token, **_explore_answer(ctx, session, top_n, 0.4, 0.8, -1, images)}

    def examples() -> list[str]:
        """The names of the offline examples."""
        return vw.example_names()

    @as_gr_error
    def proposals(
        session: str, top_n: int = 10, mask_threshold: float = 0.4, nms_iou: float = 0.8, scale: int = -1,
        images: bool = False,
    ) -> dict:  # fmt: skip
        """Top-N segment proposals of a session's image (no backbone run)."""
        return _explore_answer(ctx, ctx.store.get(session), top_n, mask_threshold, nms_iou, scale, images)

    @as_gr_error
    def window(session: str, x: float, y: float, scale: int = -1, threshold: float = 0.5, images: bool = False) -> dict:
        """The window centred at the feature cell under pixel (x, y), assembled from the cached maps."""
        s = ctx.store.get(session)
        views = vw.window_at(s, x, y, scale, threshold, maps=images)
        if images:
            return {**views.data, "images": {"marked": png_b64(views.marked), "view": png_b64(views.view)}}
        return views.data

    @as_gr_error
    def assemble_step(session: str, x: float, y: float, step: int, scale: int = -1) -> dict:
        """Frame ``step`` (0 .. k^2 + 1) of the window under (x, y) being assembled, as a PNG."""
        s = ctx.store.get(session)
        frames = vw.assembly_frames(s, x, y, scale)
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < len(frames):
            raise ValueError(f"step must be an integer in 0..{len(frames) - 1}, got {step!r}")
        k = s.predictor.k
        return {**s.summary(), "step": step, "steps": len(frames), "caption": vw.frame_caption(k, step),
                "image": png_b64(frames[step])}  # fmt: skip

    @as_gr_error
    def provenance(session: str, x: float, y: float, scale: int = -1, images: bool = False) -> dict:
        """Every window covering pixel (x, y) at one scale and the score map each reads there."""
        view, data = vw.provenance_at(ctx.store.get(session), x, y, scale)
        return {**data, "images": {"view": png_b64(view)}} if images else data

    @as_gr_error
    def compare(seed: int = 1, size: int = 256, images: bool = False) -> dict:
        """A synthetic scene with ground truth: ideal vs learned maps, and k = 1 vs k = 5."""
        image, ivl, kc, data = vw.compare_scene(ctx.shared(), seed, size)
        if images:
            data["images"] = {"scene": png_b64(image), "ideal_vs_learned": png_b64(ivl), "k_comparison": png_b64(kc)}
        return data

    @as_gr_error
    def draw(session: str, coco: str = "", x: float = -1, y: float = -1, threshold: float = 0.5,
             images: bool = False) -> dict:  # fmt: skip
        """Your own instances on a session's image: ``coco`` is a COCO instances JSON (text) of this image -- the
        Draw tab's download, or your own; empty: the session's known instances (a synthetic example's, or the
        last ``draw``).  Returns their ideal maps at the best-fitting scale, the window at pixel (x, y) (-1: the
        first instance's centre) assembled from them, k = 1 vs k, and each instance's IoU (ideal and learned
        window); ``coco``: the instances as COCO JSON.  The instances become the session's ground truth."""
        from ifcn_viz.app.instances import coco_from_masks, masks_from_coco
        from ifcn_viz.limits import check_coco_upload

        s = ctx.store.get(session)
        if coco:
            if not isinstance(coco, str):
                raise ValueError("coco must be the text of a COCO instances JSON")
            check_coco_upload(len(coco.encode("utf-8")), "the COCO text")
            try:
                data = json.loads(coco)
            except json.JSONDecodeError as err:
                raise ValueError(f"the COCO text is not valid JSON (line {err.lineno}, column {err.colno})") from None
            if not isinstance(data, dict):
                raise ValueError("the COCO text must be an object with 'images', 'annotations' and 'categories'")
            s.gt_masks, s.gt_source = masks_from_coco(data, s.hw, "the COCO text"), "COCO file"
        if s.gt_masks is None:
            raise ValueError("this session has no instances yet: pass coco (a COCO instances JSON of this image)")
        px, py = (None, None) if x == -1 and y == -1 else (x, y)
        v = vw.draw_views(s, s.gt_masks, px, py, threshold)
        out = {**v.data, "coco": coco_from_masks(s.gt_masks, s.name.split(": ", 1)[-1])}
        if images:
            out["images"] = {n: png_b64(getattr(v, n)) for n in ("instances", "ideal", "window", "k_compare",
                                                                 "learned")}  # fmt: skip
        return out

    @as_gr_error
    def inspect(session: str, top_n: int = 10, mask_threshold: float = 0.4, nms_iou: float = 0.8, scale: int = -1,
                use_gt: bool = True, step: int = 0, images: bool = False) -> dict:  # fmt: skip
        """The proposal funnel of a session's image (windows per stage and scale; with its known instances, recall
        at each stage and where each missed object was lost), NMS step ``step`` (who suppressed whom) and the
        objectness / logit histograms' numbers."""
        s = ctx.store.get(session)
        v = vw.inspect(s, top_n, mask_threshold, nms_iou, scale, use_gt)
        out = dict(v.data)
        if isinstance(step, bool) or not isinstance(step, int):
            raise ValueError(f"step must be an integer, got {step!r}")
        nms = vw.nms_view(s, v.trace, step, nms_iou) if step else v.nms
        if images:
            pics = {"funnel": v.funnel, "objectness": v.objectness, "logits": v.logits, "nms": nms}
            if v.missed is not None:
                pics["missed"] = v.missed
            out["images"] = {n: png_b64(a) for n, a in pics.items()}
        return out

    @as_gr_error
    def score_map(session: str, channel: int, scale: int = -1, x: float = -1, y: float = -1,
                  images: bool = False) -> dict:  # fmt: skip
        """One of the k^2 score maps of a session's image, large; with pixel (x, y), the window there outlined and
        the cells its sub-window copies from this map drawn thick."""
        s = ctx.store.get(session)
        px, py = (None, None) if x == -1 and y == -1 else (x, y)
        img, data = vw.map_view(s, channel, scale, px, py)
        return {**data, "images": {"map": png_b64(img)}} if images else data

    @as_gr_error
    def model_info() -> dict:
        """The server's default model: architecture, k, m, stride, scales, training data summary and metrics."""
        return {"label": ctx.label_for(None), **model_description(ctx.shared())}

    @as_gr_error
    def train_tiny(iterations: int = 5, seed: int = 0) -> dict:
        """Train a fresh ``tiny`` model for a few steps (at most 50 here) and return its loss curve."""
        from ifcn_viz.app.live_train import live_training

        if isinstance(iterations, bool) or not isinstance(iterations, int) or not 1 <= iterations <= 50:
            raise ValueError(f"iterations must be an integer in 1..50 through the API, got {iterations!r}")
        tick = list(live_training(iterations, seed, every=iterations))[-1]  # one tick: after the last step
        return {"steps": tick.step, "losses": [list(r) for r in tick.losses], "seconds": round(tick.seconds, 3)}

    heavy = {"concurrency_id": HEAVY}
    gr.api(upload, api_name="upload", **heavy)
    gr.api(example, api_name="example", **heavy)
    gr.api(examples, api_name="examples")
    gr.api(proposals, api_name="proposals", **heavy)
    gr.api(window, api_name="window")
    gr.api(assemble_step, api_name="assemble_step")
    gr.api(provenance, api_name="provenance")
    gr.api(compare, api_name="compare", **heavy)
    gr.api(draw, api_name="draw")
    gr.api(inspect, api_name="inspect", **heavy)
    gr.api(score_map, api_name="score_map")
    gr.api(model_info, api_name="model_info")
    gr.api(train_tiny, api_name="train_tiny", concurrency_id="ifcn-train", concurrency_limit=1)


API_NAMES = (
    "upload", "example", "examples", "proposals", "window", "assemble_step", "provenance", "compare", "draw",
    "inspect", "score_map", "model_info", "train_tiny",
)  # fmt: skip
