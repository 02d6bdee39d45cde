"""Roles enforced in the engine and the CLI (issue 19): students see and change only their
own jobs and datasets; instructors see everything and may cancel or delete any job, lock
datasets; nobody acts for another user."""

from __future__ import annotations

import io

import pytest

from engine.cli.main import main as cli
from engine.hosting import access, accounts
from engine.jobs import api
from engine.state import store
from testkit.accounts import PASSWORDS, job_row, make_class


@pytest.fixture(autouse=True)
def setting(monkeypatch, tmp_path):
    monkeypatch.setenv(accounts.SCRYPT_N_ENV, "1024")
    monkeypatch.delenv("STUDIO_INSTRUCTORS", raising=False)
    monkeypatch.delenv("STUDIO_USER", raising=False)
    monkeypatch.delenv("STUDIO_TOKEN", raising=False)
    monkeypatch.setenv("STUDIO_TOKEN_FILE", str(tmp_path / "tokens.json"))


def test_students_see_and_change_only_their_own_jobs(home):
    make_class(home)
    a, b, host = job_row(home, "alice"), job_row(home, "bob"), job_row(home, None)
    assert {j["id"] for j in api.list_jobs(viewer="alice")} == {a, host}
    assert {j["id"] for j in api.list_jobs(viewer="teacher")} == {a, b, host}
    assert api.list_jobs(owner="bob", viewer="alice") == []
    with pytest.raises(PermissionError, match="belongs to another user"):
        api.get_job(b, viewer="alice")
    for action in (api.cancel, api.delete):
        with pytest.raises(PermissionError, match=f"belongs to bob; only its owner may "
                                                  f"{action.__name__} it"):
            action(b, user="alice")
    with pytest.raises(PermissionError, match="belongs to the host"):
        api.cancel(host, user="alice")
    with pytest.raises(PermissionError):
        api.clone(b, owner="alice", start_scheduler=False)
    assert api.cancel(a, user="alice") == "cancelled"
    assert api.cancel(b, user="teacher") == "cancelled"  # instructors may cancel any job
    api.delete(b, user="teacher")
    assert {j["id"] for j in api.list_jobs(viewer="teacher")} == {a, host}
    with store.opened(home) as conn:
        events = [e["message"] for e in store.get_events(conn, a)]
    assert "by alice" in events


def test_laptop_mode_keeps_everyone_visible(home):
    a, b = job_row(home, "alice"), job_row(home, "bob")
    assert {j["id"] for j in api.list_jobs(viewer="alice")} == {a, b}
    assert api.get_job(b, viewer="alice")["id"] == b
    with pytest.raises(PermissionError, match="belongs to bob"):
        api.cancel(b, user="alice")


def _dataset(home, name, owner):
    with store.opened(home) as conn:
        store.add_dataset(conn, f"ds-{name}", name, owner, "test", {"classes": ["0", "1"]})


def test_dataset_visibility_sharing_and_lock(home):
    make_class(home)
    for name, owner in (("alices", "alice"), ("bobs", "bob"), ("class", "teacher"),
                        ("hosts", None)):
        _dataset(home, name, owner)
    from engine.datasets import delete_dataset, list_datasets

    assert {d["name"] for d in list_datasets(viewer="alice")} == {"alices", "class", "hosts"}
    assert len(list_datasets(viewer="teacher")) == 4
    with pytest.raises(PermissionError, match="only the owner of 'bobs' or an instructor"):
        access.set_dataset_flags("bobs", user="alice", shared=True, home=home)
    access.set_dataset_flags("bobs", user="bob", shared=True, home=home)
    assert "bobs" in {d["name"] for d in list_datasets(viewer="alice")}
    with pytest.raises(PermissionError, match="only an instructor may lock"):
        access.set_dataset_flags("bobs", user="bob", locked=True, home=home)
    access.set_dataset_flags("class", user="teacher", locked=True, home=home)
    with pytest.raises(PermissionError, match="locked read-only"):
        delete_dataset("class", user="teacher")
    with pytest.raises(PermissionError, match="belongs to bob"):
        delete_dataset("bobs", user="alice")
    delete_dataset("bobs", user="teacher")  # an instructor may
    assert "bobs" not in {d["name"] for d in list_datasets(viewer="teacher")}


