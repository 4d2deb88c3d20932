"""Places: buildings (footprints, addresses), households (counts only), points of interest.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry, alembic_helpers  # noqa: F401  (registers the geo ops)

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_geospatial_table(
        "buildings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("floors", sa.Integer(), nullable=True),
        sa.Column("use", sa.String(32), nullable=True),
        sa.Column("entrance_lon", sa.Float(), nullable=True),
        sa.Column("entrance_lat", sa.Float(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4490, spatial_index=False), nullable=False),
    )
    op.create_geospatial_index(
        "idx_buildings_geom",
        "buildings",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_table(
        "households",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("building_key", sa.String(64), nullable=False),
        sa.Column("unit_no", sa.String(16), nullable=True),
        sa.Column("floor", sa.Integer(), nullable=True),
        sa.Column("room", sa.String(16), nullable=True),
        sa.Column("persons", sa.Integer(), nullable=False),
    )
    op.create_index("ix_households_building", "households", ["building_key"])
    op.create_table(
        "places",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("building_key", sa.String(64), nullable=True),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("places")
    op.drop_index("ix_households_building", "households")
    op.drop_table("households")
    op.drop_geospatial_index("idx_buildings_geom", "buildings", column_name="geom")
    op.drop_geospatial_table("buildings")
