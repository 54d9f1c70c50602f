"""Named API endpoints (``gr.api``) over the pure callbacks, for ``gradio_client`` and scripts.

``gradio_client`` cannot drive ``.select`` (click) handlers and has no ``gr.State``, so each click / slider
handler of the page has a twin here: ``upload`` returns a random session token (the server keeps the last few
API sessions), and every later call names it.  Every answer echoes the image's ``fingerprint`` and size, so a
client can check that it is about its own image.  Pictures come back as base64 PNG only when ``images=True``.
Errors (a bad image, an unknown session, a parameter out of range) raise ``gr.Error`` with the reason.
"""

import base64
import functools
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from ifcn_viz.app import callbacks as cb
from ifcn_viz.app.session import ImageSession, open_session
from ifcn_viz.app.state import AppContext

log = logging.getLogger(__name__)

HEAVY = "ifcn-backbone"
"""Concurrency group of the events that run the backbone (uploads, examples, compare, model loads)."""


def png_b64(arr: Any) -> str:
    from ifcn_viz.viz.palette import to_png_bytes

    return base64.b64encode(to_png_bytes(arr, compress_level=1)).decode("ascii")


def as_gr_error(fn: Callable) -> Callable:
    """Turn the user-facing errors of ``fn`` into ``gr.Error`` (message only, never a traceback)."""

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, KeyError, TypeError) as err:
            raise gr.Error(str(err.args[0]) if err.args else type(err).__name__, print_exception=False) from None
        except Exception as err:  # noqa: BLE001 -- logged here, summarised for the client
            log.exception("API call %s failed", fn.__name__)
            raise gr.Error(f"internal error ({type(err).__name__}); the server is still running") from None

    return inner


def _explore_answer(ctx: AppContext, session: ImageSession, top_n: int, thr: float, iou: float, scale: int,
                    images: bool) -> dict[str, Any]:  # fmt: skip
    if images:
        views = cb.explore(session, top_n, thr, iou, scale)
        data = dict(views.data)
        data["images"] = {n: png_b64(getattr(views, n)) for n in ("mosaic", "objectness", "proposals")}
        return data
    return cb.proposals(session, top_n, thr, iou, scale)[1]


def register_api(ctx: AppContext) -> None:
    """Define the endpoints inside the current ``gr.Blocks`` context."""

    @as_gr_error
    def upload(
        image_b64: str,
        name: str = "upload",
        top_n: int = 10,
        mask_threshold: float = 0.4,
        nms_iou: float = 0.8,
        scale: int = -1,
        images: bool = False,
    ) -> dict:
        """Upload an image (base64 of the file's bytes): runs the backbone once; returns the session token,
        the image's fingerprint and size, and its top proposals."""
        data = ctx.decode_upload(image_b64)
        session = open_session(ctx.shared(), data, f"api: {name}", ctx.label_for(None))
        token = ctx.store.put(session)
        return {"session": token, **_explore_answer(ctx, session, top_n, mask_threshold, nms_iou, scale, images)}

    @as_gr_error
    def example(name: str, top_n: int = 10, images: bool = False) -> dict:
        """Open one of the offline examples (see ``examples``) as a new session."""
        session = open_session(ctx.shared(), cb.example_image(name), f"example: {name}", ctx.label_for(None))
        token = ctx.store.put(session)
        return {"session": token, **_explore_answer(ctx, session, top_n, 0.4, 0.8, -1, images)}

    def examples() -> list[str]:
        """The names of the offline examples."""
        return cb.example_names()

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
        views = cb.window_at(s, x, y, scale, threshold, maps=images)
        if images:
            return {**views.data, "images": {"marked": png_b64(views.marked), "view": png_b64(views.view)}}
        return views.data

    @as_gr_error
    def assemble_step(session: str, x: float, y: float, step: int, scale: int = -1) -> dict:
        """Frame ``step`` (0 .. k^2 + 1) of the window under (x, y) being assembled, as a PNG."""
        s = ctx.store.get(session)
        frames = cb.assembly_frames(s, x, y, scale)
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < len(frames):
            raise ValueError(f"step must be an integer in 0..{len(frames) - 1}, got {step!r}")
        k = s.predictor.k
        return {**s.summary(), "step": step, "steps": len(frames), "caption": cb.frame_caption(k, step),
                "image": png_b64(frames[step])}  # fmt: skip

    @as_gr_error
    def provenance(session: str, x: float, y: float, scale: int = -1, images: bool = False) -> dict:
        """Every window covering pixel (x, y) at one scale and the score map each reads there."""
        view, data = cb.provenance_at(ctx.store.get(session), x, y, scale)
        return {**data, "images": {"view": png_b64(view)}} if images else data

    @as_gr_error
    def compare(seed: int = 1, size: int = 256, images: bool = False) -> dict:
        """A synthetic scene with ground truth: ideal vs learned maps, and k = 1 vs k = 5."""
        image, ivl, kc, data = cb.compare_scene(ctx.shared(), seed, size)
        if images:
            data["images"] = {"scene": png_b64(image), "ideal_vs_learned": png_b64(ivl), "k_comparison": png_b64(kc)}
        return data

    @as_gr_error
    def model_info() -> dict:
        """The server's default model: its card's name, k, m, stride and inference scales."""
        p = ctx.shared()
        card = p.card or {}
        return {"label": ctx.label_for(None), "k": p.k, "m": p.m, "stride": p.stride,
                "scales": list(p.infer.scales), "card": {k: v for k, v in card.items() if k != "model_config"},
                "model_config": card.get("model_config")}  # fmt: skip

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
    gr.api(model_info, api_name="model_info")
    gr.api(train_tiny, api_name="train_tiny", concurrency_id="ifcn-train", concurrency_limit=1)


API_NAMES = (
    "upload", "example", "examples", "proposals", "window", "assemble_step", "provenance", "compare", "model_info",
    "train_tiny",
)  # fmt: skip
