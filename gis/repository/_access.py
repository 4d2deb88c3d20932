"""Users, API keys and the audit log, inside one session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from gis.repository._dialect import bulk_insert
from gis.repository.models import ApiKeyRow, AuditRow, UserRow

_USER_FIELDS = (
    "id",
    "username",
    "display_name",
    "role",
    "units",
    "password_hash",
    "active",
    "created_at",
    "password_changed_at",
)
_KEY_FIELDS = (
    "id",
    "key_id",
    "name",
    "secret_hash",
    "role",
    "units",
    "rate_per_minute",
    "created_at",
    "created_by",
    "revoked_at",
)
_AUDIT_TABLE: Table = AuditRow.__table__  # type: ignore[assignment]
_INSERT_AUDIT = insert(_AUDIT_TABLE).returning(_AUDIT_TABLE.c.id)
_AUDIT_FIELDS = ("id", "at", "actor", "actor_kind", "role", "action", "target", "detail", "client")


class AccessStore:
    """Data access for accounts and audit; rows come back as plain dicts."""

    def __init__(self, session: Session) -> None:
        self._session = session

    # -- users --------------------------------------------------------------

    def user(self, *, username: str) -> dict[str, Any] | None:
        """Return one user by name, or None."""
        row = self._session.scalar(select(UserRow).where(UserRow.username == username))
        return _record(row, _USER_FIELDS)

    def users(self) -> list[dict[str, Any]]:
        """Return every user, ordered by name."""
        rows = self._session.scalars(select(UserRow).order_by(UserRow.username)).all()
        return [_record(row, _USER_FIELDS) for row in rows]  # type: ignore[misc]

    def count_users(self) -> int:
        """Return how many users exist (active or not)."""
        return int(self._session.scalar(select(func.count()).select_from(UserRow)) or 0)

    def add_user(self, **values: Any) -> dict[str, Any]:
        """Insert a user; ``values`` are the column values."""
        row = UserRow(**values)
        self._session.add(row)
        self._session.flush()
        return _record(row, _USER_FIELDS)  # type: ignore[return-value]

    def update_user(self, *, username: str, **values: Any) -> dict[str, Any] | None:
        """Change some columns of a user; return it, or None when there is none."""
        row = self._session.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            return None
        for name, value in values.items():
            setattr(row, name, value)
        self._session.flush()
        return _record(row, _USER_FIELDS)

    # -- API keys -----------------------------------------------------------

    def api_key(self, *, key_id: str) -> dict[str, Any] | None:
        """Return one key by its public id, or None."""
        row = self._session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
        return _record(row, _KEY_FIELDS)

    def api_keys(self) -> list[dict[str, Any]]:
        """Return every key, newest first."""
        rows = self._session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id.desc())).all()
        return [_record(row, _KEY_FIELDS) for row in rows]  # type: ignore[misc]

    def add_api_key(self, **values: Any) -> dict[str, Any]:
        """Insert a key; ``values`` are the column values."""
        row = ApiKeyRow(**values)
        self._session.add(row)
        self._session.flush()
        return _record(row, _KEY_FIELDS)  # type: ignore[return-value]

    def revoke_api_key(self, *, key_id: str, at: datetime) -> tuple[dict[str, Any], bool] | None:
        """Mark a key revoked; return it and whether this call revoked it (None: no such key)."""
        row = self._session.scalar(
            select(ApiKeyRow).where(ApiKeyRow.key_id == key_id).with_for_update()
        )
        if row is None:
            return None
        if row.revoked_at is not None:
            return _record(row, _KEY_FIELDS), False  # type: ignore[return-value]
        row.revoked_at = at
        self._session.flush()
        return _record(row, _KEY_FIELDS), True  # type: ignore[return-value]

    # -- audit --------------------------------------------------------------

    def append_audit(self, **values: Any) -> int:
        """Append one audit entry; return its id.

        One INSERT ... RETURNING (no unit of work): intake appends an entry
        per incident and must stay one short transaction.
        """
        return int(self._session.execute(_INSERT_AUDIT, values).scalar_one())

    def append_audits(self, entries: Sequence[dict[str, Any]]) -> None:
        """Append many audit entries in one statement (a batch of intakes)."""
        columns = _AUDIT_FIELDS[1:]  # the id is the database's
        bulk_insert(
            self._session.connection(),
            _AUDIT_TABLE,
            columns,
            [[entry[name] for name in columns] for entry in entries],
        )

    def audit_entries(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Return one page of entries, newest first, and how many match."""
        conditions: list[Any] = []
        if actor is not None:
            conditions.append(AuditRow.actor == actor)
        if action is not None:
            # "households" matches households.read and households.export.
            conditions.append(
                (AuditRow.action == action)
                | AuditRow.action.startswith(f"{action}.", autoescape=True)
            )
        if target is not None:
            conditions.append(AuditRow.target.contains(target, autoescape=True))
        if since is not None:
            conditions.append(AuditRow.at >= since)
        if until is not None:
            conditions.append(AuditRow.at < until)
        total = self._session.scalar(select(func.count()).select_from(AuditRow).where(*conditions))
        rows = self._session.scalars(
            select(AuditRow)
            .where(*conditions)
            .order_by(AuditRow.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        return [_record(row, _AUDIT_FIELDS) for row in rows], int(total or 0)  # type: ignore[misc]


def _record(row: Any, fields: Sequence[str]) -> dict[str, Any] | None:
    if row is None:
        return None
    return {name: getattr(row, name) for name in fields}
