"""Real-world object shapes and looks for the synthetic scenes, rendered offline from emoji and symbol fonts (ours).

Two Debian fonts, both optional at run time:

* **Noto Color Emoji** (``fonts-noto-color-emoji``, SIL Open Font License 1.1): colour pictures of people,
  animals, food, plants, vehicles and household objects.  It is a CBDT bitmap font, so it is loaded at its one
  strike size, 109, and the rendered picture is resized.  A group of these is painted in the picture's own
  colours (``"colour"``), or its alpha is used as a silhouette filled with the generator's textures
  (``"silhouette"``).
* **Symbola** (``fonts-symbola``, "free for any use", Debian's copyright file): black line drawings of many of
  the same things (Unicode 9 and older).  The ink, closed and with its holes filled, gives a second drawing of the
  silhouette (``"symbol"``), filled with the generator's textures.

Fonts are found by :func:`find_font`: the path in the environment variable (``IFCN_EMOJI_FONT`` /
``IFCN_SYMBOL_FONT``) if set, else the usual install paths.  Without either font the generator falls back to
its geometric shapes, with one warning per process.

Only :data:`GLYPHS` are drawn: a curated list of code points of real things -- no faces or smileys, flags, hands
or symbols.  Every glyph is rendered once per process and font at a fixed size (:func:`glyph`, an ``lru_cache``)
and then only resized, rotated and flipped per object (:func:`glyph_object`).
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

EMOJI_FONT_ENV = "IFCN_EMOJI_FONT"
SYMBOL_FONT_ENV = "IFCN_SYMBOL_FONT"
FONT_ENV = {"emoji": EMOJI_FONT_ENV, "symbol": SYMBOL_FONT_ENV}
# Where Debian/Ubuntu, Fedora, Arch and Homebrew-style installs put them.
FONT_PATHS: dict[str, tuple[str, ...]] = {
    "emoji": (
        "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
        "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
        "/usr/share/fonts/noto/NotoColorEmoji.ttf",
        "/usr/share/fonts/noto-emoji/NotoColorEmoji.ttf",
        "/usr/local/share/fonts/NotoColorEmoji.ttf",
    ),
    "symbol": (
        "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf",
        "/usr/share/fonts/truetype/ancient-scripts/Symbola.ttf",
        "/usr/share/fonts/gdouros-symbola/Symbola.ttf",
        "/usr/share/fonts/TTF/Symbola.ttf",
        "/usr/local/share/fonts/Symbola.ttf",
    ),
}
EMOJI_STRIKE = 109  # Noto Color Emoji's one bitmap size: FreeType refuses any other
SYMBOL_SIZE = 128
MODES = ("colour", "silhouette", "symbol")

# Curated code points: things a photograph shows as separate objects.  Per category, so that a test can check
# that people, animals, food, vehicles and objects are all there.
CATEGORIES: dict[str, str] = {
    # full-body people (they take skin-tone variants), no faces
    "people": "🚶🏃🧍🧎💃🕺🧗🏄🚴🤸⛹🏋🧘🤾🏌",
    "animals": "🐘🐕🐈🐄🐎🐖🐑🐐🐪🐫🦒🦓🦏🦛🐃🐂🐅🐆🦘🐇🐿🦔🐁🐀🦝🦨🦡🦫🐓🦃🐦🐧🦆🦢🦉🦩🦚🦜🕊🐊🐢🦎🐍🐟🐠🐡🦈🐬🐳🐋"
    "🦭🐙🦑🦀🦞🦐🐌🦋🐛🐜🐝🐞🦗🕷🦂🦕🦖🐉",
    "food": "🍎🍏🍐🍊🍋🍌🍉🍇🍓🫐🍈🍒🍑🥭🍍🥥🥝🍅🍆🥑🥦🥬🥒🌶🫑🌽🥕🧄🧅🥔🍠🥐🥯🍞🥖🥨🧀🥚🥞🧇🥓🍗🍖🌭🍔🍟🍕🥪🌮🌯"
    "🥗🍝🍣🍤🍩🍪🎂🍰🧁🥧🍫🍬🍭🍮🍯🥛☕🍵🍶🍾🍷🍸🍹🍺🥤🧃🥜🌰🍄🥫🥟🍙🍘🥠🍡",
    "plants": "🌵🌲🌳🌴🌻🌷🌹🌺🌸🌼🍁🍀🌿🪴🌾🪵🪨🐚",
    "vehicles": "🚗🚕🚙🚌🚎🏎🚓🚑🚒🚐🛻🚚🚛🚜🏍🛵🚲🛴🛹✈🚁⛵🚤🛥🚢🚂🚃🚋🚀🛸🛶🚡",
    "objects": "🪑🛋🛏🚪🪞🚽🛁🧴🧺🧻🪣🧼🧽🔑🗝🔨🪓🔧🪛🔩⚙🧰✂📎🖊✏🖌🖍📚📕📒💡🔦🕯🪔📱💻⌨🖥🖨🖱📷📹📺📻⏰⌚🕰"
    "🧸🎈🎁👕👖👗👔👟👞👠👢👜👛🎒🧢🎩👒🕶👓⚽🏀🏈⚾🎾🏐🎳🪁🎸🎺🎻🥁🪕🎷🍴🥄🔪🏺🫖☂🌂🧳🛒🧯🪜🧲🔭🔬"
    "🪀🧩🛼🥊⛸🎿🛷🥌🏓🏸🥍🏏🏑🪃🏹🛡🔔🥾🧦🧤🧣👘🥻🩴🩱👙🧥🥼🦺👑💍💎🪖⛑🎃🎄🧨🏮🪅🪆🛎🧭⛺🏠🏡⛪🗿",
}
GLYPHS: tuple[str, ...] = tuple(dict.fromkeys(ch for chars in CATEGORIES.values() for ch in chars))
PEOPLE: frozenset[str] = frozenset(CATEGORIES["people"])
SKIN_TONES: tuple[str, ...] = ("", "\U0001f3fb", "\U0001f3fc", "\U0001f3fd", "\U0001f3fe", "\U0001f3ff")

_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def find_font(kind: str) -> Path | None:
    """The font file of ``kind`` (``"emoji"`` or ``"symbol"``): ``$IFCN_EMOJI_FONT`` / ``$IFCN_SYMBOL_FONT`` if
    set (a missing file there warns once and is ignored), else the first of :data:`FONT_PATHS` that exists."""
    if kind not in FONT_ENV:
        raise ValueError(f"font kind must be one of {tuple(FONT_ENV)}, got {kind!r}")
    env = os.environ.get(FONT_ENV[kind])
    if env:
        if Path(env).is_file():
            return Path(env)
        _warn_once(f"env:{kind}:{env}", f"{FONT_ENV[kind]}={env} is not a file; looking in the usual places")
    for p in FONT_PATHS[kind]:
        if Path(p).is_file():
            return Path(p)
    return None


@functools.lru_cache(maxsize=8)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=8)
def _codepoints(path: str) -> frozenset[int]:
    """The code points of :data:`GLYPHS` a font maps to a glyph: its cmap, read with fontTools (a matplotlib
    dependency); without fontTools, those whose rendering differs from that of an unassigned code point."""
    try:
        from fontTools.ttLib import TTFont
    except ImportError:
        font = _font(path, EMOJI_STRIKE if _is_bitmap(path) else SYMBOL_SIZE)

        def drawn(ch: str) -> bytes:
            canvas = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
            ImageDraw.Draw(canvas).text((20, 20), ch, font=font, embedded_color=True, fill=(0, 0, 0, 255))
            return canvas.tobytes()

        missing = drawn("\U0010fffd")
        return frozenset(ord(g) for g in GLYPHS if drawn(g) != missing)
    with TTFont(path, lazy=True) as tt:
        return frozenset(tt.getBestCmap() or ())


def _is_bitmap(path: str) -> bool:
    """Whether the font only has bitmap strikes (Noto Color Emoji): FreeType refuses other sizes."""
    try:
        ImageFont.truetype(path, SYMBOL_SIZE)
    except OSError:
        return True
    return False


@dataclass(frozen=True)
class Fonts:
    """The fonts found in this process and the glyphs of :data:`GLYPHS` each can draw."""

    emoji: str | None
    symbol: str | None
    emoji_glyphs: tuple[str, ...]
    symbol_glyphs: tuple[str, ...]

    @property
    def glyphs(self) -> tuple[str, ...]:
        """The glyphs some font draws (in :data:`GLYPHS` order)."""
        have = set(self.emoji_glyphs) | set(self.symbol_glyphs)
        return tuple(g for g in GLYPHS if g in have)

    def key(self) -> str:
        """What scenes depend on: each font's name and size in bytes (for cache keys)."""
        parts = []
        for p in (self.emoji, self.symbol):
            parts.append(f"{Path(p).name}:{Path(p).stat().st_size}" if p else "-")
        return "|".join(parts)


