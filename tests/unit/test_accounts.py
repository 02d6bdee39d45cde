"""Accounts (issue 19): scrypt hashes, no plain text anywhere, sign-up modes, CSV import,
revocable sessions, back-off, single sign-on mapping."""

from __future__ import annotations

import pytest

from engine.hosting import accounts, roles, sessions
from engine.hosting.accounts import AccountError, TooManyAttempts
from engine.state import store
from testkit.accounts import PASSWORDS, make_class


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch):
    """Cheaper scrypt for most tests (the stored parameters say which); the hashing test
    uses the default."""
    monkeypatch.setenv(accounts.SCRYPT_N_ENV, "1024")
    monkeypatch.delenv(accounts.SIGNUP_ENV, raising=False)
    monkeypatch.delenv("STUDIO_INSTRUCTORS", raising=False)


def test_hash_and_verify_with_the_default_cost(monkeypatch):
    monkeypatch.delenv(accounts.SCRYPT_N_ENV)
    stored = accounts.hash_password("correct horse battery")
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2 ** 15, 8, 1)
    assert "correct horse" not in stored
    assert accounts.verify_password("correct horse battery", stored)
    assert not accounts.verify_password("correct horse batterY", stored)
    assert not accounts.verify_password("", stored)
    again = accounts.hash_password("correct horse battery")
    assert again != stored and again.split("$")[4] != salt  # a fresh salt each time
    for junk in (None, "", "plain", "scrypt$x$8$1$aa$bb", "md5$1$2$3$4$5"):
        assert not accounts.verify_password("correct horse battery", junk)
    with pytest.raises(AccountError, match="at least 8"):
        accounts.hash_password("short")


def test_no_plain_text_password_in_the_database_or_the_workspace(home):
    make_class(home)
    secret = PASSWORDS["alice"]
    token = accounts.authenticate("alice", secret, home=home)
    with pytest.raises(AccountError):
        accounts.authenticate("alice", secret + "-wrong", home=home)
    new_secret = "Alice-Second-Secret-99"
    accounts.change_password("alice", secret, new_secret, home=home)
    assert secret not in token and new_secret not in token
    with store.opened(home) as conn:  # make sure the WAL's pages are in the file too
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        stored = conn.execute("SELECT password_hash FROM users WHERE name='alice'").fetchone()[0]
    assert stored.startswith("scrypt$")
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "studio.db" for p in files)
    for path in files:
        data = path.read_bytes()
        for word in (secret, new_secret, PASSWORDS["bob"], PASSWORDS["teacher"]):
            assert word.encode() not in data, f"{word!r} found in {path}"
            assert word.encode("utf-16-le") not in data


def test_sessions_expire_and_are_revoked(home):
    make_class(home)
    token = accounts.authenticate("alice", PASSWORDS["alice"], home=home)
    assert accounts.restore(token, home=home).subject == "alice"
    old = sessions.issue("alice", ttl_s=60, home=home, now=1000.0)
    assert accounts.restore(old, home=home) is None  # expired long ago
    accounts.revoke_sessions("alice", by="alice", home=home)  # sign out everywhere
    assert accounts.restore(token, home=home) is None
    token2 = accounts.authenticate("alice", PASSWORDS["alice"], home=home)
    assert accounts.restore(token2, home=home) is not None
    password = accounts.reset_password("alice", by="teacher", home=home)
    assert accounts.restore(token2, home=home) is None  # a reset revokes
    assert accounts.get_account("alice", home=home).must_change
    token3 = accounts.authenticate("alice", password, home=home)
    fresh = accounts.change_password("alice", password, "Alice-Third-Secret-1", home=home)
    assert accounts.restore(token3, home=home) is None  # other sessions signed out
    assert accounts.restore(fresh, home=home).subject == "alice"
    assert not accounts.get_account("alice", home=home).must_change
    with pytest.raises(PermissionError, match="only an instructor"):
        accounts.revoke_sessions("bob", by="alice", home=home)
    # A username-only token (laptop mode) of someone without an account no longer works.
    assert accounts.restore(sessions.issue("mallory", home=home), home=home) is None


def test_laptop_mode_tokens_need_no_account_until_accounts_exist(home, monkeypatch):
    assert not accounts.accounts_exist(home)
    token = sessions.issue("alice", home=home)
    assert accounts.restore(token, home=home).subject == "alice"
    make_class(home)  # accounts mode: the username-only token of the laptop days is void
    assert accounts.accounts_exist(home)
    assert accounts.restore(token, home=home) is None
    monkeypatch.setenv(accounts.SIGNUP_ENV, "open")
    zoe_then = sessions.issue("zoe", home=home)
    zoe_now = accounts.sign_up("zoe", "Zoe-Password-1", home=home)
    assert accounts.restore(zoe_then, home=home) is None
    assert accounts.restore(zoe_now, home=home).subject == "zoe"


def test_wrong_passwords_back_off_per_user_and_client(home):
    make_class(home)
    limiter = sessions.AttemptLimiter(free=2, base_delay_s=60)
    for _ in range(2):
        with pytest.raises(AccountError, match="wrong username or password"):
            accounts.authenticate("alice", "nope-nope-nope", client="1.2.3.4", limiter=limiter,
                                  home=home)
    with pytest.raises(AccountError):
        accounts.authenticate("alice", "nope-nope-nope", client="1.2.3.4", limiter=limiter,
                              home=home)
    with pytest.raises(TooManyAttempts, match="try again in"):  # even the right one waits
        accounts.authenticate("alice", PASSWORDS["alice"], client="1.2.3.4", limiter=limiter,
                              home=home)
    # Another client, and another user from the same client, are not held back.
    assert accounts.authenticate("alice", PASSWORDS["alice"], client="5.6.7.8",
                                 limiter=limiter, home=home)
    assert accounts.authenticate("bob", PASSWORDS["bob"], client="1.2.3.4", limiter=limiter,
                                 home=home)
    with pytest.raises(AccountError, match="wrong username or password"):  # same words
        accounts.authenticate("nobody", "whatever-it-is", home=home)


