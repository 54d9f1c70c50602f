"""Per-user sessions over one shared model: each user owns an image and its cached maps, never the network.

The :class:`~ifcn_viz.inference.predictor.Predictor` holds one image at a time.  For many users we keep ONE
shared Predictor (its model, device and settings) and give each user a shallow copy of it -- a *view* that
shares the model but owns ``image`` and ``scales`` (the cached score maps and objectness).  ``set_image`` on a
view runs the backbone once per scale and writes only into the view; every later query (window, provenance,
proposals) reads the view's cache, so a click never reruns the backbone and no user sees another's image.

The UI keeps its :class:`ImageSession` in ``gr.State`` (per browser tab).  API clients (``gradio_client``) have
no ``gr.State``, so ``upload`` returns a random token and :class:`SessionStore` -- a small LRU owned by the
demo, not a module global -- keeps the last few sessions for them.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ifcn_viz.inference.predictor import Predictor

DISPLAY_MAX_SIDE = 1024
"""Images are shown at most this many pixels a side; clicks are mapped back to original pixels."""


def fingerprint(rgb: np.ndarray) -> str:
    """A short content hash of an ``(H, W, 3)`` uint8 image (sha256 of its shape and pixels, 16 hex digits)."""
    h = hashlib.sha256(f"{rgb.shape}".encode())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()[:16]


@dataclass
class ImageSession:
    """One user's image: a Predictor view (shared model, own cached maps) plus what the page needs."""

    predictor: Predictor
    name: str  # where the image came from ("upload: cat.png", "example: coins", ...)
    fingerprint: str
    model_label: str

    @property
    def image(self) -> np.ndarray:
        assert self.predictor.image is not None  # set by open_session
        return self.predictor.image

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])

    @property
    def display_scale(self) -> float:
        """Displayed / original size (1.0 unless the image is larger than :data:`DISPLAY_MAX_SIDE`)."""
        return min(1.0, DISPLAY_MAX_SIDE / max(self.hw))

    def summary(self) -> dict[str, Any]:
        h, w = self.hw
        return {"fingerprint": self.fingerprint, "width": w, "height": h, "name": self.name, "model": self.model_label}


def predictor_view(shared: Predictor) -> Predictor:
    """A shallow copy of ``shared`` with no image: same model / settings, its own (empty) cache."""
    view = copy.copy(shared)
    view.image = None
    view.scales = []
    return view


def open_session(shared: Predictor, src: Any, name: str, model_label: str = "") -> ImageSession:
    """Load ``src`` (path, bytes, PIL or array; see ``ifcn_viz.data.io.load_image``) and cache its maps.

    Raises ``ImageLoadError`` (a ``ValueError``) with a user-facing reason when ``src`` is not a usable image.
    """
    view = predictor_view(shared)
    view.set_image(src)  # the only backbone run for this image
    assert view.image is not None
    return ImageSession(view, name, fingerprint(view.image), model_label)


def reopen(session: ImageSession, shared: Predictor, model_label: str) -> ImageSession:
    """The same image under another model (after the user switches models): one backbone run."""
    return open_session(shared, session.image, session.name, model_label)


def model_label(predictor: Predictor) -> str:
    """A short human name for the predictor's model, from its card when it has one."""
    card = predictor.card or {}
    cfg = getattr(predictor.model, "config", None)
    desc = f"{getattr(cfg, 'backbone', '?')}, k={predictor.k}, m={predictor.m}, stride {predictor.stride}"
    name = card.get("name") or card.get("preset") or "model"
    return f"{name} ({desc})"


class SessionStore:
    """A thread-safe LRU of :class:`ImageSession` by random token, for API clients (bounded memory)."""

    def __init__(self, capacity: int = 32) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[str, ImageSession] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, session: ImageSession) -> str:
        token = secrets.token_hex(12)
        with self._lock:
            self._items[token] = session
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return token

    def get(self, token: str) -> ImageSession:
        with self._lock:
            session = self._items.get(token)
            if session is None:
                raise KeyError(
                    f"unknown or expired session {token!r}: call the upload endpoint again "
                    f"(the server keeps the last {self.capacity} API sessions)"
                )
            self._items.move_to_end(token)
            return session

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
