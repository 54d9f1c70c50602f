"""Load any reasonable image as ``(H, W, 3)`` uint8 RGB, and refuse everything else with a clear reason.

Accepted: a path (str / Path), raw file bytes, a PIL image, or a numpy array (``HxW``, ``HxWx1/3/4``; uint8,
uint16, bool, or float in [0, 1]).  Conversions: EXIF orientation applied (``ImageOps.exif_transpose``);
grayscale, bilevel, palette, CMYK and other modes to RGB; alpha (LA / RGBA / palette transparency) composited
over white; 16-bit samples scaled to 8 bits (``v / 257``); animated images give their first frame.

Refused with :class:`ImageLoadError` (a ``ValueError``): a missing file, an empty file, something that is not
an image (text, random bytes), a truncated or corrupt file (the whole image is decoded, so truncation is
caught), SVG (a vector format: rasterise it first), any format outside :data:`IMAGE_FORMATS` (PNG, JPEG, GIF,
BMP, TIFF, WebP: EPS/PostScript, PDF and the rest are never handed to a decoder, so nothing reaches
Ghostscript), an image under :data:`MIN_SIDE` pixels a side, over :data:`MAX_PIXELS` pixels or more elongated
than :data:`MAX_ASPECT`:1 (all checked from the header *before* decoding: see :mod:`ifcn_viz.limits`), and
arrays of the wrong shape or dtype.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ifcn_viz import limits as _limits
from ifcn_viz.limits import IMAGE_FORMATS, MAX_ASPECT, MAX_PIXELS, MIN_SIDE  # noqa: F401 (re-exported)

# MIN_SIDE: smallest accepted side in pixels (below it an image holds less than one 8-px feature cell pair).
# MAX_PIXELS: largest accepted width * height (a 40-megapixel photo); larger headers are refused before decoding.
# MAX_ASPECT: longer side / shorter side.  IMAGE_FORMATS: the only Pillow decoders called (no EPS, PDF, ...).

ACCEPTED = (
    "accepted: a PNG/JPEG/GIF/BMP/TIFF/WebP file path or its bytes, a PIL image, or a numpy array "
    "HxW / HxWx1 / HxWx3 / HxWx4 of uint8, uint16, bool or float in [0, 1]"
)

_SVG_SUFFIXES = (".svg", ".svgz")
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)
_truncation_lock = threading.Lock()


CLI_ACCEPTED = "accepted: PNG, JPEG, GIF, BMP, TIFF or WebP files"


class ImageLoadError(ValueError):
    """An input that cannot be used as an image: the message says what was wrong and what is accepted.

    ``reason`` is the first part alone (what was wrong), for callers such as the CLI that word "what is
    accepted" for their own users.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message


def _fail(what: str) -> ImageLoadError:
    return ImageLoadError(f"{what}; {ACCEPTED}", reason=what)


def _looks_like_svg(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1024].lower()  # skip a UTF-8 BOM and blank space
    if text.startswith(b"<svg"):
        return True
    return text.startswith((b"<?xml", b"<!doctype", b"<!--")) and b"<svg" in text


def _svg_error(name: str) -> ImageLoadError:
    return _fail(f"{name} is an SVG, a vector format that is not rasterised here: convert it to PNG first")


def load_image(src: Any) -> np.ndarray:
    """Return ``src`` as a new C-contiguous ``(H, W, 3)`` uint8 RGB array (see the module docstring)."""
    if isinstance(src, np.ndarray):
        if src.ndim == 2 or (src.ndim == 3 and src.shape[2] in (1, 3, 4)):
            _check_size(src, "array")  # before any conversion copies it
        return _check_size(_from_array(src), "array")
    if isinstance(src, Image.Image):
        return _from_pil(src, "PIL image")
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        if not data:
            raise _fail("the image bytes are empty (0 bytes)")
        if _looks_like_svg(data[:2048]):
            raise _svg_error("the bytes")
        return _open_and_decode(io.BytesIO(data), "the image bytes")
    if isinstance(src, (str, Path)):
        path = Path(src)
        if not path.exists():
            raise _fail(f"image file not found: {path}")
        if path.is_dir():
            raise _fail(f"{path} is a directory, not an image file")
        try:
            size = path.stat().st_size
            if size == 0:
                raise _fail(f"{path} is empty (0 bytes)")
            with open(path, "rb") as fh:
                head = fh.read(2048)
        except PermissionError as err:
            raise _fail(f"cannot read {path}: permission denied") from err
        if path.suffix.lower() in _SVG_SUFFIXES or _looks_like_svg(head):
            raise _svg_error(str(path))
        with open(path, "rb") as fh:
            return _open_and_decode(fh, str(path))
    if type(src).__module__.startswith("torch"):
        raise _fail(f"got a {type(src).__name__}; pass tensor.permute(1, 2, 0).cpu().numpy() (HxWxC) instead")
    raise _fail(f"cannot load an image from a {type(src).__name__}")


