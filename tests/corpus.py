"""Issue 8's bad-input corpus, generated on the fly (nothing binary is committed), and small image helpers.

Shared by the loader, CLI, app and end-to-end bad-input tests so that every face sees the same files.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


def png_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", **kw)
    return buf.getvalue()


def sample_image(seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    """A distinct smooth colour image per seed (so fingerprints differ)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * rng.uniform(1, 3) + yy * rng.uniform(0, 2)) % 256 for _ in range(3)], -1)
    return img.astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header declares ``w x h`` pixels (a decompression-bomb shape) with almost no data."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class Case:
    path: Path
    ok: bool  # True: loads (perhaps converted); False: refused with a message
    words: tuple[str, ...]  # words the message must contain (refused) or the conversion note (accepted)


def bad_input_corpus(directory: Path) -> dict[str, Case]:
    """Issue 8's corpus, written under ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rgb = sample_image(0, 64, 80)
    rng = np.random.default_rng(0)
    cases: dict[str, Case] = {}

    def put(name: str, data: bytes, ok: bool, *words: str) -> None:
        (d / name).write_bytes(data)
        cases[name] = Case(d / name, ok, words)

    jpg = io.BytesIO()
    Image.fromarray(rgb).save(jpg, "JPEG", quality=90)
    put("empty.png", b"", False, "empty")
    put("random.png", rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(), False, "not an image")
    put("random.jpg", rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(), False, "not an image")
    put("truncated.png", png_bytes(rgb)[:300], False, "truncated")
    put("truncated.jpg", jpg.getvalue()[:400], False, "truncated")
    put("notes.txt", b"this is a text file, not a picture\n" * 5, False, "not an image")
    put("one_pixel.png", png_bytes(np.zeros((1, 1, 3), np.uint8)), False, "1x1")
    put("bomb.png", png_header_only(20000, 20000), False, "40,000,000 pixels")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="9" height="9"/></svg>'
    put("vector.svg", svg, False, "SVG")
    put(
        "sixteen_bit.png",
        png_bytes((np.arange(64 * 80).reshape(64, 80) * 13 % 65536).astype(np.uint16)),
        True,
        "16-bit",
    )
    put("gray.png", png_bytes(rgb[:, :, 0]), True, "grayscale")
    la = Image.fromarray(np.stack([rgb[:, :, 0], np.full((64, 80), 128, np.uint8)], -1), "LA")
    buf = io.BytesIO()
    la.save(buf, "PNG")
    put("gray_alpha.png", buf.getvalue(), True, "transparency")
    put("rgba.png", png_bytes(np.concatenate([rgb, np.full((64, 80, 1), 100, np.uint8)], -1)), True, "transparency")
    buf = io.BytesIO()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(buf, "PNG")
    put("palette.png", buf.getvalue(), True, "palette")
    buf = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buf, "JPEG")
    put("cmyk.jpg", buf.getvalue(), True, "CMYK")
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[274] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(buf, "JPEG", exif=exif)
    put("exif_rotated.jpg", buf.getvalue(), True, "EXIF orientation 6")
    buf = io.BytesIO()
    frames = [Image.fromarray(np.roll(rgb, 8 * i, axis=1)) for i in range(3)]
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    put("animated.gif", buf.getvalue(), True, "animated")
    return cases
