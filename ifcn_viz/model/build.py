"""``build_model``: the one place a model is chosen by its config's head (the registry is in ``model/heads.py``).

Importing this module imports every head's module, so each has registered its class; the head modules import
nothing of each other but the paper's :class:`~ifcn_viz.model.instance_fcn.InstanceFCN` they extend.
"""

from __future__ import annotations

from ifcn_viz.config import ASSEMBLER_INITS, ModelConfig, get_preset
from ifcn_viz.model import fc_baseline, instance_fcn, learned_assembler  # noqa: F401  (each registers its head)
from ifcn_viz.model.heads import HEAD_CLASSES
from ifcn_viz.model.instance_fcn import InstanceFCN


def build_model(config: ModelConfig | str | None = None, *, assembler_init: str = "onehot") -> InstanceFCN:
    """Build the model a :class:`ModelConfig` (or a preset name: paper, resnet50, tiny) describes, with its head:
    the class registered under ``config.head`` (``ifcn_viz.config.HEADS``): ``"ifcn"`` -> :class:`InstanceFCN`,
    ``"fc"`` -> the ablation's :class:`~ifcn_viz.model.fc_baseline.FCBaselineModel`, ``"learned"`` ->
    :class:`~ifcn_viz.model.learned_assembler.LearnedAssemblerModel` (``assembler_init``: how its assembler
    starts, one of ``ASSEMBLER_INITS``; the other heads have nothing to initialise that way)."""
    if isinstance(config, str):
        config = get_preset(config).model
    config = config or ModelConfig()
    if assembler_init not in ASSEMBLER_INITS:
        raise ValueError(f"assembler init must be one of {', '.join(ASSEMBLER_INITS)}, got {assembler_init!r}")
    return HEAD_CLASSES[config.head].build(config, assembler_init)
