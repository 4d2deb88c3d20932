"""The audit trail: who read or exported personal data, who changed what, when.

Entries are appended, never updated or deleted (the database refuses both).
They name targets and counts, never personal data itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gis.access.principal import Principal
from gis.repository import Database, Repository
from gis.times import isoformat_utc, parse_time

__all__ = ["AuditEntry", "append_audit", "audit_log", "audit_values", "record"]


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit log (times are UTC)."""

    id: int
    at: datetime
    actor: str
    actor_kind: str
    role: str | None
    action: str
    target: str
    detail: dict[str, Any]
    client: str | None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {**vars(self), "at": isoformat_utc(self.at)}


def audit_values(
    actor: Principal,
    *,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
    client: str | None = None,
) -> dict[str, Any]:
    """Return the columns of one entry, for :meth:`AccessStore.append_audits` (batches)."""
    return {
        "at": parse_time(None),
        "actor": actor.name,
        "actor_kind": actor.kind,
        "role": actor.role.value,
        "action": action,
        "target": target[:300],
        "detail": detail or {},
        "client": client or actor.client,
    }


def append_audit(
    repo: Repository,
    *,
    actor: Principal,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
    client: str | None = None,
) -> int:
    """Append an entry inside the caller's transaction (it commits with the change)."""
    return repo.access.append_audit(
        **audit_values(actor, action=action, target=target, detail=detail, client=client)
    )


def record(
    db: Database,
    *,
    actor: Principal,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
    client: str | None = None,
) -> int:
    """Append an entry in a transaction of its own (reads and exports)."""
    with db.transaction() as repo:
        return append_audit(
            repo, actor=actor, action=action, target=target, detail=detail, client=client
        )


def audit_log(
    db: Database,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: str | date | datetime | None = None,
    until: str | date | datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    """Return one page of entries (newest first) and how many match.

    ``action`` matches the action or its family (``households`` matches
    ``households.read`` and ``households.export``); ``target`` matches a part.
    """
    with db.reader() as repo:
        rows, total = repo.access.audit_entries(
            actor=actor,
            action=action,
            target=target,
            since=parse_time(since, field="since") if since is not None else None,
            until=parse_time(until, field="until") if until is not None else None,
            limit=limit,
            offset=offset,
        )
    return [AuditEntry(**row) for row in rows], total
