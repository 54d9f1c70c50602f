"""Drawn instances: from the image editor's layers to ``[N, H, W]`` masks, and to / from COCO JSON.  No Gradio.

**The drawing rule.** The Draw tab's editor offers one brush colour per instance (:func:`brush_colors`, the rank
palette, so every view draws instance n in the colour it was painted with).  Every pixel painted (alpha >= 128)
in any layer belongs to the instance of the nearest brush colour; where layers overlap, the upper layer wins, as
in the picture the editor shows.  Instances are numbered in brush-colour order (unused colours skipped), and
the views colour instance n with brush colour n: paint with the colours in order to keep them.  Layers are for
convenience (hide, erase one without touching another); the colour, not the layer, names the instance.

**COCO.** :func:`coco_from_masks` writes the instances as a COCO instances file of one image (RLE segmentations,
``ifcn_viz.evaluate.coco_gt_from_masks``): it can be uploaded again (:func:`masks_from_coco`) or used as a tiny
evaluation set (``ifcn-viz eval --gt``).  Uploads are checked against ``ifcn_viz.limits``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ifcn_viz.limits import (
    MAX_DRAWN_INSTANCES,
    MAX_POLYGON_LENGTH,
    MAX_POLYGON_VALUES,
    POLYGON_MARGIN,
    LimitError,
    check_coco_upload,
    check_instance_count,
    check_layer_size,
)
from ifcn_viz.viz.palette import RANK_PALETTE

MIN_AREA = 16
"""Painted specks smaller than this many pixels (original resolution) are not instances."""
N_COLORS = len(RANK_PALETTE)


def brush_colors() -> list[str]:
    """The editor's brush colours, instance 0 first (CSS ``rgb(...)``)."""
    return [f"rgb({r}, {g}, {b})" for r, g, b in RANK_PALETTE]


_BAND = 1 << 18  # painted pixels matched to the palette at once: (P, C) int32 distances, about 10 MB


def _nearest_color(rgb: np.ndarray) -> np.ndarray:
    """Index of the nearest brush colour of each ``(P, 3)`` pixel, in bands (bounded working memory)."""
    pal = np.asarray(RANK_PALETTE, dtype=np.int32)  # (C, 3)
    out = np.empty(len(rgb), dtype=np.int16)
    for a in range(0, len(rgb), _BAND):
        d = ((rgb[a : a + _BAND, None, :].astype(np.int32) - pal[None]) ** 2).sum(-1)  # (band, C)
        out[a : a + _BAND] = d.argmin(1)
    return out


def _resize_mask(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if mask.shape == tuple(hw):
        return mask
    from PIL import Image

    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((hw[1], hw[0]), Image.NEAREST)) >= 128


