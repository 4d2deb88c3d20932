"""Users and API keys: create, change, disable, authenticate.

Every change is audited in the same transaction. Passwords and key secrets
are returned exactly once, when made, and only their hashes are stored.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gis.access.audit import append_audit
from gis.access.credentials import (
    PasswordChecks,
    check_password_policy,
    generate_password,
    hash_password,
    hash_secret,
    new_api_key,
    parse_api_key,
    secrets_equal,
    verify_password,
)
from gis.access.principal import Principal
from gis.access.roles import Role
from gis.errors import AuthenticationError, ConflictError, InputError, NotFoundError
from gis.repository import Database, Repository
from gis.times import isoformat_utc

__all__ = [
    "ApiKey",
    "User",
    "authenticate_api_key",
    "authenticate_password",
    "create_api_key",
    "create_user",
    "ensure_admin",
    "get_user",
    "list_api_keys",
    "list_users",
    "normalise_username",
    "principal_for_user",
    "reset_password",
    "revoke_api_key",
    "update_user",
]

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MAX_USERNAME_LENGTH = 64
DEFAULT_KEY_RATE = 600  # requests per minute
MAX_KEY_RATE = 10_000_000  # a bulk geocoding system on its own hardware
_WRONG_LOGIN = "wrong user name or password"
_BAD_KEY = "the API key is not valid"


@dataclass(frozen=True)
class User:
    """A user as shown to administrators (no password hash)."""

    username: str
    display_name: str | None
    role: Role
    units: tuple[str, ...]
    active: bool
    created_at: datetime
    password_version: int  # the token version: changes with the password and on disabling

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role.value,
            "role_title": self.role.label,
            "units": list(self.units),
            "active": self.active,
            "created_at": isoformat_utc(self.created_at),
        }

    @property
    def principal(self) -> Principal:
        """The caller this user becomes once signed in."""
        return Principal(kind="user", name=self.username, role=self.role, units=self.units)


@dataclass(frozen=True)
class ApiKey:
    """An API key as shown to administrators (no secret)."""

    key_id: str
    name: str
    role: Role
    units: tuple[str, ...]
    rate_per_minute: int
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "role": self.role.value,
            "units": list(self.units),
            "rate_per_minute": self.rate_per_minute,
            "created_at": isoformat_utc(self.created_at),
            "created_by": self.created_by,
            "revoked_at": isoformat_utc(self.revoked_at) if self.revoked_at else None,
        }

    @property
    def principal(self) -> Principal:
        """The caller this key authenticates as."""
        return Principal(
            kind="api_key",
            name=f"{self.name}#{self.key_id}",
            role=self.role,
            units=self.units,
            rate_per_minute=self.rate_per_minute,
        )


# -- users ------------------------------------------------------------------


def create_user(
    db: Database,
    *,
    username: str,
    role: Role | str,
    units: list[str] | tuple[str, ...] = (),
    display_name: str | None = None,
    password: str | None = None,
    actor: Principal,
) -> tuple[User, str | None]:
    """Create a user; return it and the generated password (None if one was given).

    Raises
    ------
    InputError
        Malformed name, unknown role, weak password, malformed unit reference.
    NotFoundError
        A unit of the jurisdiction does not exist.
    ConflictError
        The name is taken.
    """
    name = _username(username)
    role = Role.parse(role) if isinstance(role, str) else role
    generated = None
    if password is None:
        password = generated = generate_password()  # random: no policy to check
    else:
        check_password_policy(password, username=name)
    display = _display_name(display_name)
    digest = hash_password(password)
    with db.transaction() as repo:
        bound = _units(repo, role, units)
        if repo.access.user(username=name) is not None:
            raise ConflictError(f"user {name!r} exists", field="username")
        now = _now()
        row = repo.access.add_user(
            username=name,
            display_name=display,
            role=role.value,
            units=list(bound),
            password_hash=digest,
            active=1,
            created_at=now.replace(microsecond=0),
            password_changed_at=now,
        )
        append_audit(
            repo,
            actor=actor,
            action="user.create",
            target=f"user:{name}",
            detail={"role": role.value, "units": list(bound)},
        )
    return _user(row), generated


def update_user(
    db: Database,
    *,
    username: str,
    actor: Principal,
    role: Role | str | None = None,
    units: list[str] | tuple[str, ...] | None = None,
    display_name: str | None = None,
    active: bool | None = None,
) -> User:
    """Change a user's role, jurisdiction, name or whether they may sign in.

    Disabling a user ends their tokens for good (a new token version, as a
    password change does), so that enabling them again revives none.

    Raises
    ------
    ConflictError
        ``actor`` disables themselves, or the last active administrator would go.
    """
    changes: dict[str, Any] = {}
    with db.transaction() as repo:
        current = _user(_existing(repo, username))
        new_role = current.role
        if role is not None:
            new_role = Role.parse(role) if isinstance(role, str) else role
            changes["role"] = new_role.value
        if units is not None or role is not None:
            changes["units"] = list(
                _units(repo, new_role, current.units if units is None else units)
            )
        if display_name is not None:
            changes["display_name"] = _display_name(display_name)
        ends_tokens: dict[str, Any] = {}
        if active is not None:
            changes["active"] = int(active)
            if not active:
                if actor.kind == "user" and actor.name == current.username:
                    raise ConflictError(
                        "you cannot disable yourself: ask another administrator", field="active"
                    )
                if current.role is Role.ADMIN:
                    _keep_an_admin(repo, username)
                # A new token version: enabling the user again must not revive old tokens.
                ends_tokens["password_changed_at"] = _now()
        if new_role is not Role.ADMIN and current.role is Role.ADMIN:
            _keep_an_admin(repo, username)
        row = _existing(repo, username)
        if changes:
            stored = {**changes, **ends_tokens}
            row = repo.access.update_user(username=current.username, **stored) or row
            append_audit(
                repo,
                actor=actor,
                action="user.update",
                target=f"user:{current.username}",
                detail={k: v for k, v in changes.items() if k != "display_name"},
            )
    _bump()
    return _user(row)


def reset_password(
    db: Database, *, username: str, actor: Principal, password: str | None = None
) -> str | None:
    """Set a new password (generated when not given); every earlier token stops working."""
    generated = None
    if password is None:
        password = generated = generate_password()  # random: no policy to check
    else:
        check_password_policy(password, username=username)
    digest = hash_password(password)
    with db.transaction() as repo:
        current = _existing(repo, username)
        repo.access.update_user(
            username=current["username"], password_hash=digest, password_changed_at=_now()
        )
        append_audit(
            repo, actor=actor, action="user.password", target=f"user:{current['username']}"
        )
    _bump()
    return generated


def get_user(db: Database, *, username: str) -> User:
    """Return one user (NotFoundError when there is none)."""
    with db.reader() as repo:
        return _user(_existing(repo, username))


def list_users(db: Database) -> list[User]:
    """Return every user, by name."""
    with db.reader() as repo:
        return [_user(row) for row in repo.access.users()]


def ensure_admin(db: Database, *, username: str = "admin") -> str | None:
    """Create the first administrator when there is no user; return its one-time password."""
    with db.reader() as repo:
        if repo.access.count_users():
            return None
    system = Principal(kind="system", name="bootstrap", role=Role.ADMIN)
    _, password = create_user(db, username=username, role=Role.ADMIN, actor=system)
    return password


def authenticate_password(
    db: Database,
    *,
    username: str,
    password: str,
    client: str | None = None,
    checks: PasswordChecks | None = None,
) -> User:
    """Return the user whose name and password match; AuthenticationError otherwise.

    Failures are audited, and name the same cause whether the user exists or
    not, so that user names cannot be probed. ``username`` is looked up and
    audited in its :func:`normalise_username` form, the form rate limits key on.
    ``checks`` caps how many hash checks run at once (only the hash check
    holds a place, not the database work around it).
    """
    name = normalise_username(username)
    with db.reader() as repo:
        row = repo.access.user(username=name)
    user = _user(row) if row is not None else None
    # An unknown name costs a hash check too, so that timing does not tell names apart.
    digest = row["password_hash"] if row is not None else _dummy_hash()
    with checks.slot() if checks is not None else nullcontext():
        ok = verify_password(digest, password) and row is not None
    if not ok or user is None or not user.active:
        stranger = Principal(
            kind="anonymous", name=name[:MAX_USERNAME_LENGTH] or "-", role=Role.VIEWER
        )
        with db.transaction() as repo:
            append_audit(
                repo, actor=stranger, action="auth.failed", target="auth:token", client=client
            )
        raise AuthenticationError(_WRONG_LOGIN)
    with db.transaction() as repo:
        append_audit(
            repo, actor=user.principal, action="auth.login", target="auth:token", client=client
        )
    return user


def principal_for_user(db: Database, *, username: str, version: int) -> Principal:
    """Return the principal of a token's user, if it is still active and current."""
    with db.reader() as repo:
        row = repo.access.user(username=username)
    if row is None:
        raise AuthenticationError("the access token is not valid")
    user = _user(row)
    if not user.active:
        raise AuthenticationError("the user is disabled")
    if user.password_version != version:
        raise AuthenticationError(
            "the password has changed or the user was disabled since sign-in: sign in again"
        )
    return user.principal


