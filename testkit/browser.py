"""A real dashboard for headless Chromium: `streamlit run` on a free port of a workspace, and
the browser's path and flags. Shared by the browser tests and bench/page_latency.py."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dashboard(home: Path) -> Iterator[str]:
    """`streamlit run dashboard/app.py` on the workspace; yields its URL."""
    with streamlit_server(Path("dashboard/app.py"), ROOT, home / "streamlit.log",
                          env={"STUDIO_HOME": str(home)}) as (url, _):
        yield url


@contextmanager
def streamlit_server(script: Path, cwd: Path, log_path: Path, env: dict[str, str] | None = None,
                     args: Sequence[str] = (), script_args: Sequence[str] = ()
                     ) -> Iterator[tuple[str, subprocess.Popen]]:
    """`streamlit run script` (headless, a free local port, its output in log_path) once it
    answers its health check; yields (URL, process) and stops it after."""
    port = _free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless",
         "true", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", *args, "--", *script_args],
        cwd=cwd, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("streamlit did not start: "
                                       + log_path.read_text()[-2000:]) from None
                time.sleep(0.3)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
