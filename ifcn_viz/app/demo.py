"""The explorer page: ``build_demo(predictor) -> gr.Blocks`` (tabs Explore, Assemble, Provenance, Compare, Train,
Model, About).  Handlers are thin: they read ``gr.State`` and the click's ``evt.index`` (x, y), call the pure
functions of :mod:`ifcn_viz.app.callbacks`, and turn user-facing errors into a status line and ``gr.Warning``
(never a traceback).  Each handler's pure function is also a named API endpoint (:mod:`ifcn_viz.app.api`).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import gradio as gr

from ifcn_viz.app import callbacks as cb
from ifcn_viz.app.api import HEAVY, register_api
from ifcn_viz.app.handlers import Handlers
from ifcn_viz.app.state import DEFAULT_MAX_FILE_SIZE, AppContext
from ifcn_viz.inference.predictor import Predictor

log = logging.getLogger(__name__)
ABOUT = Path(__file__).with_name("about.md")
CSS = """
#status {min-height: 2.5em}
.ifcn-note {font-size: 0.92em; opacity: 0.85}
"""


def _img(label: str, elem_id: str, **kw: Any) -> gr.Image:
    """An output picture: PNG (maps must not be lossy), no upload, download button."""
    return gr.Image(label=label, elem_id=elem_id, format="png", type="numpy", interactive=False,
                    buttons=["download", "fullscreen"], **kw)  # fmt: skip


def build_demo(
    predictor: Predictor | None = None,
    checkpoint: str | Path = "shipped",
    max_file_size: str | int = DEFAULT_MAX_FILE_SIZE,
) -> gr.Blocks:
    """The whole app.  ``predictor``: the default model for every user (``None``: load ``checkpoint``).

    Launch with :func:`launch` (or ``demo.queue(...).launch(...)`` yourself).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    ctx = AppContext(predictor, checkpoint, max_file_size)
    shared = ctx.shared()  # load now: a missing or broken checkpoint fails at start, not at the first click
    h = Handlers(ctx)
    scale_choices = [("all scales (proposals) / middle scale (maps)", -1), *cb.scale_choices(shared)]
    infer = shared.infer

    with gr.Blocks(title="InstanceFCN explorer", delete_cache=(900, 3600)) as demo:
        sess = gr.State(None)  # ImageSession: this user's image and its cached maps
        user_model = gr.State(None)  # Predictor | None: this user's model (None = the server's default)
        trained = gr.State(None)  # nn.Module | None: the model this user just trained
        click = gr.State(None)  # (x, y) of the last click in the Assemble tab

        gr.Markdown(
            "# InstanceFCN explorer\n"
            "Instance-sensitive fully convolutional networks (Dai, He, Li, Ren, Sun, ECCV 2016): upload an image, "
            "see the k x k score maps, click anywhere to assemble the window there. "
            f"Model: **{ctx.label_for(None)}**."
        )
        status = gr.Markdown("Upload an image or pick an example to begin.", elem_id="status")

        with gr.Tabs():
            with gr.Tab("Explore", id="explore"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=280):
                        upload = gr.File(label="Upload an image file", file_count="single", type="filepath",
                                         elem_id="upload")  # fmt: skip
                        paste = gr.Image(label="...or paste (Ctrl+V) / drop an image", sources=["upload", "clipboard"],
                                         type="filepath", image_mode=None, height=140, elem_id="paste")  # fmt: skip
                        example = gr.Dropdown(cb.example_names(), value=None, label="...or open an example",
                                              elem_id="example")  # fmt: skip
                        top_n = gr.Slider(1, cb.MAX_TOP_N, value=10, step=1, label="top-N proposals")
                        thr = gr.Slider(0.05, 0.95, value=infer.mask_threshold, step=0.05,
                                        label="mask threshold (not in the paper; FCIS 0.4, DeepMask 0.2)")  # fmt: skip
                        iou = gr.Slider(0.1, 1.0, value=infer.nms_iou, step=0.05, label="NMS IoU (paper: 0.8)")
                        scale = gr.Dropdown(scale_choices, value=-1, label="scale", elem_id="scale")
                    with gr.Column(scale=2):
                        ex_image = _img("your image: click a pixel to see the window centred there", "ex_image")
                        ex_window = _img("the window at the clicked pixel", "ex_window")
                        with gr.Accordion("the window in numbers", open=False):
                            ex_window_json = gr.JSON(label="window", elem_id="ex_window_json")
                with gr.Row():
                    mosaic = _img("instance-sensitive score maps (k x k mosaic)", "mosaic")
                    objectness = _img("objectness", "objectness")
                with gr.Row():
                    props_img = _img("top proposals", "proposals")
                    with gr.Column():
                        with gr.Accordion("the proposals in numbers", open=False):
                            props_json = gr.JSON(label="proposals", elem_id="proposals_json")

            with gr.Tab("Assemble", id="assemble"):
                gr.Markdown(
                    "Click a pixel: the m x m window centred on its feature cell is split into k x k sub-windows, and "
                    "sub-window (a, b) copies its cells from score map a*k + b (Sec. 3.1). Step through it, or play.",
                    elem_classes="ifcn-note",
                )
                with gr.Row():
                    as_image = _img("click a pixel", "as_image")
                    with gr.Column():
                        as_frame = _img("assembling, one sub-window at a time", "as_frame")
                        as_caption = gr.Markdown("", elem_id="as_caption")
                        with gr.Row():
                            as_step = gr.Slider(0, shared.k**2 + 1, value=0, step=1, label="step", elem_id="as_step")
                            as_next = gr.Button("Step >", elem_id="as_next")
                            as_play = gr.Button("Play", variant="primary", elem_id="as_play")
                as_view = _img("the finished window: on the image, assembled, pasted back; its source maps", "as_view")

            with gr.Tab("Provenance", id="provenance"):
                gr.Markdown(
                    "Click a pixel: every window that covers it, coloured by the logit it reads there, and which of "
                    "the k^2 maps it reads. Windows above-left read it through their bottom-right map; the same "
                    "pixel can be inside one window's instance and outside its neighbour's.",
                    elem_classes="ifcn-note",
                )
                with gr.Row():
                    pv_image = _img("click a pixel", "pv_image")
                    pv_view = _img("windows covering the pixel", "pv_view")
                with gr.Accordion("the provenance in numbers", open=False):
                    pv_json = gr.JSON(label="provenance", elem_id="pv_json")

            with gr.Tab("Compare", id="compare"):
                gr.Markdown(
                    "A synthetic scene with ground truth. Left: the *ideal* maps (what a perfect InstanceFCN would "
                    "output for the true masks) beside the model's learned maps. Below: k = 1 (one map, a semantic "
                    "FCN) merges touching objects; k^2 relative-position maps keep them apart (Sec. 3, Fig. 1).",
                    elem_classes="ifcn-note",
                )
                with gr.Row():
                    cmp_seed = gr.Number(value=1, precision=0, label="scene seed", minimum=0)
                    cmp_btn = gr.Button("Show", variant="primary", elem_id="cmp_btn")
                with gr.Row():
                    cmp_scene = _img("scene", "cmp_scene")
                    cmp_ivl = _img("ideal vs learned maps", "cmp_ivl")
                cmp_k = _img("k = 1 vs k = 5 (ideal maps, assembled at each instance centre)", "cmp_k")
                with gr.Accordion("the scene in numbers", open=False):
                    cmp_json = gr.JSON(label="scene", elem_id="cmp_json")

            with gr.Tab("Train", id="train"):
                gr.Markdown(
                    "Train the `tiny` model from scratch on synthetic scenes, on this server's CPU: watch the loss "
                    "fall and the score maps of a fixed held-out scene emerge. One training runs at a time; Stop keeps "
                    "the weights so far. Then explore with them.",
                    elem_classes="ifcn-note",
                )
                with gr.Row():
                    tr_iters = gr.Number(value=100, precision=0, minimum=1, maximum=2000, label="iterations")
                    tr_seed = gr.Number(value=0, precision=0, minimum=0, label="seed")
                    tr_start = gr.Button("Train", variant="primary", elem_id="tr_start")
                    tr_stop = gr.Button("Stop", variant="stop", elem_id="tr_stop")
                    tr_use = gr.Button("Explore with these weights", elem_id="tr_use")
                tr_status = gr.Markdown("", elem_id="tr_status")
                tr_plot = gr.LinePlot(x="step", y="loss", color="term", label="training loss", elem_id="tr_plot")
                with gr.Row():
                    tr_maps = _img("score maps of the fixed scene", "tr_maps")
                    tr_obj = _img("objectness of the fixed scene", "tr_obj")

            with gr.Tab("Model", id="model"):
                md_info = gr.Markdown(h.model_markdown(None), elem_id="md_info")
                md_files = gr.File(label="Upload a checkpoint: NAME.safetensors and its NAME.json card",
                                   file_count="multiple", type="filepath", elem_id="md_files")  # fmt: skip
                with gr.Row():
                    md_load = gr.Button("Use the uploaded checkpoint", variant="primary", elem_id="md_load")
                    md_shipped = gr.Button("Use the shipped model", elem_id="md_shipped")

            with gr.Tab("About", id="about"):
                gr.Markdown(
                    ABOUT.read_text(encoding="utf-8"), latex_delimiters=[{"left": "$", "right": "$", "display": False}]
                )

        # ---------------------------------------------------------------- wiring
        params = [top_n, thr, iou, scale]
        explore_out = [sess, status, ex_image, mosaic, objectness, props_img, props_json, as_image, pv_image]
        heavy = {"concurrency_id": HEAVY, "api_visibility": "undocumented"}
        ui = {"api_visibility": "undocumented"}  # the page's own events; API clients use the gr.api twins
        upload.upload(h.on_upload, [upload, user_model, *params, sess], explore_out, **heavy)
        paste.input(h.on_upload, [paste, user_model, *params, sess], explore_out, **heavy)  # upload, drop or paste
        example.input(h.on_example, [example, user_model, *params, sess], explore_out, **heavy)
        for c in params:
            c.input(h.on_params, [sess, *params], [status, mosaic, objectness, props_img, props_json], **heavy)
        ex_image.select(h.on_explore_click, [sess, scale, thr], [status, ex_image, ex_window, ex_window_json], **ui)

        as_image.select(
            h.on_assemble_click, [sess, scale], [status, click, as_image, as_step, as_frame, as_caption, as_view], **ui
        )
        as_step.input(h.on_step, [as_step, sess, click, scale], [as_frame, as_caption], **ui)
        as_next.click(h.on_next, [as_step, sess, click, scale], [as_step, as_frame, as_caption], **ui)
        as_play.click(h.on_play, [sess, click, scale], [as_step, as_frame, as_caption], **ui)
        pv_image.select(h.on_provenance_click, [sess, scale], [status, pv_view, pv_json], **ui)

        cmp_btn.click(h.on_compare, [cmp_seed, user_model], [status, cmp_scene, cmp_ivl, cmp_k, cmp_json], **heavy)
        train_ev = tr_start.click(h.on_train, [tr_iters, tr_seed], [tr_status, tr_plot, tr_maps, tr_obj, trained],
                                  concurrency_id="ifcn-train", concurrency_limit=1, **ui)  # fmt: skip
        tr_stop.click(h.on_stop, None, [tr_status], cancels=[train_ev], **ui)
        model_out = [status, user_model, sess, md_info, scale, ex_image, mosaic, objectness, props_img, props_json]
        tr_use.click(h.on_use_trained, [trained, sess, *params], model_out, **heavy)
        md_load.click(h.on_load_checkpoint, [md_files, sess, *params], model_out, **heavy)
        md_shipped.click(h.on_use_shipped, [sess, *params], model_out, **heavy)

        register_api(ctx)

    demo.ctx = ctx  # type: ignore[attr-defined]  # for tests and launch()
    return demo


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (as ``MALLOC_ARENA_MAX`` would) before the server starts its threads.

    Gradio answers from a pool of worker threads; glibc gives each thread its own 64 MB-reserving arena, and
    torch's temporary buffers then fragment them: under 8 concurrent clients the server's RSS grew by about
    270 MB with the default and about 145 MB with 2 arenas (measured, bench/bench_app.py).  A no-op where
    ``MALLOC_ARENA_MAX`` is set or the C library is not glibc.  Returns whether the cap was applied.
    """
    import ctypes
    import ctypes.util
    import sys

    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-8, int(arenas)))  # -8 = M_ARENA_MAX
    except (OSError, AttributeError):
        return False


def launch(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int | None = 7860,
    share: bool = False,
    max_file_size: str | int | None = None,
    concurrency: int = 2,
    max_queue: int = 64,
    **kwargs: Any,
) -> Any:
    """Serve ``demo`` with the project's defaults: bound to 127.0.0.1, no share link unless asked, a maximum
    upload size, a queue of at most ``max_queue`` waiting events and ``concurrency`` backbone runs at a time."""
    limit_malloc_arenas()
    ctx: AppContext | None = getattr(demo, "ctx", None)
    size = max_file_size or (ctx.max_file_size if ctx else DEFAULT_MAX_FILE_SIZE)
    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    t0 = time.perf_counter()
    out = demo.launch(server_name=host, server_port=port, share=share, max_file_size=size, css=CSS,
                      show_error=False, **kwargs)  # fmt: skip
    log.info("served in %.2f s", time.perf_counter() - t0)
    return out
