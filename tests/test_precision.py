"""InferConfig.precision: fp32 gives the network's exact float32 maps, bf16 maps stay close to them, auto follows
the device (ifcn_viz/precision.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ifcn_viz import precision
from ifcn_viz.config import InferConfig
from ifcn_viz.inference import Predictor
from ifcn_viz.model import build_model

INFER = InferConfig(scales=(96, 144), pre_nms_top_k=300, top_n=20)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("tiny").eval()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    from ifcn_viz.data.synthetic import generate_scene

    return generate_scene((7, 1), (120, 160))[0]


def test_inference_dtype_choices():
    assert precision.inference_dtype("fp32", "cpu") is None
    assert precision.inference_dtype("bf16", "cpu") is torch.bfloat16
    auto = precision.inference_dtype("auto", "cpu")
    assert auto is (torch.bfloat16 if precision.native_bf16("cpu") else None)
    assert precision.native_bf16("meta") is False  # no device type we do not know is assumed fast
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        precision.inference_dtype("fp16", "cpu")
    with pytest.raises(ValueError, match="precision must be 'auto', 'fp32' or 'bf16'"):
        InferConfig(precision="half")
    assert InferConfig().precision == "auto"


def test_native_bf16_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not precision.native_bf16("cpu") and precision.inference_dtype("auto", "cpu") is None
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert precision.native_bf16("cpu") and precision.inference_dtype("auto", "cpu") is torch.bfloat16


def test_fp32_maps_are_the_networks_exact_output(model, image):
    p = Predictor(model, dataclasses.replace(INFER, precision="fp32"))
    p.set_image(image)
    sm = p.scales[0]
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, sm.resized_hw, mode="bilinear", antialias=True).clamp(0, 1)
    with torch.inference_mode():
        out = model(x)
    assert torch.equal(sm.score_maps, out.score_maps[0]) and torch.equal(sm.objectness, out.objectness[0, 0])


def test_bf16_maps_are_float32_and_close_to_fp32(model, image):
    maps = {}
    for prec in ("fp32", "bf16"):
        p = Predictor(model, dataclasses.replace(INFER, precision=prec))
        p.set_image(image)
        assert all(s.score_maps.dtype == torch.float32 and s.objectness.dtype == torch.float32 for s in p.scales)
        maps[prec] = (p.scales, p.proposals(top_n=10))
    (s32, p32), (s16, p16) = maps["fp32"], maps["bf16"]
    for a, b in zip(s32, s16):
        assert not torch.equal(a.score_maps, b.score_maps)  # bf16 really ran
        spread = float(a.score_maps.abs().max())
        assert float((a.score_maps - b.score_maps).abs().max()) <= 0.05 * spread
        assert float((a.objectness - b.objectness).abs().max()) <= 0.05 * max(1.0, float(a.objectness.abs().max()))
    assert p32.masks.shape == p16.masks.shape


@pytest.mark.parametrize("native", [False, True])
def test_training_auto_follows_the_same_rule_as_inference(monkeypatch, native):
    """A laptop CPU without AVX512-BF16/AMX trains in fp32 (emulated bf16 is 30x slower); a native one in bf16."""
    from ifcn_viz.train.loop import resolve_amp

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    want = torch.bfloat16 if native else None
    assert precision.inference_dtype("auto", "cpu") is want
    assert precision.training_dtype("auto", "cpu") is want and resolve_amp("auto", torch.device("cpu")) is want
    assert precision.dtype_name(want) == ("bf16" if native else "fp32")
    # explicit choices are honoured whatever the flags; fp16 on a CPU is refused with the fix in the message
    assert precision.training_dtype("bf16", "cpu") is torch.bfloat16 and precision.training_dtype("none", "cpu") is None
    with pytest.raises(ValueError, match="--amp fp16 needs a GPU"):
        precision.training_dtype("fp16", "cpu")
    with pytest.raises(ValueError, match="amp must be one of"):
        precision.training_dtype("half", "cpu")


def test_training_auto_on_cuda_without_bf16_uses_fp16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision.training_dtype("auto", "cuda") is torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert precision.training_dtype("auto", "cuda") is torch.bfloat16


def test_the_card_and_the_log_say_which_precision_trained(tmp_path, monkeypatch, capsys):
    import json

    from ifcn_viz.train.loop import train
    from ifcn_viz.train.recipe import train_config

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    cfg = train_config("tiny", out=str(tmp_path / "run"), iters=1, batch_size=1, image_size=96, short_sides=(96,),
                       train_scenes=2, windows_per_image=16, eval_images=0, progress=False, warmup=1)  # fmt: skip
    train(cfg)
    card = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert card["precision"] == "fp32" and card["amp"] == "None"
    assert "precision: fp32 (--amp auto" in capsys.readouterr().out
