"""Issue 9, items 5 and 11: sign-in limits, proxies, token and key edges, readiness.

Each test here failed before its fix (an outside probe found the defects):
the sign-in limiter could be side-stepped by spelling a name differently,
by a forged ``X-Forwarded-For``, by the password-change endpoint or by
cycling names; tokens outlived a disabled account or their own expiry, and
malformed ones gave 500; weak or undecodable signing keys were accepted; a
read-only database reported healthy; an admin key could revoke itself.
"""

from __future__ import annotations

import random
import secrets
import string
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import event
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from gis.access import SYSTEM, audit_log
from gis.access import accounts as acc
from gis.access.credentials import TokenSigner, check_signing_key
from gis.errors import AuthenticationError, ConflictError, InputError
from gis.repository import Database
from gis.settings import Settings, get_settings
from tests._client import PASSWORD, add_user, token_headers

WRONG = "wrong-password-guess"
TOKEN_URL = "/api/v1/auth/token"


def make_app(db: Database, **settings: Any) -> FastAPI:
    return create_app(Settings(database_url=db.url, load_sample_city=False, **settings), db=db)


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(make_app(db)) as test_client:
        yield test_client


def sign_in(client: TestClient, username: str, password: str, **headers: str) -> int:
    response = client.post(
        TOKEN_URL, data={"username": username, "password": password}, headers=headers
    )
    return response.status_code


def fullwidth(text: str) -> str:
    """Return the name as typed with a Chinese IME in full-width mode (ａｄｍｉｎ－３)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# -- item 5: the sign-in limiter --------------------------------------------


def test_every_spelling_of_a_name_shares_one_limit(client: TestClient, db: Database) -> None:
    name = add_user(db)
    assert [sign_in(client, name, WRONG) for _ in range(10)] == [401] * 10
    for spelling in (name, f" {name}", f"{name.upper()}\t", fullwidth(name), f"\u3000{name}"):
        assert sign_in(client, spelling, PASSWORD) == 429, spelling
    failed, _ = audit_log(db, action="auth.failed")
    assert {entry.actor for entry in failed} == {name}  # the normal form, not the spelling
    # Every spelling that reaches the account signs in as the account (one normal form).
    other = add_user(db)
    response = client.post(
        TOKEN_URL, data={"username": f" {fullwidth(other)} ", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    me = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.json()["name"] == other


def test_one_client_cycling_names_is_limited(db: Database) -> None:
    with TestClient(make_app(db, login_client_rate_per_minute=5)) as client:
        statuses = [sign_in(client, f"nobody-{i}", WRONG) for i in range(7)]
        assert statuses == [401] * 5 + [429] * 2
    # Successful sign-ins are not counted: an office behind one address is not locked out.
    name = add_user(db)
    with TestClient(make_app(db, login_client_rate_per_minute=3)) as client:
        assert [sign_in(client, name, PASSWORD) for _ in range(8)] == [200] * 8


def test_password_change_is_limited_like_sign_in(client: TestClient, db: Database) -> None:
    headers = token_headers(client, add_user(db))

    def change(current: str) -> int:
        body = {"current_password": current, "new_password": "a-brand-new-passphrase"}
        return client.post("/api/v1/auth/password", headers=headers, json=body).status_code

    # The sign-in above was the first attempt of the same budget (client and name).
    assert [change(WRONG) for _ in range(9)] == [401] * 9
    assert change(PASSWORD) == 429
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200  # still the old one


def test_concurrent_hash_checks_are_capped(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """One slot: while it is busy, a few requests wait briefly, the rest get 503 at once."""
    entered, release = threading.Event(), threading.Event()
    real_verify = acc.verify_password

    def slow_verify(digest: str, password: str) -> bool:
        entered.set()
        release.wait(30)
        return real_verify(digest, password)

    monkeypatch.setattr(acc, "verify_password", slow_verify)
    name = add_user(db)
    with TestClient(make_app(db, password_checks_concurrent=1)) as client:
        statuses: list[int] = []
        holder = threading.Thread(target=lambda: statuses.append(sign_in(client, name, PASSWORD)))
        holder.start()
        assert entered.wait(30)
        waiters = [
            threading.Thread(target=lambda i=i: statuses.append(sign_in(client, f"w{i}", WRONG)))
            for i in range(4)
        ]
        for waiter in waiters:
            waiter.start()
        time.sleep(0.5)  # the four take the waiting places
        started = time.monotonic()
        refused = client.post(TOKEN_URL, data={"username": "flood", "password": WRONG})
        assert time.monotonic() - started < 1.0  # not queued
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["content-type"].startswith("application/problem+json")
        release.set()
        for thread in (holder, *waiters):
            thread.join(30)
        assert statuses.count(200) == 1 and set(statuses) <= {200, 401, 503}


def test_served_configuration_ignores_a_forged_forwarded_for(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tongge serve`` trusts proxy headers only from TONGGE_TRUSTED_PROXIES."""
    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    name = add_user(db)
    for trusted, recorded in (("[]", "127.0.0.1"), ('["127.0.0.1"]', "203.0.113.7")):
        monkeypatch.setenv("TONGGE_TRUSTED_PROXIES", trusted)
        runs: list[dict[str, Any]] = []
        monkeypatch.setattr(
            uvicorn, "run", lambda app, runs=runs, **options: runs.append({"app": app, **options})
        )
        get_settings.cache_clear()
        try:
            served = CliRunner().invoke(cli, ["serve", "--port", "8123"])
            assert served.exit_code == 0, served.stderr
            config = uvicorn.Config(**runs[0])
            config.load()
            with TestClient(config.loaded_app, client=("127.0.0.1", 40000)) as client:
                before = audit_log(db, action="auth.failed")[1]
                forged = [
                    sign_in(client, name, WRONG, **{"X-Forwarded-For": f"203.0.113.{i}"})
                    for i in range(7, 19)
                ]
                newest = audit_log(db, action="auth.failed", limit=1)[0][0]
        finally:
            get_settings.cache_clear()
        if recorded == "127.0.0.1":
            assert newest.client == "127.0.0.1"  # the peer, not what it claims
            # One client however it names itself: the limit holds (a slow
            # machine may refill one attempt: 10 per minute is one per 6 s).
            assert forged[:10] == [401] * 10 and forged[-1] == 429
            assert audit_log(db, action="auth.failed")[1] - before in (10, 11)
            assert runs[0]["proxy_headers"] is False and not runs[0]["forwarded_allow_ips"]
        else:
            # A configured proxy is believed (and each forwarded client has its own limit).
            assert forged == [401] * 12
            assert audit_log(db, action="auth.failed", limit=1000)[0][11].client == recorded


