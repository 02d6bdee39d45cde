"""A server for a run as a background process (what the Deploy page starts and stops).

start() launches `python -m trt serve RUN` in its own session, records it in
RUN/exports/serve.json (pid, URL, model name) with its output in serve.log, and waits until it
answers /v2/health/ready. status() reads the record back and drops it when the process is
gone; stop() ends the process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from engine.state.workspace import atomic_write_json
from trt import layout
from trt.serve.cli import TOKEN_ENV

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and b"trt" in cmdline and b"serve" in cmdline


def status(run: str | os.PathLike) -> dict[str, Any] | None:
    """The running server's record, or None (a stale record is removed)."""
    path = layout.serve_state_path(run)
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not _alive(int(info.get("pid", 0))):
        path.unlink(missing_ok=True)
        return None
    return info


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start(run: str | os.PathLike, port: int | None = None, host: str = "127.0.0.1",
          backend: str = "auto", token: str | None = None, max_batch: int = 32,
          max_delay_ms: float = 5.0, wait_s: float = 180.0) -> dict[str, Any]:
    """Start the server for `run` (or return the one running); raises RuntimeError with the
    server's own last words if it does not come up."""
    running = status(run)
    if running:
        return running
    layout.exports_dir(run).mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    env = dict(os.environ)
    env.pop(TOKEN_ENV, None)
    if token:
        env[TOKEN_ENV] = token
    cmd = [sys.executable, "-m", "trt", "serve", str(run), "--host", host, "--port", str(port),
           "--backend", backend, "--max-batch", str(max_batch), "--max-delay-ms",
           str(max_delay_ms)]
    log = layout.serve_log_path(run)
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text().strip().splitlines()[-3:]
            raise RuntimeError("the server stopped: " + (" / ".join(tail) or "no output"))
        if _ready(url):
            break
        time.sleep(0.3)
    else:
        _end(proc.pid)
        raise RuntimeError(f"the server did not answer on {url} within {wait_s:.0f} s")
    banner = log.read_text().splitlines()[0] if log.exists() else ""
    name = banner.split()[1] if banner.startswith("serving ") else "model"
    backend_words = banner.split("[", 1)[1].split(";")[0] if "[" in banner else backend
    info = {"pid": proc.pid, "url": url, "model": name, "backend": backend_words,
            "token_required": bool(token), "max_batch": max_batch,
            "max_delay_ms": max_delay_ms, "started": time.time(), "log": str(log)}
    atomic_write_json(layout.serve_state_path(run), info)
    return info


def _end(pid: int, wait_s: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)  # its own session: the server and nothing else
    except ProcessLookupError:
        return
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop(run: str | os.PathLike) -> bool:
    """Stop the run's server; False if none was running."""
    info = status(run)
    if info is None:
        return False
    _end(int(info["pid"]))
    layout.serve_state_path(run).unlink(missing_ok=True)
    return True


def curl_examples(info: dict[str, Any]) -> str:
    """Shell lines that call the running server."""
    auth = ' -H "Authorization: Bearer $STUDIO_SERVE_TOKEN"' if info.get("token_required") else ""
    url, name = info["url"], info["model"]
    return "\n".join([
        f"curl -s{auth} -F file=@digit.png '{url}/classify?top_k=3'",
        f"curl -s{auth} --data-binary @digit.png -H 'Content-Type: image/png' "
        f"'{url}/classify?digit=true'",
        f"curl -s{auth} {url}/v2/models/{name}",
    ])
