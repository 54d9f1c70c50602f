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

from ifcn_viz.limits import MAX_DRAWN_INSTANCES, check_coco_upload, check_instance_count
from ifcn_viz.viz.palette import RANK_PALETTE

MIN_AREA = 16
"""Painted specks smaller than this many pixels (original resolution) are not instances."""
N_COLORS = len(RANK_PALETTE)


def brush_colors() -> list[str]:
    """The editor's brush colours, instance 0 first (CSS ``rgb(...)``)."""
    return [f"rgb({r}, {g}, {b})" for r, g, b in RANK_PALETTE]


def _nearest_color(rgb: np.ndarray) -> np.ndarray:
    pal = np.asarray(RANK_PALETTE, dtype=np.int32)  # (C, 3)
    d = ((rgb[:, None, :].astype(np.int32) - pal[None]) ** 2).sum(-1)  # (P, C)
    return d.argmin(1)


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
        a = np.asarray(layer)
        if a.ndim != 3 or a.shape[2] != 4:
            raise ValueError(f"a drawing layer must be an RGBA image, got shape {a.shape}")
        if label is None:
            label = np.full(a.shape[:2], -1, dtype=np.int16)
        elif a.shape[:2] != label.shape:
            raise ValueError(f"the drawing's layers differ in size: {a.shape[:2]} vs {label.shape}")
        painted = a[:, :, 3] >= 128
        if painted.any():
            label[painted] = _nearest_color(a[:, :, :3][painted])  # an upper layer overwrites a lower one
    if label is None:
        return np.zeros((0, *image_hw), dtype=bool)
    masks = [m for m in (_resize_mask(label == c, image_hw) for c in range(N_COLORS)) if m.sum() >= MIN_AREA]
    return np.stack(masks) if masks else np.zeros((0, *image_hw), dtype=bool)


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
    check_instance_count(len(anns), name)
    from pycocotools import mask as mask_utils

    out = []
    for i, a in enumerate(anns):
        seg = a.get("segmentation")
        try:
            if isinstance(seg, list):  # polygons
                polys = [p for p in seg if isinstance(p, list) and len(p) >= 6]
                if not polys:
                    raise ValueError("no polygon with 3 points")
                rle = mask_utils.merge(mask_utils.frPyObjects([[float(v) for v in p] for p in polys], h, w))
            elif isinstance(seg, dict) and "counts" in seg:
                counts = seg["counts"]
                rle = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
                if isinstance(counts, list):
                    rle = mask_utils.frPyObjects(rle, h, w)
                if list(seg.get("size", [h, w])) != [h, w]:
                    raise ValueError(f"its RLE is {seg.get('size')}, the image {[h, w]}")
            else:
                raise ValueError("no segmentation (polygons or RLE)")
            m = mask_utils.decode(rle).astype(bool)
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


def write_coco(masks: np.ndarray, file_name: str, directory: str | Path) -> Path:
    """Write :func:`coco_from_masks` to ``directory/<stem>_instances.json``; returns the path."""
    stem = Path(file_name).stem or "drawing"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60] or "drawing"
    path = Path(directory) / f"{safe}_instances.json"
    path.write_text(json.dumps(coco_from_masks(masks, f"{safe}.png")), encoding="utf-8")
    return path


__all__ = ["MAX_DRAWN_INSTANCES", "MIN_AREA", "brush_colors", "coco_from_masks", "layer_from_masks",
           "masks_from_coco", "masks_from_layers", "write_coco"]  # fmt: skip