# -- item 11: tokens and keys ------------------------------------------------


def test_disabling_a_user_ends_their_tokens_for_good(client: TestClient, db: Database) -> None:
    admin = token_headers(client, add_user(db))
    name = add_user(db)
    old = token_headers(client, name)
    assert client.get("/api/v1/auth/me", headers=old).status_code == 200
    for active in (False, True):
        patched = client.patch(
            f"/api/v1/admin/users/{name}", headers=admin, json={"active": active}
        )
        assert patched.status_code == 200, patched.text
        assert client.get("/api/v1/auth/me", headers=old).status_code == 401, active
    assert client.get("/api/v1/auth/me", headers=token_headers(client, name)).status_code == 200


def test_a_cached_token_is_refused_once_it_expires(client: TestClient, db: Database) -> None:
    name = add_user(db)
    version = acc.get_user(db, username=name).password_version
    now = int(time.time())
    claims = {"iss": "tongge", "sub": name, "ver": version, "iat": now, "exp": now + 2}
    token = jwt.encode(claims, _server_key(), algorithm="HS256")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200  # now cached
    time.sleep(max(0.0, now + 2.05 - time.time()))
    expired = client.get("/api/v1/auth/me", headers=headers)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


def _server_key() -> str:
    return Settings().secret_key.get_secret_value()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "odd",
    [
        {"ver": "abc"},
        {"ver": [1]},
        {"ver": None},
        {"ver": {"n": 1}},
        {"ver": 1.5},
        {"ver": True},
        {"sub": ""},
        {"sub": "a\x00b"},
        {"sub": "x" * 5000},
        {"sub": ["admin"]},
    ],
    ids=repr,
)
def test_a_signed_token_with_odd_claims_is_401(
    client: TestClient, db: Database, odd: dict[str, Any]
) -> None:
    name = add_user(db)
    now = int(time.time())
    claims = {"iss": "tongge", "sub": name, "ver": 1, "iat": now, "exp": now + 60, **odd}
    token = jwt.encode(claims, _server_key(), algorithm="HS256")
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text


def test_domain_refuses_odd_token_claims() -> None:
    key = secrets.token_urlsafe(48)
    signer = TokenSigner(key, ttl_seconds=60)
    good = signer.read(signer.issue(subject="li", version=7))
    assert good["sub"] == "li" and good["ver"] == 7
    for odd in ({"ver": "7"}, {"ver": 7.0}, {"sub": ""}, {"sub": "l\x00i"}):
        claims = {"iss": "tongge", "sub": "li", "ver": 7, "iat": 1, "exp": 2**40, **odd}
        with pytest.raises(AuthenticationError, match="not valid"):
            signer.read(jwt.encode(claims, key, algorithm="HS256"))