# -- API keys ---------------------------------------------------------------


def create_api_key(
    db: Database,
    *,
    name: str,
    role: Role | str,
    units: list[str] | tuple[str, ...] = (),
    rate_per_minute: int = DEFAULT_KEY_RATE,
    actor: Principal,
) -> tuple[ApiKey, str]:
    """Create a key for a system; return it and the secret token (shown once)."""
    label = (name or "").strip()
    if not label or len(label) > 100:
        raise InputError("key name must have 1 to 100 characters", field="name")
    role = Role.parse(role) if isinstance(role, str) else role
    if not 1 <= rate_per_minute <= MAX_KEY_RATE:
        raise InputError(
            f"rate_per_minute must be between 1 and {MAX_KEY_RATE}", field="rate_per_minute"
        )
    secret = new_api_key()
    with db.transaction() as repo:
        bound = _units(repo, role, units)
        row = repo.access.add_api_key(
            key_id=secret.key_id,
            name=label,
            secret_hash=hash_secret(secret.secret),
            role=role.value,
            units=list(bound),
            rate_per_minute=rate_per_minute,
            created_at=_now().replace(microsecond=0),
            created_by=actor.actor,
        )
        append_audit(
            repo,
            actor=actor,
            action="api_key.create",
            target=f"api_key:{secret.key_id}",
            detail={"name": label, "role": role.value, "units": list(bound)},
        )
    return _key(row), secret.token


