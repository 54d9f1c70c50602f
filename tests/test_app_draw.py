"""The Draw and Inspect tabs without a server: drawn instances (editor layers, COCO in and out, limits), their
ideal maps / k comparison / learned IoUs, the proposal funnel views, the large single map, and the handlers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _app_helpers import sample_image, small_predictor

from ifcn_viz.app import instance_views, views
from ifcn_viz.app.instances import (
    brush_colors,
    coco_from_masks,
    layer_from_masks,
    masks_from_coco,
    masks_from_layers,
    write_coco,
)
from ifcn_viz.app.session import open_session
from ifcn_viz.config import NMS_MAX_STEPS
from ifcn_viz.viz.palette import RANK_PALETTE


@pytest.fixture(scope="module")
def shared():
    return small_predictor(0)


def touching(h: int = 192, w: int = 256) -> np.ndarray:
    """Two rectangles that share an edge (a learner's two touching objects)."""
    m = np.zeros((2, h, w), dtype=bool)
    m[0, 40:150, 30:128] = True
    m[1, 50:160, 128:220] = True
    return m


@pytest.fixture(scope="module")
def session(shared):
    return open_session(shared, sample_image(4, 192, 256), "upload: photo.png", "test model")


def painted(masks: np.ndarray, hw: tuple[int, int] | None = None) -> np.ndarray:
    return layer_from_masks(masks, hw)


# ---------------------------------------------------------------------------------------------- instances


def test_layers_to_masks_one_colour_per_instance_upper_layer_wins():
    m = touching()
    lower = painted(m)
    upper = np.zeros_like(lower)
    upper[40:60, 100:140] = (*RANK_PALETTE[1], 255)  # paints instance 1's colour over a piece of instance 0
    got = masks_from_layers([lower, upper], m.shape[1:])
    assert got.shape == m.shape
    assert got[1, 40:60, 100:140].all() and not got[0, 40:60, 100:140].any()
    assert not (got[0] & got[1]).any()  # instances are disjoint
    # slightly off colours (lossy encoders) still snap to the nearest brush colour; faint alpha is ignored
    noisy = lower.copy()
    noisy[..., :3] = np.clip(noisy[..., :3].astype(int) + 6, 0, 255).astype(np.uint8)
    noisy[:5, :5] = (255, 0, 0, 40)
    assert np.array_equal(masks_from_layers([noisy], m.shape[1:]), m)
    # a drawing at the displayed (half) size is resized to the image's
    half = masks_from_layers([painted(m, (96, 128))], (192, 256))
    assert half.shape == (2, 192, 256) and (half == m).mean() > 0.98
    assert masks_from_layers([], (10, 12)).shape == (0, 10, 12)
    assert len(brush_colors()) == len(RANK_PALETTE) and brush_colors()[0] == "rgb(230, 159, 0)"


def test_coco_round_trip_and_one_line_errors(tmp_path):
    m = touching()
    path = write_coco(m, "my photo.png", tmp_path)
    data = json.loads(path.read_text())
    assert data["images"][0]["height"] == 192 and len(data["annotations"]) == 2
    assert np.array_equal(masks_from_coco(path, (192, 256)), m)
    assert np.array_equal(masks_from_coco(coco_from_masks(m, "x.png"), (192, 256)), m)
    bad = tmp_path / "notes.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="notes.json is not valid JSON") as e:
        masks_from_coco(bad, (192, 256), "notes.json")
    assert "\n" not in str(e.value) and str(tmp_path) not in str(e.value)
    with pytest.raises(ValueError, match="not this image"):
        masks_from_coco(path, (100, 100), "drawing.json")
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as fh:
        fh.truncate(17 * 1024**2)
    with pytest.raises(ValueError, match="at most 16,777,216 bytes"):
        masks_from_coco(huge, (192, 256), "huge.json")
    broken = coco_from_masks(m, "x.png")
    broken["annotations"][0]["segmentation"] = {"size": [192, 256], "counts": "@@@@!!"}
    with pytest.raises(ValueError, match="annotation 0"):
        masks_from_coco(broken, (192, 256))


# ---------------------------------------------------------------------------------------------- Draw views


def test_draw_views_ideal_maps_separate_touching_instances(session):
    m = touching()
    v = instance_views.draw_views(session, m)
    d = v.data
    p = session.predictor
    assert d["scale"] == instance_views.best_scale_for(session, m)
    lo, hi = session.levels[d["scale"]].objects
    assert len(d["instances"]) == 2
    for inst in d["instances"]:
        assert inst["iou_ideal"] > 0.8  # the ideal window at each centre gives its instance back ...
        assert inst[f"iou_ideal_k{p.k}"] > 0.8
        assert 0.0 <= inst["iou_learned"] <= 1.0
    # ... while k = 1 (one map) merges the two touching rectangles
    assert min(i["iou_ideal_k1"] for i in d["instances"]) < min(i[f"iou_ideal_k{p.k}"] for i in d["instances"]) - 0.2
    for name in ("instances", "ideal", "window", "k_compare", "learned"):
        a = getattr(v, name)
        assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 and min(a.shape[:2]) > 100, name
    # the instances picture keeps the image at (0, 0), so a click there is an image pixel
    assert np.array_equal(v.instances[0, 0], np.asarray(session.image[0, 0]))  # no instance painted there
    # a click on the second instance assembles the window at its centre cell
    c1 = d["instances"][1]["center_cell"]
    grid = instance_views.ideal_at_scale(session, m).grid
    ch, cw = grid.cell_size
    v2 = instance_views.draw_views(session, m, (c1[1] + 0.5) * cw, (c1[0] + 0.5) * ch)
    assert v2.data["window_center"] == c1
    assert json.dumps(v2.data)  # JSON-ready


def test_best_scale_follows_object_size(session):
    assert len(session.levels) >= 2
    for i, lv in enumerate(session.levels):
        side = int(round((lv.objects[0] * lv.objects[1]) ** 0.5))  # the middle (in log size) of the sizes it serves
        m = np.zeros((1, 192, 256), bool)
        m[0, :side, :side] = True
        if side <= 192:
            assert instance_views.best_scale_for(session, m) == i, (i, side, lv)
    f = [sm.factor for sm in session.scales]
    tiny = np.zeros((1, 192, 256), bool)
    tiny[10:30, 10:30] = True
    assert f[instance_views.best_scale_for(session, tiny)] == max(
        f
    )  # small objects are seen at the largest scale (Sec. 3.3)


def test_draw_rejects_nothing_drawn_and_wrong_sizes(session):
    with pytest.raises(ValueError, match="no instance drawn"):
        instance_views.draw_views(session, np.zeros((0, 192, 256), bool))
    with pytest.raises(ValueError, match="image's size"):
        instance_views.draw_views(session, np.zeros((1, 10, 10), bool))


# ---------------------------------------------------------------------------------------------- Inspect views


def test_inspect_with_ground_truth(shared):
    name = views.example_names()[0]
    s = open_session(shared, views.example_image(name), name, "m", views.example_masks(name), "synthetic scene")
    v = instance_views.inspect(s, top_n=5)
    f = v.data["funnel"]
    assert [st["stage"] for st in f["stages"]] == ["every window", "top-k by objectness", "non-empty masks",
                                                   "after NMS", "top N"]  # fmt: skip
    counts = [st["windows"] for st in f["stages"]]
    assert counts == sorted(counts, reverse=True) and counts[-1] <= 5
    recalls = [st["recall"] for st in f["stages"][1:]]
    assert all(r is not None for r in recalls) and recalls == sorted(recalls, reverse=True)
    assert f["objects"] == len(s.gt_masks) and v.missed is not None
    assert len(v.data["objectness"]["positive"]) == len(v.data["objectness"]["ranked"])
    n = v.data["nms_steps"]
    assert n == min(NMS_MAX_STEPS, len(v.trace.nms_trace)) and n > 0
    assert instance_views.nms_view(s, v.trace, n - 1, 0.8).shape[2] == 3
    with pytest.raises(ValueError, match="step must be"):
        instance_views.nms_view(s, v.trace, n, 0.8)
    no_gt = instance_views.inspect(s, top_n=5, use_gt=False)
    assert no_gt.missed is None and all(st["recall"] is None for st in no_gt.data["funnel"]["stages"])
    assert json.dumps(v.data)


def test_single_map_view_outlines_the_subwindow(session):
    img, d = views.map_view(session, 7, None, 100, 90)
    assert img.shape[2] == 3 and d["channel"] == 7 and (d["a"], d["b"]) == divmod(7, session.predictor.k)
    assert d["window_center"] == list(session.grid(d["scale"]).cell_of_pixel(100, 90))
    with pytest.raises(ValueError, match="channel must be"):
        views.map_view(session, 99)


def test_mosaic_click_finds_the_map(session):
    p = session.predictor
    si = session.default_scale
    cell_px, title = views._mosaic_args(session, si)
    from ifcn_viz.viz.maps import mosaic_layout

    lay = mosaic_layout(session.scales[si].score_maps, cell_px, title=title)
    oy, ox = lay.origin(1, 2)
    assert views.mosaic_channel_at(session, si, ox + 1, oy + 1) == 1 * p.k + 2
    mosaic = views.explore_mosaic(session, si, (100, 90))
    assert mosaic.shape[1] >= p.k * views.MOSAIC_MAP_PX * 0.8  # legible at the page's width


def test_funnel_chart_needs_a_funnel():
    from ifcn_viz.viz.inspect import funnel_chart, logit_histogram

    with pytest.raises(TypeError):
        funnel_chart({"stages": []})
    rng = np.random.default_rng(0)
    maps = rng.normal(-5, 3, size=(25, 20, 20)).astype(np.float32)
    a = logit_histogram(maps, 0.5, fill=None)
    b = logit_histogram(maps, 0.5, fill=-1000.0)  # the fill is far outside: it must not set the axis
    assert a.shape == b.shape and (a != b).mean() < 0.01


# ---------------------------------------------------------------------------------------------- handlers


@pytest.fixture(scope="module")
def demo(shared):
    from ifcn_viz.app import build_demo

    return build_demo(shared)


def select(index):
    import gradio as gr

    return gr.SelectData(None, {"index": index, "value": None, "selected": True})


def test_handlers_draw_download_upload_inspect(demo, session, tmp_path):
    page, h, ins_tab = demo.page, demo.tabs["draw"], demo.tabs["inspect"]
    m = touching()
    editor = {"background": session.image, "layers": [painted(m)], "composite": None}
    assert set(h.on_draw_change({"background": session.image, "layers": [], "composite": None}, session)) == {
        page.status
    }
    out = h.on_draw(editor, session)
    assert np.array_equal(out[h.dr_masks], m) and out[page.sess].gt_source == "drawn"
    path = out[h.dr_download]["value"]
    assert np.array_equal(masks_from_coco(path, session.hw), m)  # the download reads back as the drawing
    sess = out[page.sess]
    click = h.on_draw_click(sess, m, select([150, 100]))
    assert set(click) == {h.dr_ideal, h.dr_window, h.dr_json}
    assert click[h.dr_json]["pixel"] == [150, 100]
    assert click[h.dr_json]["window_center"] == list(
        instance_views.ideal_at_scale(sess, m).grid.cell_of_pixel(150, 100)
    )
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.warns(UserWarning):
        err = h.on_coco_upload(str(bad), sess)
    assert set(err) == {page.status} and "bad.json" in err[page.status] and str(tmp_path) not in err[page.status]
    up = h.on_coco_upload(str(path), session)
    assert np.array_equal(up[h.dr_masks], m) and len(up[h.dr_editor]["layers"]) == 1
    ins = ins_tab.on_inspect(sess, True, 5, 0.4, 0.8, -1)
    assert ins[ins_tab.in_missed] is not None and ins[ins_tab.in_json]["ground_truth"] == "drawn"
    nxt = ins_tab.on_nms_next(0, sess, ins[ins_tab.in_trace], 0.8)
    assert nxt[ins_tab.in_step] == 1 and nxt[ins_tab.in_nms].shape[2] == 3
    with pytest.warns(UserWarning):
        none = ins_tab.on_inspect(None, True, 5, 0.4, 0.8, -1)
    assert set(none) == {page.status}


def test_handlers_explore_click_outlines_the_window_on_the_mosaic(demo, session):
    h = demo.tabs["explore"]
    out = h.on_explore_click(session, -1, 0.5, None, select([100, 90]))
    assert out[h.ex_click]["channel"] == session.predictor.k**2 // 2
    plain = views.explore_mosaic(session, session.default_scale)
    assert out[h.mosaic].shape == plain.shape and (out[h.mosaic] != plain).any()
    si = session.default_scale
    cell_px, title = views._mosaic_args(session, si)
    from ifcn_viz.viz.maps import mosaic_layout

    oy, ox = mosaic_layout(session.scales[si].score_maps, cell_px, title=title).origin(0, 1)
    mc = h.on_mosaic_click(session, -1, out[h.ex_click], select([ox + 2, oy + 2]))
    assert mc[h.ex_click]["channel"] == 1 and mc[h.ex_map_json]["window_center"] is not None
