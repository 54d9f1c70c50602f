"""The explorer: ``build_demo(predictor) -> gr.Blocks`` (the tabs of :data:`ifcn_viz.app.tabs.TABS`: Explore,
Assemble, Provenance, Draw, Inspect, Compare, Train, Model, About), and :func:`launch` to serve it.

``build_demo`` lays out the page's header and each tab, then lets each tab wire its events (every tab's layout
first, so the components tabs share all exist) and register its API twins.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from ifcn_viz.app.page import Page
from ifcn_viz.app.server import DEFAULT_MAX_FILE_SIZE, AppContext, launch  # noqa: F401 (launch re-exported)
from ifcn_viz.app.tabs import TABS
from ifcn_viz.app.tabs.about import ABOUT  # noqa: F401 (re-exported for tests)
from ifcn_viz.app.uploads import claim_upload_dir
from ifcn_viz.inference.predictor import Predictor


def build_demo(
    predictor: Predictor | None = None,
    checkpoint: str | Path = "shipped",
    max_file_size: str | int = DEFAULT_MAX_FILE_SIZE,
) -> gr.Blocks:
    """The whole app.  ``predictor``: the default model for every user (``None``: load ``checkpoint``).

    Claims this process's upload folder first (stale uploads of earlier runs are removed).  Serve it with
    :func:`launch` (or ``demo.queue(...).launch(...)`` yourself).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    claim_upload_dir()
    ctx = AppContext(predictor, checkpoint, max_file_size)
    ctx.shared()  # load now: a missing or broken checkpoint fails at start, not at the first click
    page = Page(ctx)
    page.tabs = [tab(page) for tab in TABS]

    with gr.Blocks(title="InstanceFCN explorer", delete_cache=(900, 3600)) as demo:
        page.header(ctx.label_for(None))
        with gr.Tabs():
            for tab in page.tabs:
                with gr.Tab(tab.title, id=tab.id):
                    tab.layout()
        for tab in page.tabs:
            tab.wire()
            tab.register_api()

    demo.ctx = ctx  # type: ignore[attr-defined]  # for tests and launch()
    demo.page = page  # type: ignore[attr-defined]
    demo.tabs = {tab.id: tab for tab in page.tabs}  # type: ignore[attr-defined]
    return demo
