"""The Model tab: what the model in use is (architecture, scales, training, yardsticks), and switching it: a
shipped model, the server's default, or an uploaded checkpoint (``NAME.safetensors`` with its ``NAME.json`` card;
read with safetensors only)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from ifcn_viz.app.api import as_gr_error, model_description
from ifcn_viz.app.page import HEAVY_EVENT, Out, Tab, page_errors
from ifcn_viz.app.session import model_label
from ifcn_viz.app.uploads import upload_dir
from ifcn_viz.config import YARDSTICK_METRICS, YARDSTICKS
from ifcn_viz.inference.predictor import Predictor


def _file_names(files: Any, *_: Any) -> dict[str, str]:
    return {str(f): Path(f).name for f in files or []}


class ModelTab(Tab):
    id, title = "model", "Model"
    API = ("model_info",)

    def layout(self) -> None:
        from ifcn_viz.checkpoints import shipped_names

        names = shipped_names()
        self.md_info = gr.Markdown(self.model_markdown(None), elem_id="md_info")
        with gr.Row():
            self.md_choice = gr.Dropdown(names, value=names[0] if names else None,
                                         label="shipped models (ifcn_viz/weights; --checkpoint NAME)",
                                         elem_id="md_choice")  # fmt: skip
            self.md_use = gr.Button("Use this shipped model", elem_id="md_use")
        self.md_files = gr.File(label="Upload a checkpoint: NAME.safetensors and its NAME.json card",
                                file_count="multiple", type="filepath", elem_id="md_files")  # fmt: skip
        with gr.Row():
            self.md_load = gr.Button("Use the uploaded checkpoint", variant="primary", elem_id="md_load")
            self.md_shipped = gr.Button("Use the shipped model", elem_id="md_shipped")
        self.model_outputs = {self.md_info}

    def wire(self) -> None:
        page = self.page
        switched = page.model_outputs
        self.md_load.click(self.on_load_checkpoint, [self.md_files, page.sess, *page.params], switched, **HEAVY_EVENT)
        self.md_shipped.click(self.on_use_shipped, [page.sess, *page.params], switched, **HEAVY_EVENT)
        self.md_use.click(self.on_use_named, [self.md_choice, page.sess, *page.params], switched, **HEAVY_EVENT)

    def on_model(self, user_model: Predictor | None) -> Out:
        return {self.md_info: self.model_markdown(user_model)}

    def model_markdown(self, user_model: Predictor | None) -> str:
        p = self.ctx.predictor_for(user_model)
        if user_model is None:
            which = "the server's default model"
        elif self.ctx.is_shipped(user_model):
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
        for name, m in d.get("yardsticks", {}).items():
            parts = [f"{k} {m[k]:.2f}" for k in YARDSTICK_METRICS if k in m]
            lines.append(f"- on {YARDSTICKS[name][1] if name in YARDSTICKS else name}: " + ", ".join(parts))
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

    @page_errors("Could not switch models")
    def on_use_shipped(self, sess, top_n, thr, iou, scale) -> Out:
        return self.page.switch(None, sess, [top_n, thr, iou, scale], "Using the server's default model")

    @page_errors("Could not switch models")
    def on_use_named(self, name: str | None, sess, top_n, thr, iou, scale) -> Out:
        if not name:
            raise ValueError("choose a shipped model first")
        params = [top_n, thr, iou, scale]
        if name == getattr(self.ctx, "checkpoint", None):
            return self.page.switch(None, sess, params, "Using the server's default model")
        return self.page.switch(self.ctx.named(name), sess, params, f"Using the shipped model {name!r}")

    @page_errors("Could not load the checkpoint", names=_file_names)
    def on_load_checkpoint(self, files, sess, top_n, thr, iou, scale) -> Out:
        predictor = load_uploaded_checkpoint(files or [])
        return self.page.switch(predictor, sess, [top_n, thr, iou, scale], "Using your checkpoint")

    def register_api(self) -> None:
        """The API twin of the model's description."""
        ctx = self.ctx

        @as_gr_error
        def model_info() -> dict:
            """The server's default model: architecture, k, m, stride, scales, training data summary and metrics."""
            return {"label": ctx.label_for(None), **model_description(ctx.shared())}

        gr.api(model_info, api_name="model_info")


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
