"""The page's layout: :class:`Page`, the one named structure of every component, and one function per tab that
creates that tab's components on it.  No events here (``demo.py`` wires them) and no logic (``handlers.py``).

Handlers answer with ``{page.<component>: value}`` for what they change -- Gradio's dict-return idiom -- so
neither side counts positions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ifcn_viz.app import views
from ifcn_viz.config import APP_MAX_TOP_N, MASK_THRESHOLD_SLIDER, NMS_IOU, NMS_IOU_SLIDER, NMS_MAX_STEPS, TOP_N

ABOUT = Path(__file__).with_name("about.md")
CSS = """
#status {min-height: 2.5em}
.ifcn-note {font-size: 0.92em; opacity: 0.85}
"""
ALL_SCALES = ("all scales (proposals) / middle scale (maps)", -1)


def scale_dropdown_choices(predictor: Any) -> list[tuple[str, int]]:
    return [ALL_SCALES, *views.scale_choices(predictor)]


class Page:
    """Every component of the page, by name (set by the tab functions below)."""

    # per-user state (one value per browser tab)
    sess: gr.State  # ImageSession | None: this user's image and its cached maps
    user_model: gr.State  # Predictor | None: this user's model (None = the server's default)
    trained: gr.State  # nn.Module | None: the model this user just trained
    click: gr.State  # (x, y) of the last click in the Assemble tab
    status: gr.Markdown
    # Explore
    upload: gr.File
    paste: gr.Image
    example: gr.Dropdown
    top_n: gr.Slider
    thr: gr.Slider
    iou: gr.Slider
    scale: gr.Dropdown
    ex_image: gr.Image
    ex_window: gr.Image
    ex_window_json: gr.JSON
    mosaic: gr.Image
    mosaic_json: gr.JSON
    ex_map: gr.Image
    ex_map_json: gr.JSON
    ex_click: gr.State  # (x, y) of the last click in the Explore tab (outlined on the mosaic and the large map)
    objectness: gr.Image
    objectness_json: gr.JSON
    props_img: gr.Image
    props_json: gr.JSON
    # Assemble
    as_image: gr.Image
    as_frame: gr.Image
    as_caption: gr.Markdown
    as_step: gr.Slider
    as_next: gr.Button
    as_play: gr.Button
    as_view: gr.Image
    # Provenance
    pv_image: gr.Image
    pv_view: gr.Image
    pv_json: gr.JSON
    # Draw
    dr_editor: gr.ImageEditor
    dr_show: gr.Button
    dr_masks: gr.State  # (N, H, W) bool: the instances drawn (or uploaded), at the image's size
    dr_instances: gr.Image
    dr_ideal: gr.Image
    dr_window: gr.Image
    dr_k: gr.Image
    dr_learned: gr.Image
    dr_json: gr.JSON
    dr_download: gr.DownloadButton
    dr_upload: gr.File
    # Inspect
    in_btn: gr.Button
    in_gt: gr.Checkbox
    in_funnel: gr.Image
    in_missed: gr.Image
    in_step: gr.Slider
    in_next: gr.Button
    in_nms: gr.Image
    in_obj: gr.Image
    in_logits: gr.Image
    in_json: gr.JSON
    in_trace: gr.State  # the NMS trace of the last inspection (for stepping without recomputing)
    # Compare
    cmp_seed: gr.Number
    cmp_btn: gr.Button
    cmp_scene: gr.Image
    cmp_ivl: gr.Image
    cmp_k: gr.Image
    cmp_json: gr.JSON
    # Train
    tr_iters: gr.Number
    tr_seed: gr.Number
    tr_start: gr.Button
    tr_stop: gr.Button
    tr_use: gr.Button
    tr_status: gr.Markdown
    tr_plot: gr.LinePlot
    tr_maps: gr.Image
    tr_obj: gr.Image
    # Model
    md_info: gr.Markdown
    md_files: gr.File
    md_load: gr.Button
    md_shipped: gr.Button
    md_choice: gr.Dropdown
    md_use: gr.Button

    @property
    def params(self) -> list[gr.components.Component]:
        """The Explore parameters, in the order the handlers take them: top_n, thr, iou, scale."""
        return [self.top_n, self.thr, self.iou, self.scale]

    @property
    def image_views(self) -> set[gr.components.Component]:
        """What opening an image (upload, example, new model) may change."""
        return {self.sess, self.status, self.ex_image, self.mosaic, self.mosaic_json, self.objectness,
                self.objectness_json, self.props_img, self.props_json, self.as_image, self.pv_image, self.scale,
                self.dr_editor, self.dr_masks, self.ex_click}  # fmt: skip


def picture(label: str, elem_id: str, **kw: Any) -> gr.Image:
    """An output picture: PNG (maps must not be lossy), no upload, download button."""
    return gr.Image(label=label, elem_id=elem_id, format="png", type="numpy", interactive=False,
                    buttons=["download", "fullscreen"], **kw)  # fmt: skip


def titled(label: str, elem_id: str, **kw: Any) -> gr.Image:
    """An output picture that draws its own title: no floating label over it (it would hide the title)."""
    return picture(label, elem_id, show_label=False, **kw)


def note(text: str) -> gr.Markdown:
    return gr.Markdown(text, elem_classes="ifcn-note")


def header(page: Page, model_label: str) -> None:
    page.sess, page.user_model, page.trained, page.click = (gr.State(None) for _ in range(4))
    page.ex_click, page.dr_masks, page.in_trace = (gr.State(None) for _ in range(3))
    gr.Markdown(
        "# InstanceFCN explorer\n"
        "Instance-sensitive fully convolutional networks (Dai, He, Li, Ren, Sun, ECCV 2016): upload an image, "
        "see the k x k score maps, click anywhere to assemble the window there. "
        f"Model: **{model_label}**."
    )
    page.status = gr.Markdown("Upload an image or pick an example to begin.", elem_id="status")


def explore_tab(page: Page, predictor: Any) -> None:
    infer = predictor.infer
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            page.upload = gr.File(label="Upload an image file", file_count="single", type="filepath",
                                  elem_id="upload")  # fmt: skip
            page.paste = gr.Image(label="...or paste (Ctrl+V) / drop an image", sources=["upload", "clipboard"],
                                  type="filepath", image_mode=None, height=140, elem_id="paste")  # fmt: skip
            page.example = gr.Dropdown(views.example_names(), value=None, label="...or open an example",
                                       elem_id="example")  # fmt: skip
            page.top_n = gr.Slider(1, APP_MAX_TOP_N, value=TOP_N, step=1, label="top-N proposals")
            page.thr = gr.Slider(MASK_THRESHOLD_SLIDER.lo, MASK_THRESHOLD_SLIDER.hi, value=infer.mask_threshold,
                                 step=MASK_THRESHOLD_SLIDER.step,
                                 label="mask threshold (not in the paper; FCIS 0.4, DeepMask 0.2)")  # fmt: skip
            page.iou = gr.Slider(NMS_IOU_SLIDER.lo, NMS_IOU_SLIDER.hi, value=infer.nms_iou, step=NMS_IOU_SLIDER.step,
                                 label=f"NMS IoU (paper: {NMS_IOU})")
            page.scale = gr.Dropdown(scale_dropdown_choices(predictor), value=-1, label="scale", elem_id="scale")
        with gr.Column(scale=2):
            page.ex_image = picture("your image: click a pixel to see the window centred there", "ex_image")
            page.ex_window = picture("the window at the clicked pixel", "ex_window")
            with gr.Accordion("the window in numbers", open=False):
                page.ex_window_json = gr.JSON(label="window", elem_id="ex_window_json")
    note(
        "The k x k score maps (map a*k + b at row a, column b). Click a map to see it large; click the image above "
        "and the window there is outlined on every map, thick where its sub-window copies from that map."
    )
    page.mosaic = picture("instance-sensitive score maps (k x k mosaic): click a map to enlarge it", "mosaic")
    with gr.Row():
        page.ex_map = titled("one score map, large", "ex_map")
        page.objectness = picture("objectness", "objectness")
    with gr.Accordion("the maps in numbers", open=False), gr.Row():
        page.mosaic_json = gr.JSON(label="mosaic", elem_id="mosaic_json")
        page.ex_map_json = gr.JSON(label="the large map", elem_id="ex_map_json")
        page.objectness_json = gr.JSON(label="objectness", elem_id="objectness_json")
    with gr.Row():
        page.props_img = picture("top proposals", "proposals")
        with gr.Column(), gr.Accordion("the proposals in numbers", open=False):
            page.props_json = gr.JSON(label="proposals", elem_id="proposals_json")


def assemble_tab(page: Page, k: int) -> None:
    note(
        "Click a pixel: the m x m window centred on its feature cell is split into k x k sub-windows, and "
        "sub-window (a, b) copies its cells from score map a*k + b (Sec. 3.1). Step through it, or play."
    )
    with gr.Row():
        page.as_image = picture("click a pixel", "as_image")
        with gr.Column():
            page.as_frame = picture("assembling, one sub-window at a time", "as_frame")
            page.as_caption = gr.Markdown("", elem_id="as_caption")
            with gr.Row():
                page.as_step = gr.Slider(0, k**2 + 1, value=0, step=1, label="step", elem_id="as_step")
                page.as_next = gr.Button("Step >", elem_id="as_next")
                page.as_play = gr.Button("Play", variant="primary", elem_id="as_play")
    page.as_view = picture("the finished window: on the image, assembled, pasted back; its source maps", "as_view")


def provenance_tab(page: Page) -> None:
    note(
        "Click a pixel: every window that covers it, coloured by the logit it reads there, and which of "
        "the k^2 maps it reads. Windows above-left read it through their bottom-right map; the same "
        "pixel can be inside one window's instance and outside its neighbour's."
    )
    with gr.Row():
        page.pv_image = picture("click a pixel", "pv_image")
        page.pv_view = picture("windows covering the pixel", "pv_view")
    with gr.Accordion("the provenance in numbers", open=False):
        page.pv_json = gr.JSON(label="provenance", elem_id="pv_json")


def draw_tab(page: Page) -> None:
    from ifcn_viz.app.instances import brush_colors

    note(
        "Paint the objects of your image, **one brush colour per instance** (orange first, then sky blue, ...), "
        "touching ones included. At once you see the *ideal* k x k maps for your instances (what a perfect "
        "InstanceFCN would output, paper Fig. 1), the window at any pixel you click assembled from them, k = 1 "
        "against k = 5, and the model's learned maps beside the ideal ones with the IoU of each instance. The maps "
        "are computed at the scale whose windows best fit your objects. Save the drawing as COCO JSON to use it "
        "again or as a tiny evaluation set."
    )
    with gr.Row():
        with gr.Column(scale=3):
            page.dr_editor = gr.ImageEditor(
                label="your image: paint each instance in its own colour", type="numpy", image_mode="RGBA",
                format="png", sources=(), transforms=(), elem_id="dr_editor", height=560,
                brush=gr.Brush(colors=brush_colors(), color_mode="fixed", default_size=14),
                layers=gr.LayerOptions(allow_additional_layers=True), canvas_size=(1024, 1024),
            )  # fmt: skip
        with gr.Column(scale=2):
            page.dr_show = gr.Button("Show the maps of my drawing", variant="primary", elem_id="dr_show")
            page.dr_instances = picture("your instances: click a pixel to assemble the window there", "dr_instances")
            page.dr_download = gr.DownloadButton("Download the drawing (COCO JSON)", elem_id="dr_download",
                                                 interactive=False)  # fmt: skip
            page.dr_upload = gr.File(label="...or upload a COCO JSON of this image", file_types=[".json"],
                                     type="filepath", elem_id="dr_upload")  # fmt: skip
    page.dr_ideal = titled("the ideal maps of your instances", "dr_ideal")
    page.dr_window = titled("the window at the clicked pixel, assembled from the ideal maps", "dr_window")
    page.dr_k = titled("k = 1 vs k = 5 on your instances (ideal maps)", "dr_k")
    page.dr_learned = titled("ideal vs the model's learned maps, and the IoU of each instance", "dr_learned")
    with gr.Accordion("the drawing in numbers", open=False):
        page.dr_json = gr.JSON(label="drawing", elem_id="dr_json")


def inspect_tab(page: Page) -> None:
    note(
        "Why the proposals are what they are, for the current image: how many windows survive each stage of "
        "inference (Sec. 3.3), per scale; with ground truth (a synthetic example's, or the instances you drew) the "
        "recall at each stage and the stage that lost each missed object; NMS step by step; and histograms of "
        "objectness and of the score-map logits. Uses the Explore tab's top-N, threshold, NMS IoU and scale."
    )
    with gr.Row():
        page.in_gt = gr.Checkbox(value=True, label="use the known instances (synthetic example or your drawing)",
                                 elem_id="in_gt")  # fmt: skip
        page.in_btn = gr.Button("Inspect this image", variant="primary", elem_id="in_btn")
    with gr.Row():
        page.in_funnel = titled("the proposal funnel", "in_funnel")
        page.in_missed = titled("ground truth: found, or the stage that lost it", "in_missed")
    with gr.Row():
        page.in_step = gr.Slider(0, NMS_MAX_STEPS - 1, value=0, step=1, label="NMS step", elem_id="in_step")
        page.in_next = gr.Button("Next NMS step >", elem_id="in_next")
    page.in_nms = titled("NMS, one candidate at a time: who suppressed whom", "in_nms")
    page.in_obj = titled("objectness histograms", "in_obj")
    page.in_logits = titled("score-map logits", "in_logits")
    with gr.Accordion("the inspection in numbers", open=False):
        page.in_json = gr.JSON(label="inspection", elem_id="in_json")


def compare_tab(page: Page) -> None:
    note(
        "A synthetic scene with ground truth. Left: the *ideal* maps (what a perfect InstanceFCN would "
        "output for the true masks) beside the model's learned maps. Below: k = 1 (one map, a semantic "
        "FCN) merges touching objects; k^2 relative-position maps keep them apart (Sec. 3, Fig. 1)."
    )
    with gr.Row():
        page.cmp_seed = gr.Number(value=1, precision=0, label="scene seed", minimum=0)
        page.cmp_btn = gr.Button("Show", variant="primary", elem_id="cmp_btn")
    with gr.Row():
        page.cmp_scene = picture("scene", "cmp_scene")
        page.cmp_ivl = picture("ideal vs learned maps", "cmp_ivl")
    page.cmp_k = picture("k = 1 vs k = 5 (ideal maps, assembled at each instance centre)", "cmp_k")
    with gr.Accordion("the scene in numbers", open=False):
        page.cmp_json = gr.JSON(label="scene", elem_id="cmp_json")


def train_tab(page: Page) -> None:
    note(
        "Train the `tiny` model from scratch on synthetic scenes, on this server's CPU: watch the loss "
        "fall and the score maps of a fixed held-out scene emerge. One training runs at a time; Stop keeps "
        "the weights so far. Then explore with them."
    )
    with gr.Row():
        page.tr_iters = gr.Number(value=100, precision=0, minimum=1, maximum=2000, label="iterations")
        page.tr_seed = gr.Number(value=0, precision=0, minimum=0, label="seed")
        page.tr_start = gr.Button("Train", variant="primary", elem_id="tr_start")
        page.tr_stop = gr.Button("Stop", variant="stop", elem_id="tr_stop")
        page.tr_use = gr.Button("Explore with these weights", elem_id="tr_use")
    page.tr_status = gr.Markdown("", elem_id="tr_status")
    page.tr_plot = gr.LinePlot(x="step", y="loss", color="term", label="training loss", elem_id="tr_plot")
    with gr.Row():
        page.tr_maps = picture("score maps of the fixed scene", "tr_maps")
        page.tr_obj = picture("objectness of the fixed scene", "tr_obj")


def model_tab(page: Page, info: str) -> None:
    from ifcn_viz.checkpoints import shipped_names

    page.md_info = gr.Markdown(info, elem_id="md_info")
    with gr.Row():
        page.md_choice = gr.Dropdown(shipped_names(), value=shipped_names()[0] if shipped_names() else None,
                                     label="shipped models (ifcn_viz/weights; --checkpoint NAME)",
                                     elem_id="md_choice")  # fmt: skip
        page.md_use = gr.Button("Use this shipped model", elem_id="md_use")
    page.md_files = gr.File(label="Upload a checkpoint: NAME.safetensors and its NAME.json card",
                            file_count="multiple", type="filepath", elem_id="md_files")  # fmt: skip
    with gr.Row():
        page.md_load = gr.Button("Use the uploaded checkpoint", variant="primary", elem_id="md_load")
        page.md_shipped = gr.Button("Use the shipped model", elem_id="md_shipped")


def about_tab() -> None:
    gr.Markdown(ABOUT.read_text(encoding="utf-8"), latex_delimiters=[{"left": "$", "right": "$", "display": False}])
