"""Sign-in (OAuth2 password flow), the caller's own account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import get_db
from api.schemas_access import Me, PasswordChange, Token
from api.security import Security, client_address, current_principal
from gis.access import ROLE_PERMISSIONS, Principal
from gis.access.accounts import authenticate_password, reset_password
from gis.errors import ForbiddenError
from gis.repository import Database

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/token",
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


@router.get("/me", summary="Who am I 当前用户", response_model=Me)
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
    "/password",
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
    reset_password(db, username=principal.name, password=body.new_password, actor=principal)
