"""Who a command-line call acts as.

Laptop mode (no accounts in the workspace): `--user`/`--owner`, else $STUDIO_USER, else
nobody in particular (the local caller, who may act on any job), as before.

Accounts mode: the CLI acts as the user signed in with `studio login NAME` (the password is
asked once; a signed, expiring session token is kept in ~/.config/digits-studio/tokens.json,
mode 0600, one per workspace) or as $STUDIO_TOKEN's user. Without a token it refuses;
`--user`/`--owner`/$STUDIO_USER may only name that same user (nobody acts as another).
`studio logout` forgets the token; an instructor's reset or "sign out everywhere" revokes it.

Whoever can write the workspace's files (the host's own account) can of course do anything
to them; the token model keeps users of the CLI on one machine from acting for each other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from engine.hosting import accounts
from engine.state.workspace import studio_home

Home = str | os.PathLike | None
USER_ENV, TOKEN_ENV, TOKEN_FILE_ENV = "STUDIO_USER", "STUDIO_TOKEN", "STUDIO_TOKEN_FILE"


def token_file() -> Path:
    if os.environ.get(TOKEN_FILE_ENV):
        return Path(os.environ[TOKEN_FILE_ENV])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "digits-studio" / "tokens.json"


def _key(home: Home) -> str:
    return str(Path(studio_home(home)).resolve())


def _tokens() -> dict[str, str]:
    try:
        data = json.loads(token_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_token(token: str, home: Home = None) -> Path:
    """Keep the token for this workspace (file mode 0600, written atomically)."""
    _write({**_tokens(), _key(home): token})
    return token_file()


def forget_token(home: Home = None) -> bool:
    data = _tokens()
    if data.pop(_key(home), None) is None:
        return False
    _write(data)
    return True


def _write(data: dict[str, str]) -> None:
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def signed_in_user(home: Home = None) -> str | None:
    """The user of $STUDIO_TOKEN or the saved token, when it still holds."""
    token = os.environ.get(TOKEN_ENV) or _tokens().get(_key(home))
    claims = accounts.restore(token, home=home)
    return claims.subject if claims else None


def cli_user(explicit: str | None = None, home: Home = None) -> str | None:
    """The user a command acts as (see the module's words); PermissionError when it may not."""
    asked = explicit if explicit is not None else os.environ.get(USER_ENV)
    asked = asked.strip() or None if isinstance(asked, str) else None
    if not accounts.accounts_exist(home):
        return asked
    user = signed_in_user(home)
    if user is None:
        raise PermissionError("this workspace has accounts: sign in first with "
                              "`studio login NAME` (or set STUDIO_TOKEN)")
    if asked is not None and asked != user:
        raise PermissionError(f"you are signed in as {user}; acting as {asked} is not allowed "
                              "(nobody acts for another user)")
    return user
