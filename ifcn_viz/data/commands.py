"""`ifcn-viz make-dataset synthetic|independent --out DIR [--n N] [--seed S] [--size H W]`: PNG images + COCO JSON.

``synthetic`` writes training-style scenes (``TRAIN_STYLE`` of :mod:`ifcn_viz.data.synthetic`); ``independent``
writes the independent yardstick, scenes drawn only from the held-out settings (``INDEPENDENT_STYLE``), by default
exactly the set committed under ``ifcn_viz/data/yardsticks/independent/`` (:mod:`ifcn_viz.data.independent`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def write_synthetic_coco(
    out: str | Path,
    n: int,
    seed: int = 0,
    size: Sequence[int] = (256, 256),
    progress: bool = False,
    style=None,
    optimize: bool = False,
) -> Path:
    """Write scenes ``(seed, 0..n-1)`` as ``out/images/NNNNNN.png`` + ``out/instances.json``; return the JSON path.

    ``style``: a :class:`~ifcn_viz.data.synthetic.SceneStyle` or its name (default: the training style);
    ``optimize``: smaller PNGs (slower to write).  Masks are stored as RLE (pycocotools), ``iscrowd`` 0, with
    ``area`` and ``bbox`` from pycocotools; image and annotation ids start at 1 (an annotation with id 0 is never
    matched by COCOeval); one category "object" (id 1).
    """
    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils
    from tqdm.auto import tqdm

    from ifcn_viz.data.synthetic import generate_scene, get_style
    from ifcn_viz.fileio import atomic_write_json

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    st = get_style(style)
    images, annotations = [], []
    for i in tqdm(range(n), disable=not progress, desc="scenes"):
        image, masks = generate_scene((seed, i), size, style=st)
        name = f"{i:06d}.png"
        Image.fromarray(image).save(out / "images" / name, optimize=optimize)
        images.append({"id": i + 1, "file_name": name, "height": image.shape[0], "width": image.shape[1]})
        for mk in masks:
            rle = mask_utils.encode(np.asfortranarray(mk.astype(np.uint8)))
            area, bbox = float(mask_utils.area(rle)), [float(v) for v in mask_utils.toBbox(rle)]
            rle["counts"] = rle["counts"].decode("ascii")
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1, "segmentation": rle,
                                "area": area, "bbox": bbox, "iscrowd": 0})  # fmt: skip
    desc = f"ifcn_viz synthetic scenes, style {st.name!r}, seeds ({seed}, 0..{n - 1}), size {tuple(size)}"
    info = {"description": desc}
    coco = {"info": info, "images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "object", "supercategory": "object"}]}  # fmt: skip
    path = out / "instances.json"
    atomic_write_json(path, coco)
    return path


def _run(args: argparse.Namespace) -> int:
    if args.kind == "independent":
        from ifcn_viz.data.independent import INDEPENDENT

        n = INDEPENDENT["n"] if args.n is None else args.n
        seed = INDEPENDENT["seed"] if args.seed is None else args.seed
        size = INDEPENDENT["size"] if args.size is None else tuple(args.size)
        path = write_synthetic_coco(
            args.out, n, seed=seed, size=size, progress=True, style="independent", optimize=True
        )
    else:
        if args.n is None:
            print("ifcn-viz make-dataset synthetic: --n is required", file=sys.stderr)
            return 2
        size = (256, 256) if args.size is None else tuple(args.size)
        path = write_synthetic_coco(args.out, args.n, seed=args.seed or 0, size=size, progress=True)
    data = json.loads(path.read_text())
    print(f"wrote {len(data['images'])} images and {len(data['annotations'])} instances to {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from ifcn_viz import cliargs as T

    p = subparsers.add_parser(
        "make-dataset",
        help="write a synthetic dataset as PNG images + COCO instances JSON",
        description="Write synthetic scenes as PNG images + a COCO instances JSON: for `ifcn-viz eval`, or to train "
        "with `train --dataset coco --coco-ann OUT/instances.json --image-dir OUT/images` (`train --dataset "
        "synthetic` generates its own scenes and does not read this folder). `independent` writes the independent "
        "yardstick (scenes from generator settings training never uses); its defaults give the committed set.",
    )
    p.add_argument(
        "kind",
        choices=["synthetic", "independent"],
        help="synthetic: training-style scenes; independent: the yardstick from held-out generator settings",
    )
    p.add_argument(
        "--n", type=T.int_range(1, 1_000_000), help="number of scenes (synthetic: required; independent: 32)"
    )
    p.add_argument("--out", type=T.writable_dir, required=True, help="output folder (images/ and instances.json)")
    p.add_argument("--seed", type=T.nonneg_int,
                   help="scene i has seed (SEED, i) (synthetic: 0; independent: the committed set's)")  # fmt: skip
    p.add_argument("--size", type=T.int_range(32, 4096), nargs=2, metavar=("H", "W"),
                   help="scene size in pixels (synthetic 256 256, independent 288 288)")  # fmt: skip
    p.set_defaults(func=_run)
