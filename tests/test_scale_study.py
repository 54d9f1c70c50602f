"""The scale study's set-up: an equal budget for both backbones, the one-scale choice, and its table."""

from types import SimpleNamespace

from ifcn_viz.train.scale_study import markdown, native_scale, study_configs


def test_both_backbones_get_the_same_budget(tmp_path):
    (l1, tiny), (l2, resnet) = study_configs(tmp_path, iters=30, batch=4, seed=3)
    assert (l1, tiny.preset, l2, resnet.preset) == ("tiny", "tiny", "ResNet-18", "resnet18")
    a, b = tiny.to_dict(), resnet.to_dict()
    assert {k for k in a if a[k] != b[k]} == {"preset", "out"}  # everything else (recipe, data, seed) is equal
    assert a["iters"] == 30 and a["batch_size"] == 4 and a["seed"] == 3 and a["train_scenes"] == 120


def test_native_scale_is_the_level_nearest_the_image_size():
    p = SimpleNamespace(scales=[SimpleNamespace(factor=f) for f in (0.375, 0.53, 0.75, 1.0625, 1.5, 2.125)])
    assert native_scale(p) == 3


def test_markdown_lists_every_model_scale_set_and_bin():
    rows = [{"lo": 0.0, "hi": 32.0, "instances": 3, "recall50": 0.25, "AR": 0.1},
            {"lo": 32.0, "hi": 1e5, "instances": 0, "recall50": None, "AR": None}]  # fmt: skip
    r = {"AR@100": 0.1, "recall50@100": 0.25, "by_size": rows}
    result = {
        "command": "python -m ifcn_viz.train.scale_study", "hardware": "cpu",
        "budget": {"iters": 2, "batch_size": 2, "seed": 0, "train_scenes": 4,
                   "recipe": {"optimizer": "adamw", "lr": 0.003, "schedule": "cosine"}},
        "eval": {"held-out synthetic": "2 scenes"},
        "models": {m: {"parameters": 5, "train_wall_s": 1.0, "results": {"held-out synthetic": {"pyramid": r,
                                                                                                "one scale": r}}}
                   for m in ("tiny", "ResNet-18")},
    }  # fmt: skip
    md = markdown(result)
    assert md.count("| 0.250 | --") == 4 and "0-32 px (3)" in md and ">= 32 px (0)" in md
