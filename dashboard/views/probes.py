"""Probe boards: the same handful of real-world images scored by several experiments, as a
table of "predicted : confidence" per job, green where right and red where wrong (the DIGITS
lab's comparison), with the score of each job at the foot."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import nav, session
from dashboard.views.probe_upload import bulk_add, thumbnail_uri
from dashboard.widgets import usable_jobs
from engine.evaluation import probes

RIGHT = "background-color: #d4edc9; color: #1d4d0f"
WRONG = "background-color: #f8d0cc; color: #6b1410"
MAX_DEFAULT_JOBS = 4
TABLE_ROW_PX = 35  # st.dataframe's row height: a table sized to show every row


def styled(score: probes.BoardScore, images: dict[int, bytes] | None = None) -> Any:
    """The table as a pandas Styler: a thumbnail per row (images: probe id -> PNG), green/red
    cells per job, no score row (the scores are drawn above the table, so they stay in view).
    """
    df = score.frame(foot=False)
    if images is not None:
        df.insert(0, "thumbnail", [thumbnail_uri(images[p["id"]]) if p["id"] in images
                                   else None for p in score.probes])
    flags = score.correct()

    def colour(column: pd.Series) -> list[str]:
        if column.name not in flags.columns:
            return [""] * len(column)
        return [RIGHT if flags.at[i, column.name] else WRONG for i in column.index]

    return df.style.apply(colour, axis=0)


def score_table(score: probes.BoardScore) -> pd.DataFrame:
    """One row: each job's "right/total (percent)" on the board."""
    cells = {}
    for j, column in enumerate(score.columns):
        right, total = score.score(j)
        cells[column] = f"{right}/{total} ({right / total:.0%})" if total else "—"
    return pd.DataFrame([cells], index=pd.Index(["score"], name=""))


def draw_comparison(score: probes.BoardScore, images: dict[int, bytes], csv_name: str,
                    key: str) -> None:
    """The score row (always in view), then the table with thumbnails, and a CSV download."""
    st.dataframe(score_table(score), width="stretch")
    st.caption(score.confidence_note())
    rows = len(score.probes)  # all shown, no inner scroll
    st.dataframe(styled(score, images), width="stretch", height=TABLE_ROW_PX * (rows + 1) + 3,
                 column_config={"thumbnail": st.column_config.ImageColumn("thumbnail",
                                                                          width="small"),
                                "image": st.column_config.TextColumn(pinned=True)})
    st.download_button("Download CSV", lambda: score.frame().to_csv(), file_name=csv_name,
                       mime="text/csv", key=key, on_click="ignore")


def _choose_board(user: str | None) -> dict[str, Any] | None:
    boards = probes.list_boards(user)
    if not boards:
        st.info("No probe boards yet. Draw or upload on the Classify page and add it to a "
                "board, or create one here.")
        return None
    ids = [b["id"] for b in boards]
    # The URL (?board=...: a reload, a shared link) wins, then the board just made.
    wanted = st.query_params.get("board")
    last = wanted if wanted in ids else st.session_state.get("probes_last_board")
    if wanted and wanted not in ids:
        st.warning(f"No board {wanted!r} that you can see; showing another one.")
    labels = {b["id"]: f"{b['name']} — {b['owner']}"
              + (" (the class's hidden board)" if b["hidden"] else " (shared)" if b["shared"]
                 else " (private)") + f", {b['probes']} images"
              for b in boards}
    chosen = st.selectbox("Board", ids, index=ids.index(last) if last in ids else 0,
                          format_func=labels.get, key=f"probes_board_{last}")
    st.session_state["probes_last_board"] = chosen
    if st.query_params.get("board") != chosen:
        st.query_params["board"] = chosen  # the page can be reloaded and shared as it is
    return next(b for b in boards if b["id"] == chosen)


def _create_form(user: str | None) -> None:
    if not user:
        return
    with st.expander("New board"), st.form("probes_new"):
        name = st.text_input("Name", key="probes_new_name")
        shared = st.checkbox("Shared (everyone can view it)", value=True, key="probes_new_shared")
        if st.form_submit_button("Create board"):
            try:
                st.session_state["probes_last_board"] = probes.create_board(name, user, shared)
                st.rerun()
            except (ValueError, PermissionError) as e:
                st.error(str(e))


def _comparison(board: dict[str, Any], user: str | None) -> None:
    done = usable_jobs()
    if not done:
        st.info("No finished jobs to score the board with yet.")
        return
    labels = {j.id: f"{j.name or j.id} ({j.id})" for j in done}
    picked = st.multiselect("Jobs to compare", list(labels), format_func=labels.get,
                            default=list(labels)[:MAX_DEFAULT_JOBS], key="probes_jobs")
    checkpoint = st.radio("Checkpoint", ["best", "last"], horizontal=True, key="probes_ckpt")
    if not picked:
        st.caption("Choose one or more jobs.")
        return
    try:
        score = probes.score_board(board["id"], picked, checkpoint, user)
    except (FileNotFoundError, KeyError, ValueError) as e:
        st.error(f"Could not score the board: {e}")
        return
    if not score.probes:
        st.info("This board has no images yet.")
        return
    images = {p["id"]: p["image"] for p in probes.list_probes(board["id"], user)}
    draw_comparison(score, images, f"{board['name']}.csv", "probes_csv")


def _thumbnails(board: dict[str, Any], user: str | None) -> None:
    items = probes.list_probes(board["id"], user)
    if not items:
        return
    mine = board["owner"] == user
    st.markdown("**Images** (as drawn or uploaded)")
    cols = st.columns(8)
    for k, p in enumerate(items):
        with cols[k % 8]:
            st.image(p["image"], width=80, caption=f"#{p['id']} · {p['label']}")
            if mine and st.button("Delete", key=f"probes_del_{p['id']}"):
                probes.delete_probe(p["id"], user)
                st.rerun()


def _owner_actions(board: dict[str, Any], user: str | None) -> None:
    if board["owner"] != user:
        st.caption(f"Shared by {board['owner']}: you can view it; only they can change it.")
        return
    c1, c2 = st.columns(2)
    if board["hidden"]:
        c1.caption("The class's hidden board: private to you; the Instructor page scores "
                   "every student's entry on it.")
        shared = board["shared"]
    else:
        shared = c1.toggle("Shared", value=board["shared"], key=f"probes_shared_{board['id']}")
    if shared != board["shared"]:
        probes.set_shared(board["id"], shared, user)
        st.rerun()
    confirm = st.session_state.get("probes_confirm_delete") == board["id"]
    if c2.button("Confirm delete board" if confirm else "Delete board",
                 type="primary" if confirm else "secondary", key="probes_delete_board"):
        if not confirm:
            st.session_state["probes_confirm_delete"] = board["id"]
            st.rerun()
        probes.delete_board(board["id"], user)
        st.session_state.pop("probes_confirm_delete", None)
        st.rerun()


def _upload(board: dict[str, Any], user: str | None) -> None:
    if not user or board["owner"] != user:
        return
    with st.container(border=True):
        st.markdown("**Add images**")
        bulk_add(board["id"], user, f"probes_bulk_{board['id']}")


def render() -> None:
    st.title("Probe boards")
    user = session.current_user()
    if not user:
        st.caption("Signed out: showing shared boards. Sign in to make your own.")
    board = _choose_board(user)
    _create_form(user)
    if board is None:
        st.page_link(nav.page("classify"), label="Classify an image")
        return
    _upload(board, user)
    _comparison(board, user)
    _thumbnails(board, user)
    _owner_actions(board, user)
