"""Per-user sessions over one shared model: each user owns an image and its cached maps, never the network.

For many users we keep ONE shared :class:`~ifcn_viz.inference.predictor.Predictor` (its model, device and
settings) and give each user an :class:`ImageSession`: their image's
:class:`~ifcn_viz.inference.types.ImageMaps` (``Predictor.encode``: the backbone runs once per scale, and the
result is frozen) and a reference to the Predictor that made them.  Every later query (window, provenance,
proposals) passes the session's maps (``maps=``), so a click never reruns the backbone, no user sees another's
image, and nothing of one user's is ever stored on the shared Predictor.

The UI keeps its :class:`ImageSession` in ``gr.State`` (per browser tab).  API clients (``gradio_client``) have
no ``gr.State``, so ``upload`` returns a random token and :class:`SessionStore` -- owned by the demo, not a
module global, bounded in count and bytes, with a quota per client -- keeps the last few sessions for them.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ifcn_viz.inference.predictor import Predictor
from ifcn_viz.inference.types import ImageMaps, ScaleMaps
from ifcn_viz.inference.window import WindowGrid

DISPLAY_MAX_SIDE = 1024
"""Images are shown at most this many pixels a side; clicks are mapped back to original pixels."""


def fingerprint(rgb: np.ndarray) -> str:
    """A short content hash of an ``(H, W, 3)`` uint8 image (sha256 of its shape and pixels, 16 hex digits)."""
    h = hashlib.sha256(f"{rgb.shape}".encode())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()[:16]


@dataclass
class ImageSession:
    """One user's image: its maps (frozen) and the Predictor that made them (shared, never changed), plus what the
    page needs."""

    maps: ImageMaps
    predictor: Predictor  # the model's Predictor (shared with other sessions of the same model): read-only here
    name: str  # where the image came from ("upload: cat.png", "example: coins", ...)
    fingerprint: str
    model_label: str
    gt_masks: np.ndarray | None = None  # (N, H, W) bool: the image's known instances (a synthetic scene's, or drawn)
    gt_source: str = ""  # where they came from: "synthetic scene", "drawn", "COCO file"

    @property
    def image(self) -> np.ndarray:
        return self.maps.image

    @property
    def hw(self) -> tuple[int, int]:
        return self.maps.hw

    @property
    def scales(self) -> tuple[ScaleMaps, ...]:
        return self.maps.scales

    @property
    def default_scale(self) -> int:
        return self.maps.default_scale

    @property
    def levels(self) -> list[Any]:
        """Per scale: its shorter side and the object sizes it serves (``Predictor.levels_of``)."""
        return self.predictor.levels_of(self.maps)

    def grid(self, scale: int | None = None) -> WindowGrid:
        """Every window of one scale of this image (``Predictor.grid`` on the session's maps)."""
        return self.predictor.grid(scale, maps=self.maps)

    @property
    def display_scale(self) -> float:
        """Displayed / original size (1.0 unless the image is larger than :data:`DISPLAY_MAX_SIDE`)."""
        return min(1.0, DISPLAY_MAX_SIDE / max(self.hw))

    @property
    def nbytes(self) -> int:
        """Memory this session holds: its image and the cached maps of every scale (the model is shared)."""
        gt = 0 if self.gt_masks is None else self.gt_masks.nbytes
        return int(self.maps.nbytes + gt)

    def summary(self) -> dict[str, Any]:
        h, w = self.hw
        return {"fingerprint": self.fingerprint, "width": w, "height": h, "name": self.name, "model": self.model_label}


def open_session(
    shared: Predictor,
    src: Any,
    name: str,
    model_label: str = "",
    gt_masks: np.ndarray | None = None,
    gt_source: str = "",
) -> ImageSession:
    """Load ``src`` (path, bytes, PIL or array; see ``ifcn_viz.data.io.load_image``) and cache its maps.

    Raises ``ImageLoadError`` (a ``ValueError``) with a user-facing reason when ``src`` is not a usable image.
    """
    maps = shared.encode(src)  # the only backbone run for this image
    return ImageSession(maps, shared, name, fingerprint(maps.image), model_label, gt_masks, gt_source)


def reopen(session: ImageSession, shared: Predictor, model_label: str) -> ImageSession:
    """The same image (and its known instances) under another model (after the user switches models): one
    backbone run."""
    return open_session(shared, session.image, session.name, model_label, session.gt_masks, session.gt_source)


def model_label(predictor: Predictor) -> str:
    """A short human name for the predictor's model, from its card when it has one."""
    card = predictor.card or {}
    cfg = getattr(predictor.model, "config", None)
    desc = f"{getattr(cfg, 'backbone', '?')}, k={predictor.k}, m={predictor.m}, stride {predictor.stride}"
    name = card.get("name") or card.get("preset") or "model"
    return f"{name} ({desc})"


class SessionStore:
    """A thread-safe store of :class:`ImageSession` by random token, for API clients: bounded in count and in
    bytes, least-recently-used out, with a **per-client quota** so one client cannot push out everyone else's.

    ``client`` is whatever identifies a caller (the API passes Gradio's ``session_hash``: one per
    ``gradio_client.Client``).  A client at its quota (``per_client`` sessions) replaces its own least recently
    used one.  When the whole store is full (``capacity`` sessions or ``max_bytes``), the session that goes is the
    least recently used one *of the client holding the most*: a client holding fewer sessions than another never
    loses one to it.
    """

    def __init__(self, capacity: int = 32, per_client: int = 4, max_bytes: int = 1024**3) -> None:
        if capacity < 1 or per_client < 1 or max_bytes < 1:
            raise ValueError(f"capacity, per_client, max_bytes must be >= 1: {capacity}, {per_client}, {max_bytes}")
        self.capacity = capacity
        self.per_client = min(per_client, capacity)
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[str, ImageSession]] = OrderedDict()  # token -> (client, session)
        self._used: dict[str, float] = {}  # token -> time.monotonic() of its last use
        self._lock = threading.Lock()

    def _count(self, client: str) -> int:
        return sum(1 for c, _ in self._items.values() if c == client)

    def _bytes(self) -> int:
        return sum(s.nbytes for _, s in self._items.values())

    def _evict_one(self, prefer: str | None = None) -> None:
        counts: dict[str, int] = {}
        for c, _ in self._items.values():
            counts[c] = counts.get(c, 0) + 1
        most = max(counts.values())
        victims = {c for c, n in counts.items() if n == most}
        victim = prefer if prefer in victims else None
        for token, (c, _) in self._items.items():  # oldest first
            if (victim is None and c in victims) or c == victim:
                del self._items[token]
                self._used.pop(token, None)
                return

    def put(self, session: ImageSession, client: str = "") -> str:
        token = secrets.token_hex(12)
        with self._lock:
            while self._items and self._count(client) >= self.per_client:
                self._evict_one(prefer=client)  # the client at its quota holds the most of anyone it could evict
            while self._items and (
                len(self._items) >= self.capacity or self._bytes() + session.nbytes > self.max_bytes
            ):
                self._evict_one(prefer=client)
            self._items[token] = (client, session)
            self._used[token] = time.monotonic()
        return token

    def get(self, token: str) -> ImageSession:
        with self._lock:
            item = self._items.get(token) if isinstance(token, str) else None
            if item is None:
                raise KeyError(
                    f"unknown or expired session {str(token)[:40]!r}: call the upload endpoint again (the server "
                    f"keeps the last {self.per_client} API sessions of each client, {self.capacity} in all)"
                )
            self._items.move_to_end(token)
            self._used[token] = time.monotonic()
            return item[1]

    def replace(self, token: str, session: ImageSession) -> None:
        """Store ``session`` under an existing ``token`` (a changed copy of the one :meth:`get` returned)."""
        with self._lock:
            item = self._items.get(token) if isinstance(token, str) else None
            if item is None:
                raise KeyError(f"unknown or expired session {str(token)[:40]!r}: call the upload endpoint again")
            self._items[token] = (item[0], session)
            self._items.move_to_end(token)
            self._used[token] = time.monotonic()

    def drop_idle(self, max_age: float) -> int:
        """Forget the sessions unused for more than ``max_age`` seconds; returns how many."""
        now = time.monotonic()
        with self._lock:
            old = [t for t in self._items if now - self._used.get(t, now) > max_age]
            for t in old:
                del self._items[t]
                self._used.pop(t, None)
        return len(old)

    def clients(self) -> dict[str, int]:
        """Sessions held per client."""
        with self._lock:
            out: dict[str, int] = {}
            for c, _ in self._items.values():
                out[c] = out.get(c, 0) + 1
            return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
