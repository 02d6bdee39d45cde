"""The store's `opened` reuses an idle connection to the same database file, from any thread
of the process (Streamlit runs each page view in a new thread), and only an idle one: a
nested block, two threads at once, a recreated file and a left-open transaction each get
what a fresh connection would give."""

from __future__ import annotations

import threading

from engine.state import store
from engine.state.store.schema import db_path


def test_a_thread_reuses_its_idle_connection(home):
    with store.opened(home) as first:
        pass
    with store.opened(home) as again:
        assert again is first
        with store.opened(home) as nested:  # the outer one is busy: a connection of its own
            assert nested is not first


def test_the_next_thread_reuses_an_idle_connection_and_busy_ones_are_never_shared(home):
    with store.opened(home) as first:
        pass
    seen, counts = [], []

    def view() -> None:  # as a page view's thread would
        with store.opened(home) as conn:
            seen.append(conn)
            counts.append(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])

    thread = threading.Thread(target=view)
    thread.start()
    thread.join()
    assert seen == [first] and counts == [0]  # usable from the other thread

    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.opened(home) as conn:
            seen.append(conn)
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    with store.opened(home) as mine:  # the other thread's is busy: not handed out twice
        assert mine is not seen[-1]
    release.set()
    holder.join()


def test_a_recreated_database_gets_a_fresh_connection(home):
    with store.opened(home) as first:
        first.execute("INSERT INTO users (name, created) VALUES ('ann', 0)")
    for suffix in ("", "-wal", "-shm"):
        db_path(home).with_name(db_path(home).name + suffix).unlink(missing_ok=True)
    with store.opened(home) as conn:
        assert conn is not first
        assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0


def test_a_left_open_transaction_is_rolled_back_not_handed_on(home):
    with store.opened(home) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO users (name, created) VALUES ('bob', 0)")
    with store.opened(home) as again:
        assert not again.in_transaction
        assert again.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0


def test_a_block_that_raises_closes_its_connection(home):
    try:
        with store.opened(home) as broken:
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with store.opened(home) as conn:
        assert conn is not broken
