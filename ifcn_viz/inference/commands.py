"""`ifcn-viz propose` and `ifcn-viz eval`: segment proposals for images, and their AR on a COCO-format set.

A bad image never stops the run: its one-line reason goes to stderr, the other images are processed and the
results written (as they come: a failure late loses nothing done), and the command exits with status 1 at the end
(2 when no image could be used).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ifcn_viz import cliargs as T
from ifcn_viz.config import MASK_THRESHOLD, NMS_IOU


def register(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    common.add_argument(
        "--checkpoint", type=T.checkpoint, default="shipped", metavar="NAME|PATH",
        help="model: 'shipped' or a .safetensors path (its .json card beside it)",
    )  # fmt: skip
    common.add_argument("--nms-iou", type=T.unit, default=None, help="NMS IoU on the masks' tight boxes, in [0, 1] "
                        f"(default: the checkpoint's, paper {NMS_IOU})")  # fmt: skip
    common.add_argument("--mask-threshold", type=T.open_unit, default=None, help="binarise probabilities at this "
                        f"value, in (0, 1) (default: the checkpoint's, {MASK_THRESHOLD})")  # fmt: skip
    common.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    common.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = subparsers.add_parser(
        "propose",
        parents=[common],
        help="segment proposals for images -> COCO results JSON",
        description="Segment proposals for each IMAGE (files, folders or glob patterns), written as a COCO results "
        "list (image_id = position, from 1; each result also names its file_name) as the images are processed, "
        "with OUT.images.json mapping image ids to files.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders of images, or glob patterns")
    p.add_argument("--top-n", type=T.top_n, default=100, help="proposals per image")
    p.add_argument("--out", required=True, type=T.writable_file, help="results JSON to write")
    p.add_argument("--viz-dir", type=T.writable_dir, default=None, help="also write one PNG per image with the "
                   "proposals drawn")  # fmt: skip
    p.add_argument("--viz-top", type=T.nonneg_int, default=10, help="proposals drawn per image in --viz-dir")
    p.set_defaults(func=run_propose)

    e = subparsers.add_parser(
        "eval",
        parents=[common],
        help="AR@10/100/1000 of the proposals on a COCO instances file",
        description="Run the model on every image of a COCO instances file and report average recall "
        "(pycocotools, segm, useCats=0, maxDets 10/100/1000).",
    )
    e.add_argument("--coco-gt", required=True, type=T.json_file, help="COCO instances JSON (ground truth)")
    e.add_argument("--image-dir", required=True, type=T.existing_dir, help="folder holding the images' file_name "
                   "entries")  # fmt: skip
    e.add_argument("--top-n", type=T.top_n, default=1000, help="proposals per image")
    e.add_argument("--max-images", type=T.positive_int, default=None, help="evaluate only the first N images "
                   "(default: all)")  # fmt: skip
    e.add_argument("--out", type=T.writable_file, default=None, help="write the COCO results JSON here")
    e.add_argument("--metrics-out", type=T.writable_file, default=None, help="write the six metrics as JSON here")
    e.set_defaults(func=run_eval)


def _one_line(err: BaseException) -> str:
    return T.one_line(err)


def _image_reason(err: BaseException) -> str:
    """An image error worded for a CLI user: what was wrong, and the file types accepted (no Python types)."""
    from ifcn_viz.data.io import CLI_ACCEPTED

    reason = getattr(err, "reason", None)
    return f"{_one_line(ValueError(reason))} ({CLI_ACCEPTED})" if reason else _one_line(err)


def _load_predictor(args: argparse.Namespace):
    from ifcn_viz.checkpoints import CheckpointError
    from ifcn_viz.inference.predictor import Predictor

    try:
        predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device)
    except (CheckpointError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"ifcn-viz {args.command}: cannot load checkpoint {args.checkpoint}: {_one_line(err)}", file=sys.stderr)
        return None
    return predictor


def _proposal_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.top_n < 1:
        raise ValueError(f"--top-n must be >= 1, got {args.top_n}")
    kw: dict[str, Any] = {"top_n": args.top_n}
    if args.nms_iou is not None:
        kw["nms_iou"] = args.nms_iou
    if args.mask_threshold is not None:
        kw["mask_threshold"] = args.mask_threshold
    return kw


def _setup(args: argparse.Namespace, verb: str):
    """``(proposal kwargs, Predictor)``, or None after printing why (bad options or checkpoint)."""
    try:
        kw = _proposal_kwargs(args)
    except ValueError as err:
        print(f"ifcn-viz {verb}: {err}", file=sys.stderr)
        return None
    predictor = _load_predictor(args)
    return None if predictor is None else (kw, predictor)


class _ResultsWriter:
    """A COCO results list written as it grows: each image's results are flushed to disk when they are known,
    and the list is closed (valid JSON) on any exit but SIGKILL; ``OUT.images.json`` maps ids to files."""

    def __init__(self, path: Path) -> None:
        self.path, self.n, self.files = Path(path), 0, {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "w")  # opened before any image: an unwritable --out stops us here
        self.fh.write("[")
        self.fh.flush()

    def add(self, image_id: int, file_name: str, results: list[dict[str, Any]]) -> None:
        import json

        self.files[image_id] = file_name
        for r in results:
            self.fh.write(("," if self.n else "") + "\n" + json.dumps({**r, "file_name": file_name}))
            self.n += 1
        self.fh.flush()

    def close(self) -> None:
        from ifcn_viz.evaluate import save_json

        if not self.fh.closed:
            self.fh.write("\n]\n")
            self.fh.close()
        mapping = self.path.with_name(self.path.stem + ".images.json")
        save_json(mapping, {str(k): v for k, v in self.files.items()})


def run_propose(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ifcn_viz.data.io import ImageLoadError
    from ifcn_viz.evaluate import proposals_to_coco_results
    from ifcn_viz.limits import LimitError, check_mask_budget

    images = T.expand_images(args.images)  # a ValueError becomes one line (ifcn_viz.cli)
    writer = _ResultsWriter(args.out)  # before the model is loaded: an unwritable --out costs nothing
    try:
        setup = _setup(args, "propose")
        if setup is None:
            return 2
        kw, predictor = setup
        failed = 0
        for image_id, name in enumerate(tqdm(images, desc="propose", unit="img", disable=args.no_progress), 1):
            try:
                predictor.set_image(name)
                check_mask_budget(*predictor.image.shape[:2], kw["top_n"], name=Path(name).name)
                props = predictor.proposals(**kw)
            except (ImageLoadError, LimitError, OSError) as err:
                failed += 1
                reason = _image_reason(err)
                said = str(name) in reason or Path(name).name in reason.split(" ", 1)[0]  # the reason names the file
                what = "skipped" if said else f"skipped {name}"
                tqdm.write(f"ifcn-viz propose: {what}: {reason}", file=sys.stderr)
                continue
            except ValueError as err:  # bad --nms-iou / --mask-threshold: the same for every image
                print(f"ifcn-viz propose: {_one_line(err)}", file=sys.stderr)
                return 2
            writer.add(image_id, str(name), proposals_to_coco_results(props, image_id))
            if args.viz_dir is not None:
                out = Path(args.viz_dir) / f"{image_id:04d}_{Path(name).stem}.png"
                save_overlay(predictor.image, props, out, top=args.viz_top)
    finally:
        writer.close()
    if failed == len(images):  # nothing usable: the reasons above are the whole answer
        return 2
    print(f"wrote {writer.n} proposals for {len(images) - failed} image(s) to {args.out}", file=sys.stderr)
    return 1 if failed else 0


def run_eval(args: argparse.Namespace) -> int:
    from ifcn_viz.evaluate import METRIC_KEYS, _as_coco, check_images_found, evaluate_predictor, save_json

    gt = _as_coco(args.coco_gt)  # a results list or a non-COCO file: one line (ifcn_viz.cli's error boundary)
    ids = sorted(gt.getImgIds())[: args.max_images]
    check_images_found(gt, args.image_dir, ids, str(args.coco_gt))  # before the model is loaded
    setup = _setup(args, "eval")
    if setup is None:
        return 2
    kw, predictor = setup
    failures: list[str] = []

    def on_error(path: str, err: Exception) -> None:
        from tqdm.auto import tqdm

        failures.append(path)
        tqdm.write(f"ifcn-viz eval: skipped {path} (counted as no proposals): {_image_reason(err)}", file=sys.stderr)

    if "nms_iou" in kw or "mask_threshold" in kw:
        import dataclasses

        extra = {k: v for k, v in kw.items() if k != "top_n"}
        try:
            predictor.infer = dataclasses.replace(predictor.infer, **extra)
        except (TypeError, ValueError) as err:
            print(f"ifcn-viz eval: {err}", file=sys.stderr)
            return 2
    try:
        metrics, results = evaluate_predictor(
            predictor,
            gt,
            args.image_dir,
            top_n=args.top_n,
            progress=not args.no_progress,
            max_images=args.max_images,
            on_error=on_error,
        )
    except ValueError as err:
        print(f"ifcn-viz eval: {_one_line(err)}", file=sys.stderr)
        return 2
    for key in METRIC_KEYS:
        print(f"{key:8s} {metrics[key]:.4f}")
    if args.out is not None:
        save_json(args.out, results)
    if args.metrics_out is not None:
        save_json(args.metrics_out, metrics)
    return 1 if failures else 0


def save_overlay(image: Any, proposals: Any, path: Path, top: int = 10) -> None:
    """A PNG of ``image`` (same size) with the best ``top`` proposals drawn by the app's renderer
    (:func:`ifcn_viz.viz.proposals.proposals_view`: rank colours, labels that do not overlap)."""
    from PIL import Image

    from ifcn_viz.fileio import atomic_write
    from ifcn_viz.viz.proposals import proposals_view

    im = Image.fromarray(proposals_view(image, proposals, top))
    atomic_write(path, lambda tmp: im.save(tmp, format="PNG"))
