"""ifcn_viz: see, click and train InstanceFCN (Dai, He, Li, Ren, Sun, "Instance-sensitive Fully
Convolutional Networks", ECCV 2016).  Public names only; heavy submodules load on first use."""

from ifcn_viz.config import PRESETS, InferConfig, ModelConfig, get_preset
from ifcn_viz.model import InstanceFCN, InstanceFCNOutput, build_model

__version__ = "0.1.0"

__all__ = ["PRESETS", "InferConfig", "InstanceFCN", "InstanceFCNOutput", "ModelConfig", "build_model", "get_preset"]
