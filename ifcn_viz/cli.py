"""`ifcn-viz` (also `python -m ifcn_viz`): one entry point, one verb per job.

Each verb lives next to the code it drives, in a ``commands`` module exposing ``register(subparsers)``;
those modules import heavy dependencies inside their handlers, so ``ifcn-viz --help`` stays fast.

One error boundary (:func:`main`): a user error -- a bad flag (checked at parse time by
:mod:`ifcn_viz.cliargs`), the project's own errors (``ValueError`` subclasses such as ``CheckpointError``,
``ImageLoadError``, ``LimitError``) and OS errors (missing file, read-only folder, full disk) -- becomes one line
``ifcn-viz <cmd>: <what was wrong> (<what is accepted>)`` on stderr and exit status 2, never a traceback.
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
    "ifcn_viz.gallery.commands",  # gallery
    "ifcn_viz.app.commands",  # app
)


USER_ERRORS = (ValueError, OSError)  # the project's own errors subclass ValueError


def build_parser() -> argparse.ArgumentParser:
    from ifcn_viz import __version__
    from ifcn_viz.cliargs import Parser

    parser = Parser(
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
    from ifcn_viz.cliargs import one_line

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the subcommand's usage, not the top-level one
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"ifcn-viz {args.command}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        reason = getattr(err, "reason", None)  # an ImageLoadError: word "what is accepted" for a CLI user
        if reason:
            from ifcn_viz.data.io import CLI_ACCEPTED

            text = f"{' '.join(reason.split())} ({CLI_ACCEPTED})"
        else:
            text = one_line(err)
        print(f"ifcn-viz {args.command}: {text}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
