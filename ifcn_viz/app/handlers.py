"""Gradio event handlers: ``gr.State`` and ``evt.index`` in, pure callbacks, errors out as a status line.

A handler never lets an exception reach the page: user-facing errors (``ImageLoadError``, ``CheckpointError``,
other ``ValueError``) become ``gr.Warning`` plus a status line and leave every other output as it was; anything
unexpected is logged with its traceback on the server and summarised in one line.  The server keeps serving.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ifcn_viz.app import callbacks as cb
from ifcn_viz.app.session import ImageSession, model_label, open_session, reopen
from ifcn_viz.app.state import AppContext, describe_conversion
from ifcn_viz.inference.predictor import Predictor

log = logging.getLogger(__name__)
SKIP = gr.skip


def user_message(err: BaseException) -> str:
    """One line for the page: the error's own message for expected errors, a summary otherwise."""
    if isinstance(err, (ValueError, KeyError, TypeError, RuntimeError)) and err.args:
        return str(err.args[0])
    return f"internal error ({type(err).__name__}); the server logged it and keeps running"


def failed(err: BaseException, what: str) -> str:
    """Log ``err`` (with traceback when unexpected), show a toast, and return the status line."""
    if not isinstance(err, (ValueError, KeyError, TypeError)):
        log.exception("%s failed", what)
    msg = user_message(err)
    gr.Warning(f"{what}: {msg}")
    return f"**{what}:** {msg}"


