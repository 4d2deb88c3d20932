"""Street changes bump the ``places`` revision counter (map tiles draw the streets).

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER streets_bump_revision AFTER INSERT OR UPDATE OR DELETE "
            "ON streets FOR EACH STATEMENT EXECUTE FUNCTION tongge_bump_revision('places')"
        )
        return
    for operation in ("INSERT", "UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER streets_bump_{operation.lower()} AFTER {operation} ON streets "
            "BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'places'; END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS streets_bump_revision ON streets")
        return
    for operation in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS streets_bump_{operation}")
