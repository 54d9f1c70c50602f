"""Packaging and the newcomer's entry points: a light ``import ifcn_viz``, ``--version``, ``torch.hub.load`` offline,
a lone ``.safetensors`` as a complete checkpoint, and a wheel with its licence, ``py.typed`` and weights."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import ifcn_viz
from ifcn_viz.checkpoints import CARD_KEY, WEIGHTS_DIR, load_checkpoint

REPO = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_help_builds_every_subcommand_without_importing_torch():
    code = (
        "import sys\n"
        "from ifcn_viz.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('torch', 'torchvision', 'numpy', 'gradio', 'PIL') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stderr
    for command in ("train", "ablation", "propose", "eval", "make-dataset", "gallery", "app"):
        assert command in res.stdout


def test_import_ifcn_viz_is_light_and_the_predictor_loads_on_first_use():
    res = _run(
        "import sys, ifcn_viz\n"
        "assert 'torch' not in sys.modules, 'import ifcn_viz imported torch'\n"
        "assert not [m for m in sys.modules if m.startswith('ifcn_viz.model')], 'the config imported the model'\n"
        "cfg = ifcn_viz.get_preset('tiny').model\n"
        "assert 'torch' not in sys.modules, 'the presets imported torch'\n"
        "P = ifcn_viz.Predictor\n"
        "from ifcn_viz.inference.predictor import Predictor\n"
        "assert P is Predictor and 'torch' in sys.modules\n"
        "print('ok')\n"
    )
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        ifcn_viz.Nope  # noqa: B018
    assert all(getattr(ifcn_viz, name) is not None for name in ifcn_viz.__all__)


def test_version_prints_the_package_version(capsys):
    from ifcn_viz.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"ifcn-viz {ifcn_viz.__version__}\n"
    res = subprocess.run([sys.executable, "-m", "ifcn_viz", "--version"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == f"ifcn-viz {ifcn_viz.__version__}"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_torch_hub_load_from_a_local_clone_works_offline(no_network, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # nothing cached to fall back on
    model = torch.hub.load(str(REPO), "instancefcn_tiny", source="local")
    reference, _ = load_checkpoint("shipped")
    assert isinstance(model, ifcn_viz.InstanceFCN) and not model.training
    assert model.state_dict().keys() == reference.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    untrained = torch.hub.load(str(REPO), "instancefcn_tiny", source="local", pretrained=False)
    assert untrained.config == model.config and not torch.equal(
        untrained.objectness.score.weight, model.objectness.score.weight
    )

    predictor = torch.hub.load(str(REPO), "instancefcn_tiny_predictor", source="local")
    assert isinstance(predictor, ifcn_viz.Predictor) and predictor.card is not None
    image = torch.zeros(96, 128, 3, dtype=torch.uint8).numpy()
    image[20:70, 30:90] = (200, 40, 40)
    predictor.set_image(image)
    props = predictor.proposals(top_n=5)
    assert len(props.scores) <= 5 and props.masks.shape[1:] == (96, 128)


def test_the_shipped_safetensors_carries_its_card_and_loads_alone(tmp_path):
    from safetensors import safe_open

    shipped = WEIGHTS_DIR / "shipped.safetensors"
    with safe_open(str(shipped), framework="pt") as fh:
        embedded = json.loads(fh.metadata()[CARD_KEY])
    assert embedded == json.loads(shipped.with_suffix(".json").read_text())
    lone = tmp_path / "copied.safetensors"
    shutil.copyfile(shipped, lone)
    model, card = load_checkpoint(lone)
    reference, _ = load_checkpoint("shipped")
    assert card == embedded and model.config == reference.config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))


@pytest.mark.slow
def test_the_wheel_has_an_spdx_licence_the_licence_file_py_typed_and_the_weights(tmp_path):
    src = tmp_path / "src"
    skip = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", "runs", "notebooks", "docs",
                                  "bench", "tests")  # fmt: skip
    shutil.copytree(REPO, src, ignore=skip)
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "deprecat" not in (res.stdout + res.stderr).lower(), res.stdout + res.stderr
    (wheel,) = tmp_path.glob("ifcn_viz-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in meta.splitlines() and f"Version: {ifcn_viz.__version__}" in meta
    assert "ifcn_viz/py.typed" in names and "ifcn_viz/weights/shipped.safetensors" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
