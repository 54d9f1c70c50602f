"""The app's pure functions and per-user state, without a server."""

from __future__ import annotations

import base64
import dataclasses
import json

import numpy as np
import pytest
import torch
from _app_helpers import bad_input_corpus, png_bytes, sample_image, small_checkpoint, small_model, small_predictor

from ifcn_viz.app import views as cb
from ifcn_viz.app.server import AppContext, parse_size
from ifcn_viz.app.session import SessionStore, fingerprint, open_session
from ifcn_viz.app.uploads import describe_conversion
from ifcn_viz.checkpoints import CheckpointError
from ifcn_viz.data.io import ImageLoadError


@pytest.fixture(scope="module")
def shared():
    return small_predictor(0)


@pytest.fixture(scope="module")
def session(shared):
    return open_session(shared, sample_image(1, 120, 150), "test image", "test model")


def count_forwards(model):
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    return calls, handle


def test_sessions_are_isolated_and_share_the_model(shared):
    a = open_session(shared, sample_image(1), "a")
    b = open_session(shared, sample_image(2, 80, 100), "b")
    assert shared.image is None and shared.scales == []  # the shared Predictor is never given an image
    assert a.predictor.model is shared.model is b.predictor.model
    assert a.predictor is shared is b.predictor  # a reference to the shared Predictor, not a copy of it
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.maps.scales = ()  # the per-image result is frozen
    assert a.hw == (96, 128) and b.hw == (80, 100)
    assert a.fingerprint != b.fingerprint and a.fingerprint == fingerprint(sample_image(1))
    # b's upload did not touch a's cached maps: a's window equals a fresh predictor's on a's image
    fresh = small_predictor(0)
    fresh.set_image(sample_image(1))
    wa, wf = a.predictor.window(40, 30, maps=a.maps), fresh.window(40, 30)
    assert torch.equal(wa.logits, wf.logits)


def test_clicks_never_rerun_the_backbone(shared, session):
    calls, handle = count_forwards(shared.model)
    try:
        cb.window_at(session, 50, 60)
        cb.assembly_frames(session, 50, 60)
        cb.provenance_at(session, 50, 60)
        cb.explore(session, top_n=5)
    finally:
        handle.remove()
    assert calls == []
    n_scales = len(shared.infer.scales)
    calls, handle = count_forwards(shared.model)
    try:
        open_session(shared, sample_image(3), "c")
    finally:
        handle.remove()
    assert len(calls) == n_scales  # an upload runs it once per scale


def test_window_at_matches_the_predictor(session):
    v = cb.window_at(session, 70.0, 44.0, scale=0, threshold=0.5)
    w = session.predictor.window(70.0, 44.0, 0, maps=session.maps)
    assert v.data["center"] == list(w.center) and v.data["scale"] == 0
    assert v.data["cells_on"] == int((w.probs >= 0.5).sum())
    assert v.data["fingerprint"] == session.fingerprint and (v.data["width"], v.data["height"]) == (150, 120)
    assert v.marked.shape == (120, 150, 3) and v.marked.dtype == np.uint8  # same size as the image: clicks line up
    assert v.view.ndim == 3 and v.view.shape[2] == 3
    json.dumps(v.data)  # JSON-ready


def test_explore_views_and_data(session):
    views = cb.explore(session, top_n=4, mask_threshold=0.4, nms_iou=0.8, scale=-1)
    for arr in (views.mosaic, views.objectness, views.proposals):
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    d = views.data
    assert d["count"] <= 4 and len(d["boxes"]) == len(d["scores"]) == d["count"]
    assert d["scores"] == sorted(d["scores"], reverse=True)
    assert d["scale"] == session.default_scale and d["k"] == 5
    json.dumps(d)


