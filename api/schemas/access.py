"""Request and response bodies of sign-in, accounts and the audit log."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gis.access import Role


class Token(BaseModel):
    """An access token (OAuth2 bearer)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")


class Me(BaseModel):
    """The caller: name, role, jurisdiction and what the role may do."""

    kind: str = Field(description="user or api_key")
    name: str
    role: Role
    role_title: str
    units: list[str] = Field(description="Jurisdiction as LAYER:CODE; empty = everything.")
    permissions: list[str]


class PasswordChange(BaseModel):
    """Change one's own password."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=12, max_length=256)


class UserOut(BaseModel):
    """A user (never the password)."""

    username: str
    display_name: str | None
    role: Role
    role_title: str
    units: list[str]
    active: bool
    created_at: str


class UserCreate(BaseModel):
    """A new user; without a password one is generated and returned once."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=2, max_length=64, examples=["wang.grid"])
    role: Role
    units: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Jurisdiction as LAYER:CODE (required except for admin).",
        examples=[["governance:350502001001001"]],
    )
    display_name: str | None = Field(default=None, max_length=100)
    password: str | None = Field(default=None, min_length=12, max_length=256)


class UserCreated(UserOut):
    """A created user and, when generated, the one-time password."""

    password: str | None = Field(default=None, description="Shown once; not stored.")


class UserPatch(BaseModel):
    """Changes to a user; omitted fields stay."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    units: list[str] | None = Field(default=None, max_length=200)
    display_name: str | None = Field(default=None, max_length=100)
    active: bool | None = None


class PasswordReset(BaseModel):
    """A password set by an administrator (generated when absent)."""

    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(default=None, min_length=12, max_length=256)


class OneTimePassword(BaseModel):
    """A generated password, shown once."""

    password: str | None


class ApiKeyOut(BaseModel):
    """An API key (never the secret)."""

    key_id: str
    name: str
    role: Role
    units: list[str]
    rate_per_minute: int
    created_at: str
    created_by: str
    revoked_at: str | None


class ApiKeyCreate(BaseModel):
    """A new API key for a system such as the 12345 hotline."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["12345 hotline"])
    role: Role = Role.DISPATCHER
    units: list[str] = Field(default_factory=list, max_length=200)
    rate_per_minute: int = Field(default=600, ge=1, le=10_000_000)


class ApiKeyCreated(ApiKeyOut):
    """A created key and its secret token, shown once."""

    token: str = Field(description="Send as 'X-API-Key'; shown once, not stored.")


class AuditEntryOut(BaseModel):
    """One audit entry."""

    id: int
    at: str
    actor: str
    actor_kind: str
    role: str | None
    action: str
    target: str
    detail: dict[str, Any]
    client: str | None


class AuditPage(BaseModel):
    """A page of the audit log, newest first."""

    entries: list[AuditEntryOut]
    total: int
