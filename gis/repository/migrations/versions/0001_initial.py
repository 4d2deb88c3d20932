"""Initial schema: layers, levels, imports, dated units with a spatial index.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry, alembic_helpers  # noqa: F401  (registers the geo ops)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "layers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("digits_only", sa.Integer(), nullable=False),
        sa.Column("child_code_extends_parent", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "levels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("layer_id", sa.Integer(), sa.ForeignKey("layers.id"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("code_lengths", sa.JSON(), nullable=True),
        sa.UniqueConstraint("layer_id", "name"),
        sa.UniqueConstraint("layer_id", "rank"),
    )
    op.create_table(
        "imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("layer_id", sa.Integer(), sa.ForeignKey("layers.id"), nullable=False),
        sa.Column("level_id", sa.Integer(), sa.ForeignKey("levels.id"), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("unit_count", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
    )
    op.create_geospatial_table(
        "units",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("layer_id", sa.Integer(), sa.ForeignKey("layers.id"), nullable=False),
        sa.Column("level_id", sa.Integer(), sa.ForeignKey("levels.id"), nullable=False),
        sa.Column("import_id", sa.Integer(), sa.ForeignKey("imports.id"), nullable=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("parent_code", sa.String(64), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("valid_to", sa.DateTime(), nullable=True),
        sa.Column(
            "geom",
            Geometry("MULTIPOLYGON", srid=4490, spatial_index=False),
            nullable=False,
        ),
        sa.UniqueConstraint("layer_id", "code", "valid_from"),
    )
    op.create_geospatial_index(
        "idx_units_geom",
        "units",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_units_layer_level_valid", "units", ["layer_id", "level_id", "valid_to"])
    op.create_index("ix_units_code", "units", ["code"])
    op.create_index("ix_units_parent", "units", ["layer_id", "parent_code"])


def downgrade() -> None:
    op.drop_geospatial_index("idx_units_geom", "units", column_name="geom")
    op.drop_geospatial_table("units")
    op.drop_table("imports")
    op.drop_table("levels")
    op.drop_table("layers")