def test_objectness_numbers_are_the_peaks_the_overlay_marks(session):
    from ifcn_viz.viz.maps import top_windows

    for si in range(len(session.scales)):
        d = cb.objectness_data(session, si)
        o = session.scales[si].objectness
        expected = top_windows(o, cb.OBJECTNESS_TOP)
        assert [pk["cell"] for pk in d["peaks"]] == [[cy, cx] for cy, cx, _ in expected]
        assert [pk["rank"] for pk in d["peaks"]] == list(range(1, len(expected) + 1))
        scores = [pk["objectness"] for pk in d["peaks"]]
        assert scores == sorted(scores, reverse=True)
        for pk in d["peaks"]:
            cy, cx = pk["cell"]
            box = session.predictor.window_at(cy, cx, si, maps=session.maps).box
            assert pk["window_xyxy"] == pytest.approx(box, abs=0.051)
            assert pk["logit"] == pytest.approx(float(o[cy, cx]), abs=1e-4)
        assert d["windows"] == o.numel() and 0 <= d["windows_at_least_0.5"] <= o.numel()
        assert d["scale"] == si and d["feature_hw"] == list(session.scales[si].feature_hw)
        json.dumps(d)


def test_one_scale_proposals_come_from_that_scale(session):
    _, d = cb.proposals(session, top_n=5, scale=0)
    assert d["count"] > 0 and set(d["scale_index"]) == {0}


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"top_n": 0}, "top_n"),
        ({"top_n": 500}, "top_n"),
        ({"mask_threshold": 1.0}, "mask_threshold"),
        ({"nms_iou": 0.0}, "nms_iou"),
        ({"scale": 7}, "scale"),
    ],  # fmt: skip
)
def test_bad_parameters_say_what_was_expected(session, kwargs, word):
    with pytest.raises(ValueError, match=word):
        cb.explore(session, **kwargs)


def test_clicks_outside_the_image_are_refused(session):
    with pytest.raises(ValueError, match="outside the image"):
        cb.window_at(session, 150, 10)
    with pytest.raises(ValueError, match="finite"):
        cb.provenance_at(session, float("nan"), 3)


def test_display_scaling_maps_clicks_back(shared):
    big = open_session(shared, sample_image(4, 600, 2048), "big")
    assert big.display_scale == pytest.approx(1024 / 2048)
    assert cb.display_image(big).shape == (300, 1024, 3)
    assert cb.display_to_original(big, 512, 150) == (1024.0, 300.0)
    assert cb.display_to_original(big, 5000, -3) == (2047.0, 0.0)  # clamped into the image
    v = cb.window_at(big, 1024.0, 300.0)
    assert v.marked.shape[:2] == (300, 1024)  # drawn at display size, like the image it replaces


def test_assembly_frames_and_captions(session):
    frames = cb.assembly_frames(session, 60, 60)
    assert len(frames) == 5 * 5 + 2 and len({f.shape for f in frames}) == 1
    assert not np.array_equal(frames[0], frames[-1])
    assert "map 0*5+2 = 2" in cb.frame_caption(5, 3) and "empty" in cb.frame_caption(5, 0)


def test_provenance_reads_every_covering_window(session):
    view, d = cb.provenance_at(session, 75, 60, scale=1)
    p = session.predictor.provenance(75, 60, 1, maps=session.maps)
    assert d["windows"] == len(p.entries) == len(d["entries"])
    assert set(d["channels_read"]) == {e.channel for e in p.entries}
    assert view.dtype == np.uint8


def test_compare_scene(shared):
    image, ivl, kc, data = cb.compare_scene(shared, seed=3, size=128)
    assert image.shape == (128, 128, 3) and data["instances"] >= 1 and data["k"] == 5
    assert ivl.dtype == kc.dtype == np.uint8
    with pytest.raises(ValueError, match="seed"):
        cb.compare_scene(shared, seed=-1)


