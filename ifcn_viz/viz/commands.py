"""`ifcn-viz gallery`: render every view for an example image (see ifcn_viz.viz.gallery)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="docs/gallery", help="output folder (default: docs/gallery)")
    parser.add_argument("--image", default=None, help="an image file to use instead of the synthetic scene")
    parser.add_argument(
        "--checkpoint",
        default="shipped",
        help="'shipped' (default), a .safetensors path, or 'none' to draw from ideal maps only",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gallery",
        help="render every visualisation for an example image into a folder (docs/gallery)",
        description="Render the score-map mosaic, objectness, window, assembly GIFs, provenance, ideal maps, "
        "k = 1 vs k = 5, proposals, NMS, training targets and receptive field as PNG/GIF.",
    )
    add_arguments(p)
    p.set_defaults(func=_handler)


def _handler(args: argparse.Namespace) -> int:
    from ifcn_viz.viz.gallery import run

    return run(args)
