"""Write a folder that is a complete Hugging Face Space (Gradio SDK) for the explorer: ``make space`` or
``python -m ifcn_viz.app.space --out build/space``.

The folder holds ``README.md`` (the Space's YAML front-matter -- ``sdk: gradio``, ``app_file: app.py``, the Gradio
version -- and a short description), ``requirements.txt`` (the app's dependencies, with CPU wheels of PyTorch),
``app.py`` and a copy of the ``ifcn_viz`` package with its shipped weights.  Push it to a Space as it is (``git
init``, add the Space as a remote, push).  The project's own README carries no Space front-matter.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib import metadata
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent  # ifcn_viz/
REPO = PACKAGE.parent
NOT_FOR_THE_APP = {"jupyterlab", "ipywidgets"}  # the notebooks' dependencies
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def requirements() -> list[str]:
    """The package's runtime dependencies (from pyproject.toml, else the installed metadata), minus the
    notebooks' ones."""
    try:
        import tomllib  # Python 3.11+

        reqs = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    except (ImportError, OSError):
        reqs = [r for r in metadata.requires("ifcn_viz") or [] if "extra ==" not in r]
    keep = []
    for r in reqs:
        name = r.split(";")[0].strip()
        base = name.split("[")[0]
        for op in "<>=!~ ":
            base = base.split(op)[0]
        if base.lower() not in NOT_FOR_THE_APP:
            keep.append(name)
    return keep


def front_matter() -> str:
    gradio_version = metadata.version("gradio")
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    return (
        "---\n"
        "title: InstanceFCN explorer\n"
        "emoji: 🧩\n"
        "colorFrom: indigo\n"
        "colorTo: green\n"
        "sdk: gradio\n"
        f"sdk_version: {gradio_version}\n"
        f'python_version: "{py}"\n'
        "app_file: app.py\n"
        "pinned: false\n"
        "license: mit\n"
        "short_description: See, click and train InstanceFCN (instance-sensitive FCNs)\n"
        "---\n"
    )


SPACE_README = """
# InstanceFCN explorer

*Instance-sensitive Fully Convolutional Networks* (Dai, He, Li, Ren, Sun, ECCV 2016), live: upload an image, see
the k x k instance-sensitive score maps and the objectness map, click anywhere to assemble the window there, follow
a pixel back to the maps it was read from, and train a small model on this machine's CPU.

This Space runs the small model shipped with the `ifcn_viz` package, on CPU. It was written by `make space` from
the project's repository; the app is `app.py`, the package `ifcn_viz/`.
"""


def write_space(out: str | Path) -> Path:
    """Write the Space folder at ``out`` (replacing what was there); returns its path."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "README.md").write_text(front_matter() + SPACE_README, encoding="utf-8")
    lines = [f"--extra-index-url {TORCH_CPU_INDEX}", *requirements()]
    (out / "requirements.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copyfile(REPO / "app.py", out / "app.py")
    shutil.copytree(PACKAGE, out / "ifcn_viz", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a Hugging Face Space folder for the explorer.")
    ap.add_argument("--out", default="build/space", help="the folder to write (default build/space; replaced)")
    args = ap.parse_args(argv)
    out = write_space(args.out)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    size = sum((out / p).stat().st_size for p in files)
    print(f"wrote {out}/ ({len(files)} files, {size / 2**20:.1f} MB): README.md (Space metadata), requirements.txt, "
          "app.py, ifcn_viz/. Push it to a Gradio Space as it is.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
