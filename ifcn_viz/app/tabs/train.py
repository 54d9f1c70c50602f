"""The Train tab: train the ``tiny`` model from scratch on synthetic scenes on this server's CPU, watch the loss
fall and the score maps of a fixed held-out scene emerge, stop at any update, then explore with the weights."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import gradio as gr

from ifcn_viz.app.api import as_gr_error
from ifcn_viz.app.page import HEAVY_EVENT, UI_EVENT, Out, Tab, failed, note, page_errors, picture
from ifcn_viz.inference.predictor import Predictor

STOPPED = "Stopped. The weights of the last update are kept: press *Explore with these weights*."


def _session_key(request: gr.Request | None) -> str:
    """One browser tab's key (Gradio's session hash); "" outside a request (tests, scripts)."""
    return str(getattr(request, "session_hash", None) or "")


class TrainTab(Tab):
    id, title = "train", "Train"
    API = ("train_tiny",)

    def __init__(self, page) -> None:
        super().__init__(page)
        self._training: dict[str, threading.Event] = {}  # the running run per browser session: its stop flag

    def layout(self) -> None:
        note(
            "Train the `tiny` model from scratch on synthetic scenes, on this server's CPU: watch the loss "
            "fall and the score maps of a fixed held-out scene emerge. One training runs at a time; Stop keeps "
            "the weights so far. Then explore with them."
        )
        with gr.Row():
            self.tr_iters = gr.Number(value=100, precision=0, minimum=1, maximum=2000, label="iterations")
            self.tr_seed = gr.Number(value=0, precision=0, minimum=0, label="seed")
            self.tr_start = gr.Button("Train", variant="primary", elem_id="tr_start")
            self.tr_stop = gr.Button("Stop", variant="stop", elem_id="tr_stop")
            self.tr_use = gr.Button("Explore with these weights", elem_id="tr_use")
        self.tr_status = gr.Markdown("", elem_id="tr_status")
        self.tr_plot = gr.LinePlot(x="step", y="loss", color="term", label="training loss", elem_id="tr_plot")
        with gr.Row():
            self.tr_maps = picture("score maps of the fixed scene", "tr_maps")
            self.tr_obj = picture("objectness of the fixed scene", "tr_obj")

    def wire(self) -> None:
        page = self.page
        self.tr_start.click(self.on_train, [self.tr_iters, self.tr_seed],
                            {self.tr_status, self.tr_plot, self.tr_maps, self.tr_obj, page.trained},
                            concurrency_id="ifcn-train", concurrency_limit=1, **UI_EVENT)  # fmt: skip
        # no `cancels`: the run checks its stop flag after each update and says "Stopped" itself (last word wins)
        self.tr_stop.click(self.on_stop, None, {self.tr_status}, **UI_EVENT)
        self.tr_use.click(self.on_use_trained, [page.trained, page.sess, *page.params], page.model_outputs,
                          **HEAVY_EVENT)  # fmt: skip

    def on_train(self, iters, seed, request: gr.Request = None) -> Iterator[Out]:
        """Stream a live training run; Stop (:meth:`on_stop`) ends it after the update in progress, and the run's
        own last message says so (a cancelled generator could still deliver a late "step n" over it)."""
        key = _session_key(request)
        stop = self._training[key] = threading.Event()
        try:
            yield from self._run(int(iters or 0), int(seed or 0), stop)
        except Exception as err:  # noqa: BLE001 -- shown to the user, server keeps serving
            yield {self.tr_status: failed(err, "Training failed")}
        finally:
            if self._training.get(key) is stop:
                del self._training[key]

    def _run(self, n: int, seed: int, stop: threading.Event) -> Iterator[Out]:
        import pandas as pd

        from ifcn_viz.app.live_train import fixed_scene, live_training, training_views

        image, _ = fixed_scene()
        yield {self.tr_status: f"Training the tiny model for {n} steps on synthetic scenes (CPU)..."}
        for tick in live_training(n, seed, every=5):
            rows = [(s, v, term) for s, *vals in tick.losses for v, term in zip(vals, ("total", "objectness", "mask"))]
            maps, obj = training_views(tick, image)
            msg = (
                f"step {tick.step} / {tick.iters}: loss {tick.losses[-1][1]:.3f} "
                f"({tick.seconds:.0f} s, {tick.seconds / tick.step:.2f} s per step)"
            )
            stopped = stop.is_set()  # pressed while this update was computed
            if stopped:
                msg = f"{STOPPED} (stopped at {msg})"
            elif tick.step == tick.iters:
                msg += ". Done: press *Explore with these weights*."
            yield {self.tr_status: msg, self.tr_plot: pd.DataFrame(rows, columns=["step", "loss", "term"]),
                   self.tr_maps: maps, self.tr_obj: obj, self.page.trained: tick.model}  # fmt: skip
            if stopped:
                return
            if stop.is_set():  # pressed while this update was on its way to the page
                yield {self.tr_status: f"{STOPPED} (stopped at step {tick.step} / {tick.iters})"}
                return

    def on_stop(self, request: gr.Request = None) -> Out:
        stop = self._training.get(_session_key(request))
        if stop is None:
            return {self.tr_status: "Nothing is training: press *Train*."}
        stop.set()
        return {self.tr_status: "Stopping after the update in progress..."}

    @page_errors("Could not use the trained model")
    def on_use_trained(self, trained, sess, top_n, thr, iou, scale) -> Out:
        if trained is None:
            raise ValueError("no trained model yet: train one in the Train tab first")
        return self.page.switch(Predictor(trained), sess, [top_n, thr, iou, scale], "Using the model you trained")

    def register_api(self) -> None:
        """The API twin of *Train*: a few steps, the loss curve."""

        @as_gr_error
        def train_tiny(iterations: int = 5, seed: int = 0) -> dict:
            """Train a fresh ``tiny`` model for a few steps (at most 50 here) and return its loss curve."""
            from ifcn_viz.app.live_train import live_training

            if isinstance(iterations, bool) or not isinstance(iterations, int) or not 1 <= iterations <= 50:
                raise ValueError(f"iterations must be an integer in 1..50 through the API, got {iterations!r}")
            tick = list(live_training(iterations, seed, every=iterations))[-1]  # one tick: after the last step
            return {"steps": tick.step, "losses": [list(r) for r in tick.losses], "seconds": round(tick.seconds, 3)}

        gr.api(train_tiny, api_name="train_tiny", concurrency_id="ifcn-train", concurrency_limit=1)
