"""The pages, defined once so views can link to each other (st.switch_page, st.page_link).

Each page is a small script in dashboard/routes/ that renders its view from dashboard/views/:
file pages are what st.switch_page and Streamlit's AppTest navigate by. (Not "pages/": that
folder name would switch Streamlit to its older multipage mode.)"""

from __future__ import annotations

import streamlit as st

# name (script dashboard/routes/<name>.py) -> (title, url path)
PAGES: dict[str, tuple[str, str]] = {
    "home": ("Home", "home"),
    "lab": ("Lab", "lab"),
    "datasets": ("Datasets", "datasets"),
    "new_model": ("New model", "new-model"),
    "job": ("Job", "job"),
    "compare": ("Compare", "compare"),
    "study": ("Studies", "studies"),
    "classify": ("Classify", "classify"),
    "probes": ("Probe boards", "probes"),
    "deploy": ("Deploy", "deploy"),
    "instructor": ("Instructor", "instructor"),
    "accounts": ("Accounts", "accounts"),
}
INSTRUCTOR_PAGES = {"instructor", "accounts"}  # listed for instructors only (pages check again)
# The Job page's open tab: the key of its st.tabs in st.session_state and, bound, the URL's
# parameter (?tab=Evaluation): here, not in the view, so a load client can name it lightly.
JOB_TAB = "tab"


_SESSION_KEY = "nav_pages"


def page(name: str) -> st.Page:
    """The page `name`, made once per browser session: a st.Page resolves its script's path
    through the file system (12 pages and the links on a page were a tenth of a view's server
    CPU), and one session's runs never overlap, so it can hand the same object to each run."""
    made = st.session_state.setdefault(_SESSION_KEY, {})
    if name not in made:
        title, url = PAGES[name]
        made[name] = st.Page(f"routes/{name}.py", title=title, url_path=url,
                             default=name == "home")
    return made[name]


def go(name: str, **query: str) -> None:
    """Open another page, with query parameters (e.g. go("job", id=...))."""
    st.switch_page(page(name), query_params=query or None)
