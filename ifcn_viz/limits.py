"""Every number that sizes memory or time, bounded before anything is allocated (docs/SECURITY.md lists them).

Each limit is a named constant with its default; each ``check_*`` function raises :class:`LimitError` (a
``ValueError``) with a one-line message saying what was too large and what is accepted.  This module imports
neither torch nor PIL, so any layer (CLI parse time, the checkpoint loader, the image loader, the app) can call
it before doing the expensive thing.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------- checkpoint cards (model size)
MAX_HEAD_CHANNELS = 4096  # the paper uses 512; the shipped tiny model 128
MAX_BACKBONE_WIDTH = 512  # tiny backbone width (shipped: 32)
MAX_K = 15  # k x k score maps (paper: 5)
MAX_M = 63  # window side in feature cells (paper: 21)
# ---------------------------------------------------------------- checkpoint cards (inference cost)
MAX_SCALES = 8  # number of inference scales = backbone runs per image (paper: 6)
MAX_SCALE_SIDE = 2000  # shorter side of one inference scale, pixels (paper: up to 900)
MAX_MAX_SIDE = 4000  # infer_config.max_side: cap on the longer side at any scale (default 2000)
MAX_PRE_NMS_TOP_K = 10_000  # windows assembled per image before NMS (default 2000)
MAX_TOP_N = 10_000  # proposals returned per image (AR@1000 needs 1000)
# ---------------------------------------------------------------- checkpoint files
MAX_ARCHIVE_ENTRIES = 10_000  # entries in a .pt / .pth zip archive
MAX_ARCHIVE_UNPACKED_BYTES = 2 * 1024**3  # unpacked total of a .pt / .pth archive (VGG-16 paper model: ~0.1 GB)
MAX_ARCHIVE_RATIO = 50  # unpacked / packed size of any compressed entry (torch.save stores entries uncompressed)
MAX_CARD_BYTES = 1024**2  # a model card (JSON) larger than this is not a card
MAX_ARCHIVE_RATIO_FLOOR = 64 * 1024  # compressed entries from this size on are held to MAX_ARCHIVE_RATIO each
MAX_MODEL_PARAMETERS = 100_000_000  # parameters a card may describe (paper VGG-16: ~20M; counted before building)
# ---------------------------------------------------------------- images
MIN_SIDE = 16  # smallest accepted side, pixels
MAX_PIXELS = 40_000_000  # width * height, checked from the header before decoding
MAX_ASPECT = 20  # longer side / shorter side: beyond it the max_side cap squashes the pyramid (see check_pyramid)
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")  # the only decoders ever called (no EPS/PDF/...)
MAX_WINDOW_PIXELS = 40_000_000  # original-image pixels one pasted window may cover (clipped to the image)
MAX_PYRAMID_PIXELS = 60_000_000  # sum over scales of the resized image's pixels (what the backbone sees)
MAX_MASK_BYTES = 2 * 1024**3  # top_n full-resolution bool masks of one image (Proposals.masks is [N, H, W])
# ---------------------------------------------------------------- drawn instances (the app's Draw tab)
MAX_COCO_UPLOAD_BYTES = 16 * 1024**2  # a COCO instances JSON uploaded to the app (RLE of a few masks: ~KB)
MAX_DRAWN_INSTANCES = 32  # instances of one image drawn or uploaded (each is one [H, W] mask in memory)
MAX_DRAWN_BYTES = 192 * 1024**2  # instances x H x W bytes of the drawn / uploaded masks (12 MP: 16 instances)
MAX_DRAW_PIXELS = 12_000_000  # the Draw tab's views are drawn at the image's full size: at most 12 MP
MAX_POLYGON_VALUES = 1_000_000  # polygon coordinates (x and y each count) in one COCO file's annotations
MAX_POLYGON_LENGTH = 4_000_000  # summed edge lengths (pixels, the longer axis of each edge) of its polygons
POLYGON_MARGIN = 1.0  # a polygon point may lie at most this many pixels outside the image
# ---------------------------------------------------------------- the paste of masks (proposals, windows)
PASTE_CHUNK_BYTES = 32 * 1024**2  # float32 crop pixels pasted at once (the paste's working memory)
MAX_RENDER_PIXELS = 4_000_000  # a picture of proposals over a larger image is drawn on every n-th pixel
# ---------------------------------------------------------------- training
CKPT_SECONDS = 300.0  # a training checkpoint at least every 5 minutes (--ckpt-minutes)
MIN_CKPTS_PER_RUN = 10  # ... and at least 10 per run whatever --iters (so a kill loses at most 10 % of the steps)
MAX_THREADS = 1024  # --threads
MAX_PORT = 65535  # --port (1..65535)


class LimitError(ValueError):
    """An input over one of this module's limits; the message is one line: what, the limit, what to do."""