WEAK_KEYS = {
    "spaces": " " * 32,
    "one character": "k" * 40,
    "two characters": "ab" * 20,
    "a repeated pattern": "0123456789abcdef" * 2,
    "short": secrets.token_urlsafe(16)[:20],
    "random bytes": bytes(range(128, 176)).decode("utf-8", "surrogateescape"),
    "control characters": secrets.token_urlsafe(32) + "\n",
    "too few bits": "1234567890" * 3 + "98765",  # 35 decimal digits: 116 bits at most
}


@pytest.mark.parametrize("reason", WEAK_KEYS)
def test_weak_or_undecodable_signing_keys_are_refused(reason: str) -> None:
    with pytest.raises(InputError, match="signing key") as raised:
        check_signing_key(WEAK_KEYS[reason])
    assert "\n" not in raised.value.message
    with pytest.raises(InputError):
        TokenSigner(WEAK_KEYS[reason], ttl_seconds=60)


def test_random_signing_keys_are_accepted() -> None:
    # Seeded draws shaped like the usual generators (the rule refuses about one
    # 32-hex-digit key in 400 000: a test drawing live keys would be flaky).
    rng = random.Random(20260101)
    hexdigits, urlsafe = "0123456789abcdef", string.ascii_letters + string.digits + "-_"
    for _ in range(500):
        for alphabet, length in ((urlsafe, 64), (hexdigits, 32), (hexdigits, 64), (urlsafe, 43)):
            # token_urlsafe(48) as scripts/dev.sh makes; `openssl rand -hex 16` (128 bits)
            check_signing_key("".join(rng.choice(alphabet) for _ in range(length)))
    check_signing_key(secrets.token_urlsafe(48))
    check_signing_key(_server_key())


@pytest.mark.parametrize("reason", ["spaces", "random bytes"])
def test_serve_refuses_a_weak_key_in_one_line(
    reason: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    monkeypatch.setenv("TONGGE_SECRET_KEY", WEAK_KEYS[reason])
    runs: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: runs.append(kwargs))
    get_settings.cache_clear()
    try:
        refused = CliRunner().invoke(cli, ["serve", "--port", "8123"])
    finally:
        get_settings.cache_clear()
    assert refused.exit_code == 2 and not runs
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "signing key" in lines[0]
    assert "Traceback" not in refused.output
    with pytest.raises(InputError, match="signing key"):
        make_app(db, secret_key=SecretStr(WEAK_KEYS[reason]))


def test_admins_cannot_lock_themselves_out(client: TestClient, db: Database) -> None:
    name = add_user(db)
    add_user(db)  # not the last administrator: the refusal is about oneself
    me = token_headers(client, name)
    disabled = client.patch(f"/api/v1/admin/users/{name}", headers=me, json={"active": False})
    assert disabled.status_code == 409 and "yourself" in disabled.json()["detail"]
    assert client.get("/api/v1/auth/me", headers=me).status_code == 200
    key, token = acc.create_api_key(db, name="ops", role="admin", actor=SYSTEM)
    other, _ = acc.create_api_key(db, name="old", role="admin", actor=SYSTEM)
    as_key = {"X-API-Key": token}
    own = client.delete(f"/api/v1/admin/api-keys/{key.key_id}", headers=as_key)
    assert own.status_code == 409 and "itself" in own.json()["detail"]
    assert client.get("/api/v1/auth/me", headers=as_key).status_code == 200
    assert (
        client.delete(f"/api/v1/admin/api-keys/{other.key_id}", headers=as_key).status_code == 200
    )
    with pytest.raises(ConflictError):
        acc.update_user(
            db, username=name, active=False, actor=acc.get_user(db, username=name).principal
        )


# -- item 11: readiness -----------------------------------------------------


def read_only(db: Database) -> Database:
    """Another handle on ``db`` whose sessions may not write.

    SQLite: ``PRAGMA query_only`` (the same refusal as a read-only file; the
    suite runs as root, whom ``chmod 444`` does not stop). PostgreSQL: a
    session with ``default_transaction_read_only``, like a hot standby.
    """
    if db.dialect == "sqlite":
        handle = Database(db.url)

        @event.listens_for(handle.engine, "connect")
        def _query_only(connection: Any, _record: Any) -> None:
            connection.execute("PRAGMA query_only = ON")

        return handle
    separator = "&" if "?" in db.url else "?"
    return Database(f"{db.url}{separator}options=-c%20default_transaction_read_only%3Don")


def test_readiness_probes_a_write(db: Database) -> None:
    add_user(db)  # the database has something to rewrite
    with TestClient(make_app(db)) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
    frozen = read_only(db)
    try:
        with TestClient(make_app(frozen)) as client:
            assert client.get("/health").status_code == 200  # alive, cheap
            refused = client.get("/health/ready")
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["detail"].startswith("not ready")
            assert "refuses writes" in refused.json()["detail"]
    finally:
        frozen.dispose()
