"""Draft change sets: a change set's status, and what a draft was computed on.

``status`` is ``applied`` (every change set stored before this migration was
applied when stored), ``draft`` (stored, nothing written to the units),
``reverted`` (a later change set restored what it replaced) or ``discarded``
(a draft dropped). ``draft`` holds what a draft needs to be applied later:
the ETags of the unit versions it was computed on.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("changesets") as batch:
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="applied")
        )
        batch.add_column(sa.Column("draft", sa.JSON(), nullable=True))
    # Change sets reverted before this migration say so.
    op.execute(
        "UPDATE changesets SET status = 'reverted' WHERE id IN "
        "(SELECT reverts FROM changesets WHERE reverts IS NOT NULL)"
    )
    op.create_index("ix_changesets_status", "changesets", ["layer", "status"])


def downgrade() -> None:
    op.drop_index("ix_changesets_status", "changesets")
    with op.batch_alter_table("changesets") as batch:
        batch.drop_column("draft")
        batch.drop_column("status")
