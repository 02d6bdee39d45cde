"""A real dashboard for headless Chromium: `streamlit run` on a free port of a workspace, the
browser's path and flags (shared by the browser tests and bench/page_latency.py), and the
browser tests' page helpers: a Playwright page, sign-in, screenshots."""

from __future__ import annotations

import io
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

import pytest

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
                     args: Sequence[str] = (), script_args: Sequence[str] = (), nice: int = 0
                     ) -> Iterator[tuple[str, subprocess.Popen]]:
    """`streamlit run script` (headless, a free local port, its output in log_path) once it
    answers its health check; yields (URL, process) and stops it after."""
    port = _free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [*(["nice", "-n", str(nice)] if nice else []), sys.executable, "-m", "streamlit",
         "run", str(script), "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1",
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


ARTIFACTS = ROOT / "test-artifacts"


def need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("headless browser tests need Chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="browser tests need playwright")


@contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # A context of its own, so a test can open a second tab (page.context.new_page())
            # that shares the cookies, as a user's browser does.
            context = browser.new_context(viewport={"width": width, "height": height})
            context.set_default_timeout(60_000)
            page = context.new_page()
            page.set_default_timeout(60_000)
            try:
                yield page
            except BaseException:
                shoot_all(browser, "failure")
                raise
        finally:
            browser.close()


def shoot_all(browser, prefix: str) -> None:
    """What every open page showed when a test failed, in test-artifacts/ (CI keeps none of
    a flaky failure otherwise)."""
    for c, context in enumerate(browser.contexts):
        for n, page in enumerate(context.pages):
            try:
                screenshot(page, f"{prefix}-{c}-{n}")
            except Exception:  # noqa: BLE001 - a page that cannot be drawn: keep the failure
                pass


def sign_in(page, user: str = "alice"):
    """Sign in from the sidebar (one click) and wait for it; returns the sidebar locator."""
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_label("Username").fill(user)
    sidebar.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for()
    return sidebar


def open_classify(page):
    """Sign in, open Classify and wait for its drawing canvas; returns the canvas that takes
    the mouse (Fabric.js draws on two stacked canvases, the upper one gets the events)."""
    sign_in(page).get_by_role("link", name="Classify").click()
    page.get_by_text("Draw something").wait_for()
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for()
    return canvas


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


DOC_SHOT_LIMIT = 300_000


def publish(shot: Path, name: str, limit: int = DOC_SHOT_LIMIT) -> Path | None:
    """With STUDIO_UPDATE_DOCS=1, copy a screenshot to docs/<name>.png for the README, shrunk
    until it is commit-sized; otherwise leave docs/ alone (a test run never dirties the repo).
    """
    if os.environ.get("STUDIO_UPDATE_DOCS") != "1":
        return None
    from PIL import Image

    dst = ROOT / "docs" / f"{name}.png"
    dst.parent.mkdir(exist_ok=True)
    im = Image.open(shot).convert("RGB")
    while True:
        buf = io.BytesIO()
        im.quantize(colors=128).save(buf, format="PNG", optimize=True)
        if buf.tell() < limit:
            dst.write_bytes(buf.getvalue())
            return dst
        im = im.resize((im.width * 3 // 4, im.height * 3 // 4), Image.Resampling.LANCZOS)
