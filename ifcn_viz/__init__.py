"""ifcn_viz: see, click and train InstanceFCN (Dai, He, Li, Ren, Sun, "Instance-sensitive Fully
Convolutional Networks", ECCV 2016).

Public names only.  ``import ifcn_viz`` is light: the configuration is plain Python, and the names that need
torch (``Predictor``, ``build_model``, ``load_checkpoint``, ...) load on first use (PEP 562)::

    from ifcn_viz import Predictor
    predictor = Predictor.from_checkpoint("shipped")
"""

from __future__ import annotations

from ifcn_viz._lazy import lazy_exports
from ifcn_viz.config import HEADS, PRESETS, InferConfig, ModelConfig, get_preset

__version__ = "0.1.0"

_LAZY = {
    "InstanceFCN": "ifcn_viz.model.instance_fcn",
    "InstanceFCNOutput": "ifcn_viz.model.instance_fcn",
    "build_model": "ifcn_viz.model.build",
    "Predictor": "ifcn_viz.inference.predictor",
    "load_checkpoint": "ifcn_viz.checkpoints",
    "save_checkpoint": "ifcn_viz.checkpoints",
    "CheckpointError": "ifcn_viz.checkpoints",
}

__all__ = [
    "HEADS",
    "PRESETS",
    "CheckpointError",
    "InferConfig",
    "InstanceFCN",
    "InstanceFCNOutput",
    "ModelConfig",
    "Predictor",
    "__version__",
    "build_model",
    "get_preset",
    "load_checkpoint",
    "save_checkpoint",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