def available_fonts() -> Fonts:
    """The fonts :func:`find_font` finds now (re-read when the environment variables change)."""
    return _available(find_font("emoji"), find_font("symbol"))


@functools.lru_cache(maxsize=8)
def _available(emoji: Path | None, symbol: Path | None) -> Fonts:
    found: dict[str, tuple[str, ...]] = {}
    for kind, path in (("emoji", emoji), ("symbol", symbol)):
        if path is None:
            found[kind] = ()
            continue
        try:
            cps = _codepoints(str(path))
        except Exception as err:  # not a font fontTools can read
            _warn_once(f"bad:{path}", f"cannot read the {kind} font {path}: {err}")
            found[kind] = ()
            continue
        found[kind] = tuple(g for g in GLYPHS if ord(g) in cps)
    return Fonts(
        str(emoji) if emoji and found["emoji"] else None,
        str(symbol) if symbol and found["symbol"] else None,
        found["emoji"],
        found["symbol"],
    )


def warn_missing_fonts() -> None:
    """One warning per process that no emoji or symbol font was found (the generator then draws its shapes)."""
    _warn_once(
        "missing",
        "no emoji or symbol font found (apt-get install fonts-noto-color-emoji fonts-symbola, or set "
        f"{EMOJI_FONT_ENV} / {SYMBOL_FONT_ENV} to a font file): emoji groups fall back to the geometric shapes",
    )


