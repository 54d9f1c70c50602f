"""`make space`: a folder that is a complete Hugging Face Space, while the project README has no front-matter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_space_folder_is_complete_and_runs_from_itself(tmp_path):
    from ifcn_viz.app.space import write_space

    out = write_space(tmp_path / "space")
    text = (out / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    meta = dict(line.split(": ", 1) for line in text.split("---\n")[1].strip().splitlines())
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["sdk_version"][0].isdigit()
    reqs = (out / "requirements.txt").read_text().splitlines()
    names = {r.split(">")[0].split("=")[0] for r in reqs if not r.startswith("--")}
    assert {"torch", "gradio", "safetensors", "numpy", "pillow"} <= names and "jupyterlab" not in names
    assert (out / "app.py").read_text() == (ROOT / "app.py").read_text()
    assert (out / "ifcn_viz" / "weights" / "shipped.safetensors").is_file()
    assert not list(out.rglob("__pycache__"))
    assert not (ROOT / "README.md").read_text(encoding="utf-8").startswith("---")  # no front-matter there

    # the Space imports its own copy of the package and finds `demo` at module level
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    code = "import app, ifcn_viz; print(type(app.demo).__name__, ifcn_viz.__file__)"
    r = subprocess.run([sys.executable, "-c", code], cwd=out, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    kind, where = r.stdout.strip().splitlines()[-1].split(" ", 1)
    assert kind == "Blocks" and Path(where).resolve().is_relative_to(out.resolve())


pytestmark = pytest.mark.slow
