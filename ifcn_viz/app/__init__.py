"""The explorer app (Gradio).  One role per module:

* ``views``     -- the views as pure functions (no Gradio): session + parameters in, pictures and dicts out;
* ``session``   -- per-user state: an image session over the shared model, and the API session store;
* ``layout``    -- the page's components by name (:class:`~ifcn_viz.app.layout.Page`), one function per tab;
* ``handlers``  -- the Gradio adapter: event handlers returning ``{component: value}``;
* ``api``       -- the ``gr.api`` adapter: named endpoints for ``gradio_client``;
* ``errors``    -- the one error -> message rule of the page and the API;
* ``uploads``   -- API image arguments, upload descriptions, this run's upload folder;
* ``server``    -- what the server shares, its limits, address and ``launch``;
* ``demo``      -- ``build_demo(predictor) -> gr.Blocks``: layout + wiring + API;
* ``commands``  -- ``ifcn-viz app``; ``live_train`` -- the Train tab's step-by-step training.

Gradio is imported on first use only, so ``ifcn-viz --help`` (which imports ``ifcn_viz.app.commands``) stays fast.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_demo", "launch"]
_HOME = {"build_demo": "ifcn_viz.app.demo", "launch": "ifcn_viz.app.server"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'ifcn_viz.app' has no attribute {name!r}")
