"""The inference server: KServe v2 protocol, /classify, dynamic batching, limits and token."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from testkit import trained_digits
from trt.bundle import Bundle
from trt.serve import ServeConfig, ServedModel, create_app
from trt.serve.batcher import DynamicBatcher, QueueFull

ROOT = Path(__file__).resolve().parents[2]
digits_run = trained_digits.digits_run
digits_bundle = trained_digits.digits_bundle
digit_images = trained_digits.digit_images


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def model(digits_bundle) -> ServedModel:
    return ServedModel(digits_bundle, backend="onnxruntime", name="lenet")


@pytest.fixture
def client(model):
    with TestClient(create_app(model, ServeConfig(max_batch=8, max_delay_ms=2))) as c:
        yield c


def v2_body(model: ServedModel, images: list[np.ndarray]) -> tuple[dict, np.ndarray]:
    rows = model.bundle.contract.normalize(np.stack([model.bundle.prepare(im)
                                                     for im in images]))
    return {"id": "r1", "inputs": [{"name": "input", "shape": list(rows.shape),
                                    "datatype": "FP32", "data": rows.ravel().tolist()}],
            "outputs": [{"name": "logits"}]}, rows


def test_v2_health_metadata_and_infer(client, model, digit_images):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2/models/lenet/ready").json()["ready"] is True
    meta = client.get("/v2/models/lenet").json()
    assert meta["name"] == "lenet"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
    assert meta["outputs"][0]["shape"] == [-1, 10]
    assert client.get("/v2").json()["models"] == ["lenet"]

    body, rows = v2_body(model, digit_images[0][:3])
    r = client.post("/v2/models/lenet/infer", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "r1" and out["model_name"] == "lenet"
    assert out["outputs"][0]["name"] == "logits" and out["outputs"][0]["shape"] == [3, 10]
    got = np.asarray(out["outputs"][0]["data"], np.float32).reshape(3, 10)
    np.testing.assert_allclose(got, model.bundle.runner.run(rows), rtol=1e-5, atol=1e-5)
    again = client.post("/v2/models/lenet/versions/1/infer", json=body)
    assert again.json()["outputs"][0]["data"] == out["outputs"][0]["data"]


def test_classify_answers_what_the_bundle_answers(client, digits_bundle, digit_images):
    images, labels = digit_images
    files = [("file", (f"d{i}.png", png(a), "image/png")) for i, a in enumerate(images)]
    r = client.post("/classify", files=files, data={"top_k": "3"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["image"] for x in results] == [f"d{i}.png" for i in range(len(images))]
    want = Bundle(digits_bundle, prefer_tensorrt=False).classify(images, top_k=3)
    assert [x["label"] for x in results] == [w["label"] for w in want]
    assert sum(x["label"] == y for x, y in zip(results, labels, strict=True)) >= 6
    for got, w in zip(results, want, strict=True):
        assert got["confidence"] == pytest.approx(w["confidence"], abs=1e-5)
        assert len(got["top"]) == 3
    raw = client.post("/classify?digit=true", content=png(images[0]),
                      headers={"content-type": "image/png"})
    assert raw.status_code == 200
    framed = Bundle(digits_bundle, prefer_tensorrt=False).classify([images[0]], digit=True)
    assert raw.json()["results"][0]["label"] == framed[0]["label"]


def test_batcher_merges_concurrent_requests_and_off_does_not():
    calls: list[int] = []

    def run(rows: np.ndarray) -> np.ndarray:
        calls.append(len(rows))
        return rows * 2

    async def go(max_batch: int) -> tuple[list[np.ndarray], DynamicBatcher]:
        # A long delay: the batch closes when it is full (8 rows), never on the clock.
        b = DynamicBatcher(run, max_batch=max_batch, max_delay_s=30.0)
        await b.start()
        try:
            outs = await asyncio.gather(*(b.submit(np.full((1, 2), i, np.float32))
                                          for i in range(8)))
        finally:
            await b.stop()
        return outs, b

    outs, on = asyncio.run(go(8))
    assert on.stats.batches == 1 and dict(on.stats.sizes) == {8: 1} and calls == [8]
    assert [float(o[0, 0]) for o in outs] == [2.0 * i for i in range(8)]  # each its own rows
    calls.clear()
    outs, off = asyncio.run(go(1))
    assert off.stats.batches == 8 and calls == [1] * 8
    assert [float(o[0, 0]) for o in outs] == [2.0 * i for i in range(8)]


def test_batcher_refuses_when_the_queue_is_full():
    async def go():
        b = DynamicBatcher(lambda r: r, max_batch=4, max_delay_s=1.0, max_queue=3)
        await b.start()
        try:
            with pytest.raises(QueueFull, match="server busy"):  # more than the queue holds
                await b.submit(np.zeros((4, 1), np.float32))
            waiting = asyncio.create_task(b.submit(np.ones((3, 1), np.float32)))
            await asyncio.sleep(0.05)  # 3 rows wait for a 4th (or the delay)
            with pytest.raises(QueueFull, match="3 images are already waiting"):
                await b.submit(np.zeros((1, 1), np.float32))
            return await waiting  # served once the delay runs out
        finally:
            await b.stop()

    out = asyncio.run(go())
    assert out.shape == (3, 1) and float(out.sum()) == 3.0


def test_server_batches_concurrent_http_requests(model, digit_images):
    """Eight clients at once over HTTP: one model call of 8 rows, and each gets its answer."""
    app = create_app(model, ServeConfig(max_batch=8, max_delay_ms=30_000))
    bodies = [v2_body(model, [im]) for im in digit_images[0]]

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=transport, base_url="http://test") as c:
            rs = await asyncio.gather(*(c.post("/v2/models/lenet/infer", json=b)
                                        for b, _ in bodies))
            return rs, (await c.get("/stats")).json()

    responses, stats = asyncio.run(go())
    assert all(r.status_code == 200 for r in responses)
    assert stats["batches"] == 1 and stats["sizes"] == {"8": 1}
    for r, (_, rows) in zip(responses, bodies, strict=True):
        got = np.asarray(r.json()["outputs"][0]["data"], np.float32)
        np.testing.assert_allclose(got, model.bundle.runner.run(rows)[0], atol=1e-5)


@pytest.mark.parametrize("method,path,kwargs,status", [
    ("post", "/v2/models/lenet/infer", {"content": b"{not json"}, 400),
    ("post", "/v2/models/lenet/infer", {"json": {"inputs": "x"}}, 400),
    ("post", "/v2/models/lenet/infer", {"json": {"inputs": [{"name": "input", "shape": [1, 1, 8, 8],
                                                             "datatype": "FP32",
                                                             "data": [0.0] * 64}]}}, 400),
    ("post", "/v2/models/lenet/infer", {"json": {"inputs": [{"name": "input",
                                                             "shape": [1, 1, 28, 28],
                                                             "datatype": "INT8",
                                                             "data": [0] * 784}]}}, 400),
    ("post", "/v2/models/lenet/infer", {"json": {"inputs": [{"name": "input",
                                                             "shape": [1, 1, 28, 28],
                                                             "datatype": "FP32",
                                                             "data": ["a"] * 784}]}}, 400),
    ("post", "/v2/models/lenet/infer", {"json": {"inputs": [{"name": "input",
                                                             "shape": [2, 1, 28, 28],
                                                             "datatype": "FP32",
                                                             "data": [0.0] * 784}]}}, 400),
    ("post", "/v2/models/lenet/infer", {"json": {"inputs": [{"name": "nope", "shape": [1],
                                                             "datatype": "FP32",
                                                             "data": [0]}]}}, 400),
    ("post", "/v2/models/other/infer", {"json": {}}, 404),
    ("post", "/v2/models/lenet/versions/7/infer", {"json": {}}, 404),
    ("get", "/v2/models/lenet/infer", {}, 405),
    ("post", "/v2/models/lenet/infer", {"content": b"{}", "headers": {
        "Inference-Header-Content-Length": "2"}}, 400),
    ("get", "/nowhere", {}, 404),
    ("post", "/classify", {}, 400),
    ("post", "/classify", {"files": [("file", ("a.png", b"not an image", "image/png"))]}, 400),
    ("post", "/classify?top_k=zero", {"content": b"x", "headers": {"content-type": "image/png"}},
     400),
    ("post", "/classify?polarity=sideways", {"files": [("file", ("a.png", png(np.zeros((8, 8),
                                                                                     np.uint8)),
                                                                  "image/png"))]}, 400),
])
def test_bad_requests_get_a_4xx_with_one_line(client, method, path, kwargs, status):
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    message = r.json()["error"]
    assert message and "\n" not in message and "Traceback" not in message


def test_limits_on_body_images_and_pixels(model):
    config = ServeConfig(max_body_bytes=50_000, max_images=2, max_pixels=100 * 100)
    with TestClient(create_app(model, config)) as c:
        big = c.post("/classify", content=b"\0" * 60_000, headers={"content-type": "image/png"})
        assert big.status_code == 413 and "limit" in big.json()["error"]
        small = png(np.zeros((28, 28), np.uint8))
        many = c.post("/classify", files=[("file", (f"{i}.png", small, "image/png"))
                                          for i in range(3)])
        assert many.status_code == 413 and "3 images" in many.json()["error"]
        wide = c.post("/classify", content=png(np.zeros((20, 600), np.uint8)),
                      headers={"content-type": "image/png"})
        assert wide.status_code == 413 and "600x20 pixels" in wide.json()["error"]
        assert c.post("/classify?digit=false", content=small,  # blank: nothing to frame
                      headers={"content-type": "image/png"}).status_code == 200


def test_bearer_token_is_enforced_when_set(model):
    with TestClient(create_app(model, ServeConfig(token="s3cret"))) as c:
        assert c.get("/v2/health/ready").status_code == 200  # probes need no token
        assert c.get("/v2/models/lenet").status_code == 401
        wrong = c.get("/v2/models/lenet", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert c.post("/classify", content=b"x").status_code == 401
        ok = c.get("/v2/models/lenet", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["name"] == "lenet"
    with TestClient(create_app(model, ServeConfig())) as c:
        assert c.get("/v2/models/lenet").status_code == 200


def test_serve_cli_runs_uvicorn_on_a_free_port(digits_run, digit_images, tmp_path):
    """`python -m trt serve RUN --port 0`: a real server process, made from the run folder."""
    env = {**os.environ, "STUDIO_SERVE_TOKEN": "tok"}
    proc = subprocess.Popen([sys.executable, "-m", "trt", "serve", str(digits_run), "--port",
                             "0", "--max-batch", "4"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving lenet-digits on http://127.0.0.1:"), (
            line + proc.stderr.read() if proc.poll() is not None else line)
        assert "onnxruntime-cpu (TensorRT not used: " in line  # the same words as trt infer
        url = line.split(" on ")[1].split()[0]
        headers = {"Authorization": "Bearer tok"}
        with httpx.Client(base_url=url, timeout=60) as c:
            for _ in range(600):  # the socket listens before the app has started
                try:
                    if c.get("/v2/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
            r = c.post("/classify", content=png(digit_images[0][0]), headers=headers
                       | {"content-type": "image/png"})
            assert r.status_code == 200, r.text
            assert r.json()["results"][0]["label"] == Bundle(
                digits_run / "exports" / "bundle.zip").classify([digit_images[0][0]])[0]["label"]
            assert json.loads(c.get("/stats", headers=headers).text)["config"]["max_batch"] == 4
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_served_connections_send_small_writes_at_once():
    """asyncio (under uvicorn) turns Nagle off on the connections of the serve socket: without
    it every keep-alive response waited ~40 ms for the client's delayed ACK."""
    from trt.serve.cli import bind_socket

    async def accepted_nodelay() -> int:
        loop = asyncio.get_running_loop()
        seen: asyncio.Future = loop.create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        sock = bind_socket("127.0.0.1", 0)
        server = await loop.create_server(Probe, sock=sock)
        try:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            value = await asyncio.wait_for(seen, 10)
            writer.close()
            return value
        finally:
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0