def revoke_api_key(db: Database, *, key_id: str, actor: Principal) -> ApiKey:
    """Revoke a key at once (kept for the audit trail); revoking it again changes nothing.

    Raises
    ------
    ConflictError
        ``actor`` is that very key: a system would lock itself out (an
        administrator or another key revokes it).
    """
    if actor.kind == "api_key" and actor.name.rpartition("#")[2] == key_id:
        raise ConflictError(
            "an API key cannot revoke itself: revoke it with another key or as a signed-in admin",
            field="key_id",
        )
    with db.transaction() as repo:
        found = repo.access.revoke_api_key(key_id=key_id, at=_now().replace(microsecond=0))
        if found is None:
            raise NotFoundError(f"no API key {key_id!r}", field="key_id")
        row, revoked = found
        if revoked:  # one audit entry per revocation, not per request
            append_audit(repo, actor=actor, action="api_key.revoke", target=f"api_key:{key_id}")
    if revoked:
        _bump()
    return _key(row)


def list_api_keys(db: Database) -> list[ApiKey]:
    """Return every key, newest first."""
    with db.reader() as repo:
        return [_key(row) for row in repo.access.api_keys()]


def authenticate_api_key(db: Database, *, token: str) -> Principal:
    """Return the principal of a valid, unrevoked key; AuthenticationError otherwise."""
    parts = parse_api_key(token)
    if parts is None:
        raise AuthenticationError(_BAD_KEY)
    key_id, secret = parts
    with db.reader() as repo:
        row = repo.access.api_key(key_id=key_id)
    if row is None or not secrets_equal(row["secret_hash"], hash_secret(secret)):
        raise AuthenticationError(_BAD_KEY)
    if row["revoked_at"] is not None:
        raise AuthenticationError("the API key has been revoked")
    return _key(row).principal


