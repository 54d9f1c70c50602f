"""`ifcn-viz app`: serve the explorer (Gradio) on 127.0.0.1 with the shipped model.

The address is ``--host`` / ``--port`` when given, else ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``, else
127.0.0.1:7860.  A port already in use is one line naming the port and how to change it, not a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any


def port_hint(prog: str) -> str:
    return "pass --port N or set GRADIO_SERVER_PORT" if prog.startswith("ifcn-viz") else "set GRADIO_SERVER_PORT"


def check_address(prog: str, host: str | None = None, port: int | None = None) -> tuple[str, int] | str:
    """``(host, port)`` to serve on, or the one-line reason it cannot be used."""
    from ifcn_viz.app.server import port_is_free, server_address

    try:
        host, port = server_address(host, port)
    except ValueError as err:
        return f"{prog}: {err}"
    if not port_is_free(host, port):
        return f"{prog}: port {port} on {host} is already in use ({port_hint(prog)} to use another port)"
    return host, port


def serve_or_explain(serve: Callable[[], Any], prog: str, host: str | None = None, port: int | None = None) -> int:
    """Run ``serve()`` after checking the address; print one line and return 2 when the address is unusable."""
    address = check_address(prog, host, port)
    if isinstance(address, str):
        print(address, file=sys.stderr)
        return 2
    try:
        serve()
    except OSError as err:  # e.g. the port was taken between the check and the bind
        if "port" not in str(err).lower():
            raise
        print(f"{prog}: port {address[1]} on {address[0]} could not be bound ({port_hint(prog)} to use another "
              "port)", file=sys.stderr)  # fmt: skip
        return 2
    return 0


def _app(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    prog = "ifcn-viz app"
    address = check_address(prog, args.host, args.port)  # before the model is loaded
    if isinstance(address, str):
        print(address, file=sys.stderr)
        return 2
    host, port = address
    from ifcn_viz.app.demo import build_demo, launch
    from ifcn_viz.checkpoints import CheckpointError
    from ifcn_viz.inference.predictor import Predictor

    try:
        predictor = Predictor.from_checkpoint(args.checkpoint)
    except CheckpointError as err:
        print(f"{prog}: cannot load the model: {err}", file=sys.stderr)
        return 2
    demo = build_demo(predictor, checkpoint=args.checkpoint, max_file_size=args.max_file_size)
    if args.share:
        print(f"{prog}: --share given: Gradio will create a PUBLIC link to this server.")
    return serve_or_explain(
        lambda: launch(demo, host=host, port=port, share=args.share, max_file_size=args.max_file_size,
                       concurrency=args.concurrency, max_queue=args.max_queue),
        prog, host, port,
    )  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "app",
        help="serve the explorer in the browser (Gradio)",
        description="Serve the InstanceFCN explorer. Defaults are safe for a shared machine: bound to 127.0.0.1, "
        "no public share link, a maximum upload size and a bounded queue.",
    )
    from ifcn_viz import cliargs as T

    host_help = "address to bind (default: GRADIO_SERVER_NAME, else 127.0.0.1; 0.0.0.0 exposes it)"
    p.add_argument("--host", default=None, help=host_help)
    p.add_argument("--port", type=T.port, default=None, help="port, 1..65535 (default: GRADIO_SERVER_PORT, else 7860)")
    p.add_argument("--checkpoint", type=T.checkpoint, default="shipped", help="'shipped' or a .safetensors path "
                   "(its card inside it or in the .json beside it)")  # fmt: skip
    p.add_argument("--share", action="store_true", help="also create a public gradio.live link (off by default)")
    p.add_argument("--max-file-size", default="25mb", help="largest accepted upload, e.g. 25mb (default 25mb)")
    p.add_argument("--concurrency", type=T.int_range(1, 64), default=2, help="backbone runs at a time (default 2)")
    p.add_argument("--max-queue", type=T.int_range(1, 10_000), default=64, help="most events waiting in the queue "
                   "(default 64)")  # fmt: skip
    p.set_defaults(func=_app)