def _open_and_decode(fp: Any, name: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(fp, formats=IMAGE_FORMATS)  # reads the header only; only the listed decoders
        except UnidentifiedImageError as err:
            raise _fail(f"{name} is not an image (or an unsupported format{_format_hint(fp)})") from err
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise _fail(
                f"{name} is over {MAX_PIXELS:,} pixels ({err}); refused before decoding: a guard against "
                "decompression bombs"
            ) from err
        except _DECODE_ERRORS as err:
            raise _fail(f"{name} is corrupt: {err}") from err
        with im:
            return _from_pil(im, name)


def _format_hint(fp: Any) -> str:
    """``": it is PostScript/EPS"`` when the header says so (never decoded: that would need Ghostscript)."""
    try:
        fp.seek(0)
        head = fp.read(32)
    except (OSError, ValueError, AttributeError):
        return ""
    if head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return ": it is PostScript/EPS, which is not decoded here"
    if head.startswith(b"%PDF"):
        return ": it is a PDF, which is not decoded here"
    return ""


def _check_header(im: Image.Image, name: str) -> None:
    w, h = im.size
    try:
        _limits.check_image_size(w, h, name)
    except _limits.LimitError as err:
        raise _fail(str(err)) from err


def _full_decode(im: Image.Image, name: str) -> None:
    """Decode every pixel now, with truncated files treated as errors."""
    try:
        if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone relaxed it globally: restore strictness for this load
            with _truncation_lock:
                old, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
                try:
                    im.load()
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES = old
        else:
            im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _fail(f"{name} is too large to decode safely: {err}") from err
    except _DECODE_ERRORS as err:
        raise _fail(f"{name} is truncated or corrupt and could not be decoded ({err})") from err


def _from_pil(im: Image.Image, name: str) -> np.ndarray:
    if im.format is not None and im.format not in IMAGE_FORMATS:  # e.g. an EPS opened by the caller
        raise _fail(f"{name} is {im.format}, which is not decoded here (only {', '.join(IMAGE_FORMATS)})")
    _check_header(im, name)
    if getattr(im, "is_animated", False):
        im.seek(0)  # animated GIF / APNG / WebP: the first frame
    _full_decode(im, name)
    try:
        if im.getexif().get(0x0112, 1) not in (None, 1):  # only when there is a rotation: the call copies the image
            im = ImageOps.exif_transpose(im)
    except _DECODE_ERRORS as err:  # a malformed EXIF block: use the pixels as stored
        warnings.warn(f"{name}: ignoring an unreadable EXIF orientation ({err})", stacklevel=3)
    return _check_size(_pil_to_rgb(im, name), name)


def _pil_to_rgb(im: Image.Image, name: str) -> np.ndarray:
    mode = im.mode
    if mode == "RGB":
        return np.array(im, dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale (PNG opens as I;16 or I): scale 0..65535 -> 0..255
        a = np.asarray(im)
        if a.dtype != np.uint16:  # mode "I" (int32) may hold values outside 0..65535
            a = np.clip(a, 0, 65535)
        return _gray_to_rgb(((a.astype(np.uint32) + 128) // 257).astype(np.uint8))  # round(v / 257), no floats
    if mode == "F":
        return _from_array(np.asarray(im, dtype=np.float32))
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im if mode == "RGBA" else im.convert("RGBA"))  # no extra full-size copy for RGBA
        return _composite_over_white(rgba)
    try:
        return np.array(im.convert("RGB"), dtype=np.uint8)  # L, 1, P, CMYK, YCbCr, LAB, HSV
    except (ValueError, OSError) as err:
        raise _fail(f"{name} has pixel mode {mode!r}, which cannot be converted to RGB") from err


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def _composite_over_white(rgba: np.ndarray) -> np.ndarray:
    """``(H, W, 4)`` uint8 -> ``(H, W, 3)`` uint8: colour * alpha + white * (1 - alpha), rounded.

    Integer arithmetic in bands of rows, so a 40-megapixel RGBA image needs its output plus one band, not
    several full-size float copies: ``(c * a + 255 * (255 - a) + 127) // 255``.
    """
    h, w = rgba.shape[:2]
    out = np.empty((h, w, 3), np.uint8)
    band = max(1, 1_000_000 // max(w, 1))
    for y in range(0, h, band):
        px = rgba[y : y + band].astype(np.uint32)
        a = px[..., 3:4]
        out[y : y + band] = (px[..., :3] * a + 255 * (255 - a) + 127) // 255
    return out


def _from_array(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise _fail(f"array has shape {a.shape}; expected HxW, HxWx1, HxWx3 or HxWx4")
    if a.dtype == np.uint8:
        u8 = a
    elif a.dtype == np.bool_:
        u8 = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        u8 = np.round(a.astype(np.float64) / 257.0).astype(np.uint8)
    elif a.dtype.kind == "f":
        if a.size and not np.isfinite(a).all():
            raise _fail("float array contains NaN or infinity; expected finite values in [0, 1]")
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:
            raise _fail(f"float array has values in [{lo:g}, {hi:g}]; expected [0, 1] (divide 0..255 data by 255)")
        u8 = np.round(a.astype(np.float64) * 255.0).astype(np.uint8)
    else:
        raise _fail(f"array dtype {a.dtype} is not supported; expected uint8, uint16, bool or float in [0, 1]")
    if u8.ndim == 2:
        return _gray_to_rgb(u8)
    if u8.shape[2] == 4:
        return _composite_over_white(u8)
    return np.array(u8, dtype=np.uint8, order="C")  # a copy: never a view of the caller's array


def _check_size(rgb: np.ndarray, name: str) -> np.ndarray:
    h, w = rgb.shape[:2]
    try:
        _limits.check_image_size(w, h, name)
    except _limits.LimitError as err:
        raise _fail(str(err)) from err
    return rgb
