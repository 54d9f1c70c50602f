"""Inference: the Predictor (maps cached per image), proposals, windows, provenance, and their post-processing.

Names load lazily (PEP 562), so that ``ifcn-viz --help`` (which imports the ``commands`` module here) does not
import torch.
"""

from __future__ import annotations

from ifcn_viz._lazy import lazy_exports

_NAMES = {
    "nms_with_trace": "ifcn_viz.inference.postprocess",
    "paste_window_probs": "ifcn_viz.inference.postprocess",
    "window_mask_boxes": "ifcn_viz.inference.postprocess",
    "Predictor": "ifcn_viz.inference.predictor",
    "default_infer_config": "ifcn_viz.inference.predictor",
    "Funnel": "ifcn_viz.inference.funnel",
    "proposal_funnel": "ifcn_viz.inference.funnel",
    "Candidates": "ifcn_viz.inference.types",
    "NMSStep": "ifcn_viz.inference.types",
    "Proposals": "ifcn_viz.inference.types",
    "Provenance": "ifcn_viz.inference.types",
    "ProvenanceEntry": "ifcn_viz.inference.types",
    "ScaleMaps": "ifcn_viz.inference.types",
    "WindowResult": "ifcn_viz.inference.types",
    "PyramidLevel": "ifcn_viz.inference.pyramid",
    "adaptive_shorter_sides": "ifcn_viz.inference.pyramid",
    "WindowGrid": "ifcn_viz.inference.window",
    "paste_window": "ifcn_viz.inference.window",
    "window_mask": "ifcn_viz.inference.window",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
