"""The explorer: ``build_demo(predictor) -> gr.Blocks`` (tabs Explore, Assemble, Provenance, Draw, Inspect,
Compare, Train, Model, About), and :func:`launch` to serve it.

``build_demo`` lays out each tab (:mod:`ifcn_viz.app.layout`), then wires each tab's events to the handlers
(:mod:`ifcn_viz.app.handlers`) by component name, and registers the API (:mod:`ifcn_viz.app.api`).  A handler
returns ``{component: value}``; the ``outputs`` of an event are the set of components it may change.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from ifcn_viz.app import layout
from ifcn_viz.app.api import HEAVY, register_api
from ifcn_viz.app.handlers import Handlers
from ifcn_viz.app.layout import ABOUT, Page  # noqa: F401 (ABOUT re-exported for tests)
from ifcn_viz.app.server import DEFAULT_MAX_FILE_SIZE, AppContext, launch  # noqa: F401 (launch re-exported)
from ifcn_viz.app.uploads import claim_upload_dir
from ifcn_viz.inference.predictor import Predictor

HEAVY_EVENT = {"concurrency_id": HEAVY, "api_visibility": "undocumented"}
"""Events that run the backbone share one concurrency group; the page's own events are undocumented in the API
(clients use the ``gr.api`` twins)."""
UI_EVENT = {"api_visibility": "undocumented"}


def wire_explore(page: Page, h: Handlers) -> None:
    opened = page.image_views
    page.upload.upload(h.on_upload, [page.upload, page.user_model, *page.params], opened, **HEAVY_EVENT)
    page.paste.input(h.on_upload, [page.paste, page.user_model, *page.params], opened, **HEAVY_EVENT)
    page.example.input(h.on_example, [page.example, page.user_model, *page.params], opened, **HEAVY_EVENT)
    updated = {page.status, page.mosaic, page.mosaic_json, page.objectness, page.objectness_json, page.props_img,
               page.props_json, page.ex_click}  # fmt: skip
    for c in page.params:
        c.input(h.on_params, [page.sess, *page.params], updated, **HEAVY_EVENT)
    page.ex_image.select(h.on_explore_click, [page.sess, page.scale, page.thr, page.ex_click],
                         {page.status, page.ex_image, page.ex_window, page.ex_window_json, page.mosaic, page.ex_map,
                          page.ex_map_json, page.ex_click}, **UI_EVENT)  # fmt: skip
    page.mosaic.select(h.on_mosaic_click, [page.sess, page.scale, page.ex_click],
                       {page.status, page.ex_map, page.ex_map_json, page.ex_click}, **UI_EVENT)  # fmt: skip


def wire_draw(page: Page, h: Handlers) -> None:
    shown = {page.sess, page.status, page.dr_masks, page.dr_instances, page.dr_ideal, page.dr_window, page.dr_k,
             page.dr_learned, page.dr_json, page.dr_download}  # fmt: skip
    page.dr_show.click(h.on_draw, [page.dr_editor, page.sess], shown, **UI_EVENT)
    page.dr_editor.change(h.on_draw_change, [page.dr_editor, page.sess], shown, trigger_mode="always_last",
                          **UI_EVENT)  # fmt: skip
    page.dr_instances.select(h.on_draw_click, [page.sess, page.dr_masks],
                             {page.status, page.dr_ideal, page.dr_window, page.dr_json}, **UI_EVENT)  # fmt: skip
    page.dr_upload.upload(h.on_coco_upload, [page.dr_upload, page.sess], {*shown, page.dr_editor}, **UI_EVENT)


def wire_inspect(page: Page, h: Handlers) -> None:
    shown = {page.status, page.in_funnel, page.in_missed, page.in_obj, page.in_logits, page.in_nms, page.in_json,
             page.in_trace, page.in_step}  # fmt: skip
    page.in_btn.click(h.on_inspect, [page.sess, page.in_gt, *page.params], shown, **HEAVY_EVENT)
    args = [page.in_step, page.sess, page.in_trace, page.iou]
    page.in_step.input(h.on_nms_step, args, {page.status, page.in_nms}, **UI_EVENT)
    page.in_next.click(h.on_nms_next, args, {page.status, page.in_step, page.in_nms}, **UI_EVENT)


def wire_assemble(page: Page, h: Handlers) -> None:
    frame = {page.as_frame, page.as_caption}
    page.as_image.select(h.on_assemble_click, [page.sess, page.scale],
                         {page.status, page.click, page.as_image, page.as_step, page.as_view, *frame},
                         **UI_EVENT)  # fmt: skip
    args = [page.as_step, page.sess, page.click, page.scale]
    page.as_step.input(h.on_step, args, frame, **UI_EVENT)
    page.as_next.click(h.on_next, args, {page.as_step, *frame}, **UI_EVENT)
    page.as_play.click(h.on_play, [page.sess, page.click, page.scale], {page.as_step, *frame}, **UI_EVENT)


def wire_provenance(page: Page, h: Handlers) -> None:
    page.pv_image.select(h.on_provenance_click, [page.sess, page.scale], {page.status, page.pv_view, page.pv_json},
                         **UI_EVENT)  # fmt: skip


def wire_compare(page: Page, h: Handlers) -> None:
    shown = {page.status, page.cmp_scene, page.cmp_ivl, page.cmp_k, page.cmp_json}
    page.cmp_btn.click(h.on_compare, [page.cmp_seed, page.user_model], shown, **HEAVY_EVENT)


def wire_train(page: Page, h: Handlers) -> None:
    page.tr_start.click(h.on_train, [page.tr_iters, page.tr_seed],
                        {page.tr_status, page.tr_plot, page.tr_maps, page.tr_obj, page.trained},
                        concurrency_id="ifcn-train", concurrency_limit=1, **UI_EVENT)  # fmt: skip
    # no `cancels`: the run checks its stop flag after each update and says "Stopped" itself (last word wins)
    page.tr_stop.click(h.on_stop, None, {page.tr_status}, **UI_EVENT)


def wire_model(page: Page, h: Handlers) -> None:
    switched = {*page.image_views, page.user_model, page.md_info, page.scale}
    page.tr_use.click(h.on_use_trained, [page.trained, page.sess, *page.params], switched, **HEAVY_EVENT)
    page.md_load.click(h.on_load_checkpoint, [page.md_files, page.sess, *page.params], switched, **HEAVY_EVENT)
    page.md_shipped.click(h.on_use_shipped, [page.sess, *page.params], switched, **HEAVY_EVENT)
    page.md_use.click(h.on_use_named, [page.md_choice, page.sess, *page.params], switched, **HEAVY_EVENT)


def build_demo(
    predictor: Predictor | None = None,
    checkpoint: str | Path = "shipped",
    max_file_size: str | int = DEFAULT_MAX_FILE_SIZE,
) -> gr.Blocks:
    """The whole app.  ``predictor``: the default model for every user (``None``: load ``checkpoint``).

    Claims this process's upload folder first (stale uploads of earlier runs are removed).  Serve it with
    :func:`launch` (or ``demo.queue(...).launch(...)`` yourself).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    claim_upload_dir()
    ctx = AppContext(predictor, checkpoint, max_file_size)
    shared = ctx.shared()  # load now: a missing or broken checkpoint fails at start, not at the first click
    page = Page()
    h = Handlers(ctx, page)

    with gr.Blocks(title="InstanceFCN explorer", delete_cache=(900, 3600)) as demo:
        layout.header(page, ctx.label_for(None))
        with gr.Tabs():
            with gr.Tab("Explore", id="explore"):
                layout.explore_tab(page, shared)
            with gr.Tab("Assemble", id="assemble"):
                layout.assemble_tab(page, shared.k)
            with gr.Tab("Provenance", id="provenance"):
                layout.provenance_tab(page)
            with gr.Tab("Draw", id="draw"):
                layout.draw_tab(page)
            with gr.Tab("Inspect", id="inspect"):
                layout.inspect_tab(page)
            with gr.Tab("Compare", id="compare"):
                layout.compare_tab(page)
            with gr.Tab("Train", id="train"):
                layout.train_tab(page)
            with gr.Tab("Model", id="model"):
                layout.model_tab(page, h.model_markdown(None))
            with gr.Tab("About", id="about"):
                layout.about_tab()
        for wire in (wire_explore, wire_assemble, wire_provenance, wire_draw, wire_inspect, wire_compare, wire_train,
                     wire_model):  # fmt: skip
            wire(page, h)
        register_api(ctx)

    demo.ctx = ctx  # type: ignore[attr-defined]  # for tests and launch()
    demo.page, demo.handlers = page, h  # type: ignore[attr-defined]
    return demo
