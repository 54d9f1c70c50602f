"""What the tabs share: :class:`Page` (the per-user state, the status line, the Explore parameters every tab reads),
:class:`Tab` (the base of every tab module in :mod:`ifcn_viz.app.tabs`), the event settings, the picture helpers
and :func:`page_errors`.

A tab owns its components, its handlers and its wiring.  It declares the components an image change refreshes
(:attr:`Tab.image_outputs`, filled by :meth:`Tab.on_image`) and those a model change refreshes
(:attr:`Tab.model_outputs`, :meth:`Tab.on_model`); :meth:`Page.open` and :meth:`Page.switch` gather them over every
tab, so a handler that opens an image or switches models never lists another tab's components.  A handler returns
``{component: value}`` for what it changes (Gradio's dict-return idiom; a component left out keeps its value).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import gradio as gr

from ifcn_viz.app import views
from ifcn_viz.app.errors import guarded, user_message
from ifcn_viz.app.session import ImageSession, model_label, reopen
from ifcn_viz.inference.predictor import Predictor

Out = dict[Any, Any]
Component = gr.components.Component

HEAVY = "ifcn-backbone"
"""Concurrency group of the events that run the backbone (uploads, examples, compare, model loads; page and API)."""
HEAVY_EVENT = {"concurrency_id": HEAVY, "api_visibility": "undocumented"}
"""Events that run the backbone share one concurrency group; the page's own events are undocumented in the API
(clients use the ``gr.api`` twins)."""
UI_EVENT = {"api_visibility": "undocumented"}

CSS = """
#status {min-height: 2.5em}
.ifcn-note {font-size: 0.92em; opacity: 0.85}
"""
"""The page's style (``launch`` passes it to Gradio)."""

ALL_SCALES = ("all scales (proposals) / middle scale (maps)", -1)


def scale_dropdown_choices(predictor: Any, session: ImageSession | None = None) -> list[tuple[str, int]]:
    return [ALL_SCALES, *views.scale_choices(predictor, session)]


def failed(err: BaseException, what: str, names: dict[str, str] | None = None) -> str:
    """The status line (and a toast) for ``err`` while doing ``what``."""
    msg = user_message(err, names)
    gr.Warning(f"{what}: {msg}")
    return f"**{what}:** {msg}"


def page_errors(
    what: str, into: str = "status", names: Callable[..., dict[str, str]] | None = None
) -> Callable[[Callable], Callable]:
    """A tab handler's one error boundary (the API's is :func:`ifcn_viz.app.api.as_gr_error`; both are
    :func:`ifcn_viz.app.errors.guarded`): any error becomes ``{<into>: "**what:** line"}`` and a toast, with the
    line of :func:`ifcn_viz.app.errors.user_message`.  ``into`` names the tab's (or the page's) component that shows
    it; ``names(*args)`` maps the server paths among the handler's arguments to the user's file names."""

    def show(err: BaseException, args: tuple, kwargs: dict) -> Out:
        tab = args[0]
        target = getattr(tab, into, None)
        if target is None:
            target = getattr(tab.page, into)
        return {target: failed(err, what, names(*args[1:]) if names else None)}

    return guarded(show)