# -- change counter ---------------------------------------------------------

_generation = 0


def generation() -> int:
    """Return a number that grows whenever this process changes an account (for caches)."""
    return _generation


def _bump() -> None:
    global _generation
    _generation += 1


# -- helpers ----------------------------------------------------------------


@functools.cache
def _dummy_hash() -> str:
    return hash_password(generate_password())


def _now() -> datetime:
    return datetime.now(UTC)


def normalise_username(text: str) -> str:
    """Return the one form of a typed user name that lookups, limits and audit use.

    Unicode NFKC (full-width ``ｗａｎｇ`` typed with a Chinese input method
    is ``wang``), case-folded, surrounding white space removed (including the
    ideographic space U+3000). Stored names are already in this form (only
    ``a-z 0-9 . _ -``), so every spelling that reaches an account shares its
    rate limit: a limiter keyed on anything else could be side-stepped by
    spelling the name differently.

    Examples
    --------
    >>> normalise_username(" Wang.Grid ")
    'wang.grid'
    >>> normalise_username("\u3000ｗａｎｇ－ｇｒｉｄ")
    'wang-grid'
    """
    # NFKC again after case folding: folding can leave a string that NFKC changes.
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text or "").casefold())
    return folded.strip()


def _username(text: str) -> str:
    name = normalise_username(text)
    if not _USERNAME.match(name):
        raise InputError(
            f"user name {text!r} must be 2-64 characters: letters, digits, '.', '_' or '-'",
            field="username",
        )
    return name


def _display_name(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    if len(text) > 100:
        raise InputError("display name must have at most 100 characters", field="display_name")
    return text or None


def _units(repo: Repository, role: Role, units: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    # Check every "layer:code" names a current unit; only administrators may
    # have no units (their jurisdiction is everything).
    refs: list[str] = []
    for text in units:
        layer, sep, code = str(text).strip().partition(":")
        if not sep or not layer or not code:
            raise InputError(f"unit {text!r} must be written LAYER:CODE", field="units")
        refs.append(_area_ref(repo, layer, code))
    if not refs and role is not Role.ADMIN:
        raise InputError(
            f"a {role.value} needs at least one unit (LAYER:CODE) as jurisdiction", field="units"
        )
    return tuple(dict.fromkeys(refs))


def _area_ref(repo: Repository, layer: str, code: str) -> str:
    # A jurisdiction is an area: ``police:350502`` names the area of unit
    # 350502 of another layer (the district), whose overlapping police units
    # the caller then sees. Stored as the unit's own reference.
    if not repo.units_frame(layer=layer, codes=[code]).empty:
        return f"{layer}:{code}"
    others = sorted(set(repo.units_frame(codes=[code])["layer"]))
    if len(others) == 1:
        return f"{others[0]}:{code}"
    if others:
        choices = ", ".join(f"{name}:{code}" for name in others)
        raise InputError(
            f"no current unit {code!r} in layer {layer!r}, and several other layers have one:"
            f" name one of {choices}",
            field="units",
        )
    raise NotFoundError(
        f"no current unit {code!r} in layer {layer!r}, nor in any other layer", field="units"
    )


def _existing(repo: Repository, username: str) -> dict[str, Any]:
    row = repo.access.user(username=normalise_username(username))
    if row is None:
        raise NotFoundError(f"no user {username!r}", field="username")
    return row


def _keep_an_admin(repo: Repository, username: str) -> None:
    others = [
        u
        for u in repo.access.users()
        if u["role"] == Role.ADMIN.value and u["active"] and u["username"] != username
    ]
    if not others:
        raise ConflictError("this is the last active administrator", field="username")


def _user(row: dict[str, Any]) -> User:
    changed: datetime = row["password_changed_at"]
    return User(
        username=row["username"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        units=tuple(row["units"] or ()),
        active=bool(row["active"]),
        created_at=row["created_at"],
        password_version=int(changed.replace(tzinfo=UTC).timestamp() * 1_000_000),
    )


def _key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        role=Role(row["role"]),
        units=tuple(row["units"] or ()),
        rate_per_minute=int(row["rate_per_minute"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
        revoked_at=row["revoked_at"],
    )
