"""The inference server's ASGI app (Starlette): KServe v2 / Triton HTTP protocol and /classify.

Routes
  GET  /v2/health/live, /v2/health/ready       liveness and readiness (no token needed)
  GET  /v2                                     server metadata
  GET  /v2/models/{name}[/versions/1]          model metadata: input/output names, shapes
  GET  /v2/models/{name}[/versions/1]/ready    model readiness
  POST /v2/models/{name}[/versions/1]/infer    tensor JSON in, logits out (normalized input);
                                               also binary tensor data (trt.serve.binary)
  POST /classify                               image files in (multipart, or one raw image
                                               body), label + confidence + top-k out
  GET  /stats                                  the dynamic batcher's counts

Every request of the v2 infer and /classify routes goes through one DynamicBatcher. Client
mistakes get a 4xx with {"error": "<one line>"}; an overloaded queue gets 503; nothing answers
with a traceback.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trt.serve import binary
from trt.serve.batcher import DynamicBatcher, QueueFull
from trt.serve.model import DEFAULT_MAX_PIXELS, BadInput, ServedModel

log = logging.getLogger("trt.serve")
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class ServeConfig:
    """The server's limits and batching; max_batch=1 turns dynamic batching off."""

    max_batch: int = 32
    max_delay_ms: float = 5.0
    max_queue: int = 1024            # images waiting for the model, all requests together
    max_body_bytes: int = 20 << 20   # one request's body
    max_images: int = 64             # images in one /classify request
    max_pixels: int = DEFAULT_MAX_PIXELS
    token: str | None = None         # bearer token; None = open

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_queue", "max_body_bytes", "max_images", "max_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be at least 1")
        if self.max_delay_ms < 0:
            raise ValueError("max queue delay must not be negative")

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "token"} | {
            "token_required": bool(self.token)}


def error(message: str, status: int) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "1"}
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadInput(f"request body of {int(declared):,} bytes is over the limit of "
                       f"{limit:,}", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadInput(f"request body is over the limit of {limit:,} bytes", status=413)
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # noqa: SLF001 - lets request.form() parse what was read here
    return body


def create_app(model: ServedModel, config: ServeConfig | None = None) -> Starlette:
    """The server for one model. The batcher starts and stops with the app (lifespan)."""
    config = config or ServeConfig()
    model.max_pixels = config.max_pixels
    batcher = DynamicBatcher(model.run, max_batch=config.max_batch,
                             max_delay_s=config.max_delay_ms / 1e3, max_queue=config.max_queue)

    def guarded(handler: Handler, auth: bool = True) -> Handler:
        async def wrapped(request: Request) -> Response:
            if auth and config.token and not _token_ok(request, config.token):
                return error("a valid bearer token is required (Authorization: Bearer ...)",
                             401)
            name = request.path_params.get("name")
            if name is not None and name != model.name:
                return error(f"unknown model {name!r}: this server serves {model.name!r}", 404)
            version = request.path_params.get("version")
            if version is not None and version != "1":
                return error(f"unknown version {version!r} of {model.name!r}: it has version 1",
                             404)
            try:
                return await handler(request)
            except BadInput as e:
                return error(str(e), e.status)
            except QueueFull as e:
                return error(str(e), 503)
        return wrapped

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"ready": True})

    async def server_metadata(request: Request) -> JSONResponse:
        return JSONResponse({"name": "digits-studio", "version": "1",
                             "extensions": ["classification", "binary_tensor_data"],
                             "models": [model.name],
                             "backend": model.describe_backend(),
                             "batching": config.public()})

    async def model_metadata(request: Request) -> JSONResponse:
        return JSONResponse(model.metadata())

    async def model_ready(request: Request) -> JSONResponse:
        return JSONResponse({"name": model.name, "ready": True})

    async def infer(request: Request) -> Response:
        body = await read_body(request, config.max_body_bytes)
        header_length = request.headers.get(binary.HEADER)
        data, tail = binary.split_request(body, header_length)
        rows, rid = model.v2_rows(data, tail, header_given=header_length is not None)
        if len(rows) > config.max_images:
            raise BadInput(f"batch of {len(rows)} is over the limit of {config.max_images} "
                           "per request", status=413)
        as_binary = model.v2_outputs(data)
        logits = await batcher.submit(rows)
        content, head = model.v2_response(logits, rid, as_binary)
        if head is None:
            return Response(content, media_type="application/json")
        return Response(content, media_type="application/octet-stream",
                        headers={"Inference-Header-Content-Length": str(head)})

    async def classify(request: Request) -> JSONResponse:
        body = await read_body(request, config.max_body_bytes)
        kind = request.headers.get("content-type", "")
        params: dict[str, str] = dict(request.query_params)
        files: list[tuple[str, bytes]] = []
        if kind.startswith("multipart/form-data"):
            try:
                form = await request.form(max_files=config.max_images + 1,
                                          max_fields=32)
            except HTTPException as e:
                raise BadInput(f"bad multipart form: {e.detail}") from None
            for key, value in form.multi_items():
                if isinstance(value, str):
                    params.setdefault(key, value)
                else:
                    files.append((value.filename or key, await value.read()))
        elif body:
            files.append(("body", body))
        if not files:
            raise BadInput("no image: send files as multipart/form-data (field 'file') or one "
                           "image as the request body")
        if len(files) > config.max_images:
            raise BadInput(f"{len(files)} images is over the limit of {config.max_images} per "
                           "request", status=413)
        top_k = _int_param(params, "top_k", 5)
        digit = _bool_param(params, "digit", model.default_digit())
        polarity = params.get("polarity", "auto")

        def prepare():
            images = [model.decode(data, name) for name, data in files]
            return model.prepare(images, digit=digit, polarity=polarity)

        rows = await run_in_threadpool(prepare)
        results = model.results(await batcher.submit(rows), top_k)
        for (name, _), r in zip(files, results, strict=True):
            r["image"] = name
        return JSONResponse({"model": model.name, "backend": model.backend,
                             "results": results})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"model": model.name, "backend": model.describe_backend(),
                             "config": config.public(), **batcher.stats.to_dict()})

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return error(str(exc.detail), exc.status_code)

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s: %s", request.method, request.url.path,
                  type(exc).__name__, exc)
        first = (str(exc).strip().splitlines() or [""])[0]
        return error(f"internal error: {type(exc).__name__}: {first}", 500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    v = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    routes = [
        Route("/v2/health/live", guarded(live, auth=False)),
        Route("/v2/health/ready", guarded(ready, auth=False)),
        Route("/v2", guarded(server_metadata)),
        Route("/stats", guarded(stats)),
        Route("/classify", guarded(classify), methods=["POST"]),
    ]
    for base in (v, versioned):
        routes += [Route(base, guarded(model_metadata)),
                   Route(f"{base}/ready", guarded(model_ready)),
                   Route(f"{base}/infer", guarded(infer), methods=["POST"])]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, Exception: internal_error})
    app.state.model = model
    app.state.batcher = batcher
    app.state.config = config
    return app


def _token_ok(request: Request, token: str) -> bool:
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              token.encode())


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise BadInput(f"{name} must be at least 1, not {value}")
    return value


def _bool_param(params: dict[str, str], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise BadInput(f"{name} must be true or false, not {raw!r}")
