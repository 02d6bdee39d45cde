"""engine.evaluation.probe_import: many images onto a probe board at once, with labels from
folders or file names; and the "True label follows the prediction" helper."""

from __future__ import annotations

import pytest

from dashboard import label_follow
from engine.evaluation import probe_import, probes
from testkit.digit_images import digit_photo, zip_of


@pytest.mark.parametrize("name, folder, classes, expected", [
    ("7_photo.jpg", None, None, "7"),
    ("7-b.png", None, None, "7"),
    ("7.png", None, None, "7"),
    ("7 on paper.jpeg", None, None, "7"),
    ("photos/3_x.png", None, None, "3"),
    ("photo_2.jpg", None, None, "photo"),
    ("mystery.png", None, None, None),
    ("12.png", None, None, "12"),
    ("7.5.png", None, None, None),
    ("photo_2.jpg", None, [str(d) for d in range(10)], None),
    ("IMG0001.jpg", "4", [str(d) for d in range(10)], "4"),  # the folder wins
    ("9_x.jpg", "cats", [str(d) for d in range(10)], "9"),  # not a class: the name, then
])
def test_label_from_name(name, folder, classes, expected):
    assert probe_import.label_from_name(name, classes, folder) == expected


def test_read_uploads_files_and_zips():
    digits = [str(d) for d in range(10)]
    found = probe_import.read_uploads([
        ("3_pen.jpg", digit_photo(3, fmt="JPEG")),
        ("mystery.png", digit_photo(5)),
        ("notes.txt", b"hello"),
        ("class-folders.zip", zip_of({"1/a.png": digit_photo(1), "2/b.png": digit_photo(2),
                                      "__MACOSX/1/._a.png": b"junk", "readme.md": b"x"})),
        ("flat.zip", zip_of({"8_x.png": digit_photo(8), "broken_1.png": b"not a png"})),
        ("bad.zip", b"PK\x03\x04 not really"),
    ], classes=digits)
    got = [(c.name, c.label) for c in found.candidates]
    assert got == [("3_pen.jpg", "3"), ("mystery.png", None),
                   ("class-folders.zip/1/a.png", "1"), ("class-folders.zip/2/b.png", "2"),
                   ("flat.zip/8_x.png", "8")]
    assert all(c.png.startswith(b"\x89PNG") for c in found.candidates)  # re-encoded
    skipped = "\n".join(found.skipped)
    assert "notes.txt" in skipped and "flat.zip/broken_1.png" in skipped
    assert "bad.zip" in skipped and "readme" not in skipped  # non-images in zips: ignored
    limited = probe_import.read_uploads([(f"{d}.png", digit_photo(d)) for d in range(4)],
                                        max_images=3)
    assert len(limited.candidates) == 3 and "over the limit" in limited.skipped[0]


def test_add_all_is_all_or_nothing(home):
    board = probes.create_board("mine", "alice")
    found = probe_import.read_uploads([("1_a.png", digit_photo(1)), ("x.png", digit_photo(2))],
                                      classes=[str(d) for d in range(10)])
    with pytest.raises(ValueError, match="give a true label to x.png"):
        probe_import.add_all(board, found.candidates, "alice")
    assert probes.list_probes(board, "alice") == []
    with pytest.raises(PermissionError):
        found.candidates[1].label = "2"
        probe_import.add_all(board, found.candidates, "bob")
    ids = probe_import.add_all(board, found.candidates, "alice", polarity="as-is")
    stored = probes.list_probes(board, "alice")
    assert [p["id"] for p in stored] == ids
    assert [(p["label"], p["source"], p["polarity"]) for p in stored] == [
        ("1", "1_a.png", "as-is"), ("2", "x.png", "as-is")]


def test_add_images_from_a_classify_table(home):
    """What Classify's "add all" calls: raw uploads (any format) with the labels shown."""
    board = probes.create_board("mine", "alice")
    jpgs = [digit_photo(d, fmt="JPEG") for d in (4, 6)]
    ids = probe_import.add_images(board, jpgs, ["4", "6"], ["a.jpg", "b.jpg"], "alice")
    assert len(ids) == 2
    assert [p["label"] for p in probes.list_probes(board, "alice")] == ["4", "6"]
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        probe_import.add_images(board, jpgs, ["4"], None, "alice")
    with pytest.raises(ValueError, match="c.jpg"):
        probe_import.add_images(board, [b"nope"], ["1"], ["c.jpg"], "alice")
    assert len(probes.list_probes(board, "alice")) == 2


def test_true_label_follows_the_prediction_until_changed():
    state: dict = {}
    assert label_follow.follow(state, "label", "3") == "3"
    assert label_follow.follow(state, "label", "8") == "8"  # still following
    state["label"] = "5"  # the user picks another label
    assert label_follow.user_changed(state, "label")
    assert label_follow.follow(state, "label", "1") == "5"  # their choice stays
    label_follow.release(state, "label")  # a new image
    assert label_follow.follow(state, "label", "1") == "1"
