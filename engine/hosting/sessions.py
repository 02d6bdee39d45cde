"""Sessions that survive a reload: signed, expiring tokens, and a limit on password guesses.

A token says who (a subject) may do what (a kind: "user" for a signed-in user, "gate" for a
browser that gave the access password) until when. It is `payload.signature`, both base64url,
the signature an HMAC-SHA256 of the payload with a secret kept in the workspace
(`<home>/session.key`, made on first use, readable by its owner only): anyone can read a
token, nobody can forge or extend one without the workspace's key. Deleting the key signs
everybody out. Accounts with passwords (later) issue the same tokens after checking them.

No Streamlit here: dashboard/session.py keeps the token in a cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.state.workspace import studio_home

KEY_FILE = "session.key"
DEFAULT_TTL_S = 7 * 24 * 3600  # a week: a class, a lab, a few days of coming back
KINDS = ("user", "gate")


@dataclass(frozen=True)
class Claims:
    subject: str
    kind: str
    expires: float
    issued: float = 0.0  # when it was signed (0: a token from before revocation existed)


def _urlsafe_b64(data: bytes) -> str:
    """URL-safe base64 without padding, for tokens in cookies and URLs."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _urlsafe_unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_key(home: str | os.PathLike | None = None) -> bytes:
    """The workspace's signing key, created (32 random bytes, mode 0600) on first use."""
    path = Path(studio_home(home)) / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def _sign(key: bytes, payload: str) -> str:
    return _urlsafe_b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def issue(subject: str, kind: str = "user", ttl_s: float = DEFAULT_TTL_S, *,
          home: str | os.PathLike | None = None, now: float | None = None) -> str:
    """A token for `subject` of `kind`, valid for ttl_s seconds."""
    if kind not in KINDS:
        raise ValueError(f"unknown session kind {kind!r}; use one of {', '.join(KINDS)}")
    issued = time.time() if now is None else now
    expires = issued + ttl_s
    claims = {"sub": subject, "kind": kind, "exp": int(expires), "iat": issued}
    payload = _urlsafe_b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_sign(session_key(home), payload)}"


def verify(token: str | None, kind: str = "user", *, home: str | os.PathLike | None = None,
           now: float | None = None) -> Claims | None:
    """The token's claims if it is ours, of `kind` and unexpired; else None (never raises)."""
    if not token or token.count(".") != 1 or len(token) > 4096:
        return None
    payload, signature = token.split(".")
    if not hmac.compare_digest(_sign(session_key(home), payload), signature):
        return None
    try:
        data = json.loads(_urlsafe_unb64(payload))
        claims = Claims(str(data["sub"]), str(data["kind"]), float(data["exp"]),
                        float(data.get("iat", 0.0)))
    except (ValueError, KeyError, TypeError):
        return None
    if claims.kind != kind or claims.expires <= (time.time() if now is None else now):
        return None
    return claims


@dataclass
class AttemptLimiter:
    """Password guesses per client: after `free` failures in a row, each further attempt
    must wait base_delay_s, doubling per failure up to max_delay_s. A success clears it."""

    free: int = 5
    base_delay_s: float = 2.0
    max_delay_s: float = 300.0
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (n, last)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, key: str, now: float | None = None) -> float:
        """Seconds the client must still wait before its next attempt (0: it may try)."""
        now = time.time() if now is None else now
        with self._lock:
            n, last = self._failures.get(key, (0, 0.0))
        if n < self.free:
            return 0.0
        delay = min(self.max_delay_s, self.base_delay_s * 2 ** (n - self.free))
        return max(0.0, last + delay - now)

    def failed(self, key: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            n, _ = self._failures.get(key, (0, 0.0))
            self._failures[key] = (n + 1, now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
