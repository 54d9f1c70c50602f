"""The About tab: the paper in a page (``app/about.md``)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ifcn_viz.app.page import Tab

ABOUT = Path(__file__).parents[1] / "about.md"


class AboutTab(Tab):
    id, title = "about", "About"

    def layout(self) -> None:
        gr.Markdown(ABOUT.read_text(encoding="utf-8"), latex_delimiters=[{"left": "$", "right": "$", "display": False}])
