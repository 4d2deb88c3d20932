"""Incidents: reports located and dispatched, their units, transitions and idempotency keys.

On PostgreSQL ``incidents`` is partitioned by month on ``received_at``
(declarative range partitioning, a default partition for anything outside
the months made so far; see ``gis.repository._incidents.ensure_partitions``).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from gis.repository._incidents import INCIDENT_COLUMNS_DDL, ensure_partitions

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    if bind.dialect.name == "postgresql":
        op.execute(
            f"CREATE TABLE incidents ({INCIDENT_COLUMNS_DDL}, PRIMARY KEY (id, received_at)) "
            "PARTITION BY RANGE (received_at)"
        )
        op.execute("CREATE TABLE incidents_default PARTITION OF incidents DEFAULT")
    else:
        op.create_table(
            "incidents",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("received_at", sa.DateTime(), nullable=False),
            sa.Column("public_id", sa.String(32), nullable=False),
            sa.Column("channel", sa.String(32), nullable=False),
            sa.Column("external_id", sa.String(100), nullable=True),
            sa.Column("category", sa.String(16), nullable=False),
            sa.Column("description", sa.Text(), nullable=False),
            sa.Column("lon", sa.Float(), nullable=True),
            sa.Column("lat", sa.Float(), nullable=True),
            sa.Column("raw_x", sa.Float(), nullable=True),
            sa.Column("raw_y", sa.Float(), nullable=True),
            sa.Column("datum", sa.String(16), nullable=True),
            sa.Column("accuracy_m", sa.Float(), nullable=True),
            sa.Column("address", sa.Text(), nullable=True),
            sa.Column("event_time", sa.DateTime(), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("deadline_at", sa.DateTime(), nullable=False),
            sa.Column("units", sa.JSON(), nullable=False),
            sa.Column("responsible", sa.JSON(), nullable=False),
            sa.Column("revision", sa.Integer(), nullable=False),
            sa.Column("review_reason", sa.String(64), nullable=True),
            sa.Column("merged_into", sa.Integer(), nullable=True),
            sa.Column("escalated_to", sa.String(64), nullable=True),
            sa.Column("feedback_score", sa.Integer(), nullable=True),
            sa.Column("feedback_text", sa.Text(), nullable=True),
            sa.Column("closed_at", sa.DateTime(), nullable=True),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.Column("reporter_contact", sa.String(100), nullable=True),
            sa.Column("media", sa.JSON(), nullable=False),
            sa.Column("submitted_by", sa.String(200), nullable=True),
        )
    op.create_index("ix_incidents_status_deadline", "incidents", ["status", "deadline_at"])
    op.create_index("ix_incidents_category_event", "incidents", ["category", "event_time"])
    op.create_index("ix_incidents_public_id", "incidents", ["public_id"])
    op.create_table(
        "incident_units",
        sa.Column("incident_id", big, primary_key=True),
        sa.Column("layer", sa.String(64), primary_key=True),
        sa.Column("level", sa.String(64), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False),
    )
    op.create_index("ix_incident_units_code", "incident_units", ["layer", "code"])
    op.create_table(
        "incident_transitions",
        sa.Column("id", big, primary_key=True),
        sa.Column("incident_id", big, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index(
        "ix_incident_transitions_incident", "incident_transitions", ["incident_id", "id"]
    )
    op.create_table(
        "incident_keys",
        sa.Column("id", big, primary_key=True),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("incident_id", big, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("scope", "key", name="uq_incident_keys_scope_key"),
    )
    if bind.dialect.name == "postgresql":
        ensure_partitions(bind)


def downgrade() -> None:
    op.drop_table("incident_keys")
    op.drop_table("incident_transitions")
    op.drop_table("incident_units")
    op.drop_table("incidents")
