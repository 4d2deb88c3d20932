"""Who is calling: bearer tokens and API keys, rate limits, the per-endpoint guard.

Every route of the API passes :func:`guard` (an application-wide
dependency): it authenticates the caller, applies the rate limit and checks
the role against :data:`api.permissions.ENDPOINTS`. Routes read the caller
with :func:`current_principal` and their jurisdiction with :func:`current_jurisdiction`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import Request

from api.permissions import KEY_PARAMETER, PUBLIC, permission_for
from gis.access import Jurisdiction, JurisdictionResolver, Principal
from gis.access.accounts import (
    MAX_USERNAME_LENGTH,
    authenticate_api_key,
    generation,
    normalise_username,
    principal_for_user,
)
from gis.access.credentials import PasswordChecks, TokenSigner, parse_api_key
from gis.errors import AuthenticationError, RateLimitedError
from gis.repository import Database
from gis.settings import Settings

__all__ = [
    "Authenticator",
    "RateLimiter",
    "Security",
    "current_jurisdiction",
    "current_principal",
    "guard",
]

_CACHE_SECONDS = 5.0


class Authenticator:
    """Turns request credentials into a principal; caches answers for a few seconds.

    Changes made in this process (disable a user, revoke a key) take effect
    at once; changes made by another process within ``_CACHE_SECONDS``. A
    token's answer is never cached beyond the token's own expiry.
    """

    def __init__(self, db: Database, signer: TokenSigner) -> None:
        self.db = db
        self.signer = signer
        self._lock = threading.Lock()
        self._cache: dict[bytes, tuple[float, int, Principal]] = {}

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Return the caller named by ``Authorization: Bearer`` or ``X-API-Key``."""
        credential = headers.get("x-api-key")
        if credential is None:
            scheme, _, credential = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise AuthenticationError(
                    "sign in first: send 'Authorization: Bearer <token>' or 'X-API-Key: <key>'"
                )
        credential = credential.strip()
        digest = hashlib.sha256(credential.encode()).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[0] > now and hit[1] == generation():
            return hit[2]
        principal, lifetime = self._verify(credential)
        with self._lock:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[digest] = (now + min(_CACHE_SECONDS, lifetime), generation(), principal)
        return principal

    def _verify(self, credential: str) -> tuple[Principal, float]:
        # The principal and how long it may be reused (seconds).
        if parse_api_key(credential) is not None:
            return authenticate_api_key(self.db, token=credential), _CACHE_SECONDS
        claims = self.signer.read(credential)
        principal = principal_for_user(self.db, username=claims["sub"], version=claims["ver"])
        # A token is valid while time.time() < exp (as PyJWT checks it).
        return principal, claims["exp"] - time.time()


class RateLimiter:
    """Token buckets per caller: ``rate`` requests per minute, bursts up to ``rate``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, *, rate: int) -> None:
        """Spend one request of ``key``'s budget; RateLimitedError when it is empty."""
        self.take_all([(key, rate)])

    def take_all(self, budgets: Sequence[tuple[str, int]]) -> None:
        """Spend one request of every ``(key, rate)`` budget, or of none when one is empty.

        All or nothing, so that a request refused by one limit does not drain
        the others.
        """
        now = time.monotonic()
        with self._lock:
            levels = [(key, rate, self._level(key, rate, now)) for key, rate in budgets]
            empty = [(key, rate, tokens) for key, rate, tokens in levels if tokens < 1.0]
            if empty:
                for key, _, tokens in empty:
                    self._buckets[key] = (tokens, now)
                wait, rate = max((math.ceil((1.0 - t) * 60.0 / r), r) for _, r, t in empty)
                raise RateLimitedError(
                    f"more than {rate} requests per minute: retry in {wait} s", retry_after=wait
                )
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            for key, _, tokens in levels:
                self._buckets[key] = (tokens - 1.0, now)

    def give_back(self, key: str, *, rate: int) -> None:
        """Return one request to ``key``'s budget (e.g. a sign-in that succeeded)."""
        now = time.monotonic()
        with self._lock:
            if key in self._buckets:
                self._buckets[key] = (min(float(rate), self._level(key, rate, now) + 1.0), now)

    def _level(self, key: str, rate: int, now: float) -> float:
        tokens, last = self._buckets.get(key, (float(rate), now))
        return min(float(rate), tokens + (now - last) * rate / 60.0)


@dataclass
class Security:
    """Everything the guard needs, kept on ``app.state.security``."""

    authenticator: Authenticator
    limiter: RateLimiter
    jurisdictions: JurisdictionResolver
    settings: Settings
    password_checks: PasswordChecks

    def admit(self, headers: Mapping[str, str]) -> Principal:
        """Authenticate and spend one request of the caller's rate budget."""
        principal = self.authenticator.authenticate(headers)
        rate = principal.rate_per_minute or self.settings.rate_limit_per_minute
        self.limiter.take(principal.actor, rate=rate)
        return principal

    @contextmanager
    def password_attempt(self, *, client: str | None, username: str) -> Iterator[None]:
        """Admit one password check (sign-in or password change) by ``client`` for ``username``.

        Two budgets, spent together before the (costly) check: attempts per
        client and name (``login_rate_per_minute``: slows guessing one
        password without locking the user out for everyone), and failed
        attempts per client across every name
        (``login_client_rate_per_minute``: one client cycling names). A
        ``with`` block that ends without an error was a success, and gives the
        per-client attempt back, so that many people signing in behind one
        address are not limited. The name is keyed in its
        :func:`~gis.access.accounts.normalise_username` form, like the lookup;
        names too long to exist share one key.
        """
        settings = self.settings
        name = normalise_username(username)[: MAX_USERNAME_LENGTH + 1]
        per_client = (f"login-client:{client}", settings.login_client_rate_per_minute)
        per_name = (f"login:{client}:{name}", settings.login_rate_per_minute)
        self.limiter.take_all([per_client, per_name])
        yield
        self.limiter.give_back(per_client[0], rate=per_client[1])


def guard(request: Request) -> None:
    """Application-wide dependency: authenticate, rate-limit, check the role."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    if (request.method, path) in PUBLIC or (request.method, path) in KEY_PARAMETER:
        return  # KEY_PARAMETER routes authenticate themselves (the key may be a parameter)
    security: Security = request.app.state.security
    principal = security.admit(request.headers)
    permission_for(request.method, path).check(principal)
    request.state.principal = dataclasses.replace(principal, client=client_address(request))


def current_principal(request: Request) -> Principal:
    """Return the authenticated caller (set by :func:`guard`)."""
    principal: Principal = request.state.principal
    return principal


def current_jurisdiction(request: Request) -> Jurisdiction:
    """Return the caller's jurisdiction."""
    security: Security = request.app.state.security
    return security.jurisdictions.jurisdiction(current_principal(request))


def client_address(request: Request) -> str | None:
    """Return the peer address, for the audit log."""
    return request.client.host if request.client else None