def test_serve_cli_errors_are_one_line(tmp_path):
    not_a_bundle = tmp_path / "x.zip"
    not_a_bundle.write_text("nope")
    proc = subprocess.run([sys.executable, "-m", "trt", "serve", str(not_a_bundle)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1


def test_background_server_for_a_run_starts_and_stops(digits_run, digit_images):
    from trt.serve import process

    info = process.start(digits_run, token="tok", max_batch=4)
    try:
        assert process.status(digits_run)["pid"] == info["pid"]
        assert process.start(digits_run)["pid"] == info["pid"]  # one server per run
        assert info["model"] == "lenet-digits" and "onnxruntime-cpu" in info["backend"]
        r = httpx.post(f"{info['url']}/classify", content=png(digit_images[0][0]),
                       headers={"content-type": "image/png", "Authorization": "Bearer tok"},
                       timeout=60)
        assert r.status_code == 200 and r.json()["results"][0]["label"]
        assert "Authorization: Bearer" in process.curl_examples(info)
    finally:
        assert process.stop(digits_run) is True
    assert process.status(digits_run) is None
    assert process.stop(digits_run) is False
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{info['url']}/v2/health/ready", timeout=5)


def test_a_failing_model_call_fails_its_requests_only(model, digit_images):
    """The batch's requests hear the error (a 500 without a traceback); the next ones work."""
    calls = {"n": 0}
    real = model.run

    def flaky(rows):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("device lost\nsecond line")
        return real(rows)

    app = create_app(model, ServeConfig(max_batch=8, max_delay_ms=0))
    app.state.batcher.run = flaky
    body, _ = v2_body(model, digit_images[0][:1])
    with TestClient(app, raise_server_exceptions=False) as c:
        failed = c.post("/v2/models/lenet/infer", json=body)
        assert failed.status_code == 500
        assert failed.json() == {"error": "internal error: RuntimeError: device lost"}
        assert c.post("/v2/models/lenet/infer", json=body).status_code == 200
