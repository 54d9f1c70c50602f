"""What one server lets each request, client and session cost: memory, disk, queue places and time alive.

Everything here works below the page and the API, so a defence holds whatever the path (docs/SECURITY.md):

* :func:`apply_server_budgets` -- the per-request memory budgets of a served app: the full-size masks of one
  request (``IFCN_MASK_BYTES``, 384 MB; the library's own default is 2 GB) and the largest picture Pillow decodes
  for Gradio (an editor layer, an uploaded image: :data:`ifcn_viz.limits.MAX_PIXELS`).
* :class:`Janitor` -- state with a lifetime: a page session whose tab closed is freed after
  ``IFCN_CLOSED_SESSION_TTL`` (120 s), any page session unused for ``IFCN_IDLE_SESSION_TTL`` (1,800 s) and an API
  session unused as long, uploads and files served older than ``IFCN_UPLOAD_TTL`` (300 s), and the oldest files
  first whenever the upload folder is over its cap; memory is handed back to the system after each sweep.
* :class:`ClientGuard` -- an ASGI middleware: each client's uploads are bounded per 10 minutes
  (``IFCN_UPLOAD_QUOTA``, 256 MB) and all uploads on disk (``IFCN_UPLOAD_DISK_CAP``, 2 GB), refused (429 / 507)
  before the body is read; a JSON body with more than :data:`MAX_JSON_ITEMS` items (numbers, strings, ...) is
  refused (413) before it is parsed.
* :func:`cap_queue_per_client` -- one client (address) holds at most half the queue's places, one page or
  ``gradio_client`` session at most :data:`QUEUE_PER_SESSION`.
* :func:`remove_stale_temp` -- what a killed server left in the temporary folder (``ifcn_ckpt_*``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MB = 1024**2
SERVER_MASK_BYTES = 384 * MB
"""Full-size masks one request of a served app may make (``top_n x H x W``): 40 MP, 10 proposals; 1 MP, 402."""
CLOSED_SESSION_TTL = 120.0
"""Seconds a page session is kept after its tab closed (a reload within them keeps the image)."""
IDLE_SESSION_TTL = 1800.0
"""Seconds a page or API session is kept without a request (also the sessions that never opened a heartbeat)."""
UPLOAD_TTL = 300.0
"""Seconds an uploaded (or served) file is kept: an image is read once, when it is opened."""
UPLOAD_QUOTA = 256 * MB
"""Bytes one client (address) may upload in :data:`QUOTA_WINDOW` seconds."""
QUOTA_WINDOW = 600.0
UPLOAD_DISK_CAP = 2 * 1024 * MB
"""Bytes of uploads and served files on disk; above it, the oldest are deleted and new uploads refused."""
MAX_JSON_ITEMS = 2_000_000
"""Items (numbers, strings, lists, objects) a JSON request body may hold: a base64 image is one item; a 16 MB
COCO text of polygons about a million; 30 MB of numbers, 15 million (0.5 GB once parsed)."""
QUEUE_PER_SESSION = 8
"""Events one page / ``gradio_client`` session may have waiting in the queue."""
SWEEP_SECONDS = 5.0


def _env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


# ---------------------------------------------------------------------------------------------- memory


def apply_server_budgets() -> dict[str, Any]:
    """Lower the library's per-request memory limits to a served app's (process-wide, while serving); returns
    the previous values for :func:`restore_budgets` (``launch`` restores them when the demo is closed)."""
    from PIL import Image

    from ifcn_viz import limits

    previous = {"mask_bytes": limits.MAX_MASK_BYTES, "decode_pixels": Image.MAX_IMAGE_PIXELS}
    limits.MAX_MASK_BYTES = int(_env("IFCN_MASK_BYTES", SERVER_MASK_BYTES))
    # Pillow refuses (DecompressionBombError) above twice this: Gradio's decoding of editor layers (80 MP, was 179)
    Image.MAX_IMAGE_PIXELS = limits.MAX_PIXELS
    return previous


def restore_budgets(previous: dict[str, Any]) -> None:
    from PIL import Image

    from ifcn_viz import limits

    limits.MAX_MASK_BYTES = previous["mask_bytes"]
    Image.MAX_IMAGE_PIXELS = previous["decode_pixels"]


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the system (glibc ``malloc_trim``)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


# ---------------------------------------------------------------------------------------------- lifetime


def tree_bytes(root: Path) -> list[tuple[float, int, Path]]:
    """``(mtime, size, path)`` of every file under ``root`` (oldest first)."""
    files = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            with contextlib.suppress(OSError):
                st = p.stat()
                files.append((st.st_mtime, st.st_size, p))
    return sorted(files)


def sweep_files(root: Path | None, max_age: float, cap: int, keep: tuple[str, ...] = (".ifcn_viz.lock",)) -> int:
    """Delete files under ``root`` older than ``max_age`` seconds, then the oldest until at most ``cap`` bytes
    remain; empty folders go too.  Returns the bytes left."""
    if root is None or not root.is_dir():
        return 0
    now = time.time()
    files = [f for f in tree_bytes(root) if f[2].name not in keep]
    total = sum(s for _, s, _ in files)
    for mtime, size, path in files:
        if now - mtime > max_age or total > cap:
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
    for dirpath, dirs, names in sorted(os.walk(root), key=lambda t: -len(t[0])):
        if Path(dirpath) != root and not dirs and not names:
            with contextlib.suppress(OSError):
                Path(dirpath).rmdir()
    return total


def remove_stale_temp(max_age: float = 600.0) -> list[Path]:
    """Remove ``<tmp>/ifcn_ckpt_*`` folders older than ``max_age`` seconds (a checkpoint load that was killed;
    newer ones may belong to another live server).  Returns what was removed."""
    removed = []
    for d in Path(tempfile.gettempdir()).glob("ifcn_ckpt_*"):
        with contextlib.suppress(OSError):
            if d.is_dir() and time.time() - d.stat().st_mtime > max_age:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
    return removed


class Janitor:
    """A daemon thread that frees expired page sessions (Gradio's ``state_holder``), API sessions and old uploads
    every :data:`SWEEP_SECONDS`."""

    def __init__(self, demo: Any, store: Any = None, upload_root: Path | None = None) -> None:
        self.demo = demo
        self.store = store
        self.upload_root = upload_root
        self.closed_ttl = _env("IFCN_CLOSED_SESSION_TTL", CLOSED_SESSION_TTL)
        self.idle_ttl = _env("IFCN_IDLE_SESSION_TTL", IDLE_SESSION_TTL)
        self.upload_ttl = _env("IFCN_UPLOAD_TTL", UPLOAD_TTL)
        self.disk_cap = int(_env("IFCN_UPLOAD_DISK_CAP", UPLOAD_DISK_CAP))
        self._closed_at: dict[str, float] = {}
        self._stop = threading.Event()
        self.freed = 0

    def start(self) -> Janitor:
        threading.Thread(target=self._run, name="ifcn-janitor", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(_env("IFCN_SWEEP_SECONDS", SWEEP_SECONDS)):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 -- never let the janitor die
                log.exception("janitor sweep failed")

    def sweep(self) -> int:
        """One pass; returns how many sessions were freed."""
        freed = self._sweep_page_sessions()
        if self.store is not None and hasattr(self.store, "drop_idle"):
            freed += self.store.drop_idle(self.idle_ttl)
        sweep_files(self.upload_root, self.upload_ttl, self.disk_cap)
        if freed:
            release_memory()
        self.freed += freed
        return freed

    def _sweep_page_sessions(self) -> int:
        app = getattr(self.demo, "server_app", None) or getattr(self.demo, "app", None)
        holder = getattr(app, "state_holder", None)
        if holder is None:
            return 0
        now, wall = time.monotonic(), time.time()
        freed = 0
        for sid, state in list(holder.session_data.items()):
            if getattr(state, "is_closed", False):
                closed = self._closed_at.setdefault(sid, now)
                expired = now - closed > self.closed_ttl
            else:
                used = holder.time_last_used.get(sid)
                expired = used is not None and wall - used.timestamp() > self.idle_ttl
            if expired:
                with contextlib.suppress(Exception):
                    holder.delete_state(sid)
                with holder.lock:
                    holder.session_data.pop(sid, None)
                    holder.time_last_used.pop(sid, None)
                self._closed_at.pop(sid, None)
                freed += 1
        return freed


# ---------------------------------------------------------------------------------------------- fairness


def _client(scope: Any) -> str:
    c = scope.get("client")
    return str(c[0]) if c else ""


class ClientGuard:
    """ASGI middleware: per-client upload quota and the disk cap on ``.../upload``, and the item count of JSON
    bodies, each refused before the body is read or parsed (see the module docstring)."""

    def __init__(self, app: Any, upload_root: str | None = None) -> None:
        self.app = app
        self.upload_root = Path(upload_root) if upload_root else None
        self.quota = int(_env("IFCN_UPLOAD_QUOTA", UPLOAD_QUOTA))
        self.window = _env("IFCN_QUOTA_WINDOW", QUOTA_WINDOW)
        self.disk_cap = int(_env("IFCN_UPLOAD_DISK_CAP", UPLOAD_DISK_CAP))
        self.max_items = int(_env("IFCN_MAX_JSON_ITEMS", MAX_JSON_ITEMS))
        self._sent: dict[str, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()
        self._disk = (0.0, 0)

    async def _refuse(self, send: Any, status: int, text: str) -> None:
        body = json.dumps({"error": text}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _used(self, client: str) -> int:
        now = time.monotonic()
        with self._lock:
            q = self._sent.setdefault(client, deque())
            while q and now - q[0][0] > self.window:
                q.popleft()
            return sum(n for _, n in q)

    def _add(self, client: str, n: int) -> None:
        with self._lock:
            self._sent.setdefault(client, deque()).append((time.monotonic(), n))

    def _disk_bytes(self) -> int:
        t, n = self._disk
        if self.upload_root is not None and time.monotonic() - t > 1.0:
            n = sum(s for _, s, _ in tree_bytes(self.upload_root))
            self._disk = (time.monotonic(), n)
        return n

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        try:
            length = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            length = 0
        path = str(scope.get("path", ""))
        if path.rstrip("/").endswith("/upload"):
            client = _client(scope)
            used = self._used(client)
            if used + length > self.quota:
                await self._refuse(send, 429, f"this client uploaded {used / MB:,.0f} MB in the last "
                                   f"{self.window / 60:.0f} minutes; at most {self.quota / MB:,.0f} MB: wait a few "
                                   "minutes")  # fmt: skip
                return
            if self._disk_bytes() + length > self.disk_cap:
                await self._refuse(send, 507, f"the server's upload space is full ({self.disk_cap / MB:,.0f} MB); "
                                   "try again in a few minutes")  # fmt: skip
                return
            self._add(client, length)
        elif b"json" in headers.get(b"content-type", b"") and length > MB:
            chunks: list[bytes] = []
            items, more = 1, True
            while more:  # the commas counted as the body arrives: refused as soon as there are too many
                message = await receive()
                if message.get("type") != "http.request":
                    return
                chunk = message.get("body", b"")
                items += chunk.count(b",")
                if items > self.max_items:
                    await self._refuse(send, 413, f"the request holds more than {self.max_items:,} JSON items "
                                       "(refused before it was parsed)")  # fmt: skip
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)
            del chunks
            sent = False

            async def replay() -> Any:
                nonlocal sent
                if sent:
                    return await receive()
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)


def cap_queue_per_client(demo: Any, per_client: int, per_session: int = QUEUE_PER_SESSION) -> None:
    """Refuse a new event from a client (address) with ``per_client`` events already waiting, or from a session
    with ``per_session`` (wraps the queue's ``push``; call after ``demo.queue(...)``)."""
    queue = getattr(demo, "_queue", None)
    if queue is None or getattr(queue, "_ifcn_capped", False):
        return
    push = queue.push

    def waiting() -> list[Any]:
        return [e for q in queue.event_queue_per_concurrency_id.values() for e in list(q.queue)]

    async def capped(body: Any, request: Any, username: Any) -> Any:
        host = getattr(getattr(request, "client", None), "host", None)
        events = waiting()
        mine = sum(1 for e in events if getattr(getattr(e.request, "client", None), "host", None) == host)
        same = sum(1 for e in events if body.session_hash and e.session_hash == body.session_hash)
        if mine >= per_client or same >= per_session:
            n, most = (same, per_session) if same >= per_session else (mine, per_client)
            return False, (f"you have {n} requests waiting; at most {most} per client: wait for an answer first"), \
                "queue_full"  # fmt: skip
        return await push(body, request, username)

    queue.push = capped
    queue._ifcn_capped = True
