"""Alembic environment: runs on the connection handed over by gis.repository."""

from alembic import context
from geoalchemy2 import alembic_helpers

from gis.repository.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_item=alembic_helpers.render_item,
    include_object=alembic_helpers.include_object,
    process_revision_directives=alembic_helpers.writer,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
