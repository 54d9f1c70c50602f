"""The Assemble tab: click a pixel, and the window centred there is assembled one sub-window at a time (paper,
Sec. 3.1, Fig. 2): step through it, or play it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from ifcn_viz.app import views
from ifcn_viz.app.api import as_gr_error, png_b64
from ifcn_viz.app.page import UI_EVENT, Out, Tab, click_xy, note, page_errors, picture
from ifcn_viz.app.session import ImageSession

PLAY_SECONDS = 0.35
"""Pause between the frames of *Play*."""


class AssembleTab(Tab):
    id, title = "assemble", "Assemble"
    API = ("assemble_step",)

    def layout(self) -> None:
        note(
            "Click a pixel: the m x m window centred on its feature cell is split into k x k sub-windows, and "
            "sub-window (a, b) copies its cells from score map a*k + b (Sec. 3.1). Step through it, or play."
        )
        k = self.ctx.shared().k
        with gr.Row():
            self.as_image = picture("click a pixel", "as_image")
            with gr.Column():
                self.as_frame = picture("assembling, one sub-window at a time", "as_frame")
                self.as_caption = gr.Markdown("", elem_id="as_caption")
                with gr.Row():
                    self.as_step = gr.Slider(0, k**2 + 1, value=0, step=1, label="step", elem_id="as_step")
                    self.as_next = gr.Button("Step >", elem_id="as_next")
                    self.as_play = gr.Button("Play", variant="primary", elem_id="as_play")
        self.as_view = picture("the finished window: on the image, assembled, pasted back; its source maps",
                               "as_view")  # fmt: skip
        self.click = gr.State(None)  # (x, y) of the last click in this tab
        self.image_outputs = {self.as_image}

    def wire(self) -> None:
        page = self.page
        frame = {self.as_frame, self.as_caption}
        self.as_image.select(self.on_assemble_click, [page.sess, page.scale],
                             {page.status, self.click, self.as_image, self.as_step, self.as_view, *frame},
                             **UI_EVENT)  # fmt: skip
        args = [self.as_step, page.sess, self.click, page.scale]
        self.as_step.input(self.on_step, args, frame, **UI_EVENT)
        self.as_next.click(self.on_next, args, {self.as_step, *frame}, **UI_EVENT)
        self.as_play.click(self.on_play, [page.sess, self.click, page.scale], {self.as_step, *frame}, **UI_EVENT)

    def on_image(self, session: ImageSession, *params: Any) -> Out:
        return {self.as_image: views.display_image(session)}

    @page_errors("Could not assemble the window")
    def on_assemble_click(self, sess, scale, evt: gr.SelectData) -> Out:
        x, y = click_xy(sess, evt)
        v = views.window_at(sess, x, y, int(scale))
        frames = views.assembly_frames(sess, x, y, int(scale))
        last = len(frames) - 1
        return {self.click: (x, y), self.as_image: v.marked, self.as_step: gr.update(value=last, maximum=last),
                self.as_frame: frames[last], self.as_caption: views.frame_caption(sess.predictor.k, last),
                self.as_view: v.view}  # fmt: skip

    def _frames(self, sess: ImageSession | None, click: Any, scale: Any) -> list[Any]:
        if sess is None or click is None:
            raise ValueError("click a pixel of the image in this tab first")
        return views.assembly_frames(sess, click[0], click[1], int(scale))

    def _frame(self, sess, click, scale, step: int) -> Out:
        frames = self._frames(sess, click, scale)
        step = max(0, min(int(step), len(frames) - 1))
        return {self.as_frame: frames[step], self.as_caption: views.frame_caption(sess.predictor.k, step)}

    @page_errors("Could not step", into="as_caption")
    def on_step(self, step, sess, click, scale) -> Out:
        return self._frame(sess, click, scale, step)

    @page_errors("Could not step", into="as_caption")
    def on_next(self, step, sess, click, scale) -> Out:
        n = sess.predictor.k**2 + 2 if sess is not None else 1
        nxt = (int(step) + 1) % n
        return {self.as_step: nxt, **self._frame(sess, click, scale, nxt)}

    @page_errors("Could not play", into="as_caption")
    def on_play(self, sess, click, scale) -> Iterator[Out]:
        frames = self._frames(sess, click, scale)
        for t, frame in enumerate(frames):
            yield {self.as_step: t, self.as_frame: frame, self.as_caption: views.frame_caption(sess.predictor.k, t)}
            time.sleep(PLAY_SECONDS)

    def register_api(self) -> None:
        """The API twin of the step slider."""
        ctx = self.ctx

        @as_gr_error
        def assemble_step(session: str, x: float, y: float, step: int, scale: int = -1) -> dict:
            """Frame ``step`` (0 .. k^2 + 1) of the window under (x, y) being assembled, as a PNG."""
            s = ctx.store.get(session)
            frames = views.assembly_frames(s, x, y, scale)
            if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < len(frames):
                raise ValueError(f"step must be an integer in 0..{len(frames) - 1}, got {step!r}")
            k = s.predictor.k
            return {**s.summary(), "step": step, "steps": len(frames), "caption": views.frame_caption(k, step),
                    "image": png_b64(frames[step])}  # fmt: skip

        gr.api(assemble_step, api_name="assemble_step")
