"""The InstanceFCN model: backbones, the two branches, and the parameter-free assembler.

Names load lazily (PEP 562): importing the package, or its pure-Python ``geometry`` module, does not import torch.
"""

from __future__ import annotations

from ifcn_viz._lazy import lazy_exports

_NAMES = {
    "OUTSIDE_LOGIT": "assemble",
    "Assembler": "assemble",
    "assemble_at": "assemble",
    "assemble_dense": "assemble",
    "assemble_dense_conv": "assemble",
    "bin_edges": "assemble",
    "bin_index": "assemble",
    "cell_to_map_index": "assemble",
    "iter_assemble_dense": "assemble",
    "BACKBONES": "backbones",
    "BackboneSpec": "backbones",
    "build_backbone": "backbones",
    "register_backbone": "backbones",
    "InstanceFCN": "instance_fcn",
    "InstanceFCNOutput": "instance_fcn",
    "build_model": "build",
    "HEAD_CLASSES": "heads",
    "register_head": "heads",
    "FCBaselineModel": "fc_baseline",
    "LearnedAssembler": "learned_assembler",
    "LearnedAssemblerModel": "learned_assembler",
    "onehot_assembler_weight": "learned_assembler",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