def _int_field(value: Any, name: str, lo: int, hi: int, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise LimitError(f"{where}: {name} must be an integer in {lo}..{hi}, got {value!r}")
    if not lo <= value <= hi:
        raise LimitError(f"{where}: {name} = {value:,} is outside {lo}..{hi:,} (a limit of ifcn_viz.limits)")
    return value


def check_model_config(mc: Mapping[str, Any], where: str = "model card") -> None:
    """Bound a card's ``model_config`` (plain dict) before any layer is built from it."""
    if not isinstance(mc, Mapping):
        raise LimitError(f"{where}: model_config must be an object, got {type(mc).__name__}")
    if "head_channels" in mc:
        _int_field(mc["head_channels"], "head_channels", 1, MAX_HEAD_CHANNELS, where)
    if "backbone_width" in mc:
        _int_field(mc["backbone_width"], "backbone_width", 1, MAX_BACKBONE_WIDTH, where)
    if "k" in mc:  # the fc / learned heads' "k" is their output grid, m x m (ifcn_viz/model/fc_baseline.py)
        _int_field(mc["k"], "k", 1, MAX_M if mc.get("head") in ("fc", "learned") else MAX_K, where)
    if mc.get("learned_k") is not None:  # the learned assembler's score maps (ifcn_viz/model/learned_assembler.py)
        _int_field(mc["learned_k"], "learned_k", 1, MAX_K, where)
    if "m" in mc:
        _int_field(mc["m"], "m", 1, MAX_M, where)
    for name in ("fill_logit",):  # every float of the card: finite (NaN / Infinity parse from JSON)
        v = mc.get(name)
        if isinstance(v, float) and not math.isfinite(v):
            raise LimitError(f"{where}: {name} = {v} is not a finite number")


def check_infer_config(ic: Mapping[str, Any], where: str = "model card") -> None:
    """Bound a card's ``infer_config`` (plain dict): number and size of scales, max_side, pre_nms_top_k, top_n."""
    if not isinstance(ic, Mapping):
        raise LimitError(f"{where}: infer_config must be an object, got {type(ic).__name__}")
    if "scales" in ic:
        scales = ic["scales"]
        if not isinstance(scales, (list, tuple)) or not scales:
            raise LimitError(f"{where}: infer_config.scales must be a non-empty list of pixel sizes, got {scales!r}")
        if len(scales) > MAX_SCALES:
            raise LimitError(
                f"{where}: infer_config.scales has {len(scales)} entries; at most {MAX_SCALES} "
                "(each is one backbone run per image)"
            )
        for s in scales:
            _int_field(s, "infer_config.scales entry", MIN_SIDE, MAX_SCALE_SIDE, where)
    if "max_side" in ic:
        _int_field(ic["max_side"], "infer_config.max_side", MIN_SIDE, MAX_MAX_SIDE, where)
    if "pre_nms_top_k" in ic:
        _int_field(ic["pre_nms_top_k"], "infer_config.pre_nms_top_k", 1, MAX_PRE_NMS_TOP_K, where)
    if "top_n" in ic:
        _int_field(ic["top_n"], "infer_config.top_n", 1, MAX_TOP_N, where)
    if "pyramid" in ic and ic["pyramid"] not in ("fixed", "adaptive"):
        raise LimitError(f"{where}: infer_config.pyramid must be 'fixed' or 'adaptive', got {ic['pyramid']!r}")
    if "min_object" in ic:
        _int_field(ic["min_object"], "infer_config.min_object", MIN_SIDE, MAX_SCALE_SIDE, where)
    if "max_pixels" in ic:
        _int_field(ic["max_pixels"], "infer_config.max_pixels", 1, MAX_PYRAMID_PIXELS, where)


def check_parameter_count(n: int, where: str = "model card") -> None:
    """The model a card describes has at most :data:`MAX_MODEL_PARAMETERS` parameters (counted before building)."""
    if n > MAX_MODEL_PARAMETERS:
        raise LimitError(
            f"{where}: the model it describes has {n:,} parameters ({n * 4 / 1024**3:.2f} GB); at most "
            f"{MAX_MODEL_PARAMETERS:,} are accepted (refused before the model is built)"
        )


def check_card(card: Mapping[str, Any], where: str = "model card") -> None:
    """Bound every sizing field of a checkpoint card: ``model_config`` and, when present, ``infer_config``."""
    check_model_config(card.get("model_config", {}), where)
    if card.get("infer_config") is not None:
        check_infer_config(card["infer_config"], where)


def check_archive(path: str | Path, name: str | None = None) -> None:
    """Bound a ``.pt`` / ``.pth`` zip archive from its directory alone (nothing is unpacked).

    Refuses more than :data:`MAX_ARCHIVE_ENTRIES` entries, an unpacked total over
    :data:`MAX_ARCHIVE_UNPACKED_BYTES`, or a compressed entry that expands more than :data:`MAX_ARCHIVE_RATIO`
    times (a deflate bomb).  A file that is not a zip (a legacy torch pickle) is left to ``torch.load``.
    """
    name = name or Path(path).name
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise LimitError(f"{name} is not a readable archive: {err}") from err
    if len(infos) > MAX_ARCHIVE_ENTRIES:
        raise LimitError(f"{name} holds {len(infos):,} archive entries; at most {MAX_ARCHIVE_ENTRIES:,} are accepted")
    total = sum(i.file_size for i in infos)
    if total > MAX_ARCHIVE_UNPACKED_BYTES:
        raise LimitError(
            f"{name} would unpack to {_gb(total)}; at most {_gb(MAX_ARCHIVE_UNPACKED_BYTES)} is accepted "
            "(refused before unpacking)"
        )
    packed = [i for i in infos if i.compress_type != zipfile.ZIP_STORED]
    for i in packed:
        if i.file_size > MAX_ARCHIVE_RATIO_FLOOR and i.file_size > MAX_ARCHIVE_RATIO * max(i.compress_size, 1):
            raise LimitError(
                f"{name}: entry {i.filename!r} expands {i.file_size / max(i.compress_size, 1):,.0f}x "
                f"({_gb(i.file_size)}); at most {MAX_ARCHIVE_RATIO}x is accepted (a decompression bomb guard; "
                "torch.save writes entries uncompressed)"
            )
    # the whole archive too: many entries each under the per-entry floor must not add up to a bomb
    unpacked, compressed = sum(i.file_size for i in packed), sum(i.compress_size for i in packed)
    if unpacked > MAX_ARCHIVE_RATIO_FLOOR and unpacked > MAX_ARCHIVE_RATIO * max(compressed, 1):
        raise LimitError(
            f"{name}: its {len(packed):,} compressed entries expand {unpacked / max(compressed, 1):,.0f}x in all "
            f"({_gb(compressed)} to {_gb(unpacked)}); at most {MAX_ARCHIVE_RATIO}x is accepted (a decompression bomb "
            "guard, refused before unpacking; torch.save writes entries uncompressed)"
        )


def check_image_size(w: int, h: int, name: str = "image") -> None:
    """The header-level checks, before decoding: minimum side, pixel count, aspect ratio."""
    if min(w, h) < MIN_SIDE:
        raise LimitError(f"{name} is {w}x{h} pixels; at least {MIN_SIDE} pixels a side is needed")
    if w * h > MAX_PIXELS:
        raise LimitError(
            f"{name} is {w}x{h} = {w * h:,} pixels, over the limit of {MAX_PIXELS:,} "
            "(refused before decoding: a guard against decompression bombs); downscale it first"
        )
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise LimitError(
            f"{name} is {w}x{h} pixels, an aspect ratio of {max(w, h) / min(w, h):,.0f}:1; at most {MAX_ASPECT}:1 "
            "is accepted (crop or split it first)"
        )


def scale_factor(h: int, w: int, shorter_side: int, max_side: int) -> float:
    """The resize factor the Predictor uses for one scale (shorter side to ``shorter_side``, longer capped)."""
    factor = shorter_side / min(h, w)
    if max(h, w) * factor > max_side:
        factor = max_side / max(h, w)
    return factor


def check_pyramid(h: int, w: int, scales: Iterable[int], max_side: int, window_px: int, name: str = "image") -> None:
    """Bound what the pyramid and the paste of one window will allocate for an ``h x w`` image.

    For the Predictor (``set_image``) and any view that resizes: the resized pixels summed over the scales must
    stay under :data:`MAX_PYRAMID_PIXELS`; at every scale the longer-side cap must leave the shorter side at
    least :data:`MIN_SIDE` pixels (else every window spans a strip of hundreds of thousands of original pixels);
    and one window (``window_px`` = m * stride input pixels) must cover at most :data:`MAX_WINDOW_PIXELS`
    original pixels (clipped to the image).
    """
    total = 0
    for s in scales:
        f = scale_factor(h, w, int(s), int(max_side))
        if min(h, w) * f < MIN_SIDE:  # the longer-side cap squashed this scale: each window spans a huge strip
            raise LimitError(
                f"{name} ({w}x{h}) at scale {s}: the longer-side cap of {max_side} px would shrink the shorter side "
                f"to {min(h, w) * f:.1f} px (at least {MIN_SIDE}); the image is too elongated (at most "
                f"{MAX_ASPECT}:1)"
            )
        total += max(1, round(h * f)) * max(1, round(w * f))
        side = window_px / f
        covered = min(side, h) * min(side, w)
        if covered > MAX_WINDOW_PIXELS:
            raise LimitError(
                f"{name} ({w}x{h}) at scale {s}: one window would cover {covered:,.0f} original pixels; at most "
                f"{MAX_WINDOW_PIXELS:,} (use a less elongated or smaller image)"
            )
    if total > MAX_PYRAMID_PIXELS:
        raise LimitError(
            f"{name} ({w}x{h}): the scales {list(scales)} would resize it to {total:,} pixels in all; at most "
            f"{MAX_PYRAMID_PIXELS:,}"
        )


def check_mask_budget(h: int, w: int, top_n: int, name: str = "image") -> None:
    """``top_n`` masks at full resolution cost ``top_n * h * w`` bytes: refuse beyond :data:`MAX_MASK_BYTES`."""
    if isinstance(top_n, float) and not math.isfinite(top_n):
        raise LimitError(f"top_n must be a whole number of proposals, got {top_n!r}")
    need = int(top_n) * int(h) * int(w)
    if need > MAX_MASK_BYTES:
        most = max(1, MAX_MASK_BYTES // max(1, h * w))
        raise LimitError(
            f"{name} ({w}x{h}): {top_n} full-size masks would take {_gb(need)}; at most {_gb(MAX_MASK_BYTES)} "
            f"(use --top-n {most} or less, or a smaller image)"
        )


def checkpoint_interval(iters: int, ckpt_every: int) -> int:
    """Steps between training checkpoints: ``ckpt_every``, but never more than a tenth of the run."""
    return max(1, min(int(ckpt_every), math.ceil(int(iters) / MIN_CKPTS_PER_RUN)))


def _gb(n: float) -> str:
    return f"{n / 1024**3:.2f} GB" if n >= 1024**3 / 10 else f"{n / 1024**2:.1f} MB"


def check_coco_upload(size: int, name: str = "the file") -> None:
    """A COCO JSON uploaded to the app is at most :data:`MAX_COCO_UPLOAD_BYTES`, checked before it is read."""
    if size > MAX_COCO_UPLOAD_BYTES:
        raise LimitError(
            f"{name} is {size:,} bytes; a COCO file for the app is at most {MAX_COCO_UPLOAD_BYTES:,} bytes "
            "(a limit of ifcn_viz.limits): upload the annotations of this one image only"
        )


def check_instance_count(n: int, name: str = "the drawing", hw: tuple[int, int] | None = None) -> None:
    """At most :data:`MAX_DRAWN_INSTANCES` instances per image in the app (each costs one full-size mask), and with
    the image's size ``hw``, at most :data:`MAX_DRAWN_BYTES` of masks in all (checked before any is decoded)."""
    if n > MAX_DRAWN_INSTANCES:
        raise LimitError(f"{name} has {n} instances; at most {MAX_DRAWN_INSTANCES} per image (ifcn_viz.limits)")
    if hw is not None and int(hw[0]) * int(hw[1]) > MAX_DRAW_PIXELS:
        h, w = int(hw[0]), int(hw[1])
        raise LimitError(
            f"instances are drawn on images of at most {MAX_DRAW_PIXELS / 1e6:g} megapixels; this one is {w} x {h} = "
            f"{w * h / 1e6:.1f} MP: open a smaller copy of it (ifcn_viz.limits)"
        )
    if hw is not None and n * int(hw[0]) * int(hw[1]) > MAX_DRAWN_BYTES:
        h, w = int(hw[0]), int(hw[1])
        most = MAX_DRAWN_BYTES // max(1, h * w)
        raise LimitError(
            f"{name} has {n} instances; on this {w} x {h} image their masks would take {_gb(n * h * w)}, at most "
            f"{_gb(MAX_DRAWN_BYTES)}: at most {most} instances at this size (ifcn_viz.limits)"
        )


def check_layer_size(layer_hw: tuple[int, int], image_hw: tuple[int, int]) -> None:
    """A drawing layer is at most the image's own size (the editor shows the image at most that large)."""
    (lh, lw), (h, w) = (int(v) for v in layer_hw[:2]), (int(v) for v in image_hw[:2])
    if lh > h or lw > w:
        raise LimitError(
            f"a drawing layer of {lw} x {lh} px is larger than the image ({w} x {h} px); layers are at most the "
            "image's size (refused before it is read)"
        )


def check_seed(seed: object, what: str = "seed") -> int:
    """A random seed: an integer in 0..2**32 - 1 (what numpy accepts), checked before any work."""
    if isinstance(seed, bool) or not isinstance(seed, (int, float)) or not math.isfinite(seed) or seed != int(seed):
        raise LimitError(f"{what} must be a whole number in 0..{2**32 - 1:,}, got {seed!r}")
    if not 0 <= int(seed) < 2**32:
        raise LimitError(f"{what} must be in 0..{2**32 - 1:,}, got {int(seed):,}")
    return int(seed)
