"""`studio login | logout | whoami`, `studio accounts ...` (instructors), `studio backup` and
`studio restore`.

Passwords are read with getpass (or one line of stdin with --password-stdin, for scripts),
never from the command line, where the process list would show them. Identity: engine/identity.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from engine.cli.common import CliError
from engine.hosting import access, accounts, roles
from engine.hosting.identity import cli_user, forget_token, save_token
from engine.state.backup import backup, restore


def register(sub: argparse._SubParsersAction) -> None:
    lg = sub.add_parser("login", help="sign in to a workspace that has accounts")
    lg.add_argument("name")
    _stdin(lg)
    lg.set_defaults(func=cmd_login)
    sub.add_parser("logout", help="forget this workspace's saved sign-in").set_defaults(
        func=cmd_logout)
    sub.add_parser("whoami", help="who the CLI acts as here").set_defaults(func=cmd_whoami)

    p = sub.add_parser("accounts", help="users, passwords, roles, sessions (instructors)")
    a = p.add_subparsers(dest="action", required=True)
    ls = a.add_parser("list", help="every user, role, and whether they have a password")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    ad = a.add_parser("add", help="create an account (prints a generated password once)")
    ad.add_argument("name")
    ad.add_argument("--role", default="student", choices=("student", "instructor"))
    ad.add_argument("--email", help="the address single sign-on maps onto this account")
    ad.add_argument("--set-password", action="store_true",
                    help="type the password instead of generating one")
    _stdin(ad)
    ad.set_defaults(func=cmd_add)
    im = a.add_parser("import", help="accounts from a CSV of names: name[,role[,email]]")
    im.add_argument("csv", help="the CSV file")
    im.add_argument("--out", help="write the names and initial passwords to this CSV "
                                  "(mode 0600) instead of printing them")
    im.set_defaults(func=cmd_import)
    pw = a.add_parser("passwd", help="change your own password")
    _stdin(pw, "current, then new password, one per line")
    pw.set_defaults(func=cmd_passwd)
    rs = a.add_parser("reset", help="reset a user's password (prints the new one once)")
    rs.add_argument("name")
    rs.set_defaults(func=cmd_reset)
    ro = a.add_parser("role", help="make a user an instructor or a student")
    ro.add_argument("name")
    ro.add_argument("role", choices=("student", "instructor"))
    ro.set_defaults(func=cmd_role)
    rv = a.add_parser("revoke", help="sign a user out everywhere")
    rv.add_argument("name")
    rv.set_defaults(func=cmd_revoke)
    a.add_parser("signup", help="the sign-up mode the host set (STUDIO_SIGNUP)").set_defaults(
        func=cmd_signup)

    bk = sub.add_parser("backup", help="a consistent copy of studio.db, safe while jobs run")
    bk.add_argument("out", help="a file (or a folder: studio-<time>.db inside it)")
    bk.add_argument("--overwrite", action="store_true")
    bk.add_argument("--json", action="store_true")
    bk.set_defaults(func=cmd_backup)
    rt = sub.add_parser("restore", help="replace studio.db by a backup (the current one is kept "
                                        "beside it)")
    rt.add_argument("backup")
    rt.add_argument("--force", action="store_true",
                    help="even while a job scheduler runs on this workspace")
    rt.add_argument("--json", action="store_true")
    rt.set_defaults(func=cmd_restore)


def _stdin(p: argparse.ArgumentParser, what: str = "the password") -> None:
    p.add_argument("--password-stdin", action="store_true",
                   help=f"read {what} from stdin (for scripts) instead of asking")


def _read_passwords(a: argparse.Namespace, prompts: list[str]) -> list[str]:
    if a.password_stdin:
        lines = sys.stdin.read().splitlines()
        if len(lines) < len(prompts):
            raise CliError(f"--password-stdin expects {len(prompts)} line(s) on stdin")
        return lines[:len(prompts)]
    return [getpass.getpass(f"{p}: ") for p in prompts]


def _me() -> str | None:
    return cli_user()


def cmd_login(a: argparse.Namespace) -> str:
    if not accounts.accounts_exist():
        raise CliError("this workspace has no accounts (laptop mode): the CLI acts as --user or "
                       "$STUDIO_USER without signing in")
    (password,) = _read_passwords(a, [f"password for {a.name}"])
    token = accounts.authenticate(a.name, password, client="cli")
    path = save_token(token)
    return f"signed in as {a.name} (token kept in {path})"


def cmd_logout(a: argparse.Namespace) -> str:
    return "signed out" if forget_token() else "not signed in here"


def cmd_whoami(a: argparse.Namespace) -> str:
    if not accounts.accounts_exist():
        me = _me()
        return f"{me or 'the local user'} (laptop mode: no accounts, nothing is checked)"
    me = _me()
    return f"{me} ({roles.role_of(me)})"


def cmd_list(a: argparse.Namespace) -> Any:
    me = _me()
    access.require_instructor(me, "only an instructor may list accounts")
    rows = [{"name": u.name, "role": u.role, "password": u.has_password, "email": u.email,
             "must_change": u.must_change} for u in accounts.list_accounts()]
    if a.json:
        return rows
    return "\n".join(f"{r['name']:24} {r['role']:10} "
                     f"{'password' if r['password'] else 'no password':12} {r['email'] or ''}"
                     for r in rows) or "no users"


def cmd_add(a: argparse.Namespace) -> str:
    password = _read_passwords(a, [f"password for {a.name}"])[0] if a.set_password else None
    made = accounts.create_account(a.name, a.role, password, email=a.email, by=_me())
    if a.set_password:
        return f"created {a.name} ({a.role})"
    return f"created {a.name} ({a.role}); initial password (shown once): {made}"


def cmd_import(a: argparse.Namespace) -> str:


    try:
        text = Path(a.csv).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read {a.csv}: {e}") from None
    result = accounts.import_csv(text, by=_me())
    if result.errors:
        raise CliError(f"no account created; fix these rows: {'; '.join(result.errors)}")
    listing = accounts.passwords_csv(result)
    if a.out:
        fd = os.open(a.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(listing)
        return f"created {len(result.created)} accounts; initial passwords in {a.out}"
    return f"created {len(result.created)} accounts (passwords shown once):\n{listing.rstrip()}"


def cmd_passwd(a: argparse.Namespace) -> str:
    me = _me()
    if me is None:
        raise CliError("this workspace has no accounts: there is no password to change")
    old, new = _read_passwords(a, ["current password", "new password"])
    save_token(accounts.change_password(me, old, new))
    return f"password changed for {me}; other sessions are signed out"


def cmd_reset(a: argparse.Namespace) -> str:
    password = accounts.reset_password(a.name, by=_me())
    return f"{a.name}'s new password (shown once, to change at first sign-in): {password}"


def cmd_role(a: argparse.Namespace) -> str:
    accounts.set_role(a.name, a.role, by=_me())
    return f"{a.name} is now {'an' if a.role == 'instructor' else 'a'} {a.role}"


def cmd_revoke(a: argparse.Namespace) -> str:
    accounts.revoke_sessions(a.name, by=_me())
    return f"{a.name} is signed out everywhere"


def cmd_signup(a: argparse.Namespace) -> dict:
    return accounts.describe()


def cmd_backup(a: argparse.Namespace) -> dict:
    return backup(a.out, overwrite=a.overwrite)


def cmd_restore(a: argparse.Namespace) -> dict:
    return restore(a.backup, force=a.force)
