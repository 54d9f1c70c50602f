"""The explorer app (Gradio).  One role per module:

* ``tabs/``     -- one module per tab (Explore, Assemble, Provenance, Draw, Inspect, Compare, Train, Model, About):
  its components, its handlers, its wiring and its ``gr.api`` twins; ``tabs/__init__.py`` lists them (``TABS``);
* ``page``      -- what the tabs share: ``Page`` (per-user state, status line, the Explore parameters), ``Tab``,
  the event settings, the picture helpers and ``page_errors``;
* ``views``     -- the views as pure functions (no Gradio): session + parameters in, pictures and dicts out;
  ``instance_views`` -- the same for known instances (the Draw tab's ideal maps, the Inspect tab's funnel);
* ``session``   -- per-user state: an image's maps over the shared model, and the API session store;
* ``api``       -- what the API twins share: ``as_gr_error``, ``png_b64``, ``model_description``;
* ``errors``    -- the one error -> message rule and the one error boundary (``guarded``) of the page and the API;
* ``uploads``   -- API image arguments, upload descriptions, this run's upload folder;
* ``server``    -- what the server shares, its limits, address and ``launch``;
* ``demo``      -- ``build_demo(predictor) -> gr.Blocks``: the header, every tab's layout, wiring and API;
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
