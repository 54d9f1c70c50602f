"""A launched server (in-process, 127.0.0.1, free port) driven through gradio_client: every API endpoint,
and the bad-input corpus answered with clear messages while the server goes on serving."""

from __future__ import annotations

import base64
import io
import os

import httpx
import numpy as np
import pytest
from _app_helpers import bad_input_corpus, free_port, png_bytes, sample_image, small_predictor
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    from ifcn_viz.app import build_demo, launch

    demo = build_demo(small_predictor(0), max_file_size="2mb")
    port = free_port()
    launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[1], verbose=False)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_png(s: str) -> np.ndarray:
    im = Image.open(io.BytesIO(base64.b64decode(s)))
    assert im.format == "PNG"
    return np.asarray(im)


def test_server_is_local_and_lists_exactly_our_endpoints(server, client):
    from ifcn_viz.app.tabs import API_NAMES

    demo, url = server
    assert url.startswith("http://127.0.0.1:")
    assert demo.share_url is None  # no public link unless asked
    named = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert named == {f"/{n}" for n in API_NAMES}  # the page's own events are undocumented


def test_every_endpoint(client):
    img = sample_image(7, 100, 140)
    up = client.predict(b64(png_bytes(img)), "seven.png", 5, 0.4, 0.8, -1, True, api_name="/upload")
    sid, fp = up["session"], up["fingerprint"]
    assert (up["width"], up["height"]) == (140, 100) and up["count"] <= 5
    assert decode_png(up["images"]["mosaic"]).ndim == 3

    pr = client.predict(sid, 3, 0.5, 0.7, 0, api_name="/proposals")
    assert pr["fingerprint"] == fp and pr["count"] <= 3 and set(pr["scale_index"]) <= {0}

    win = client.predict(sid, 70, 50, -1, 0.5, True, api_name="/window")
    assert win["fingerprint"] == fp and win["pixel"] == [70, 50] and len(win["box"]) == 4
    assert decode_png(win["images"]["marked"]).shape == (100, 140, 3)

    step = client.predict(sid, 70, 50, 3, api_name="/assemble_step")
    assert step["steps"] == 27 and "score map" in step["caption"] and decode_png(step["image"]).ndim == 3

    prov = client.predict(sid, 70, 50, api_name="/provenance")
    assert prov["fingerprint"] == fp and prov["windows"] == len(prov["entries"]) > 0

    names = client.predict(api_name="/examples")
    ex = client.predict(names[-1], 3, api_name="/example")
    assert ex["session"] != sid and ex["name"] == f"example: {names[-1]}" and ex["count"] <= 3

    cmp = client.predict(2, 128, True, api_name="/compare")
    assert cmp["instances"] >= 1 and decode_png(cmp["images"]["k_comparison"]).ndim == 3

    info = client.predict(api_name="/model_info")
    assert info["k"] == 5 and info["m"] == 21 and info["scales"] == [96, 160]
    assert info["architecture"] == "InstanceFCN" and info["backbone"] == "tiny" and info["parameters"] > 0

    tr = client.predict(2, 0, api_name="/train_tiny")
    assert tr["steps"] == 2 and len(tr["losses"]) == 2


def test_draw_inspect_and_score_map_endpoints(client):
    import json

    from ifcn_viz.app.instances import coco_from_masks

    img = sample_image(8, 160, 200)
    sid = client.predict(b64(png_bytes(img)), "eight.png", api_name="/upload")["session"]
    masks = np.zeros((2, 160, 200), bool)
    masks[0, 30:130, 20:100] = True
    masks[1, 40:140, 100:180] = True  # touching the first
    coco = json.dumps(coco_from_masks(masks, "eight.png"))
    dr = client.predict(sid, coco, -1, -1, 0.5, True, api_name="/draw")
    assert len(dr["instances"]) == 2 and all(i["iou_ideal"] > 0.8 for i in dr["instances"])
    assert min(i["iou_ideal_k1"] for i in dr["instances"]) < min(i["iou_ideal_k5"] for i in dr["instances"])
    for name in ("instances", "ideal", "window", "k_compare", "learned"):
        assert decode_png(dr["images"][name]).ndim == 3
    assert len(dr["coco"]["annotations"]) == 2  # the drawing comes back as COCO ...
    again = client.predict(sid, "", 150, 80, api_name="/draw")  # ... and the session keeps it as ground truth
    assert again["pixel"] == [150, 80] and len(again["instances"]) == 2

    ins = client.predict(sid, 5, 0.4, 0.8, -1, True, 1, True, api_name="/inspect")
    assert ins["ground_truth"] == "COCO file" and ins["funnel"]["objects"] == 2
    assert len(ins["funnel"]["stages"]) == 5 and ins["nms_steps"] >= 1
    for name in ("funnel", "objectness", "logits", "nms", "missed"):
        assert decode_png(ins["images"][name]).ndim == 3

    sm = client.predict(sid, 12, -1, 100, 80, True, api_name="/score_map")
    assert sm["channel"] == 12 and sm["window_center"] is not None and decode_png(sm["images"]["map"]).ndim == 3

    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not valid JSON"):
        client.predict(sid, "{oops", api_name="/draw")
    with pytest.raises(AppError, match="not this image"):
        client.predict(sid, json.dumps(coco_from_masks(masks[:, :100], "x.png")), api_name="/draw")
    fresh = client.predict(b64(png_bytes(img)), api_name="/upload")["session"]
    with pytest.raises(AppError, match="no instances yet"):
        client.predict(fresh, api_name="/draw")
    with pytest.raises(AppError, match="channel must be"):
        client.predict(sid, 99, api_name="/score_map")