def _login(monkeypatch, capsys, name: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS[name] + "\n"))
    assert cli(["login", name, "--password-stdin"]) == 0
    assert f"signed in as {name}" in capsys.readouterr().out


def test_cli_acts_as_the_signed_in_user_only(home, monkeypatch, capsys, tmp_path):
    make_class(home)
    b = job_row(home, "bob")
    assert cli(["jobs", "cancel", b]) == 2  # accounts exist: no token, no action
    assert "sign in first with `studio login NAME`" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong-password\n"))
    assert cli(["login", "alice", "--password-stdin"]) == 2
    assert "wrong username or password" in capsys.readouterr().err

    _login(monkeypatch, capsys, "alice")
    assert cli(["whoami"]) == 0 and "alice (student)" in capsys.readouterr().out
    tokens = tmp_path / "tokens.json"
    assert (tokens.stat().st_mode & 0o777) == 0o600
    assert PASSWORDS["alice"] not in tokens.read_text()
    assert cli(["jobs", "cancel", b]) == 2
    assert "belongs to bob; only its owner may cancel it" in capsys.readouterr().err
    assert cli(["jobs", "cancel", b, "--user", "bob"]) == 2  # no acting as another
    assert "acting as bob is not allowed" in capsys.readouterr().err
    assert cli(["jobs", "show", b]) == 2
    assert "belongs to another user" in capsys.readouterr().err
    assert cli(["jobs", "list", "--json"]) == 0
    assert b not in capsys.readouterr().out
    assert cli(["accounts", "reset", "bob"]) == 2
    assert "only an instructor may reset passwords" in capsys.readouterr().err

    _login(monkeypatch, capsys, "teacher")
    assert cli(["jobs", "list", "--json"]) == 0 and b in capsys.readouterr().out
    assert cli(["jobs", "cancel", b]) == 0 and "cancelled" in capsys.readouterr().out
    assert cli(["accounts", "revoke", "alice"]) == 0
    assert cli(["logout"]) == 0 and "signed out" in capsys.readouterr().out
    assert cli(["jobs", "list"]) == 2  # signed out: refused again


def test_cli_accounts_import_and_reset(home, monkeypatch, capsys, tmp_path):
    make_class(home)
    _login(monkeypatch, capsys, "teacher")
    bad = tmp_path / "bad.csv"
    bad.write_text("carol\ncarol\n")
    assert cli(["accounts", "import", str(bad)]) == 2
    assert "line 2: 'carol' appears twice" in capsys.readouterr().err
    good = tmp_path / "class.csv"
    good.write_text("name\ncarol\ndave\n")
    out = tmp_path / "passwords.csv"
    assert cli(["accounts", "import", str(good), "--out", str(out)]) == 0
    assert (out.stat().st_mode & 0o777) == 0o600
    rows = out.read_text().splitlines()
    assert rows[0] == "name,role,initial password" and rows[1].startswith("carol,student,")
    assert cli(["accounts", "reset", "carol"]) == 0
    new = capsys.readouterr().out.strip().rsplit(" ", 1)[1]
    assert accounts.authenticate("carol", new, home=home)
    assert cli(["accounts", "list", "--json"]) == 0 and '"carol"' in capsys.readouterr().out


def test_private_boards_are_seen_by_their_owner_and_instructors_only(home):
    from engine.evaluation import probes

    make_class(home)
    private = probes.create_board("bob's own", "bob", shared=False)
    assert private in {b["id"] for b in probes.list_boards("teacher")}
    assert private not in {b["id"] for b in probes.list_boards("alice")}
    assert probes.get_board(private, "teacher")["owner"] == "bob"
    with pytest.raises(PermissionError, match="private to its owner"):
        probes.get_board(private, "alice")
    with pytest.raises(PermissionError, match="only the board's owner can delete it"):
        probes.delete_board(private, "teacher")  # seeing is not changing
