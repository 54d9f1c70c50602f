"""Emoji and symbol glyphs as a shape source (ifcn_viz/data/glyphs.py): curated, offline, seeded, masks from the
glyph's alpha, touching groups of one kind, and the fallback to the geometric shapes without a font.

Tests that draw glyphs skip where the fonts are not installed (apt-get install fonts-noto-color-emoji
fonts-symbola); CI installs them and sets IFCN_REQUIRE_FONTS=1, which turns those skips into failures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from ifcn_viz.data import glyphs as G
from ifcn_viz.data.synthetic import SyntheticDataset, _place_group, generate_scene, get_style

ROOT = Path(__file__).resolve().parents[1]
EMOJI = G.find_font("emoji")
SYMBOL = G.find_font("symbol")


def _needs(font, name: str):
    if font is None and os.environ.get("IFCN_REQUIRE_FONTS"):
        pytest.fail(f"IFCN_REQUIRE_FONTS is set but the {name} font is not installed")
    return pytest.mark.skipif(font is None, reason=f"the {name} font is not installed")


needs_emoji = _needs(EMOJI, "Noto Color Emoji")
needs_symbol = _needs(SYMBOL, "Symbola")


def test_the_curated_glyphs_are_real_things_not_faces_flags_or_signs():
    assert set(G.CATEGORIES) >= {"people", "animals", "food", "vehicles", "objects"}
    assert all(len(chars) >= 10 for chars in G.CATEGORIES.values())
    assert len(G.GLYPHS) == len(set(G.GLYPHS)) >= 300
    whole_animals = {"GIRAFFE FACE", "ZEBRA FACE"}  # Unicode's names; Noto and Symbola draw the whole animal
    for ch in G.GLYPHS:
        assert len(ch) == 1, f"{ch!r} is not one code point"
        name = unicodedata.name(ch)
        words = set(name.split())
        assert name in whole_animals or not words & {"FACE", "FLAG", "HAND", "HEART", "SIGN", "SYMBOL"}, name
        assert "SMIL" not in name, name
        assert not 0x1F600 <= ord(ch) <= 0x1F64F, f"{name} is an emoticon"
        assert not 0x1F1E6 <= ord(ch) <= 0x1F1FF, f"{name} is part of a flag"


def test_find_font_prefers_the_environment_and_ignores_a_missing_file(monkeypatch, tmp_path):
    font = tmp_path / "MyEmoji.ttf"
    font.write_bytes(b"not really a font")
    monkeypatch.setenv(G.EMOJI_FONT_ENV, str(font))
    assert G.find_font("emoji") == font
    monkeypatch.setenv(G.EMOJI_FONT_ENV, str(tmp_path / "absent.ttf"))
    monkeypatch.setitem(G.FONT_PATHS, "emoji", ())
    with pytest.warns(RuntimeWarning, match="not a file"):
        assert G.find_font("emoji") is None
    with pytest.raises(ValueError):
        G.find_font("wingdings")


def test_without_fonts_emoji_groups_fall_back_to_shapes_with_one_warning(monkeypatch, tmp_path):
    for kind, env in G.FONT_ENV.items():
        monkeypatch.setenv(env, str(tmp_path / f"no-{kind}.ttf"))
        monkeypatch.setitem(G.FONT_PATHS, kind, ())
    monkeypatch.setattr(G, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fonts = G.available_fonts()
        assert fonts.emoji is None and fonts.symbol is None and fonts.glyphs == ()
        scenes = [generate_scene((4, i), (128, 128), style="emoji:1") for i in range(6)]
    missing = [w for w in caught if "no emoji or symbol font" in str(w.message)]
    assert len(missing) == 1, [str(w.message) for w in caught]
    for image, masks in scenes:
        assert image.shape == (128, 128, 3) and len(masks) >= 1 and (masks.sum(0) <= 1).all()
    # the fallback is seeded too
    again = generate_scene((4, 0), (128, 128), style="emoji:1")
    assert np.array_equal(again[0], scenes[0][0]) and np.array_equal(again[1], scenes[0][1])


def test_a_font_file_that_is_not_a_font_is_ignored_with_a_warning(monkeypatch, tmp_path):
    bad = tmp_path / "broken.ttf"
    bad.write_bytes(b"\0" * 64)
    monkeypatch.setenv(G.EMOJI_FONT_ENV, str(bad))
    monkeypatch.setenv(G.SYMBOL_FONT_ENV, str(bad))
    monkeypatch.setattr(G, "_warned", set())
    with pytest.warns(RuntimeWarning, match="cannot read"):
        fonts = G.available_fonts()
    assert fonts.glyphs == ()


def test_style_names():
    assert get_style("train").emoji_fraction == 0
    assert get_style("emoji").emoji_fraction == 0.5
    assert get_style("emoji:0.25").emoji_fraction == 0.25
    for bad in ("emoji:2", "emoji:x", "emojis"):
        with pytest.raises(ValueError):
            get_style(bad)
    with pytest.raises(ValueError):
        get_style("train").replace(emoji_fraction=1.5)


@needs_emoji
def test_a_glyph_is_rendered_once_at_the_strike_size_and_cropped_to_its_alpha():
    rgba = G.glyph(str(EMOJI), "🍎", "colour")
    assert rgba.dtype == np.uint8 and rgba.shape[2] == 4
    assert 100 <= max(rgba.shape[:2]) <= 160  # the 109 strike is about 136 px
    alpha = rgba[..., 3] >= 128
    assert alpha[0].any() and alpha[-1].any() and alpha[:, 0].any() and alpha[:, -1].any()  # tight
    assert len(set(map(tuple, rgba[alpha][:, :3][::50]))) > 5  # colour, not a black silhouette
    assert G.glyph(str(EMOJI), "🍎", "colour") is rgba  # cached


@needs_emoji
@pytest.mark.parametrize("size", [20.0, 64.0, 150.0])
def test_object_mask_is_the_resized_glyph_alpha(size):
    rgba = G.glyph(str(EMOJI), "🚲", "colour")
    made = G.glyph_object(np.random.default_rng(0), str(EMOJI), "🚲", "colour", size, flip=False, angle=0.0)
    assert made is not None
    mask, rgb = made
    gh, gw = rgba.shape[:2]
    s = size / max(gh, gw)
    resample = Image.Resampling.BILINEAR if s > 1 else Image.Resampling.BOX
    ref = np.asarray(Image.fromarray(rgba, "RGBA").resize((round(gw * s), round(gh * s)), resample))
    ys, xs = np.nonzero(ref[..., 3] >= 128)
    ref_mask = ref[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1, 3] >= 128
    assert np.array_equal(mask, ref_mask)
    assert abs(max(mask.shape) - size) <= 1
    assert rgb.shape == mask.shape + (3,) and rgb.dtype == np.float32
    # the bicycle's wheels have holes: the mask keeps them (no filling of colour emoji)
    assert not ndimage.binary_fill_holes(mask).sum() == mask.sum() or size < 30


@needs_symbol
def test_symbol_glyphs_are_filled_silhouettes():
    rgba = G.glyph(str(SYMBOL), "🐘", "symbol")
    solid = rgba[..., 3] >= 128
    assert solid.sum() > 0.3 * solid.size  # the line drawing's inside is filled
    assert np.array_equal(ndimage.binary_fill_holes(solid), solid)
    assert G.glyph(str(SYMBOL), "🌵", "symbol").size == 0  # an open line drawing is refused


@needs_emoji
def test_emoji_scenes_are_seeded_and_byte_identical_in_a_fresh_process():
    a = generate_scene((7, 3), (160, 160), style="emoji:1")
    b = generate_scene((7, 3), (160, 160), style="emoji:1")
    c = generate_scene((7, 4), (160, 160), style="emoji:1")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    code = (
        "import hashlib, sys; from ifcn_viz.data.synthetic import generate_scene; "
        "im, m = generate_scene((7, 3), (160, 160), style='emoji:1'); "
        "sys.stdout.write(hashlib.sha256(im.tobytes() + m.tobytes()).hexdigest())"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=120)
    import hashlib

    assert out.stdout == hashlib.sha256(a[0].tobytes() + a[1].tobytes()).hexdigest()


@needs_emoji
def test_a_glyph_group_is_touching_copies_of_one_glyph():
    style = get_style("emoji:1")
    for seed in range(10):  # a group is cut short where a copy would land mostly outside the image
        colours: list = []
        masks = _place_group(
            np.random.default_rng(seed), style, 3, 60.0, 320, 320, (str(EMOJI), "🍊", "colour"), colours
        )
        if len(masks) == 3:
            break
    assert len(masks) == 3 and len(colours) == 3
    union = np.any(masks, axis=0)
    _, n_parts = ndimage.label(ndimage.binary_dilation(union))
    assert n_parts == 1, "the copies touch"
    one = G.glyph(str(EMOJI), "🍊", "colour")[..., 3] >= 128
    fill = one.sum() / one.size
    for mk, (box, rgb) in zip(masks, colours):
        ys, xs = np.nonzero(mk)
        assert (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) == (
            box[0].start,
            box[0].stop,
            box[1].start,
            box[1].stop,
        )
        assert rgb.shape[:2] == mk[box].shape
        assert abs(mk.sum() / mk[box].size - fill) < 0.25  # an orange, however turned


@needs_emoji
def test_emoji_scenes_have_touching_groups_and_every_painted_pixel_is_labelled():
    style = get_style("emoji:1").replace(backgrounds=("flat",), effects=False, emoji_colour=1.0)
    touching = 0
    for seed in range(12):
        image, masks = generate_scene((2, seed), (192, 192), style=style)
        assert len(masks) >= 1 and (masks.sum(0) <= 1).all()
        outside = ~masks.any(0)
        assert outside.any()
        background = image[outside]
        assert (np.abs(background.astype(int) - background[0]).max(1) <= 1).all(), "an unlabelled painted pixel"
        for i in range(len(masks)):
            grown = ndimage.binary_dilation(masks[i])
            touching += sum(int((grown & masks[j]).any()) for j in range(i + 1, len(masks)))
    assert touching >= 10


@needs_emoji
def test_the_emoji_style_changes_the_scenes_and_the_cache_key():
    train = generate_scene((0, 5), (128, 128), style="train")
    emoji = generate_scene((0, 5), (128, 128), style="emoji:1")
    assert not np.array_equal(train[0], emoji[0])
    keys = {SyntheticDataset(4, style=s).cache_key() for s in ("train", "emoji", "emoji:0.3")}
    assert len(keys) == 3


@needs_emoji
def test_training_config_and_cli_select_the_emoji_style(tmp_path, monkeypatch):
    from ifcn_viz.cli import build_parser
    from ifcn_viz.train.commands import _config_from_args
    from ifcn_viz.train.data import build_dataset
    from ifcn_viz.train.recipe import TrainConfig, train_config

    assert TrainConfig().synthetic_style == "train"
    args = build_parser().parse_args(["train", "--scene-style", "emoji:0.3", "--out", str(tmp_path / "run")])
    cfg = _config_from_args(args)
    assert cfg.synthetic_style == "emoji:0.3"
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        train_config("tiny", synthetic_style="independent")
    with pytest.raises(ValueError):
        train_config("tiny", synthetic_style="emoji:7")
    small = train_config("tiny", synthetic_style="emoji", train_scenes=3, image_size=64, out=str(tmp_path / "r"))
    ds = build_dataset(small)
    assert ds.style.emoji_fraction == 0.5
    assert np.array_equal(ds.scene(1)[0], generate_scene((0, 1), (64, 64), style="emoji")[0])


@needs_emoji
def test_without_fonttools_the_glyphs_are_found_by_rendering(monkeypatch):
    import builtins

    with_cmap = G._codepoints(str(EMOJI))
    real_import = builtins.__import__

    def no_fonttools(name, *args, **kwargs):
        if name.startswith("fontTools"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    G._codepoints.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_fonttools)
    try:
        rendered = G._codepoints(str(EMOJI))
    finally:
        G._codepoints.cache_clear()
    assert rendered == {ord(g) for g in G.GLYPHS} & with_cmap
