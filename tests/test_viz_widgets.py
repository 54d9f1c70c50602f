"""ifcn_viz.viz.widgets: figures pyplot never sees, rendered to non-blank PNGs; a progress line that moves; a
training monitor that follows a growing metrics.jsonl."""

from __future__ import annotations

import io
import json
import time

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from ifcn_viz.viz.widgets import Busy, TrainingMonitor, figure_png, loss_figure, new_figure, read_metrics, show_in


def _ink(png: bytes) -> float:
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return float((img.min(axis=2) < 235).mean())


def test_new_figure_is_not_pyplots_and_renders():
    before = plt.get_fignums()
    fig = new_figure((4, 3))
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [2, 0, 1])
    ax.set_title("a line")
    assert plt.get_fignums() == before  # pyplot's current figure is untouched
    png = figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and _ink(png) > 0.005


def test_show_in_releases_figures():
    from ipywidgets import Output

    fig = new_figure((3, 2))
    fig.add_subplot().plot([0, 1], [0, 1])
    show_in(Output(), fig, "caption")  # no kernel: the Output is a plain context, nothing raises
    assert fig.axes == []  # the figure was cleared once rendered


def test_read_metrics_skips_a_line_being_written(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert read_metrics(path) == []
    path.write_text(json.dumps({"step": 1, "loss": 1.0}) + "\n" + '{"step": 2, "lo')
    assert read_metrics(path) == [{"step": 1, "loss": 1.0}]
    png = figure_png(loss_figure(read_metrics(path), ["loss"], total=10))
    assert _ink(png) > 0.005


def test_busy_moves_and_says_done():
    busy = Busy("work")
    with busy.running(total=4, text="go") as b:
        b.step(2, "half")
        assert busy.bar.value == 2 and busy.text.startswith("half (")
    assert busy.bar.value == 4 and busy.bar.bar_style == "success" and busy.text.startswith("done")
    with pytest.raises(ValueError), busy.running(total=2):
        raise ValueError("boom")
    assert busy.bar.bar_style == "danger" and "boom" in busy.text


def test_monitor_follows_a_run_in_a_thread(tmp_path):
    path = tmp_path / "metrics.jsonl"

    def fake_run():
        with open(path, "w") as fh:
            for step in range(1, 6):
                fh.write(json.dumps({"step": step, "loss_mask": 1.0 / step}) + "\n")
                fh.flush()
                time.sleep(0.05)
        return "trained"

    monitor = TrainingMonitor(5, keys=("loss_mask",), redraw_s=0.0)
    assert monitor.run_in_thread(fake_run, path, poll_s=0.02) == "trained"
    assert [r["step"] for r in monitor.rows] == [1, 2, 3, 4, 5]
    assert monitor.busy.bar.value == 5 and monitor.busy.text.startswith("5 steps: loss mask 0.200")
