"""The InstanceFCN model: backbones, the two branches, and the parameter-free assembler."""

from ifcn_viz.model.assemble import (
    OUTSIDE_LOGIT,
    Assembler,
    assemble_at,
    assemble_dense,
    assemble_dense_conv,
    bin_edges,
    bin_index,
    cell_to_map_index,
    iter_assemble_dense,
)
from ifcn_viz.model.backbones import BACKBONES, build_backbone
from ifcn_viz.model.instance_fcn import InstanceFCN, InstanceFCNOutput, build_model

__all__ = [
    "BACKBONES",
    "OUTSIDE_LOGIT",
    "Assembler",
    "InstanceFCN",
    "InstanceFCNOutput",
    "assemble_at",
    "assemble_dense",
    "assemble_dense_conv",
    "bin_edges",
    "bin_index",
    "build_backbone",
    "build_model",
    "cell_to_map_index",
    "iter_assemble_dense",
]
