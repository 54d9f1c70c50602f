"""What the server shares and how it is served: the default model, the API session store, the limits, the
request-body guard, the address (flags or ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``) and ``launch``.

Per-user data never lives here: the page keeps each user's image session, chosen model and trained model in
``gr.State``.  :class:`AppContext` is created by ``build_demo`` (not at import) and holds only what every user
may share: the default Predictor (read-only after loading) and the store of API sessions.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ifcn_viz.app.session import SessionStore, model_label
from ifcn_viz.app.uploads import decode_base64
from ifcn_viz.inference.predictor import Predictor

log = logging.getLogger(__name__)

DEFAULT_MAX_FILE_SIZE = "25mb"
"""Largest upload the server accepts (Gradio's ``max_file_size``; also applied to base64 API uploads)."""
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
BODY_SLACK = 1024**2
"""Bytes a request body may carry beyond the upload limit's base64 size (the JSON around it)."""


def parse_size(size: str | int) -> int:
    """``"25mb"`` / ``"800kb"`` / ``"1gb"`` / ``12345`` -> bytes."""
    if isinstance(size, int) and not isinstance(size, bool):
        if size < 1:
            raise ValueError(f"a size must be >= 1 byte, got {size}")
        return size
    s = str(size).strip().lower()
    units = {"gb": 1024**3, "mb": 1024**2, "kb": 1024, "b": 1}
    for unit, mult in units.items():
        if s.endswith(unit):
            try:
                value = float(s[: -len(unit)])
            except ValueError:
                break
            if value > 0:
                return int(value * mult)
            break
    raise ValueError(f"a size must look like 25mb, 800kb, 1gb or a number of bytes, got {size!r}")


def body_limit_for(max_upload_bytes: int) -> int:
    """The largest request body: an upload at the limit, base64-encoded, plus :data:`BODY_SLACK`."""
    return (max_upload_bytes + 2) // 3 * 4 + BODY_SLACK


class AppContext:
    """The server-wide pieces of one demo: the default Predictor (loaded lazily) and the API session store."""

    def __init__(
        self,
        predictor: Predictor | None = None,
        checkpoint: str | Path = "shipped",
        max_file_size: str | int = DEFAULT_MAX_FILE_SIZE,
        api_sessions: int = 32,
        api_sessions_per_client: int = 4,
    ) -> None:
        self._predictor = predictor
        self.checkpoint = checkpoint
        self.max_file_size = max_file_size
        self.max_upload_bytes = parse_size(max_file_size)
        self.store = SessionStore(api_sessions, per_client=api_sessions_per_client)
        self._lock = threading.Lock()
        self._named: dict[str, Predictor] = {}  # the other shipped models, loaded once each when first chosen

    def shared(self) -> Predictor:
        """The default Predictor; loads ``checkpoint`` on first use (raises CheckpointError if it cannot)."""
        if self._predictor is None:
            with self._lock:
                if self._predictor is None:
                    self._predictor = Predictor.from_checkpoint(self.checkpoint)
        return self._predictor

    def named(self, name: str) -> Predictor:
        """A shipped model by name (``ifcn_viz/weights/NAME.safetensors``), loaded once and shared read-only."""
        from ifcn_viz.checkpoints import shipped_names

        if name not in shipped_names():
            raise ValueError(f"no shipped model named {name!r}; choose one of {', '.join(shipped_names())}")
        with self._lock:
            if name not in self._named:
                self._named[name] = Predictor.from_checkpoint(name)
            return self._named[name]

    def is_shipped(self, predictor: Predictor) -> bool:
        """Whether ``predictor`` is one of the shipped models loaded by :meth:`named`."""
        with self._lock:
            return any(predictor is q for q in self._named.values())

    def predictor_for(self, user_model: Predictor | None) -> Predictor:
        return user_model if user_model is not None else self.shared()

    def label_for(self, user_model: Predictor | None) -> str:
        return model_label(self.predictor_for(user_model))

    def decode_upload(self, image_b64: str) -> bytes:
        """Base64 (optionally a ``data:...;base64,`` URL) -> bytes, refusing payloads over the upload limit."""
        return decode_base64(image_b64, self.max_upload_bytes, str(self.max_file_size))


# ---------------------------------------------------------------------------------------------- body guard


class BodyLimit:
    """ASGI middleware: refuse a request whose body is larger than ``max_bytes`` *before* anything parses it.

    A ``Content-Length`` over the limit is answered ``413`` at once, without reading the body; a body without one
    (chunked) is counted as it streams and cut off with ``413`` as soon as it passes the limit.  Gradio's own
    upload route then applies ``max_file_size`` to each file.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def _refuse(self, send: Any, status: int, text: str) -> None:
        body = json.dumps({"error": text}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_big = f"the request body is larger than this server's limit of {self.max_bytes:,} bytes"
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                await self._refuse(send, 400, "the Content-Length header is not a number")
                return
            if n > self.max_bytes:
                await self._refuse(send, 413, too_big)
                return
        seen = 0
        started = refused = False

        async def counted_receive() -> Any:
            # Past the limit we answer 413 ourselves and tell the app the client left (an exception here would
            # be turned into "400 error parsing the body" by FastAPI); the app's own answer is then dropped.
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        await self._refuse(send, 413, too_big)
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Any) -> None:
            nonlocal started
            if refused:
                return
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:
            if not refused:
                raise


# ---------------------------------------------------------------------------------------------- address


def server_address(host: str | None = None, port: int | None = None) -> tuple[str, int]:
    """``(host, port)``: the arguments when given, else ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``, else
    127.0.0.1:7860.  Raises ``ValueError`` naming the variable when the environment holds a bad port."""
    if host is None:
        host = os.environ.get("GRADIO_SERVER_NAME") or DEFAULT_HOST
    if port is None:
        env = os.environ.get("GRADIO_SERVER_PORT")
        if env:
            try:
                port = int(env)
            except ValueError:
                raise ValueError(f"GRADIO_SERVER_PORT must be a port number 1..65535, got {env!r}") from None
        else:
            port = DEFAULT_PORT
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"the port must be in 1..65535, got {port}")
    return host, int(port)


def port_is_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is not "in use"
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# ---------------------------------------------------------------------------------------------- launch


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (as ``MALLOC_ARENA_MAX`` would) before the server starts its threads.

    Gradio answers from a pool of worker threads; glibc gives each thread its own 64 MB-reserving arena, and
    torch's temporary buffers then fragment them: under 8 concurrent clients the server's RSS grew by about
    270 MB with the default and about 145 MB with 2 arenas (measured, bench/bench_app.py).  A no-op where
    ``MALLOC_ARENA_MAX`` is set or the C library is not glibc.  Returns whether the cap was applied.
    """
    import ctypes
    import ctypes.util
    import sys

    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-8, int(arenas)))  # -8 = M_ARENA_MAX
    except (OSError, AttributeError):
        return False


