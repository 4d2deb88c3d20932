"""Access feature: sign in, who am I, password; users, API keys and the audit log (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import get_db, page_size
from api.schemas.access import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    AuditPage,
    Me,
    OneTimePassword,
    PasswordChange,
    PasswordReset,
    Token,
    UserCreate,
    UserCreated,
    UserOut,
    UserPatch,
)
from api.security import Security, client_address, current_principal
from gis.access import ROLE_PERMISSIONS, Principal, audit_log
from gis.access import accounts as acc
from gis.access.accounts import authenticate_password
from gis.errors import ForbiddenError
from gis.repository import Database

router = APIRouter(prefix="/api/v1")


@router.post(
    "/auth/token",
    tags=["auth"],
    summary="Sign in 登录 (OAuth2 password flow)",
    response_model=Token,
    responses={
        401: {"description": "Wrong user name or password"},
        429: {"description": "Too many attempts"},
        503: {"description": "Too many sign-ins at once (see Retry-After)"},
    },
)
def token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: Database = Depends(get_db),
) -> Token:
    """Exchange a user name and password for a bearer token that expires."""
    security: Security = request.app.state.security
    client = client_address(request)
    with security.password_attempt(client=client, username=form.username):
        user = authenticate_password(
            db,
            username=form.username,
            password=form.password,
            client=client,
            checks=security.password_checks,
        )
    signer = security.authenticator.signer
    return Token(
        access_token=signer.issue(subject=user.username, version=user.password_version),
        expires_in=signer.ttl_seconds,
    )


@router.get("/auth/me", tags=["auth"], summary="Who am I 当前用户", response_model=Me)
def me(principal: Principal = Depends(current_principal)) -> Me:
    """Return the caller's name, role, jurisdiction and permissions."""
    return Me(
        kind=principal.kind,
        name=principal.name,
        role=principal.role,
        role_title=principal.role.label,
        units=list(principal.units),
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[principal.role]),
    )


@router.post(
    "/auth/password",
    tags=["auth"],
    summary="Change my password 修改密码",
    status_code=204,
    responses={
        400: {"description": "Weak password"},
        401: {"description": "Wrong password"},
        429: {"description": "Too many attempts"},
        503: {"description": "Too many password checks at once (see Retry-After)"},
    },
)
def change_password(
    body: PasswordChange,
    request: Request,
    principal: Principal = Depends(current_principal),
    db: Database = Depends(get_db),
) -> None:
    """Set a new password; every token issued before stops working."""
    if principal.kind != "user":
        raise ForbiddenError("API keys have no password")
    security: Security = request.app.state.security
    client = client_address(request)
    # The current password is a password guess like any sign-in: the same limits.
    with security.password_attempt(client=client, username=principal.name):
        authenticate_password(
            db,
            username=principal.name,
            password=body.current_password,
            client=client,
            checks=security.password_checks,
        )
    acc.reset_password(db, username=principal.name, password=body.new_password, actor=principal)


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such user or key"}}


@router.get(
    "/admin/users", tags=["admin"], summary="List users 用户列表", response_model=list[UserOut]
)
def list_users(db: Database = Depends(get_db)) -> list[dict[str, object]]:
    """Return every user with role and jurisdiction."""
    return [user.to_dict() for user in acc.list_users(db)]


@router.post(
    "/admin/users",
    tags=["admin"],
    summary="Create a user 新建用户",
    status_code=201,
    response_model=UserCreated,
    responses={409: {"description": "Name taken"}, 404: {"description": "Unknown unit"}},
)
def create_user(
    body: UserCreate,
    principal: Principal = Depends(current_principal),
    db: Database = Depends(get_db),
) -> dict[str, object]:
    """Create a user bound to units; a generated password is returned once."""
    user, password = acc.create_user(
        db,
        username=body.username,
        role=body.role,
        units=body.units,
        display_name=body.display_name,
        password=body.password,
        actor=principal,
    )
    return {**user.to_dict(), "password": password}


