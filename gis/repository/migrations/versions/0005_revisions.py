"""Commit-ordered revision counters bumped by triggers; audit log refuses REPLACE.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from gis.repository._dialect import (
    REVISION_COUNTERS,
    no_replace_statements,
    revision_trigger_statements,
)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    revisions = op.create_table(
        "revisions",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(revisions, [{"name": name, "value": 1} for name in REVISION_COUNTERS])
    dialect = op.get_bind().dialect.name
    for statement in [*revision_trigger_statements(dialect), *no_replace_statements(dialect)]:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for tables in REVISION_COUNTERS.values():
        for table in tables:
            if dialect == "postgresql":
                op.execute(f"DROP TRIGGER IF EXISTS {table}_bump_revision ON {table}")
            else:
                for operation in ("insert", "update", "delete"):
                    op.execute(f"DROP TRIGGER IF EXISTS {table}_bump_{operation}")
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_replace")
    op.drop_table("revisions")
