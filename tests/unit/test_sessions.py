"""Signed, expiring session tokens and the password-guess limiter (engine/hosting/sessions.py)."""

from __future__ import annotations

import stat

from engine.hosting import sessions


def test_token_round_trip_and_key_file(home):
    token = sessions.issue("alice", home=home)
    claims = sessions.verify(token, home=home)
    assert claims is not None and claims.subject == "alice" and claims.kind == "user"
    key = home / sessions.KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32


def test_forged_expired_and_wrong_kind_tokens_are_refused(home, tmp_path):
    token = sessions.issue("alice", ttl_s=60, home=home, now=1000.0)
    payload, sig = token.split(".")
    forged = sessions.issue("mallory", home=home, now=1000.0).split(".")[0] + "." + sig
    assert sessions.verify(token, home=home, now=1059.0) is not None
    assert sessions.verify(token, home=home, now=1061.0) is None  # expired
    assert sessions.verify(forged, home=home, now=1000.0) is None  # signature of another
    assert sessions.verify(token, "gate", home=home, now=1000.0) is None
    other = tmp_path / "other"
    other.mkdir()
    assert sessions.verify(token, home=other, now=1000.0) is None  # another workspace's key
    for junk in (None, "", "x", "a.b.c", "%%%.%%%", "a" * 5000):
        assert sessions.verify(junk, home=home) is None


def test_limiter_backs_off_after_free_attempts():
    lim = sessions.AttemptLimiter(free=3, base_delay_s=2.0, max_delay_s=10.0)
    for i in range(3):
        assert lim.wait_s("ip", now=100.0 + i) == 0.0
        lim.failed("ip", now=100.0 + i)
    assert lim.wait_s("ip", now=102.5) == 1.5  # 2 s after the third failure
    assert lim.wait_s("ip", now=104.0) == 0.0
    lim.failed("ip", now=104.0)
    assert lim.wait_s("ip", now=104.0) == 4.0  # doubles
    for _ in range(10):
        lim.failed("ip", now=200.0)
    assert lim.wait_s("ip", now=200.0) == 10.0  # capped
    assert lim.wait_s("other", now=200.0) == 0.0  # per client
    lim.succeeded("ip")
    assert lim.wait_s("ip", now=200.0) == 0.0
