"""From assembled windows to segment proposals: scoring, pasting, tight boxes and NMS (paper, Sec. 3.3 "Inference").

The paper: every window at every scale is a candidate scored by its objectness; its mask is the assembled
m x m probabilities resized to the window's extent in the image (bilinear) and binarised; NMS runs on the IoU
of the masks' tight boxes at 0.8.  What the paper leaves open and we chose:

* **Pasting** (:func:`paste_window_probs`).  A window covers the float box ``[x0, x1) x [y0, y1)`` of the
  original image.  Pixel (x, y) is sampled at its centre: ``u = (x + 0.5 - x0) / (x1 - x0) * m - 0.5`` (and
  likewise v), clamped to ``[0, m - 1]``, bilinear between the two nearest window cells -- exactly
  ``F.interpolate(..., mode="bilinear", align_corners=False)`` when the box is pixel-aligned.  Pixels whose
  centre lies outside the box are 0, and the box is clipped to the image (windows cross the border).
  Bilinear interpolation is separable, so the paste is two small matrix products, ``Wy @ P @ Wx^T``, batched
  over windows of similar size and computed only over the pixels each window covers (then placed in the image).
* **Tight boxes without pasting** (:func:`window_mask_boxes`).  Along a pixel row, the pasted value is
  piecewise linear in x with knots where u crosses an integer, so its maximum over the row's pixels is at a
  pixel next to a knot or at an end of the box.  Testing those 2m + 2 columns (and rows) gives the exact tight
  box of the binarised pasted mask at a fraction of the cost, so NMS needs full-resolution masks only for the
  proposals it keeps.
* **Binarising**: ``p >= threshold`` (the threshold is not stated; FCIS 0.4, DeepMask 0.2).
* **Boxes**: ``(x0, y0, x1, y1)`` with exclusive ends (``torchvision.ops.masks_to_boxes`` + 1 on x1, y1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ifcn_viz.inference.types import NMSStep

_CHUNK = 64  # windows per batched matrix product (the paste also bounds its bytes: limits.PASTE_CHUNK_BYTES)


def _check_windows(probs: Tensor, boxes: Tensor, image_hw: tuple[int, int]) -> tuple[Tensor, Tensor, int, int]:
    if not isinstance(probs, Tensor) or probs.dim() != 3 or probs.shape[1] != probs.shape[2]:
        got = tuple(probs.shape) if isinstance(probs, Tensor) else type(probs).__name__
        raise ValueError(f"probs must be a tensor [N, m, m], got {got}")
    boxes = torch.as_tensor(boxes, dtype=torch.float32)
    if boxes.dim() != 2 or boxes.shape != (probs.shape[0], 4):
        raise ValueError(f"boxes must be [N, 4] = [{probs.shape[0]}, 4] (x0, y0, x1, y1), got {tuple(boxes.shape)}")
    if len(image_hw) != 2 or min(int(image_hw[0]), int(image_hw[1])) < 1:
        raise ValueError(f"image_hw must be (height, width) with both >= 1, got {image_hw}")
    if boxes.numel() and not bool(((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()):
        raise ValueError("every box must have x1 > x0 and y1 > y0")
    return probs.float(), boxes, int(image_hw[0]), int(image_hw[1])


def interp_weights(lo: Tensor, hi: Tensor, m: int, pixels: Tensor) -> Tensor:
    """Bilinear sampling weights ``[N, P, m]``: pixel ``pixels[p]`` of window n as a mix of its m cells.

    ``lo``/``hi`` ``[N]`` are the window's extent along one axis (float pixels, exclusive end); ``pixels``
    is ``[P]`` or ``[N, P]`` integer pixel indices.  Rows of pixels whose centre is outside ``[lo, hi)`` are 0.
    """
    lo, hi = lo.float()[:, None], hi.float()[:, None]  # (N, 1)
    c = pixels.float() + 0.5
    c = c[None] if c.dim() == 1 else c  # (1 or N, P)
    inside = (c >= lo) & (c < hi)  # (N, P)
    u = ((c - lo) / (hi - lo) * m - 0.5).clamp(0.0, m - 1.0)  # (N, P) window-cell coordinate
    n, p = inside.shape
    w = torch.zeros(n, p, m)
    if m == 1:
        w[..., 0] = 1.0
    else:
        i0 = u.floor().clamp(max=m - 2)  # (N, P) left cell; u == m-1 uses cells m-2, m-1 with weight 1 on m-1
        frac = (u - i0)[..., None]
        i0 = i0.long()[..., None]
        w.scatter_(2, i0, 1.0 - frac)
        w.scatter_add_(2, i0 + 1, frac)
    return w * inside[..., None]


def paste_window_probs(probs: Tensor, boxes: Tensor, image_hw: tuple[int, int]) -> Tensor:
    """Resize each window's ``m x m`` probabilities to its box in the image (bilinear), zero elsewhere.

    Args:
        probs: ``[N, m, m]`` window probabilities.
        boxes: ``[N, 4]`` float ``(x0, y0, x1, y1)`` in original-image pixels (may cross the border).
        image_hw: ``(H, W)`` of the original image.

    Returns:
        ``[N, H, W]`` float32 on CPU.
    """
    return _paste(probs, boxes, image_hw, None)  # type: ignore[return-value]


def paste_window_masks(
    probs: Tensor, boxes: Tensor, image_hw: tuple[int, int], threshold: float, within: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``paste_window_probs(...) >= threshold`` as ``[N, H, W]`` bool, and the masks' tight boxes ``[N, 4]``.

    ``within``: optional ``[N, 4]`` xyxy boxes known to contain each mask (e.g. from :func:`window_mask_boxes`);
    only pixels inside them are computed.  No full-size float intermediate is made.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"mask threshold must be in (0, 1), got {threshold}")
    return _paste(probs, boxes, image_hw, threshold, within)


def pixel_span(lo: Tensor, hi: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """``[a, b)``: the pixels in ``0..size-1`` whose centres lie in ``[lo, hi)`` (``a == b`` if none)."""
    a = torch.ceil(lo - 0.5).clamp(0, size).long()
    b = torch.ceil(hi - 0.5).clamp(0, size).long()
    return a, torch.maximum(a, b)


def _chunks(size: Tensor) -> list[Tensor]:
    """Window indices in chunks of similar crop size, so each chunk's batched crops waste little."""
    order = torch.argsort(size, stable=True)
    return [c for c in order.split(_CHUNK) if c.numel()]


