"""The Window tab: move a pixel with two sliders and watch the window centred there follow it -- on the image, as
its m x m mask, pasted back, and its source maps -- without a click (the same views as the Explore tab's click)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ifcn_viz.app import views
from ifcn_viz.app.page import UI_EVENT, Out, Tab, note, page_errors, picture
from ifcn_viz.app.session import ImageSession


class WindowTab(Tab):
    id, title = "window", "Window"

    def layout(self) -> None:
        note(
            "Slide the pixel: the m x m window centred on its feature cell (at the Explore tab's scale) follows it, "
            "assembled from the cached maps -- no backbone run -- and drawn on the image, as a mask, pasted back, and "
            "with the k x k maps it copies from. Neighbouring pixels in one feature cell share one window."
        )
        with gr.Row():
            self.wn_x = gr.Slider(0, 1, value=0, step=1, label="x (pixels)", elem_id="wn_x")
            self.wn_y = gr.Slider(0, 1, value=0, step=1, label="y (pixels)", elem_id="wn_y")
        with gr.Row():
            self.wn_marked = picture("the window on the image", "wn_marked")
            self.wn_view = picture("on the image | assembled | pasted back; its source maps", "wn_view")
        with gr.Accordion("the window in numbers", open=False):
            self.wn_json = gr.JSON(label="window", elem_id="wn_json")
        self.image_outputs = {self.wn_x, self.wn_y}

    def wire(self) -> None:
        page = self.page
        args = [page.sess, self.wn_x, self.wn_y, page.scale, page.thr]
        shown = {page.status, self.wn_marked, self.wn_view, self.wn_json}
        for slider in (self.wn_x, self.wn_y):
            slider.input(self.on_move, args, shown, trigger_mode="always_last", **UI_EVENT)

    def on_image(self, session: ImageSession, *params: Any) -> Out:
        """The sliders span the new image, starting at its centre."""
        h, w = session.hw
        return {self.wn_x: gr.update(maximum=w - 1, value=w // 2), self.wn_y: gr.update(maximum=h - 1, value=h // 2)}

    @page_errors("Could not show the window")
    def on_move(self, sess: ImageSession | None, x, y, scale, thr) -> Out:
        if sess is None:
            raise ValueError("upload an image or pick an example first (Explore tab)")
        v = views.window_at(sess, float(x), float(y), int(scale), float(thr))
        return {self.wn_marked: v.marked, self.wn_view: v.view, self.wn_json: v.data}