def test_examples_are_offline_images():
    names = cb.example_names()
    assert any(n.startswith("synthetic") for n in names) and "photo: coins" in names
    for name in (names[0], "photo: coins"):
        img = cb.example_image(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    with pytest.raises(ValueError, match="unknown example"):
        cb.example_image("photo: nothing")


def test_bad_inputs_raise_clear_errors_and_good_ones_are_described(tmp_path, shared):
    for name, case in bad_input_corpus(tmp_path).items():
        if case.ok:
            s = open_session(shared, case.path, name)
            assert s.image.dtype == np.uint8 and s.image.shape[2] == 3, name
            note = describe_conversion(case.path)
            assert note is not None and all(w in note for w in case.words), (name, note)
        else:
            with pytest.raises(ImageLoadError) as info:
                open_session(shared, case.path, name)
            assert all(w.lower() in str(info.value).lower() for w in case.words), (name, str(info.value))
    assert describe_conversion(sample_image(0).tobytes()) is None  # unreadable header: load_image explains


def test_exif_rotation_is_applied(tmp_path, shared):
    case = bad_input_corpus(tmp_path)["exif_rotated.jpg"]
    assert open_session(shared, case.path, "exif").hw == (80, 64)  # 64 x 80 stored, shown rotated


def test_parse_size_and_upload_limit():
    assert parse_size("25mb") == 25 * 1024**2 and parse_size("800kb") == 800 * 1024 and parse_size(123) == 123
    with pytest.raises(ValueError, match="25mb"):
        parse_size("lots")
    ctx = AppContext(small_predictor(0), max_file_size="1kb")
    assert ctx.decode_upload(base64.b64encode(b"x" * 500).decode()) == b"x" * 500
    assert ctx.decode_upload("data:image/png;base64," + base64.b64encode(b"abc").decode()) == b"abc"
    with pytest.raises(ValueError, match="over the server's limit"):
        ctx.decode_upload(base64.b64encode(b"x" * 5000).decode())
    with pytest.raises(ValueError, match="base64"):
        ctx.decode_upload("not base64 !!")


def test_session_store_is_a_bounded_lru(shared, session):
    store = SessionStore(capacity=2, per_client=2)
    t1, t2 = store.put(session), store.put(session)
    store.get(t1)  # t1 is now the most recent
    t3 = store.put(session)
    assert len(store) == 2 and store.get(t1) is session and store.get(t3) is session
    with pytest.raises(KeyError, match="upload"):
        store.get(t2)


def test_one_client_cannot_evict_another_clients_session(session):
    store = SessionStore(capacity=8, per_client=3)
    mine = store.put(session, client="b")
    flood = [store.put(session, client="a") for _ in range(100)]  # "a" fills the store, again and again
    assert store.get(mine) is session  # b's session survived
    assert store.clients() == {"a": 3, "b": 1}  # a replaced only its own, least recently used first
    assert all(store.get(t) is session for t in flood[-3:])
    with pytest.raises(KeyError, match="upload"):
        store.get(flood[0])
    # many clients fill the store: the one holding the most loses first, a one-session client keeps its own
    for i in range(6):
        store.put(session, client=f"c{i}")
    assert store.get(mine) is session and len(store) == 8 and store.clients()["a"] <= 2


def test_session_store_bounds_bytes(session):
    store = SessionStore(capacity=100, per_client=100, max_bytes=3 * session.nbytes)
    tokens = [store.put(session, client=str(i)) for i in range(5)]
    assert len(store) == 3 and session.nbytes > session.image.nbytes  # image + cached maps are counted
    assert store.get(tokens[-1]) is session
    with pytest.raises(KeyError):
        store.get(tokens[0])


def test_a_changed_session_replaces_its_token_without_touching_the_original(session):
    import dataclasses

    store = SessionStore(capacity=4, per_client=4)
    token = store.put(session, client="a")
    changed = dataclasses.replace(session, gt_source="COCO file")
    store.replace(token, changed)
    assert store.get(token) is changed and session.gt_source != "COCO file" and store.clients() == {"a": 1}
    with pytest.raises(KeyError, match="upload"):
        store.replace("no-such-token", changed)


def test_one_error_rule_for_page_and_api(caplog):
    from ifcn_viz.app.errors import user_message

    # a user error: its own first line, with server paths replaced by the user's names
    err = ValueError("/tmp/gradio/ab12/cat.png is not an image (PNG, JPEG, ...)\nmore detail")
    assert user_message(err, {"/tmp/gradio/ab12/cat.png": "cat.png"}) == "cat.png is not an image (PNG, JPEG, ...)"
    assert user_message(ValueError("cannot read /srv/cache/x9/dog.jpg: truncated")) == "cannot read dog.jpg: truncated"
    assert user_message(KeyError("unknown or expired session 'x'")) == "unknown or expired session 'x'"
    # an internal error: a generic line (its text may hold internals), logged with its traceback
    with caplog.at_level("ERROR"):
        line = user_message(RuntimeError("CUDA out of memory at /opt/conda/lib/torch.so"))
    assert line == "internal error (RuntimeError); the server logged it and keeps running"
    assert "CUDA out of memory" in caplog.text


def test_page_and_api_give_the_same_line_for_the_same_error(shared, session):
    import gradio as gr

    from ifcn_viz.app import build_demo
    from ifcn_viz.app.api import as_gr_error

    def boom(*_a, **_k):
        raise RuntimeError("secret internals")

    with pytest.raises(gr.Error) as api_err:
        as_gr_error(boom)()
    demo = build_demo(shared)
    h, page = demo.tabs["compare"], demo.page
    original, cb.compare_scene = cb.compare_scene, boom
    try:
        with pytest.warns(UserWarning):
            out = h.on_compare(1, None)
    finally:
        cb.compare_scene = original
    assert set(out) == {page.status}  # only the status line changes: nothing is padded
    assert api_err.value.message in out[page.status] and "secret" not in out[page.status]


def test_model_description_has_no_server_details(shared):
    from ifcn_viz.app.api import model_description
    from ifcn_viz.inference.predictor import Predictor

    p = Predictor(shared.model, shared.infer)
    p.card = {
        "name": "mine", "head": "ifcn", "command": "ifcn-viz train --out /home/alice/runs/x", "hardware": "Xeon",
        "data": {"dataset": "coco", "ann": "/data/coco/ann.json", "image_size": 512, "root": "C:\\data"},
        "train_config": {"out": "runs/x", "lr": 0.01, "device": "cuda:0", "preset": "tiny"},
        "metrics": {"AR@100": 0.5, "log": "/tmp/log.txt"}, "step": 100,
    }  # fmt: skip
    d = model_description(p)
    assert d["name"] == "mine" and d["k"] == 5 and d["architecture"] == "InstanceFCN"
    assert d["precision"]["setting"] == shared.infer.precision and d["precision"]["backbone"] in ("bf16", "fp32")
    assert d["training"]["data"] == {"dataset": "coco", "image_size": 512}
    assert d["training"]["recipe"] == {"lr": 0.01, "preset": "tiny"} and d["metrics"] == {"AR@100": 0.5}
    text = json.dumps(d)
    for leak in ("/home", "alice", "runs", "Xeon", "cuda", "ann.json", "log.txt", "command", "C:"):
        assert leak not in text, leak


def test_uploaded_checkpoint_validation(tmp_path):
    from ifcn_viz.app.tabs.model import load_uploaded_checkpoint

    path = small_checkpoint(tmp_path, seed=5, name="mine")
    p = load_uploaded_checkpoint([str(path), str(path.with_suffix(".json"))])
    ref = small_model(5)
    assert all(torch.equal(a, b) for a, b in zip(p.model.state_dict().values(), ref.state_dict().values()))
    with pytest.raises(ValueError, match="card"):
        load_uploaded_checkpoint([str(path)])
    with pytest.raises(ValueError, match="exactly one"):
        load_uploaded_checkpoint([])
    card = json.loads(path.with_suffix(".json").read_text())
    card["model_config"]["k"] = 3  # the tensors no longer fit the card
    bad_card = tmp_path / "bad.json"
    bad_card.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="does not fit") as info:
        load_uploaded_checkpoint([str(path), str(bad_card)])
    assert "mine.safetensors" in str(info.value) and "ifcn_ckpt_" not in str(info.value)  # the user's file
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not tensors")
    with pytest.raises(CheckpointError):
        load_uploaded_checkpoint([str(junk), str(path.with_suffix(".json"))])


