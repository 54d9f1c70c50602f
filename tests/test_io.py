"""load_image: every good format converted to (H, W, 3) uint8 RGB, every bad one refused with a clear reason."""

from __future__ import annotations

import io

import numpy as np
import pytest
from corpus import png_header_only
from PIL import Image

from ifcn_viz.data.io import MAX_PIXELS, MIN_SIDE, ImageLoadError, load_image


def _rgb(h: int = 40, w: int = 60, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- good inputs


def test_rgb_png_roundtrip_exact(tmp_path):
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "a.png")
    for src in (tmp_path / "a.png", str(tmp_path / "a.png"), (tmp_path / "a.png").read_bytes(), Image.fromarray(a)):
        out = load_image(src)
        assert out.dtype == np.uint8 and out.shape == (40, 60, 3) and out.flags.c_contiguous
        np.testing.assert_array_equal(out, a)


def test_grayscale_and_bilevel(tmp_path):
    g = _rgb()[..., 0]
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (40, 60, 3)
    np.testing.assert_array_equal(out, np.repeat(g[..., None], 3, 2))
    Image.fromarray(g > 128).save(tmp_path / "b.png")  # mode "1"
    np.testing.assert_array_equal(load_image(tmp_path / "b.png")[..., 1], np.where(g > 128, 255, 0))


def test_16bit_png_scaled_to_8bit(tmp_path):
    v = np.linspace(0, 65535, 40 * 60).reshape(40, 60).astype(np.uint16)
    Image.fromarray(v).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = load_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[..., 0], np.round(v / 257).astype(np.uint8))
    assert out[0, 0, 0] == 0 and out[-1, -1, 2] == 255


def test_alpha_composited_over_white(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0] = 200  # red-ish
    rgba[:, :10, 3] = 255  # opaque
    rgba[:, 10:20, 3] = 0  # transparent -> white
    rgba[:, 20:, 3] = 128  # half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(out[0, 15], [255, 255, 255])
    a = 128 / 255
    np.testing.assert_allclose(out[0, 25], np.round([200 * a + 255 * (1 - a), 255 * (1 - a), 255 * (1 - a)]), atol=1)
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    assert load_image(la)[0, 15].tolist() == [255, 255, 255]


def test_palette_with_and_without_transparency(tmp_path):
    a = _rgb(32, 32)
    p = Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    p.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_image(tmp_path / "p.png"), np.asarray(p.convert("RGB")))
    p.info["transparency"] = 0
    p.save(tmp_path / "pt.png", transparency=0)
    out = load_image(tmp_path / "pt.png")
    idx = np.asarray(p) == 0
    assert idx.any() and (out[idx] == 255).all()  # transparent palette entry -> white


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (32, 24), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red in CMYK
    out = load_image(tmp_path / "c.jpg")
    assert out.shape == (24, 32, 3)
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 60 and out[..., 2].mean() < 60


def test_exif_orientation_applied(tmp_path):
    a = np.zeros((40, 80, 3), np.uint8)
    a[:, :40] = 255  # left half white
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (80, 40, 3)  # transposed
    assert out[:40].mean() > 200 and out[40:].mean() < 50  # the white half is now on top


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = load_image(tmp_path / "a.gif")
    assert out.shape == (32, 32, 3) and out[..., 0].min() > 200 and out[..., 2].max() < 50


@pytest.mark.parametrize(
    ("arr", "expect"),
    [
        (np.full((20, 20), 7, np.uint8), 7),
        (np.full((20, 20, 1), 9, np.uint8), 9),
        (np.full((20, 20), 65535, np.uint16), 255),
        (np.full((20, 20, 3), 0.5, np.float32), 128),
        (np.ones((20, 20), bool), 255),
        (np.dstack([np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20), np.uint8)]), 255),  # transparent RGBA
    ],
)
def test_arrays(arr, expect):
    out = load_image(arr)
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8 and (out == expect).all()


def test_array_is_copied():
    a = _rgb()
    out = load_image(a)
    out[0, 0] = 0
    assert not np.shares_memory(out, a)


# ---------------------------------------------------------------- bad inputs


def _bad(src, *words):
    with pytest.raises(ImageLoadError) as info:
        load_image(src)
    msg = str(info.value).lower()
    assert "accepted" in msg, msg  # says what would have worked
    for w in words:
        assert w in msg, (w, msg)
    assert isinstance(info.value, ValueError)


def test_bad_files(tmp_path):
    _bad(tmp_path / "missing.png", "not found")
    (tmp_path / "empty.png").write_bytes(b"")
    _bad(tmp_path / "empty.png", "empty")
    _bad(b"", "empty")
    (tmp_path / "rand.png").write_bytes(np.random.default_rng(0).bytes(5000))
    _bad(tmp_path / "rand.png", "not an image")
    (tmp_path / "rand.jpg").write_bytes(np.random.default_rng(1).bytes(5000))
    _bad(tmp_path / "rand.jpg", "not an image")
    (tmp_path / "t.txt").write_text("hello, this is not a picture\n" * 20)
    _bad(tmp_path / "t.txt", "not an image")
    _bad(tmp_path, "directory")


def test_truncated_png_and_jpeg(tmp_path):
    a = _rgb(200, 200)
    for ext in ("png", "jpg"):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG" if ext == "png" else "JPEG", quality=90)
        data = buf.getvalue()
        (tmp_path / f"t.{ext}").write_bytes(data[: len(data) // 2])
        _bad(tmp_path / f"t.{ext}", "truncated")
        _bad(data[: len(data) // 2], "truncated")


def test_svg_refused(tmp_path):
    svg = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"></svg>\n'
    (tmp_path / "v.svg").write_text(svg)
    _bad(tmp_path / "v.svg", "vector", "png")
    (tmp_path / "v.png").write_text(svg)  # wrong suffix: found by content
    _bad(tmp_path / "v.png", "vector")
    _bad(svg.encode(), "svg")


def test_too_small(tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    _bad(tmp_path / "one.png", "1x1", str(MIN_SIDE))
    _bad(np.zeros((MIN_SIDE - 1, 100, 3), np.uint8), str(MIN_SIDE))
    assert load_image(np.zeros((MIN_SIDE, MIN_SIDE, 3), np.uint8)).shape == (MIN_SIDE, MIN_SIDE, 3)


def test_decompression_bomb_refused_before_decoding(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_header_only(20000, 20000))
    _bad(tmp_path / "bomb.png", "400000000", "decompression")  # PIL's own guard fires first at this size
    side = int(MAX_PIXELS**0.5) + 1
    (tmp_path / "just_over.png").write_bytes(png_header_only(side, side))
    _bad(tmp_path / "just_over.png", f"{side}x{side}", "decompression")  # ours: under PIL's limit


@pytest.mark.parametrize(
    ("arr", "word"),
    [
        (np.zeros((20, 20, 2), np.uint8), "shape"),
        (np.zeros((20,), np.uint8), "shape"),
        (np.zeros((3, 20, 20), np.uint8), "shape"),
        (np.zeros((20, 20, 3), np.int64), "dtype"),
        (np.full((20, 20, 3), 2.0), "[0, 1]"),
        (np.full((20, 20, 3), np.nan), "nan"),
    ],
)
def test_bad_arrays(arr, word):
    _bad(arr, word)


def test_bad_types():
    import torch

    _bad(torch.zeros(3, 20, 20), "numpy")
    _bad(12, "int")
