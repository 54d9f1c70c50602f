"""Notebook widget helpers: every callback draws into its own figure and its own output, and shows that it works.

* :func:`new_figure` makes a ``matplotlib.figure.Figure`` that pyplot never sees (no current figure, no figure
  manager), so two callbacks -- or a callback and the cell running beside it -- cannot draw into each other's axes;
* :func:`show_in` renders figures to PNG, replaces an ``Output``'s content with them (``clear_output(wait=True)``,
  so the old picture stays until the new one is there) and drops the figures;
* :class:`Busy` is a progress bar and a status line for anything that makes the learner wait (a callback that
  recomputes, a short training run): ``busy.start(total, text)``, ``busy.step(i, text)``, ``busy.done(text)``; as a
  context manager it also disables the controls while the work runs;
* :class:`TrainingMonitor` follows a training run's ``metrics.jsonl`` while it grows (in a thread of this kernel or
  in another process) and draws the loss curves live.

Only ipywidgets, IPython and matplotlib's object API are used here; nothing is drawn with ``pyplot``.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


def new_figure(figsize: tuple[float, float] = (6.4, 4.0), **kwargs: Any) -> Figure:
    """A figure of its own (constrained layout unless ``layout`` is given), unknown to pyplot."""
    kwargs.setdefault("layout", "constrained")
    return Figure(figsize=figsize, **kwargs)


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (the Agg canvas; works for figures pyplot never saw)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def _displayable(item: Any) -> Any:
    from IPython.display import Image, Markdown

    if isinstance(item, Figure):
        return Image(data=figure_png(item))
    if isinstance(item, str):  # a caption: shown as text, not as a quoted repr
        return Markdown(item)
    return item


def show_in(out: Any, *items: Any) -> None:
    """Replace what ``out`` (an ``ipywidgets.Output``) shows by ``items`` -- figures (rendered to PNG here),
    Markdown / images / strings (shown as Markdown) -- and release the figures. ``out=None`` displays in the
    running cell instead."""
    from IPython.display import clear_output, display

    shown = [_displayable(item) for item in items if item is not None]
    for item in items:
        if isinstance(item, Figure):
            item.clear()
    if out is None:
        display(*shown)
        return
    with out:
        clear_output(wait=True)
        display(*shown)


class Busy:
    """A progress bar with a status line (``.widget``); ``with busy.running(controls):`` disables ``controls``
    while the body runs and says "done" (or the error) when it ends."""

    def __init__(self, description: str = "", width: str = "420px") -> None:
        from ipywidgets import HBox, IntProgress, Label, Layout

        self.bar = IntProgress(value=0, min=0, max=1, description=description, layout=Layout(width=width))
        self.label = Label(value="")
        self.widget = HBox([self.bar, self.label])
        self._t0 = time.perf_counter()

    @property
    def text(self) -> str:
        return self.label.value

    def start(self, total: int = 1, text: str = "working ...") -> None:
        self._t0 = time.perf_counter()
        self.bar.max, self.bar.value, self.bar.bar_style = max(1, int(total)), 0, "info"
        self.label.value = text

    def step(self, value: int, text: str | None = None) -> None:
        self.bar.value = min(int(value), self.bar.max)
        elapsed = time.perf_counter() - self._t0
        self.label.value = f"{text or ''} ({elapsed:.0f} s)".strip()

    def done(self, text: str = "done") -> None:
        self.bar.value, self.bar.bar_style = self.bar.max, "success"
        self.label.value = f"{text} ({time.perf_counter() - self._t0:.1f} s)"

    def failed(self, err: BaseException) -> None:
        self.bar.bar_style = "danger"
        self.label.value = f"failed: {type(err).__name__}: {err}"

    def running(self, controls: Iterable[Any] = (), total: int = 1, text: str = "working ...") -> _Running:
        return _Running(self, list(controls), total, text)


class _Running:
    def __init__(self, busy: Busy, controls: list[Any], total: int, text: str) -> None:
        self.busy, self.controls, self.total, self.text = busy, controls, total, text

    def __enter__(self) -> Busy:
        for c in self.controls:
            c.disabled = True
        self.busy.start(self.total, self.text)
        return self.busy

    def __exit__(self, kind, err, tb) -> bool:
        for c in self.controls:
            c.disabled = False
        if err is not None:
            self.busy.failed(err)
        elif self.busy.bar.bar_style != "success":
            self.busy.done()
        return False


def read_metrics(path: str | Path) -> list[dict]:
    """The complete lines of a ``metrics.jsonl`` so far (a line being written is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def loss_figure(
    rows: Sequence[dict], keys: Sequence[str], total: int | None = None, title: str = "", figsize=(7.5, 2.8)
) -> Figure:
    """Loss curves from metrics rows (``step`` and each of ``keys``) on a figure of their own."""
    fig = new_figure(figsize)
    ax = fig.add_subplot()
    steps = [r["step"] for r in rows]
    for key in keys:
        ys = [r.get(key, float("nan")) for r in rows]
        ax.plot(steps, ys, marker="." if len(steps) < 30 else None, label=key.replace("_", " "))
    if total:
        ax.set_xlim(0, total)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if steps:
        ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title or (f"step {steps[-1]} of {total}" if steps and total else "waiting for the first step"),
                 fontsize=10)  # fmt: skip
    return fig