class Handlers:
    """The page's event handlers, bound to one :class:`AppContext`."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------------------------------ Explore

    def _explore_outputs(self, session: ImageSession, top_n, thr, iou, scale, note: str) -> tuple:
        views = cb.explore(session, int(top_n), float(thr), float(iou), int(scale))
        img = cb.display_image(session)
        return (session, note, img, views.mosaic, views.objectness, views.proposals, views.data, img, img)

    def _open(self, src: Any, name: str, user_model, top_n, thr, iou, scale, sess) -> tuple:
        t0 = time.perf_counter()
        try:
            predictor = self.ctx.predictor_for(user_model)
            conversion = describe_conversion(src) if isinstance(src, (str, Path)) else None
            session = open_session(predictor, src, name, model_label(predictor))
            h, w = session.hw
            note = (
                f"**{name}**: {w} x {h} px, fingerprint `{session.fingerprint}`; maps at "
                f"{len(session.predictor.scales)} scales in {time.perf_counter() - t0:.2f} s. "
                "Click the image to see the window centred there; the other tabs use the same image."
            )
            if conversion:
                note += f"\n\nNote: {conversion}."
            return self._explore_outputs(session, top_n, thr, iou, scale, note)
        except Exception as err:  # noqa: BLE001 -- shown to the user, server keeps serving
            if isinstance(src, (str, Path)) and isinstance(err, ValueError) and err.args:
                err = type(err)(str(err.args[0]).replace(str(src), Path(src).name))  # no server paths in the page
            return (sess, failed(err, f"Could not use {name}"), *[SKIP()] * 7)

    def on_upload(self, path: str | None, user_model, top_n, thr, iou, scale, sess=None) -> tuple:
        if not path:
            return (sess, SKIP(), *[SKIP()] * 7)
        return self._open(path, f"upload: {Path(path).name}", user_model, top_n, thr, iou, scale, sess)

    def on_example(self, name: str | None, user_model, top_n, thr, iou, scale, sess=None) -> tuple:
        if not name:
            return (sess, SKIP(), *[SKIP()] * 7)
        try:
            image = cb.example_image(name)
        except Exception as err:  # noqa: BLE001
            return (sess, failed(err, "Could not open the example"), *[SKIP()] * 7)
        return self._open(image, f"example: {name}", user_model, top_n, thr, iou, scale, sess)

    def on_params(self, sess: ImageSession | None, top_n, thr, iou, scale) -> tuple:
        if sess is None:
            return (SKIP(),) * 5
        try:
            views = cb.explore(sess, int(top_n), float(thr), float(iou), int(scale))
            return SKIP(), views.mosaic, views.objectness, views.proposals, views.data
        except Exception as err:  # noqa: BLE001
            return (failed(err, "Could not update the views"), *[SKIP()] * 4)

    def _click(self, sess: ImageSession | None, evt: gr.SelectData) -> tuple[float, float]:
        if sess is None:
            raise ValueError("upload an image or pick an example first")
        if not isinstance(evt.index, (list, tuple)) or len(evt.index) != 2:
            raise ValueError(f"a click gives (x, y), got {evt.index!r}")
        return cb.display_to_original(sess, float(evt.index[0]), float(evt.index[1]))  # evt.index is (x, y)

    def on_explore_click(self, sess, scale, thr, evt: gr.SelectData) -> tuple:
        try:
            x, y = self._click(sess, evt)
            v = cb.window_at(sess, x, y, int(scale), float(thr), maps=False)  # the Assemble tab adds the maps
            return SKIP(), v.marked, v.view, v.data
        except Exception as err:  # noqa: BLE001
            return (failed(err, "Could not show the window"), *[SKIP()] * 3)

    # ------------------------------------------------------------------------------------------ Assemble

    def on_assemble_click(self, sess, scale, evt: gr.SelectData) -> tuple:
        try:
            x, y = self._click(sess, evt)
            v = cb.window_at(sess, x, y, int(scale))
            frames = cb.assembly_frames(sess, x, y, int(scale))
            last = len(frames) - 1
            k = sess.predictor.k
            step = gr.update(value=last, maximum=last)
            return SKIP(), (x, y), v.marked, step, frames[last], cb.frame_caption(k, last), v.view
        except Exception as err:  # noqa: BLE001
            return (failed(err, "Could not assemble the window"), *[SKIP()] * 6)

    def _frame(self, sess, click, scale, step: int) -> tuple[Any, str]:
        if sess is None or click is None:
            raise ValueError("click a pixel of the image in this tab first")
        frames = cb.assembly_frames(sess, click[0], click[1], int(scale))
        step = max(0, min(int(step), len(frames) - 1))
        return frames[step], cb.frame_caption(sess.predictor.k, step)

    def on_step(self, step, sess, click, scale) -> tuple:
        try:
            return self._frame(sess, click, scale, step)
        except Exception as err:  # noqa: BLE001
            return SKIP(), failed(err, "Could not step")

    def on_next(self, step, sess, click, scale) -> tuple:
        try:
            n = sess.predictor.k**2 + 2 if sess is not None else 1
            nxt = (int(step) + 1) % n
            return (nxt, *self._frame(sess, click, scale, nxt))
        except Exception as err:  # noqa: BLE001
            return SKIP(), SKIP(), failed(err, "Could not step")

    def on_play(self, sess, click, scale) -> Iterator[tuple]:
        try:
            if sess is None or click is None:
                raise ValueError("click a pixel of the image in this tab first")
            frames = cb.assembly_frames(sess, click[0], click[1], int(scale))
        except Exception as err:  # noqa: BLE001
            yield SKIP(), SKIP(), failed(err, "Could not play")
            return
        for t, frame in enumerate(frames):
            yield t, frame, cb.frame_caption(sess.predictor.k, t)
            time.sleep(0.35)

    # ------------------------------------------------------------------------------------------ Provenance

    def on_provenance_click(self, sess, scale, evt: gr.SelectData) -> tuple:
        try:
            x, y = self._click(sess, evt)
            view, data = cb.provenance_at(sess, x, y, int(scale))
            return SKIP(), view, data
        except Exception as err:  # noqa: BLE001
            return failed(err, "Could not trace the pixel"), SKIP(), SKIP()

    # ------------------------------------------------------------------------------------------ Compare

    def on_compare(self, seed, user_model) -> tuple:
        try:
            image, ivl, kc, data = cb.compare_scene(self.ctx.predictor_for(user_model), int(seed or 0))
            return SKIP(), image, ivl, kc, data
        except Exception as err:  # noqa: BLE001
            return (failed(err, "Could not build the comparison"), *[SKIP()] * 4)

    # ------------------------------------------------------------------------------------------ Train

    def on_train(self, iters, seed) -> Iterator[tuple]:
        import pandas as pd

        from ifcn_viz.app.live_train import fixed_scene, live_training, training_views

        try:
            n = int(iters or 0)
            image, _ = fixed_scene()
            yield f"Training the tiny model for {n} steps on synthetic scenes (CPU)...", SKIP(), SKIP(), SKIP(), SKIP()
            for tick in live_training(n, int(seed or 0), every=5):
                rows = [
                    (s, v, term) for s, *vals in tick.losses for v, term in zip(vals, ("total", "objectness", "mask"))
                ]
                df = pd.DataFrame(rows, columns=["step", "loss", "term"])
                maps, obj = training_views(tick, image)
                msg = (
                    f"step {tick.step} / {tick.iters}: loss {tick.losses[-1][1]:.3f} "
                    f"({tick.seconds:.0f} s, {tick.seconds / tick.step:.2f} s per step)"
                )
                if tick.step == tick.iters:
                    msg += ". Done: press *Explore with these weights*."
                yield msg, df, maps, obj, tick.model
        except Exception as err:  # noqa: BLE001
            yield failed(err, "Training failed"), SKIP(), SKIP(), SKIP(), SKIP()

    def on_stop(self) -> str:
        return "Stopped. The weights of the last update are kept: press *Explore with these weights*."

    # ------------------------------------------------------------------------------------------ Model

    def model_markdown(self, user_model: Predictor | None) -> str:
        p = self.ctx.predictor_for(user_model)
        card = p.card or {}
        which = "the server's default model" if user_model is None else "your model (only you see it)"
        lines = [
            f"**In use:** {which}: {model_label(p)}",
            f"- inference scales (shorter side, px): {list(p.infer.scales)}",
        ]
        for key in ("name", "preset", "data", "seed", "iters", "metrics", "command"):
            if key in card:
                lines.append(f"- {key}: `{card[key]}`")
        lines.append(
            "\nUpload `NAME.safetensors` with its `NAME.json` card (as written by `ifcn-viz train`). Weights are read "
            "with safetensors only: nothing in the file is executed. A file that does not fit its card is refused."
        )
        return "\n".join(lines)

    def _switch(self, new_model: Predictor | None, sess, top_n, thr, iou, scale, what: str) -> tuple:
        p = self.ctx.predictor_for(new_model)
        choices = [("all scales (proposals) / middle scale (maps)", -1), *cb.scale_choices(p)]
        scale_upd = gr.update(choices=choices, value=-1)
        info = self.model_markdown(new_model)
        if sess is None:
            return (f"{what}. Upload an image to explore it.", new_model, None, info, scale_upd, *[SKIP()] * 5)
        session = reopen(sess, p, model_label(p))
        views = cb.explore(session, int(top_n), float(thr), float(iou), -1)
        img = cb.display_image(session)
        return (f"{what}; maps recomputed for {session.name}.", new_model, session, info, scale_upd, img,
                views.mosaic, views.objectness, views.proposals, views.data)  # fmt: skip

    def _model_failed(self, err: BaseException, what: str) -> tuple:
        return (failed(err, what), *[SKIP()] * 9)

    def on_use_trained(self, trained, sess, top_n, thr, iou, scale) -> tuple:
        try:
            if trained is None:
                raise ValueError("no trained model yet: train one in the Train tab first")
            return self._switch(Predictor(trained), sess, top_n, thr, iou, scale, "Using the model you trained")
        except Exception as err:  # noqa: BLE001
            return self._model_failed(err, "Could not use the trained model")

    def on_use_shipped(self, sess, top_n, thr, iou, scale) -> tuple:
        try:
            return self._switch(None, sess, top_n, thr, iou, scale, "Using the server's default model")
        except Exception as err:  # noqa: BLE001
            return self._model_failed(err, "Could not switch models")

    def on_load_checkpoint(self, files, sess, top_n, thr, iou, scale) -> tuple:
        try:
            predictor = load_uploaded_checkpoint(files or [])
            return self._switch(predictor, sess, top_n, thr, iou, scale, "Using your checkpoint")
        except Exception as err:  # noqa: BLE001
            return self._model_failed(err, "Could not load the checkpoint")


def load_uploaded_checkpoint(files: list[str]) -> Predictor:
    """A Predictor from uploaded files: one ``.safetensors`` (or ``.pt``/``.pth``) and one ``.json`` card.

    Uploads land in separate folders, so both are copied under one stem before ``load_checkpoint`` reads them.
    Raises ``CheckpointError`` / ``ValueError`` with the reason.
    """
    paths = [Path(f) for f in files]
    weights = [p for p in paths if p.suffix.lower() in (".safetensors", ".pt", ".pth")]
    cards = [p for p in paths if p.suffix.lower() == ".json"]
    if len(weights) != 1 or len(cards) > 1:
        got = ", ".join(p.name for p in paths) or "nothing"
        raise ValueError(f"upload exactly one .safetensors (or .pt/.pth) file and its .json card; got {got}")
    if not cards and weights[0].suffix.lower() == ".safetensors":
        raise ValueError(f"{weights[0].name} needs its model card: upload the .json written beside it too")
    tmp = Path(tempfile.mkdtemp(prefix="ifcn_ckpt_"))
    try:
        target = tmp / f"uploaded{weights[0].suffix.lower()}"
        shutil.copyfile(weights[0], target)
        if cards:
            shutil.copyfile(cards[0], tmp / "uploaded.json")
        predictor = Predictor.from_checkpoint(target)
        card = predictor.card if predictor.card is not None else {}
        card.setdefault("name", f"uploaded: {weights[0].name}")
        predictor.card = card
        return predictor
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