def test_live_training_streams_and_learns_nothing_hidden():
    from ifcn_viz.app.live_train import fixed_scene, live_training, training_views

    ticks = list(live_training(4, seed=0, every=2))
    assert [t.step for t in ticks] == [2, 4] and len(ticks[-1].losses) == 4
    assert all(np.isfinite(v) for row in ticks[-1].losses for v in row[1:])
    assert not ticks[-1].model.training  # a snapshot in eval mode, safe to explore
    p0 = dict(ticks[0].model.named_parameters())
    assert any(not torch.equal(p0[n], p) for n, p in ticks[-1].model.named_parameters())  # it trained
    again = list(live_training(2, seed=0, every=2))
    assert again[0].losses == ticks[0].losses  # deterministic for a seed
    mosaic, obj = training_views(ticks[-1], fixed_scene()[0])
    assert mosaic.dtype == obj.dtype == np.uint8
    with pytest.raises(ValueError, match="iterations"):
        list(live_training(0))


def test_about_answers_the_questions():
    from ifcn_viz.app.demo import ABOUT

    text = ABOUT.read_text()
    for needle in ("38.9", "49.7", "52.6", "16.6", "uncertain", "receptive field", "parameter-free", "one-hot",
                   "ResNet", "objectness", "01_why_instance_sensitive.ipynb", "07_real_data_gpu.ipynb"):  # fmt: skip
        assert needle in text, needle


