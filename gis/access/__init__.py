"""Access control: accounts, roles, jurisdictions and the audit trail.

- :mod:`~gis.access.roles` - roles and the permissions each holds;
- :mod:`~gis.access.credentials` - password hashing, API key secrets, tokens;
- :mod:`~gis.access.accounts` - users and API keys (every change audited);
- :mod:`~gis.access.jurisdiction` - which units, places and answers a caller may see;
- :mod:`~gis.access.audit` - the append-only audit trail.
"""

from gis.access.audit import AuditEntry, append_audit, audit_log, record
from gis.access.jurisdiction import Jurisdiction, JurisdictionResolver
from gis.access.principal import SYSTEM, Principal, cli_principal
from gis.access.roles import ROLE_PERMISSIONS, Permission, Role

__all__ = [
    "ROLE_PERMISSIONS",
    "SYSTEM",
    "AuditEntry",
    "Jurisdiction",
    "JurisdictionResolver",
    "Permission",
    "Principal",
    "Role",
    "append_audit",
    "audit_log",
    "cli_principal",
    "record",
]
