"""Moves: the buildings each boundary import moved to another unit.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moves",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("import_id", sa.Integer(), sa.ForeignKey("imports.id"), nullable=False),
        sa.Column("layer", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("level", sa.String(64), nullable=False),
        sa.Column("from_unit", sa.String(64), nullable=True),
        sa.Column("to_unit", sa.String(64), nullable=True),
        sa.Column("changed_level", sa.String(64), nullable=False),
        sa.Column("from_code", sa.String(64), nullable=True),
        sa.Column("to_code", sa.String(64), nullable=True),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
    )
    op.create_index("ix_moves_import", "moves", ["import_id"])
    op.create_index("ix_moves_building", "moves", ["key"])


def downgrade() -> None:
    op.drop_table("moves")
