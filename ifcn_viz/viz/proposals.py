"""Segment proposals: top-N masks with contours, a fixed palette by rank, scores; NMS stepped through.

The paper runs NMS on the IoU of the masks' tight boxes at 0.8 (Sec. 3.3): ``Proposals.nms_trace`` records each
candidate in score order with its fate -- kept, or suppressed by an earlier kept one at the IoU that decided it.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image, ImageDraw

from ifcn_viz.inference.types import NMSStep, Proposals
from ifcn_viz.viz.palette import (
    INK,
    blend,
    draw_window_frame,
    font,
    mask_edges,
    pad,
    place_label,
    rank_color,
    same_size,
    stack,
    thicken,
    title_panel,
    to_rgb_uint8,
)

SUPPRESSED = (150, 150, 150)


def _check_proposals(proposals: object) -> Proposals:
    if not isinstance(proposals, Proposals):
        raise TypeError(f"proposals must be an ifcn_viz.inference.types.Proposals, got {type(proposals).__name__}")
    return proposals


def proposals_view(
    image: object,
    proposals: Proposals,
    top_n: int = 10,
    alpha: float = 0.45,
    boxes: bool = False,
    windows: bool = False,
    legend: bool = False,
) -> np.ndarray:
    """The ``top_n`` best proposals over the image: rank r filled and outlined in ``rank_color(r)``, labelled
    ``#r+1 score`` (the objectness probability to 4 digits and its logit, so near-1 scores still rank).  Lower
    ranks are drawn first so the best sits on top.  ``windows``: also frame each proposal's window (thin, dashed,
    in its colour); ``legend``: a strip under the image saying what each mark means."""
    p = _check_proposals(proposals)
    img = to_rgb_uint8(image)
    n = min(top_n, len(p))
    if n and p.masks.shape[1:] != img.shape[:2]:
        raise ValueError(f"proposal masks are {p.masks.shape[1:]}, the image is {img.shape[:2]}: not the same image?")
    step = render_step(*img.shape[:2])
    if step > 1:  # a picture for a screen: at most limits.MAX_RENDER_PIXELS, every step-th pixel (the masks too)
        img = img[::step, ::step]
        p = dataclasses.replace(p, masks=p.masks[:n, ::step, ::step], boxes=p.boxes[:n] / step,
                                window_boxes=p.window_boxes[:n] / step, scores=p.scores[:n])  # fmt: skip
    out = img.copy()
    for r in range(n - 1, -1, -1):
        mask = p.masks[r]
        col = np.array(rank_color(r), np.uint8)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))  # the box, without every pixel's index
        if rows.size == 0:
            continue
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1  # work on the box only: fast
        sub = out[y0:y1, x0:x1]
        msub = mask[y0:y1, x0:x1]
        sub[:] = blend(sub, np.broadcast_to(col, sub.shape), alpha, msub)
        edge = thicken(mask_edges(np.pad(msub, 1)), 1)[1:-1, 1:-1]
        sub[edge] = col
    pil = Image.fromarray(out)
    draw = ImageDraw.Draw(pil)
    if boxes:
        for r in range(n - 1, -1, -1):
            draw_window_frame(draw, tuple(float(v) for v in p.boxes[r]), rank_color(r))
    if windows:
        for r in range(n - 1, -1, -1):
            _dashed_rect(draw, tuple(float(v) for v in p.window_boxes[r]), rank_color(r))
    placed: list[tuple[int, int, int, int]] = []
    for r in range(n):  # the best first, so it gets the spot nearest its mask; no label covers another
        x0, y0 = float(p.boxes[r][0]), float(p.boxes[r][1])
        text = f"#{r + 1} {score_text(float(p.scores[r]))}"
        gy0, gy1 = font(11).getbbox(text)[1::2]
        below = y0 + 1 + (gy1 - gy0) + 2  # first choice: just inside the box's top-left corner
        placed.append(place_label(draw, (x0 + 1, below), text, placed, (img.shape[1], img.shape[0]), 11,
                                  bg=rank_color(r)))  # fmt: skip
    out = np.asarray(pil)
    if not legend:
        return out
    items = ["filled + outline: proposal mask (colour = rank)", "label: #rank objectness p (logit)"]
    if boxes:
        items.append("solid box: mask's tight box")
    if windows:
        items.append("dashed frame: the proposal's window")
    return stack([out, _legend_strip(items, out.shape[1])], axis=0, gap=2)


def render_step(h: int, w: int) -> int:
    """Every how many pixels a picture of ``h x w`` is drawn so it has at most ``limits.MAX_RENDER_PIXELS``."""
    from ifcn_viz.limits import MAX_RENDER_PIXELS

    return max(1, math.ceil(math.sqrt(h * w / MAX_RENDER_PIXELS)))


def score_text(p: float) -> str:
    """An objectness probability with enough digits to rank near 1: ``0.9974 (5.96)`` -- the logit in brackets."""
    q = min(max(p, 1e-7), 1 - 1e-7)
    return f"{p:.4f} ({np.log(q / (1 - q)):+.2f})"


def _dashed_rect(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], color, dash: int = 6) -> None:
    x0, y0, x1, y1 = box
    x1, y1 = x1 - 1, y1 - 1
    for a, b in (((x0, y0), (x1, y0)), ((x0, y1), (x1, y1)), ((x0, y0), (x0, y1)), ((x1, y0), (x1, y1))):
        length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        for t in np.arange(0, length, 2 * dash):
            u, v = t / max(length, 1), min(t + dash, length) / max(length, 1)
            draw.line((a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1]), a[0] + v * (b[0] - a[0]),
                       a[1] + v * (b[1] - a[1])), fill=color, width=1)  # fmt: skip


def _legend_strip(items: list[str], width: int) -> np.ndarray:
    """Lines of legend text, wrapped to ``width`` pixels, on white."""
    lines, cur = [], ""
    for it in items:
        cand = f"{cur}   |   {it}" if cur else it
        if cur and font(11).getlength(cand) > width - 8:
            lines.append(cur)
            cand = it
        cur = cand
    lines.append(cur)
    pil = Image.new("RGB", (width, 15 * len(lines) + 4), (255, 255, 255))
    d = ImageDraw.Draw(pil)
    for i, line in enumerate(lines):
        d.text((4, 2 + 15 * i), line, fill=INK, font=font(11))
    return np.asarray(pil)


def _kept_ranks(trace: list[NMSStep]) -> dict[int, int]:
    """Candidate index -> rank among the kept (which colour it gets)."""
    ranks: dict[int, int] = {}
    for st in trace:
        if st.kept:
            ranks[st.candidate] = len(ranks)
    return ranks


def nms_steps_view(
    image: object, proposals: Proposals, step: int | None = None, max_steps: int = 30, nms_iou: float | None = None
) -> np.ndarray:
    """NMS stepped through on the image: candidates 0..``step`` (all of the first ``max_steps`` when None).

    Kept candidates are boxes in their kept-rank colour; suppressed ones are grey dashed-looking boxes joined to
    the kept box that suppressed them, labelled with the deciding IoU; the current candidate is drawn thick and
    described in the caption.  A list beside the image gives every step's fate.
    """
    p = _check_proposals(proposals)
    if not p.nms_trace:
        raise ValueError("proposals has no nms_trace: call Predictor.proposals(..., trace_nms=True)")
    trace = p.nms_trace[:max_steps]
    last = len(trace) - 1 if step is None else step
    if not 0 <= last < len(trace):
        raise ValueError(f"step must be in [0, {len(trace)}), got {step}")
    img = to_rgb_uint8(image)
    pil = Image.fromarray(blend(img, np.full_like(img, 255), 0.35))
    draw = ImageDraw.Draw(pil)
    kept = _kept_ranks(p.nms_trace)
    by_cand = {st.candidate: st for st in p.nms_trace}
    placed: list[tuple[int, int, int, int]] = []
    bounds = (img.shape[1], img.shape[0])
    for t, st in enumerate(trace[: last + 1]):
        x0, y0, x1, y1 = st.box
        width = 3 if t == last else 1
        if st.kept:
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=rank_color(kept[st.candidate]), width=width + 1)
            placed.append(place_label(draw, (x0 + 1, y0 + 14), f"c{st.candidate} kept", placed, bounds, 10,
                                      bg=rank_color(kept[st.candidate])))  # fmt: skip
        else:
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=SUPPRESSED, width=width)
            if st.suppressed_by is not None and st.suppressed_by in by_cand:
                k0, k1, k2, k3 = by_cand[st.suppressed_by].box
                a = ((x0 + x1) / 2, (y0 + y1) / 2)
                b = ((k0 + k2) / 2, (k1 + k3) / 2)
                draw.line((*a, *b), fill=SUPPRESSED, width=1)
                if t == last:
                    placed.append(place_label(draw, a, f"IoU {st.iou:.2f}", placed, bounds, 10))
    cur = trace[last]
    if cur.kept:
        caption = (
            f"step {last}: candidate {cur.candidate} (score {score_text(cur.score)}) kept as #{kept[cur.candidate] + 1}"
        )
    else:
        thr = f" >= {nms_iou:g}" if nms_iou is not None else ""
        caption = (
            f"step {last}: candidate {cur.candidate} (score {score_text(cur.score)}) suppressed by candidate "
            f"{cur.suppressed_by} at box IoU {cur.iou:.2f}{thr}"
        )
    lines = Image.new("RGB", (290, max(pil.height, 14 * len(trace) + 22)), (255, 255, 255))
    dl = ImageDraw.Draw(lines)
    dl.text((4, 4), "cand  objectness p (logit)  fate", fill=INK)
    for t, st in enumerate(trace):
        fate = "kept" if st.kept else f"x by c{st.suppressed_by} ({st.iou:.2f})"
        col = INK if t <= last else (180, 180, 180)
        y = 18 + 14 * t
        if t == last:
            dl.rectangle((0, y - 1, 289, y + 12), fill=(240, 228, 66))
        dl.text((4, y), f"c{st.candidate:<3} {score_text(st.score)}  {fate}", fill=col)
    body = stack([np.asarray(pil), np.asarray(lines)], axis=1, gap=8)
    return pad(title_panel(body, caption, size=13))


def nms_step_frames(
    image: object, proposals: Proposals, max_steps: int = 30, nms_iou: float | None = None
) -> list[np.ndarray]:
    """One frame per NMS step (for a slider or a GIF); all frames have the same size."""
    p = _check_proposals(proposals)
    n = min(max_steps, len(p.nms_trace))
    return same_size([nms_steps_view(image, p, step=t, max_steps=max_steps, nms_iou=nms_iou) for t in range(n)])


def proposals_panel(image: object, proposals: Proposals, top_n: int = 10, **view_args) -> np.ndarray:
    """The proposals view (``view_args``: ``windows``, ``legend``, ``boxes`` ...) with a title naming how many."""
    p = _check_proposals(proposals)
    return title_panel(proposals_view(image, p, top_n, **view_args),
                       f"top {min(top_n, len(p))} of {len(p)} proposals (rank: score)")  # fmt: skip
