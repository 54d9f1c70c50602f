"""Matplotlib figures for the notebooks' inspection sections (notebooks 5 and 6), in the spirit of Matterport
Mask R-CNN's ``inspect_model`` / ``inspect_weights`` notebooks: each function draws on the axes it is given and
returns them.  They draw what :mod:`ifcn_viz.inference.analysis`, :mod:`ifcn_viz.inference.funnel` and
:func:`ifcn_viz.evaluate.object_recall` compute; nothing here computes a window or a mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from ifcn_viz.config import FOUND_IOU
from ifcn_viz.viz.palette import LOGIT_CMAP, PROB_CMAP, as_numpy, mask_edges, thicken, to_rgb_uint8

# Okabe-Ito colours (colour-vision-deficiency safe), as matplotlib hex strings
OBJECT_A, OBJECT_B, OBJECTNESS, CONFIDENCE, GREY = "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#777777"
RULE_STYLES = {
    "objectness": dict(color="#0072B2", marker="o"),
    "mask confidence": dict(color="#CC79A7", marker="s"),
    "objectness x mask confidence": dict(color="#009E73", marker="^"),
    "random": dict(color="#777777", marker="x", linestyle="--"),
}


def plot_sweep(ax_score, ax_iou, sweep, step: int | None = None, names: Sequence[str] = ("a", "b")):
    """Objectness (and mask confidence) above, the mask's IoU with each object below, along a
    :class:`~ifcn_viz.inference.analysis.Sweep`; ``step`` marks the window shown beside it."""
    x = sweep.along
    ax_score.plot(x, sweep.objectness, "-o", color=OBJECTNESS, ms=3, label="objectness  sigmoid(o)")
    ax_score.plot(x, sweep.confidence, "-s", color=CONFIDENCE, ms=3, label="mask confidence  mean|2p-1|")
    ax_score.set_ylim(-0.02, 1.02)
    ax_score.set_ylabel("score")
    ax_score.legend(loc="lower left", fontsize=8)
    ax_iou.plot(x, sweep.ious[:, 0], "-o", color=OBJECT_A, ms=3, label=f"IoU with object {names[0]}")
    ax_iou.plot(x, sweep.ious[:, 1], "-o", color=OBJECT_B, ms=3, label=f"IoU with object {names[1]}")
    ax_iou.axhline(0.5, color=GREY, lw=0.8, ls=":", label="IoU 0.5 (found)")
    ax_iou.set_ylim(-0.02, 1.02)
    ax_iou.set_ylabel("mask IoU")
    ax_iou.set_xlabel(f"window centre along the line: 0 = centre of {names[0]}, 1 = centre of {names[1]}")
    ax_iou.legend(loc="center left", fontsize=8)
    for ax in (ax_score, ax_iou):
        for t in (0.0, 1.0):
            ax.axvline(t, color=GREY, lw=0.6)
        if step is not None:
            ax.axvline(x[step], color="k", lw=1.5)
        ax.grid(alpha=0.3)
    return ax_score, ax_iou


def plot_ranking_recall(ax, ns: Sequence[int], recalls: dict[str, np.ndarray], iou: float = FOUND_IOU, title: str = ""):
    """Recall@``iou`` against the number of proposals, one line per ranking rule (log x)."""
    for rule, r in recalls.items():
        ax.plot(ns, r, label=rule, **RULE_STYLES.get(rule, {}))
    ax.set_xscale("log")
    ax.set_xticks(list(ns))
    ax.set_xticklabels([str(n) for n in ns])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("number of proposals N (after NMS)")
    ax.set_ylabel(f"recall @ IoU {iou:g}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_funnel(ax_counts, ax_recall, funnel, scale_names: Sequence[str] | None = None):
    """The proposal funnel: windows left at each stage, stacked by scale (log scale), and the recall at each
    stage (with ground truth), annotated with the numbers."""
    names = [st.name for st in funnel.stages]
    per = np.array([st.per_scale for st in funnel.stages], dtype=float)  # (stages, scales)
    n_scales = per.shape[1]
    scale_names = list(scale_names) if scale_names else [f"scale {i}" for i in range(n_scales)]
    cmap = __import__("matplotlib").colormaps[PROB_CMAP]
    x = np.arange(len(names))
    bottom = np.zeros(len(names))
    for s in range(n_scales):
        ax_counts.bar(x, per[:, s], bottom=bottom, color=cmap(s / max(1, n_scales - 1)), label=scale_names[s])
        bottom += per[:, s]
    for i, st in enumerate(funnel.stages):
        ax_counts.text(i, st.count * 1.15, f"{st.count:,}", ha="center", va="bottom", fontsize=9)
    ax_counts.set_yscale("log")
    ax_counts.set_ylim(1, max(2, bottom.max()) * 4)
    ax_counts.set_xticks(x)
    ax_counts.set_xticklabels(names, rotation=15)
    ax_counts.set_ylabel("windows left (log)")
    ax_counts.legend(fontsize=7, ncol=2, title="pyramid scale", title_fontsize=7)
    ax_counts.set_title("windows at each stage, by scale")
    measured = [(i, st.recall) for i, st in enumerate(funnel.stages) if st.recall is not None]
    if measured:
        xs, rec = zip(*measured)
        ax_recall.plot(xs, rec, "-o", color=OBJECT_A)
        for i, r in measured:
            found = int(round(r * funnel.gt_count))
            ax_recall.text(i, r + 0.03, f"{r:.2f} ({found}/{funnel.gt_count})", ha="center", fontsize=9)
        for i, st in enumerate(funnel.stages):
            if st.recall is None:
                ax_recall.text(i, 0.05, "not measured", ha="center", fontsize=8, color=GREY)
        ax_recall.set_ylim(0, 1.12)
        ax_recall.set_xlim(-0.5, len(names) - 0.5)
        ax_recall.set_xticks(x)
        ax_recall.set_xticklabels(names, rotation=15)
        ax_recall.set_ylabel(f"recall @ IoU {funnel.iou:g}")
        ax_recall.set_title("objects still found at each stage")
        ax_recall.grid(alpha=0.3)
    return ax_counts, ax_recall


def plot_histograms(ax, groups: dict[str, np.ndarray], bins: int | np.ndarray = 40, xlabel: str = "", title: str = "",
                    density: bool = True, marks: dict[str, float] | None = None):  # fmt: skip
    """Overlaid step histograms of several groups of values (e.g. objectness of positive vs negative windows),
    with the count of each group in the legend and optional vertical ``marks`` ``{label: x}``."""
    colors = [OBJECT_A, OBJECT_B, OBJECTNESS, CONFIDENCE, GREY]
    finite = [np.asarray(v, float)[np.isfinite(v)] for v in groups.values()]
    if isinstance(bins, int):
        lo = min((v.min() for v in finite if v.size), default=0.0)
        hi = max((v.max() for v in finite if v.size), default=1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    for (name, _), v, c in zip(groups.items(), finite, colors):
        ax.hist(v, bins=bins, histtype="stepfilled", alpha=0.35, color=c, density=density)
        ax.hist(v, bins=bins, histtype="step", lw=1.5, color=c, density=density, label=f"{name} (n = {v.size:,})")
    for (label, x), ls in zip((marks or {}).items(), ("--", ":", "-.")):
        ax.axvline(x, color="k", ls=ls, lw=1, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density" if density else "count")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_activations(fig, activations: dict[str, Tensor], channels: int = 4, labels: dict[str, str] | None = None):
    """A grid: one row per layer, the ``channels`` channels with the largest mean activation (each with its own
    colour range, printed), plus the mean over all channels in the first column."""
    names = list(activations)
    axes = fig.subplots(len(names), channels + 1, squeeze=False)
    for r, name in enumerate(names):
        a = as_numpy(activations[name], name)
        mean = a.mean((1, 2))
        top = np.argsort(-mean)[:channels]
        tiles = [("mean of all", a.mean(0))] + [(f"ch {c}", a[c]) for c in top]
        for j, (t, tile) in enumerate(tiles):
            ax = axes[r, j]
            ax.imshow(tile, cmap=PROB_CMAP, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{t}: {tile.min():.2g}..{tile.max():.2g}", fontsize=7)
        label = (labels or {}).get(name, name)
        axes[r, 0].set_ylabel(f"{label}\n{a.shape[0]}x{a.shape[1]}x{a.shape[2]}", fontsize=7)
    return axes


def plot_kernels(ax_norms, ax_kernels, weight: Tensor | np.ndarray, k: int, bias: Tensor | np.ndarray | None = None):
    """The instance branch's last 3x3 layer ``weight [k*k, C, 3, 3]``: the L2 norm of each output map's kernel
    (bars, map a*k+b labelled "a,b"), and each output map's 3x3 kernel averaged over input channels, arranged as
    the k x k grid of relative positions (one diverging colour range for all, symmetric about 0)."""
    w = as_numpy(weight, "weight")
    norms = np.sqrt((w**2).reshape(w.shape[0], -1).sum(1))
    labels = [f"{c // k},{c % k}" for c in range(w.shape[0])]
    ax_norms.bar(np.arange(len(norms)), norms, color=OBJECT_A, label="||W|| of the map's kernel")
    if bias is not None:
        b = as_numpy(bias, "bias")
        ax_norms.plot(np.arange(len(b)), np.abs(b), "o", color=OBJECT_B, ms=4, label="|bias|")
    ax_norms.set_xticks(np.arange(len(norms)))
    ax_norms.set_xticklabels(labels, rotation=90, fontsize=7)
    ax_norms.set_xlabel("output score map (relative position a,b)")
    ax_norms.set_ylabel("L2 norm")
    ax_norms.legend(fontsize=8)
    mean = w.mean(1)  # (k*k, 3, 3)
    tile = np.full((k * 4 - 1, k * 4 - 1), np.nan)
    for c in range(w.shape[0]):
        a, b = divmod(c, k)
        tile[a * 4 : a * 4 + 3, b * 4 : b * 4 + 3] = mean[c]
    v = float(np.nanmax(np.abs(mean))) or 1.0
    im = ax_kernels.imshow(tile, cmap=LOGIT_CMAP, vmin=-v, vmax=v, interpolation="nearest")
    ax_kernels.set_xticks([b * 4 + 1 for b in range(k)])
    ax_kernels.set_xticklabels([f"b={b}" for b in range(k)])
    ax_kernels.set_yticks([a * 4 + 1 for a in range(k)])
    ax_kernels.set_yticklabels([f"a={a}" for a in range(k)])
    ax_kernels.set_title("3x3 kernel of map a*k+b, mean over input channels")
    ax_kernels.figure.colorbar(im, ax=ax_kernels, fraction=0.046, label="weight")
    return ax_norms, ax_kernels


def plot_targets_vs_predictions(axes, targets: np.ndarray, predictions: np.ndarray, captions: Sequence[str]):
    """Two rows of ``m x m`` tiles: the training targets of sampled positive windows above, the network's assembled
    probabilities for the same windows below (both on [0, 1], viridis), each column captioned."""
    for j, (t, p, cap) in enumerate(zip(targets, predictions, captions)):
        for r, (tile, what) in enumerate(((t, "target"), (p, "predicted"))):
            ax = axes[r, j]
            im = ax.imshow(tile, cmap=PROB_CMAP, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{what}\n{cap}" if r == 0 else what, fontsize=8)
    return im


def plot_recall_vs_iou(ax, curves: dict[str, np.ndarray], ious: np.ndarray, title: str = ""):
    """Recall against the IoU threshold, one line per curve; AR (the mean over 0.5:0.95) in the legend."""
    for (name, r), style in zip(curves.items(), RULE_STYLES.values()):
        sel = (ious >= 0.5 - 1e-9) & (ious <= 0.95 + 1e-9)
        ax.plot(ious, r, label=f"{name} (AR {np.mean(r[sel]):.3f})", color=style["color"])
    ax.axvspan(0.5, 0.95, color=GREY, alpha=0.08, label="AR's IoU range")
    ax.set_xlabel("IoU threshold")
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_missed(axes, image_of, missed: Sequence[dict], min_overlap: float = 0.05):
    """A gallery of missed objects: each tile crops the object (with a margin) from ``image_of(image_id)``, outlines
    it in blue and the best proposal in vermillion, and titles it with the best IoU and that proposal's rank.
    ``missed``: dicts with ``image_id``, ``gt`` (H, W bool), ``best`` (H, W bool or None), ``iou``, ``rank``.

    A "best" proposal whose IoU is under ``min_overlap`` only grazes the object (a neighbour's mask touching it, or
    a large mask holding a few of its pixels): it is not drawn, and the title says no proposal covers the object,
    with that IoU to three digits -- an IoU printed as 0.00 beside a drawn proposal read as a contradiction."""
    for ax, item in zip(np.ravel(axes), missed):
        img = to_rgb_uint8(image_of(item["image_id"])).copy()
        gt = item["gt"]
        iou, rank = float(item["iou"]), int(item.get("rank", -1))
        covers = item.get("best") is not None and rank >= 0 and iou >= min_overlap
        img[thicken(mask_edges(gt), 1)] = (0, 114, 178)
        if covers:
            img[thicken(mask_edges(item["best"]), 1)] = (213, 94, 0)
        ys, xs = np.nonzero(gt)
        pad = max(8, int(0.3 * max(np.ptp(ys), np.ptp(xs))))
        y0, y1 = max(0, ys.min() - pad), min(img.shape[0], ys.max() + pad + 1)
        x0, x1 = max(0, xs.min() - pad), min(img.shape[1], xs.max() + pad + 1)
        ax.imshow(img[y0:y1, x0:x1], interpolation="nearest")
        if covers:
            what = f"best IoU {iou:.2f} (rank {rank + 1})"
        elif rank >= 0:
            what = f"no proposal covers it\n(best IoU {iou:.3f}, rank {rank + 1}: grazing)"
        else:
            what = "no proposal overlaps it"
        ax.set_title(f"image {item['image_id']}, {int(gt.sum())} px:\n{what}", fontsize=8)
    for ax in np.ravel(axes):
        ax.set_axis_off()
    return axes


def outline_masks(image: object, masks: np.ndarray, colors: Sequence[str] = (OBJECT_A, OBJECT_B), px: int = 1):
    """The image with each of ``masks [G, H, W]`` outlined (``px`` thick) in the matching hex colour of ``colors``
    (default: the sweep's object a / object b colours), for views that draw windows over it."""
    out = to_rgb_uint8(image).copy()
    for mask, color in zip(np.asarray(masks, bool), colors):
        rgb = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
        out[thicken(mask_edges(mask), px)] = rgb
    return out
