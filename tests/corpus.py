"""The bad-input corpus, generated on the fly (nothing binary is committed), and small image helpers.

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
    """The corpus, written under ``directory``."""
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


# ---------------------------------------------------------------- hostile inputs (generated cheaply)


def zlib_zeros(n: int, level: int = 6) -> bytes:
    """A zlib stream of ``n`` zero bytes, made without deflating them all: after a full flush deflate restarts,
    so every further 4 MiB of zeros packs to the same bytes; the Adler-32 of n zeros is ``(n % 65521) << 16 | 1``."""
    chunk = 1 << 22
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)  # raw deflate
    first = comp.compress(b"\0" * min(n, chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    reps, rest = divmod(n, chunk)
    body = [first] if n >= chunk else []
    if reps > 1:
        again = comp.compress(b"\0" * chunk) + comp.flush(zlib.Z_FULL_FLUSH)
        body.append(again * (reps - 1))
    body.append(comp.compress(b"\0" * (rest if n >= chunk else n)) + comp.flush())
    return b"\x78\x9c" + b"".join(body) + struct.pack(">I", ((n % 65521) << 16) | 1)


def png_zeros(w: int, h: int, bit_depth: int = 8, colour_type: int = 2, level: int = 6) -> bytes:
    """A valid PNG of ``w x h`` black pixels whose body is tiny: the zero rows are deflated as they are made.

    ``colour_type`` 2 = RGB, 6 = RGBA, 0 = grey; ``bit_depth`` 8 or 16.  A 16 x 2,400,000 RGB image is ~110 KB and
    a 16-bit RGBA 40-megapixel one ~300 KB, made in well under a second without holding the pixels.
    """
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    parts = [zlib_zeros(h * (1 + w * channels * bit_depth // 8), level)]  # every row: filter 0 + zero samples
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n%%EndComments\n"
    b"newpath 0 0 moveto 64 64 lineto stroke\nshowpage\n%%EOF\n"
)


def hostile_images(directory: Path) -> dict[str, Case]:
    """Images that pass a plain pixel-count guard but cost gigabytes, formats that need an interpreter, and the
    smallest valid images.  ``ok``: loads; ``words``: what the one-line refusal must say."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Case] = {}

    def put(name: str, data: bytes, ok: bool, *words: str) -> None:
        (d / name).write_bytes(data)
        cases[name] = Case(d / name, ok, words)

    put("tall_16x2400000.png", png_zeros(16, 2_400_000), False, "aspect ratio", "20:1")
    put("wide_2400000x16.png", png_zeros(2_400_000, 16), False, "aspect ratio")
    put("rgba16_40mp.png", png_zeros(8000, 5000, bit_depth=16, colour_type=6), True)
    put("bomb_50000x50000.png", png_header_only(50_000, 50_000), False, "40,000,000 pixels")
    put("eps.eps", EPS, False, "PostScript")
    put("eps_named.png", EPS, False, "PostScript")  # an EPS with a .png name: still never decoded
    put("pdf.png", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", False, "PDF")
    put("truncated_tall.png", png_zeros(16, 2000)[:120], False, "truncated")
    for side in (16, 17, 24, 35):
        put(f"small_{side}.png", png_bytes(sample_image(side, side, side + 7)), True)
    put("strip_16x320.png", png_bytes(sample_image(1, 16, 320)), True)  # 20:1, the largest aspect accepted
    return cases


def zip_bytes(entries: dict[str, bytes | tuple[int, int]], compress: bool = True) -> bytes:
    """A zip archive; an entry given as ``(size, chunk)`` is ``size`` zero bytes streamed in ``chunk``-byte pieces."""
    import zipfile

    buf = io.BytesIO()
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=mode) as zf:
        for name, data in entries.items():
            if isinstance(data, tuple):
                size, chunk = data
                info = zipfile.ZipInfo(name)
                info.compress_type = mode
                with zf.open(info, "w", force_zip64=True) as fh:
                    zero = b"\0" * chunk
                    for _ in range(size // chunk):
                        fh.write(zero)
            else:
                zf.writestr(name, data)
    return buf.getvalue()


def hostile_checkpoints(directory: Path, weights: Path, card: dict) -> dict[str, Case]:
    """Crafted cards (a copy of ``weights`` with an edited ``card``) and archive bombs."""
    import copy
    import json
    import zipfile

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Case] = {}

    def card_case(name: str, edit, *words: str) -> None:
        c = copy.deepcopy(card)
        edit(c)
        (d / f"{name}.safetensors").write_bytes(weights.read_bytes())
        (d / f"{name}.json").write_text(json.dumps(c))
        cases[name] = Case(d / f"{name}.safetensors", False, words)

    card_case("head_1e6", lambda c: c["model_config"].update(head_channels=1_000_000), "head_channels", "1,000,000")
    card_case("width_1e5", lambda c: c["model_config"].update(backbone_width=100_000), "backbone_width")
    card_case("k_1000", lambda c: c["model_config"].update(k=1000, m=2001), "k = 1,000")
    card_case("scale_3000", lambda c: c["infer_config"].update(scales=[3000]), "scales entry", "3,000")
    card_case("scales_200", lambda c: c["infer_config"].update(scales=[192] * 200), "200 entries")
    card_case("max_side_1e9", lambda c: c["infer_config"].update(max_side=10**9), "max_side")
    card_case("pre_nms_1e9", lambda c: c["infer_config"].update(pre_nms_top_k=10**9), "pre_nms_top_k")
    card_case("head_str", lambda c: c["model_config"].update(head_channels="512"), "integer")
    # a deflate bomb: 200 MB of zeros packed ~1000x, in the layout torch.save writes
    bomb = {"bomb/data.pkl": b"\x80\x02}q\x00.", "bomb/data/0": (200 * 1024**2, 1024**2), "bomb/version": b"3\n"}
    (d / "bomb.pt").write_bytes(zip_bytes(bomb))
    cases["bomb"] = Case(d / "bomb.pt", False, ("expands", "decompression bomb"))
    many = {f"m/data/{i}": b"" for i in range(20_000)}
    (d / "many_entries.pt").write_bytes(zip_bytes(many, compress=False))
    cases["many_entries"] = Case(d / "many_entries.pt", False, ("20,000 archive entries",))
    (d / "not_a_zip.pt").write_bytes(b"\x80\x02" + b"junk" * 100)
    cases["not_a_zip"] = Case(d / "not_a_zip.pt", False, ("refused",))
    assert zipfile.is_zipfile(d / "bomb.pt")
    return cases


def many_page_tiff(pages: int, w: int = 64, h: int = 48) -> bytes:
    """A TIFF whose first page is a ``w x h`` grey image and whose ``pages - 1`` others are 1 x 1 (written by hand:
    about 100 bytes a page, so 50,000 pages are 5 MB; Pillow's own writer is slow at this)."""
    import struct

    def ifd(width: int, height: int, data_at: int, nbytes: int, next_at: int) -> bytes:
        tags = [(256, 3, width), (257, 3, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, data_at),
                (278, 3, height), (279, 4, nbytes)]  # fmt: skip
        entries = b"".join(struct.pack("<HHII", t, typ, 1, v) for t, typ, v in tags)
        return struct.pack("<H", len(tags)) + entries + struct.pack("<I", next_at)

    size = 2 + 8 * 12 + 4
    pixels = bytes([128]) * (w * h)
    first_ifd = 8 + len(pixels)
    out = [b"II*\x00" + struct.pack("<I", first_ifd), pixels]
    for i in range(pages):
        at = first_ifd + i * size
        nxt = at + size if i < pages - 1 else 0
        out.append(ifd(w, h, 8, w * h, nxt) if i == 0 else ifd(1, 1, 8, 1, nxt))
    return b"".join(out)
