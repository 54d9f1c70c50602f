"""What the server shares (one model, an API session store) and how uploads are described to the user.

Per-user data never lives here: the UI keeps each user's image session, chosen model and trained model in
``gr.State``.  :class:`AppContext` is created by ``build_demo`` (not at import) and holds only what every user
may share: the default Predictor (read-only after loading) and the LRU of API sessions.
"""

from __future__ import annotations

import base64
import binascii
import threading
import warnings
from pathlib import Path
from typing import Any

from ifcn_viz.app.session import SessionStore, model_label
from ifcn_viz.inference.predictor import Predictor

DEFAULT_MAX_FILE_SIZE = "25mb"
"""Largest upload the server accepts (Gradio's ``max_file_size``; also applied to base64 API uploads)."""


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


class AppContext:
    """The server-wide pieces of one demo: the default Predictor (loaded lazily) and the API session store."""

    def __init__(
        self,
        predictor: Predictor | None = None,
        checkpoint: str | Path = "shipped",
        max_file_size: str | int = DEFAULT_MAX_FILE_SIZE,
        api_sessions: int = 32,
    ) -> None:
        self._predictor = predictor
        self.checkpoint = checkpoint
        self.max_file_size = max_file_size
        self.max_upload_bytes = parse_size(max_file_size)
        self.store = SessionStore(api_sessions)
        self._lock = threading.Lock()

    def shared(self) -> Predictor:
        """The default Predictor; loads ``checkpoint`` on first use (raises CheckpointError if it cannot)."""
        if self._predictor is None:
            with self._lock:
                if self._predictor is None:
                    self._predictor = Predictor.from_checkpoint(self.checkpoint)
        return self._predictor

    def predictor_for(self, user_model: Predictor | None) -> Predictor:
        return user_model if user_model is not None else self.shared()

    def label_for(self, user_model: Predictor | None) -> str:
        return model_label(self.predictor_for(user_model))

    def decode_upload(self, image_b64: str) -> bytes:
        """Base64 (optionally a ``data:...;base64,`` URL) -> bytes, refusing payloads over the upload limit."""
        if not isinstance(image_b64, str) or not image_b64:
            raise ValueError("image_b64 must be a non-empty base64 string of an image file's bytes")
        payload = image_b64.split(",", 1)[1] if image_b64.startswith("data:") else image_b64
        if len(payload) * 3 // 4 > self.max_upload_bytes:
            raise ValueError(
                f"the upload is about {len(payload) * 3 // 4:,} bytes, over the server's limit of "
                f"{self.max_upload_bytes:,} bytes ({self.max_file_size})"
            )
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as err:
            raise ValueError(f"image_b64 is not valid base64: {err}") from err


def describe_conversion(src: Any) -> str | None:
    """What loading will do to an image that is usable but not plain 8-bit RGB (read from its header only):
    e.g. "16-bit samples scaled to 8 bits".  ``None`` when nothing notable happens or the header is unreadable
    (``load_image`` then gives the error)."""
    import io

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fp = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
            with Image.open(fp) as im:
                mode, info = im.mode, im.info
                orientation = im.getexif().get(274, 1)
                frames = getattr(im, "n_frames", 1)
    except Exception:  # noqa: BLE001 -- any unreadable header: load_image reports the real reason
        return None
    notes = []
    if mode.startswith("I;16") or mode == "I":
        notes.append("16-bit samples scaled to 8 bits")
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode == "P" and "transparency" in info):
        notes.append("transparency composited over white")
    elif mode == "P":
        notes.append("palette colours expanded to RGB")
    if mode in ("L", "1", "I;16", "I;16B", "I;16L", "I", "F", "LA"):
        notes.append("grayscale shown as RGB")
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
    if orientation not in (1, None):
        notes.append(f"EXIF orientation {orientation} applied (the image is shown upright)")
    if frames > 1:
        notes.append(f"animated ({frames} frames): the first frame is used")
    return "; ".join(notes) if notes else None
