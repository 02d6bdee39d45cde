"""Probe boards (issue 13 items 2 and 6): the board shown goes into the URL (?board=) and a
link opens it; the table is as tall as its rows, so the score row needs no scrolling, and
the scores are also written above it (the browser test measures the table)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from engine.evaluation import probes
from testkit.apptest import app, errors, open_page
from testkit.finished_jobs import finished_job


def png() -> bytes:
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 12:16] = 255  # a "1"
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def test_board_in_url_and_score_row_in_view(jobs_home):
    job_id = finished_job(jobs_home, epochs=1, evaluate=False)
    first = probes.create_board("first", "alice")
    second = probes.create_board("second", "alice")
    for k in range(14):  # more rows than a default-height table shows
        probes.add_probe(second, png(), str(k % 10), "as-is", user="alice")
    at = open_page(app(), "probes")
    assert not at.exception and not errors(at)
    shown = at.query_params["board"]
    assert shown in (first, second, [first], [second])

    at = open_page(app(), "probes", board=second)
    assert not at.exception and not errors(at)
    # The score row is a table of its own above the board (always in view), and the board's
    # table is as tall as its rows (no inner scroll).
    score, table = at.dataframe[0], at.dataframe[1]
    assert list(score.value.index) == ["score"] and "/14" in str(score.value.iloc[0, 0])
    assert len(table.value) == 14 and "score" not in table.value.index
    assert job_id
