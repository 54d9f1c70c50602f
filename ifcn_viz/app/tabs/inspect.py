"""The Inspect tab: why the proposals are what they are -- the funnel of inference's stages per scale (with known
instances: the recall at each stage and the stage that lost each missed object), NMS step by step, and histograms
of objectness and of the score-map logits.  It uses the Explore tab's parameters (the page's)."""

from __future__ import annotations

import gradio as gr

from ifcn_viz.app import instance_views as iv
from ifcn_viz.app.api import as_gr_error, png_b64
from ifcn_viz.app.page import HEAVY, HEAVY_EVENT, UI_EVENT, Out, Tab, note, page_errors, titled
from ifcn_viz.config import MASK_THRESHOLD, NMS_IOU, NMS_MAX_STEPS, TOP_N


class InspectTab(Tab):
    id, title = "inspect", "Inspect"
    API = ("inspect",)

    def layout(self) -> None:
        note(
            "Why the proposals are what they are, for the current image: how many windows survive each stage of "
            "inference (Sec. 3.3), per scale; with ground truth (a synthetic example's, or the instances you drew) "
            "the recall at each stage and the stage that lost each missed object; NMS step by step; and histograms "
            "of objectness and of the score-map logits. Uses the Explore tab's top-N, threshold, NMS IoU and scale."
        )
        with gr.Row():
            self.in_gt = gr.Checkbox(value=True, label="use the known instances (synthetic example or your drawing)",
                                     elem_id="in_gt")  # fmt: skip
            self.in_btn = gr.Button("Inspect this image", variant="primary", elem_id="in_btn")
        with gr.Row():
            self.in_funnel = titled("the proposal funnel", "in_funnel")
            self.in_missed = titled("ground truth: found, or the stage that lost it", "in_missed")
        with gr.Row():
            self.in_step = gr.Slider(0, NMS_MAX_STEPS - 1, value=0, step=1, label="NMS step", elem_id="in_step")
            self.in_next = gr.Button("Next NMS step >", elem_id="in_next")
        self.in_nms = titled("NMS, one candidate at a time: who suppressed whom", "in_nms")
        self.in_obj = titled("objectness histograms", "in_obj")
        self.in_logits = titled("score-map logits", "in_logits")
        with gr.Accordion("the inspection in numbers", open=False):
            self.in_json = gr.JSON(label="inspection", elem_id="in_json")
        self.in_trace = gr.State(None)  # the NMS trace of the last inspection (for stepping without recomputing)

    def wire(self) -> None:
        page = self.page
        shown = {page.status, self.in_funnel, self.in_missed, self.in_obj, self.in_logits, self.in_nms, self.in_json,
                 self.in_trace, self.in_step}  # fmt: skip
        self.in_btn.click(self.on_inspect, [page.sess, self.in_gt, *page.params], shown, **HEAVY_EVENT)
        args = [self.in_step, page.sess, self.in_trace, page.iou]
        self.in_step.input(self.on_nms_step, args, {page.status, self.in_nms}, **UI_EVENT)
        self.in_next.click(self.on_nms_next, args, {page.status, self.in_step, self.in_nms}, **UI_EVENT)

    @page_errors("Could not inspect the image")
    def on_inspect(self, sess, use_gt, top_n, thr, iou, scale) -> Out:
        if sess is None:
            raise ValueError("upload an image or pick an example first (Explore tab)")
        v = iv.inspect(sess, int(top_n), float(thr), float(iou), int(scale), bool(use_gt))
        gt = v.data["ground_truth"]
        msg = f"Inspected {sess.name}" + (f" against its known instances ({gt})." if gt else " (no ground truth).")
        step = gr.update(value=0, maximum=max(1, v.data["nms_steps"] - 1))
        return {self.in_funnel: v.funnel, self.in_missed: v.missed, self.in_obj: v.objectness,
                self.in_logits: v.logits, self.in_nms: v.nms, self.in_json: v.data, self.in_trace: v.trace,
                self.page.status: msg, self.in_step: step}  # fmt: skip

    @page_errors("Could not show the NMS step")
    def on_nms_step(self, step, sess, trace, iou) -> Out:
        if sess is None or trace is None:
            raise ValueError("press *Inspect this image* first")
        n = min(NMS_MAX_STEPS, len(trace.nms_trace))
        return {self.in_nms: iv.nms_view(sess, trace, max(0, min(int(step), n - 1)), float(iou))}

    def on_nms_next(self, step, sess, trace, iou) -> Out:
        if sess is None or trace is None:
            return self.on_nms_step(0, sess, trace, iou)
        n = max(1, min(NMS_MAX_STEPS, len(trace.nms_trace)))
        nxt = (int(step) + 1) % n
        return {self.in_step: nxt, **self.on_nms_step(nxt, sess, trace, iou)}

    def register_api(self) -> None:
        """The API twin of *Inspect this image* and the NMS step."""
        ctx = self.ctx

        @as_gr_error
        def inspect(session: str, top_n: int = TOP_N, mask_threshold: float = MASK_THRESHOLD, nms_iou: float = NMS_IOU,
                    scale: int = -1,
                    use_gt: bool = True, step: int = 0, images: bool = False) -> dict:  # fmt: skip
            """The proposal funnel of a session's image (windows per stage and scale; with its known instances, recall
            at each stage and where each missed object was lost), NMS step ``step`` (who suppressed whom) and the
            objectness / logit histograms' numbers."""
            s = ctx.store.get(session)
            v = iv.inspect(s, top_n, mask_threshold, nms_iou, scale, use_gt)
            out = dict(v.data)
            if isinstance(step, bool) or not isinstance(step, int):
                raise ValueError(f"step must be an integer, got {step!r}")
            nms = iv.nms_view(s, v.trace, step, nms_iou) if step else v.nms
            if images:
                pics = {"funnel": v.funnel, "objectness": v.objectness, "logits": v.logits, "nms": nms}
                if v.missed is not None:
                    pics["missed"] = v.missed
                out["images"] = {n: png_b64(a) for n, a in pics.items()}
            return out

        gr.api(inspect, api_name="inspect", concurrency_id=HEAVY)
