"""`ifcn-viz` (also `python -m ifcn_viz`): one entry point, one verb per job.

Each verb lives next to the code it drives, in a ``commands`` module exposing ``register(subparsers)``;
those modules import heavy dependencies inside their handlers, so ``ifcn-viz --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "ifcn_viz.train.commands",  # train, ablation
    "ifcn_viz.inference.commands",  # propose, eval
    "ifcn_viz.data.commands",  # make-dataset
    "ifcn_viz.viz.commands",  # gallery
    "ifcn_viz.app.commands",  # app
)


def build_parser() -> argparse.ArgumentParser:
    from ifcn_viz import __version__

    parser = argparse.ArgumentParser(
        prog="ifcn-viz",
        description="InstanceFCN (Dai et al., ECCV 2016): train, propose segments, evaluate, explore.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
