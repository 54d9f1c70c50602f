"""The page's tabs, one module each (components, handlers and wiring together), in the order they are shown.

A new tab is one module with a :class:`~ifcn_viz.app.page.Tab` subclass and one line in :data:`TABS`.  Tab modules
import nothing from each other: what they share is :class:`~ifcn_viz.app.page.Page` (tests/test_import_graph.py).
"""

from __future__ import annotations

from ifcn_viz.app.tabs.about import AboutTab
from ifcn_viz.app.tabs.assemble import AssembleTab
from ifcn_viz.app.tabs.compare import CompareTab
from ifcn_viz.app.tabs.draw import DrawTab
from ifcn_viz.app.tabs.explore import ExploreTab
from ifcn_viz.app.tabs.inspect import InspectTab
from ifcn_viz.app.tabs.model import ModelTab
from ifcn_viz.app.tabs.provenance import ProvenanceTab
from ifcn_viz.app.tabs.train import TrainTab
from ifcn_viz.app.tabs.window import WindowTab

TABS = (
    ExploreTab,
    AssembleTab,
    ProvenanceTab,
    WindowTab,
    DrawTab,
    InspectTab,
    CompareTab,
    TrainTab,
    ModelTab,
    AboutTab,
)

API_NAMES: tuple[str, ...] = tuple(name for tab in TABS for name in tab.API)
"""The API's endpoint names: each tab's twins."""
