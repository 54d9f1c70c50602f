"""The Provenance tab: click a pixel, and every window covering it is drawn, coloured by the logit it reads there
and labelled with the score map it reads it from."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ifcn_viz.app import views
from ifcn_viz.app.api import as_gr_error, png_b64
from ifcn_viz.app.page import UI_EVENT, Out, Tab, click_xy, note, page_errors, picture
from ifcn_viz.app.session import ImageSession


class ProvenanceTab(Tab):
    id, title = "provenance", "Provenance"
    API = ("provenance",)

    def layout(self) -> None:
        note(
            "Click a pixel: every window that covers it, coloured by the logit it reads there, and which of "
            "the k^2 maps it reads. Windows above-left read it through their bottom-right map; the same "
            "pixel can be inside one window's instance and outside its neighbour's."
        )
        with gr.Row():
            self.pv_image = picture("click a pixel", "pv_image")
            self.pv_view = picture("windows covering the pixel", "pv_view")
        with gr.Accordion("the provenance in numbers", open=False):
            self.pv_json = gr.JSON(label="provenance", elem_id="pv_json")
        self.image_outputs = {self.pv_image}

    def wire(self) -> None:
        page = self.page
        self.pv_image.select(self.on_provenance_click, [page.sess, page.scale],
                             {page.status, self.pv_view, self.pv_json}, **UI_EVENT)  # fmt: skip

    def on_image(self, session: ImageSession, *params: Any) -> Out:
        return {self.pv_image: views.display_image(session)}

    @page_errors("Could not trace the pixel")
    def on_provenance_click(self, sess, scale, evt: gr.SelectData) -> Out:
        x, y = click_xy(sess, evt)
        view, data = views.provenance_at(sess, x, y, int(scale))
        return {self.pv_view: view, self.pv_json: data}

    def register_api(self) -> None:
        """The API twin of a click."""
        ctx = self.ctx

        @as_gr_error
        def provenance(session: str, x: float, y: float, scale: int = -1, images: bool = False) -> dict:
            """Every window covering pixel (x, y) at one scale and the score map each reads there."""
            view, data = views.provenance_at(ctx.store.get(session), x, y, scale)
            return {**data, "images": {"view": png_b64(view)}} if images else data

        gr.api(provenance, api_name="provenance")
