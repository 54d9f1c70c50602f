"""The explorer app (Gradio): ``build_demo(predictor) -> gr.Blocks``; Gradio is imported on first use only,
so ``ifcn-viz --help`` (which imports ``ifcn_viz.app.commands``) stays fast."""

from __future__ import annotations

from typing import Any

__all__ = ["build_demo", "launch"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ifcn_viz.app import demo

        return getattr(demo, name)
    raise AttributeError(f"module 'ifcn_viz.app' has no attribute {name!r}")
