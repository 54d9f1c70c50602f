"""The Gradio adapter of the page: event handlers.  ``gr.State`` and ``evt.index`` in, the pure views of
:mod:`ifcn_viz.app.views` called, and ``{page.<component>: value}`` out for exactly what changed (Gradio's
dict-return idiom; a component left out keeps its value).

A handler never lets an exception reach the page: :func:`ifcn_viz.app.errors.user_message` -- the same rule the
API uses -- turns it into one line, shown as ``gr.Warning`` and in the status line.  The server keeps serving.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ifcn_viz.app import views
from ifcn_viz.app.errors import user_message
from ifcn_viz.app.layout import Page, scale_dropdown_choices
from ifcn_viz.app.server import AppContext
from ifcn_viz.app.session import ImageSession, model_label, open_session, reopen
from ifcn_viz.app.uploads import describe_conversion, upload_dir
from ifcn_viz.inference.predictor import Predictor

Out = dict[Any, Any]


def failed(err: BaseException, what: str, names: dict[str, str] | None = None) -> str:
    """The status line (and a toast) for ``err`` while doing ``what``."""
    msg = user_message(err, names)
    gr.Warning(f"{what}: {msg}")
    return f"**{what}:** {msg}"


STOPPED = "Stopped. The weights of the last update are kept: press *Explore with these weights*."


def _session_key(request: gr.Request | None) -> str:
    """One browser tab's key (Gradio's session hash); "" outside a request (tests, scripts)."""
    return str(getattr(request, "session_hash", None) or "")


class Handlers:
    """The page's event handlers, bound to one :class:`AppContext` and the page's components."""

    def __init__(self, ctx: AppContext, page: Page) -> None:
        self.ctx = ctx
        self.page = page
        self._training: dict[str, threading.Event] = {}  # the Train tab's running run per browser session: its stop

    def nothing(self) -> Out:
        """No change: ``{}`` would be read as one output value, so the status line is skipped explicitly."""
        return {self.page.status: gr.skip()}

    # ------------------------------------------------------------------------------------------ Explore

    def _explore_views(self, session: ImageSession, top_n, thr, iou, scale) -> Out:
        p = self.page
        scale = int(scale) if 0 <= int(scale) < len(session.predictor.scales) else -1  # the new image's scales
        v = views.explore(session, int(top_n), float(thr), float(iou), scale)
        img = views.display_image(session)
        menu = gr.update(choices=scale_dropdown_choices(session.predictor), value=scale)
        si = views.resolve_scale(session.predictor, scale)
        return {p.sess: session, p.ex_image: img, p.as_image: img, p.pv_image: img, p.mosaic: v.mosaic,
                p.mosaic_json: views.mosaic_data(session, si), p.objectness: v.objectness,
                p.objectness_json: views.objectness_data(session, si), p.props_img: v.proposals,
                p.props_json: v.data, p.scale: menu, p.ex_click: None, **self._editor_for(session)}  # fmt: skip

    def _editor_for(self, session: ImageSession) -> Out:
        """The Draw tab's editor on the new image: empty, or a synthetic example's true instances painted in."""
        from ifcn_viz.app.instances import layer_from_masks

        img = views.display_image(session)
        layers = [] if session.gt_masks is None else [layer_from_masks(session.gt_masks, img.shape[:2])]
        return {self.page.dr_editor: {"background": img, "layers": layers, "composite": None},
                self.page.dr_masks: session.gt_masks}  # fmt: skip

    def _open(self, src: Any, name: str, user_model, top_n, thr, iou, scale, names: dict[str, str],
              gt_masks: Any = None) -> Out:  # fmt: skip
        t0 = time.perf_counter()
        try:
            views.check_proposal_params(top_n, thr, iou)  # before the backbone runs (a NaN top_n from the page)
            predictor = self.ctx.predictor_for(user_model)
            conversion = describe_conversion(src) if isinstance(src, (str, Path)) else None
            gt_source = "synthetic scene" if gt_masks is not None else ""
            session = open_session(predictor, src, name, model_label(predictor), gt_masks, gt_source)
            h, w = session.hw
            note = (
                f"**{name}**: {w} x {h} px, fingerprint `{session.fingerprint}`; maps at "
                f"{len(session.predictor.scales)} scales in {time.perf_counter() - t0:.2f} s. "
                "Click the image to see the window centred there; the other tabs use the same image."
            )
            if conversion:
                note += f"\n\nNote: {conversion}."
            return {**self._explore_views(session, top_n, thr, iou, scale), self.page.status: note}
        except Exception as err:  # noqa: BLE001 -- shown to the user, server keeps serving
            return {self.page.status: failed(err, f"Could not use {name}", names)}

    def on_upload(self, path: str | None, user_model, top_n, thr, iou, scale) -> Out:
        if not path:
            return {}
        shown = Path(path).name  # Gradio keeps the user's file name as the last part of its upload path
        return self._open(path, f"upload: {shown}", user_model, top_n, thr, iou, scale, {str(path): shown})

    def on_example(self, name: str | None, user_model, top_n, thr, iou, scale) -> Out:
        if not name:
            return {}
        try:
            image, masks = views.example_image(name), views.example_masks(name)
        except Exception as err:  # noqa: BLE001
            return {self.page.status: failed(err, "Could not open the example")}
        return self._open(image, f"example: {name}", user_model, top_n, thr, iou, scale, {}, masks)

    def on_params(self, sess: ImageSession | None, top_n, thr, iou, scale) -> Out:
        p = self.page
        if sess is None:
            return {}
        try:
            v = views.explore(sess, int(top_n), float(thr), float(iou), int(scale))
            si = views.resolve_scale(sess.predictor, int(scale))
            return {p.mosaic: v.mosaic, p.objectness: v.objectness, p.props_img: v.proposals, p.props_json: v.data,
                    p.mosaic_json: views.mosaic_data(sess, si), p.objectness_json: views.objectness_data(sess, si),
                    p.ex_click: None}  # fmt: skip
        except Exception as err:  # noqa: BLE001
            return {p.status: failed(err, "Could not update the views")}

    def _click(self, sess: ImageSession | None, evt: gr.SelectData) -> tuple[float, float]:
        if sess is None:
            raise ValueError("upload an image or pick an example first")
        if not isinstance(evt.index, (list, tuple)) or len(evt.index) != 2:
            raise ValueError(f"a click gives (x, y), got {evt.index!r}")
        return views.display_to_original(sess, float(evt.index[0]), float(evt.index[1]))  # evt.index is (x, y)

    def on_explore_click(self, sess, scale, thr, ex_click, evt: gr.SelectData) -> Out:
        p = self.page
        try:
            x, y = self._click(sess, evt)
            v = views.window_at(sess, x, y, int(scale), float(thr), maps=False)  # the Assemble tab adds the maps
            si = views.resolve_scale(sess.predictor, int(scale))
            channel = (ex_click or {}).get("channel", sess.predictor.k**2 // 2)
            big, big_data = views.map_view(sess, channel, si, x, y)
            return {p.ex_image: v.marked, p.ex_window: v.view, p.ex_window_json: v.data,
                    p.mosaic: views.explore_mosaic(sess, si, (x, y)), p.ex_map: big, p.ex_map_json: big_data,
                    p.ex_click: {"x": x, "y": y, "channel": channel}}  # fmt: skip
        except Exception as err:  # noqa: BLE001
            return {p.status: failed(err, "Could not show the window")}

    def on_mosaic_click(self, sess, scale, ex_click, evt: gr.SelectData) -> Out:
        p = self.page
        try:
            if sess is None:
                raise ValueError("upload an image or pick an example first")
            si = views.resolve_scale(sess.predictor, int(scale))
            channel = views.mosaic_channel_at(sess, si, float(evt.index[0]), float(evt.index[1]))
            if channel is None:
                return self.nothing()
            click = ex_click or {}
            big, data = views.map_view(sess, channel, si, click.get("x"), click.get("y"))
            return {p.ex_map: big, p.ex_map_json: data, p.ex_click: {**click, "channel": channel}}
        except Exception as err:  # noqa: BLE001
            return {p.status: failed(err, "Could not show the map")}

    # ------------------------------------------------------------------------------------------ Assemble

    def on_assemble_click(self, sess, scale, evt: gr.SelectData) -> Out:
        p = self.page
        try:
            x, y = self._click(sess, evt)
            v = views.window_at(sess, x, y, int(scale))
            frames = views.assembly_frames(sess, x, y, int(scale))
            last = len(frames) - 1
            return {p.click: (x, y), p.as_image: v.marked, p.as_step: gr.update(value=last, maximum=last),
                    p.as_frame: frames[last], p.as_caption: views.frame_caption(sess.predictor.k, last),
                    p.as_view: v.view}  # fmt: skip
        except Exception as err:  # noqa: BLE001
            return {p.status: failed(err, "Could not assemble the window")}

    def _frame(self, sess, click, scale, step: int) -> Out:
        if sess is None or click is None:
            raise ValueError("click a pixel of the image in this tab first")
        frames = views.assembly_frames(sess, click[0], click[1], int(scale))
        step = max(0, min(int(step), len(frames) - 1))
        return {self.page.as_frame: frames[step], self.page.as_caption: views.frame_caption(sess.predictor.k, step)}

    def on_step(self, step, sess, click, scale) -> Out:
        try:
            return self._frame(sess, click, scale, step)
        except Exception as err:  # noqa: BLE001
            return {self.page.as_caption: failed(err, "Could not step")}

    def on_next(self, step, sess, click, scale) -> Out:
        try:
            n = sess.predictor.k**2 + 2 if sess is not None else 1
            nxt = (int(step) + 1) % n
            return {self.page.as_step: nxt, **self._frame(sess, click, scale, nxt)}
        except Exception as err:  # noqa: BLE001
            return {self.page.as_caption: failed(err, "Could not step")}

    def on_play(self, sess, click, scale) -> Iterator[Out]:
        p = self.page
        try:
            if sess is None or click is None:
                raise ValueError("click a pixel of the image in this tab first")
            frames = views.assembly_frames(sess, click[0], click[1], int(scale))
        except Exception as err:  # noqa: BLE001
            yield {p.as_caption: failed(err, "Could not play")}
            return
        for t, frame in enumerate(frames):
            yield {p.as_step: t, p.as_frame: frame, p.as_caption: views.frame_caption(sess.predictor.k, t)}
            time.sleep(0.35)

    # ------------------------------------------------------------------------------------------ Provenance

    def on_provenance_click(self, sess, scale, evt: gr.SelectData) -> Out:
        p = self.page
        try:
            x, y = self._click(sess, evt)
            view, data = views.provenance_at(sess, x, y, int(scale))
            return {p.pv_view: view, p.pv_json: data}
        except Exception as err:  # noqa: BLE001
            return {p.status: failed(err, "Could not trace the pixel")}

    # ------------------------------------------------------------------------------------------ Draw

    def _draw_out(self, sess: ImageSession, masks, x=None, y=None, source: str = "drawn") -> Out:
        import dataclasses

        from ifcn_viz.app.instances import write_coco

        p = self.page
        v = views.draw_views(sess, masks, x, y)
        sess = dataclasses.replace(sess, gt_masks=masks, gt_source=source)
        folder = Path(tempfile.mkdtemp(prefix="coco-", dir=upload_dir()))
        path = write_coco(masks, sess.name.split(": ", 1)[-1], folder)
        n = len(masks)
        return {p.sess: sess, p.dr_masks: masks, p.dr_instances: v.instances, p.dr_ideal: v.ideal,
                p.dr_window: v.window, p.dr_k: v.k_compare, p.dr_learned: v.learned, p.dr_json: v.data,
                p.dr_download: gr.update(value=str(path), interactive=True),
                p.status: f"{n} instance{'s' if n != 1 else ''} ({source}); maps at scale {v.data['scale']} "
                f"(windows of {v.data['window_px']:.0f} px). Click *your instances* to assemble a window."}  # fmt: skip

    def on_draw(self, editor: dict | None, sess: ImageSession | None, quiet: bool = False) -> Out:
        from ifcn_viz.app.instances import masks_from_layers

        try:
            if sess is None:
                raise ValueError("upload an image or pick an example first (Explore tab)")
            layers = (editor or {}).get("layers") or []
            masks = masks_from_layers(layers, sess.hw)
            if quiet:  # a stroke: the live preview (instances and their ideal maps); the button shows the rest
                if not len(masks):
                    return self.nothing()  # the editor was (re)set to an image: nothing drawn yet
                p = self.page
                v = views.draw_views(sess, masks, full=False)
                n = len(masks)
                return {p.dr_instances: v.instances, p.dr_ideal: v.ideal, p.dr_masks: masks,
                        p.status: f"{n} instance{'s' if n != 1 else ''} drawn: press *Show the maps of my drawing* "
                        "for the window, k = 1 vs k = 5 and the learned maps."}  # fmt: skip
            return self._draw_out(sess, masks)
        except Exception as err:  # noqa: BLE001
            if quiet and sess is None:
                return self.nothing()
            return {self.page.status: failed(err, "Could not use the drawing")}

    def on_draw_change(self, editor: dict | None, sess: ImageSession | None) -> Out:
        return self.on_draw(editor, sess, quiet=True)

    def on_draw_click(self, sess, masks, evt: gr.SelectData) -> Out:
        p = self.page
        try:
            if sess is None or masks is None:
                raise ValueError("draw an instance first")
            if not isinstance(evt.index, (list, tuple)) or len(evt.index) != 2:
                raise ValueError(f"a click gives (x, y), got {evt.index!r}")
            h, w = sess.hw
            x, y = float(evt.index[0]), float(evt.index[1])
            if not (0 <= x < w and 0 <= y < h):
                return self.nothing()  # a click on the legend
            v = views.draw_views(sess, masks, x, y, full=False)  # the ideal maps with the new window outlined
            return {p.dr_ideal: v.ideal, p.dr_window: views.draw_window_view(sess, masks, x, y), p.dr_json: v.data}
        except Exception as err:  # noqa: BLE001
            return {p.status: failed(err, "Could not assemble the window")}

    def on_coco_upload(self, path: str | None, sess: ImageSession | None) -> Out:
        from ifcn_viz.app.instances import layer_from_masks, masks_from_coco

        if not path:
            return self.nothing()
        shown = Path(path).name
        try:
            if sess is None:
                raise ValueError("open the image the annotations belong to first (Explore tab)")
            masks = masks_from_coco(path, sess.hw, shown)
            img = views.display_image(sess)
            editor = {"background": img, "layers": [layer_from_masks(masks, img.shape[:2])], "composite": None}
            return {**self._draw_out(sess, masks, source="COCO file"), self.page.dr_editor: editor}
        except Exception as err:  # noqa: BLE001
            return {self.page.status: failed(err, "Could not use the COCO file", {str(path): shown})}

    # ------------------------------------------------------------------------------------------ Inspect

    def on_inspect(self, sess, use_gt, top_n, thr, iou, scale) -> Out:
        p = self.page
        try:
            if sess is None:
                raise ValueError("upload an image or pick an example first (Explore tab)")
            v = views.inspect(sess, int(top_n), float(thr), float(iou), int(scale), bool(use_gt))
            n = v.data["nms_steps"]
            gt = v.data["ground_truth"]
            msg = f"Inspected {sess.name}" + (f" against its known instances ({gt})." if gt else " (no ground truth).")
            return {p.in_funnel: v.funnel, p.in_missed: v.missed, p.in_obj: v.objectness, p.in_logits: v.logits,
                    p.in_nms: v.nms, p.in_json: v.data, p.in_trace: v.trace, p.status: msg,
                    p.in_step: gr.update(value=0, maximum=max(1, n - 1))}  # fmt: skip
        except Exception as err:  # noqa: BLE001
            return {p.status: failed(err, "Could not inspect the image")}

    def on_nms_step(self, step, sess, trace, iou) -> Out:
        try:
            if sess is None or trace is None:
                raise ValueError("press *Inspect this image* first")
            n = min(views.NMS_MAX_STEPS, len(trace.nms_trace))
            return {self.page.in_nms: views.nms_view(sess, trace, max(0, min(int(step), n - 1)), float(iou))}
        except Exception as err:  # noqa: BLE001
            return {self.page.status: failed(err, "Could not show the NMS step")}

    def on_nms_next(self, step, sess, trace, iou) -> Out:
        if sess is None or trace is None:
            return self.on_nms_step(0, sess, trace, iou)
        n = max(1, min(views.NMS_MAX_STEPS, len(trace.nms_trace)))
        nxt = (int(step) + 1) % n
        return {self.page.in_step: nxt, **self.on_nms_step(nxt, sess, trace, iou)}

    # ------------------------------------------------------------------------------------------ Compare

    def on_compare(self, seed, user_model) -> Out:
        p = self.page
        try:
            image, ivl, kc, data = views.compare_scene(self.ctx.predictor_for(user_model), int(seed or 0))
            return {p.cmp_scene: image, p.cmp_ivl: ivl, p.cmp_k: kc, p.cmp_json: data}
        except Exception as err:  # noqa: BLE001
            return {p.status: failed(err, "Could not build the comparison")}

    # ------------------------------------------------------------------------------------------ Train

    def on_train(self, iters, seed, request: gr.Request = None) -> Iterator[Out]:
        """Stream a live training run; Stop (:meth:`on_stop`) ends it after the update in progress, and the run's
        own last message says so (a cancelled generator could still deliver a late "step n" over it)."""
        import pandas as pd

        from ifcn_viz.app.live_train import fixed_scene, live_training, training_views

        p = self.page
        key = _session_key(request)
        stop = self._training[key] = threading.Event()
        try:
            n = int(iters or 0)
            image, _ = fixed_scene()
            yield {p.tr_status: f"Training the tiny model for {n} steps on synthetic scenes (CPU)..."}
            for tick in live_training(n, int(seed or 0), every=5):
                rows = [
                    (s, v, term) for s, *vals in tick.losses for v, term in zip(vals, ("total", "objectness", "mask"))
                ]
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
                yield {p.tr_status: msg, p.tr_plot: pd.DataFrame(rows, columns=["step", "loss", "term"]),
                       p.tr_maps: maps, p.tr_obj: obj, p.trained: tick.model}  # fmt: skip
                if stopped:
                    return
                if stop.is_set():  # pressed while this update was on its way to the page
                    yield {p.tr_status: f"{STOPPED} (stopped at step {tick.step} / {tick.iters})"}
                    return
        except Exception as err:  # noqa: BLE001
            yield {p.tr_status: failed(err, "Training failed")}
        finally:
            if self._training.get(key) is stop:
                del self._training[key]

    def on_stop(self, request: gr.Request = None) -> Out:
        stop = self._training.get(_session_key(request))
        if stop is None:
            return {self.page.tr_status: "Nothing is training: press *Train*."}
        stop.set()
        return {self.page.tr_status: "Stopping after the update in progress..."}

    # ------------------------------------------------------------------------------------------ Model

    def model_markdown(self, user_model: Predictor | None) -> str:
        from ifcn_viz.app.api import model_description

        p = self.ctx.predictor_for(user_model)
        if user_model is None:
            which = "the server's default model"
        elif any(user_model is q for q in getattr(self.ctx, "_named", {}).values()):
            which = "a shipped model (for you only; others keep theirs)"
        else:
            which = "your model (only you see it)"
        d = model_description(p)
        pyr = d["pyramid"]
        scales = (
            f"adaptive to each image: objects from {pyr['min_object']} px up to the whole image, at most "
            f"{pyr['max_pixels'] / 1e6:.1f} MP in all (the Explore tab's scale menu lists what each scale serves)"
            if pyr["kind"] == "adaptive"
            else "fixed shorter sides " + ", ".join(f"{s} px" for s in pyr["scales"])
        )
        lines = [
            f"**In use:** {which}: {model_label(p)}",
            f"- architecture: {d['architecture']}, backbone `{d['backbone']}`, k = {d['k']}, m = {d['m']} "
            f"(windows of {d['m'] * d['stride']} px), stride {d['stride']}, {d['parameters']:,} parameters",
            f"- inference scales: {scales}",
            f"- backbone precision: {d['precision']['backbone']} (setting `{d['precision']['setting']}`: bf16 "
            "autocast where the hardware computes bf16 natively, else fp32; docs/INFERENCE.md)",
        ]
        training = d.get("training", {})
        for part, label in (("data", "training data"), ("recipe", "training recipe")):
            if training.get(part):
                lines.append(f"- {label}: " + ", ".join(f"{k} {_short(v)}" for k, v in training[part].items()))
        if training.get("steps"):
            lines.append(f"- steps trained: {training['steps']:,}")
        if d.get("metrics"):
            lines.append("- metrics: " + " · ".join(f"{k} {v:.3f}" for k, v in d["metrics"].items()))
        names = {"validation": "its own validation scenes", "independent": "independent synthetic scenes (styles "
                 "it never saw)", "real_photos": "46 hand-drawn objects on 7 real photographs"}  # fmt: skip
        for name, m in d.get("yardsticks", {}).items():
            parts = [f"{k} {m[k]:.2f}" for k in ("AR@10", "AR@100", "recall50@100") if k in m]
            lines.append(f"- on {names.get(name, name)}: " + ", ".join(parts))
        if (training.get("data") or {}).get("dataset") == "synthetic":
            lines.append(
                "\n**What to expect on your photos.** This model has only ever seen *synthetic* scenes: flat shapes "
                "cut from textures and photographs. It shows the maps and the assembling on any image, but on real "
                "photographs it finds only some of the objects (see the real-photograph line above). For real use, "
                "train on COCO or VOC (`ifcn-viz train --dataset coco ...`, docs/TRAINING.md)."
            )
        lines.append(
            "\nUpload `NAME.safetensors` with its `NAME.json` card (as written by `ifcn-viz train`). Weights are read "
            "with safetensors only: nothing in the file is executed. A file that does not fit its card is refused."
        )
        return "\n".join(lines)

    def _switch(self, new_model: Predictor | None, sess, top_n, thr, iou, what: str) -> Out:
        pg = self.page
        p = self.ctx.predictor_for(new_model)
        out = {pg.user_model: new_model, pg.md_info: self.model_markdown(new_model),
               pg.scale: gr.update(choices=scale_dropdown_choices(p), value=-1)}  # fmt: skip
        if sess is None:
            return {**out, pg.sess: None, pg.status: f"{what}. Upload an image to explore it."}
        session = reopen(sess, p, model_label(p))
        return {**out, **self._explore_views(session, top_n, thr, iou, -1),
                pg.status: f"{what}; maps recomputed for {session.name}."}  # fmt: skip

    def on_use_trained(self, trained, sess, top_n, thr, iou, scale) -> Out:
        try:
            if trained is None:
                raise ValueError("no trained model yet: train one in the Train tab first")
            return self._switch(Predictor(trained), sess, top_n, thr, iou, "Using the model you trained")
        except Exception as err:  # noqa: BLE001
            return {self.page.status: failed(err, "Could not use the trained model")}

    def on_use_shipped(self, sess, top_n, thr, iou, scale) -> Out:
        try:
            return self._switch(None, sess, top_n, thr, iou, "Using the server's default model")
        except Exception as err:  # noqa: BLE001
            return {self.page.status: failed(err, "Could not switch models")}

    def on_use_named(self, name: str | None, sess, top_n, thr, iou, scale) -> Out:
        try:
            if not name:
                raise ValueError("choose a shipped model first")
            if name == getattr(self.ctx, "checkpoint", None):
                return self._switch(None, sess, top_n, thr, iou, "Using the server's default model")
            return self._switch(self.ctx.named(name), sess, top_n, thr, iou, f"Using the shipped model {name!r}")
        except Exception as err:  # noqa: BLE001
            return {self.page.status: failed(err, "Could not switch models")}

    def on_load_checkpoint(self, files, sess, top_n, thr, iou, scale) -> Out:
        names = {str(f): Path(f).name for f in files or []}
        try:
            predictor = load_uploaded_checkpoint(files or [])
            return self._switch(predictor, sess, top_n, thr, iou, "Using your checkpoint")
        except Exception as err:  # noqa: BLE001
            return {self.page.status: failed(err, "Could not load the checkpoint", names)}


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k} {_short(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list):
        return "/".join(str(v) for v in value)
    return str(value)


def load_uploaded_checkpoint(files: list[str]) -> Predictor:
    """A Predictor from uploaded files: one ``.safetensors`` (or ``.pt``/``.pth``) and one ``.json`` card.

    Uploads land in separate folders, so both are copied under one stem before ``load_checkpoint`` reads them.
    Raises ``CheckpointError`` / ``ValueError`` with the reason, naming the user's files, not server paths.
    """
    paths = [Path(f) for f in files]
    weights = [p for p in paths if p.suffix.lower() in (".safetensors", ".pt", ".pth")]
    cards = [p for p in paths if p.suffix.lower() == ".json"]
    if len(weights) != 1 or len(cards) > 1:
        got = ", ".join(p.name for p in paths) or "nothing"
        raise ValueError(f"upload exactly one .safetensors (or .pt/.pth) file and its .json card; got {got}")
    if not cards and weights[0].suffix.lower() == ".safetensors":
        raise ValueError(f"{weights[0].name} needs its model card: upload the .json written beside it too")
    tmp = Path(tempfile.mkdtemp(prefix="ifcn_ckpt_", dir=upload_dir()))  # the run's folder: gone on SIGTERM too
    try:
        # the copies keep the user's file name, so the loader's messages speak of the user's file
        target = tmp / f"{weights[0].stem}{weights[0].suffix.lower()}"
        shutil.copyfile(weights[0], target)
        names = {str(target): weights[0].name}
        if cards:
            shutil.copyfile(cards[0], target.with_suffix(".json"))
            names.update({str(target.with_suffix(".json")): cards[0].name})
        try:
            predictor = Predictor.from_checkpoint(target)
        except Exception as err:
            if err.args and isinstance(err.args[0], str):
                text = err.args[0]
                for server_path, shown in names.items():
                    text = text.replace(server_path, shown)
                err.args = (text.replace(str(tmp), "").replace(str(target.with_suffix("")), target.stem),
                            *err.args[1:])  # fmt: skip
            raise
        card = predictor.card if predictor.card is not None else {}
        card.setdefault("name", f"uploaded: {weights[0].name}")
        predictor.card = card
        return predictor
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
