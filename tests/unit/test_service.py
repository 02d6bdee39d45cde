"""engine.service.classify: the Classify page's and `predict`'s one front door, a Classified
answer per drawing, upload or file, against the engine calls it stands for."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.inference import backends
from engine.inference import classify as cl
from engine.inference import uploads as up
from engine.service import classify as service
from testkit.digit_images import digit_photo
from testkit.drawings import draw_one


def encoded(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def backend(lenet_run) -> backends.Backend:
    return backends.get_backend("pytorch-cpu", lenet_run)


class Other:
    """A runtime without PyTorch modules (as ONNX Runtime and TensorRT): answers like the
    PyTorch backend it wraps."""

    def __init__(self, inner: backends.Backend) -> None:
        self.inner, self.name = inner, "other-runtime"
        self.classes, self.contract = inner.classes, inner.contract

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self.inner.probabilities(batch)


def test_drawing_answer_holds_what_the_page_draws(backend, lenet_run):
    for style, polarity in (("MNIST", "as-is"), ("paper", "invert")):
        shown = service.classify_drawing(backend, draw_one(style), polarity)
        direct = cl.classify(backend, draw_one(style), digit=True, polarity=polarity)
        assert shown.label == direct.label == "1" and shown.backend == "pytorch-cpu"
        assert np.array_equal(shown.seen, direct.input) and shown.seen.shape == (28, 28, 1)
        assert np.allclose(shown.prediction.probabilities, direct.probabilities)
        assert len(shown.prediction.top) == 5 and shown.confidence == shown.prediction.top[0][1]
        assert (shown.digit, shown.polarity, shown.reason) == (True, polarity, None)
        assert Image.open(io.BytesIO(shown.png)).size == (280, 280)  # the board keeps this
        views = shown.inside
        assert views.source == "pytorch-cpu" and views.note is None and views.problem is None
        assert views.saliency.shape == (196, 196, 3) and views.filters.shape == (20, 5, 5)
        assert [m.shape for _, m in views.feature_maps] == [(20, 24, 24), (50, 8, 8)]
        assert len(views.stats) == 8
    blank = np.zeros((280, 280, 4), np.uint8)
    blank[..., 3] = 255
    empty = service.classify_drawing(backend, blank, "as-is")
    assert empty.prediction is None and empty.label is None and empty.seen is None
    assert "draw something" in empty.warning and empty.reason == empty.warning
    assert empty.error is None and empty.png is None and empty.inside is None
    assert service.classify_drawing(backend, draw_one(), look_inside=False).inside is None


def test_upload_answer_has_the_crop_and_matches_classifying_directly(backend):
    data = digit_photo(1, size=120, fmt="JPEG")
    for polarity in ("auto", "as-is"):
        shown = service.classify_upload(backend, "one.jpg", data, digit=True, polarity=polarity)
        assert shown.name == "one.jpg" and shown.reason is None
        direct = cl.classify(backend, data, digit=True, polarity=polarity)
        assert np.array_equal(shown.seen, direct.input)
        assert np.allclose(shown.prediction.probabilities, direct.probabilities)
        crop = shown.crop
        top, left, bottom, right = crop.box
        assert 0 <= top < bottom <= 120 and 0 <= left < right <= 120
        assert crop.inverted == (polarity == "auto")
        assert crop.polarity.startswith(f"{polarity}: dark ink")
        assert crop.cleaned.shape == (120, 120) and crop.overlay.shape == (120, 120, 3)
        assert shown.image.size == (120, 120)
        assert Image.open(io.BytesIO(shown.png)).format == "PNG"
        assert shown.inside.stats
    plain = service.classify_upload(backend, "one.png", encoded(draw_one()), digit=False,
                                    look_inside=False)
    assert plain.crop is None and plain.prediction is not None and plain.inside is None


def test_many_uploads_one_answer_each_with_its_one_reason(backend):
    good = encoded(draw_one())
    files = [("broken.png", good[:len(good) // 2]), ("one.png", good),
             ("blank.png", encoded(np.zeros((64, 64), np.uint8))), ("paper.jpg",
             encoded(draw_one("paper"), "JPEG"))]
    broken, one, blank, paper = service.classify_uploads(backend, files, digit=True)
    assert [a.name for a in (broken, one, blank, paper)] == [n for n, _ in files]
    assert broken.prediction is None and broken.image is None
    assert "cannot read 'broken.png'" in broken.error and broken.warning is None
    assert blank.prediction is None and blank.error is None and blank.warning == up.NO_INK
    assert (one.label, paper.label) == ("1", "1")
    assert one.png is None and one.inside is None  # only single answers get the full view
    rows = [a.to_dict() for a in (broken, one, blank)]
    assert rows[0] == {"image": "broken.png", "label": None, "confidence": None, "top": [],
                       "error": broken.error}
    assert rows[1]["label"] == "1" and len(rows[1]["top"]) == 5 and rows[1]["error"] is None
    assert rows[2]["error"] == up.NO_INK
    single = service.classify_upload(backend, "broken.png", files[0][1], digit=True)
    assert single.error == broken.error and single.png is None and single.inside is None


def test_files_on_disk_in_batches_in_order(backend, tmp_path):
    paths = []
    for i, image in enumerate([draw_one(), np.full((50, 50), 255, np.uint8), draw_one("paper"),
                               np.zeros((50, 50), np.uint8), draw_one()]):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image).save(paths[-1])
    paths.append(tmp_path / "missing.png")
    answers = list(service.classify_files(backend, paths, digit=True, batch=2))
    assert [a.name for a in answers] == [str(p) for p in paths]
    assert [a.label for a in answers] == ["1", None, "1", None, "1", None]
    assert [a.warning for a in answers][1::2] == [up.NO_INK, up.NO_INK, None]
    assert "file not found" in answers[-1].error
    # digit=None frames as the model's contract says
    assert service.frames_digits(backend, None) == (backend.contract.framing == "mnist")
    assert service.frames_digits(backend, False) is False
    [again] = service.classify_files(backend, paths[:1])
    assert again.digit == service.frames_digits(backend, None)


def test_another_backend_answers_and_pytorch_shows_the_inside(backend, lenet_run, tmp_path):
    other = Other(backend)
    shown = service.classify_drawing(other, draw_one(), checkpoint=lenet_run)
    assert shown.backend == "other-runtime" and shown.label == "1"
    views = shown.inside
    assert views.source == "pytorch-cpu" and "came from other-runtime" in views.note
    assert "PyTorch running the same checkpoint" in views.note and len(views.stats) == 8
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    broken = service.inside_views(other, shown.prediction, bad)
    assert broken.problem.startswith(f"No inside views: PyTorch could not load {bad}")
    assert broken.saliency is None and not broken.stats
    assert "no checkpoint was given" in service.inside_views(other, shown.prediction).problem


def test_backend_choices_and_opening_follow_the_checks(backend, lenet_run):
    made = []

    def factory(checkpoint, **kw):
        made.append(kw)
        return Other(backend)

    class Checks:
        def unavailable_reason(self, kind, checkpoint):
            return "needs a fake export" if kind == "fake-off" else None

        def cache_key(self, kind, checkpoint):
            return {"stamp": 7} if kind == "fake-on" else {}

    backends.register_backend("fake-on", factory, "Fake on")
    backends.register_backend("fake-off", factory, "Fake off")
    try:
        choices = service.backend_choices(lenet_run, Checks())
        assert choices.usable["pytorch-cpu"] == "PyTorch (CPU)" and "fake-on" in choices.usable
        assert choices.unavailable == {"Fake off": "needs a fake export"}
        assert "fake-off" in service.backend_choices(lenet_run).usable  # no checks: all
        opened = service.open_backend("fake-on", lenet_run, Checks())
        assert opened.name == "other-runtime" and made == [{"stamp": 7}]
        assert service.open_backend("fake-on", lenet_run, Checks()) is opened  # cached
        assert service.open_backend("pytorch-cpu", lenet_run) is backend
        with pytest.raises(KeyError, match="unknown backend"):
            service.open_backend("nope", lenet_run)
    finally:
        backends._REGISTRY.pop("fake-on")
        backends._REGISTRY.pop("fake-off")


def test_a_live_frame_kept_is_a_full_answer_without_classifying_again(backend, monkeypatch):
    seven = np.asarray(Image.open(io.BytesIO(digit_photo(7, size=120))).convert("RGB"))
    [item] = up.classify_pictures(backend, [up.UploadResult("camera", Image.fromarray(seven))],
                                  True, "auto")
    monkeypatch.setattr(cl, "classify_batch", lambda *a, **k: pytest.fail("classified again"))
    kept = service.classify_frame(backend, item, True, "auto")
    assert kept.prediction is item.result and kept.name == "camera"
    assert kept.crop.box == item.framed.box and kept.inside.stats
    assert Image.open(io.BytesIO(kept.png)).size == (120, 120)