def _clean_up_on_sigterm() -> None:
    """On SIGTERM: remove this run's uploads, then die of SIGTERM as before (main thread only)."""
    from ifcn_viz.app.uploads import release_upload_dir

    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        release_upload_dir()
        if callable(previous):
            previous(signum, frame)
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)


def launch(
    demo: Any,
    host: str | None = None,
    port: int | None = None,
    share: bool = False,
    max_file_size: str | int | None = None,
    concurrency: int = 2,
    max_queue: int = 64,
    **kwargs: Any,
) -> Any:
    """Serve ``demo`` with the project's defaults: bound to 127.0.0.1:7860 (or ``GRADIO_SERVER_NAME`` /
    ``GRADIO_SERVER_PORT``), no share link unless asked, a maximum upload size and request body, a queue of at
    most ``max_queue`` waiting events and ``concurrency`` backbone runs at a time.  ``port=0``: any free port."""
    from starlette.middleware import Middleware

    from ifcn_viz.app import budget
    from ifcn_viz.app.page import CSS
    from ifcn_viz.app.uploads import upload_dir

    limit_malloc_arenas()
    previous = budget.apply_server_budgets()  # the per-request memory budgets of a served app, until it is closed
    budget.remove_stale_temp()
    ctx: AppContext | None = getattr(demo, "ctx", None)
    size = max_file_size or (ctx.max_file_size if ctx else DEFAULT_MAX_FILE_SIZE)
    if port == 0:
        port = None  # Gradio picks a free one
    elif port is None or host is None:
        host, port = server_address(host, port)
    host = host or DEFAULT_HOST
    app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
    root = upload_dir()
    app_kwargs.setdefault("middleware", []).extend([
        Middleware(BodyLimit, max_bytes=body_limit_for(parse_size(size))),
        Middleware(budget.ClientGuard, upload_root=str(root) if root else None),
    ])  # fmt: skip
    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    budget.cap_queue_per_client(demo, per_client=max(budget.QUEUE_PER_SESSION, max_queue // 2))
    _clean_up_on_sigterm()
    quiet = kwargs.pop("quiet", False)
    block = not kwargs.pop("prevent_thread_lock", False)
    t0 = time.perf_counter()
    out = demo.launch(server_name=host, server_port=port, share=share, max_file_size=size, css=CSS,
                      show_error=False, app_kwargs=app_kwargs, quiet=True, prevent_thread_lock=True,
                      **kwargs)  # fmt: skip
    log.info("served in %.2f s", time.perf_counter() - t0)
    janitor = demo.janitor = budget.Janitor(demo, ctx.store if ctx else None, root).start()  # sessions, files expire
    close = demo.close

    def close_and_restore(*args: Any, **kw: Any) -> Any:
        try:
            return close(*args, **kw)
        finally:
            janitor.stop()
            budget.restore_budgets(previous)

    demo.close = close_and_restore
    if not quiet:  # our own line: Gradio's would suggest `share=True in launch()`, which is not this app's switch
        public = (
            f" and {demo.share_url}"
            if demo.share_url
            else " (this machine only; `ifcn-viz app --share` adds a public link)"
        )
        print(f"Serving the InstanceFCN explorer on {demo.local_url}{public}", flush=True)
    if block:
        demo.block_thread()
    return out
