"""`ifcn-viz app`: serve the explorer (Gradio) on 127.0.0.1 with the shipped model."""

from __future__ import annotations

import argparse


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port already in use before the model is loaded (one line naming the port and the flag)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ValueError(f"--host {host}: not an address of this machine ({err.strerror})") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as err:
            raise OSError(
                err.errno, f"port {port} on {host} is not available ({err.strerror}); choose another with --port"
            ) from None


def _app(args: argparse.Namespace) -> int:
    import os

    _check_port_free(args.host, args.port)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ifcn_viz.app.demo import build_demo, launch
    from ifcn_viz.checkpoints import CheckpointError
    from ifcn_viz.inference.predictor import Predictor

    try:
        predictor = Predictor.from_checkpoint(args.checkpoint)
    except CheckpointError as err:
        raise CheckpointError(f"cannot load the model: {err}") from None
    demo = build_demo(predictor, checkpoint=args.checkpoint, max_file_size=args.max_file_size)
    if args.share:
        print("ifcn-viz app: --share given: Gradio will create a PUBLIC link to this server.")
    launch(demo, host=args.host, port=args.port, share=args.share, max_file_size=args.max_file_size,
           concurrency=args.concurrency, max_queue=args.max_queue)  # fmt: skip
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "app",
        help="serve the explorer in the browser (Gradio)",
        description="Serve the InstanceFCN explorer. Defaults are safe for a shared machine: bound to 127.0.0.1, "
        "no public share link, a maximum upload size and a bounded queue.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it)")
    from ifcn_viz import cliargs as T

    p.add_argument("--port", type=T.port, default=7860, help="port, 1..65535 (default 7860)")
    p.add_argument("--checkpoint", type=T.checkpoint, default="shipped", help="'shipped' or a .safetensors path "
                   "with its .json card")  # fmt: skip
    p.add_argument("--share", action="store_true", help="also create a public gradio.live link (off by default)")
    p.add_argument("--max-file-size", default="25mb", help="largest accepted upload, e.g. 25mb (default 25mb)")
    p.add_argument("--concurrency", type=T.int_range(1, 64), default=2, help="backbone runs at a time (default 2)")
    p.add_argument("--max-queue", type=T.int_range(1, 10_000), default=64, help="most events waiting in the queue "
                   "(default 64)")  # fmt: skip
    p.set_defaults(func=_app)
