"""Segment-proposal evaluation the standard way: COCO-format results and average recall via pycocotools.

``COCOeval(gt, gt.loadRes(results), "segm")`` with ``useCats = 0`` (proposals are class-agnostic) and
``maxDets = [10, 100, 1000]``; ``stats[6:9]`` are AR@10/100/1000 and ``stats[9:12]`` AR small/medium/large at
1000 (IoU 0.5:0.05:0.95), as in the paper's Tables (docs/PAPER_NOTES.md, Sec. 5).

Traps handled here: results whose ``category_id`` is not a ground-truth category are silently dropped by
pycocotools even with ``useCats = 0`` (we map every result to the first ground-truth category); an annotation
with id 0 is never counted as matched (we renumber the ground truth from 1 when any id is not positive or ids
repeat); missing ``area``/``iscrowd`` fields are filled in; empty results give recall 0 rather than a crash.
AR for an area range with no ground truth is -1, as pycocotools reports it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

METRIC_KEYS = ("AR@10", "AR@100", "AR@1000", "AR_s", "AR_m", "AR_l")


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """``(H, W)`` bool -> COCO RLE ``{"size": [H, W], "counts": str}`` (JSON-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def proposals_to_coco_results(proposals: Any, image_id: int) -> list[dict[str, Any]]:
    """One COCO result per proposal: ``image_id``, ``category_id`` 1, RLE ``segmentation``, ``score``, ``bbox`` xywh."""
    from pycocotools import mask as mask_utils

    masks = np.asarray(proposals.masks)
    if masks.ndim != 3:
        raise ValueError(f"proposals.masks must be [N, H, W], got shape {masks.shape}")
    results = []
    for mask, score in zip(masks, np.asarray(proposals.scores, dtype=np.float64)):
        rle = encode_mask(mask)
        bbox = mask_utils.toBbox({"size": rle["size"], "counts": rle["counts"].encode("ascii")})
        results.append(
            {
                "image_id": int(image_id),
                "category_id": 1,
                "segmentation": rle,
                "score": float(score),
                "bbox": [float(v) for v in bbox],
            }
        )
    return results


def _as_coco(coco_gt: Any):
    from pycocotools.coco import COCO

    if isinstance(coco_gt, COCO):
        return coco_gt
    if isinstance(coco_gt, dict):  # an in-memory instances dataset
        coco = COCO()
        coco.dataset = coco_gt
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        return coco
    path = Path(coco_gt)
    if not path.is_file():
        raise FileNotFoundError(f"COCO ground-truth file not found: {path}")
    data = read_coco_json(path)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def read_coco_json(path: str | Path, what: str = "COCO instances file") -> dict[str, Any]:
    """Read and check a COCO instances JSON; a one-line :class:`ValueError` naming the file when it is not one.

    Recognises a COCO *results* list (what ``propose`` / ``eval --out`` write) passed as ground truth.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not a JSON text file (byte {err.start} is not UTF-8): expected a {what}") from None
    except json.JSONDecodeError as err:
        where = f"line {err.lineno}, column {err.colno}"
        raise ValueError(f"{path} is not valid JSON ({where}): expected a {what}") from None
    if isinstance(data, list):
        if data and isinstance(data[0], dict) and "score" in data[0]:
            raise ValueError(
                f"{path} is a COCO results list (proposals with scores, as written by propose/eval --out), not "
                f"ground truth: give the {what} with 'images', 'annotations' and 'categories'"
            )
        raise ValueError(f"{path} is a JSON list; a {what} is an object with 'images', 'annotations', 'categories'")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{path} has no 'images' list: expected a {what} ('images', 'annotations', 'categories')")
    data.setdefault("annotations", [])
    return data


def _sanitised_gt(coco_gt: Any):
    """A COCO object safe for proposal AR: positive unique ann ids, ``area`` and ``iscrowd`` present."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    anns = coco_gt.dataset.get("annotations", [])
    ids = [a.get("id") for a in anns]
    bad_ids = any(not isinstance(i, int) or i <= 0 for i in ids) or len(set(ids)) != len(ids)
    missing = any("area" not in a or "iscrowd" not in a for a in anns)
    if not coco_gt.dataset.get("categories"):
        raise ValueError("the ground truth has no 'categories'; add at least one (e.g. {'id': 1, 'name': 'object'})")
    if not bad_ids and not missing:
        return coco_gt
    dataset = copy.deepcopy(coco_gt.dataset)
    for new_id, ann in enumerate(dataset["annotations"], start=1):
        if bad_ids:
            ann["id"] = new_id
        ann.setdefault("iscrowd", 0)
        if "area" not in ann:
            img = coco_gt.imgs[ann["image_id"]]
            rle = coco_gt.annToRLE({**ann, "image_id": img["id"]})
            ann["area"] = float(mask_utils.area(rle))
    fixed = COCO()
    fixed.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        fixed.createIndex()
    return fixed


def _cocoeval(
    coco_gt: Any,
    results: list[dict[str, Any]],
    max_dets: Sequence[int],
    area_ranges: Sequence[tuple[float, float]] | None = None,
):
    """The class-agnostic ``COCOeval(gt, dt, "segm")`` run every metric here reads (evaluated and accumulated).

    ``area_ranges``: ``[(lo, hi), ...]`` in pixels of mask area instead of COCO's all / small / medium / large
    (then ``summarize`` is skipped: its stats assume COCO's four ranges)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    max_dets = [int(d) for d in max_dets]
    if len(max_dets) != 3 or sorted(max_dets) != max_dets or max_dets[0] < 1:
        raise ValueError(f"max_dets must be three increasing positive ints (COCOeval reads three), got {max_dets}")
    gt = _sanitised_gt(_as_coco(coco_gt))
    known = set(gt.getImgIds())
    stray = sorted({r.get("image_id") for r in results} - known)
    if stray:
        raise ValueError(f"results name image ids that are not in the ground truth: {stray[:5]}")
    cat = sorted(gt.getCatIds())[0]  # a ground-truth category, or pycocotools drops the result (AR = 0)
    with contextlib.redirect_stdout(io.StringIO()):
        if results:
            dt = gt.loadRes([{**r, "category_id": cat} for r in results])
        else:  # loadRes([]) crashes: an empty detection set gives recall 0 where there is ground truth
            dt = COCO()
            dt.dataset = {"images": list(gt.dataset["images"]), "categories": gt.dataset["categories"]}
            dt.dataset["annotations"] = []
            dt.createIndex()
        ev = COCOeval(gt, dt, "segm")
        ev.params.useCats = 0  # proposals are class-agnostic
        ev.params.maxDets = max_dets
        if area_ranges is not None:
            ev.params.areaRng = [[float(lo), float(hi)] for lo, hi in area_ranges]
            ev.params.areaRngLbl = [f"{lo:g}-{hi:g}" for lo, hi in area_ranges]
        ev.evaluate()
        ev.accumulate()
        if area_ranges is None:
            ev.summarize()
    return ev


def evaluate_results(
    coco_gt: Any, results: list[dict[str, Any]], max_dets: Sequence[int] = (10, 100, 1000)
) -> dict[str, float]:
    """AR of segment ``results`` against ``coco_gt`` (a ``COCO``, an instances dict, or a path to its JSON).

    Returns ``{"AR@10", "AR@100", "AR@1000", "AR_s", "AR_m", "AR_l"}`` (named after ``max_dets``; the area
    ranges use the largest) and ``recall50@N``: the fraction of instances matched at IoU 0.5 by the best N
    proposals of their image, for each N of ``max_dets``.  Every ground-truth image counts, including those
    without results.
    """
    ev = _cocoeval(coco_gt, results, max_dets)
    dets = list(ev.params.maxDets)
    names = [f"AR@{d}" for d in dets] + ["AR_s", "AR_m", "AR_l"]
    metrics = {name: float(v) for name, v in zip(names, ev.stats[6:12])}
    for m, d in enumerate(dets):  # iouThrs[0] is 0.5; area range 0 is "all"; -1 (no ground truth) reads as 0
        metrics[f"recall50@{d}"] = max(0.0, float(ev.eval["recall"][0, 0, 0, m]))
    return metrics


def recall_at_iou(coco_gt: Any, results: list[dict[str, Any]], iou: float = 0.5, max_dets: int = 100) -> float:
    """Class-agnostic recall at one IoU threshold with ``max_dets`` proposals per image.

    The same ``COCOeval`` run as :func:`evaluate_results` (``maxDets = [10, 100, 1000]``, ``max_dets`` one of them),
    read from ``ev.eval["recall"][t, 0, 0, m]``: ``t`` the index of ``iou`` in ``iouThrs`` (0.50:0.05:0.95), area
    range "all", ``m`` the index of ``max_dets``.  AR@100 is the mean of this over the ten thresholds.
    """
    dets = [10, 100, 1000]
    if max_dets not in dets:
        raise ValueError(f"max_dets must be one of {dets}, got {max_dets}")
    ev = _cocoeval(coco_gt, results, dets)
    t = np.flatnonzero(np.isclose(ev.params.iouThrs, iou))
    if t.size != 1:
        raise ValueError(f"iou must be one of {list(ev.params.iouThrs)}, got {iou}")
    return max(0.0, float(ev.eval["recall"][t[0], 0, 0, dets.index(max_dets)]))


SIZE_EDGES: tuple[float, ...] = (0, 32, 48, 64, 96, 128, 1e5)
"""Object-size bins of :func:`recall_by_size`, in pixels of sqrt(mask area): COCO's small / medium / large split at
32 and 96 px, with medium and large cut finer (the window's reference size is 96 px, notebook 4)."""


def recall_by_size(
    coco_gt: Any, results: list[dict[str, Any]], edges: Sequence[float] = SIZE_EDGES, max_dets: int = 100
) -> list[dict[str, Any]]:
    """Recall against object size: one row per bin ``[edges[i], edges[i + 1])`` of sqrt(mask area) in pixels.

    Each row: ``lo``, ``hi`` (px), ``instances`` (ground-truth instances in the bin), ``recall50`` (recall at IoU
    0.5 with the best ``max_dets`` proposals of each image) and ``AR`` (recall averaged over IoU 0.5:0.05:0.95, as
    AR@``max_dets``); both are ``None`` for a bin without ground truth.  The same class-agnostic ``COCOeval`` as
    :func:`evaluate_results`, with its area ranges set to the bins (pycocotools matches a proposal to any
    instance, then counts only the instances in the range -- the standard AR-by-size).
    """
    edges = [float(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])) or edges[0] < 0:
        raise ValueError(f"edges must be at least two increasing sizes >= 0, got {edges}")
    ranges = [(lo * lo, hi * hi) for lo, hi in zip(edges, edges[1:])]
    dets = sorted({1, int(max_dets), int(max_dets) + 1})  # COCOeval reads three; only max_dets is used
    ev = _cocoeval(coco_gt, results, dets, area_ranges=ranges)
    m = dets.index(int(max_dets))
    areas = np.array([a["area"] for a in ev.cocoGt.anns.values() if not a.get("iscrowd", 0)], dtype=np.float64)
    rows = []
    for a, (lo, hi) in enumerate(zip(edges, edges[1:])):
        rec = ev.eval["recall"][:, 0, a, m]  # over the IoU thresholds; -1 where the bin has no ground truth
        n = int(((areas >= lo * lo) & (areas < hi * hi)).sum())
        has = n > 0 and bool((rec > -1).all())
        rows.append({"lo": lo, "hi": hi, "instances": n, "recall50": float(rec[0]) if has else None,
                     "AR": float(rec.mean()) if has else None})  # fmt: skip
    return rows


def evaluate_predictor(
    predictor: Any,
    coco_gt_path: Any,
    image_dir: str | Path,
    top_n: int = 1000,
    progress: bool = True,
    max_images: int | None = None,
    on_error: Callable[[str, Exception], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Run ``predictor`` on every image of a COCO instances file; return ``(metrics, results)``.

    ``max_images``: evaluate only the first N images (by id) -- the ground truth is restricted to them too.
    ``on_error(file, error)``: called for an image that cannot be loaded or does not match its ground-truth size,
    which then counts as having no proposals; without it the error propagates.  When *none* of the images is
    found in ``image_dir`` a :class:`ValueError` says so (a wrong folder would otherwise give AR 0).
    ``on_progress(done, total)``: called after each image.
    """
    from tqdm.auto import tqdm

    from ifcn_viz.data.io import ImageLoadError
    from ifcn_viz.limits import check_mask_budget

    gt = _as_coco(coco_gt_path)
    img_ids = sorted(gt.getImgIds())
    if max_images is not None:
        img_ids = img_ids[: int(max_images)]
        gt = _restrict(gt, set(img_ids))
    image_dir = Path(image_dir)
    check_images_found(gt, image_dir, img_ids, _name(coco_gt_path))
    results: list[dict[str, Any]] = []
    for done, img_id in enumerate(tqdm(img_ids, desc="eval", unit="img", disable=not progress), 1):
        info = gt.imgs[img_id]
        path = image_dir / info["file_name"]
        try:
            predictor.set_image(path)
            h, w = predictor.image.shape[:2]
            if (info.get("height"), info.get("width")) not in ((None, None), (h, w)):
                raise ImageLoadError(
                    f"{path} is {w}x{h} but the ground truth says {info.get('width')}x{info.get('height')}"
                )
            check_mask_budget(h, w, top_n, name=str(info["file_name"]))  # a LimitError stops the evaluation
            results += proposals_to_coco_results(predictor.proposals(top_n=top_n), img_id)
        except (ImageLoadError, OSError) as err:
            if on_error is None:
                raise
            on_error(str(path), err)
        if on_progress is not None:
            on_progress(done, len(img_ids))
    return evaluate_results(gt, results), results


def results_by_scales(
    predictor: Any,
    coco_gt_path: Any,
    image_dir: str | Path,
    scale_sets: dict[str, Callable[[Any], Sequence[int] | None]],
    top_n: int = 100,
    max_images: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """COCO results of several scale choices from one backbone run per image: ``{name: results}``.

    ``scale_sets[name](predictor)`` is called after each ``set_image`` and returns the scale indices to propose
    from (``None``: every scale of the pyramid), e.g. ``{"pyramid": lambda p: None, "one scale": lambda p:
    [p.default_scale]}``.  The maps of every scale are computed once, so each extra choice costs only its NMS.
    """
    gt = _as_coco(coco_gt_path)
    img_ids = sorted(gt.getImgIds())[: None if max_images is None else int(max_images)]
    image_dir = Path(image_dir)
    check_images_found(gt, image_dir, img_ids, _name(coco_gt_path))
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in scale_sets}
    for img_id in img_ids:
        predictor.set_image(image_dir / gt.imgs[img_id]["file_name"])
        for name, choose in scale_sets.items():
            out[name] += proposals_to_coco_results(predictor.proposals(top_n=top_n, scales=choose(predictor)), img_id)
    return out


def check_images_found(gt: Any, image_dir: str | Path, img_ids: Sequence[int] | None = None, name: str = "") -> None:
    """A one-line ``ValueError`` when the ground truth lists no image, or none of them is in ``image_dir``."""
    image_dir = Path(image_dir)
    img_ids = sorted(gt.getImgIds()) if img_ids is None else list(img_ids)
    if not img_ids:
        raise ValueError(f"the ground truth {name} lists no images".replace("  ", " "))
    if not any((image_dir / str(gt.imgs[i].get("file_name", ""))).is_file() for i in img_ids):
        first = gt.imgs[img_ids[0]].get("file_name")
        raise ValueError(
            f"none of the {len(img_ids)} images of the ground truth is in {image_dir} (e.g. {first}); "
            "--image-dir must be the folder their file_name entries are relative to"
        )


def _name(src: Any) -> str:
    return str(src) if isinstance(src, (str, Path)) else "(in memory)"


def _restrict(gt: Any, img_ids: set[int]):
    from pycocotools.coco import COCO

    d = gt.dataset
    sub = COCO()
    sub.dataset = {
        **d,
        "images": [i for i in d["images"] if i["id"] in img_ids],
        "annotations": [a for a in d.get("annotations", []) if a["image_id"] in img_ids],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        sub.createIndex()
    return sub


def save_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (readers never see half a file)."""
    from ifcn_viz.fileio import atomic_write_json

    atomic_write_json(path, obj)


def coco_gt_from_masks(
    masks_per_image: Sequence[np.ndarray], file_names: Sequence[str] | None = None, min_area: int = 1
) -> dict[str, Any]:
    """A COCO instances dataset (dict) from ``[N_i, H, W]`` bool masks per image: image ids and ann ids from 1,
    one category ``{"id": 1, "name": "object"}``, RLE segmentations.  Masks under ``min_area`` pixels are skipped."""
    from pycocotools import mask as mask_utils

    images, anns = [], []
    for img_id, masks in enumerate(masks_per_image, start=1):
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 3:
            raise ValueError(f"image {img_id}: masks must be [N, H, W], got shape {masks.shape}")
        h, w = masks.shape[1:]
        name = file_names[img_id - 1] if file_names is not None else f"{img_id:06d}.png"
        images.append({"id": img_id, "file_name": name, "height": int(h), "width": int(w)})
        for mask in masks:
            area = int(mask.sum())
            if area < min_area:
                continue
            rle = encode_mask(mask)
            bbox = mask_utils.toBbox({"size": rle["size"], "counts": rle["counts"].encode("ascii")})
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img_id,
                    "category_id": 1,
                    "segmentation": rle,
                    "area": float(area),
                    "bbox": [float(v) for v in bbox],
                    "iscrowd": 0,
                }
            )
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "object"}]}