def masks_from_layers(layers: list[Any], image_hw: tuple[int, int]) -> np.ndarray:
    """``[N, H, W]`` bool masks at the image's size ``image_hw`` from the editor's RGBA layers (see the module
    docstring); instances in brush-colour order, empty colours dropped.  The layers may be at the displayed size
    (the image shown downscaled): they are resized to ``image_hw`` with nearest neighbours."""
    label: np.ndarray | None = None
    for layer in layers or []:
        if layer is None:
            continue
        shape = getattr(layer, "shape", None) or getattr(layer, "size", (0, 0))[::-1]  # an array, or a PIL image
        check_layer_size(tuple(shape[:2]), image_hw)  # before the layer is read (149 bytes a painted pixel)
        a = np.asarray(layer)
        if a.ndim != 3 or a.shape[2] != 4:
            raise ValueError(f"a drawing layer must be an RGBA image, got shape {a.shape}")
        if label is None:
            label = np.full(a.shape[:2], -1, dtype=np.int16)
        elif a.shape[:2] != label.shape:
            raise ValueError(f"the drawing's layers differ in size: {a.shape[:2]} vs {label.shape}")
        for r in range(0, a.shape[0], max(1, _BAND // max(1, a.shape[1]))):  # bands of rows
            band = a[r : r + max(1, _BAND // max(1, a.shape[1]))]
            painted = band[:, :, 3] >= 128
            if painted.any():  # an upper layer overwrites a lower one
                label[r : r + len(band)][painted] = _nearest_color(band[:, :, :3][painted])
    if label is None:
        return np.zeros((0, *image_hw), dtype=bool)
    # the instances' count and bytes at the image's size, before any full-size mask is made
    counts = np.bincount(label[label >= 0].ravel(), minlength=N_COLORS) if (label >= 0).any() else np.zeros(1)
    scale = image_hw[0] * image_hw[1] / max(1, label.size)
    used = [c for c in range(len(counts)) if counts[c] * scale >= MIN_AREA / 4]
    check_instance_count(len(used), "the drawing", image_hw)
    masks = [m for m in (_resize_mask(label == c, image_hw) for c in used) if m.sum() >= MIN_AREA]
    return np.stack(masks) if masks else np.zeros((0, *image_hw), dtype=bool)


def resize_masks_nearest(masks: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``[N, H, W]`` bool masks resized to ``hw`` by nearest neighbours (``F.interpolate(mode="nearest")``), one
    mask at a time: the working memory is one float mask, not ``N x H x W`` floats."""
    import torch
    import torch.nn.functional as F

    out = np.zeros((len(masks), int(hw[0]), int(hw[1])), dtype=bool)
    for n, m in enumerate(masks):
        t = torch.from_numpy(np.ascontiguousarray(m, dtype=np.uint8))[None, None].float()
        out[n] = F.interpolate(t, size=tuple(hw), mode="nearest")[0, 0].bool().numpy()
    return out


def layer_from_masks(masks: np.ndarray, hw: tuple[int, int] | None = None) -> np.ndarray:
    """One RGBA layer ``(H, W, 4)`` painting instance n in brush colour n (for showing uploaded instances in the
    editor); ``hw``: the editor's size (default the masks')."""
    ms = np.asarray(masks, dtype=bool)
    h, w = ms.shape[1:] if hw is None else hw
    out = np.zeros((h, w, 4), dtype=np.uint8)
    for n, m in enumerate(ms):
        m = _resize_mask(m, (h, w))
        out[m] = (*RANK_PALETTE[n % N_COLORS], 255)
    return out


def coco_from_masks(masks: np.ndarray, file_name: str) -> dict[str, Any]:
    """The instances as a COCO instances dataset of one image (id 1), category "object"."""
    from ifcn_viz.evaluate import coco_gt_from_masks

    ms = np.asarray(masks, dtype=bool)
    return coco_gt_from_masks([ms], [file_name])


def masks_from_coco(src: str | Path | dict, image_hw: tuple[int, int], name: str = "the COCO file") -> np.ndarray:
    """``[N, H, W]`` bool masks from a COCO instances file (a path, or an already parsed dict) whose one image has
    the size ``image_hw`` (or, of several images, the first of that size).  RLE and polygon segmentations are
    read with pycocotools.  Raises ``ValueError`` with one line saying what is wrong."""
    from ifcn_viz.evaluate import read_coco_json

    if isinstance(src, dict):
        data = src
        if not isinstance(data.get("images"), list):
            raise ValueError(f"{name} has no 'images' list: expected a COCO instances file")
        data.setdefault("annotations", [])
    else:
        path = Path(src)
        check_coco_upload(path.stat().st_size, name)
        try:
            data = read_coco_json(path)
        except ValueError as err:
            raise ValueError(str(err).replace(str(path), name)) from None
    h, w = image_hw
    images = [im for im in data["images"] if isinstance(im, dict)]
    match = [im for im in images if im.get("height") == h and im.get("width") == w]
    if not match:
        sizes = ", ".join(f"{im.get('width')} x {im.get('height')}" for im in images[:3]) or "no images"
        raise ValueError(f"{name} describes {sizes}, not this image ({w} x {h} px): draw on the image it was made for")
    img_id = match[0].get("id")
    anns = [a for a in data["annotations"] if isinstance(a, dict) and a.get("image_id") == img_id]
    check_instance_count(len(anns), name, (h, w))
    check_polygons(anns, (h, w), name)  # every point inside the image, before pycocotools sees one
    from pycocotools import mask as mask_utils

    out = []
    for i, a in enumerate(anns):
        seg = a.get("segmentation")
        try:
            if isinstance(seg, list):  # polygons (checked above)
                polys = [p for p in seg if isinstance(p, list) and len(p) >= 6]
                if not polys:
                    raise ValueError("no polygon with 3 points")
                rle = mask_utils.merge(mask_utils.frPyObjects([[float(v) for v in p] for p in polys], h, w))
                m = mask_utils.decode(rle).astype(bool)
            elif isinstance(seg, dict) and "counts" in seg:
                if list(seg.get("size", [h, w])) != [h, w]:
                    raise ValueError(f"its RLE is {seg.get('size')}, the image {[h, w]}")
                m = rle_decode(seg["counts"], (h, w))  # never pycocotools: its decoder trusts the counts' sum
            else:
                raise ValueError("no segmentation (polygons or RLE)")
        except ValueError as err:
            raise ValueError(f"{name}: annotation {i} ({a.get('id')}) cannot be read: {err}") from None
        except Exception as err:  # noqa: BLE001 -- pycocotools raises plain Exceptions on malformed counts
            raise ValueError(f"{name}: annotation {i} ({a.get('id')}) is not a valid segmentation ({err})") from None
        if m.shape != (h, w):
            raise ValueError(f"{name}: annotation {i} decodes to {m.shape}, not the image's {(h, w)}")
        if m.sum() >= MIN_AREA:
            out.append(m)
    if not out:
        raise ValueError(f"{name} has no instance of at least {MIN_AREA} pixels on this image")
    return np.stack(out)


def check_polygons(anns: list[dict], hw: tuple[int, int], name: str = "the COCO file") -> None:
    """Refuse polygons pycocotools must not see: a coordinate that is not a finite number inside the image (give
    or take :data:`~ifcn_viz.limits.POLYGON_MARGIN` px), more than :data:`~ifcn_viz.limits.MAX_POLYGON_VALUES`
    coordinates, or edges longer than :data:`~ifcn_viz.limits.MAX_POLYGON_LENGTH` px in all (pycocotools
    rasterises every edge at 5x and crashes on coordinates far outside the image: 4e8 is a SIGSEGV)."""
    h, w = hw
    values = length = 0
    for i, a in enumerate(anns):
        seg = a.get("segmentation")
        if not isinstance(seg, list):
            continue
        for poly in seg:
            if not isinstance(poly, list):
                continue
            values += len(poly)
            if values > MAX_POLYGON_VALUES:
                raise LimitError(
                    f"{name}: its polygons have more than {MAX_POLYGON_VALUES:,} coordinates (ifcn_viz.limits)"
                )
            try:
                xy = np.asarray(poly, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: annotation {i} ({a.get('id')}) has a polygon that is not numbers") from None
            if xy.ndim != 1 or len(xy) % 2:
                raise ValueError(f"{name}: annotation {i} ({a.get('id')}) has a polygon of unpaired coordinates")
            x, y = xy[0::2], xy[1::2]
            lo = -POLYGON_MARGIN
            ok = np.isfinite(xy).all() and (x >= lo).all() and (x <= w + POLYGON_MARGIN).all()
            if not (ok and (y >= lo).all() and (y <= h + POLYGON_MARGIN).all()):
                bad = int(np.argmax(~np.isfinite(x) | ~np.isfinite(y) | (x < lo) | (x > w + POLYGON_MARGIN)
                                    | (y < lo) | (y > h + POLYGON_MARGIN)))  # fmt: skip
                raise LimitError(
                    f"{name}: annotation {i} ({a.get('id')}) has the polygon point ({x[bad]:g}, {y[bad]:g}) outside "
                    f"the image ({w} x {h} px): every point must lie within it (refused before it is drawn)"
                )
            if len(x) > 1:
                length += float(np.maximum(np.abs(np.diff(x, append=x[:1])), np.abs(np.diff(y, append=y[:1]))).sum())
            if length > MAX_POLYGON_LENGTH:
                raise LimitError(
                    f"{name}: its polygons' edges are more than {MAX_POLYGON_LENGTH:,} px long in all (ifcn_viz.limits)"
                )


def rle_decode(counts: Any, hw: tuple[int, int]) -> np.ndarray:
    """A COCO RLE (uncompressed list or compressed string) as an ``(H, W)`` bool mask, its counts checked first:
    each a whole number >= 0 and their sum exactly ``H * W`` (pycocotools' decoder writes past its buffer when the
    sum is larger).  Raises ``ValueError`` naming what is wrong."""
    h, w = hw
    if isinstance(counts, str):
        runs = _rle_string_counts(counts)
    elif isinstance(counts, list):
        if len(counts) > h * w + 1:
            raise ValueError(f"its RLE has {len(counts):,} runs, more than the image's {h * w:,} pixels")
        try:
            runs = np.asarray(counts, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("its RLE counts are not numbers") from None
        if runs.ndim != 1 or not np.isfinite(runs).all() or (runs != np.floor(runs)).any():
            raise ValueError("its RLE counts must be whole numbers")
        runs = runs.astype(np.int64) if np.abs(runs).max(initial=0) < 2**62 else np.full(1, -1, np.int64)
    else:
        raise ValueError("its RLE counts must be a list of numbers or a compressed string")
    if (runs < 0).any():
        raise ValueError("its RLE has a negative run length")
    if int(runs.sum()) != h * w:
        raise ValueError(f"its RLE covers {int(runs.sum()):,} pixels, the image {h * w:,} ({w} x {h})")
    values = np.zeros(len(runs), dtype=bool)
    values[1::2] = True  # runs alternate 0, 1, 0, ... starting with 0
    return np.repeat(values, runs).reshape(w, h).T  # column-major, as COCO stores it


def _rle_string_counts(s: str) -> np.ndarray:
    """The counts of COCO's compressed RLE string (pycocotools' ``rleFrString``, vectorised, in int64)."""
    try:
        c = np.frombuffer(s.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    except UnicodeEncodeError:
        raise ValueError("its compressed RLE is not ASCII") from None
    if c.size == 0:
        return np.zeros(0, dtype=np.int64)
    if (c < 0).any() or (c > 63).any():
        raise ValueError("its compressed RLE has characters outside COCO's alphabet")
    more = (c & 0x20) != 0
    if more[-1]:
        raise ValueError("its compressed RLE ends in the middle of a number")
    ends = np.flatnonzero(~more)
    starts = np.concatenate([[0], ends[:-1] + 1])
    group = np.repeat(np.arange(len(ends)), ends - starts + 1)
    pos = np.arange(c.size) - starts[group]
    if pos.max() > 11:
        raise ValueError("its compressed RLE has a number too large")
    x = np.zeros(len(ends), dtype=np.int64)
    np.add.at(x, group, (c & 0x1F) << (5 * pos))
    sign = (c[ends] & 0x10) != 0
    x = np.where(sign, x | (-1 << (5 * (pos[ends] + 1))), x)
    # counts[i] = x[i] + counts[i - 2] for i > 2 (pycocotools' delta coding)
    out = x.copy()
    if len(out) > 3:
        out[3::2] = np.cumsum(x[1::2])[1:]
    if len(out) > 4:
        out[4::2] = np.cumsum(x[2::2])[1:]
    return out


def write_coco(masks: np.ndarray, file_name: str, directory: str | Path) -> Path:
    """Write :func:`coco_from_masks` to ``directory/<stem>_instances.json``; returns the path."""
    stem = Path(file_name).stem or "drawing"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60] or "drawing"
    path = Path(directory) / f"{safe}_instances.json"
    path.write_text(json.dumps(coco_from_masks(masks, f"{safe}.png")), encoding="utf-8")
    return path


__all__ = ["MAX_DRAWN_INSTANCES", "MIN_AREA", "brush_colors", "check_polygons", "coco_from_masks",
           "layer_from_masks", "masks_from_coco", "masks_from_layers", "rle_decode", "write_coco"]  # fmt: skip
