"""ifcn_viz.viz: pure drawing of InstanceFCN's intermediates.

Every view is a pure function returning an RGB ``uint8`` array ``(H, W, 3)`` (the app shows it as PNG; arrays
index ``[y, x]``, clicks arrive as ``(x, y)``); ``ifcn_viz.viz.figures`` draws the same views on a matplotlib
``ax`` for notebooks.  Inputs are the Predictor's dataclasses (``ifcn_viz.inference.types``) or plain tensors /
arrays; viz uses only the model's pure helpers (assembling, geometry, ideal maps) and the model never imports viz.
"""

from ifcn_viz.model.ideal import IdealMaps, ideal_score_maps
from ifcn_viz.viz.animate import assembly_frames, slide_frames
from ifcn_viz.viz.ideal import IdealReassembly, ideal_reassembly, mask_iou
from ifcn_viz.viz.maps import (
    MosaicLayout,
    ideal_vs_learned,
    k_comparison,
    mosaic_layout,
    objectness_overlay,
    score_map_mosaic,
    top_windows,
)
from ifcn_viz.viz.palette import (
    LOGIT_CMAP,
    MAP_PALETTE,
    PROB_CMAP,
    RANK_PALETTE,
    apply_colormap,
    colorbar,
    colormap_lut,
    map_color,
    rank_color,
    save_gif,
    save_png,
    to_png_bytes,
    to_rgb_uint8,
)
from ifcn_viz.viz.proposals import nms_step_frames, nms_steps_view, proposals_view
from ifcn_viz.viz.provenance import channel_grid, provenance_view
from ifcn_viz.viz.receptive import (
    ReceptiveField,
    effective_extent,
    effective_receptive_field,
    receptive_field_view,
    score_map_layers,
    theoretical_receptive_field,
)
from ifcn_viz.viz.targets import training_targets_view
from ifcn_viz.viz.window import (
    SubWindow,
    assembled_mask_view,
    pasted_mask_view,
    subwindow_layout,
    window_grid_lines,
    window_on_image,
    window_view,
)

__all__ = [
    "LOGIT_CMAP",
    "MAP_PALETTE",
    "PROB_CMAP",
    "RANK_PALETTE",
    "IdealMaps",
    "IdealReassembly",
    "MosaicLayout",
    "ReceptiveField",
    "SubWindow",
    "apply_colormap",
    "assembled_mask_view",
    "assembly_frames",
    "channel_grid",
    "colorbar",
    "colormap_lut",
    "effective_extent",
    "effective_receptive_field",
    "ideal_reassembly",
    "ideal_score_maps",
    "ideal_vs_learned",
    "k_comparison",
    "map_color",
    "mask_iou",
    "mosaic_layout",
    "nms_step_frames",
    "nms_steps_view",
    "objectness_overlay",
    "pasted_mask_view",
    "proposals_view",
    "provenance_view",
    "rank_color",
    "receptive_field_view",
    "save_gif",
    "save_png",
    "score_map_layers",
    "score_map_mosaic",
    "slide_frames",
    "subwindow_layout",
    "theoretical_receptive_field",
    "to_png_bytes",
    "to_rgb_uint8",
    "top_windows",
    "training_targets_view",
    "window_grid_lines",
    "window_on_image",
    "window_view",
]