@dataclass(frozen=True)
class ObjectRecall:
    """Every ground-truth object's best mask IoU among the first N proposals of its image, for each N.

    Recall as in proposal-evaluation papers (Hosang et al., "What makes for effective detection proposals?",
    PAMI 2016): an object counts at IoU t with N proposals when one of its image's best N has IoU >= t with it;
    there is no one-to-one matching, so the values can be a little above COCOeval's (greedy matching)."""

    ann_ids: np.ndarray  # (G,) int
    image_ids: np.ndarray  # (G,) int
    areas: np.ndarray  # (G,) float: mask area in pixels (COCO's "area")
    max_dets: tuple[int, ...]  # the Ns
    best_iou: np.ndarray  # (len(max_dets), G) float
    best_rank: np.ndarray  # (G,) int: rank (0-based, in score order) of the best proposal among all; -1 if none

    def recall(self, iou: float | np.ndarray, n: int | None = None, subset: np.ndarray | None = None) -> np.ndarray:
        """Recall at ``iou`` (a number or an array of thresholds) with ``n`` proposals (default: the largest),
        over the objects selected by the bool mask ``subset`` (default all); NaN when the subset is empty."""
        row = self.best_iou[self.max_dets.index(n) if n is not None else -1]
        if subset is not None:
            row = row[subset]
        thr = np.atleast_1d(np.asarray(iou, dtype=float))
        out = np.array([(row >= t).mean() if row.size else np.nan for t in thr])
        return out if np.ndim(iou) else out[0]

    def average_recall(self, n: int | None = None, subset: np.ndarray | None = None) -> float:
        """AR: the recall averaged over IoU 0.5, 0.55, ..., 0.95 (COCO's thresholds)."""
        return float(np.mean(self.recall(COCO_IOUS, n, subset)))

    def size_classes(self) -> dict[str, np.ndarray]:
        """COCO's area ranges as bool masks over the objects: small < 32², medium < 96², large."""
        a = self.areas
        return {"small": a < 32**2, "medium": (a >= 32**2) & (a < 96**2), "large": a >= 96**2}


