"""What users send the server: image arguments of the API (an uploaded file or base64), what loading will do to
an image, and the folder where Gradio keeps uploads -- owned by this run and removed when it ends.

No Gradio import: an uploaded file reaches the API as Gradio's ``FileData`` dict (``path``, ``orig_name``, ...),
which is plain data here.

**The upload folder.**  Gradio writes every upload (and every picture it serves) under ``GRADIO_TEMP_DIR``
(default ``<tmp>/gradio``).  :func:`claim_upload_dir` gives this process its own folder,
``<root>/ifcn_viz-run-<random>``, holds an exclusive ``flock`` on a lock file inside it for as long as the process
lives, and points ``GRADIO_TEMP_DIR`` at it.  At start it removes every other ``ifcn_viz-run-*`` folder whose lock
nobody holds (a run that was killed, even with SIGKILL, releases its lock): stale uploads are deleted, never
served.  :func:`release_upload_dir` removes this run's folder; ``launch`` calls it at exit and on SIGTERM.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import io
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

RUN_PREFIX = "ifcn_viz-run-"
LOCK_NAME = ".ifcn_viz.lock"

_claim_lock = threading.Lock()
_claimed: dict[str, Any] = {}  # this process's run folder: {"dir": Path, "fh": open lock file, "pid": int}


# ---------------------------------------------------------------------------------------------- the folder


def upload_root() -> Path:
    """Where run folders are made: ``IFCN_UPLOAD_ROOT``, else the parent of the folder Gradio would use."""
    if os.environ.get("IFCN_UPLOAD_ROOT"):
        return Path(os.environ["IFCN_UPLOAD_ROOT"])
    current = os.environ.get("GRADIO_TEMP_DIR")
    if current and Path(current).name.startswith(RUN_PREFIX):
        return Path(current).parent  # already ours (a second demo in this process)
    return Path(current) if current else Path(tempfile.gettempdir()) / "gradio"


def _try_lock(fh: Any) -> bool:
    try:
        import fcntl
    except ImportError:  # not POSIX: treat as locked (never delete another run's folder by mistake)
        return False
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def remove_stale_runs(root: Path) -> list[Path]:
    """Remove the run folders under ``root`` that no live process holds; returns the removed folders."""
    removed = []
    if not root.is_dir():
        return removed
    own = _claimed.get("dir")
    for d in sorted(root.glob(f"{RUN_PREFIX}*")):
        if not d.is_dir() or d == own:
            continue
        lock = d / LOCK_NAME
        try:
            fh = open(lock, "a+")  # noqa: SIM115 -- closed below
        except OSError:
            continue
        try:
            if not _try_lock(fh):
                continue  # a live run holds it
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
        finally:
            fh.close()
    return removed


def claim_upload_dir() -> Path:
    """This process's upload folder (created once per process, under :func:`upload_root`); sets
    ``GRADIO_TEMP_DIR`` to it and removes stale run folders first.  Call before building any ``gr.Blocks``."""
    with _claim_lock:
        if _claimed and _claimed["pid"] == os.getpid() and _claimed["dir"].is_dir():
            os.environ["GRADIO_TEMP_DIR"] = str(_claimed["dir"])
            return _claimed["dir"]
        root = upload_root()
        root.mkdir(parents=True, exist_ok=True)
        remove_stale_runs(root)
        d = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=root)).resolve()
        fh = open(d / LOCK_NAME, "a+")  # noqa: SIM115 -- held open (locked) for the life of the process
        _try_lock(fh)
        _claimed.update(dir=d, fh=fh, pid=os.getpid())
        os.environ["GRADIO_TEMP_DIR"] = str(d)
        atexit.register(release_upload_dir)
        return d


def release_upload_dir() -> None:
    """Delete this process's upload folder (idempotent; safe from an atexit or signal handler)."""
    with _claim_lock:
        if not _claimed or _claimed.get("pid") != os.getpid():
            return
        d, fh = _claimed["dir"], _claimed["fh"]
        _claimed.clear()
    shutil.rmtree(d, ignore_errors=True)
    try:
        fh.close()
    except OSError:
        pass


def upload_dir() -> Path | None:
    """The folder claimed by this process, if any."""
    return _claimed.get("dir") if _claimed.get("pid") == os.getpid() else None


# ---------------------------------------------------------------------------------------------- API arguments


def decode_base64(image_b64: str, max_bytes: int, limit_text: str) -> bytes:
    """Base64 (optionally a ``data:...;base64,`` URL) -> bytes, refusing payloads over ``max_bytes``."""
    if not isinstance(image_b64, str) or not image_b64:
        raise ValueError(
            "image must be an uploaded file (gradio_client.handle_file) or a non-empty base64 string of "
            "an image file's bytes"
        )
    payload = image_b64.split(",", 1)[1] if image_b64.startswith("data:") else image_b64
    if len(payload) * 3 // 4 > max_bytes:
        raise ValueError(
            f"the upload is about {len(payload) * 3 // 4:,} bytes, over the server's limit of "
            f"{max_bytes:,} bytes ({limit_text})"
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError(f"the image is not valid base64: {err}") from err


def uploaded_file(data: dict[str, Any], allowed_root: str | Path, max_bytes: int, limit_text: str) -> tuple[Path, str]:
    """``(server path, the user's name for it)`` of a Gradio ``FileData`` dict, checked to be a file that was
    uploaded to this server (under ``allowed_root``) and within the size limit."""
    path = data.get("path") if isinstance(data, dict) else None
    if not isinstance(path, str) or not path:
        raise ValueError("an uploaded file must carry its server path; send it with gradio_client.handle_file(path)")
    shown = data.get("orig_name") or Path(path).name
    shown = Path(str(shown)).name or "upload"
    resolved = Path(path).resolve()
    root = Path(allowed_root).resolve()
    if root not in resolved.parents:
        raise ValueError(f"{shown} is not a file uploaded to this server: send it with gradio_client.handle_file")
    if not resolved.is_file():
        raise ValueError(f"{shown} is no longer on the server: upload it again")
    size = resolved.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{shown} is {size:,} bytes, over the server's limit of {max_bytes:,} bytes ({limit_text})")
    return resolved, shown


# ---------------------------------------------------------------------------------------------- describing


def describe_conversion(src: Any) -> str | None:
    """What loading will do to an image that is usable but not plain 8-bit RGB (read from its header only):
    e.g. "16-bit samples scaled to 8 bits".  ``None`` when nothing notable happens or the header is unreadable
    (``load_image`` then gives the error)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fp = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
            with Image.open(fp) as im:
                mode, info = im.mode, im.info
                orientation = im.getexif().get(274, 1)
                # whether there is a second frame / page, never how many: counting a TIFF's pages walks its page
                # list once per page (200,000 tiny pages: minutes); GIF's count decodes every frame
                several, fmt = bool(getattr(im, "is_animated", False)), im.format
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
    if several:
        tiff = fmt == "TIFF"
        notes.append("a multi-page TIFF (pages not counted): the first page is used" if tiff
                     else "animated (frames not counted): the first frame is used")  # fmt: skip
    return "; ".join(notes) if notes else None