def test_errors_are_messages_not_tracebacks(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="unknown or expired session"):
        client.predict("nope", 1, 1, api_name="/window")
    up = client.predict(b64(png_bytes(sample_image(1))), api_name="/upload")
    with pytest.raises(AppError, match="outside the image"):
        client.predict(up["session"], 5000, 1, api_name="/window")
    with pytest.raises(AppError, match="top_n"):
        client.predict(up["session"], 999, api_name="/proposals")
    with pytest.raises(AppError, match="over the server's limit"):  # over 2 MB, within the body guard's slack
        client.predict(b64(b"\0" * (2 * 1024 * 1024 + 300_000)), api_name="/upload")
    with pytest.raises(httpx.HTTPStatusError, match="413"):  # far over: refused before the body is read
        client.predict(b64(b"\0" * (4 * 1024 * 1024)), api_name="/upload")
    with pytest.raises(AppError) as info:
        client.predict(up["session"], 5, 5, 99, api_name="/assemble_step")
    assert "Traceback" not in str(info.value) and "step must be" in str(info.value)


def test_bad_input_corpus_through_the_api(tmp_path, client):
    from gradio_client.exceptions import AppError

    for name, case in bad_input_corpus(tmp_path).items():
        data = b64(case.path.read_bytes()) if case.path.stat().st_size else ""
        if case.ok:
            r = client.predict(data, name, api_name="/upload")
            assert r["fingerprint"] and r["width"] >= 16, name
        else:
            with pytest.raises(AppError) as info:
                client.predict(data, name, api_name="/upload")
            msg = str(info.value)
            expected = ("non-empty",) if not data else case.words
            assert all(w.lower() in msg.lower() for w in expected), (name, msg)
    assert client.predict(api_name="/model_info")["k"] == 5  # still serving


def test_one_client_cannot_push_out_another_clients_session(server, client):
    from gradio_client import Client

    mine = client.predict(b64(png_bytes(sample_image(3))), api_name="/upload")["session"]
    other = Client(server[1], verbose=False)  # another client: its own Gradio session hash
    per_client = server[0].ctx.store.per_client
    data = b64(png_bytes(sample_image(5, 64, 64)))
    flood = [other.predict(data, api_name="/upload")["session"] for _ in range(per_client + 2)]
    assert client.predict(mine, 10, 10, api_name="/window")["pixel"] == [10, 10]  # still there
    assert other.predict(flood[-1], 10, 10, api_name="/window")["pixel"] == [10, 10]
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="unknown or expired session"):
        other.predict(flood[0], 10, 10, api_name="/window")  # the flooder lost its own oldest


def test_a_chunked_body_is_cut_off_at_the_limit(server):
    import socket

    port = int(server[1].rstrip("/").rsplit(":", 1)[1])
    from ifcn_viz.app.server import body_limit_for

    limit = body_limit_for(server[0].ctx.max_upload_bytes)  # the upload limit's base64 size plus 1 MiB
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(f"POST /gradio_api/queue/join HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
              "Transfer-Encoding: chunked\r\n\r\n".encode())  # fmt: skip
    chunk = b"A" * 2**20
    sent = 0
    try:
        for _ in range(64):  # 64 MB, far over the limit, never announced in a header
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
    except OSError:
        pass  # the server closed the connection after refusing
    s.settimeout(30)
    answer = s.recv(4096).split(b"\r\n", 1)[0]
    s.close()
    assert b" 413 " in answer, answer
    assert limit < sent < limit + 12 * 2**20, (limit, sent)  # read up to the limit, then stopped reading