COCO_IOUS = np.linspace(0.5, 0.95, 10)


def object_recall(
    coco_gt: Any,
    results: list[dict[str, Any]],
    max_dets: Sequence[int] = (1, 10, 100, 1000),
    max_images: int | None = None,
) -> ObjectRecall:
    """Each ground-truth object's best mask IoU among its image's first N ``results`` (by score), for each N of
    ``max_dets`` (pycocotools' ``maskUtils.iou``; crowd annotations are skipped).  ``max_images``: only the first
    N images by id, as :func:`evaluate_predictor` evaluates with the same argument."""
    from pycocotools import mask as mask_utils

    gt = _sanitised_gt(_as_coco(coco_gt))
    max_dets = tuple(sorted(int(d) for d in max_dets))
    by_image: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        by_image.setdefault(int(r["image_id"]), []).append(r)
    ann_ids, img_ids, areas, best, ranks = [], [], [], [], []
    for img_id in sorted(gt.getImgIds())[: max_images if max_images is not None else None]:
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=img_id)) if not a.get("iscrowd", 0)]
        if not anns:
            continue
        dets = sorted(by_image.get(img_id, []), key=lambda r: -float(r["score"]))[: max_dets[-1]]
        g_rles = [gt.annToRLE(a) for a in anns]
        if dets:
            d_rles = [{**r["segmentation"], "counts": _counts(r["segmentation"]["counts"])} for r in dets]
            iou = np.asarray(mask_utils.iou(d_rles, g_rles, [0] * len(g_rles)), dtype=float).reshape(len(dets), -1)
        else:
            iou = np.zeros((0, len(anns)))
        for j, a in enumerate(anns):
            ann_ids.append(a["id"])
            img_ids.append(img_id)
            areas.append(float(a.get("area") or mask_utils.area(g_rles[j])))
            col = iou[:, j]
            best.append([col[:n].max() if col[:n].size else 0.0 for n in max_dets])
            ranks.append(int(col.argmax()) if col.size and col.max() > 0 else -1)
    best_arr = np.asarray(best, dtype=float).reshape(-1, len(max_dets)).T
    return ObjectRecall(np.asarray(ann_ids, int), np.asarray(img_ids, int), np.asarray(areas, float), max_dets,
                        best_arr, np.asarray(ranks, int))  # fmt: skip


