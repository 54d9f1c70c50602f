"""The Explore tab: open an image (upload, paste, example), its k x k score maps, objectness and proposals; a click
shows the window there and outlines it on every map; a click on a map shows it large.  It also creates the
parameters every tab reads (top-N, mask threshold, NMS IoU, scale: :attr:`Page.params <ifcn_viz.app.page.Page>`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import FileData

from ifcn_viz.app import views
from ifcn_viz.app.api import as_gr_error, client_of, explore_answer, png_b64
from ifcn_viz.app.errors import user_message
from ifcn_viz.app.page import (
    HEAVY,
    HEAVY_EVENT,
    UI_EVENT,
    Out,
    Tab,
    click_xy,
    failed,
    note,
    page_errors,
    picture,
    scale_dropdown_choices,
    titled,
)
from ifcn_viz.app.session import ImageSession, model_label, open_session
from ifcn_viz.app.uploads import describe_conversion, uploaded_file
from ifcn_viz.config import (
    APP_MAX_TOP_N,
    MASK_THRESHOLD,
    MASK_THRESHOLD_SLIDER,
    NMS_IOU,
    NMS_IOU_SLIDER,
    TOP_N,
    WINDOW_THRESHOLD,
)


class ExploreTab(Tab):
    id, title = "explore", "Explore"
    API = ("upload", "example", "examples", "proposals", "window", "score_map")

    def layout(self) -> None:
        page, infer = self.page, self.ctx.shared().infer
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                self.upload = gr.File(label="Upload an image file", file_count="single", type="filepath",
                                      elem_id="upload")  # fmt: skip
                self.paste = gr.Image(label="...or paste (Ctrl+V) / drop an image", sources=["upload", "clipboard"],
                                      type="filepath", image_mode=None, height=140, elem_id="paste")  # fmt: skip
                self.example = gr.Dropdown(views.example_names(), value=None, label="...or open an example",
                                           elem_id="example")  # fmt: skip
                page.top_n = gr.Slider(1, APP_MAX_TOP_N, value=TOP_N, step=1, label="top-N proposals")
                thr, iou = MASK_THRESHOLD_SLIDER, NMS_IOU_SLIDER
                page.thr = gr.Slider(thr.lo, thr.hi, value=infer.mask_threshold, step=thr.step,
                                     label="mask threshold (not in the paper; FCIS 0.4, DeepMask 0.2)")  # fmt: skip
                page.iou = gr.Slider(iou.lo, iou.hi, value=infer.nms_iou, step=iou.step,
                                     label=f"NMS IoU (paper: {NMS_IOU})")  # fmt: skip
                page.scale = gr.Dropdown(scale_dropdown_choices(self.ctx.shared()), value=-1, label="scale",
                                         elem_id="scale")  # fmt: skip
            with gr.Column(scale=2):
                self.ex_image = picture("your image: click a pixel to see the window centred there", "ex_image")
                self.ex_window = picture("the window at the clicked pixel", "ex_window")
                with gr.Accordion("the window in numbers", open=False):
                    self.ex_window_json = gr.JSON(label="window", elem_id="ex_window_json")
        note(
            "The k x k score maps (map a*k + b at row a, column b). Click a map to see it large; click the image "
            "above and the window there is outlined on every map, thick where its sub-window copies from that map."
        )
        self.mosaic = picture("instance-sensitive score maps (k x k mosaic): click a map to enlarge it", "mosaic")
        with gr.Row():
            self.ex_map = titled("one score map, large", "ex_map")
            self.objectness = picture("objectness", "objectness")
        with gr.Accordion("the maps in numbers", open=False), gr.Row():
            self.mosaic_json = gr.JSON(label="mosaic", elem_id="mosaic_json")
            self.ex_map_json = gr.JSON(label="the large map", elem_id="ex_map_json")
            self.objectness_json = gr.JSON(label="objectness", elem_id="objectness_json")
        with gr.Row():
            self.props_img = picture("top proposals", "proposals")
            with gr.Column(), gr.Accordion("the proposals in numbers", open=False):
                self.props_json = gr.JSON(label="proposals", elem_id="proposals_json")
        self.ex_click = gr.State(None)  # {x, y, channel} of the last click (outlined on the mosaic and the large map)
        self.updated = {self.mosaic, self.mosaic_json, self.objectness, self.objectness_json, self.props_img,
                        self.props_json, self.ex_click}  # fmt: skip
        self.image_outputs = {self.ex_image, page.scale, *self.updated}
        self.model_outputs = {page.scale}

    def wire(self) -> None:
        page = self.page
        opened = page.image_outputs
        self.upload.upload(self.on_upload, [self.upload, page.user_model, *page.params], opened, **HEAVY_EVENT)
        self.paste.input(self.on_upload, [self.paste, page.user_model, *page.params], opened, **HEAVY_EVENT)
        self.example.input(self.on_example, [self.example, page.user_model, *page.params], opened, **HEAVY_EVENT)
        for c in page.params:
            c.input(self.on_params, [page.sess, *page.params], {page.status, *self.updated}, **HEAVY_EVENT)
        self.ex_image.select(self.on_explore_click, [page.sess, page.scale, page.thr, self.ex_click],
                             {page.status, self.ex_image, self.ex_window, self.ex_window_json, self.mosaic,
                              self.ex_map, self.ex_map_json, self.ex_click}, **UI_EVENT)  # fmt: skip
        self.mosaic.select(self.on_mosaic_click, [page.sess, page.scale, self.ex_click],
                           {page.status, self.ex_map, self.ex_map_json, self.ex_click}, **UI_EVENT)  # fmt: skip

    # ------------------------------------------------------------------------------------------ views

    def _views(self, session: ImageSession, top_n: Any, thr: Any, iou: Any, scale: int) -> Out:
        v = views.explore(session, int(top_n), float(thr), float(iou), scale)
        si = views.resolve_scale(session, scale)
        return {self.mosaic: v.mosaic, self.mosaic_json: views.mosaic_data(session, si),
                self.objectness: v.objectness, self.objectness_json: views.objectness_data(session, si),
                self.props_img: v.proposals, self.props_json: v.data, self.ex_click: None}  # fmt: skip

    def on_image(self, session: ImageSession, top_n: Any, thr: Any, iou: Any, scale: Any) -> Out:
        scale = int(scale) if 0 <= int(scale) < len(session.scales) else -1  # the new image's scales
        menu = gr.update(choices=scale_dropdown_choices(session.predictor, session), value=scale)
        return {self.ex_image: views.display_image(session), self.page.scale: menu,
                **self._views(session, top_n, thr, iou, scale)}  # fmt: skip

    def on_model(self, user_model: Any) -> Out:
        choices = scale_dropdown_choices(self.ctx.predictor_for(user_model))
        return {self.page.scale: gr.update(choices=choices, value=-1)}

    # ------------------------------------------------------------------------------------------ handlers

    def _open(self, src: Any, name: str, user_model: Any, params: tuple, gt_masks: Any = None,
              names: dict[str, str] | None = None) -> Out:  # fmt: skip
        """Open ``src`` as this user's image; its error line names the image as the user knows it (``names``)."""
        t0 = time.perf_counter()
        try:
            views.check_proposal_params(*params[:3])  # before the backbone runs (a NaN top_n from the page)
            predictor = self.ctx.predictor_for(user_model)
            conversion = describe_conversion(src) if isinstance(src, (str, Path)) else None
            gt_source = "synthetic scene" if gt_masks is not None else ""
            session = open_session(predictor, src, name, model_label(predictor), gt_masks, gt_source)
        except Exception as err:  # noqa: BLE001 -- shown to the user, server keeps serving
            return {self.page.status: failed(err, f"Could not use {name}", names)}
        h, w = session.hw
        status = (
            f"**{name}**: {w} x {h} px, fingerprint `{session.fingerprint}`; maps at "
            f"{len(session.scales)} scales in {time.perf_counter() - t0:.2f} s. "
            "Click the image to see the window centred there; the other tabs use the same image."
        )
        if conversion:
            status += f"\n\nNote: {conversion}."
        return {**self.page.open(session, params), self.page.status: status}

    def on_upload(self, path: str | None, user_model, top_n, thr, iou, scale) -> Out:
        if not path:
            return {}
        shown = Path(path).name  # Gradio keeps the user's file name as the last part of its upload path
        return self._open(path, f"upload: {shown}", user_model, (top_n, thr, iou, scale), names={str(path): shown})

    def on_example(self, name: str | None, user_model, top_n, thr, iou, scale) -> Out:
        if not name:
            return {}
        return self._example(name, user_model, (top_n, thr, iou, scale))

    @page_errors("Could not open the example")
    def _example(self, name: str, user_model: Any, params: tuple) -> Out:
        image, masks = views.example_image(name), views.example_masks(name)
        return self._open(image, f"example: {name}", user_model, params, masks)

    @page_errors("Could not update the views")
    def on_params(self, sess: ImageSession | None, top_n, thr, iou, scale) -> Out:
        if sess is None:
            return {}
        return self._views(sess, top_n, thr, iou, int(scale))

    @page_errors("Could not show the window")
    def on_explore_click(self, sess, scale, thr, ex_click, evt: gr.SelectData) -> Out:
        x, y = click_xy(sess, evt)
        v = views.window_at(sess, x, y, int(scale), float(thr), maps=False)  # the Assemble tab adds the maps
        si = views.resolve_scale(sess, int(scale))
        channel = (ex_click or {}).get("channel", sess.predictor.k**2 // 2)
        big, big_data = views.map_view(sess, channel, si, x, y)
        return {self.ex_image: v.marked, self.ex_window: v.view, self.ex_window_json: v.data,
                self.mosaic: views.explore_mosaic(sess, si, (x, y)), self.ex_map: big, self.ex_map_json: big_data,
                self.ex_click: {"x": x, "y": y, "channel": channel}}  # fmt: skip

    @page_errors("Could not show the map")
    def on_mosaic_click(self, sess, scale, ex_click, evt: gr.SelectData) -> Out:
        if sess is None:
            raise ValueError("upload an image or pick an example first")
        si = views.resolve_scale(sess, int(scale))
        channel = views.mosaic_channel_at(sess, si, float(evt.index[0]), float(evt.index[1]))
        if channel is None:
            return self.page.nothing()
        click = ex_click or {}
        big, data = views.map_view(sess, channel, si, click.get("x"), click.get("y"))
        return {self.ex_map: big, self.ex_map_json: data, self.ex_click: {**click, "channel": channel}}

    def register_api(self) -> None:
        """The API twins of opening an image: ``upload`` / ``example`` return the token the later calls name."""
        ctx = self.ctx

        def upload_root() -> Path:
            from gradio.utils import get_upload_folder

            return Path(get_upload_folder())  # where Gradio stored the files a client uploaded

        @as_gr_error
        def upload(
            image: FileData | str,
            name: str = "",
            top_n: int = TOP_N,
            mask_threshold: float = MASK_THRESHOLD,
            nms_iou: float = NMS_IOU,
            scale: int = -1,
            images: bool = False,
            request: gr.Request = None,
        ) -> dict:
            """Upload an image -- a file sent with ``gradio_client.handle_file(path)``, or the base64 of its bytes --:
            runs the backbone once; returns the session token, the image's fingerprint and size, and its top
            proposals.  ``name``: how answers call the image (default: the file's name, or "upload")."""
            views.check_proposal_params(top_n, mask_threshold, nms_iou)  # before the backbone runs
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
            return {"session": token, **explore_answer(ctx, session, top_n, mask_threshold, nms_iou, scale, images)}

        @as_gr_error
        def example(name: str, top_n: int = TOP_N, images: bool = False, request: gr.Request = None) -> dict:
            """Open one of the offline examples (see ``examples``) as a new session."""
            image, masks = views.example_image(name), views.example_masks(name)
            session = open_session(ctx.shared(), image, f"example: {name}", ctx.label_for(None), masks,
                                   "synthetic scene" if masks is not None else "")  # fmt: skip
            token = ctx.store.put(session, client_of(request))
            return {"session": token, **explore_answer(ctx, session, top_n, MASK_THRESHOLD, NMS_IOU, -1, images)}

        def examples() -> list[str]:
            """The names of the offline examples."""
            return views.example_names()

        gr.api(upload, api_name="upload", concurrency_id=HEAVY)
        gr.api(example, api_name="example", concurrency_id=HEAVY)
        gr.api(examples, api_name="examples")
        self._register_views_api()

    def _register_views_api(self) -> None:
        """The API twins of the tab's views: proposals, the window under a click, one map large."""
        ctx = self.ctx

        @as_gr_error
        def proposals(
            session: str, top_n: int = TOP_N, mask_threshold: float = MASK_THRESHOLD, nms_iou: float = NMS_IOU,
            scale: int = -1, images: bool = False,
        ) -> dict:  # fmt: skip
            """Top-N segment proposals of a session's image (no backbone run)."""
            return explore_answer(ctx, ctx.store.get(session), top_n, mask_threshold, nms_iou, scale, images)

        @as_gr_error
        def window(
            session: str, x: float, y: float, scale: int = -1, threshold: float = WINDOW_THRESHOLD, images: bool = False
        ) -> dict:
            """The window centred at the feature cell under pixel (x, y), assembled from the cached maps."""
            s = ctx.store.get(session)
            v = views.window_at(s, x, y, scale, threshold, maps=images)
            if images:
                return {**v.data, "images": {"marked": png_b64(v.marked), "view": png_b64(v.view)}}
            return v.data

        @as_gr_error
        def score_map(session: str, channel: int, scale: int = -1, x: float = -1, y: float = -1,
                      images: bool = False) -> dict:  # fmt: skip
            """One of the k^2 score maps of a session's image, large; with pixel (x, y), the window there outlined and
            the cells its sub-window copies from this map drawn thick."""
            s = ctx.store.get(session)
            px, py = (None, None) if x == -1 and y == -1 else (x, y)
            img, data = views.map_view(s, channel, scale, px, py)
            return {**data, "images": {"map": png_b64(img)}} if images else data

        gr.api(proposals, api_name="proposals", concurrency_id=HEAVY)
        gr.api(window, api_name="window")
        gr.api(score_map, api_name="score_map")