def _paste_jobs(lh: Tensor, lw: Tensor, budget: int) -> list[tuple[Tensor, int, int]]:
    """``(windows, first row, rows)`` jobs over the crops ``lh x lw`` such that each job's padded float32 crops
    take at most ``budget`` bytes (windows of similar size together; a crop larger than the budget alone, in
    bands of rows)."""
    jobs: list[tuple[Tensor, int, int]] = []
    order = torch.argsort(lh * lw, stable=True).tolist()
    group: list[int] = []
    gh = gw = 0
    for k in order + [None]:  # type: ignore[list-item]
        if k is not None:
            h, w = int(lh[k]), int(lw[k])
            if h == 0 or w == 0:
                continue
            nh, nw = max(gh, h), max(gw, w)
            if not group or (len(group) < _CHUNK and (len(group) + 1) * nh * nw * 4 <= budget):
                group.append(k)
                gh, gw = nh, nw
                continue
        if group:
            if len(group) == 1 and gh * gw * 4 > budget:  # one crop over the budget: bands of rows
                band = max(1, budget // (4 * gw))
                jobs += [(torch.tensor(group), r, min(band, gh - r)) for r in range(0, gh, band)]
            else:
                jobs.append((torch.tensor(group), 0, gh))
        if k is not None:
            group, gh, gw = [k], int(lh[k]), int(lw[k])
    return jobs


def _paste(
    probs: Tensor, boxes: Tensor, image_hw: tuple[int, int], threshold: float | None, within: Tensor | None = None
):
    """Paste in each window's own crop (the pixels its box covers, or fewer with ``within``), not the whole image,
    a bounded amount at a time: besides the output, the working memory is about
    :data:`ifcn_viz.limits.PASTE_CHUNK_BYTES` (float32 crops) and a quarter of that (their binarised copy)."""
    from ifcn_viz import limits

    probs, boxes, h, w = _check_windows(probs, boxes, image_hw)
    probs, boxes = probs.cpu(), boxes.cpu()
    n, m = probs.shape[0], probs.shape[1]
    out = torch.zeros(n, h, w, dtype=torch.float32 if threshold is None else torch.bool)
    tight = torch.zeros(n, 4)
    ya, yb = pixel_span(boxes[:, 1], boxes[:, 3], h)
    xa, xb = pixel_span(boxes[:, 0], boxes[:, 2], w)
    if within is not None:
        r = torch.as_tensor(within).round().long()  # (N, 4) integer xyxy, exclusive ends
        xa, ya = torch.maximum(xa, r[:, 0]), torch.maximum(ya, r[:, 1])
        xb, yb = torch.maximum(xa, torch.minimum(xb, r[:, 2])), torch.maximum(ya, torch.minimum(yb, r[:, 3]))
    for idx, r0, rows in _paste_jobs(yb - ya, xb - xa, int(limits.PASTE_CHUNK_BYTES)):
        lw = int((xb[idx] - xa[idx]).max())
        b = boxes[idx]
        wy = interp_weights(b[:, 1], b[:, 3], m, ya[idx, None] + r0 + torch.arange(rows))  # (n', rows, m)
        wx = interp_weights(b[:, 0], b[:, 2], m, xa[idx, None] + torch.arange(lw))  # (n', lw, m)
        local = torch.bmm(torch.bmm(wy, probs[idx]), wx.transpose(1, 2))  # (n', rows, lw)
        if threshold is not None:
            local = local >= threshold
        for t, k in enumerate(idx.tolist()):
            # a crop is as large as the job's largest: each window's own span is its top-left corner
            y0, x0, x1 = int(ya[k]) + r0, int(xa[k]), int(xb[k])
            y1 = min(int(yb[k]), y0 + rows)
            if y1 > y0 and x1 > x0:
                out[k, y0:y1, x0:x1] = local[t, : y1 - y0, : x1 - x0]
        del local
    if threshold is None:
        return out
    for k in range(n):  # the tight boxes, from each mask's own crop (reductions: nothing full-size is made)
        y0, y1, x0, x1 = int(ya[k]), int(yb[k]), int(xa[k]), int(xb[k])
        if y1 > y0 and x1 > x0:
            crop = out[k, y0:y1, x0:x1]
            tight[k : k + 1], _ = _crop_boxes(crop.any(1)[None], crop.any(0)[None], xa[k : k + 1], ya[k : k + 1])
    return out, tight


def _knot_pixels(lo: Tensor, hi: Tensor, m: int, size: int) -> Tensor:
    """``[N, 2m + 2]`` pixel indices where a pasted row/column can reach its maximum (see module docstring)."""
    j = torch.arange(m, dtype=torch.float32)
    knots = lo[:, None] + (j[None] + 0.5) * ((hi - lo) / m)[:, None] - 0.5  # (N, m) pixel index where u == j
    first = torch.ceil(lo - 0.5)[:, None]  # first pixel whose centre is >= lo
    last = (torch.ceil(hi - 0.5) - 1)[:, None]  # last pixel whose centre is < hi
    cand = torch.cat([knots.floor(), knots.floor() + 1, first, last], dim=1)  # (N, 2m + 2)
    return cand.clamp(0, size - 1).long()


def _first_last(nonempty: Tensor) -> tuple[Tensor, Tensor]:
    """For ``[N, L]`` bool: index of the first True and one past the last True (0, 0 for an empty row)."""
    length = nonempty.shape[1]
    idx = torch.arange(length)
    first = torch.where(nonempty, idx, length).amin(1)
    last = torch.where(nonempty, idx, -1).amax(1) + 1
    empty = ~nonempty.any(1)
    return first.masked_fill(empty, 0), last.masked_fill(empty, 0)


def _crop_boxes(row_on: Tensor, col_on: Tensor, xa: Tensor, ya: Tensor) -> tuple[Tensor, Tensor]:
    """From each crop's rows ``[N, lh]`` and columns ``[N, lw]`` that hold a mask pixel, and the crops' top-left
    pixels: ``(tight [N, 4] float xyxy exclusive in the image, nonempty [N])``; empty crops get a zero box."""
    (y0, y1), (x0, x1) = _first_last(row_on), _first_last(col_on)
    ok = row_on.any(1) & col_on.any(1)
    box = torch.stack([x0 + xa, y0 + ya, x1 + xa, y1 + ya], 1).float()
    return torch.where(ok[:, None], box, torch.zeros_like(box)), ok


def window_mask_boxes(
    probs: Tensor, boxes: Tensor, image_hw: tuple[int, int], threshold: float
) -> tuple[Tensor, Tensor]:
    """Tight boxes of ``paste_window_probs(probs, boxes, image_hw) >= threshold`` without pasting in full.

    Returns ``(tight [N, 4] float32 xyxy exclusive, nonempty [N] bool)``; empty masks get a zero box.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"mask threshold must be in (0, 1), got {threshold}")
    probs, boxes, h, w = _check_windows(probs, boxes, image_hw)
    probs, boxes = probs.cpu(), boxes.cpu()
    n, m = probs.shape[0], probs.shape[1]
    tight = torch.zeros(n, 4)
    nonempty = torch.zeros(n, dtype=torch.bool)
    ya, yb = pixel_span(boxes[:, 1], boxes[:, 3], h)
    xa, xb = pixel_span(boxes[:, 0], boxes[:, 2], w)
    for idx in _chunks((yb - ya) * (xb - xa)):
        lh, lw = int((yb[idx] - ya[idx]).max()), int((xb[idx] - xa[idx]).max())
        if lh == 0 or lw == 0:
            continue
        p, b = probs[idx], boxes[idx]
        wy = interp_weights(b[:, 1], b[:, 3], m, ya[idx, None] + torch.arange(lh))  # (n', lh, m) the crop's rows
        wx = interp_weights(b[:, 0], b[:, 2], m, xa[idx, None] + torch.arange(lw))  # (n', lw, m) the crop's columns
        wx_k = interp_weights(b[:, 0], b[:, 2], m, _knot_pixels(b[:, 0], b[:, 2], m, w))  # (n', 2m+2, m)
        wy_k = interp_weights(b[:, 1], b[:, 3], m, _knot_pixels(b[:, 1], b[:, 3], m, h))  # (n', 2m+2, m)
        rows = torch.bmm(torch.bmm(wy, p), wx_k.transpose(1, 2))  # (n', lh, 2m+2): every row at candidate columns
        cols = torch.bmm(torch.bmm(wy_k, p), wx.transpose(1, 2))  # (n', 2m+2, lw): candidate rows at every column
        # in crop coordinates; a crop is as long as the chunk's longest, so cut each to its own span in the image
        row_on = (rows >= threshold).any(2) & (torch.arange(lh) < (yb[idx] - ya[idx])[:, None])  # (n', lh)
        col_on = (cols >= threshold).any(1) & (torch.arange(lw) < (xb[idx] - xa[idx])[:, None])  # (n', lw)
        tight[idx], nonempty[idx] = _crop_boxes(row_on, col_on, xa[idx], ya[idx])
    return tight, nonempty


def masks_to_boxes_exclusive(masks: Tensor) -> Tensor:
    """``[N, H, W]`` bool -> ``[N, 4]`` float32 tight boxes ``(x0, y0, x1, y1)``, exclusive ends; 0 if empty."""
    if masks.dim() != 3:
        raise ValueError(f"masks must be [N, H, W], got {tuple(masks.shape)}")
    y0, y1 = _first_last(masks.any(2))
    x0, x1 = _first_last(masks.any(1))
    return torch.stack([x0, y0, x1, y1], 1).float()


def top_k_windows(objectness: list[Tensor], k: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Score every window of every scale by sigmoid(objectness) and keep the best ``k``.

    ``objectness``: one ``[H'_s, W'_s]`` logit map per scale.  Returns ``(scores [K], scale [K], cy [K], cx [K])``
    in descending score order (ties broken by scale, then raster order, so the order is deterministic).
    """
    flat = [o.reshape(-1).float() for o in objectness]  # each (H'_s * W'_s,)
    logits = torch.cat(flat) if flat else torch.zeros(0)
    scale = torch.cat([torch.full((f.numel(),), i, dtype=torch.long) for i, f in enumerate(flat)]) if flat else None
    if logits.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return torch.zeros(0), empty, empty, empty
    order = torch.sort(logits, descending=True, stable=True).indices[: max(0, k)]
    offsets = torch.tensor([0] + [f.numel() for f in flat]).cumsum(0)
    s_idx = scale[order]
    local = order - offsets[s_idx]
    widths = torch.tensor([o.shape[1] for o in objectness])[s_idx]
    return torch.sigmoid(logits[order]), s_idx, local // widths, local % widths


def nms_with_trace(
    boxes: Tensor, iou_threshold: float, trace: bool = False, scores: Tensor | None = None
) -> tuple[Tensor, list[NMSStep]]:
    """Greedy class-agnostic NMS (``torchvision.ops.nms``) over ``boxes`` already in descending score order.

    Returns ``(keep, steps)``: ``keep`` the kept ranks in order; with ``trace=True`` one :class:`NMSStep` per
    candidate -- kept, or suppressed by the earliest kept candidate overlapping it above the threshold (that is
    the one greedy NMS suppressed it with).
    """
    from torchvision.ops import box_iou, nms

    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"nms_iou must be in (0, 1], got {iou_threshold}")
    boxes = boxes.float()
    n = boxes.shape[0]
    # Rank-based scores make the processing order exactly the given order, even among equal objectness.
    keep = nms(boxes, -torch.arange(n, dtype=torch.float32), iou_threshold) if n else torch.zeros(0, dtype=torch.long)
    steps: list[NMSStep] = []
    if not trace or n == 0:
        return keep, steps
    sc = scores.float().tolist() if scores is not None else [math.nan] * n
    ious = box_iou(boxes[keep], boxes)  # (n_keep, n)
    earlier = keep[:, None] < torch.arange(n)[None]  # (n_keep, n): the kept one comes before the candidate
    # torchvision's kernel and box_iou round differently: an IoU within float32 noise of the threshold counts
    over = (ious > iou_threshold - 1e-5) & earlier
    first = torch.where(over.any(0), over.float().argmax(0), -1)  # (n,) index into keep, -1 if none
    kept = torch.zeros(n, dtype=torch.bool)
    kept[keep] = True
    blist, klist = boxes.tolist(), keep.tolist()
    for i in range(n):
        if kept[i]:
            steps.append(NMSStep(i, True, None, None, tuple(blist[i]), sc[i]))
        else:
            f = int(first[i])
            if f < 0:
                raise AssertionError(f"candidate {i} was suppressed but no earlier kept box overlaps it")
            steps.append(NMSStep(i, False, klist[f], float(ious[f, i]), tuple(blist[i]), sc[i]))
    return keep, steps
