"""Render every view for one example image into a folder (docs/gallery/ by default).

    python -m ifcn_viz.gallery.render --out docs/gallery [--image PATH] [--checkpoint shipped|PATH]
    ifcn-viz gallery --out docs/gallery

The ground-truth views (ideal maps, k = 1 vs k = 5, training targets) use a synthetic scene with touching
same-texture objects (``ifcn_viz.data.synthetic.generate_scene``).  The learned views (mosaic, objectness, window,
proposals, NMS) need a model: the shipped one by default.  Without one, the learned views are drawn from the
scene's *ideal* maps instead and say so in their titles, and a message names what is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ifcn_viz.inference.window import WindowGrid
from ifcn_viz.viz import (
    assembly_frames,
    effective_receptive_field,
    ideal_score_maps,
    ideal_vs_learned,
    k_comparison,
    nms_steps_view,
    objectness_overlay,
    proposals_view,
    provenance_view,
    receptive_field_view,
    save_gif,
    save_png,
    score_map_layers,
    score_map_mosaic,
    slide_frames,
    theoretical_receptive_field,
    top_windows,
    training_targets_view,
    window_view,
)
from ifcn_viz.viz.palette import pad, title_panel, to_rgb_uint8

SCENE_SEED = 21  # two touching same-texture objects that fit the 168-px window, and positive windows
SCENE_SIZE = (320, 320)
K, M, STRIDE = 5, 21, 8


def example_scene(seed: int = SCENE_SEED, size: tuple[int, int] = SCENE_SIZE) -> tuple[np.ndarray, np.ndarray | None]:
    """``(image uint8 [H, W, 3], masks bool [N, H, W] or None)``: a synthetic scene, else skimage's coins."""
    try:
        from ifcn_viz.data.synthetic import generate_scene
    except ImportError:
        from skimage import data

        return to_rgb_uint8(data.coins()), None
    return generate_scene(seed, size=size, min_objects=4, max_objects=6, touching_fraction=1.0)


def _load_predictor(checkpoint: str | None, log: Callable[[str], None]):
    if checkpoint is None:
        return None
    try:
        from ifcn_viz.inference.predictor import Predictor

        return Predictor.from_checkpoint(checkpoint, device="cpu")
    except Exception as err:  # a missing or broken checkpoint must not stop the model-free views
        log(
            f"no model: could not load checkpoint {checkpoint!r} ({type(err).__name__}: {err}). "
            "The learned views are drawn from the scene's IDEAL maps instead (titles say so); "
            "train or pass a checkpoint with --checkpoint PATH for the learned ones."
        )
        return None


