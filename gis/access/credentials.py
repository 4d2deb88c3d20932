"""Passwords, API key secrets and signed access tokens.

Passwords are hashed with Argon2id (``argon2-cffi`` defaults); API keys are
long random secrets, so a SHA-256 of the secret is enough to store and lets
every request be checked in microseconds; access tokens are HS256 JWTs that
expire and name the password version they were issued for, so that
changing a password or disabling a user ends every token.

Examples
--------
>>> digest = hash_password("correct horse battery")
>>> verify_password(digest, "correct horse battery"), verify_password(digest, "wrong")
(True, False)
>>> key = new_api_key()
>>> parse_api_key(key.token) == (key.key_id, key.secret)
True
>>> signer = TokenSigner(secrets.token_urlsafe(48), ttl_seconds=60)
>>> signer.read(signer.issue(subject="wang", version=1))["sub"]
'wang'
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gis.errors import AuthenticationError, InputError, UnavailableError

__all__ = [
    "ApiKeySecret",
    "PasswordChecks",
    "TokenSigner",
    "check_password_policy",
    "check_signing_key",
    "generate_password",
    "hash_password",
    "hash_secret",
    "new_api_key",
    "parse_api_key",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 12
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_BITS = 128
MIN_SECRET_KEY_DISTINCT = 8
# Alphabets a random key is usually drawn from, smallest first: a key counts
# log2(size) bits per character of the smallest one holding all its characters.
_KEY_ALPHABETS = (
    (frozenset(string.digits), 10),
    (frozenset(string.hexdigits.lower()), 16),
    (frozenset(string.hexdigits.upper()), 16),
    (frozenset(string.ascii_letters + string.digits + "-_+/="), 64),
    (frozenset(string.printable) - frozenset(string.whitespace), 94),
)
_KEY_HINT = "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
_KEY_PREFIX = "tg"
_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """Return the Argon2id hash of ``password``."""
    return _HASHER.hash(password)


def verify_password(digest: str, password: str) -> bool:
    """Whether ``password`` matches ``digest`` (never raises on a mismatch)."""
    try:
        return _HASHER.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False


class PasswordChecks:
    """A cap on concurrent password hash checks: a few run, a few wait briefly, the rest fail.

    One Argon2id check costs about 0.1-0.2 s of a core and 64 MiB; a flood of
    sign-ins with random names (each one checked, so that timing does not tell
    names apart) would otherwise take every core and hundreds of MiB. Beyond
    ``concurrent`` running and ``waiting`` waiting checks, or after
    ``wait_seconds`` of waiting, :class:`~gis.errors.UnavailableError` (with
    ``retry_after``) is raised at once instead of queueing without bound.

    Examples
    --------
    >>> checks = PasswordChecks(1, waiting=0)
    >>> with checks.slot():
    ...     with checks.slot():
    ...         pass
    Traceback (most recent call last):
    ...
    gis.errors.UnavailableError: too many sign-ins at once: retry in 1 s
    """

    def __init__(
        self, concurrent: int, *, waiting: int | None = None, wait_seconds: float = 2.0
    ) -> None:
        if concurrent < 1:
            raise InputError("at least one password check must be allowed at once")
        self._running = threading.BoundedSemaphore(concurrent)
        self._admitted = 0
        self._limit = concurrent + (4 * concurrent if waiting is None else waiting)
        self._wait_seconds = wait_seconds
        self._lock = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one check's place for the ``with`` block (blocking at most ``wait_seconds``)."""
        with self._lock:
            if self._admitted >= self._limit:
                raise _busy()
            self._admitted += 1
        try:
            if not self._running.acquire(timeout=self._wait_seconds):
                raise _busy()
            try:
                yield
            finally:
                self._running.release()
        finally:
            with self._lock:
                self._admitted -= 1


def _busy() -> UnavailableError:
    return UnavailableError("too many sign-ins at once: retry in 1 s", retry_after=1)


def generate_password() -> str:
    """Return a random 24-character password (shown once, never stored)."""
    return secrets.token_urlsafe(18)