@router.get(
    "/admin/users/{username}",
    tags=["admin"],
    summary="One user 用户详情",
    response_model=UserOut,
    responses=_NOT_FOUND,
)
def get_user(username: str, db: Database = Depends(get_db)) -> dict[str, object]:
    """Return one user."""
    return acc.get_user(db, username=username).to_dict()


@router.patch(
    "/admin/users/{username}",
    tags=["admin"],
    summary="Change a user 修改用户",
    response_model=UserOut,
    responses={**_NOT_FOUND, 409: {"description": "Last administrator"}},
)
def update_user(
    username: str,
    body: UserPatch,
    principal: Principal = Depends(current_principal),
    db: Database = Depends(get_db),
) -> dict[str, object]:
    """Change role, jurisdiction, display name, or disable (``active: false``) a user."""
    return acc.update_user(
        db,
        username=username,
        actor=principal,
        role=body.role,
        units=body.units,
        display_name=body.display_name,
        active=body.active,
    ).to_dict()


@router.post(
    "/admin/users/{username}/password",
    tags=["admin"],
    summary="Reset a password 重置密码",
    response_model=OneTimePassword,
    responses=_NOT_FOUND,
)
def reset_password(
    username: str,
    body: PasswordReset,
    principal: Principal = Depends(current_principal),
    db: Database = Depends(get_db),
) -> OneTimePassword:
    """Set or generate a new password; the user's tokens stop working."""
    generated = acc.reset_password(db, username=username, password=body.password, actor=principal)
    return OneTimePassword(password=generated)


@router.get(
    "/admin/api-keys",
    tags=["admin"],
    summary="List API keys 接口密钥",
    response_model=list[ApiKeyOut],
)
def list_api_keys(db: Database = Depends(get_db)) -> list[dict[str, object]]:
    """Return every key (never the secrets), newest first."""
    return [key.to_dict() for key in acc.list_api_keys(db)]


@router.post(
    "/admin/api-keys",
    tags=["admin"],
    summary="Create an API key 新建接口密钥",
    status_code=201,
    response_model=ApiKeyCreated,
    responses={404: {"description": "Unknown unit"}},
)
def create_api_key(
    body: ApiKeyCreate,
    principal: Principal = Depends(current_principal),
    db: Database = Depends(get_db),
) -> dict[str, object]:
    """Create a key for a system (e.g. the 12345 hotline); the token is shown once."""
    key, token = acc.create_api_key(
        db,
        name=body.name,
        role=body.role,
        units=body.units,
        rate_per_minute=body.rate_per_minute,
        actor=principal,
    )
    return {**key.to_dict(), "token": token}


@router.delete(
    "/admin/api-keys/{key_id}",
    tags=["admin"],
    summary="Revoke an API key 吊销密钥",
    response_model=ApiKeyOut,
    responses=_NOT_FOUND,
)
def revoke_api_key(
    key_id: str,
    principal: Principal = Depends(current_principal),
    db: Database = Depends(get_db),
) -> dict[str, object]:
    """Revoke a key at once; it stays listed for the audit trail."""
    return acc.revoke_api_key(db, key_id=key_id, actor=principal).to_dict()


@router.get("/admin/audit", tags=["admin"], summary="Audit log 审计日志", response_model=AuditPage)
def audit(
    db: Database = Depends(get_db),
    actor: Annotated[str | None, Query(max_length=100, description="Exact actor name.")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="Action or family, e.g. households.")
    ] = None,
    target: Annotated[str | None, Query(max_length=300, description="Part of the target.")] = None,
    since: Annotated[str | None, Query(description="From this date/time (China time).")] = None,
    until: Annotated[str | None, Query(description="Before this date/time.")] = None,
    limit: int = Depends(page_size),
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, object]:
    """Return who read or exported personal data and who changed what, newest first."""
    entries, total = audit_log(
        db,
        actor=actor,
        action=action,
        target=target,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return {"entries": [e.to_dict() for e in entries], "total": total}
