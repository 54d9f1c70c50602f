"""Parse-time checks for the CLI's flags (argparse ``type=`` callables) and its one-line error wording.

Every numeric flag and every path is checked while the command line is parsed, before torch is imported or a
model is built; a bad value gives argparse's one line, ``ifcn-viz CMD: argument --flag: <what> (<accepted>)``.
Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
from pathlib import Path

from ifcn_viz import limits

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def int_range(lo: int, hi: int | None = None):
    """An integer flag in ``lo..hi``."""

    def parse(text: str) -> int:
        value = _int(text)
        if value < lo or (hi is not None and value > hi):
            accepted = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"{value} is out of range ({accepted})")
        return value

    parse.__name__ = "integer"
    return parse


positive_int = int_range(1)
nonneg_int = int_range(0)
port = int_range(1, limits.MAX_PORT)
threads = int_range(1, limits.MAX_THREADS)
top_n = int_range(1, limits.MAX_TOP_N)


def positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value:g} is out of range (a number > 0)")
    return value


def open_unit(text: str) -> float:
    """A number strictly between 0 and 1 (a probability threshold)."""
    value = _float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value:g} is out of range (a number between 0 and 1, exclusive)")
    return value


def unit(text: str) -> float:
    """A number in [0, 1] (an IoU)."""
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{value:g} is out of range (a number in [0, 1])")
    return value


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"file not found: {text}")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be read (permission denied)")
    return path


def existing_dir(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"folder not found: {text}")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    return path


def json_file(text: str) -> Path:
    """An existing file whose first non-blank byte opens a JSON object or list (the whole file is read later)."""
    path = existing_file(text)
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith((b"{", b"[")):
        raise argparse.ArgumentTypeError(f"{text} is not a JSON file (expected a COCO instances JSON)")
    return path


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def writable_dir(text: str) -> Path:
    """A folder that exists and is writable, or can be created (its nearest existing parent is writable)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise argparse.ArgumentTypeError(f"{text} cannot be created: {base} is not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text} is not writable ({base} is read-only or not yours)")
    return path


def writable_file(text: str) -> Path:
    """A file path that can be written: not a folder, in a folder that exists (or can be created) and is writable."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text} is not writable")
    writable_dir(str(path.parent if str(path.parent) else "."))
    return path


def checkpoint(text: str) -> str:
    """``shipped`` (or another shipped name) or a path to an existing weights file."""
    p = Path(text)
    if p.suffix and not p.exists():
        raise argparse.ArgumentTypeError(f"checkpoint file not found: {text} ('shipped' or a .safetensors path)")
    if p.suffix and p.suffix not in (".safetensors", ".pt", ".pth", ".bin"):
        raise argparse.ArgumentTypeError(f"{text}: not a checkpoint (.safetensors, or .pt/.pth)")
    return text


def expand_images(items: list[str]) -> list[str]:
    """Files, folders (their images, sorted) and globs -> image paths.

    ``ValueError`` for an empty folder, a pattern that matches nothing, or when no file exists at all; a single
    missing file among existing ones is kept (the caller reports it and goes on with the others).
    """
    out: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(q) for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"the folder {item} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            out += found
        elif p.exists():
            out.append(item)
        elif glob.has_magic(item):
            found = sorted(q for q in glob.glob(item, recursive=True) if Path(q).is_file())
            if not found:
                raise ValueError(f"the pattern {item!r} matches no file")
            out += found
        else:
            out.append(item)
    if not any(Path(q).is_file() for q in out):
        raise ValueError(f"image not found: {' '.join(items)[:200]} (give image files, folders or glob patterns)")
    return out


def one_line(err: BaseException) -> str:
    """An exception as one line: an OSError as 'reason: file', others by their message."""
    if isinstance(err, OSError) and err.strerror:
        text = f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    else:
        text = str(err)
    return " ".join(text.split()) or type(err).__name__


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show ``(default: X)`` after every flag's help, except where the help already says it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """No abbreviations (``--iter`` is an error, not ``--iters``); errors are one line with this command's usage."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        usage = " ".join(self.format_usage().split())
        usage = usage[len("usage: ") :] if usage.startswith("usage: ") else usage
        self.exit(2, f"{self.prog}: {' '.join(message.split())} (usage: {usage})\n")