def check_password_policy(password: str, *, username: str) -> None:
    """Refuse passwords that are short, repetitive or contain the user name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if len(password) > 256:
        raise InputError("password must have at most 256 characters", field="password")
    if len(set(password)) < 5:
        raise InputError("password must use at least 5 different characters", field="password")
    if len(username) >= 3 and username.lower() in password.lower():
        raise InputError("password must not contain the user name", field="password")


@dataclass(frozen=True)
class ApiKeySecret:
    """A new API key: ``token`` is what the client sends, shown once."""

    key_id: str
    secret: str

    @property
    def token(self) -> str:
        """The full key, ``tg_<key_id>_<secret>``."""
        return f"{_KEY_PREFIX}_{self.key_id}_{self.secret}"


def new_api_key() -> ApiKeySecret:
    """Return a new random key id and secret."""
    return ApiKeySecret(key_id=secrets.token_hex(6), secret=secrets.token_urlsafe(32))


def parse_api_key(token: str) -> tuple[str, str] | None:
    """Split ``tg_<key_id>_<secret>`` into id and secret; None when it is not one."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != _KEY_PREFIX or len(key_id) != 12 or not secret:
        return None
    return key_id, secret


def hash_secret(secret: str) -> str:
    """Return the SHA-256 hex digest stored for an API key secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    """Compare two digests in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())


def check_signing_key(secret: str) -> None:
    """Refuse a token signing key that is undecodable, unprintable or guessable.

    The rule: UTF-8 text of printable characters without white space (an
    environment variable holding random bytes arrives as undecodable
    surrogates and would fail every sign-in later), at least
    ``MIN_SECRET_KEY_LENGTH`` characters, at least
    ``MIN_SECRET_KEY_DISTINCT`` different ones, not one short piece repeated,
    and an estimated ``MIN_SECRET_KEY_BITS`` bits: length × log2 of the
    smallest usual alphabet holding every character (digits 10, hex 16,
    base64/URL-safe 64, printable ASCII 94; other characters count as 94).
    ``secrets.token_urlsafe(48)`` gives 384 bits, ``openssl rand -hex 16`` 128
    (about one such key in 400 000 has fewer than 8 different characters and
    is refused: make another).

    Raises
    ------
    InputError
        With a one-line message naming what is wrong (never the key itself).

    Examples
    --------
    >>> check_signing_key(secrets.token_urlsafe(48))
    >>> check_signing_key(" " * 32)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gis.errors.InputError: the token signing key must be printable characters without white...
    """

    def refuse(problem: str) -> InputError:
        return InputError(f"the token signing key {problem}: {_KEY_HINT}", field="secret_key")

    try:
        secret.encode("utf-8")
    except UnicodeEncodeError:
        raise refuse("is not UTF-8 text (random bytes?)") from None
    if not secret.isprintable() or any(c.isspace() for c in secret):
        raise refuse("must be printable characters without white space")
    if len(secret) < MIN_SECRET_KEY_LENGTH:
        raise refuse(f"must have at least {MIN_SECRET_KEY_LENGTH} characters")
    if len(set(secret)) < MIN_SECRET_KEY_DISTINCT:
        raise refuse(f"must use at least {MIN_SECRET_KEY_DISTINCT} different characters")
    if secret in (secret + secret)[1:-1]:
        raise refuse("must not repeat a shorter piece")
    used = set(secret)
    size = next((n for alphabet, n in _KEY_ALPHABETS if used <= alphabet), 94)
    bits = len(secret) * math.log2(size)
    if bits < MIN_SECRET_KEY_BITS:
        raise refuse(f"is too guessable (about {bits:.0f} bits, {MIN_SECRET_KEY_BITS} needed)")


class TokenSigner:
    """Issues and checks signed, expiring access tokens (JWT, HS256).

    Parameters
    ----------
    secret : str
        The signing key, from the environment (``TONGGE_SECRET_KEY``); see
        :func:`check_signing_key`.
    ttl_seconds : int
        How long a token is valid.
    """

    algorithm = "HS256"
    issuer = "tongge"

    def __init__(self, secret: str, *, ttl_seconds: int) -> None:
        check_signing_key(secret)
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(self, *, subject: str, version: int) -> str:
        """Return a token for user ``subject`` at password ``version``."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "ver": version,
            "iat": now,
            "exp": now + self.ttl_seconds,
        }
        return jwt.encode(claims, self._secret, algorithm=self.algorithm)

    def read(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token; AuthenticationError otherwise."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "ver", "iss"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise AuthenticationError("the access token has expired: sign in again") from error
        except jwt.InvalidTokenError as error:
            raise AuthenticationError("the access token is not valid") from error
        # Well signed is not well formed (the key may have signed odd claims, or leaked):
        # what a token names must be what issue() writes, or it is not valid (not a 500).
        subject, version = claims["sub"], claims["ver"]
        if not (
            isinstance(subject, str)
            and 0 < len(subject) <= 64
            and subject.isprintable()
            and type(version) is int
            and type(claims["exp"]) is int
        ):
            raise AuthenticationError("the access token is not valid")
        return claims