def test_png_roundtrip_of_views_is_lossless(session):
    import io

    from PIL import Image

    v = cb.window_at(session, 10, 10)
    back = np.asarray(Image.open(io.BytesIO(png_bytes(v.view))))
    assert np.array_equal(back, v.view)


def test_server_address_flags_then_environment_then_defaults(monkeypatch):
    from ifcn_viz.app.server import server_address

    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    assert server_address() == ("127.0.0.1", 7860)  # local only by default
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8123")
    assert server_address() == ("0.0.0.0", 8123)
    assert server_address("127.0.0.1", 9000) == ("127.0.0.1", 9000)  # flags win
    monkeypatch.setenv("GRADIO_SERVER_PORT", "http")
    with pytest.raises(ValueError, match="GRADIO_SERVER_PORT"):
        server_address()


def test_stale_upload_folders_are_removed_live_ones_kept(tmp_path):
    import fcntl

    from ifcn_viz.app.uploads import LOCK_NAME, RUN_PREFIX, remove_stale_runs

    stale, live = tmp_path / f"{RUN_PREFIX}dead", tmp_path / f"{RUN_PREFIX}alive"
    for d in (stale, live):
        (d / "h").mkdir(parents=True)
        (d / "h" / "photo.png").write_bytes(b"x")
    other = tmp_path / "not_ours"
    other.mkdir()
    with open(live / LOCK_NAME, "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # a running server holds its folder's lock
        assert remove_stale_runs(tmp_path) == [stale]
    assert not stale.exists() and (live / "h" / "photo.png").exists() and other.exists()


def test_api_file_arguments_must_be_uploads_to_this_server(tmp_path):
    from ifcn_viz.app.uploads import uploaded_file

    root = tmp_path / "uploads"
    (root / "h1").mkdir(parents=True)
    ok = root / "h1" / "cat.png"
    ok.write_bytes(png_bytes(sample_image(1)))
    assert uploaded_file({"path": str(ok), "orig_name": "my cat.png"}, root, 10**6, "1mb") == (
        ok.resolve(),
        "my cat.png",
    )
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    (root / "h1" / "link.png").symlink_to(outside)  # a link out of the folder is outside too
    for path in (str(outside), "/etc/passwd", str(root / "h1" / "link.png"), str(root / ".." / "secret.txt")):
        with pytest.raises(ValueError, match="not a file uploaded to this server") as info:
            uploaded_file({"path": path}, root, 10**6, "1mb")
        assert str(tmp_path) not in str(info.value)
    with pytest.raises(ValueError, match="over the server's limit"):
        uploaded_file({"path": str(ok)}, root, 10, "10b")
    with pytest.raises(ValueError, match="handle_file"):
        uploaded_file({"url": "http://x"}, root, 10, "10b")


def test_stop_ends_a_live_run_with_its_own_last_word():
    """The Train tab's Stop: the run ends after the update in progress and its own last message says "Stopped"
    (a cancelled stream could deliver a late "step n" over the Stop message); Stop in another tab touches nothing."""
    from types import SimpleNamespace

    from ifcn_viz.app.tabs.train import STOPPED, TrainTab

    h = TrainTab(SimpleNamespace(trained="trained"))
    h.tr_status, h.tr_plot, h.tr_maps, h.tr_obj = "status", "plot", "maps", "obj"
    tab, other = SimpleNamespace(session_hash="tab-1"), SimpleNamespace(session_hash="tab-2")
    assert "Nothing is training" in h.on_stop(tab)["status"]
    run = h.on_train(15, 0, tab)
    assert "Training the tiny model for 15 steps" in next(run)["status"]
    assert next(run)["status"].startswith("step 5 / 15")
    assert "Nothing is training" in h.on_stop(other)["status"]
    assert "Stopping" in h.on_stop(tab)["status"]
    rest = list(run)  # Stop came while "step 5" was on its way: the run's next word is its last
    assert len(rest) == 1 and rest[0]["status"].startswith(STOPPED) and "step 5 / 15" in rest[0]["status"]
    assert "Nothing is training" in h.on_stop(tab)["status"]  # the run is over
    run = h.on_train(15, 0, tab)
    next(run)
    h.on_stop(tab)  # Stop before the next update is done: that update is the last, marked stopped
    rest = list(run)
    assert len(rest) == 1 and rest[0]["status"].startswith(STOPPED) and "step 5 / 15" in rest[0]["status"]
    assert rest[0]["trained"] is not None  # the weights of the last update are kept
    assert "Nothing is training" in h.on_stop(tab)["status"]


def test_the_window_tab_follows_its_sliders(shared):
    """A tab added in one module and one line (docs/ARCHITECTURE.md): opening an image spans its sliders; moving
    them shows the window there, as the Explore tab's click does."""
    from ifcn_viz.app import build_demo

    demo = build_demo(shared)
    page, tab = demo.page, demo.tabs["window"]
    assert {tab.wn_x, tab.wn_y} <= page.image_outputs
    session = open_session(shared, sample_image(4, 90, 120), "w")
    opened = page.open(session, (5, 0.4, 0.8, -1))
    assert opened[tab.wn_x]["maximum"] == 119 and opened[tab.wn_y]["maximum"] == 89
    moved = tab.on_move(session, 60, 40, -1, 0.5)
    assert moved[tab.wn_json] == cb.window_at(session, 60, 40, -1, 0.5).data
    with pytest.warns(UserWarning):
        assert "upload an image" in tab.on_move(None, 60, 40, -1, 0.5)[page.status]
    assert isinstance(moved[tab.wn_marked], np.ndarray) and moved[tab.wn_marked].shape[:2] == (90, 120)
