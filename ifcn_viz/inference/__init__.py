"""Inference: the Predictor (maps cached per image), proposals, windows, provenance, and their post-processing."""

from ifcn_viz.inference.postprocess import nms_with_trace, paste_window_probs, window_mask_boxes
from ifcn_viz.inference.predictor import Predictor, default_infer_config
from ifcn_viz.inference.types import NMSStep, Proposals, Provenance, ProvenanceEntry, ScaleMaps, WindowResult

__all__ = [
    "NMSStep",
    "Predictor",
    "Proposals",
    "Provenance",
    "ProvenanceEntry",
    "ScaleMaps",
    "WindowResult",
    "default_infer_config",
    "nms_with_trace",
    "paste_window_probs",
    "window_mask_boxes",
]
