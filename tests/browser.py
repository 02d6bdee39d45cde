"""A real dashboard in headless Chromium: start `streamlit run` on a free port, drive it with
Playwright. Shared by the browser tests; they skip with the reason when Chromium is missing."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"


def need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("headless browser tests need Chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="browser tests need playwright")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dashboard(home: Path) -> Iterator[str]:
    """`streamlit run dashboard/app.py` on the workspace; yields its URL."""
    port = _free_port()
    env = {**os.environ, "STUDIO_HOME": str(home)}
    log = open(home / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless",
         "true", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
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
                                       + (home / "streamlit.log").read_text()[-2000:]) from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


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
            yield page
        finally:
            browser.close()


def sign_in(page, user: str = "alice"):
    """Sign in from the sidebar (one click) and wait for it; returns the sidebar locator."""
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_label("Username").fill(user)
    sidebar.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for()
    return sidebar


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
