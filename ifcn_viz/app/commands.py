"""`ifcn-viz app`: serve the explorer (Gradio) on 127.0.0.1 with the shipped model."""

from __future__ import annotations

import argparse


def _app(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ifcn_viz.app.demo import build_demo, launch
    from ifcn_viz.checkpoints import CheckpointError
    from ifcn_viz.inference.predictor import Predictor

    try:
        predictor = Predictor.from_checkpoint(args.checkpoint)
    except CheckpointError as err:
        print(f"ifcn-viz app: cannot load the model: {err}")
        return 2
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
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--checkpoint", default="shipped", help="'shipped' or a .safetensors path with its .json card")
    p.add_argument("--share", action="store_true", help="also create a public gradio.live link (off by default)")
    p.add_argument("--max-file-size", default="25mb", help="largest accepted upload, e.g. 25mb (default 25mb)")
    p.add_argument("--concurrency", type=int, default=2, help="backbone runs at a time (default 2)")
    p.add_argument("--max-queue", type=int, default=64, help="most events waiting in the queue (default 64)")
    p.set_defaults(func=_app)
