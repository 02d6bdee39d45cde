"""The KServe v2 / Triton binary tensor data extension: raw tensor bytes after a JSON header.

A request with the header `Inference-Header-Content-Length: N` carries its JSON inference
request in the first N bytes of the body; every input with `"parameters": {"binary_data_size":
B}` takes its B raw bytes (little-endian, row major) from what follows, in the order of the
inputs. Outputs asked with `"parameters": {"binary_data": true}` (or, for all outputs, the
request's `"binary_data_output": true`) come back the same way: the JSON response, then the
tensor bytes, with `Inference-Header-Content-Length` on the response. This is how Triton's own
clients (tritonclient.http with binary_data=True, perf_analyzer) talk by default, and it skips
the cost of writing and parsing every float as JSON text, which dominates for image tensors.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from trt.serve.errors import BadInput

HEADER = "inference-header-content-length"
# Little-endian numpy types of the v2 datatypes a binary tensor may carry.
DTYPES = {"FP32": "<f4", "FP16": "<f2", "FP64": "<f8", "INT8": "i1", "UINT8": "u1",
          "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "BOOL": "?"}


def split_request(body: bytes, header_length: str | None) -> tuple[Any, memoryview]:
    """The JSON inference request and the binary bytes after it; without the header the
    whole body is the JSON request and there are no binary bytes."""
    if header_length is None:
        return _json(body, "the request body"), memoryview(b"")
    raw = header_length.strip()
    if not raw.isdigit():
        raise BadInput(f"Inference-Header-Content-Length must be a whole number of bytes, not "
                       f"{header_length!r}")
    n = int(raw)
    if n > len(body):
        raise BadInput(f"Inference-Header-Content-Length is {n:,} bytes but the request body "
                       f"has only {len(body):,}")
    view = memoryview(body)
    return _json(bytes(view[:n]), f"the inference header (the first {n:,} bytes)"), view[n:]


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadInput(f"{what} is not JSON") from None


def binary_size(tensor: dict[str, Any]) -> int | None:
    """The input's binary_data_size parameter: None when its data is JSON."""
    params = tensor.get("parameters")
    if params is None:
        return None
    if not isinstance(params, dict):
        raise BadInput(f"input {tensor.get('name')!r}: \"parameters\" must be an object")
    size = params.get("binary_data_size")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise BadInput(f"input {tensor.get('name')!r}: binary_data_size must be a whole "
                       f"number of bytes, not {size!r}")
    return size


def check_sizes(inputs: list[Any], tail: memoryview, header_given: bool) -> None:
    """Refuse binary sizes that do not add up to the bytes after the header."""
    sizes = [binary_size(t) for t in inputs if isinstance(t, dict)]
    total = sum(s for s in sizes if s is not None)
    if total and not header_given:
        raise BadInput("binary_data_size needs the Inference-Header-Content-Length header "
                       "(the length of the JSON part of the body)")
    if total != len(tail):
        raise BadInput(f"the inputs' binary_data_size add up to {total:,} bytes but "
                       f"{len(tail):,} bytes follow the inference header")


def tensor_from_bytes(name: str, data: memoryview, datatype: str, shape: list[int]
                      ) -> np.ndarray:
    """A binary input as an array of its shape, refusing a size that is not shape x dtype."""
    dtype = np.dtype(DTYPES[datatype])
    need = int(np.prod(shape)) * dtype.itemsize
    if len(data) != need:
        raise BadInput(f"input {name!r}: binary_data_size is {len(data):,} bytes but shape "
                       f"{shape} of {datatype} needs {need:,}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def wants_binary(request: dict[str, Any], output: dict[str, Any] | None) -> bool:
    """Whether an output goes back as binary: its own "binary_data", else the request's
    "binary_data_output", else JSON."""
    def flag(params: Any, key: str) -> bool | None:
        if not isinstance(params, dict) or key not in params:
            return None
        value = params[key]
        if not isinstance(value, bool):
            raise BadInput(f'"{key}" must be true or false, not {value!r}')
        return value

    own = flag(output.get("parameters"), "binary_data") if output else None
    if own is not None:
        return own
    return bool(flag(request.get("parameters"), "binary_data_output"))


def encode_response(header: dict[str, Any], blobs: list[bytes]) -> tuple[bytes, int | None]:
    """The response body and its JSON header's length (None: no binary part, plain JSON)."""
    head = json.dumps(header, separators=(",", ":")).encode()
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)