def _crop_to_alpha(rgba: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(rgba[..., 3] >= 128)
    if len(ys) == 0:
        return np.zeros((0, 0, 4), dtype=np.uint8)
    return np.ascontiguousarray(rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


@functools.lru_cache(maxsize=2048)
def glyph(path: str, text: str, mode: str) -> np.ndarray:
    """``text`` rendered once from the font at ``path``: an RGBA uint8 array cropped to its alpha (>= 128).

    ``mode`` ``"colour"`` / ``"silhouette"``: Noto Color Emoji at its 109-px strike (about 136 px high), colour
    kept.  ``"symbol"``: Symbola's black ink at 128 px, closed by one pixel and with its holes filled (a line
    drawing becomes its silhouette), alpha 255 inside and white colour.  Empty (0 x 0) when the font draws
    nothing there, or (``"symbol"``) when the drawing stays open lines after the fill.  Cached per process (a few
    kB to 75 kB per glyph).
    """
    if mode == "symbol":
        font = _font(path, SYMBOL_SIZE)
        canvas = Image.new("L", (2 * SYMBOL_SIZE, 2 * SYMBOL_SIZE), 0)
        ImageDraw.Draw(canvas).text((SYMBOL_SIZE // 4, SYMBOL_SIZE // 4), text, font=font, fill=255)
        ink = np.asarray(canvas) >= 96
        ink = ndimage.binary_closing(np.pad(ink, 3), iterations=2)[3:-3, 3:-3]
        solid = ndimage.binary_fill_holes(ink)
        if ndimage.binary_erosion(solid, iterations=3).sum() < 0.4 * solid.sum():  # an open line drawing
            return np.zeros((0, 0, 4), dtype=np.uint8)
        rgba = np.full(solid.shape + (4,), 255, dtype=np.uint8)
        rgba[..., 3] = solid * np.uint8(255)
        return _crop_to_alpha(rgba)
    if mode == "silhouette":  # the same picture: one cache entry
        return glyph(path, text, "colour")
    font = _font(path, EMOJI_STRIKE)
    canvas = Image.new("RGBA", (2 * EMOJI_STRIKE, 2 * EMOJI_STRIKE), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((EMOJI_STRIKE // 4, EMOJI_STRIKE // 4), text, font=font, embedded_color=True)
    return _crop_to_alpha(np.asarray(canvas))


def glyph_text(rng: np.random.Generator, char: str, mode: str) -> str:
    """The text to render for one member of a group of ``char``: people in colour get a random skin tone."""
    if char in PEOPLE and mode == "colour":
        return char + SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    return char


def glyph_object(
    rng: np.random.Generator,
    path: str,
    text: str,
    mode: str,
    size: float,
    flip: bool | None = None,
    angle: float | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """One object drawn from a cached glyph: ``(mask bool [h, w], rgb float32 [h, w, 3] in 0..1)`` with the larger
    side of the glyph's tight box ``size`` (the mask's within a pixel); mirrored half of the time and turned
    (mostly upright: within +-20 degrees, one in four at any angle) before it is resized; ``flip`` / ``angle``
    (degrees) fix those instead of drawing them.  None if empty."""
    rgba = glyph(path, text, mode)
    if rgba.size == 0:
        return None
    pil = Image.fromarray(rgba, "RGBA")
    if flip is None:
        flip = bool(rng.random() < 0.5)
    if angle is None:
        angle = rng.uniform(-180, 180) if rng.random() < 0.25 else rng.uniform(-20, 20)
    if flip:
        pil = pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if angle:
        pil = pil.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    box = pil.getchannel("A").point(lambda a: 255 if a >= 128 else 0).getbbox()
    if box is None:
        return None
    pil = pil.crop(box)
    gw, gh = pil.size
    s = max(1.0, size) / max(gh, gw)
    resample = Image.Resampling.BILINEAR if s > 1 else Image.Resampling.BOX
    out = np.asarray(pil.resize((max(1, round(gw * s)), max(1, round(gh * s))), resample))
    mask = out[..., 3] >= 128
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1  # the mask's tight box
    return np.ascontiguousarray(mask[y0:y1, x0:x1]), out[y0:y1, x0:x1, :3].astype(np.float32) / 255
