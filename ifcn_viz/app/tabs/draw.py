"""The Draw tab: paint the instances of the image (one brush colour each), and see their *ideal* k x k maps, the
window at any pixel assembled from them, k = 1 against k = 5, and the model's learned maps beside the ideal ones
with the IoU of each instance; save the drawing as COCO JSON, or load one."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from ifcn_viz.app import instance_views as iv
from ifcn_viz.app import views
from ifcn_viz.app.api import as_gr_error, png_b64
from ifcn_viz.app.instances import brush_colors, layer_from_masks, masks_from_coco, masks_from_layers, write_coco
from ifcn_viz.app.page import UI_EVENT, Out, Tab, failed, note, page_errors, picture, titled
from ifcn_viz.app.session import ImageSession
from ifcn_viz.app.uploads import upload_dir
from ifcn_viz.config import WINDOW_THRESHOLD


def _plural(n: int) -> str:
    return f"{n} instance{'s' if n != 1 else ''}"


class DrawTab(Tab):
    id, title = "draw", "Draw"
    API = ("draw",)

    def layout(self) -> None:
        note(
            "Paint the objects of your image, **one brush colour per instance** (orange first, then sky blue, ...), "
            "touching ones included. At once you see the *ideal* k x k maps for your instances (what a perfect "
            "InstanceFCN would output, paper Fig. 1), the window at any pixel you click assembled from them, k = 1 "
            "against k = 5, and the model's learned maps beside the ideal ones with the IoU of each instance. The "
            "maps are computed at the scale whose windows best fit your objects. Save the drawing as COCO JSON to use "
            "it again or as a tiny evaluation set."
        )
        with gr.Row():
            with gr.Column(scale=3):
                self.dr_editor = gr.ImageEditor(
                    label="your image: paint each instance in its own colour", type="numpy", image_mode="RGBA",
                    format="png", sources=(), transforms=(), elem_id="dr_editor", height=560,
                    brush=gr.Brush(colors=brush_colors(), color_mode="fixed", default_size=14),
                    layers=gr.LayerOptions(allow_additional_layers=True), canvas_size=(1024, 1024),
                )  # fmt: skip
            with gr.Column(scale=2):
                self.dr_show = gr.Button("Show the maps of my drawing", variant="primary", elem_id="dr_show")
                self.dr_instances = picture("your instances: click a pixel to assemble the window there",
                                            "dr_instances")  # fmt: skip
                self.dr_download = gr.DownloadButton("Download the drawing (COCO JSON)", elem_id="dr_download",
                                                     interactive=False)  # fmt: skip
                self.dr_upload = gr.File(label="...or upload a COCO JSON of this image", file_types=[".json"],
                                         type="filepath", elem_id="dr_upload")  # fmt: skip
        self.dr_ideal = titled("the ideal maps of your instances", "dr_ideal")
        self.dr_window = titled("the window at the clicked pixel, assembled from the ideal maps", "dr_window")
        self.dr_k = titled("k = 1 vs k = 5 on your instances (ideal maps)", "dr_k")
        self.dr_learned = titled("ideal vs the model's learned maps, and the IoU of each instance", "dr_learned")
        with gr.Accordion("the drawing in numbers", open=False):
            self.dr_json = gr.JSON(label="drawing", elem_id="dr_json")
        self.dr_masks = gr.State(None)  # (N, H, W) bool: the instances drawn (or uploaded), at the image's size
        self.image_outputs = {self.dr_editor, self.dr_masks}

    def wire(self) -> None:
        page = self.page
        shown = {page.sess, page.status, self.dr_masks, self.dr_instances, self.dr_ideal, self.dr_window, self.dr_k,
                 self.dr_learned, self.dr_json, self.dr_download}  # fmt: skip
        self.dr_show.click(self.on_draw, [self.dr_editor, page.sess], shown, **UI_EVENT)
        self.dr_editor.change(self.on_draw_change, [self.dr_editor, page.sess], shown, trigger_mode="always_last",
                              **UI_EVENT)  # fmt: skip
        self.dr_instances.select(self.on_draw_click, [page.sess, self.dr_masks],
                                 {page.status, self.dr_ideal, self.dr_window, self.dr_json}, **UI_EVENT)  # fmt: skip
        self.dr_upload.upload(self.on_coco_upload, [self.dr_upload, page.sess], {*shown, self.dr_editor}, **UI_EVENT)

    def on_image(self, session: ImageSession, *params: Any) -> Out:
        """The editor on the new image: empty, or a synthetic example's true instances painted in."""
        img = views.display_image(session)
        layers = [] if session.gt_masks is None else [layer_from_masks(session.gt_masks, img.shape[:2])]
        return {self.dr_editor: {"background": img, "layers": layers, "composite": None},
                self.dr_masks: session.gt_masks}  # fmt: skip

    def _shown(self, sess: ImageSession, masks: Any, source: str = "drawn") -> Out:
        v = iv.draw_views(sess, masks)
        sess = dataclasses.replace(sess, gt_masks=masks, gt_source=source)
        folder = Path(tempfile.mkdtemp(prefix="coco-", dir=upload_dir()))
        path = write_coco(masks, sess.name.split(": ", 1)[-1], folder)
        return {self.page.sess: sess, self.dr_masks: masks, self.dr_instances: v.instances, self.dr_ideal: v.ideal,
                self.dr_window: v.window, self.dr_k: v.k_compare, self.dr_learned: v.learned, self.dr_json: v.data,
                self.dr_download: gr.update(value=str(path), interactive=True),
                self.page.status: f"{_plural(len(masks))} ({source}); maps at scale {v.data['scale']} (windows of "
                f"{v.data['window_px']:.0f} px). Click *your instances* to assemble a window."}  # fmt: skip

    @page_errors("Could not use the drawing")
    def on_draw(self, editor: dict | None, sess: ImageSession | None) -> Out:
        if sess is None:
            raise ValueError("upload an image or pick an example first (Explore tab)")
        return self._shown(sess, masks_from_layers((editor or {}).get("layers") or [], sess.hw))

    def on_draw_change(self, editor: dict | None, sess: ImageSession | None) -> Out:
        """A stroke: the live preview (instances and their ideal maps); the button shows the rest."""
        if sess is None:
            return self.page.nothing()
        try:
            masks = masks_from_layers((editor or {}).get("layers") or [], sess.hw)
            if not len(masks):
                return self.page.nothing()  # the editor was (re)set to an image: nothing drawn yet
            v = iv.draw_views(sess, masks, full=False)
        except Exception as err:  # noqa: BLE001 -- shown to the user, server keeps serving
            return {self.page.status: failed(err, "Could not use the drawing")}
        return {self.dr_instances: v.instances, self.dr_ideal: v.ideal, self.dr_masks: masks,
                self.page.status: f"{_plural(len(masks))} drawn: press *Show the maps of my drawing* for the "
                "window, k = 1 vs k = 5 and the learned maps."}  # fmt: skip

    @page_errors("Could not assemble the window")
    def on_draw_click(self, sess, masks, evt: gr.SelectData) -> Out:
        if sess is None or masks is None:
            raise ValueError("draw an instance first")
        if not isinstance(evt.index, (list, tuple)) or len(evt.index) != 2:
            raise ValueError(f"a click gives (x, y), got {evt.index!r}")
        h, w = sess.hw
        x, y = float(evt.index[0]), float(evt.index[1])
        if not (0 <= x < w and 0 <= y < h):
            return self.page.nothing()  # a click on the legend
        v = iv.draw_views(sess, masks, x, y, full=False)  # the ideal maps with the new window outlined
        return {self.dr_ideal: v.ideal, self.dr_window: iv.draw_window_view(sess, masks, x, y), self.dr_json: v.data}

    def on_coco_upload(self, path: str | None, sess: ImageSession | None) -> Out:
        if not path:
            return self.page.nothing()
        return self._coco(path, sess)

    @page_errors("Could not use the COCO file", names=lambda path, sess: {str(path): Path(path).name})
    def _coco(self, path: str, sess: ImageSession | None) -> Out:
        if sess is None:
            raise ValueError("open the image the annotations belong to first (Explore tab)")
        masks = masks_from_coco(path, sess.hw, Path(path).name)
        img = views.display_image(sess)
        editor = {"background": img, "layers": [layer_from_masks(masks, img.shape[:2])], "composite": None}
        return {**self._shown(sess, masks, source="COCO file"), self.dr_editor: editor}

    def register_api(self) -> None:
        """The API twin of the drawing (a COCO text in place of the brush)."""
        ctx = self.ctx

        @as_gr_error
        def draw(session: str, coco: str = "", x: float = -1, y: float = -1, threshold: float = WINDOW_THRESHOLD,
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
                    raise ValueError(
                        f"the COCO text is not valid JSON (line {err.lineno}, column {err.colno})"
                    ) from None
                if not isinstance(data, dict):
                    raise ValueError("the COCO text must be an object with 'images', 'annotations' and 'categories'")
                masks = masks_from_coco(data, s.hw, "the COCO text")
                s = dataclasses.replace(s, gt_masks=masks, gt_source="COCO file")  # as the page: a new session value
                ctx.store.replace(session, s)
            if s.gt_masks is None:
                raise ValueError("this session has no instances yet: pass coco (a COCO instances JSON of this image)")
            px, py = (None, None) if x == -1 and y == -1 else (x, y)
            v = iv.draw_views(s, s.gt_masks, px, py, threshold)
            out = {**v.data, "coco": coco_from_masks(s.gt_masks, s.name.split(": ", 1)[-1])}
            if images:
                out["images"] = {n: png_b64(getattr(v, n)) for n in ("instances", "ideal", "window", "k_compare",
                                                                     "learned")}  # fmt: skip
            return out

        gr.api(draw, api_name="draw")
