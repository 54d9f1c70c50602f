"""ifcn_viz.viz: pure drawing of InstanceFCN's intermediates.

Every view is a pure function returning an RGB ``uint8`` array ``(H, W, 3)`` (the app shows it as PNG; arrays
index ``[y, x]``, clicks arrive as ``(x, y)``); ``ifcn_viz.viz.figures`` draws the same views on a matplotlib
``ax`` for notebooks.  Inputs are the Predictor's dataclasses (``ifcn_viz.inference.types``) or plain tensors /
arrays; viz uses only the model's pure helpers (assembling, geometry, ideal maps) and the model never imports viz.

Names load lazily (PEP 562), so that ``ifcn-viz --help`` (which imports the ``commands`` module here) does not
import torch.
"""

from __future__ import annotations

from ifcn_viz._lazy import lazy_exports

_NAMES = {
    "IdealMaps": "ifcn_viz.model.ideal",
    "ideal_score_maps": "ifcn_viz.model.ideal",
    "assembly_frames": "ifcn_viz.viz.animate",
    "slide_frames": "ifcn_viz.viz.animate",
    "IdealReassembly": "ifcn_viz.viz.ideal",
    "ideal_reassembly": "ifcn_viz.viz.ideal",
    "mask_iou": "ifcn_viz.viz.ideal",
    "MosaicLayout": "ifcn_viz.viz.maps",
    "ideal_vs_learned": "ifcn_viz.viz.maps",
    "k_comparison": "ifcn_viz.viz.maps",
    "mosaic_layout": "ifcn_viz.viz.maps",
    "objectness_overlay": "ifcn_viz.viz.maps",
    "score_map_mosaic": "ifcn_viz.viz.maps",
    "top_windows": "ifcn_viz.viz.maps",
    "LOGIT_CMAP": "ifcn_viz.viz.palette",
    "MAP_PALETTE": "ifcn_viz.viz.palette",
    "PROB_CMAP": "ifcn_viz.viz.palette",
    "RANK_PALETTE": "ifcn_viz.viz.palette",
    "apply_colormap": "ifcn_viz.viz.palette",
    "colorbar": "ifcn_viz.viz.palette",
    "colormap_lut": "ifcn_viz.viz.palette",
    "map_color": "ifcn_viz.viz.palette",
    "rank_color": "ifcn_viz.viz.palette",
    "save_gif": "ifcn_viz.viz.palette",
    "save_png": "ifcn_viz.viz.palette",
    "to_png_bytes": "ifcn_viz.viz.palette",
    "to_rgb_uint8": "ifcn_viz.viz.palette",
    "nms_step_frames": "ifcn_viz.viz.proposals",
    "nms_steps_view": "ifcn_viz.viz.proposals",
    "proposals_view": "ifcn_viz.viz.proposals",
    "channel_grid": "ifcn_viz.viz.provenance",
    "provenance_view": "ifcn_viz.viz.provenance",
    "ReceptiveField": "ifcn_viz.viz.receptive",
    "effective_extent": "ifcn_viz.viz.receptive",
    "effective_receptive_field": "ifcn_viz.viz.receptive",
    "receptive_field_view": "ifcn_viz.viz.receptive",
    "score_map_layers": "ifcn_viz.viz.receptive",
    "theoretical_receptive_field": "ifcn_viz.viz.receptive",
    "training_targets_view": "ifcn_viz.viz.targets",
    "SubWindow": "ifcn_viz.viz.window",
    "assembled_mask_view": "ifcn_viz.viz.window",
    "pasted_mask_view": "ifcn_viz.viz.window",
    "subwindow_layout": "ifcn_viz.viz.window",
    "window_grid_lines": "ifcn_viz.viz.window",
    "window_on_image": "ifcn_viz.viz.window",
    "window_view": "ifcn_viz.viz.window",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