def test_csv_import_with_bad_rows_creates_nothing_and_names_each_row(home):
    make_class(home)
    bad = ("name,role,email\n"
           "carol\n"
           "dave,admin\n"
           "bad name!\n"
           "carol\n"
           "Alice\n"
           "erin,student,not-an-email\n"
           "frank,student,f@uni.edu,extra\n")
    result = accounts.import_csv(bad, by="teacher", home=home)
    assert result.created == []
    text = "\n".join(result.errors)
    assert "line 3: unknown role 'admin'" in text
    assert "line 4: 'bad name!'" in text
    assert "line 5: 'carol' appears twice" in text
    assert "line 6: an account named 'alice' already exists" in text
    assert "line 7: 'not-an-email' is not an email address" in text
    assert "line 8: 4 columns" in text
    assert accounts.get_account("carol", home=home) is None  # all or nothing
    assert accounts.import_csv("\n\n", by="teacher", home=home).errors == ["the CSV has no names"]
    with pytest.raises(PermissionError, match="only an instructor"):
        accounts.import_csv("zoe\n", by="alice", home=home)

    good = accounts.import_csv("carol\ndave,instructor,Dave@Uni.edu\n", by="teacher",
                               home=home)
    assert not good.errors and [c[:2] for c in good.created] == [("carol", "student"),
                                                                  ("dave", "instructor")]
    carol_pw = good.created[0][2]
    assert len(carol_pw) == 12 and accounts.authenticate("carol", carol_pw, home=home)
    assert accounts.get_account("carol", home=home).must_change
    assert roles.is_instructor("dave", home) and not roles.is_instructor("carol", home)
    assert "carol," in accounts.passwords_csv(good) and carol_pw in accounts.passwords_csv(good)


def test_first_accounts_need_the_instructor_own_password(home, monkeypatch):
    monkeypatch.setenv("STUDIO_INSTRUCTORS", "teacher")  # a laptop-mode instructor
    with pytest.raises(AccountError, match="set your own password first"):
        accounts.import_csv("alice\n", by="teacher", home=home)
    accounts.create_account("teacher", "instructor", "Teacher-Pass-1", by="teacher", home=home)
    assert accounts.import_csv("alice\n", by="teacher", home=home).created


def test_signup_modes(home, monkeypatch):
    make_class(home)
    with pytest.raises(AccountError, match="sign-up is closed"):
        accounts.sign_up("zoe", "Zoe-Password-1", home=home)
    monkeypatch.setenv(accounts.SIGNUP_ENV, "invite")
    with pytest.raises(AccountError, match="needs the code"):
        accounts.sign_up("zoe", "Zoe-Password-1", home=home)
    monkeypatch.setenv(accounts.INVITE_ENV, "class-2026")
    with pytest.raises(AccountError, match="invitation code is not right"):
        accounts.sign_up("zoe", "Zoe-Password-1", "class-2025", home=home)
    token = accounts.sign_up("zoe", "Zoe-Password-1", "class-2026", home=home)
    assert accounts.restore(token, home=home).subject == "zoe"
    assert roles.role_of("zoe", home) == roles.STUDENT
    monkeypatch.setenv(accounts.SIGNUP_ENV, "open")
    with pytest.raises(AccountError, match="is taken"):
        accounts.sign_up("alice", "Other-Password-1", home=home)
    with pytest.raises(AccountError, match="must not be the username"):
        accounts.sign_up("yannick12", "Yannick12", home=home)
    monkeypatch.setenv(accounts.SIGNUP_ENV, "sometimes")
    with pytest.raises(AccountError, match="is not one of open, invite, closed"):
        accounts.signup_mode()


def test_single_sign_on_maps_emails_onto_accounts(home, monkeypatch):
    make_class(home)
    accounts.import_csv("carol,student,carol@uni.edu\n", by="teacher", home=home)
    assert accounts.user_for_identity("Carol@Uni.edu", "Carol C.", home=home) == "carol"
    with pytest.raises(AccountError, match="no account here has the email"):
        accounts.user_for_identity("alice@elsewhere.org", home=home)
    with pytest.raises(AccountError, match="gave no email"):
        accounts.user_for_identity(None, home=home)
    monkeypatch.setenv(accounts.SIGNUP_ENV, "open")
    name = accounts.user_for_identity("alice@elsewhere.org", "Alice", home=home)
    assert name == "alice2" and roles.role_of(name, home) == roles.STUDENT  # alice is taken
    assert accounts.user_for_identity("alice@elsewhere.org", home=home) == "alice2"
    # An SSO user has no password, and yet their dashboard session holds.
    token = sessions.issue("alice2", home=home)
    assert accounts.restore(token, home=home).subject == "alice2"


def test_roles_are_set_by_instructors_only(home):
    make_class(home)
    with pytest.raises(PermissionError, match="only an instructor may set roles"):
        accounts.set_role("alice", "instructor", by="bob", home=home)
    accounts.set_role("alice", "instructor", by="teacher", home=home)
    assert roles.is_instructor("alice", home)
    with pytest.raises(AccountError, match="cannot make yourself a student"):
        accounts.set_role("teacher", "student", by="teacher", home=home)
    with pytest.raises(PermissionError, match="only an instructor may create accounts"):
        accounts.create_account("zoe", by="bob", home=home)
