"""`ifcn-viz gallery`: render every view for an example image (see :mod:`ifcn_viz.gallery.render`)."""

from __future__ import annotations

import argparse


def _checkpoint_or_none(text: str) -> str:
    from ifcn_viz import cliargs as T

    return text if text.lower() == "none" else T.checkpoint(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ifcn_viz import cliargs as T

    parser.add_argument("--out", type=T.writable_dir, default="docs/gallery", help="output folder")
    parser.add_argument("--image", type=T.existing_file, default=None, help="an image file to use instead of the "
                        "synthetic scene (PNG, JPEG, GIF, BMP, TIFF or WebP)")  # fmt: skip
    parser.add_argument(
        "--checkpoint",
        type=_checkpoint_or_none,
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
    from ifcn_viz.gallery.render import run

    return run(args)
