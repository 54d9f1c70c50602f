"""The whole bad-input corpus through all three faces -- the Python API, the CLI and the app.

Refused files get a specific message that names the problem; convertible ones load; and after each bad file
every face goes on working (the CLI processes the other files, the app's next upload succeeds).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _app_helpers import small_checkpoint, small_predictor
from corpus import bad_input_corpus, png_bytes, sample_image

from ifcn_viz.data.io import ImageLoadError, load_image

# the app's handlers raise gr.Warning toasts; outside a request Gradio turns them into UserWarnings
pytestmark = pytest.mark.filterwarnings("ignore:Could not use upload:UserWarning")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return bad_input_corpus(tmp_path_factory.mktemp("corpus"))


def test_python_api(corpus):
    predictor = small_predictor(0)
    for name, case in corpus.items():
        if case.ok:
            img = load_image(case.path)
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
            predictor.set_image(case.path)
            assert predictor.image.shape == img.shape, name
        else:
            with pytest.raises(ImageLoadError) as info:
                predictor.set_image(case.path)
            msg = str(info.value)
            assert all(w.lower() in msg.lower() for w in case.words), (name, msg)
            assert "\n" not in msg.strip() and "Traceback" not in msg, name
    # the predictor still works after every refusal
    predictor.set_image(sample_image(3, 64, 64))
    assert len(predictor.scales) == len(predictor.infer.scales)


def test_cli_processes_the_good_files_and_names_each_bad_one(corpus, tmp_path, capsys):
    from ifcn_viz.cli import main

    good = tmp_path / "good.png"
    good.write_bytes(png_bytes(sample_image(5, 64, 64)))
    ckpt = small_checkpoint(tmp_path)
    files = [str(good)] + [str(c.path) for c in corpus.values()]
    out = tmp_path / "results.json"
    rc = main(["propose", *files, "--checkpoint", str(ckpt), "--top-n", "3", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc != 0
    results = json.loads(out.read_text())
    ids = {r["image_id"] for r in results}
    ok_ids = {1} | {i + 2 for i, c in enumerate(corpus.values()) if c.ok}
    assert ids <= ok_ids and 1 in ids  # only loadable images have results; the first good one does
    for case in corpus.values():
        lines = [ln for ln in err.splitlines() if case.path.name in ln]
        if case.ok:
            assert not any("error" in ln.lower() for ln in lines), lines
        else:
            assert len(lines) == 1, (case.path.name, err)  # one line per bad file
            assert all(w.lower() in lines[0].lower() for w in case.words), lines[0]


def test_app_shows_a_message_and_keeps_serving(corpus):
    from ifcn_viz.app import build_demo

    demo = build_demo(small_predictor(0))
    handlers, page = demo.tabs["explore"], demo.page
    args = (None, 5, 0.4, 0.8, -1)
    for name, case in corpus.items():
        out = handlers.on_upload(str(case.path), *args)
        status = out[page.status]
        assert isinstance(status, str) and "Traceback" not in status, name
        assert str(case.path.parent) not in status, (name, status)  # the user's file name, not the server path
        if not case.ok:
            assert all(w.lower() in status.lower() for w in case.words), (name, status)
            assert "\n" not in status, (name, status)  # one line
            assert page.sess not in out  # no session was opened for a refused file; the old one is kept
        else:
            assert out[page.sess] is not None, (name, status)
    good = corpus["gray.png"].path
    assert handlers.on_upload(str(good), *args)[page.sess] is not None  # still serving after all of them
