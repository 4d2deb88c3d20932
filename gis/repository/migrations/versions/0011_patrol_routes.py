"""Patrol routes: planned routes of a unit, walked by a member of staff in a shift.

The route line is kept as exact WKB (EPSG:4490) with its bounding box in
plain columns: "which routes pass this point" is a bounding-box query on
both dialects, refined in Python.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrol_routes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("layer", sa.String(64), nullable=False),
        sa.Column("level", sa.String(64), nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("unit_version", sa.DateTime(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), sa.ForeignKey("staff.id"), nullable=True),
        sa.Column("shift", sa.String(64), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("checkpoints", sa.JSON(), nullable=False),
        sa.Column("wkb", sa.LargeBinary(), nullable=False),
        sa.Column("min_lon", sa.Float(), nullable=False),
        sa.Column("min_lat", sa.Float(), nullable=False),
        sa.Column("max_lon", sa.Float(), nullable=False),
        sa.Column("max_lat", sa.Float(), nullable=False),
        sa.Column("stale", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("stale_reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_patrol_routes_unit", "patrol_routes", ["layer", "unit_code"])
    op.create_index("ix_patrol_routes_box", "patrol_routes", ["min_lon", "max_lon"])


def downgrade() -> None:
    op.drop_index("ix_patrol_routes_box", "patrol_routes")
    op.drop_index("ix_patrol_routes_unit", "patrol_routes")
    op.drop_table("patrol_routes")
