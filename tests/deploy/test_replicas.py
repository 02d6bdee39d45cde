"""Several dashboard replicas behind a real reverse proxy (issue 28, item 3): `make replicas`'s
script (docker/replicas.sh) starts two Streamlit replicas behind Caddy with cookie affinity,
and a signed-in student stays on one replica, still signed in, across reloads."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard import session
from engine.hosting import accounts
from testkit.browser import browser_page, need_chromium

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser  # Chromium through the proxy


def _free_block(n: int) -> int:
    """A port p with p..p+n all free (the proxy's and its replicas')."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n >= 65535:
            continue
        try:
            for port in range(base, base + n + 1):
                with socket.socket() as t:
                    t.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no block of free ports")


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def replicas(home, tmp_path):
    if shutil.which("caddy") is None:
        pytest.skip("replicas need Caddy (apt-get install caddy; .ci/run installs it)")
    port = _free_block(2)
    env = {**os.environ, "REPLICAS": "2", "PORT": str(port), "PYTHON": sys.executable,
           "STUDIO_HOME": str(home), "STUDIO_LOG_DIR": str(tmp_path), "STUDIO_NO_SCHEDULER": "1"}
    proc = subprocess.Popen(["sh", str(ROOT / "docker" / "replicas.sh")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        health = [f"http://127.0.0.1:{port + i}/_stcore/health" for i in (0, 1, 2)]
        while not all(_up(u) for u in health):
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "replicas or proxy did not come up"
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _wait_for_cookie(page, name: str, timeout_s: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        if name in cookies:
            return cookies
        assert time.monotonic() < deadline, f"the browser never got the {name} cookie"
        page.wait_for_timeout(200)


def _replica(page) -> str:
    text = page.get_by_text(re.compile(r"Served by replica \d")).first.inner_text()
    return text.rsplit(" ", 1)[1]


def test_a_signed_in_student_stays_on_one_replica(replicas, home):
    need_chromium()
    accounts.create_account("teacher", "instructor", "a-long-teacher-pass", home=home)
    accounts.create_account("sam", "student", "sams-long-password", by="teacher", home=home)
    with browser_page() as page:
        page.goto(replicas)
        first = _replica(page)  # the page has run: a form filled earlier would be redrawn
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_label("Username").fill("sam")
        sidebar.get_by_label("Password", exact=True).fill("sams-long-password")
        sidebar.get_by_role("button", name="Sign in").click()
        page.get_by_text("Signed in as").wait_for()
        assert _replica(page) == first
        # The sign-in cookie is written by a script drawn after the sidebar: under load it lands
        # a moment after "Signed in as" shows, and a reload before it would sign the user out.
        cookies = _wait_for_cookie(page, session.COOKIES["user"])
        assert "studio_replica" in cookies  # the proxy's affinity cookie
        for _ in range(3):
            page.reload()
            page.get_by_text("Signed in as").wait_for()
            assert page.get_by_test_id("stSidebar").get_by_text("sam").count()
            assert _replica(page) == first
        # The affinity is the proxy's doing: a new browser without its cookie may be sent to
        # either replica, and each replica answers on its own.
        second = page.context.browser.new_context()
        try:
            other = second.new_page()
            other.goto(replicas)
            other.get_by_text(re.compile(r"Served by replica \d")).first.wait_for()
        finally:
            second.close()


def test_compose_runs_the_same_layout():
    """compose.yaml's replicas profile: one scheduler, dashboards that only serve, and Caddy
    with the same Caddyfile in front of each of them."""
    import yaml

    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    dashboards = sorted(name for name in services if name.startswith("dashboard-"))
    assert len(dashboards) >= 2
    assert services["scheduler"]["environment"]["STUDIO_ROLE"] == "scheduler"
    assert {services[d]["environment"]["STUDIO_ROLE"] for d in dashboards} == {"dashboard"}
    proxy = services["proxy"]
    assert "./docker/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert proxy["environment"]["STUDIO_UPSTREAMS"].split() == [f"{d}:8501" for d in dashboards]
    assert "lb_policy cookie" in (ROOT / "docker" / "Caddyfile").read_text()