def _counts(counts: Any) -> Any:
    return counts.encode("ascii") if isinstance(counts, str) else counts


def missed_objects(
    coco_gt: Any, results: list[dict[str, Any]], recall: ObjectRecall, iou: float = 0.5, n: int | None = None,
    limit: int = 8,
) -> list[dict[str, Any]]:  # fmt: skip
    """The objects no proposal among the first ``n`` (default: the largest of ``recall.max_dets``) finds at ``iou``,
    worst first, at most ``limit``: dicts with ``image_id``, ``ann_id``, ``gt`` (H, W bool), ``iou`` (the best IoU),
    ``rank`` (of the best proposal among the first ``n``, 0-based; -1 if none overlaps) and ``best`` (its mask, or
    None) -- for a gallery."""
    from pycocotools import mask as mask_utils

    gt = _sanitised_gt(_as_coco(coco_gt))
    n = recall.max_dets[-1] if n is None else int(n)
    row = recall.best_iou[recall.max_dets.index(n)]
    order = [i for i in np.argsort(row, kind="stable") if row[i] < iou][:limit]
    by_image: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        by_image.setdefault(int(r["image_id"]), []).append(r)
    out = []
    for i in order:
        img_id = int(recall.image_ids[i])
        ann = gt.loadAnns(int(recall.ann_ids[i]))[0]
        dets = sorted(by_image.get(img_id, []), key=lambda r: -float(r["score"]))[:n]  # the first n only
        rles = [{**d["segmentation"], "counts": _counts(d["segmentation"]["counts"])} for d in dets]
        ious = np.asarray(mask_utils.iou(rles, [gt.annToRLE(ann)], [0]), dtype=float).ravel() if rles else np.zeros(0)
        rank = int(ious.argmax()) if ious.size and ious.max() > 0 else -1
        best = mask_utils.decode(rles[rank]).astype(bool) if rank >= 0 else None
        out.append({"image_id": img_id, "ann_id": int(recall.ann_ids[i]), "gt": gt.annToMask(ann).astype(bool),
                    "iou": float(row[i]), "rank": rank, "best": best})  # fmt: skip
    return out
