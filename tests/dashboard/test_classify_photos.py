"""AppTest of Classify with photos (issue 14) and its rough edges (issue 13: 8, 16, 17): the crop
box, cleaned page and polarity decision of an uploaded photo, "as the network was trained",
one message per unreadable file, PyTorch's inside views next to ONNX Runtime's prediction, and
the enlarged feature map or filter."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from dashboard.views import classify as view
from engine import jobs
from engine.images import framing
from engine.images.framing import normalize_digit
from engine.images.photo_digits import photo_digit
from engine.inference import backends, inside, live
from engine.inference import uploads as up
from engine.inference.classify import classify
from testkit.apptest import app, open_page
from testkit.digit_images import digit_photo
from testkit.drawings import draw_one
from testkit.finished_jobs import trained_job
from trt import tasks


def photo_of_a_one(seed: int = 0) -> bytes:
    """A JPEG photo of a handwritten '1': dark ink on lit paper with margins."""
    digit = normalize_digit(draw_one())
    return photo_digit(digit, 1, np.random.default_rng(seed)).jpeg


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def exported(digits_home, tmp_path_factory) -> tuple[Path, str]:
    """A workspace with a done LeNet job (trained here, no scheduler) exported to ONNX."""
    home = tmp_path_factory.mktemp("photos") / "workspace"
    shutil.copytree(digits_home, home)
    job_id = trained_job(home)
    tasks.export({"job": job_id}, lambda f, m: None, home)
    return home, job_id


@pytest.fixture
def page(exported, jobs_home):
    src, job_id = exported
    shutil.copytree(src, jobs_home, dirs_exist_ok=True)
    at = open_page(app(), "classify")
    assert not at.exception, at.exception
    return at, job_id


def upload(at, *files: tuple[str, bytes]):
    at.file_uploader(key="cl_upload").set_value(
        [(name, data, "image/jpeg" if name.endswith(".jpg") else "image/png")
         for name, data in files] if len(files) > 1 else (files[0][0], files[0][1],
                                                          "image/jpeg"))
    return at.run()


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def test_photo_upload_shows_crop_box_cleaned_page_and_polarity(page):
    at, _ = page
    upload(at, ("one.jpg", photo_of_a_one()))
    assert not at.exception, at.exception
    marks = [m.value for m in at.markdown]
    assert "**Original and crop box**" in marks and "**Cleaned page**" in marks
    assert "**What the network sees**" in marks
    assert any(c.startswith("Polarity auto: dark ink") and "inverted to white on black" in c
               for c in captions(at))
    assert [m.value for m in at.metric if m.label == "Prediction"] == ["1"]

    # The lab's lesson: as the network was trained, dark ink on paper stays dark.
    assert at.radio(key="cl_polarity").options[1] == "as the network was trained (as-is)"
    at.radio(key="cl_polarity").set_value("as-is").run()
    assert not at.exception, at.exception
    assert any(c.startswith("Polarity as-is: dark ink") and "no inversion" in c
               for c in captions(at))


def test_upload_results_match_the_framing_shown(exported):
    home, job_id = exported

    backend = backends.get_backend("pytorch-cpu", jobs.job_dir(job_id, home))
    for polarity in ("auto", "as-is"):
        [item] = up.classify_uploads(backend, [("one.jpg", photo_of_a_one(1))], True, polarity)
        assert item.error is None and item.framed is not None
        # what the page shows as "what the network sees" is the framing it shows
        assert np.array_equal(item.result.input[:, :, 0], item.framed.image)
        assert item.framed.inverted == (polarity == "auto")
        # ... and the same as classifying the photo directly, which frames it itself
        direct = classify(backend, photo_of_a_one(1), digit=True, polarity=polarity)
        assert np.array_equal(direct.input, item.result.input)
        assert np.allclose(direct.probabilities, item.result.probabilities)


def test_each_upload_is_framed_once(exported, monkeypatch):
    home, job_id = exported
    backend = backends.get_backend("pytorch-cpu", jobs.job_dir(job_id, home))
    files = [(f"{i}.jpg", photo_of_a_one(i)) for i in range(3)]
    calls = []
    real = framing.frame_digit
    monkeypatch.setattr(framing, "frame_digit", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    monkeypatch.setattr(up, "frame_digit", framing.frame_digit)
    assert all(u.result is not None for u in up.classify_uploads(backend, files, True, "auto"))
    assert len(calls) == 3


def test_truncated_png_gets_one_message(page):
    at, _ = page
    good = png_bytes(np.asarray(Image.fromarray(draw_one()).convert("RGB")))
    upload(at, ("broken.png", good[:len(good) // 2]))
    assert not at.exception, at.exception
    assert len(at.error) == 1, [e.value for e in at.error]
    assert "cannot read 'broken.png'" in at.error[0].value
    assert "truncated" in at.error[0].value
    assert not [i.value for i in at.info if "Nothing to classify" in i.value
                or "no ink" in i.value]

    # Among several files, the broken one's row says why; the others are classified.
    upload(at, ("broken.png", good[:len(good) // 2]), ("one.png", good),
           ("blank.png", png_bytes(np.zeros((64, 64, 3), np.uint8))))
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert table["top-1"].tolist() == ["—", "1", "—"]
    assert "cannot read 'broken.png'" in table["top-5"][0] and "truncated" in table["top-5"][0]
    assert table["top-5"][2] == up.NO_INK
    assert not at.error  # said once, in its row


def test_onnx_backend_keeps_pytorch_inside_views(page):
    at, _ = page
    assert "ONNX Runtime (CPU)" in at.selectbox(key="cl_backend").options
    at.selectbox(key="cl_backend").set_value("onnxruntime-cpu").run()
    at.session_state[view.CANVAS_STAND_IN] = draw_one("MNIST")
    at.run()
    assert not at.exception, at.exception
    assert [m.value for m in at.metric if m.label == "Prediction"] == ["1"]
    assert any("came from onnxruntime-cpu" in i.value and "PyTorch running the same checkpoint"
               in i.value for i in at.info)
    assert not any("need the PyTorch backend" in i.value for i in at.info)
    stats = at.dataframe[0].value
    assert len(stats) == 8  # one row per LeNet layer, from PyTorch


def test_filters_and_feature_maps_can_be_enlarged(page):
    at, _ = page
    at.session_state[view.CANVAS_STAND_IN] = draw_one("MNIST")
    at.run()
    zoom = at.selectbox(key="cl_zoom_draw_filters")
    assert len(zoom.options) == 21  # "—" and 20 LeNet conv1 filters
    zoom.set_value(3).run()
    assert not at.exception, at.exception
    assert any(c.startswith("filter 3 of 20: values") for c in captions(at))
    [maps_key] = [s.key for s in at.selectbox if s.key.startswith("cl_zoom_draw_1 ")]
    at.selectbox(key=maps_key).set_value(20).run()
    assert any(c.startswith("map 20 of 20") for c in captions(at))


def test_box_overlay_draws_the_crop_box_outside_the_ink():
    image = Image.new("L", (100, 80), 200)
    out = up.box_overlay(image, (20, 30, 60, 70))  # top, left, bottom, right
    red = (out[:, :, 0] > 200) & (out[:, :, 1] < 80)
    rows, cols = np.flatnonzero(red.any(1)), np.flatnonzero(red.any(0))
    assert rows[0] < 20 and rows[-1] >= 60 and cols[0] < 30 and cols[-1] >= 70
    assert not red[20:60, 30:70].any()  # the box surrounds the ink, never paints over it


def test_grid_has_gaps_between_tiles():

    maps = np.ones((4, 5, 5), np.float32)
    maps[:, 0, 0] = 0  # each tile stretched 0..1
    g = inside.grid(maps, cols=2, cell=10, pad=view.TILE_GAP)
    assert g.shape == (2 * 10 + 3 * view.TILE_GAP, 2 * 10 + 3 * view.TILE_GAP)
    gap = g[view.TILE_GAP + 10:2 * view.TILE_GAP + 10]  # the row of gap between the tiles
    assert (gap == 128).all()


class FakeStreamer:
    """streamlit-webrtc's webrtc_streamer for AppTest (its component needs a browser): plays
    when told to, sending one frame, a photo of a '7', through the page's callback."""

    def __init__(self, playing: bool) -> None:
        self.playing, self.calls = playing, []

    def __call__(self, key, video_frame_callback=None, rtc_configuration=None, **_):
        import av

        self.calls.append(rtc_configuration)
        if self.playing:
            seven = np.asarray(Image.open(io.BytesIO(digit_photo(7, size=120))).convert("RGB"))
            out = video_frame_callback(av.VideoFrame.from_ndarray(seven, format="rgb24"))
            assert out.to_ndarray(format="rgb24").shape == seven.shape
        return SimpleNamespace(state=SimpleNamespace(playing=self.playing))