def render_gallery(
    out_dir: str | Path,
    image: str | Path | None = None,
    checkpoint: str | None = "shipped",
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Render every view into ``out_dir``; returns the written files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(name: str, arr: np.ndarray) -> None:
        written.append(save_png(arr, out / name, optimize=True))

    scene, masks = example_scene()
    if image is not None:
        from ifcn_viz.data.io import load_image

        img = load_image(image)
    else:
        img = scene
    predictor = _load_predictor(checkpoint, log)
    source = "ideal maps (no model loaded)"
    if predictor is not None:
        predictor.set_image(img)
        sm = predictor.scales[predictor.default_scale]
        grid = predictor.grid(sm.index)
        source = f"learned maps, scale {sm.index} (shorter side {sm.shorter_side})"
    elif masks is not None and image is None:
        ideal = ideal_score_maps(masks, K, M, STRIDE)
        grid = WindowGrid.from_maps(ideal.score_maps, M, STRIDE, ideal.objectness[0], image_hw=img.shape[:2])
    else:
        log("no model and no ground truth for this image: only the receptive-field view can be drawn")
        grid = None
    if grid is not None:
        maps, obj, stride, factor, m = grid.maps.score_maps, grid.maps.objectness, grid.stride, grid.maps.factor, grid.m
        cy, cx, _ = top_windows(obj, 1)[0]
        if masks is not None and image is None:  # the window on one of the touching objects: the interesting one
            ys, xs = np.nonzero(masks[_inner_of(masks, _touching_pair(masks))])
            px, py = (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2
            cy, cx = grid.cell_of_pixel(px, py)
        put(
            "score_maps.png",
            pad(
                score_map_mosaic(
                    maps,
                    image=img,
                    window=(cy, cx, m),
                    stride=stride,
                    factor=factor,
                    cell_px=3,
                    title=f"k x k score maps: {source}",
                )
            ),
        )
        put(
            "objectness.png",
            pad(title_panel(objectness_overlay(img, grid, top=5), f"objectness: {source}")),
        )
        win = grid.window(cy, cx)
        put("window.png", pad(window_view(img, win, maps)))
        frames = assembly_frames(grid, (cy, cx), cell_px=9)
        written.append(save_gif(frames, out / "assembly.gif", duration_ms=450))
        put("assembly_step.png", frames[len(frames) // 2])
        row_cols = list(range(max(0, cx - 12), min(maps.shape[2], cx + 13), 2))
        written.append(save_gif(slide_frames(grid, cy, row_cols, img, cell_px=6), out / "slide.gif", duration_ms=350))
        ch, cw = grid.cell_size
        prov = grid.provenance((cx + 3.5) * cw, (cy + 0.5) * ch)
        put("provenance.png", provenance_view(img, prov))
    if masks is not None:
        ideal = ideal_score_maps(masks, K, M, STRIDE)
        touching = _touching_pair(masks)
        put("k_comparison.png", k_comparison(masks[list(touching)], STRIDE, M, (1, 5), image=scene))
        if predictor is not None and image is None:
            # the ideal maps of the masks resized to the learned scale, so both sit on the same feature grid
            rh, rw = sm.resized_hw
            scaled = torch.nn.functional.interpolate(torch.from_numpy(masks)[None].float(), (rh, rw))[0] > 0.5
            ideal_s = ideal_score_maps(scaled, predictor.k, m, stride)
            cy0, cx0 = ideal_s.centers[_inner_of(masks, touching)].tolist()
            hf, wf = maps.shape[1:]
            ideal_maps = ideal_s.score_maps[:, :hf, :wf]  # (k*k, H', W'): the model's grid may floor, not ceil
            ideal_grid = WindowGrid(dataclasses.replace(sm, score_maps=ideal_maps), m)
            put("ideal_vs_learned.png", pad(ideal_vs_learned(ideal_grid, grid, (cy0, cx0), scene)))
        else:
            put(
                "ideal_maps.png",
                pad(
                    score_map_mosaic(
                        ideal.score_maps,
                        K,
                        scene,
                        probs=True,
                        cell_px=3,
                        title="ideal score maps from the ground truth",
                    )
                ),
            )
        put("training_targets.png", _targets(scene, masks))
    if predictor is not None:
        props = predictor.proposals(top_n=10, trace_nms=True)
        put("proposals.png", pad(proposals_view(img, props, top_n=10)))
        if props.nms_trace:
            put("nms_steps.png", nms_steps_view(img, props, max_steps=20, nms_iou=predictor.infer.nms_iou))
    put("receptive_field.png", _receptive(img, predictor))
    return written


def _touching_pair(masks: np.ndarray) -> tuple[int, int]:
    """Two instances that touch (dilated masks overlap); the two largest if none do."""
    from scipy import ndimage

    grown = [ndimage.binary_dilation(mk, iterations=2) for mk in masks]
    best, pair = -1, (0, min(1, len(masks) - 1))
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            contact = int((grown[i] & masks[j]).sum())
            if contact > best:
                best, pair = contact, (i, j)
    return pair


def _inner_of(masks: np.ndarray, pair: tuple[int, int]) -> int:
    """Of two instances, the one whose box centre lies furthest from the image border (its window fits best)."""
    h, w = masks.shape[1:]

    def margin(i: int) -> float:
        ys, xs = np.nonzero(masks[i])
        cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
        return min(cy, cx, h - cy, w - cx)

    return max(pair, key=margin)


def _targets(image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    from ifcn_viz.train.targets import WindowRule, sample_windows

    h, w = masks.shape[1:]
    feat = (-(-h // STRIDE), -(-w // STRIDE))
    rule = WindowRule(windows_per_image=48)
    t = sample_windows([torch.from_numpy(masks)], feat, M, STRIDE, rule, torch.Generator().manual_seed(0))
    neg = t.centers[t.labels == 0][:, 1:]
    return training_targets_view(image, t.pos_centers[:, 1:], neg, STRIDE, M, t.pos_masks, max_masks=8)


def _receptive(img: np.ndarray, predictor) -> np.ndarray:
    from ifcn_viz.model import build_model

    if predictor is not None:
        model, note = predictor.model, "trained model"
    else:
        torch.manual_seed(0)
        model, note = build_model("tiny"), "tiny model at random initialisation"
    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255  # (3, H, W)
    h, w = img.shape[:2]
    cell = (h // STRIDE // 2, w // STRIDE // 2)
    rf = theoretical_receptive_field(score_map_layers(model))
    grad = effective_receptive_field(model, x, cell)
    return title_panel(
        receptive_field_view(img, grad, cell, rf, m=model.config.m), f"receptive field of one score-map cell ({note})"
    )


def main(argv: list[str] | None = None) -> int:
    from ifcn_viz.gallery.commands import add_arguments

    parser = argparse.ArgumentParser(prog="python -m ifcn_viz.gallery.render", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    ckpt = None if str(args.checkpoint).lower() == "none" else args.checkpoint
    files = render_gallery(args.out, args.image, ckpt, log=lambda s: print(s, file=sys.stderr))
    total = sum(f.stat().st_size for f in files)
    for f in files:
        print(f"{f}  {f.stat().st_size / 1024:.0f} KiB")
    print(f"{len(files)} files, {total / 1024 / 1024:.2f} MiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
