"""`python -m trt serve BUNDLE_OR_RUN`: the command line of the inference server."""

from __future__ import annotations

import argparse
import os
import socket

from trt.serve.app import ServeConfig
from trt.serve.model import BACKENDS

TOKEN_ENV = "STUDIO_SERVE_TOKEN"


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line error when the address is taken or wrong.

    The protocol is named: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on accepted
    sockets whose proto is IPPROTO_TCP, and proto 0 left every keep-alive response's body
    waiting ~40 ms for the client's delayed ACK (uvicorn writes headers and body apart)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def config_from(a: argparse.Namespace) -> ServeConfig:
    return ServeConfig(max_batch=1 if a.no_batching else a.max_batch,
                       max_delay_ms=a.max_delay_ms, max_queue=a.max_queue,
                       max_body_bytes=int(a.max_body_mb * (1 << 20)), max_images=a.max_images,
                       max_pixels=a.max_pixels, token=a.token or os.environ.get(TOKEN_ENV) or None)


def cmd_serve(a: argparse.Namespace) -> None:
    import uvicorn

    from trt.serve.app import create_app
    from trt.serve.model import ServedModel

    config = config_from(a)
    model = ServedModel(a.source, backend=a.backend, name=a.name, max_pixels=a.max_pixels,
                        device=a.device)
    sock = bind_socket(a.host, a.port)
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    batching = (f"dynamic batching up to {config.max_batch}, {config.max_delay_ms:g} ms delay"
                if config.max_batch > 1 else "batching off")
    print(f"serving {model.name} on http://{url_host}:{port} [{model.describe_backend()}; "
          f"{batching}{'; bearer token required' if config.token else ''}]", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(model, config), log_level=a.log_level,
                                           access_log=a.access_log, lifespan="on"))
    server.run(sockets=[sock])


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a bundle over HTTP (KServe v2 protocol + /classify)")
    p.add_argument("source", help="bundle .zip, or a run folder / checkpoint (its bundle is made "
                                  "when missing)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="auto: TensorRT when the bundle has an engine this machine runs, else "
                        "ONNX Runtime; pytorch: the run's checkpoint in PyTorch (a GPU without "
                        "TensorRT)")
    p.add_argument("--device", default="auto",
                   help="where the pytorch backend runs: auto (a GPU where CUDA is), cpu, "
                        "cuda:N")
    p.add_argument("--name", help="model name in the URLs (default: the run's folder name)")
    p.add_argument("--max-batch", type=int, default=32, help="largest dynamic batch")
    p.add_argument("--max-delay-ms", type=float, default=5.0,
                   help="longest a request waits for others to join its batch")
    p.add_argument("--no-batching", action="store_true", help="run each request on its own")
    p.add_argument("--max-queue", type=int, default=1024, help="images waiting, at most")
    p.add_argument("--max-body-mb", type=float, default=20.0, help="largest request body")
    p.add_argument("--max-images", type=int, default=64, help="images per request, at most")
    p.add_argument("--max-pixels", type=int, default=16_000_000,
                   help="width x height of one image, at most")
    p.add_argument("--token", help=f"require this bearer token (better: set ${TOKEN_ENV}, "
                                   "which other users cannot read in the process list)")
    p.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(fn=cmd_serve)


