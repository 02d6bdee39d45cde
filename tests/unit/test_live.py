"""engine.inference.live: a camera's frames classified as they play (issue 17), at most one
every `every_s`, the answer drawn on the frame, the latest result kept for the page; and the
WebRTC ICE servers from the environment."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from engine.inference import backends, live
from engine.inference.uploads import UploadResult, classify_pictures
from testkit.digit_images import digit_photo


def frame_of(digit: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(digit_photo(digit, size=120))).convert("RGB"))


@pytest.fixture
def backend(lenet_run):
    return backends.get_backend("pytorch-cpu", lenet_run)


def test_frames_are_classified_at_most_once_per_interval(backend, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: clock[0])
    classifier = live.LiveClassifier(backend, digit=True, polarity="auto", every_s=0.2)
    assert classifier.latest() == live.LiveState(None, 0, 0)
    seven = frame_of(7)
    for t in (100.0, 100.05, 100.1, 100.2, 100.25, 100.45):
        clock[0] = t
        shown = classifier.frame(seven)
        assert shown.shape == seven.shape and shown.dtype == np.uint8
    state = classifier.latest()
    assert (state.classified, state.seen) == (3, 6)  # at 100.0, 100.2 and 100.45
    expected = classify_pictures(backend, [UploadResult("x", Image.fromarray(seven))], True,
                                 "auto")[0]
    assert state.item.result.label == expected.result.label
    assert state.item.result.top == expected.result.top
    assert state.item.framed.box == expected.framed.box


def test_the_answer_and_the_crop_box_are_drawn_on_the_frame(backend):
    seven = frame_of(7)
    classifier = live.LiveClassifier(backend, digit=True, polarity="auto", every_s=0.0)
    shown = classifier.frame(seven)
    item = classifier.latest().item
    top, left, bottom, right = item.framed.box
    changed = np.any(shown != seven, axis=2)
    assert changed[:10, :10].all()  # the label's black band, top left
    assert changed[top - 1, left:right].mean() > 0.9  # the box's top edge, outside the ink
    assert np.array_equal(shown[bottom + 4:, right + 4:], seven[bottom + 4:, right + 4:])


def test_a_frame_without_ink_says_so_and_keeps_counting(backend):
    blank = np.full((90, 120, 3), 220, np.uint8)
    classifier = live.LiveClassifier(backend, digit=True, polarity="auto", every_s=0.0)
    shown = classifier.frame(blank)
    state = classifier.latest()
    assert state.item.result is None and "no ink" in state.item.error
    assert (state.classified, state.seen) == (1, 1)
    assert np.any(shown[:10, :10] != blank[:10, :10])  # "no digit in view" drawn


def test_frames_from_another_thread_while_the_page_reads(backend):
    classifier = live.LiveClassifier(backend, digit=True, polarity="auto", every_s=0.0)
    seven = frame_of(7)
    errors: list[BaseException] = []

    def play():
        try:
            for _ in range(20):
                classifier.frame(seven)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    thread = threading.Thread(target=play)
    thread.start()
    reads = []
    while thread.is_alive():
        reads.append(classifier.latest().seen)
        time.sleep(0.001)  # a page polls; a loop that never sleeps starves the other thread
    thread.join()
    assert not errors
    assert reads == sorted(reads) and classifier.latest().seen == 20


def test_ice_servers_from_the_environment(monkeypatch):
    monkeypatch.delenv(live.ICE_ENV, raising=False)
    assert live.ice_servers() == []
    stun = '[{"urls": ["stun:stun.example.org:3478"]}]'
    monkeypatch.setenv(live.ICE_ENV, stun)
    assert live.ice_servers() == [{"urls": ["stun:stun.example.org:3478"]}]
    monkeypatch.setenv(live.ICE_ENV, "stun:stun.example.org")
    with pytest.raises(ValueError, match="is not JSON"):
        live.ice_servers()
    monkeypatch.setenv(live.ICE_ENV, '{"urls": "stun:x"}')
    with pytest.raises(ValueError, match="must be a list of objects"):
        live.ice_servers()