class Page:
    """The per-user state and the components more than one tab uses (created by :meth:`header` and the Explore
    tab), and the tabs themselves."""

    sess: gr.State  # ImageSession | None: this user's image and its maps
    user_model: gr.State  # Predictor | None: this user's model (None = the server's default)
    trained: gr.State  # nn.Module | None: the model this user just trained (Train tab)
    status: gr.Markdown
    # the Explore parameters, read by every tab that computes proposals (created by the Explore tab)
    top_n: gr.Slider
    thr: gr.Slider
    iou: gr.Slider
    scale: gr.Dropdown

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx  # the demo's ifcn_viz.app.server.AppContext (not imported: server.launch reads CSS here)
        self.tabs: list[Tab] = []

    @property
    def params(self) -> list[Component]:
        """The Explore parameters, in the order the handlers take them: top_n, thr, iou, scale."""
        return [self.top_n, self.thr, self.iou, self.scale]

    def nothing(self) -> Out:
        """No change: ``{}`` would be read as one output value, so the status line is skipped explicitly."""
        return {self.status: gr.skip()}

    def header(self, model_label: str) -> None:
        self.sess, self.user_model, self.trained = (gr.State(None) for _ in range(3))
        gr.Markdown(
            "# InstanceFCN explorer\n"
            "Instance-sensitive fully convolutional networks (Dai, He, Li, Ren, Sun, ECCV 2016): upload an image, "
            "see the k x k score maps, click anywhere to assemble the window there. "
            f"Model: **{model_label}**."
        )
        self.status = gr.Markdown("Upload an image or pick an example to begin.", elem_id="status")

    # ---------------------------------------------------------------------------------- what tabs declare

    @property
    def image_outputs(self) -> set[Component]:
        """What opening an image (upload, example, new model) may change: the session, the status line and what
        each tab declares."""
        return {self.sess, self.status}.union(*(t.image_outputs for t in self.tabs))

    @property
    def model_outputs(self) -> set[Component]:
        """What switching models may change: the model state, and what an image change and each tab declare."""
        return {self.user_model, *self.image_outputs}.union(*(t.model_outputs for t in self.tabs))

    def open(self, session: ImageSession, params: Iterable[Any]) -> Out:
        """Every tab's views of a newly opened image; ``params``: top_n, thr, iou, scale."""
        out: Out = {self.sess: session}
        for tab in self.tabs:
            out.update(tab.on_image(session, *params))
        return out

    def switch(self, new_model: Predictor | None, sess: ImageSession | None, params: list[Any], what: str) -> Out:
        """Use ``new_model`` (None: the server's default) for this user: every tab's model views, and the current
        image reopened under it (one backbone run)."""
        p = self.ctx.predictor_for(new_model)
        out: Out = {self.user_model: new_model}
        for tab in self.tabs:
            out.update(tab.on_model(new_model))
        if sess is None:
            return {**out, self.sess: None, self.status: f"{what}. Upload an image to explore it."}
        session = reopen(sess, p, model_label(p))
        top_n, thr, iou, _ = params
        return {**out, **self.open(session, (top_n, thr, iou, -1)),
                self.status: f"{what}; maps recomputed for {session.name}."}  # fmt: skip


class Tab:
    """One tab of the page: ``layout`` creates its components (inside its ``gr.Tab``), ``wire`` connects their
    events to its handlers.  Subclasses set :attr:`id` and :attr:`title`."""

    id: str = ""
    title: str = ""
    API: tuple[str, ...] = ()  # the gr.api endpoints register_api defines (their names are the API's)
    image_outputs: set[Component] = set()  # what on_image returns (set in layout)
    model_outputs: set[Component] = set()  # what on_model returns (set in layout)

    def __init__(self, page: Page) -> None:
        self.page = page

    @property
    def ctx(self) -> Any:
        """The demo's :class:`~ifcn_viz.app.server.AppContext`."""
        return self.page.ctx

    def layout(self) -> None:
        raise NotImplementedError

    def wire(self) -> None:
        """Connect the tab's events (after every tab's layout, so the page's shared components all exist)."""

    def register_api(self) -> None:
        """Define the tab's ``gr.api`` twins (named in :attr:`API`) inside the current ``gr.Blocks``."""

    def on_image(self, session: ImageSession, top_n: Any, thr: Any, iou: Any, scale: Any) -> Out:
        """The tab's views of a newly opened image (only :attr:`image_outputs`)."""
        return {}

    def on_model(self, user_model: Predictor | None) -> Out:
        """The tab's views of a newly chosen model (only :attr:`model_outputs`)."""
        return {}


def picture(label: str, elem_id: str, **kw: Any) -> gr.Image:
    """An output picture: PNG (maps must not be lossy), no upload, download button."""
    return gr.Image(label=label, elem_id=elem_id, format="png", type="numpy", interactive=False,
                    buttons=["download", "fullscreen"], **kw)  # fmt: skip


def titled(label: str, elem_id: str, **kw: Any) -> gr.Image:
    """An output picture that draws its own title: no floating label over it (it would hide the title)."""
    return picture(label, elem_id, show_label=False, **kw)


def note(text: str) -> gr.Markdown:
    return gr.Markdown(text, elem_classes="ifcn-note")


def click_xy(sess: ImageSession | None, evt: gr.SelectData) -> tuple[float, float]:
    """A click on a displayed image of the session -> original pixel (x, y)."""
    if sess is None:
        raise ValueError("upload an image or pick an example first")
    if not isinstance(evt.index, (list, tuple)) or len(evt.index) != 2:
        raise ValueError(f"a click gives (x, y), got {evt.index!r}")
    return views.display_to_original(sess, float(evt.index[0]), float(evt.index[1]))  # evt.index is (x, y)