def test_live_video_mode_waits_for_start_and_names_a_bad_ice_setting(page, monkeypatch):
    import streamlit_webrtc

    at, _ = page
    streamer = FakeStreamer(playing=False)
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", streamer)
    at.toggle(key="cl_cam_on").set_value(True).run()
    at.radio(key="cl_cam_mode").set_value("live").run()
    assert not at.exception, at.exception
    assert any(c.startswith("Press START and allow the camera") for c in captions(at))
    assert streamer.calls[-1] == {"iceServers": []}  # host candidates: one machine or a lab
    monkeypatch.setenv(live.ICE_ENV, "stun:nope")
    at.run()
    assert any(live.ICE_ENV in e.value and "is not JSON" in e.value for e in at.error)


def test_live_video_answer_follows_the_frames_and_a_frame_can_be_kept(page, monkeypatch):
    import streamlit_webrtc

    at, _ = page
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", FakeStreamer(playing=True))
    at.toggle(key="cl_cam_on").set_value(True).run()
    at.radio(key="cl_cam_mode").set_value("live").run()
    assert not at.exception, at.exception
    assert any(c.startswith("Live: 1 frames classified of 1 received") for c in captions(at))
    [label] = [m.value for m in at.metric if m.label == "Prediction"]
    assert label in [str(d) for d in range(10)]
    at.button(key="cl_live_keep").click().run()
    assert not at.exception, at.exception
    assert any(m.value == "**The frame kept**" for m in at.markdown)
    assert [m.value for m in at.metric if m.label == "Prediction"].count(label) == 2
    assert any(m.value == "**Add to probe board**" for m in at.markdown)
