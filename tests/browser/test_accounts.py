"""A class in real browsers (issue 19): the instructor creates two students from a CSV of names
on the Accounts page, both sign in with their passwords in browser contexts of their own, each
submits a job, each sees only their own, the instructor sees both, and the Instructor page's
leaderboard ranks them on the class's hidden board."""

from __future__ import annotations

import csv

import pytest

from engine.evaluation import probes
from engine.hosting import accounts, classroom
from engine.jobs import api
from testkit.browser import browser_page, dashboard, need_chromium, publish, screenshot
from testkit.digit_images import digit_photo

pytestmark = pytest.mark.browser
TEACHER_PASSWORD = "Teacher-Browser-77"


def password_sign_in(page, user: str, password: str):
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_label("Username").fill(user)
    sidebar.get_by_label("Password", exact=True).fill(password)
    sidebar.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for()
    return sidebar


def job_choices(page, url: str) -> list[str]:
    """The options of Home's job picker (the table is a canvas; the picker is in the DOM),
    opened afresh: a reload that must keep the user signed in."""
    page.goto(url)
    page.get_by_text("Signed in as").wait_for()
    picker = page.get_by_test_id("stSelectbox").filter(
        has=page.get_by_text("Job", exact=True)).get_by_role("combobox")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    option = page.get_by_role("option").first
    for _ in range(12):  # a click that lands while the page still redraws opens nothing
        picker.click()
        try:
            option.wait_for(timeout=5_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    options = page.get_by_role("option").all_inner_texts()
    assert options, "the Job picker never opened"
    page.keyboard.press("Escape")
    return options


def test_instructor_and_two_students_each_see_their_own(jobs_home, monkeypatch):
    need_chromium()
    monkeypatch.setenv(accounts.SCRYPT_N_ENV, "1024")  # the dashboard's process inherits it
    accounts.create_account("teacher", "instructor", TEACHER_PASSWORD, home=jobs_home)
    with dashboard(jobs_home) as url, browser_page() as page:
        page.goto(url)
        page.get_by_text("Sign in (sidebar) to continue").wait_for()
        sidebar = password_sign_in(page, "teacher", TEACHER_PASSWORD)
        sidebar.get_by_role("link", name="Accounts").click()
        page.get_by_label("…or paste the names").fill("alice\nbob")
        page.get_by_role("button", name="Create accounts").click()
        page.get_by_text("Created 2 account(s)").wait_for()
        with page.expect_download() as download:
            page.get_by_role("button", name="Download the passwords (CSV)").click()
        with open(download.value.path(), newline="") as f:
            passwords = {r["name"]: r["initial password"] for r in csv.DictReader(f)}
        assert set(passwords) == {"alice", "bob"}

        students = {}
        for name in ("alice", "bob"):
            context = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(60_000)
            student = context.new_page()
            student.goto(url)
            side = password_sign_in(student, name, passwords[name])
            student.get_by_text("choose your own").wait_for()  # an initial password
            side.get_by_role("link", name="New model").click()
            epochs = student.get_by_label("Epochs", exact=True)
            epochs.fill("1")
            epochs.press("Tab")
            job_name = student.get_by_label("Job name")
            job_name.fill(f"{name}-run")
            job_name.press("Tab")
            student.get_by_role("button", name="Submit").click()
            student.get_by_role("heading", name=f"{name}-run").wait_for(timeout=120_000)
            students[name] = student

        for name, other in (("alice", "bob"), ("bob", "alice")):
            choices = job_choices(students[name], url)
            assert any(c.startswith(f"{name}-run") for c in choices), choices
            assert not any(c.startswith(f"{other}-run") for c in choices), choices
        screenshot(students["alice"], "accounts-student")

        choices = job_choices(page, url)  # the instructor's session survives a reload
        assert any(c.startswith("alice-run") for c in choices), choices
        assert any(c.startswith("bob-run") for c in choices), choices
        screenshot(page, "accounts-instructor")

        # The instructor's view: the class's hidden board scores both students' jobs and the
        # leaderboard ranks them (its CSV, for grading).
        board = classroom.hidden_board("teacher")["id"]
        probes.add_probes(board, [(digit_photo(d, seed=7), str(d), f"{d}.png")
                                  for d in (1, 4, 7)], "auto", user="teacher")
        for job in api.list_jobs():
            if job["kind"] == "train":
                assert api.wait(job["id"], timeout=300)["status"] == "done"
        page.get_by_test_id("stSidebar").get_by_role("link", name="Instructor").click()
        page.get_by_role("tab", name="Leaderboard").click()
        page.get_by_role("button", name="Score the entries").click()
        with page.expect_download(timeout=180_000) as download:
            page.get_by_role("button", name="Download CSV for grading").click(timeout=180_000)
        with open(download.value.path(), newline="") as f:
            ranked = list(csv.DictReader(f))
        publish(screenshot(page, "instructor-leaderboard"), "instructor")
    assert sorted(r["student"] for r in ranked) == ["alice", "bob"]
    assert sorted(int(r["rank"]) for r in ranked) in ([1, 2], [1, 1])  # ties share a rank
    assert all(r["board_images"] == "3" for r in ranked)
    owners = {j["name"]: j["owner"] for j in api.list_jobs()}
    assert owners == {"alice-run": "alice", "bob-run": "bob"}
    # No password in plain text anywhere in the workspace: the database, its WAL, the
    # dashboard's log (streamlit.log), the jobs' logs and configs.
    files = [p for p in jobs_home.rglob("*") if p.is_file()]
    assert any(p.name == "streamlit.log" for p in files) and any(p.name == "studio.db"
                                                                 for p in files)
    for path in files:
        data = path.read_bytes()
        for word in (TEACHER_PASSWORD, *passwords.values()):
            assert word.encode() not in data, f"a password in plain text in {path}"
