"""Matplotlib helpers for notebooks: each draws on a given ``ax`` and returns it.

The ``plot_*`` view helpers draw the same pictures as the pure functions (one visual language, colour bars
included in the picture); :func:`plot_heatmap` and :func:`plot_loss_curve` are native matplotlib plots with a real
colour bar / axes, for the places where a notebook wants ticks to read values from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from ifcn_viz.viz import maps as _maps
from ifcn_viz.viz.palette import LOGIT_CMAP, PROB_CMAP, as_numpy, check_rgb, logit_range


def plot_view(ax, view: np.ndarray, title: str | None = None):
    """Show an RGB view (any pure function's output) on ``ax`` without axes, pixel for pixel."""
    ax.imshow(check_rgb(view), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_score_maps(ax, score_maps: Tensor | np.ndarray, title: str | None = None, **kwargs):
    """:func:`score_map_mosaic` on ``ax`` (same keyword arguments: ``k``, ``image``, ``window``, ``probs`` ...)."""
    return plot_view(ax, _maps.score_map_mosaic(score_maps, **kwargs), title)


def plot_heatmap(
    ax,
    values: Tensor | np.ndarray,
    kind: str = "logit",
    label: str | None = None,
    vmax: float | None = None,
    title: str | None = None,
):
    """A native ``imshow`` of a 2-D map with a labelled colour bar: ``kind="logit"`` (diverging, white at 0, each side
    to :func:`~ifcn_viz.viz.palette.logit_range`) or
    ``"prob"`` (viridis on [0, 1])."""
    v = as_numpy(values, "values")
    if v.ndim != 2:
        raise ValueError(f"plot_heatmap expects a 2-D map, got shape {v.shape}")
    if kind == "logit":
        from matplotlib.colors import TwoSlopeNorm

        scale = logit_range(v, vmax=vmax)
        norm = TwoSlopeNorm(0.0, scale.lo, scale.hi)
        im = ax.imshow(v, cmap=LOGIT_CMAP, norm=norm, interpolation="nearest")
        label = label or "logit"
    elif kind == "prob":
        im = ax.imshow(v, cmap=PROB_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
        label = label or "probability"
    else:
        raise ValueError(f"kind must be 'logit' or 'prob', got {kind!r}")
    ax.figure.colorbar(im, ax=ax, label=label, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title)
    return ax


def plot_loss_curve(ax, steps: Sequence[int], losses: dict[str, Sequence[float]], title: str | None = "training loss"):
    """Loss curves (one line per named series) against the iteration; log-scaled y when all values are > 0."""
    if not losses:
        raise ValueError("losses must name at least one series, e.g. {'total': [...]}")
    for name, ys in losses.items():
        if len(ys) != len(steps):
            raise ValueError(f"series {name!r} has {len(ys)} values for {len(steps)} steps")
        ax.plot(list(steps), list(ys), label=name)
    if all(min(ys) > 0 for ys in losses.values() if len(ys)):
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax
