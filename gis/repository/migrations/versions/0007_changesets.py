"""Change sets: applied edit operations, with every unit before and after (exact WKB).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changesets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("layer", sa.String(64), nullable=False),
        sa.Column("level", sa.String(64), nullable=False),
        sa.Column("op", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("import_id", sa.Integer(), sa.ForeignKey("imports.id"), nullable=True),
        sa.Column("reverts", sa.Integer(), sa.ForeignKey("changesets.id"), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
    )
    op.create_index("ix_changesets_layer", "changesets", ["layer", "id"])
    op.create_table(
        "changeset_units",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("changeset_id", sa.Integer(), sa.ForeignKey("changesets.id"), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("level", sa.String(64), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("parent_code", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=True),
        sa.Column("version_from", sa.DateTime(), nullable=True),
        sa.Column("wkb", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_changeset_units_changeset", "changeset_units", ["changeset_id"])
    op.create_index("ix_changeset_units_code", "changeset_units", ["code"])


def downgrade() -> None:
    op.drop_table("changeset_units")
    op.drop_table("changesets")
