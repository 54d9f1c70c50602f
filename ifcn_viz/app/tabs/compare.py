"""The Compare tab: a synthetic scene with ground truth -- the ideal maps beside the model's learned ones, and
k = 1 (a semantic FCN: touching objects merge) against k^2 relative-position maps (Sec. 3, Fig. 1)."""

from __future__ import annotations

import gradio as gr

from ifcn_viz.app import views
from ifcn_viz.app.api import as_gr_error, png_b64
from ifcn_viz.app.page import HEAVY, HEAVY_EVENT, Out, Tab, note, page_errors, picture


class CompareTab(Tab):
    id, title = "compare", "Compare"
    API = ("compare",)

    def layout(self) -> None:
        note(
            "A synthetic scene with ground truth. Left: the *ideal* maps (what a perfect InstanceFCN would "
            "output for the true masks) beside the model's learned maps. Below: k = 1 (one map, a semantic "
            "FCN) merges touching objects; k^2 relative-position maps keep them apart (Sec. 3, Fig. 1)."
        )
        with gr.Row():
            self.cmp_seed = gr.Number(value=1, precision=0, label="scene seed", minimum=0)
            self.cmp_btn = gr.Button("Show", variant="primary", elem_id="cmp_btn")
        with gr.Row():
            self.cmp_scene = picture("scene", "cmp_scene")
            self.cmp_ivl = picture("ideal vs learned maps", "cmp_ivl")
        self.cmp_k = picture("k = 1 vs k = 5 (ideal maps, assembled at each instance centre)", "cmp_k")
        with gr.Accordion("the scene in numbers", open=False):
            self.cmp_json = gr.JSON(label="scene", elem_id="cmp_json")

    def wire(self) -> None:
        shown = {self.page.status, self.cmp_scene, self.cmp_ivl, self.cmp_k, self.cmp_json}
        self.cmp_btn.click(self.on_compare, [self.cmp_seed, self.page.user_model], shown, **HEAVY_EVENT)

    @page_errors("Could not build the comparison")
    def on_compare(self, seed, user_model) -> Out:
        image, ivl, kc, data = views.compare_scene(self.ctx.predictor_for(user_model), int(seed or 0))
        return {self.cmp_scene: image, self.cmp_ivl: ivl, self.cmp_k: kc, self.cmp_json: data}

    def register_api(self) -> None:
        """The API twin of *Show*."""
        ctx = self.ctx

        @as_gr_error
        def compare(seed: int = 1, size: int = 256, images: bool = False) -> dict:
            """A synthetic scene with ground truth: ideal vs learned maps, and k = 1 vs k = 5."""
            image, ivl, kc, data = views.compare_scene(ctx.shared(), seed, size)
            if images:
                data["images"] = {
                    "scene": png_b64(image),
                    "ideal_vs_learned": png_b64(ivl),
                    "k_comparison": png_b64(kc),
                }
            return data

        gr.api(compare, api_name="compare", concurrency_id=HEAVY)
