"""The server's KServe v2 binary tensor data extension: raw float32 bytes after a JSON header,
the same answers as tensor JSON, Triton's own HTTP client, and a 400 for each malformed form."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from starlette.testclient import TestClient

from engine.inference.results import softmax
from testkit import trained_digits
from trt.serve import ServeConfig, ServedModel, create_app

digits_run = trained_digits.digits_run
digits_bundle = trained_digits.digits_bundle
digit_images = trained_digits.digit_images
INFER = "/v2/models/lenet/infer"


@pytest.fixture(scope="module")
def model(digits_bundle) -> ServedModel:
    return ServedModel(digits_bundle, backend="onnxruntime", name="lenet")


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_app(model, ServeConfig(max_batch=8, max_delay_ms=2))) as c:
        yield c


@pytest.fixture(scope="module")
def rows(model, digit_images) -> np.ndarray:
    images = digit_images[0]
    return model.bundle.contract.normalize(np.stack([model.bundle.prepare(im)
                                                     for im in images]))


def framed(header: dict, *blobs: bytes) -> tuple[bytes, dict[str, str]]:
    """A binary request body and its headers, as the extension frames them."""
    head = json.dumps(header).encode()
    return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head)),
                                    "Content-Type": "application/octet-stream"}


def binary_input(rows: np.ndarray, size: int | None = None) -> dict:
    return {"name": "input", "shape": list(rows.shape), "datatype": "FP32",
            "parameters": {"binary_data_size": rows.nbytes if size is None else size}}


def unframe(r) -> tuple[dict, bytes]:
    n = int(r.headers["inference-header-content-length"])
    return json.loads(r.content[:n]), r.content[n:]


def test_binary_requests_give_the_json_answers(client, model, rows):
    as_json = client.post(INFER, json={"id": "j", "inputs": [{
        "name": "input", "shape": list(rows.shape), "datatype": "FP32",
        "data": rows.ravel().tolist()}]})
    assert as_json.status_code == 200 and "inference-header-content-length" not in as_json.headers
    json_logits = np.asarray(as_json.json()["outputs"][0]["data"], np.float32).reshape(8, 10)

    # binary in, binary out (the output asked for by name)
    body, headers = framed({"id": "b", "inputs": [binary_input(rows)], "outputs": [
        {"name": "logits", "parameters": {"binary_data": True}}]}, rows.tobytes())
    r = client.post(INFER, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    head, tail = unframe(r)
    out = head["outputs"][0]
    assert head["id"] == "b" and out["shape"] == [8, 10] and "data" not in out
    assert out["parameters"]["binary_data_size"] == len(tail) == 8 * 10 * 4
    binary_logits = np.frombuffer(tail, "<f4").reshape(8, 10)
    np.testing.assert_allclose(softmax(binary_logits), softmax(json_logits), atol=1e-6)
    np.testing.assert_allclose(binary_logits, model.bundle.runner.run(rows), atol=1e-5)

    # binary in, JSON out (no binary output asked); binary_data_output asks for all outputs
    body, headers = framed({"inputs": [binary_input(rows)]}, rows.tobytes())
    plain = client.post(INFER, content=body, headers=headers)
    assert plain.status_code == 200 and "inference-header-content-length" not in plain.headers
    assert plain.json()["outputs"][0]["data"] == as_json.json()["outputs"][0]["data"]
    body, headers = framed({"inputs": [binary_input(rows)],
                            "parameters": {"binary_data_output": True}}, rows.tobytes())
    _, tail = unframe(client.post(INFER, content=body, headers=headers))
    assert tail == binary_logits.tobytes()
    # an output's own "binary_data": false wins over the request's binary_data_output
    body, headers = framed({"inputs": [binary_input(rows)],
                            "parameters": {"binary_data_output": True},
                            "outputs": [{"name": "logits",
                                         "parameters": {"binary_data": False}}]},
                           rows.tobytes())
    assert "data" in client.post(INFER, content=body, headers=headers).json()["outputs"][0]
    assert "binary_tensor_data" in client.get("/v2").json()["extensions"]


def test_binary_requests_are_batched_with_json_ones(model, rows):
    """Binary and JSON requests in flight together share one model call."""
    import asyncio

    import httpx

    app = create_app(model, ServeConfig(max_batch=4, max_delay_ms=30_000))
    one = rows[:1]

    async def go():
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            body, headers = framed({"inputs": [binary_input(one)]}, one.tobytes())
            sends = [c.post(INFER, content=body, headers=headers) for _ in range(2)]
            sends += [c.post(INFER, json={"inputs": [{"name": "input", "shape": [1, 1, 28, 28],
                                                      "datatype": "FP32",
                                                      "data": one.ravel().tolist()}]})
                      for _ in range(2)]
            return await asyncio.gather(*sends), (await c.get("/stats")).json()

    responses, stats = asyncio.run(go())
    assert [r.status_code for r in responses] == [200] * 4
    assert stats["sizes"] == {"4": 1}
    answers = {tuple(r.json()["outputs"][0]["data"]) for r in responses}
    assert len(answers) == 1


def _bad_cases(rows: np.ndarray):
    one = rows[:1]
    good_head = json.dumps({"inputs": [binary_input(one)]}).encode()
    return {
        "header length not a number": (good_head + one.tobytes(), "abc",
                                       "must be a whole number of bytes, not 'abc'"),
        "negative header length": (good_head + one.tobytes(), "-4", "not '-4'"),
        "fractional header length": (good_head + one.tobytes(), "10.5", "not '10.5'"),
        "header length past the body": (good_head, str(len(good_head) + 100),
                                        f"has only {len(good_head):,}"),
        "bad JSON in the header": (b"{oops" + one.tobytes(), "5",
                                   "the inference header (the first 5 bytes) is not JSON"),
        "bytes missing": (good_head + one.tobytes()[:-8], str(len(good_head)),
                          "add up to 3,136 bytes but 3,128 bytes follow"),
        "bytes left over": (good_head + one.tobytes() + b"\0" * 4, str(len(good_head)),
                            "add up to 3,136 bytes but 3,140 bytes follow"),
        "size not shape x dtype": (json.dumps({"inputs": [binary_input(one, 3132)]}).encode()
                                   + one.tobytes()[:3132], None,
                                   "binary_data_size is 3,132 bytes but shape [1, 1, 28, 28] "
                                   "of FP32 needs 3,136"),
        "size for another batch": (json.dumps({"inputs": [dict(binary_input(one),
                                                               shape=[2, 1, 28, 28])]}).encode()
                                   + one.tobytes(), None, "needs 6,272"),
        "size not a number": (json.dumps({"inputs": [binary_input(one, "3136")]}).encode()
                              + one.tobytes(), None,
                              "binary_data_size must be a whole number of bytes, not '3136'"),
        "size negative": (json.dumps({"inputs": [binary_input(one, -1)]}).encode(), None,
                          "not -1"),
        "data and binary both": (json.dumps({"inputs": [dict(binary_input(one), data=[0.0])]}
                                            ).encode() + one.tobytes(), None,
                                 'has both "data" and binary_data_size'),
        "binary_data not a bool": (json.dumps({"inputs": [binary_input(one)], "outputs": [
            {"name": "logits", "parameters": {"binary_data": "yes"}}]}).encode()
            + one.tobytes(), None, '"binary_data" must be true or false'),
        "NaN in the tensor": (good_head + np.full_like(one, np.nan).tobytes(),
                              str(len(good_head)), "NaN or infinity"),
    }


@pytest.mark.parametrize("case", list(_bad_cases(np.zeros((1, 1, 28, 28), np.float32))))
def test_malformed_binary_requests_get_a_400_naming_the_fault(client, rows, case):
    body, length, message = _bad_cases(rows)[case]
    if length is None:  # the header is the JSON up to the first binary byte
        length = str(body.index(b"}]}") + 3)
    r = client.post(INFER, content=body, headers={"Inference-Header-Content-Length": length})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert message in error, error
    assert "\n" not in error and "Traceback" not in error


def test_binary_size_without_the_header_is_refused(client, rows):
    one = rows[:1]
    r = client.post(INFER, content=json.dumps({"inputs": [binary_input(one)]}).encode())
    assert r.status_code == 400
    assert "needs the Inference-Header-Content-Length header" in r.json()["error"]
    # after every malformed request, the server still answers a good one
    body, headers = framed({"inputs": [binary_input(one)]}, one.tobytes())
    assert client.post(INFER, content=body, headers=headers).status_code == 200


def test_tritonclient_http_talks_to_the_server_in_binary_mode(model, rows):
    """Triton's own Python HTTP client, binary tensors both ways, against a real uvicorn."""
    http = pytest.importorskip("tritonclient.http")
    import uvicorn

    from trt.serve.cli import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(model, ServeConfig(max_batch=8)),
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        client = http.InferenceServerClient(url=f"127.0.0.1:{port}")
        assert client.is_server_ready() and client.is_model_ready("lenet")
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        assert client.get_model_metadata("lenet")["inputs"][0]["shape"] == [-1, 1, 28, 28]
        expected = model.bundle.runner.run(rows)
        for binary_out in (True, False):
            x = http.InferInput("input", list(rows.shape), "FP32")
            x.set_data_from_numpy(rows, binary_data=True)
            out = http.InferRequestedOutput("logits", binary_data=binary_out)
            result = client.infer("lenet", [x], outputs=[out], request_id="tc")
            assert result.get_response()["id"] == "tc"
            np.testing.assert_allclose(result.as_numpy("logits"), expected, atol=1e-5)
        x = http.InferInput("input", list(rows.shape), "FP32")
        x.set_data_from_numpy(rows, binary_data=True)
        got = client.infer("lenet", [x]).as_numpy("logits")  # no outputs: all come as binary
        np.testing.assert_allclose(got, expected, atol=1e-5)
        wrong = http.InferInput("input", [1, 1, 28, 28], "FP32")
        wrong.set_data_from_numpy(rows[:2].reshape(2, 1, 28, 28)[:1], binary_data=True)
        wrong._raw_data = wrong._raw_data[:-4]  # noqa: SLF001 - a truncated tensor on purpose
        wrong._parameters["binary_data_size"] = len(wrong._raw_data)  # noqa: SLF001
        with pytest.raises(http.InferenceServerException, match="needs 3,136"):
            client.infer("lenet", [wrong])
        client.close()
    finally:
        server.should_exit = True
        thread.join(timeout=20)