class TrainingMonitor:
    """A bar, a status line and a live loss curve for a run writing ``metrics.jsonl``; ``.widget`` to display.

    ``follow(path, running)`` polls the file until ``running()`` is false (a thread or a process doing the
    training), redrawing the curve at most every ``redraw_s`` seconds; the last state is drawn at the end."""

    def __init__(self, total: int, keys: Sequence[str] = ("loss",), description: str = "training",
                 redraw_s: float = 2.0) -> None:  # fmt: skip
        from ipywidgets import Output, VBox

        self.total, self.keys, self.redraw_s = int(total), tuple(keys), redraw_s
        self.busy = Busy(description)
        self.out = Output()
        self.widget = VBox([self.busy.widget, self.out])
        self.rows: list[dict] = []
        self._status = "starting ..."

    def update(self, rows: list[dict], final: bool = False) -> None:
        self.rows = rows
        step = rows[-1]["step"] if rows else 0
        last = ", ".join(f"{k.replace('_', ' ')} {rows[-1][k]:.3f}" for k in self.keys if rows and k in rows[-1])
        self._status = f"step {step} / {self.total}" + (f": {last}" if last else "")
        self.busy.step(step, self._status)
        show_in(self.out, loss_figure(rows, self.keys, self.total))
        if final:
            self.busy.done(f"{step} steps" + (f": {last}" if last else ""))

    def follow(self, path: str | Path, running: Callable[[], bool], poll_s: float = 0.5) -> list[dict]:
        self.busy.start(self.total, "starting ...")
        drawn, last_draw = -1, 0.0
        while running():
            time.sleep(poll_s)
            rows = read_metrics(path)
            now = time.perf_counter()
            if rows and len(rows) != drawn and now - last_draw >= self.redraw_s:
                self.update(rows)
                drawn, last_draw = len(rows), now
            else:  # the clock in the status line moves even between logged steps
                step = rows[-1]["step"] if rows else 0
                self.busy.step(step, self._status)
        rows = read_metrics(path)
        self.update(rows, final=True)
        return rows

    def run_in_thread(self, fn: Callable[[], Any], path: str | Path, poll_s: float = 0.5) -> Any:
        """Run ``fn()`` (e.g. a ``train(cfg)``) in a thread while following ``path``; its result (or error)."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = fn()
            except BaseException as err:  # re-raised in the caller's thread
                box["error"] = err

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        try:
            self.follow(path, thread.is_alive, poll_s)
        finally:
            thread.join()
        if "error" in box:
            self.busy.failed(box["error"])
            raise box["error"]
        return box.get("result")


__all__ = ["Busy", "TrainingMonitor", "figure_png", "loss_figure", "new_figure", "read_metrics", "show_in"]
